"""The last step of building facts: values derived from the parsed facts, computed once before any rule."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vllm_bug.analyzer.facts import Facts

if TYPE_CHECKING:
    from vllm_bug.analyzer.memory.estimate import MemoryEstimate


def complete_facts(facts: Facts) -> Facts:
    """Fill the derived facts (signals, mentions, OOM phase, other processes' GPU memory, memory estimate) once;
    calling it again after the facts changed recomputes them."""
    from vllm_bug.analyzer.memory.oom_phase import oom_phase
    from vllm_bug.analyzer.memory_holders import memory_holders
    from vllm_bug.analyzer.mentions import read_mentions
    from vllm_bug.analyzer.signals import detect_signals

    facts.signals = detect_signals(facts)
    facts.mentions = read_mentions(facts)
    facts.oom_phase = oom_phase(facts)  # after signals and mentions: it reads them through the rule helpers
    facts.memory_holders = memory_holders(facts)
    facts.memory = memory_estimate(facts)
    return facts


def ensure_complete(facts: Facts) -> Facts:
    return facts if facts.signals is not None else complete_facts(facts)


def memory_estimate(facts: Facts) -> MemoryEstimate | None:
    """The memory arithmetic for the facts' model on their GPUs, or None when it has nothing to say."""
    model_name = facts.engine_args.get("model") if isinstance(facts.engine_args, dict) else None
    if not facts.gpus or not (facts.model or isinstance(model_name, str)):
        return None  # no GPU or no model to size: the arithmetic is neither done nor imported
    from vllm_bug.analyzer.memory.from_facts import estimate_for_facts

    try:
        return estimate_for_facts(facts)
    except Exception:  # a report whose numbers the arithmetic cannot handle is still analysed
        return None
