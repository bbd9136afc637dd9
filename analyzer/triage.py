"""Triage's analysis side: one input's signature, a group's description, and the grouping itself.

An input is a file (its path) or a report from a list of reports (analyzer.reports.Report), loaded
by analyzer.load as `analyze` and the Python API load theirs. Two passes keep the per-input work light
(vllm_bug.commands.triage runs them in worker processes):
1. every input is loaded, turned into facts and given its signature (no rules, no rendering);
2. the rules run once per group, on the group's example (its first input in path order, reports in
   their order within their list); the group's category and known issue are the example's. Members of
   one group share the signature, i.e. the same exception, qualifier and in-app frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vllm_bug.analyzer.reports import BadReport, Report
from vllm_bug.errors import VllmBugError

Item = str | Report  # what a worker is given: a file's path, or a report from a list

OUT_OF_MEMORY = "refused: needed more memory than one input may use"


@dataclass(frozen=True)
class IssueRef:
    """The issue a report came from, as its list gave it."""

    number: int | None = None
    url: str | None = None

    @property
    def label(self) -> str:
        return f"#{self.number}" if self.number is not None else (self.url or "")

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "url": self.url}


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

    def to_json(self, issues: Mapping[str, IssueRef] | None = None) -> dict[str, Any]:
        """ISSUES: the issue of each input that came from a list of reports, by input name."""
        issues = issues or {}
        return {
            "count": len(self.files),
            "category": self.category,
            "signature": self.signature,
            "title": self.title,
            "known_issue": self.known_issue,
            "example": self.example,
            "files": self.files,
            "issues": [{"input": name, **issues[name].to_json()} for name in self.files if name in issues],
        }


@dataclass
class TriageResult:
    groups: list[Group]
    bad: list[tuple[str, str]]  # (input name, reason)
    analyzed: int
    issues: dict[str, IssueRef] = field(default_factory=dict)  # input name -> its issue, for reports from lists

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "inputs": self.analyzed + len(self.bad),
            "analyzed": self.analyzed,
            "groups": [g.to_json(self.issues) for g in self.groups],
            "bad_files": [{"path": p, "reason": r, **self._issue_json(p)} for p, r in self.bad],
        }

    def _issue_json(self, name: str) -> dict[str, Any]:
        ref = self.issues.get(name)
        return ref.to_json() if ref is not None else {}


def item_name(item: Item) -> str:
    return item.name if isinstance(item, Report) else item


def load_item(item: Item) -> Any:
    """The analyzer.load.LoadedInput of a file or of a report from a list."""
    from vllm_bug.analyzer.load import load_data, load_input

    if isinstance(item, Report):
        return load_data(item.data, item.name)
    return load_input(item)


def signature_of(item: Item) -> tuple[str, str | None, str | None]:
    """(name, signature, None) or (name, None, one-line reason)."""
    name = item_name(item)
    try:
        from vllm_bug.analyzer.build import build_facts
        from vllm_bug.analyzer.signature import compute_signature

        facts = build_facts(load_item(item))
        return name, compute_signature(facts)[0], None
    except VllmBugError as exc:
        return name, None, refusal(name, exc)
    except RecursionError:
        return name, None, "refused: nested too deeply"
    except MemoryError:
        return name, None, OUT_OF_MEMORY
    except Exception as exc:  # noqa: BLE001 - a bug in vllm-bug must not stop the whole triage
        return name, None, one_line(f"internal error: {type(exc).__name__}: {exc}")


def describe_example(item: Item) -> tuple[str, str, str, str | None]:
    """(name, category, title of the top diagnosis, known issue id) from a full analysis."""
    name = item_name(item)
    try:
        from vllm_bug.analyzer.analyze import analyze_loaded

        analysis = analyze_loaded(load_item(item))
        title = analysis.diagnoses[0].title if analysis.diagnoses else ""
        known = analysis.known_issue
        ref = (known.get("vllm_issue") or known.get("id")) if known else None
        return name, analysis.category, title, ref
    except MemoryError:
        return name, "other", f"(analysis failed: {OUT_OF_MEMORY})", None
    except Exception as exc:  # noqa: BLE001 - the group keeps its signature without a title
        return name, "other", analysis_failed(f"{type(exc).__name__}: {exc}"), None


def reports_in(job: tuple[str, bytes | None, str]) -> list[Report | BadReport]:
    """The reports of one list: (its name, its bytes or None to read the file called so, its kind)."""
    from vllm_bug.analyzer.load import MAX_INPUT_BYTES
    from vllm_bug.analyzer.reports import read_reports
    from vllm_bug.schema.bundle import read_file_capped

    name, data, kind = job
    try:
        if data is None:
            data = read_file_capped(name, MAX_INPUT_BYTES, what="a list of reports")
        return read_reports(name, data, kind)
    except VllmBugError as exc:
        return [BadReport(name, refusal(name, exc))]
    except MemoryError:
        return [BadReport(name, OUT_OF_MEMORY)]


def analysis_failed(reason: str) -> str:
    return one_line(f"(analysis failed: {reason})")


def group_by_signature(signed: Iterable[tuple[str, str]], order: Callable[[str], Any] | None = None) -> list[Group]:
    """Groups of (name, signature) pairs, members sorted by ORDER of their names, by default the names
    themselves (the first is the example)."""
    by_signature: dict[str, list[str]] = {}
    for name, signature in signed:
        by_signature.setdefault(signature, []).append(name)
    return [Group(signature=s, files=sorted(members, key=order)) for s, members in by_signature.items()]


def refusal(name: str, exc: VllmBugError) -> str:
    """Why NAME was refused, in one line, without the 'NAME: ' that the message may begin with: the report shows
    the name beside the reason."""
    text = one_line(str(exc))
    return text.removeprefix(f"{name}: ") or text


def one_line(text: str, limit: int = 300) -> str:
    s = " ".join(text.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"
