"""Worst inputs for every text pattern family, each next to a plain log of the same size.

    python benchmarks/redact_worst.py [--size-mib 8] [--families assignment,url] [--redact-only]

For each family (the redactor's rules: private keys, lists, NAME=value, flags, URLs, headers,
token shapes, ... plus the analyzer's own text passes on the same inputs) the script builds the
input that costs that family most per byte, writes it to a file and runs `vllm-bug analyze FILE
--format json` on it in a fresh process, beside a plain vLLM log of the same size (a worker log
mixed with real issue text, which holds the usual share of trigger words). It prints, per family:

  redact ms/MiB   the redactor alone on the input, in this process (CPU time)
  analyze cpu s   CPU time of `vllm-bug analyze` on it (a subprocess: load, redact, facts, render), the
                  least of --runs runs: CPU time, because other jobs on a shared machine change wall time
  ratio           analyze CPU time / analyze CPU time of the plain log   (target: under 3)
  peak MiB        the subprocess's peak resident memory, and its ratio to the plain log's
  lines           how many lines the input has, against the plain log
  ratio to as many plain lines
                  for an input of more than twice the plain log's lines: analyze CPU time against a
                  plain log of the same size and the same number of lines (no trigger word). The
                  analyzer's own passes cost per line, so a family whose worst input is made of very
                  short lines costs more than 3x a plain log even where redaction adds little.

The exit status is 2 when a family's ratio to the plain log reaches 3, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20
TARGET = 3.0
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "reports" / "real-issues-dev.jsonl"


def repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def plain_log(size: int) -> str:
    """A vLLM worker log interleaved with real issue text (tracebacks, env dumps, commands)."""
    worker = "".join(
        f"(VllmWorker rank={i % 2} pid=1{i % 7}) INFO 03-19 07:27:{i % 60:02d} [gpu_model_runner.py:{i}] "
        f"Loading weights shard {i} took 0.5 s\n"
        for i in range(2000)
    )
    issues = ""
    if FIXTURES.is_file():
        cases = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]
        issues = "\n".join(f"{c.get('title', '')}\n{c.get('error_text', '')}\n{c.get('env_text') or ''}" for c in cases)
    return repeat(worker + issues, size)


# family -> function(size) -> the worst input found for it
FAMILIES = {
    # not a pattern family: a plain log of 20-byte lines, to tell the analyzer's cost per line from the redactor's
    "control_short_lines": lambda n: repeat("status: running ok\n", n),
    # private keys: a BEGIN without END (used to rescan to the end for each), ENDs without BEGIN
    "private_key_begin": lambda n: repeat("-----BEGIN PRIVATE KEY-----\nMIIE!\n", n),
    "private_key_end": lambda n: repeat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n", n),
    "pgp_block": lambda n: repeat("-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: x\n\nlQOYBF\n", n),
    # a logged list under a secret name that never closes (used to take 300 bytes per input byte)
    "list": lambda n: "RuntimeError: x\n'api_key': [" + repeat("'a', ", n - 30),
    "list_many": lambda n: repeat("'api_key': ['a', 'b', 'c'] ", n),
    # NAME=value and NAME: value
    "assignment": lambda n: repeat("token=", n),
    "assignment_spaced": lambda n: repeat("HF_TOKEN = ", n),
    "assignment_declined": lambda n: repeat("tokenizer=x ", n),
    "yaml_line": lambda n: repeat("password: hunter2 x\n", n),
    "yaml_midline": lambda n: repeat("a_key: b: ", n),
    "quoted_key": lambda n: repeat("'a_token': 'x', ", n),
    "quoted_unclosed": lambda n: repeat("'a_token': '", n),
    # command-line flags
    "flag": lambda n: repeat("--token a ", n),
    "flag_many_values": lambda n: repeat("--api-key K1 K2 K3 K4 K5 K6 K7 K8 K9 K10 K11 K12 K13 K14 K15 K16 K17 ", n),
    "flag_declined": lambda n: repeat("--tokenizer-mode x ", n),
    "curl_user": lambda n: repeat("curl -u bob:pw1 ", n),
    # URLs and headers
    "url": lambda n: repeat("http://a:b\n", n),
    "url_token": lambda n: repeat("https://ab12cd34ef56gh78ij90@h/ ", n),
    "url_open": lambda n: repeat("://" + "a" * 250 + ":", n),
    "url_query_sig": lambda n: repeat("https://x.blob.core.windows.net/c?sv=1&sig=abc%2Bdef ", n),
    "bearer": lambda n: repeat("Bearer 12345678 ", n),
    "auth_header": lambda n: repeat("Authorization: ", n),
    "cookie": lambda n: repeat("Cookie: a=b\n", n),
    # token shapes: prefixes that almost match, and real-looking tokens
    "shape_prefixes": lambda n: repeat("hf_" + "a" * 29 + " sk-" + "a" * 19 + " ghp_ glpat- xoxb- AKIA eyJ ", n),
    "shape_tokens": lambda n: repeat("hf_" + "Ab1" * 12 + " ", n),
    "jwt_partial": lambda n: repeat("eyJ" + "A" * 20 + ".eyJ" + "A" * 20 + "!", n),
    "discord_like": lambda n: repeat("M" + "a" * 23 + ".abcdef!", n),
    "wandb": lambda n: repeat("wandb " + "x" * 250 + "\n", n),
    "hex_runs": lambda n: repeat("AC" + "0" * 31 + " ", n),
    # home paths, disguised tokens, everything at once
    "home_paths": lambda n: repeat("/home/alice/x /home/bob/y ", n),
    "zero_width": lambda n: repeat("hf_\u200b" + "a" * 34 + " token\u200b=x ", n),
    "full_width": lambda n: repeat("ｈｆ＿" + "ａ" * 34 + " ", n),
    "hint_every_line": lambda n: repeat(
        "INFO [engine.py:1] tokenizer=mistral key_cache=fp8 auth=ok session=3 url=http://h:80/x\n", n
    ),
    "long_line_mixed": lambda n: repeat("x=1 token=abc 'key': 'v' --auth z http://u:p@h ", n),
}


def redact_ms_per_mib(text: str) -> float:
    from vllm_bug.schema.redact import Redactor

    start = time.process_time()
    Redactor(home="/home/alice").text(text)
    return (time.process_time() - start) * 1000 / (len(text.encode("utf-8")) / MIB)


# Runs a command and prints its wall time and peak memory. It is a fresh, small process: a child
# forked straight from this one would count this process's own (large) memory as its peak.
_LAUNCHER = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps([cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)]))
"""


