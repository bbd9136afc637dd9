"""`vllm-bug triage DIR|FILES...`: many bundles and reports at once, grouped by root-cause signature.

Inputs are analysed in worker processes, a chunk of files per task, or in this process when there are
few. Bad files (unreadable, refused, internal errors) are listed with a one-line reason and never stop
the run. Exit codes: 0 when at least one input was analysed; 3 when inputs were found but none could
be read; 2 when the paths name no input at all; 1 when the output file cannot be written.
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
    TriageResult,
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
from vllm_bug.errors import EXIT_UNREADABLE, UsageProblem

INPUT_SUFFIXES = {".zst", ".zip", ".md", ".txt", ".log", ".json", ".out", ".err", ".text", ".markdown"}
MAX_FILE_BYTES = 32 << 20
MAX_FILES = 1_000_000
IN_PROCESS_BELOW = 64  # fewer inputs than this are analysed without starting workers
_CSV_FORMULA_STARTS = ("=", "+", "-", "@")


def execute(paths: Iterable[str], fmt: str = "table", output: str | None = None, force: bool = False,
            jobs: int | None = None) -> Result:
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

def triage(paths: Iterable[str], jobs: int | None = None, progress: Callable[[int], None] | None = None,
           files: list[str] | None = None, bad: list[tuple[str, str]] | None = None) -> TriageResult:
    """Signatures of every input, grouped; each group described by a full analysis of its example."""
    if files is None:
        files, bad = expand_inputs(paths)
    bad = list(bad or [])
    jobs = jobs or os.cpu_count() or 1
    signed: list[tuple[str, str]] = []
    for path, signature, error in run_parallel(files, signatures_of, jobs, progress):
        if signature is None:
            bad.append((path, error or "unreadable"))
        else:
            signed.append((path, signature))
    groups = group_by_signature(signed)
    examples = {g.example: g for g in groups}
    for path, category, title, known in run_parallel(sorted(examples), describe_examples, jobs):
        group = examples[path]
        group.category, group.title, group.known_issue = category, title, known
    groups.sort(key=lambda g: (-len(g.files), g.signature))
    bad.sort()
    return TriageResult(groups=groups, bad=bad, analyzed=sum(len(g.files) for g in groups))


def signatures_of(paths: list[str]) -> list[tuple[str, str | None, str | None]]:
    return [signature_of(p) for p in paths]


def describe_examples(paths: list[str]) -> list[tuple[str, str, str, str | None]]:
    return [describe_example(p) for p in paths]


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_parallel(items: list[str], batch_fn: Callable[[list[str]], list], jobs: int,
                 progress: Callable[[int], None] | None = None) -> list:
    """batch_fn over chunks of items, in worker processes when it pays; results in no fixed order."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if not items:
        return []
    if jobs <= 1 or len(items) < IN_PROCESS_BELOW:
        out = []
        for chunk in _chunks(items, 32):
            out.extend(batch_fn(chunk))
            if progress:
                progress(len(chunk))
        return out
    size = max(8, min(256, len(items) // (jobs * 8) or 8))
    out = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(batch_fn, chunk): len(chunk) for chunk in _chunks(items, size)}
        for future in as_completed(futures):
            out.extend(future.result())
            if progress:
                progress(futures[future])
    return out


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
        writer.writerow([len(g.files)] + [csv_cell(value) for value in
                                          (g.category, g.signature, g.example, g.known_issue or "", g.title)])
    return buffer.getvalue()


def csv_cell(value: Any) -> str:
    """A text cell that a spreadsheet shows as text: no control characters, never read as a formula."""
    text = terminal_safe(value)
    return "'" + text if text.startswith(_CSV_FORMULA_STARTS) else text
