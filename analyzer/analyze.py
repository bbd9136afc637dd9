"""From a loaded input to an Analysis: facts, rules, signature, known issue."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Analysis
from vllm_bug.analyzer.rules import run_rules


def analyze_loaded(loaded) -> Analysis:
    """`loaded` is analyzer.load.LoadedInput (kind, sha256, doc, text, name)."""
    from vllm_bug.analyzer.build import build_facts

    return analyze_facts(build_facts(loaded), loaded.kind, loaded.sha256)


def analyze_facts(facts: Facts, input_kind: str = "text", sha256: str = "") -> Analysis:
    findings = run_rules(facts)
    signature, explanation = _signature(facts)
    analysis = Analysis(
        input_kind=input_kind,
        sha256=sha256,
        diagnoses=findings,
        facts=facts,
        signature=signature,
        signature_explanation=explanation,
    )
    analysis.known_issue = _known_issue(signature, facts, analysis.category)
    return analysis


def analyze_text(text: str) -> Analysis:
    """Convenience for benchmarks and tests: pasted text straight to an Analysis."""
    import hashlib

    from vllm_bug.analyzer.load import LoadedInput

    sha = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    return analyze_loaded(LoadedInput(kind="text", sha256=sha, doc=None, text=text, name="<text>"))


def _signature(facts: Facts) -> tuple[str, list[str]]:
    from vllm_bug.analyzer.signature import compute_signature

    return compute_signature(facts)


def _known_issue(signature: str, facts: Facts, category: str) -> dict | None:
    from vllm_bug.analyzer.known_issues import match_known_issue

    return match_known_issue(signature, facts, category)
