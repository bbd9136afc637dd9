"""Top-1 accuracy of `vllm-bug analyze` on a corpus of real issue reports, and a contradiction check.

    python benchmarks/corpus_accuracy.py [--corpus CORPUS.jsonl] [--heldout] [--split-by-date [YYYY-MM-DD]] [--unseen]
        [--unseen-file FILE.jsonl ...]

--corpus defaults to the shared dev corpus (../shared/corpus/real-issues-dev.jsonl); --heldout
measures tests/fixtures/heldout/cases.jsonl, real reports collected separately from that file.
--split-by-date takes the project's whole corpus (the dev copy in tests/fixtures/reports/ and the
held-out set, or the --corpus file) and measures twice: the reports filed before the date (the ones
to develop on) and those filed on or after it (the ones to judge by). Dates come from
benchmarks/report_dates.json.
--unseen scores benchmarks/unseen/cases.jsonl, real reports gathered apart from everything the rule authors read
(see benchmarks/unseen/README.md), with top-1, top-3, a confusion table and every miss with what the analyzer said.
--unseen-file scores another set in that format the same way (benchmarks/unseen/round2.jsonl is the second round);
given more than once, or with --unseen, each set is scored on its own, never pooled.

Each case's text is title + error_text + env_text, analysed as a pasted issue. A case counts as a hit
when the top diagnosis' category equals the labelled one (no diagnosis counts as `other`). The
contradiction check flags advice that disagrees with the facts the case states: a driver upgrade to a
version the reporter already has, a flag or env var their vLLM no longer has, or advice that was never
right (made-up variables, packages that do not exist, nvidia-smi --gpu-reset to kill processes).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "real-issues-dev.jsonl"
HELDOUT_CORPUS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "heldout" / "cases.jsonl"
DEV_COPY = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "reports" / "real-issues-dev.jsonl"
UNSEEN_CORPUS = Path(__file__).resolve().parent / "unseen" / "cases.jsonl"
UNSEEN_ROUND2 = Path(__file__).resolve().parent / "unseen" / "round2.jsonl"
REPORT_DATES = Path(__file__).resolve().parent / "report_dates.json"
DEFAULT_SPLIT = "2025-09-15"  # chosen before issue 10's work: between vLLM #23925 (2025-08-29) and #27043 (2025-10-16)
NEVER_RIGHT = (
    r"vllm-cu1\d\d",
    r"--gpu-reset",
    r"VLLM_INSTALL_PUNICA_KERNELS=",
    r"VLLM_USE_PRECOMPILED_KERNELS=",
    r"VLLM_DISABLE_CUDA_GRAPH=",
    r"--swap-space \d",
)


def case_text(case: dict) -> str:
    return "\n".join(case.get(k) or "" for k in ("title", "error_text", "env_text"))


def contradictions(case: dict, analysis) -> list[str]:
    from vllm_bug.analyzer import knowledge as k

    stated = case.get("facts") or {}
    problems = []
    version = _clean_version(stated.get("vllm"))
    for finding in analysis.diagnoses:
        for fix in finding.fixes:
            for pattern in NEVER_RIGHT:
                if re.search(pattern, fix):
                    problems.append(f"{finding.rule}: recommends {pattern!r}")
            if version:
                for table in (k.removed_flags(), k.REMOVED_ENV):
                    for entry in table:
                        gone = k.removed_in(table, entry.name, version)
                        recommends = re.search(rf"(?<![\w-]){re.escape(entry.name)}(?![\w-])", fix) and not re.match(
                            r"(remove|unset|drop)\b", fix
                        )
                        if gone and recommends:
                            problems.append(f"{finding.rule}: recommends {entry.name}, gone in vLLM {version}")
            driver = _clean_version(stated.get("driver"))
            m = re.search(r"driver >= ([\d.]+)", fix)
            if driver and m and k.at_least(driver, k.vt(m.group(1))):
                problems.append(f"{finding.rule}: asks for driver >= {m.group(1)}, the case has {driver}")
    return problems


def _clean_version(text) -> str | None:
    if not text:
        return None
    m = re.search(r"\d+\.\d+(?:\.\d+)?", str(text))
    return m.group(0) if m else None


def read_cases(path: Path | str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def report_dates(path: Path = REPORT_DATES) -> Callable[[str], date]:
    """The filing date of a case id ('owner/name#N'): vLLM's from its number between dated anchors, others as listed."""
    table = json.loads(path.read_text(encoding="utf-8"))
    anchors = sorted((a["number"], date.fromisoformat(a["created"]).toordinal()) for a in table["vllm_anchors"])
    listed = {case_id: date.fromisoformat(row["created"]) for case_id, row in table["reports"].items()}

    def created(case_id: str) -> date:
        if case_id in listed:
            return listed[case_id]
        repo, _, number = case_id.partition("#")
        if repo != "vllm-project/vllm" or not number.isdigit():
            raise KeyError(f"{case_id}: no date in {path.name}; add it there")
        return date.fromordinal(round(_interpolate(anchors, int(number))))

    return created


