"""`vllm-bug triage DIR|FILES...`: many bundles and reports at once, grouped by root-cause signature.

A file that is a list of reports (JSON Lines, or a JSON array such as `gh issue list --json
number,title,body,url` writes; see analyzer/reports.py) counts as one input per report, and each
report's issue number and URL are kept in every output. `-` reads standard input: a list of reports or
one input. Every input is analysed in a worker process, within FILE_SECONDS and FILE_MEMORY_BYTES; an input that
is unreadable, refused, too slow, needs too much memory, or whose worker is killed becomes a bad-file
row with a one-line reason, and the table is written regardless. Exit codes: 0 when at least one input
was analysed; 3 when inputs were found but none could be read (the table is still written); 2 when the
paths name no input at all; 1 when the output file cannot be written.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vllm_bug.analyzer.reports import HEAD_BYTES, LIST_SUFFIXES, Report, list_kind
from vllm_bug.analyzer.triage import (
    Group,
    IssueRef,
    Item,
    TriageResult,
    analysis_failed,
    describe_example,
    group_by_signature,
    item_name,
    reports_in,
    signature_of,
)
from vllm_bug.commands import Result
from vllm_bug.commands.output import (
    STDOUT,
    destination,
    json_text,
    refuse_inputs,
    terminal_safe,
)
from vllm_bug.commands.workers import Failure, Limits, map_isolated
from vllm_bug.errors import EXIT_UNREADABLE, UsageProblem, VllmBugError

STDIN = STDOUT  # "-" names standard input where a path is read
STDIN_NAME = "<stdin>"
INPUT_SUFFIXES = {".zst", ".zip", ".md", ".txt", ".log", ".json", ".out", ".err", ".text", ".markdown", *LIST_SUFFIXES}
MAX_FILE_BYTES = 32 << 20
MAX_FILES = 1_000_000
FILE_SECONDS = 60.0
FILE_MEMORY_BYTES = 1 << 30  # address space of one worker, its own code included (about 30 MiB)
TABLE_WIDTH = 100  # where the list of a group's issues wraps
_CSV_FORMULA_STARTS = ("=", "+", "-", "@")


def execute(
    paths: Iterable[str], fmt: str = "table", output: str | None = None, force: bool = False, jobs: int | None = None
) -> Result:
    target = destination(output, force)
    files, bad = expand_inputs(paths)
    if target.path is not None:
        refuse_inputs(target.path, files)
    if not files and not bad:
        raise UsageProblem("no inputs found (looked for " + ", ".join(sorted(INPUT_SUFFIXES)) + " files)")
    inputs = gather(files, bad, jobs)
    if sys.stderr.isatty() and inputs.items:
        import click

        with click.progressbar(length=len(inputs.items), label="analysing", file=sys.stderr) as bar:
            result = analyse(inputs, jobs, bar.update)
    else:
        result = analyse(inputs, jobs)
    warnings = [f"bad file {_with_issue(name, result.issues)}: {terminal_safe(reason)}" for name, reason in result.bad]
    outcome = Result(text=render(result, fmt), destination=target, warnings=warnings if fmt != "table" else [])
    if result.analyzed == 0:
        outcome.exit_code = EXIT_UNREADABLE
        outcome.error = f"none of the {len(result.bad)} input(s) could be analysed"
    return outcome


# -- finding the inputs --------------------------------------------------------------------


def expand_inputs(paths: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files to analyse (directories walked, only input-like names; "-" kept for standard input) and paths
    refused up front."""
    files: list[str] = []
    bad: list[tuple[str, str]] = []
    for raw in paths:
        p = Path(raw)
        if raw == STDIN:
            if STDIN not in files:
                files.append(STDIN)
        elif p.is_dir():
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if name.startswith(".") or Path(name).suffix.lower() not in INPUT_SUFFIXES:
                        continue
                    _add_file(os.path.join(root, name), files, bad)
        elif p.exists():
            _add_file(str(p), files, bad)
        else:
            bad.append((raw, "no such file or directory"))
        if len(files) > MAX_FILES:
            raise UsageProblem(f"more than {MAX_FILES} inputs: triage them in parts")
    return files, bad


def _add_file(path: str, files: list[str], bad: list[tuple[str, str]]) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        bad.append((path, f"cannot read: {exc.strerror or exc}"))
        return
    if not os.path.isfile(path):
        bad.append((path, "not a regular file"))
    elif st.st_size > MAX_FILE_BYTES:
        bad.append((path, f"larger than the {MAX_FILE_BYTES >> 20} MiB limit"))
    elif st.st_size == 0:
        bad.append((path, "empty file"))
    else:
        files.append(path)


