"""Turn a raw log or pasted report into clean lines: colours, log prefixes and per-rank copies removed.

vLLM's multi-process logs prefix each line with the process that wrote it (`(EngineCore_DP0 pid=N)`,
`(VllmWorker rank=N pid=N)`, `[rank0]:` ...), then a log header (`ERROR 03-19 07:27:53 [file.py:N]`).
Several ranks print the same traceback at once, so their lines interleave. Lines are first
de-interleaved by their process tag, then stripped, then copies of one block from several ranks
are kept once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LINE_CHARS = 16384  # longer lines are cut: no regex ever sees more than this
MAX_LINES = 400_000

_ANSI = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]"  # real CSI sequences
    r"|\x1b\][^\x07\x1b]{0,200}(?:\x07|\x1b\\)"  # OSC (terminal titles, links)
    r"|(?:ESC|\^\[)\[[0-9;]{0,12}[A-Za-z]"  # escapes pasted as visible text
    r"|\[(?:\d{1,3};){0,4}\d{1,3}m(?=[\s(\[A-Za-z]|$)"  # the ESC byte lost, '[1;36m' left
)
_LITERAL_CR = re.compile(r"\^M")

_LEVEL = r"(?:INFO|ERROR|WARNING|WARN|DEBUG|CRITICAL|FATAL|TRACE)"
_DATE_TIME = r"(?:\d{4}-)?\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_PREFIX = re.compile(
    "|".join(
        (
            # process tags: (EngineCore_DP0 pid=1), (VllmWorker rank=1 pid=2), (RayWorkerWrapper pid=3, ip=10.0.0.1)
            r"(?P<tag>\([A-Za-z_][\w.:-]*(?:[ ,]+\w+=[^\s,()]*)+\))[ ]?",
            r"(?P<rank>\[rank\d+\]:)[ ]?",
            # docker compose: 'vllm-1  | '
            r"(?P<compose>[A-Za-z0-9][\w.-]*-\d+\s+\|)[ ]?",
            # vLLM / logging headers, with or without a date, with old ('file.py:N]') or new ('[file.py:N]') source
            rf"{_LEVEL}\s+{_DATE_TIME}\s+(?:\[[^\]\s]+:\d+\]|[\w./-]+\.py:\d+\])?[ ]?",
            rf"{_LEVEL}\s+\[[\w./-]+\.py(?::\d+)?\]\s+",
            rf"{_LEVEL}:\s*(?=\S)(?=[\w.]+:)",  # python logging's 'ERROR:root:' style
            # cloud log shippers: '[resource.labels.containerName: vllm] '
            r"\[(?:resource|labels|jsonPayload)[\w.]*:[^\]]{0,200}\]\s*",
            # bare timestamps: '2025-01-01 12:00:00,123 ', '[2025-01-01 12:00:00] '
            rf"\[?\d{{4}}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]?\s+(?:\|\s*)?(?:-\s+)?",
            # journald / syslog: 'Jun 10 16:45:05 host bash[1234]: '
            r"(?:[A-Z][a-z]{2}|\d{1,2}\S{0,2})\s+\d{1,2}\s+\d\d:\d\d:\d\d\s+[\w.-]+\s+[\w.@/-]+(?:\[\d+\])?:[ ]?",
            # glog lines from torch's C++ side: '[W1119 12:16:36.123 123 File.cpp:45] '
            r"\[?[IWEF]\d{4}\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+[\w.]+:\d+\]\s?",
            # a bare '[file.py:79] '
            r"\[[\w./-]+\.py:\d+\]\s",
            # pasted with a box or a quote: '│ ', '> '
            r"│\s?",
            r">(?!>)[ ]?",
        )
    )
)
_TRAILING_BOX = re.compile(r"\s*│\s*$")
_DIGITS = re.compile(r"\d+")


@dataclass
class CleanLine:
    text: str
    source: str  # the process tags that wrote it ('' for untagged lines)


def clean_lines(text: str) -> list[str]:
    """The input's lines with colours and log prefixes stripped and per-rank copies merged."""
    return [line.text for line in merge_rank_copies(tag_lines(text))]


