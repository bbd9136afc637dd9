"""Test-only helpers for the report/signature tests: Facts from pasted text, corpus cases, analyses."""

from __future__ import annotations

import json
from pathlib import Path

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Analysis, Finding
from vllm_bug.analyzer.textfacts import facts_from_text as real_facts_from_text

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def facts_from_text(text: str, **extra) -> Facts:
    """Facts through the real text pipeline (prefix stripping, traceback parsing, root cause), plus
    any fields a test wants to set on top."""
    facts = real_facts_from_text(text)
    for name, value in extra.items():
        setattr(facts, name, value)
    return facts


def corpus_cases() -> dict[str, dict]:
    out = {}
    with open(FIXTURES / "reports" / "real-issues-dev.jsonl", encoding="utf-8") as fh:
        for line in fh:
            case = json.loads(line)
            out[case["id"]] = case
    return out


def analysis_for(
    facts: Facts, findings: list[Finding] | None = None, signature: str = "vllm-sig/1:x:y:z:-#00000000"
) -> Analysis:
    return Analysis(
        input_kind=facts.input_kind,
        sha256="ab" * 32,
        diagnoses=findings or [],
        facts=facts,
        signature=signature,
        signature_explanation=["algorithm vllm-sig/1"],
    )