# -- lists of reports ----------------------------------------------------------------------


@dataclass
class Inputs:
    """What triage analyses: files and reports (items), what was refused already (bad), the issue of
    each report that named one, and where each input stands in the order members are listed in."""

    items: list[Item] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    issues: dict[str, IssueRef] = field(default_factory=dict)
    order: dict[str, tuple[str, int]] = field(default_factory=dict)

    def add(self, item: Item) -> None:
        self.items.append(item)
        if isinstance(item, Report):
            self.order[item.name] = (item.source, item.position)
            self._note_issue(item.name, item.number, item.url)

    def refuse(self, name: str, reason: str, number: int | None = None, url: str | None = None) -> None:
        self.bad.append((name, reason))
        self._note_issue(name, number, url)

    def _note_issue(self, name: str, number: int | None, url: str | None) -> None:
        if number is not None or url is not None:
            self.issues[name] = IssueRef(number, url)

    def position(self, name: str) -> tuple[str, int]:
        return self.order.get(name, (name, 0))


def gather(files: list[str], bad: list[tuple[str, str]], jobs: int | None = None) -> Inputs:
    """The inputs in FILES, each list of reports read (in a worker process) into its reports."""
    inputs = Inputs(bad=list(bad))
    lists: list[tuple[str, bytes | None, str]] = []
    for path in files:
        if path == STDIN:
            _gather_stdin(inputs, lists)
            continue
        kind = list_kind(path, _head(path))
        if kind is None:
            inputs.add(path)
        else:
            lists.append((path, None, kind))
    limits = Limits(FILE_SECONDS, FILE_MEMORY_BYTES)
    for job, outcome in zip(lists, map_isolated(reports_in, lists, _jobs(jobs), limits), strict=True):
        if isinstance(outcome, Failure):
            inputs.refuse(job[0], outcome.reason)
            continue
        for entry in outcome:
            if isinstance(entry, Report):
                inputs.add(entry)
            else:
                inputs.refuse(entry.name, entry.reason, entry.number, entry.url)
    if len(inputs.items) > MAX_FILES:
        raise UsageProblem(f"more than {MAX_FILES} inputs: triage them in parts")
    return inputs


def _gather_stdin(inputs: Inputs, lists: list[tuple[str, bytes | None, str]]) -> None:
    from vllm_bug.schema.bundle import read_stream_capped

    stream = sys.stdin.buffer
    if stream.isatty():
        raise UsageProblem(
            "-: standard input is a terminal; pipe the reports in, e.g. "
            "gh issue list --repo vllm-project/vllm --json number,title,body,url | vllm-bug triage -"
        )
    try:
        data = read_stream_capped(stream, STDIN_NAME, MAX_FILE_BYTES)
    except VllmBugError as exc:
        inputs.refuse(STDIN_NAME, str(exc))
        return
    if not data.strip():
        inputs.refuse(STDIN_NAME, "empty input")
        return
    kind = list_kind(STDIN_NAME, data[:HEAD_BYTES])
    if kind is None:
        inputs.add(Report(STDIN_NAME, data, STDIN_NAME, 0))
    else:
        lists.append((STDIN_NAME, data, kind))


def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(HEAD_BYTES)
    except OSError:
        return b""  # not a list then; reading it as an input will say what is wrong


# -- running -------------------------------------------------------------------------------


def triage(
    paths: Iterable[str],
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
    files: list[str] | None = None,
    bad: list[tuple[str, str]] | None = None,
) -> TriageResult:
    """Signatures of every input, grouped; each group described by a full analysis of its example."""
    if files is None:
        files, bad = expand_inputs(paths)
    return analyse(gather(files, bad or [], jobs), jobs, progress)


def analyse(inputs: Inputs, jobs: int | None = None, progress: Callable[[int], None] | None = None) -> TriageResult:
    """Triage gathered INPUTS (see triage)."""
    bad = list(inputs.bad)
    jobs = _jobs(jobs)
    limits = Limits(FILE_SECONDS, FILE_MEMORY_BYTES)
    _import_analysis()
    signed: list[tuple[str, str]] = []
    items = inputs.items
    for item, outcome in zip(items, map_isolated(signature_of, items, jobs, limits, progress), strict=True):
        name = item_name(item)
        if isinstance(outcome, Failure):
            bad.append((name, outcome.reason))
        elif outcome[1] is None:
            bad.append((name, outcome[2] or "unreadable"))
        else:
            signed.append((name, outcome[1]))
    groups = group_by_signature(signed, order=inputs.position)
    _describe(groups, {item_name(item): item for item in items}, jobs, limits)
    groups.sort(key=lambda g: (-len(g.files), g.signature))
    bad.sort(key=lambda entry: (inputs.position(entry[0]), entry[1]))
    return TriageResult(groups=groups, bad=bad, analyzed=sum(len(g.files) for g in groups), issues=inputs.issues)


