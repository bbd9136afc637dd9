"""How fast `vllm-bug triage` is: 10,000 generated inputs, reports per second against the 500/s target.

Inputs are the development corpus' reports (tests/fixtures/reports/real-issues-dev.jsonl) with what
varies between machines changed at random (pids, ranks, timestamps, sizes, GPU indices, install
paths, line numbers), plus small bundles (one in ten) whose log carries one of those reports.

    python benchmarks/triage_speed.py [--count 10000] [--jobs N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

TARGET_PER_SECOND = 500
CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "reports" / "real-issues-dev.jsonl"
PREFIXES = [
    "/usr/local/lib/python3.10/dist-packages/",
    "/opt/venv/lib/python3.12/site-packages/",
    "/home/user/miniconda3/envs/x/lib/python3.11/site-packages/",
    "/workspace/src/",
]


def corpus_texts() -> list[str]:
    with open(CORPUS, encoding="utf-8") as fh:
        cases = [json.loads(line) for line in fh]
    return [c["title"] + "\n" + c["error_text"] + "\n" + c["env_text"] for c in cases]


def vary(text: str, rng: random.Random) -> str:
    prefix = rng.choice(PREFIXES)
    text = re.sub(r"/\S*?/(?:site|dist)-packages/", prefix, text)
    text = re.sub(r"pid=\d+", lambda m: f"pid={rng.randint(100, 99999)}", text)
    text = re.sub(r"rank=\d+", lambda m: f"rank={rng.randint(0, 7)}", text)
    text = re.sub(r"line \d+", lambda m: f"line {rng.randint(1, 3000)}", text)
    text = re.sub(
        r"\d\d:\d\d:\d\d", lambda m: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}", text
    )
    text = re.sub(r"\d+\.\d\d (GiB|MiB)", lambda m: f"{rng.uniform(0.1, 80):.2f} {m.group(1)}", text)
    text = re.sub(r"GPU \d\b", lambda m: f"GPU {rng.randint(0, 7)}", text)
    return text


def make_bundle(log_text: str) -> bytes:
    from vllm_bug.schema.bundle import encode, make_envelope

    payload = {
        "host": {},
        "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}],
        "driver": {"version": "570.86.15", "cuda_version": "12.8"},
        "cuda_toolkit": {},
        "torch": {"version": "2.8.0+cu128", "cuda": "12.8"},
        "vllm": {"version": "0.11.0"},
        "packages": {},
        "env": {},
        "nvidia_smi": {},
        "manifest": {"probes": []},
        "redactions": [],
        "log": {"source": "file", "name": "vllm.log", "truncated": False, "text": log_text},
    }
    return encode(make_envelope(payload))


def generate(directory: Path, count: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    texts = corpus_texts()
    bundle_sources = [make_bundle(vary(t, rng)) for t in texts[:20]]  # encoding is slow; vary the pool
    for i in range(count):
        sub = directory / f"batch{i % 20:02d}"
        sub.mkdir(exist_ok=True)
        if i % 10 == 9:
            (sub / f"report{i:05d}.zst").write_bytes(bundle_sources[i % len(bundle_sources)])
        else:
            (sub / f"report{i:05d}.log").write_text(vary(texts[i % len(texts)], rng), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it")
    args = parser.parse_args(argv)

    from vllm_bug.commands.triage import expand_inputs, triage

    directory = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vllm-bug-triage-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        generate(directory, args.count)
        print(
            f"generated {args.count} inputs in {time.perf_counter() - started:.1f} s under {directory}", file=sys.stderr
        )
        started = time.perf_counter()
        files, bad = expand_inputs([str(directory)])
        result = triage([], jobs=args.jobs, files=files, bad=bad)
        seconds = time.perf_counter() - started
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    total = result.analyzed + len(result.bad)
    rate = total / seconds
    print(f"inputs: {total}  analysed: {result.analyzed}  bad: {len(result.bad)}  groups: {len(result.groups)}")
    print(f"jobs: {args.jobs}  cpus: {os.cpu_count()}  time: {seconds:.2f} s")
    print(f"reports/second: {rate:.0f}  ({rate / TARGET_PER_SECOND:.2f}x the {TARGET_PER_SECOND}/s target)")
    return 0 if rate >= TARGET_PER_SECOND else 1


if __name__ == "__main__":
    sys.exit(main())
