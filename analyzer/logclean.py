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
from vllm_bug.analyzer.lazyre import lazy_compile

MAX_LINE_CHARS = 16384  # longer lines are cut: no regex ever sees more than this
MAX_LINES = 400_000

_ANSI = lazy_compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]"  # real CSI sequences
    r"|\x1b\][^\x07\x1b]{0,200}(?:\x07|\x1b\\)"  # OSC (terminal titles, links)
    r"|(?:ESC|\^\[)\[[0-9;]{0,12}[A-Za-z]"  # escapes pasted as visible text
    r"|\[(?:\d{1,3};){0,4}\d{1,3}m(?=[\s(\[A-Za-z]|$)"  # the ESC byte lost, '[1;36m' left
)
_LITERAL_CR = lazy_compile(r"\^M")
_LOST_ESCAPE = lazy_compile(r"\[[\d;]{1,15}m")

_LEVEL = r"(?:INFO|ERROR|WARNING|WARN|DEBUG|CRITICAL|FATAL|TRACE)"
_DATE_TIME = r"(?:\d{4}-)?\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_TIMESTAMP = r"\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]?\s+(?:\|\s*)?(?:-\s+)?"
_JOURNAL = r"(?:[A-Z][a-z]{2}|\d{1,2}\S{0,2})\s+\d{1,2}\s+\d\d:\d\d:\d\d\s+[\w.-]+\s+[\w.@/-]+(?:\[\d+\])?:[ ]?"
_GLOG = r"\[?[IWEF]\d{4}\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+[\w.]+:\d+\]\s?"
_COMPOSE = r"[A-Za-z0-9][\w.-]*-\d+\s+\|[ ]?"

# Each prefix kind, tried only on lines whose next character can start it.
# (EngineCore_DP0 pid=1), (RayWorkerWrapper pid=3, ip=...), (VllmWorker PP0_TP1 pid=7): a name, up to two bare
# words (rank labels), then key=value pairs
_TAG_BODY = r"\([A-Za-z_][\w.:-]*(?: [A-Za-z_][\w-]{0,30}){0,2}(?:[ ,]+\w+=[^\s,()]*)+\)"
_TAG = lazy_compile(_TAG_BODY + r"[ ]?")
_RANK = lazy_compile(r"\[rank\d+\]:[ ]?")
_COMPOSE_RX = lazy_compile(_COMPOSE)  # docker compose: 'vllm-1  | '
_SOURCE_KINDS = (_TAG, _RANK, _COMPOSE_RX)
_BY_FIRST_CHAR: dict[str, tuple[re.Pattern[str], ...]] = {
    "(": (_TAG,),
    "[": (
        _RANK,
        lazy_compile(r"\[(?:resource|labels|jsonPayload)[\w.]*:[^\]]{0,200}\]\s*"),  # cloud log shippers
        lazy_compile(_TIMESTAMP),
        lazy_compile(_GLOG),
        lazy_compile(r"\[[\w./-]+\.py:\d+\]\s"),  # a bare '[file.py:79] '
    ),
    "│": (lazy_compile(r"│\s?"),),
    ">": (lazy_compile(r">(?!>)[ ]?"),),
}
_DIGIT_START = (lazy_compile(_TIMESTAMP), lazy_compile(_JOURNAL), _COMPOSE_RX)
_UPPER_START = (
    # vLLM / logging headers with a date; old ('file.py:N]') and new ('[file.py:N]') source
    lazy_compile(rf"{_LEVEL}\s+{_DATE_TIME}\s+(?:\[[^\]\s]+:\d+\]|[\w./-]+\.py:\d+\])?[ ]?"),
    lazy_compile(rf"{_LEVEL}\s+\[[\w./-]+\.py(?::\d+)?\]\s+"),
    lazy_compile(_JOURNAL),
    lazy_compile(_GLOG),
    _COMPOSE_RX,
)
_LOWER_START = (_COMPOSE_RX,)
_LEVEL_WORDS = ("INFO", "ERROR", "WARN", "DEBUG", "CRITICAL", "FATAL", "TRACE")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# the usual vLLM shape in one step: process tags, then 'LEVEL MM-DD hh:mm:ss [file.py:N] '
_VLLM_PREFIX = lazy_compile(
    rf"(?P<src>(?:{_TAG_BODY} ?)*)"
    rf"(?:{_LEVEL}\s+{_DATE_TIME}\s+(?:\[[^\]\s]+:\d+\]|[\w./-]+\.py:\d+\])?[ ]?)?"
)
_TRAILING_BOX = lazy_compile(r"\s*│\s*$")
_MASK_DIGITS = str.maketrans("123456789", "000000000")


