"""`vllm-bug triage DIR|FILES...`: many bundles and reports at once, grouped by root-cause signature.

Two passes keep the per-input work light:
1. every input is loaded, turned into facts and given its signature (no rules, no rendering), in
   worker processes, a chunk of files per task;
2. the rules run once per group, on the group's example (its first file in path order); the group's
   category and known issue are the example's. Members of one group share the signature, i.e. the
   same exception, qualifier and in-app frames.

Bad files (unreadable, refused, internal errors) are listed with a one-line reason and never stop
the run. Exit codes: 0 when at least one input was analysed; 3 when inputs were found but none could
be read; 2 when the paths name no input at all; 1 when the output file cannot be written.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from vllm_bug.errors import EXIT_OK, UnreadableInput, UsageProblem, VllmBugError

INPUT_SUFFIXES = {".zst", ".zip", ".md", ".txt", ".log", ".json", ".out", ".err", ".text", ".markdown"}
MAX_FILE_BYTES = 32 << 20
MAX_FILES = 1_000_000
IN_PROCESS_BELOW = 64  # fewer inputs than this are analysed without starting workers


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
        return {"count": len(self.files), "category": self.category, "signature": self.signature,
                "title": self.title, "known_issue": self.known_issue, "example": self.example, "files": self.files}


@dataclass
class TriageResult:
    groups: list[Group]
    bad: list[tuple[str, str]]  # (path, reason)
    analyzed: int

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": 1, "inputs": self.analyzed + len(self.bad), "analyzed": self.analyzed,
                "groups": [g.to_json() for g in self.groups],
                "bad_files": [{"path": p, "reason": r} for p, r in self.bad]}


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


# -- per input (runs in workers) -----------------------------------------------------------

def signature_of(path: str) -> tuple[str, str | None, str | None]:
    """(path, signature, None) or (path, None, one-line reason)."""
    try:
        from vllm_bug.analyzer.build import build_facts
        from vllm_bug.analyzer.load import load_input
        from vllm_bug.analyzer.signature import compute_signature

        facts = build_facts(load_input(path))
        return path, compute_signature(facts)[0], None
    except VllmBugError as exc:
        return path, None, _one_line(str(exc))
    except RecursionError:
        return path, None, "refused: nested too deeply"
    except Exception as exc:  # a bug in vllm-bug must not stop the whole triage
        return path, None, _one_line(f"internal error: {type(exc).__name__}: {exc}")


def signatures_of(paths: list[str]) -> list[tuple[str, str | None, str | None]]:
    return [signature_of(p) for p in paths]


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
    except Exception as exc:
        return path, "other", _one_line(f"(analysis failed: {type(exc).__name__}: {exc})"), None


def describe_examples(paths: list[str]) -> list[tuple[str, str, str, str | None]]:
    return [describe_example(p) for p in paths]


def _one_line(text: str, limit: int = 300) -> str:
    s = " ".join(text.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


# -- running -------------------------------------------------------------------------------

def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_parallel(items: list[str], batch_fn: Callable[[list[str]], list], jobs: int,
                 progress: Callable[[int], None] | None = None) -> list:
    """batch_fn over chunks of items, in worker processes when it pays; results in no fixed order."""
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


def triage(paths: Iterable[str], jobs: int | None = None, progress: Callable[[int], None] | None = None,
           files: list[str] | None = None, bad: list[tuple[str, str]] | None = None) -> TriageResult:
    if files is None:
        files, bad = expand_inputs(paths)
    bad = list(bad or [])
    jobs = jobs or os.cpu_count() or 1
    by_signature: dict[str, list[str]] = {}
    for path, signature, error in run_parallel(files, signatures_of, jobs, progress):
        if signature is None:
            bad.append((path, error or "unreadable"))
        else:
            by_signature.setdefault(signature, []).append(path)
    groups = [Group(signature=s, files=sorted(members)) for s, members in by_signature.items()]
    examples = {g.example: g for g in groups}
    for path, category, title, known in run_parallel(sorted(examples), describe_examples, jobs):
        group = examples[path]
        group.category, group.title, group.known_issue = category, title, known
    groups.sort(key=lambda g: (-len(g.files), g.signature))
    bad.sort()
    return TriageResult(groups=groups, bad=bad, analyzed=sum(len(g.files) for g in groups))


# -- output --------------------------------------------------------------------------------

def format_table(result: TriageResult) -> str:
    lines = [f"{result.analyzed} analysed, {len(result.bad)} bad, {len(result.groups)} groups", ""]
    if result.groups:
        width = max(5, max(len(g.category) for g in result.groups))
        lines.append(f"{'COUNT':>6}  {'CATEGORY':<{width}}  SIGNATURE / EXAMPLE")
        for g in result.groups:
            lines.append(f"{len(g.files):>6}  {g.category:<{width}}  {g.signature}")
            detail = f"example: {g.example}"
            if g.known_issue:
                detail += f"  (likely {g.known_issue})"
            lines.append(f"{'':>6}  {'':<{width}}  {detail}")
    if result.bad:
        lines += ["", f"Bad files ({len(result.bad)}):"]
        lines += [f"  {path}: {reason}" for path, reason in result.bad]
    return "\n".join(lines) + "\n"


def format_csv(result: TriageResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["count", "category", "signature", "example", "known_issue", "title"])
    for g in result.groups:
        writer.writerow([len(g.files), g.category, g.signature, g.example, g.known_issue or "", g.title])
    return buffer.getvalue()


def render(result: TriageResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return format_csv(result)
    return format_table(result)


def _refuse_output_over_an_input(output: str, files: list[str]) -> None:
    try:
        target = os.stat(output)
    except OSError:
        return
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            raise VllmBugError(f"refusing to write the result over the input {path}")


def triage_command(paths, fmt: str = "table", output: str | None = None, force: bool = False,
                   jobs: int | None = None) -> int:
    import click

    if output and os.path.lexists(output) and not force:
        raise VllmBugError(f"{output} already exists; pass --force to overwrite it")
    files, bad = expand_inputs(paths)
    if output:
        _refuse_output_over_an_input(output, files)
    if not files and not bad:
        raise UsageProblem("no inputs found (looked for " + ", ".join(sorted(INPUT_SUFFIXES)) + " files)")
    if sys.stderr.isatty() and files:
        with click.progressbar(length=len(files), label="analysing", file=sys.stderr) as bar:
            result = triage(paths, jobs, bar.update, files=files, bad=bad)
    else:
        result = triage(paths, jobs, files=files, bad=bad)
    text = render(result, fmt)
    if output:
        from vllm_bug.schema.bundle import write_bytes_exclusive

        write_bytes_exclusive(text.encode("utf-8"), output, force=force)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if fmt != "table" and result.bad:
        print(f"vllm-bug: {len(result.bad)} bad file(s):", file=sys.stderr)
        for path, reason in result.bad:
            print(f"  {path}: {reason}", file=sys.stderr)
    if result.analyzed == 0:
        raise UnreadableInput(f"none of the {len(result.bad)} input(s) could be analysed")
    return EXIT_OK