def _jobs(jobs: int | None) -> int:
    return jobs or os.cpu_count() or 1


def _describe(groups: list[Group], items: dict[str, Item], jobs: int, limits: Limits) -> None:
    examples = {g.example: g for g in groups}
    names = sorted(examples)
    chosen = [items[name] for name in names]
    for name, outcome in zip(names, map_isolated(describe_example, chosen, jobs, limits), strict=True):
        group = examples[name]
        if isinstance(outcome, Failure):
            group.title = analysis_failed(outcome.reason)
        else:
            _, group.category, group.title, group.known_issue = outcome


def _import_analysis() -> None:
    """Load the analyzer once here: forked workers inherit it instead of each importing it again."""
    import vllm_bug.analyzer.analyze
    import vllm_bug.analyzer.build
    import vllm_bug.analyzer.load
    import vllm_bug.analyzer.signature  # noqa: F401


# -- output --------------------------------------------------------------------------------


def render(result: TriageResult, fmt: str) -> str:
    if fmt == "json":
        return json_text(result.to_json())
    if fmt == "csv":
        return format_csv(result)
    return format_table(result)


def format_table(result: TriageResult) -> str:
    lines = [f"{result.analyzed} analysed, {len(result.bad)} bad, {len(result.groups)} groups", ""]
    if result.groups:
        width = max(5, max(len(g.category) for g in result.groups))
        indent = f"{'':>6}  {'':<{width}}  "
        lines.append(f"{'COUNT':>6}  {'CATEGORY':<{width}}  SIGNATURE / EXAMPLE")
        for g in result.groups:
            lines.append(f"{len(g.files):>6}  {g.category:<{width}}  {terminal_safe(g.signature)}")
            detail = f"example: {_with_issue(g.example, result.issues)}"
            if g.known_issue:
                detail += f"  (likely {terminal_safe(g.known_issue)})"
            lines.append(indent + detail)
            labels = [terminal_safe(ref.label) for ref in _issues_of(g, result.issues)]
            if labels:
                lines += textwrap.wrap(
                    "issues: " + " ".join(labels), TABLE_WIDTH, initial_indent=indent, subsequent_indent=indent + "  "
                )
    if result.bad:
        lines += ["", f"Bad files ({len(result.bad)}):"]
        lines += [f"  {_with_issue(name, result.issues)}: {terminal_safe(reason)}" for name, reason in result.bad]
    return "\n".join(lines) + "\n"


def _issues_of(group: Group, issues: dict[str, IssueRef]) -> list[IssueRef]:
    """The issues a group's reports came from, each once, in the order of the group's members."""
    return list(dict.fromkeys(issues[name] for name in group.files if name in issues))


def _with_issue(name: str, issues: dict[str, IssueRef]) -> str:
    """An input's name, then its issue number and URL when it came from a list of reports."""
    parts = [name]
    ref = issues.get(name)
    if ref is not None:
        parts += [f"#{ref.number}"] if ref.number is not None else []
        parts += [ref.url] if ref.url else []
    return " ".join(terminal_safe(part) for part in parts)


def format_csv(result: TriageResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["count", "category", "signature", "example", "known_issue", "title", "issues", "urls"])
    for g in result.groups:
        refs = _issues_of(g, result.issues)
        numbers = " ".join(str(ref.number) for ref in refs if ref.number is not None)
        urls = " ".join(ref.url for ref in refs if ref.url)
        writer.writerow(
            [len(g.files)]
            + [
                csv_cell(value)
                for value in (g.category, g.signature, g.example, g.known_issue or "", g.title, numbers, urls)
            ]
        )
    return buffer.getvalue()


def csv_cell(value: Any) -> str:
    """A text cell that a spreadsheet shows as text: no control characters, never read as a formula."""
    text = terminal_safe(value)
    return "'" + text if text.startswith(_CSV_FORMULA_STARTS) else text
