"""Median wall times of named shell commands, run interleaved round by round after one uncounted warm-up.

    python benchmarks/interleaved.py --runs 5 torch_probe='python -c "import torch"' collect='vllm-bug collect -q'

Prints each command's median and runs, and each median's ratio to the first command's. A command that
exits non-zero is reported (exit code and the tail of its output) and still timed; the script then exits 1.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def run_once(command: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    result = subprocess.run(command, shell=True, capture_output=True, text=True, errors="replace")
    return time.monotonic() - started, result


def parse_named(items: list[str]) -> dict[str, str]:
    named: dict[str, str] = {}
    for item in items:
        name, sep, command = item.partition("=")
        if not sep or not name or not command:
            raise SystemExit(f"error: expected NAME=COMMAND, got {item!r}")
        named[name] = command
    return named


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("commands", nargs="+", metavar="NAME=COMMAND")
    args = parser.parse_args()
    commands = parse_named(args.commands)
    times: dict[str, list[float]] = {name: [] for name in commands}
    failed: set[str] = set()
    for round_number in range(args.runs + 1):
        for name, command in commands.items():
            elapsed, result = run_once(command)
            if result.returncode != 0 and name not in failed:
                failed.add(name)
                print(f"{name} exited {result.returncode}:\n{(result.stdout + result.stderr)[-2000:]}")
            if round_number:
                times[name].append(elapsed)
    first = next(iter(commands))
    print(f"median wall time over {args.runs} interleaved runs (after one warm-up round)")
    for name, runs in times.items():
        median = statistics.median(runs)
        ratio = median / statistics.median(times[first])
        print(f"  {name:<16} {median:7.3f} s  {ratio:5.2f}x {first}  (runs: {', '.join(f'{t:.2f}' for t in runs)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
