"""Top-1 accuracy of `vllm-bug analyze` on a corpus of real issue reports, and a contradiction check.

    python benchmarks/corpus_accuracy.py [--corpus CORPUS.jsonl] [--heldout]

--corpus defaults to the shared dev corpus (../shared/corpus/real-issues-dev.jsonl); --heldout
measures tests/fixtures/heldout/cases.jsonl, real reports collected separately from that file.

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
from pathlib import Path

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "real-issues-dev.jsonl"
HELDOUT_CORPUS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "heldout" / "cases.jsonl"
NEVER_RIGHT = (r"vllm-cu1\d\d", r"--gpu-reset", r"VLLM_INSTALL_PUNICA_KERNELS=", r"VLLM_USE_PRECOMPILED_KERNELS=",
               r"VLLM_DISABLE_CUDA_GRAPH=", r"--swap-space \d")


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
                for table in (k.REMOVED_FLAGS, k.REMOVED_ENV):
                    for entry in table:
                        gone = k.removed_in(table, entry.name, version)
                        recommends = re.search(rf"(?<![\w-]){re.escape(entry.name)}(?![\w-])", fix) and not re.match(
                            r"(remove|unset|drop)\b", fix)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_arg", nargs="?", metavar="CORPUS", help="same as --corpus")
    parser.add_argument("--corpus", help=f"a JSONL corpus (default {DEFAULT_CORPUS})")
    parser.add_argument("--heldout", action="store_true", help=f"use {HELDOUT_CORPUS}")
    args = parser.parse_args(argv)
    args.corpus = args.corpus or args.corpus_arg or str(HELDOUT_CORPUS if args.heldout else DEFAULT_CORPUS)
    from vllm_bug.analyzer.analyze import analyze_text

    cases = [json.loads(line) for line in Path(args.corpus).read_text(encoding="utf-8").splitlines() if line.strip()]
    per_category: dict[str, list[bool]] = defaultdict(list)
    misses, contra = [], []
    start = time.perf_counter()
    for case in cases:
        analysis = analyze_text(case_text(case))
        got = analysis.category
        per_category[case["category"]].append(got == case["category"])
        if got != case["category"]:
            top = analysis.diagnoses[0].rule if analysis.diagnoses else "-"
            misses.append((case["id"], case["category"], got, top))
        for problem in contradictions(case, analysis):
            contra.append((case["id"], problem))
    elapsed = time.perf_counter() - start

    hits = sum(sum(v) for v in per_category.values())
    print(f"corpus: {args.corpus} ({len(cases)} cases, {elapsed:.2f} s, {1000 * elapsed / max(1, len(cases)):.1f} ms/case)")
    print(f"{'category':24} {'hits':>5} {'cases':>5} {'top-1':>7}")
    for category in sorted(per_category):
        results = per_category[category]
        print(f"{category:24} {sum(results):5d} {len(results):5d} {100 * sum(results) / len(results):6.1f}%")
    print(f"{'overall':24} {hits:5d} {len(cases):5d} {100 * hits / max(1, len(cases)):6.1f}%")
    got_counts = Counter(m[2] for m in misses)
    print(f"\nmisses ({len(misses)}):" + ("" if misses else " none"))
    for case_id, expected, got, rule in misses:
        print(f"  {case_id}: expected {expected}, got {got} ({rule})")
    if got_counts:
        print("  most confused with: " + ", ".join(f"{c} x{n}" for c, n in got_counts.most_common(3)))
    print(f"\ncontradictions with stated facts ({len(contra)}):" + ("" if contra else " none"))
    for case_id, problem in contra:
        print(f"  {case_id}: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
