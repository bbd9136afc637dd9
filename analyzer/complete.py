"""The last step of building facts: values derived from the parsed facts, computed once before any rule."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts


def complete_facts(facts: Facts) -> Facts:
    """Fill the derived facts (signals, mentions) once; calling it again after the facts changed recomputes them."""
    from vllm_bug.analyzer.mentions import read_mentions
    from vllm_bug.analyzer.signals import detect_signals

    facts.signals = detect_signals(facts)
    facts.mentions = read_mentions(facts)
    return facts


def ensure_complete(facts: Facts) -> Facts:
    return facts if facts.signals is not None else complete_facts(facts)