@dataclass
class CleanLine:
    text: str
    source: str  # the process tags that wrote it ('' for untagged lines)


def clean_lines(text: str) -> list[str]:
    """The input's lines with colours and log prefixes stripped and per-rank copies merged."""
    return [line.text for line in merge_rank_copies(tag_lines(text))]


def raw_lines(text: str) -> list[str]:
    """Split on any line break (including carriage returns of progress bars), colours removed."""
    if "\x1b" in text or "ESC[" in text or "^[[" in text or _LOST_ESCAPE.search(text):
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
    if not line or line[0] in " \t":
        return "", line.rstrip()
    source = ""
    pos = 0
    if line[0] == "(" or line.startswith(_LEVEL_WORDS):
        m = _VLLM_PREFIX.match(line)
        pos = m.end()
        if m.group("src"):
            source = m.group("src").replace(") ", ")").strip()
    n = len(line)
    for _ in range(8):
        if pos >= n:
            break
        kinds = _candidate_kinds(line, pos)
        if not kinds:
            break
        for rx in kinds:
            m = rx.match(line, pos)
            if m and m.end() > pos:
                break
        else:
            break
        if rx in _SOURCE_KINDS:
            tag = m.group(0).rstrip()
            if rx is _TAG and "pid=" not in tag and "rank=" not in tag:
                break
            source += tag
        pos = m.end()
    rest = line[pos:] if pos else line
    if "│" in rest:
        rest = _TRAILING_BOX.sub("", rest)
    return source, rest.rstrip()


def _candidate_kinds(line: str, pos: int) -> tuple[re.Pattern[str], ...]:
    first = line[pos]
    kinds = _BY_FIRST_CHAR.get(first)
    if kinds is not None:
        return kinds
    if first.isdigit():
        return _DIGIT_START
    if "A" <= first <= "Z":
        if line.startswith(_LEVEL_WORDS, pos) or line.startswith(_MONTHS, pos):
            return _UPPER_START
        if first in "IWEF" and line[pos + 1 : pos + 2].isdigit():
            return _UPPER_START
        return _LOWER_START if " |" in line[pos : pos + 80] else ()
    if "a" <= first <= "z" and " |" in line[pos : pos + 80]:
        return _LOWER_START
    return ()


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
        groups = _group_by_source(lines[i:j])
        multi = len(groups) > 1
        for source, block in groups:
            masked = _masked(block) if (multi or _worth_comparing(block)) else frozenset()
            if masked and (_covered(source, masked, region_seen) or (len(masked) >= 2 and _covered(source, masked, seen))):
                continue
            out.extend(block)
            region_seen.append((source, masked))
        seen.extend(entry for entry in region_seen if len(entry[1]) >= 2)
        del seen[:-64]
        i = j
    return out


def _masked(block: list[CleanLine]) -> frozenset[str]:
    return frozenset(line.text.strip().translate(_MASK_DIGITS) for line in block if line.text.strip())


def _worth_comparing(block: list[CleanLine]) -> bool:
    """Only blocks that hold an error are compared across regions (masking every line costs time)."""
    return len(block) >= 2 and any("Error" in line.text or 'File "' in line.text for line in block)


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
        missing: list[str] = []
        for line in masked:
            if line not in lines:
                missing.append(line)
                if len(missing) > 2:
                    break
        if len(missing) > 2:
            continue
        if all(_is_cut_copy(line, lines) for line in missing):
            return True
    return False


def _is_cut_copy(line: str, lines: frozenset[str]) -> bool:
    if len(line) < 40:
        return False
    return any(other.startswith(line) or line.startswith(other) for other in lines if len(other) >= 40)