def _interpolate(points: list[tuple[int, int]], x: int) -> float:
    """Linear through the two nearest points (the outermost two beyond either end): monotonic in x."""
    index = next((i for i, (px, _) in enumerate(points) if px >= x), len(points) - 1)
    index = min(max(index, 1), len(points) - 1)
    (x0, y0), (x1, y1) = points[index - 1], points[index]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


class Measured:
    """Top-1 results of one set of cases (a plain class: tests load this script without registering it as a module,
    which dataclasses need)."""

    def __init__(self, cases: int) -> None:
        self.cases = cases
        self.per_category: dict[str, list[bool]] = defaultdict(list)
        self.misses: list[tuple[str, str, str, str]] = []
        self.contradictions: list[tuple[str, str]] = []
        self.seconds = 0.0

    @property
    def hits(self) -> int:
        return sum(sum(results) for results in self.per_category.values())


def measure(cases: list[dict]) -> Measured:
    from vllm_bug.analyzer.analyze import analyze_text

    out = Measured(cases=len(cases))
    start = time.perf_counter()
    for case in cases:
        analysis = analyze_text(case_text(case))
        got = analysis.category
        out.per_category[case["category"]].append(got == case["category"])
        if got != case["category"]:
            top = analysis.diagnoses[0].rule if analysis.diagnoses else "-"
            out.misses.append((case["id"], case["category"], got, top))
        out.contradictions.extend((case["id"], problem) for problem in contradictions(case, analysis))
    out.seconds = time.perf_counter() - start
    return out


def print_measured(label: str, result: Measured) -> None:
    per_case = 1000 * result.seconds / max(1, result.cases)
    print(f"{label} ({result.cases} cases, {result.seconds:.2f} s, {per_case:.1f} ms/case)")
    print(f"{'category':24} {'hits':>5} {'cases':>5} {'top-1':>7}")
    for category in sorted(result.per_category):
        results = result.per_category[category]
        print(f"{category:24} {sum(results):5d} {len(results):5d} {100 * sum(results) / len(results):6.1f}%")
    print(f"{'overall':24} {result.hits:5d} {result.cases:5d} {100 * result.hits / max(1, result.cases):6.1f}%")
    got_counts = Counter(miss[2] for miss in result.misses)
    print(f"\nmisses ({len(result.misses)}):" + ("" if result.misses else " none"))
    for case_id, expected, got, rule in result.misses:
        print(f"  {case_id}: expected {expected}, got {got} ({rule})")
    if got_counts:
        print("  most confused with: " + ", ".join(f"{c} x{n}" for c, n in got_counts.most_common(3)))
    print(
        f"\ncontradictions with stated facts ({len(result.contradictions)}):"
        + ("" if result.contradictions else " none")
    )
    for case_id, problem in result.contradictions:
        print(f"  {case_id}: {problem}")


