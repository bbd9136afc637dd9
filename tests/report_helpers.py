"""Test-only helpers for the report/signature tests: build Facts from pasted traceback text.

A deliberately small parser (the real one is analyzer/build.py): strips vLLM log prefixes, reads
`File "...", line N, in fn` frames and the final `Type: message` line of each traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from vllm_bug.analyzer.facts import Facts, Frame, Traceback
from vllm_bug.analyzer.findings import Analysis, Finding

FIXTURES = Path(__file__).resolve().parent / "fixtures"

_PREFIX = re.compile(
    r"^(?:\x1b\[[0-9;]*m)?(?:\((?:[\w]+)(?: rank=\d+)?(?: pid=\d+)?(?:, ip=[\d.]+)?\)(?:\x1b\[[0-9;]*m)?\s?)?"
    r"(?:(?:ERROR|INFO|WARNING|DEBUG) \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \[?[\w.]+:\d+\]\s?)?"
)
_FILE = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)')
_EXC = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)):\s?(.*)$")


def strip_prefixes(text: str) -> list[str]:
    return [_PREFIX.sub("", line) for line in text.replace("\r\n", "\n").split("\n")]


def facts_from_text(text: str, **extra) -> Facts:
    lines = strip_prefixes(text)
    tracebacks: list[Traceback] = []
    frames: list[Frame] = []
    in_tb = False
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            in_tb, frames = True, []
            continue
        m = _FILE.match(line)
        if m:
            in_tb = True
            frames.append(Frame(path=m.group(1), line=int(m.group(2)), function=m.group(3)))
            continue
        m = _EXC.match(line.strip())
        if m and in_tb:
            tracebacks.append(Traceback(exc_type=m.group(1), message=m.group(2), frames=frames, text="\n".join(lines[max(0, i - 40): i + 1]), start_line=i))
            in_tb, frames = False, []
    root = tracebacks[-1] if tracebacks else None
    if len(tracebacks) > 1:
        for inner, outer in zip(tracebacks, tracebacks[1:]):
            outer.chained_from = inner
    return Facts(lines=lines, tracebacks=tracebacks, root_cause=root, **extra)


def corpus_cases() -> dict[str, dict]:
    out = {}
    with open(FIXTURES / "reports" / "real-issues-dev.jsonl", encoding="utf-8") as fh:
        for line in fh:
            case = json.loads(line)
            out[case["id"]] = case
    return out


def analysis_for(facts: Facts, findings: list[Finding] | None = None, signature: str = "vllm-sig/1:x:y:z:-#00000000") -> Analysis:
    return Analysis(input_kind=facts.input_kind, sha256="ab" * 32, diagnoses=findings or [], facts=facts,
                    signature=signature, signature_explanation=["algorithm vllm-sig/1"])