def raw_lines(text: str) -> list[str]:
    """Split on any line break (including carriage returns of progress bars), colours removed."""
    text = _ANSI.sub("", text)
    if "^M" in text:
        text = _LITERAL_CR.sub("\n", text)
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        half = MAX_LINES // 2
        lines = lines[:half] + ["[... lines cut by vllm-bug ...]"] + lines[-half:]
    out: list[str] = []
    for line in lines:
        if len(line) > 400 and line.count("\\n") > 3:  # a JSON-escaped log pasted as one line
            out.extend(part[:MAX_LINE_CHARS] for part in line.split("\\n"))
        else:
            out.append(line[:MAX_LINE_CHARS] if len(line) > MAX_LINE_CHARS else line)
    return out


def strip_prefixes(line: str) -> tuple[str, str]:
    """(process tags, line without prefixes) for one raw line."""
    source = ""
    pos = 0
    for _ in range(8):
        m = _PREFIX.match(line, pos)
        if not m or m.end() == pos:
            break
        tag = m.group("tag")
        if tag is not None:
            if "pid=" not in tag and "rank=" not in tag:
                break
            source += tag
        elif m.group("rank") is not None:
            source += m.group("rank")
        elif m.group("compose") is not None:
            source += m.group("compose")
        pos = m.end()
    rest = line[pos:] if pos else line
    if "│" in rest:
        rest = _TRAILING_BOX.sub("", rest)
    return source, rest.rstrip()


def tag_lines(text: str) -> list[CleanLine]:
    return [CleanLine(rest, source) for source, rest in map(strip_prefixes, raw_lines(text))]


def merge_rank_copies(lines: list[CleanLine]) -> list[CleanLine]:
    """De-interleave runs of tagged lines by their tag, and keep one copy of blocks repeated by ranks."""
    out: list[CleanLine] = []
    seen: list[tuple[str, frozenset[str]]] = []  # (source, masked lines) of earlier multi-line blocks
    i, n = 0, len(lines)
    while i < n:
        if not lines[i].source:
            out.append(lines[i])
            i += 1
            continue
        j = i
        while j < n and (lines[j].source or (not lines[j].text and j + 1 < n and lines[j + 1].source)):
            j += 1
        region_seen: list[tuple[str, frozenset[str]]] = []
        for source, block in _group_by_source(lines[i:j]):
            masked = frozenset(_DIGITS.sub("0", line.text.strip()) for line in block if line.text.strip())
            if masked and (_covered(source, masked, region_seen) or (len(masked) >= 2 and _covered(source, masked, seen))):
                continue
            out.extend(block)
            region_seen.append((source, masked))
        seen.extend(entry for entry in region_seen if len(entry[1]) >= 2)
        del seen[:-64]
        i = j
    return out


def _group_by_source(region: list[CleanLine]) -> list[tuple[str, list[CleanLine]]]:
    groups: dict[str, list[CleanLine]] = {}
    last = ""
    for line in region:
        source = line.source or last
        last = source
        groups.setdefault(source, []).append(line)
    return list(groups.items())


def _covered(source: str, masked: frozenset[str], earlier: list[tuple[str, frozenset[str]]]) -> bool:
    """True when another process already printed all of these lines (numbers masked).

    A line cut short by the reporter (a prefix of a line the other process printed) still counts.
    """
    for other, lines in earlier:
        if other == source:
            continue
        missing = [line for line in masked if line not in lines]
        if len(missing) > 2:
            continue
        if all(_is_cut_copy(line, lines) for line in missing):
            return True
    return False


def _is_cut_copy(line: str, lines: frozenset[str]) -> bool:
    if len(line) < 40:
        return False
    return any(other.startswith(line) or line.startswith(other) for other in lines if len(other) >= 40)
