"""Per-megabyte cost of the text passes that every collect and analyze runs: redaction and fact extraction.

    python benchmarks/text_speed.py [--runs 5]

Prints the median seconds for a realistic 1 MiB vLLM worker log and for 1 MiB of real issue text
(../shared/corpus if present), and the ratio to a plain `str.splitlines()` pass over the same text,
so the figures compare across machines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from vllm_bug.analyzer.textfacts import facts_from_text
from vllm_bug.schema.redact import Redactor

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "real-issues-dev.jsonl"
MIB = 1 << 20


def worker_log() -> str:
    line = (
        "(VllmWorker rank={r} pid=1{r}) INFO 03-19 07:27:{s:02d} [gpu_model_runner.py:{i}] "
        "Loading weights shard {i} took 0.5 s\n"
    )
    return "".join(line.format(r=i % 2, s=i % 60, i=i) for i in range(12000))[:MIB]


def corpus_text() -> str | None:
    if not CORPUS.is_file():
        return None
    cases = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    joined = "\n".join(f"{c['title']}\n{c['error_text']}\n{c.get('env_text') or ''}" for c in cases)
    return (joined * (MIB // len(joined) + 1))[:MIB]


def median_seconds(func, text: str, runs: int) -> float:
    func(text)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    inputs = {"worker log": worker_log()}
    corpus = corpus_text()
    if corpus:
        inputs["issue text"] = corpus
    passes = {"redact": lambda t: Redactor(home="/home/someone").text(t), "facts": facts_from_text}
    for label, text in inputs.items():
        base = median_seconds(str.splitlines, text, args.runs)
        for name, func in passes.items():
            t = median_seconds(func, text, args.runs)
            print(f"{label:10} {name:6} {t * 1000:8.1f} ms per MiB   ({t / base:6.0f}x splitlines)")


if __name__ == "__main__":
    main()