class Ranked:
    """Top-1 and top-3 results of one set, case by case: (id, expected, top categories, top rule, label basis)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, list[str], str, str]] = []
        self.contradictions: list[tuple[str, str]] = []
        self.seconds = 0.0

    def top1(self, rows=None) -> int:
        return sum(expected == tops[0] for _, expected, tops, _, _ in (self.rows if rows is None else rows))

    def top3(self, rows=None) -> int:
        return sum(expected in tops[:3] for _, expected, tops, _, _ in (self.rows if rows is None else rows))


def top_categories(analysis) -> list[str]:
    """The categories of the first three diagnoses, most likely first; no diagnosis reads as `other`."""
    return [finding.category for finding in analysis.diagnoses[:3]] or ["other"]


def rank(cases: list[dict]) -> Ranked:
    from vllm_bug.analyzer.analyze import analyze_text

    out = Ranked()
    start = time.perf_counter()
    for case in cases:
        analysis = analyze_text(case_text(case))
        rule = analysis.diagnoses[0].rule if analysis.diagnoses else "-"
        basis = case.get("label_basis") or "-"
        out.rows.append((case["id"], case["category"], top_categories(analysis), rule, basis))
        out.contradictions.extend((case["id"], problem) for problem in contradictions(case, analysis))
    out.seconds = time.perf_counter() - start
    return out


def _share(part: int, whole: int) -> str:
    return f"{part:3d}/{whole:<3d} {100 * part / max(1, whole):5.1f}%"


def print_ranked(label: str, result: Ranked) -> None:
    rows = result.rows
    print(f"{label} ({len(rows)} cases, {result.seconds:.2f} s)")
    print(f"top-1 {_share(result.top1(), len(rows))}   top-3 {_share(result.top3(), len(rows))}\n")
    print(f"{'expected category':24} {'top-1':>14} {'top-3':>14}")
    for category in sorted({expected for _, expected, _, _, _ in rows}):
        mine = [row for row in rows if row[1] == category]
        print(f"{category:24} {_share(result.top1(mine), len(mine)):>14} {_share(result.top3(mine), len(mine)):>14}")
    bases = sorted({row[4] for row in rows})
    if bases != ["-"]:
        print(f"\n{'label basis':24} {'top-1':>14}")
        for basis in bases:
            mine = [row for row in rows if row[4] == basis]
            print(f"{basis:24} {_share(result.top1(mine), len(mine)):>14}")
    confusion = Counter((expected, tops[0]) for _, expected, tops, _, _ in rows if expected != tops[0])
    print("\nconfusion (expected -> top-1 given, misses only):" + ("" if confusion else " none"))
    for (expected, got), count in sorted(confusion.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {expected:24} -> {got:24} x{count}")
    misses = [row for row in rows if row[1] != row[2][0]]
    print(f"\nmisses ({len(misses)}):" + ("" if misses else " none"))
    for case_id, expected, tops, rule, _ in misses:
        print(f"  {case_id}: expected {expected}, got {tops[0]} ({rule}); top-3 {', '.join(tops)}")
    print(
        f"\ncontradictions with stated facts ({len(result.contradictions)}):"
        + ("" if result.contradictions else " none")
    )
    for case_id, problem in result.contradictions:
        print(f"  {case_id}: {problem}")


def split_by_date(cases: list[dict], cut: date, created: Callable[[str], date]) -> tuple[list[dict], list[dict]]:
    """(filed before cut, filed on or after it), each in its input order."""
    older = [case for case in cases if created(case["id"]) < cut]
    newer = [case for case in cases if created(case["id"]) >= cut]
    return older, newer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_arg", nargs="?", metavar="CORPUS", help="same as --corpus")
    parser.add_argument("--corpus", help=f"a JSONL corpus (default {DEFAULT_CORPUS})")
    parser.add_argument("--heldout", action="store_true", help=f"use {HELDOUT_CORPUS}")
    parser.add_argument(
        "--unseen", action="store_true", help=f"score {UNSEEN_CORPUS} with top-1, top-3 and a confusion table"
    )
    parser.add_argument(
        "--split-by-date",
        nargs="?",
        const=DEFAULT_SPLIT,
        metavar="YYYY-MM-DD",
        help=f"measure reports filed before and from the date apart (default {DEFAULT_SPLIT})",
    )
    parser.add_argument(
        "--unseen-file",
        action="append",
        default=[],
        metavar="FILE",
        help=f"score a set in the unseen format the way --unseen does (e.g. {UNSEEN_ROUND2}); repeatable",
    )
    args = parser.parse_args(argv)
    unseen_sets = ([UNSEEN_CORPUS] if args.unseen else []) + [Path(name) for name in args.unseen_file]
    if unseen_sets:
        missing = [str(path) for path in unseen_sets if not path.is_file()]
        if missing:
            print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
            return 2
        for index, path in enumerate(unseen_sets):
            try:
                cases = read_cases(path)
            except ValueError as exc:
                print(f"error: {path}: not JSON lines ({exc})", file=sys.stderr)
                return 2
            if index:
                print()
            print_ranked(f"corpus: {path}", rank(cases))
        return 0
    if args.split_by_date is not None:
        try:
            cut = date.fromisoformat(args.split_by_date)
        except ValueError:
            parser.error(f"--split-by-date: not a date: {args.split_by_date!r} (YYYY-MM-DD)")
        paths = [args.corpus or args.corpus_arg] if (args.corpus or args.corpus_arg) else [DEV_COPY, HELDOUT_CORPUS]
        cases = [case for path in paths for case in read_cases(path)]
        try:
            older, newer = split_by_date(cases, cut, report_dates())
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 2
        names = " + ".join(str(path) for path in paths)
        print_measured(f"filed before {cut} (develop on these): {names}", measure(older))
        print()
        print_measured(f"filed on or after {cut} (judge by these): {names}", measure(newer))
        return 0
    args.corpus = args.corpus or args.corpus_arg or str(HELDOUT_CORPUS if args.heldout else DEFAULT_CORPUS)
    print_measured(f"corpus: {args.corpus}", measure(read_cases(args.corpus)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
