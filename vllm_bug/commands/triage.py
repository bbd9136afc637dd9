"""`vllm-bug triage DIR|FILES...`: many bundles and reports at once, grouped by root-cause signature.

Every input is analysed in a worker process, within FILE_SECONDS and FILE_MEMORY_BYTES; an input that
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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from vllm_bug.analyzer.triage import (
    Group,
    TriageResult,
    analysis_failed,
    describe_example,
    group_by_signature,
    signature_of,
)
from vllm_bug.commands import Result
from vllm_bug.commands.output import (
    destination,
    json_text,
    refuse_inputs,
    terminal_safe,
)
from vllm_bug.commands.workers import Failure, Limits, map_isolated
from vllm_bug.errors import EXIT_UNREADABLE, UsageProblem

INPUT_SUFFIXES = {".zst", ".zip", ".md", ".txt", ".log", ".json", ".out", ".err", ".text", ".markdown"}
MAX_FILE_BYTES = 32 << 20
MAX_FILES = 1_000_000
FILE_SECONDS = 60.0
FILE_MEMORY_BYTES = 1 << 30  # address space of one worker, its own code included (about 30 MiB)
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
    if sys.stderr.isatty() and files:
        import click

        with click.progressbar(length=len(files), label="analysing", file=sys.stderr) as bar:
            result = triage([], jobs, bar.update, files=files, bad=bad)
    else:
        result = triage([], jobs, files=files, bad=bad)
    warnings = [f"bad file {terminal_safe(path)}: {terminal_safe(reason)}" for path, reason in result.bad]
    outcome = Result(text=render(result, fmt), destination=target, warnings=warnings if fmt != "table" else [])
    if result.analyzed == 0:
        outcome.exit_code = EXIT_UNREADABLE
        outcome.error = f"none of the {len(result.bad)} input(s) could be analysed"
    return outcome


# -- finding the inputs --------------------------------------------------------------------


def expand_inputs(paths: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files to analyse (directories walked, only input-like names) and paths refused up front."""
    files: list[str] = []
    bad: list[tuple[str, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
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
    bad = list(bad or [])
    jobs = jobs or os.cpu_count() or 1
    limits = Limits(FILE_SECONDS, FILE_MEMORY_BYTES)
    _import_analysis()
    signed: list[tuple[str, str]] = []
    for path, outcome in zip(files, map_isolated(signature_of, files, jobs, limits, progress), strict=True):
        if isinstance(outcome, Failure):
            bad.append((path, outcome.reason))
        elif outcome[1] is None:
            bad.append((path, outcome[2] or "unreadable"))
        else:
            signed.append((path, outcome[1]))
    groups = group_by_signature(signed)
    _describe(groups, jobs, limits)
    groups.sort(key=lambda g: (-len(g.files), g.signature))
    bad.sort()
    return TriageResult(groups=groups, bad=bad, analyzed=sum(len(g.files) for g in groups))


def _describe(groups: list[Group], jobs: int, limits: Limits) -> None:
    examples = {g.example: g for g in groups}
    paths = sorted(examples)
    for path, outcome in zip(paths, map_isolated(describe_example, paths, jobs, limits), strict=True):
        group = examples[path]
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
        lines.append(f"{'COUNT':>6}  {'CATEGORY':<{width}}  SIGNATURE / EXAMPLE")
        for g in result.groups:
            lines.append(f"{len(g.files):>6}  {g.category:<{width}}  {terminal_safe(g.signature)}")
            detail = f"example: {terminal_safe(g.example)}"
            if g.known_issue:
                detail += f"  (likely {terminal_safe(g.known_issue)})"
            lines.append(f"{'':>6}  {'':<{width}}  {detail}")
    if result.bad:
        lines += ["", f"Bad files ({len(result.bad)}):"]
        lines += [f"  {terminal_safe(path)}: {terminal_safe(reason)}" for path, reason in result.bad]
    return "\n".join(lines) + "\n"


def format_csv(result: TriageResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["count", "category", "signature", "example", "known_issue", "title"])
    for g in result.groups:
        writer.writerow(
            [len(g.files)]
            + [csv_cell(value) for value in (g.category, g.signature, g.example, g.known_issue or "", g.title)]
        )
    return buffer.getvalue()


def csv_cell(value: Any) -> str:
    """A text cell that a spreadsheet shows as text: no control characters, never read as a formula."""
    text = terminal_safe(value)
    return "'" + text if text.startswith(_CSV_FORMULA_STARTS) else text
