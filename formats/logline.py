"""One log line: the prefixes that say who wrote it and when, and the tests for a new log record.

vLLM's multi-process logs prefix each line with the process that wrote it (`(EngineCore_DP0 pid=N)`,
`(VllmWorker rank=N pid=N)`, `[rank0]:` ...), then a log header (`ERROR 03-19 07:27:53 [file.py:N]`).
Pasted logs add more: ISO timestamps, journald and docker-compose prefixes, glog/c10 headers
(`W1126 22:56:40.131000 722 file.py:1012]`), cloud log shippers' `[resource.labels...]`, Rich's box
borders and e-mail quoting. `parse_log_line` removes all of them and keeps the process tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vllm_bug.formats.lazyre import lazy_compile

_LEVEL_WORDS = ("INFO", "ERROR", "WARN", "DEBUG", "CRITICAL", "FATAL", "TRACE")  # WARN also starts WARNING

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
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# the usual vLLM shape in one step: process tags, then 'LEVEL MM-DD hh:mm:ss [file.py:N] '
_VLLM_PREFIX = lazy_compile(
    rf"(?P<src>(?:{_TAG_BODY} ?)*)"
    rf"(?:{_LEVEL}\s+{_DATE_TIME}\s+(?:\[[^\]\s]+:\d+\]|[\w./-]+\.py:\d+\])?[ ]?)?"
)
_TRAILING_BOX = lazy_compile(r"\s*│\s*$")
# vLLM's own log header (vllm/logger.py: "%(levelname)s %(asctime)s [%(fileinfo)s:%(lineno)d] %(message)s", the
# date as "%m-%d %H:%M:%S"; older releases wrote "%(filename)s:%(lineno)d]" without the opening bracket;
# with colour, ANSI codes grey the date and the source): a date without a year, then a source file and line.
VLLM_LOG_HEADER = lazy_compile(
    rf"\b{_LEVEL} (?:\x1b\[[0-9;]*m)?\d\d-\d\d \d\d:\d\d:\d\d(?:\x1b\[[0-9;]*m)? (?:\x1b\[[0-9;]*m)?"
    r"(?:\[[^\]\s]{1,300}:\d{1,7}\]|[\w.-]{1,300}\.py:\d{1,7}\])"
)
MAX_PREFIXES = 8


@dataclass
class LogLine:
    text: str  # the line without its prefixes, trailing space removed
    source: str  # the process tags that wrote it ('' for untagged lines)


def parse_log_line(line: str) -> LogLine:
    """Split one raw line into the process tags that wrote it and its text without any prefix."""
    if not line or line[0] in " \t":
        return LogLine(line.rstrip(), "")
    source = ""
    pos = 0
    if line[0] == "(" or line.startswith(_LEVEL_WORDS):
        m = _VLLM_PREFIX.match(line)
        pos = m.end()
        if m.group("src"):
            source = m.group("src").replace(") ", ")").strip()
    n = len(line)
    for _ in range(MAX_PREFIXES):
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
    return LogLine(rest.rstrip(), source)


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


# A line (prefixes already removed) that opens a new log record, so it cannot continue an exception's
# message: glog/c10 headers ('W1126 22:56:40.131000 722 file.py:1012]', '[W1126 22:56:39.2
# ProcessGroupNCCL.cpp:1575]', also after '[rank0]:'), logging levels with a date or a colon, ISO
# timestamps, NCCL's 'host:pid:tid [dev]' records.
_NEW_RECORD = lazy_compile(
    r"^\s*(?:\[rank\d+\]:\s*)?(?:\[?[IWEF]\d{4}\s+\d\d:\d\d:\d\d"
    r"|(?:INFO|WARNING|WARN|ERROR|DEBUG|CRITICAL|FATAL)(?:\s+\d\d-\d\d\s+\d\d:|:|\s+\[)"
    r"|\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d"
    r"|[\w.-]+:\d+:\d+ \[\d+\] )"
)
# The looser test for a raw captured line (its own prefix removed, others kept): any level word first,
# even after a process tag, a date, or another rank's '[rankN]' tag.
_NEW_RECORD_RAW = lazy_compile(
    r"^(?:\([^)]*\)\s+)?(?:INFO|WARNING|WARN|ERROR|DEBUG|CRITICAL)\b"
    r"|^\[?\d{4}-\d\d-\d\d[ T]|^\d\d-\d\d \d\d:\d\d|^\[rank\d+\]"
)


def starts_record(line: str) -> bool:
    """Whether a cleaned line opens a new log record (see _NEW_RECORD)."""
    return _NEW_RECORD.match(line) is not None


def starts_record_raw(line: str) -> bool:
    """Whether a raw line, as the collector sees it, opens a new log record (see _NEW_RECORD_RAW)."""
    return _NEW_RECORD_RAW.match(line) is not None


# What may stand before an error line the signature quotes, when a line still carries it: stray
# punctuation, a colour code, one process tag, a rank tag, a vLLM log header.
_ERROR_LINE_PREFIX = lazy_compile(
    r"^[^\w(\[]*(?:\x1b\[[0-9;]*m)?(?:\([\w.]+(?: rank=\d+)?(?: pid=\d+)?(?:, ip=[\d.]+)?\)(?:\x1b\[[0-9;]*m)?\s*)?"
    r"(?:\[rank\d+\]:\s*)?"
    r"(?:(?:ERROR|INFO|WARNING|DEBUG|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \[?[\w.]+:\d+\]\s*)?"
)


def strip_error_line_prefix(line: str) -> str:
    """LINE without one leading process tag, rank tag and vLLM log header (a lighter `parse_log_line`)."""
    return _ERROR_LINE_PREFIX.sub("", line)
