"""Rules that are only knowledge: "this message means this category, with this title and these fixes".

Each row of the tables under analyzer/data/diagnoses/ becomes a rule: it fires when one of its signals was seen,
quotes the signals' lines as evidence, is as confident as ROOT when the root-cause exception itself
carries a signal (else DIRECT), and gives its fixes. A fix is either words, or the name of a piece
of advice (ADVICE below): version-aware advice from analyzer/knowledge.py, so the row stays data while
the advice fits the reporter's vLLM version, or a sentence that Python rules of the row's family share,
so that it is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import evidence, level, vllm_not_involved, vllm_or_not, vllm_version


def _advice() -> dict[str, Callable[[Facts], list[str]]]:
    from vllm_bug.analyzer import knowledge
    from vllm_bug.analyzer.rules import cuda_graph, nccl, runtime_errors

    return {
        "compile_off": lambda facts: [
            vllm_or_not(facts, knowledge.compile_off_advice(vllm_version(facts)), knowledge.TORCH_COMPILE_OFF_ADVICE)
        ],
        "cudagraph_workarounds": lambda facts: (
            [knowledge.TORCH_GRAPH_ADVICE]
            if vllm_not_involved(facts)
            else knowledge.cudagraph_workarounds(vllm_version(facts))
        ),
        "cuda_launch_blocking": lambda facts: [runtime_errors.LAUNCH_BLOCKING_ADVICE],
        "no_cpu_sync_in_capture": lambda facts: [cuda_graph.no_cpu_sync_advice(facts)],
        "nccl_debug": lambda facts: [nccl.NCCL_DEBUG_ADVICE],
    }


ADVICE_NAMES = ("compile_off", "cudagraph_workarounds", "cuda_launch_blocking", "no_cpu_sync_in_capture", "nccl_debug")


@lru_cache(maxsize=1)
def rows() -> dict[str, dict[str, Any]]:
    from vllm_bug.analyzer.signals import read_tables

    return read_tables("diagnoses", "diagnoses")


def fixes_for(row: dict[str, Any], facts: Facts) -> list[str]:
    """The row's fixes: words, named advice, and words for a vLLM run only ("only": "vllm") or for a program that
    is known not to be vLLM ("only": "without_vllm")."""
    advice = _advice()
    without_vllm = vllm_not_involved(facts)
    out: list[str] = []
    for fix in row.get("fixes", []):
        if isinstance(fix, str):
            out.append(fix)
        elif "advice" in fix:
            out.extend(advice[fix["advice"]](facts))
        elif (fix["only"] == "without_vllm") == without_vllm:
            out.append(fix["text"])
    return out


def title_for(row: dict[str, Any], facts: Facts) -> str:
    """The row's title, or its wording for a program that is known not to be vLLM."""
    return vllm_or_not(facts, row["title"], row.get("title_without_vllm", row["title"]))


def _table_rule(key: str, row: dict[str, Any]) -> Callable[[Facts], Diagnosis | None]:
    signals = tuple(row["signals"])

    def diagnose(facts: Facts) -> Diagnosis | None:
        lines = evidence(facts, *signals, limit=row.get("evidence_limit", 2))
        return Diagnosis(level(facts, *signals), title_for(row, facts), evidence=lines, fixes=fixes_for(row, facts))

    diagnose.__name__ = key.lower()
    diagnose.__doc__ = row.get("about", row["title"])
    return diagnose


def family_rows(family: str) -> dict[str, dict[str, Any]]:
    """The rows of analyzer/data/diagnoses/<family>.json (empty when there is no such table)."""
    from vllm_bug.analyzer.signals import read_table_file

    return read_table_file("diagnoses", family, "diagnoses")


def register_family(family: str) -> None:
    """Register a family's rows; rules.load_all calls it just before the family's Python module, so
    that a rule moved into the table keeps its place among the rules ranked at equal confidence."""
    for key, row in family_rows(family).items():
        rule(key, category=row["category"], signals=tuple(row["signals"]))(_table_rule(key, row))
