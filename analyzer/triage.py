"""Triage's analysis side: one input's signature, a group's description, and the grouping itself.

Two passes keep the per-input work light (vllm_bug.commands.triage runs them in worker processes):
1. every input is loaded, turned into facts and given its signature (no rules, no rendering);
2. the rules run once per group, on the group's example (its first file in path order); the group's
   category and known issue are the example's. Members of one group share the signature, i.e. the
   same exception, qualifier and in-app frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vllm_bug.errors import VllmBugError

OUT_OF_MEMORY = "refused: needed more memory than one input may use"


@dataclass
class Group:
    signature: str
    files: list[str] = field(default_factory=list)
    category: str = "other"
    title: str = ""
    known_issue: str | None = None

    @property
    def example(self) -> str:
        return self.files[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "count": len(self.files),
            "category": self.category,
            "signature": self.signature,
            "title": self.title,
            "known_issue": self.known_issue,
            "example": self.example,
            "files": self.files,
        }


@dataclass
class TriageResult:
    groups: list[Group]
    bad: list[tuple[str, str]]  # (path, reason)
    analyzed: int

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "inputs": self.analyzed + len(self.bad),
            "analyzed": self.analyzed,
            "groups": [g.to_json() for g in self.groups],
            "bad_files": [{"path": p, "reason": r} for p, r in self.bad],
        }


def signature_of(path: str) -> tuple[str, str | None, str | None]:
    """(path, signature, None) or (path, None, one-line reason)."""
    try:
        from vllm_bug.analyzer.build import build_facts
        from vllm_bug.analyzer.load import load_input
        from vllm_bug.analyzer.signature import compute_signature

        facts = build_facts(load_input(path))
        return path, compute_signature(facts)[0], None
    except VllmBugError as exc:
        return path, None, one_line(str(exc))
    except RecursionError:
        return path, None, "refused: nested too deeply"
    except MemoryError:
        return path, None, OUT_OF_MEMORY
    except Exception as exc:  # noqa: BLE001 - a bug in vllm-bug must not stop the whole triage
        return path, None, one_line(f"internal error: {type(exc).__name__}: {exc}")


def describe_example(path: str) -> tuple[str, str, str, str | None]:
    """(path, category, title of the top diagnosis, known issue id) from a full analysis."""
    try:
        from vllm_bug.analyzer.analyze import analyze_loaded
        from vllm_bug.analyzer.load import load_input

        analysis = analyze_loaded(load_input(path))
        title = analysis.diagnoses[0].title if analysis.diagnoses else ""
        known = analysis.known_issue
        ref = (known.get("vllm_issue") or known.get("id")) if known else None
        return path, analysis.category, title, ref
    except MemoryError:
        return path, "other", f"(analysis failed: {OUT_OF_MEMORY})", None
    except Exception as exc:  # noqa: BLE001 - the group keeps its signature without a title
        return path, "other", analysis_failed(f"{type(exc).__name__}: {exc}"), None


def analysis_failed(reason: str) -> str:
    return one_line(f"(analysis failed: {reason})")


def group_by_signature(signed: Iterable[tuple[str, str]]) -> list[Group]:
    """Groups of (path, signature) pairs, members in path order (the first is the example)."""
    by_signature: dict[str, list[str]] = {}
    for path, signature in signed:
        by_signature.setdefault(signature, []).append(path)
    return [Group(signature=s, files=sorted(members)) for s, members in by_signature.items()]


def one_line(text: str, limit: int = 300) -> str:
    s = " ".join(text.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"