def run_analyze(path: Path, runs: int) -> tuple[float, float, int]:
    """(CPU seconds, peak RSS MiB, exit code) of `vllm-bug analyze PATH --format json`: the least CPU time
    of `runs` runs (CPU time, not wall time: other jobs on a shared machine change the second, not the first)."""
    command = [sys.executable, "-m", "vllm_bug", "analyze", str(path), "--format", "json"]
    best = None
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], capture_output=True, text=True, check=True)
        result = tuple(json.loads(out.stdout))
        best = result if best is None or result[0] < best[0] else best
    assert best is not None
    return best  # type: ignore[return-value]


def plain_lines_like(text: str) -> str:
    """A plain log with as many lines as `text` and its size: no trigger word, no secret."""
    lines = max(1, text.count("\n"))
    width = max(2, len(text) // lines)
    return repeat(("status ok " * (width // 10 + 1))[: width - 1] + "\n", len(text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=float, default=8.0)
    parser.add_argument("--families", help="comma-separated subset of: " + ", ".join(FAMILIES))
    parser.add_argument("--redact-only", action="store_true", help="skip the analyze subprocesses")
    parser.add_argument("--runs", type=int, default=2, help="analyze runs per input; the least CPU time counts")
    args = parser.parse_args()
    size = int(args.size_mib * MIB)
    names = args.families.split(",") if args.families else list(FAMILIES)
    worst = (0.0, "")
    with tempfile.TemporaryDirectory() as tmp:
        plain = plain_log(size)
        base_ms = redact_ms_per_mib(plain)
        base = None if args.redact_only else analyze_text(Path(tmp), "plain", plain, args.runs)
        head = f"{'family':22} {'redact ms/MiB':>13} {'analyze cpu s':>13} {'ratio':>6} {'peak MiB':>9} {'ratio':>6}"
        print(head + f" {'lines':>7} {'ratio to as many plain lines':>29}")
        print(
            f"{'plain log':22} {base_ms:13.0f}"
            + ("" if base is None else f" {base[0]:13.2f} {1:6.2f} {base[1]:9.0f} {1:6.2f}")
        )
        plain_lines = plain.count("\n")
        for name in names:
            text = FAMILIES[name](size)
            line = f"{name:22} {redact_ms_per_mib(text):13.0f}"
            if base is not None:
                seconds, peak, code = analyze_text(Path(tmp), name, text, args.runs)
                ratio = seconds / base[0]
                if not name.startswith("control_"):
                    worst = max(worst, (ratio, name))
                lines = text.count("\n") / plain_lines
                line += f" {seconds:13.2f} {ratio:6.2f} {peak:9.0f} {peak / base[1]:6.2f} {lines:6.1f}x"
                if lines > 2:  # the analyzer's work per line counts: compare like with like too
                    same = analyze_text(Path(tmp), name + "-plain", plain_lines_like(text), args.runs)
                    line += f" {seconds / same[0]:22.2f}"
                if code:
                    line += f"  (exit {code})"
            print(line, flush=True)
    if base is not None:
        verdict = "met" if worst[0] < TARGET else "MISSED"
        print(f"worst analyze ratio {worst[0]:.2f} ({worst[1]}; target < {TARGET:g}: {verdict})")
    return 2 if worst[0] >= TARGET else 0


def analyze_text(tmp: Path, name: str, text: str, runs: int) -> tuple[float, float, int]:
    path = tmp / f"{name}.log"
    path.write_text(text, encoding="utf-8")
    try:
        return run_analyze(path, runs)
    finally:
        path.unlink()


if __name__ == "__main__":
    sys.exit(main())
