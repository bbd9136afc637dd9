"""Lists of reports in one file, as maintainers have them: `gh issue list --json number,title,body,url`
(a JSON array) or JSON Lines (one report object per line, e.g. the same with `--jq '.[]'`).

Each report becomes one input that the analyzer reads like a pasted issue: its title, a line break,
its body. Its issue number and URL (gh's `url`, or the REST API's `html_url`) travel with it. A line
or element that is not a usable report is a BadReport with a one-line reason; the others still count.
A list is recognised by its name (.jsonl, .ndjson) or by how it starts: `{"` or `[{"` with a title or
body key near the start, and never when it is a bundle's own JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

LIST_SUFFIXES = (".jsonl", ".ndjson")
HEAD_BYTES = 4096  # enough to see how a list starts
MAX_URL_CHARS = 2000

LINES = "lines"
ARRAY = "array"

_REPORT_KEY = re.compile(rb'"(?:title|body)"\s*:')
_OBJECT_START = re.compile(rb'\{\s*"')
_ARRAY_START = re.compile(rb'\[\s*(?:\{\s*"|\]\s*\Z)')
_BUNDLE_MARK = b'"vllm-bug-bundle"'
_BLANK = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Report:
    """One report of a list, to be analysed from memory. NAME says where it is: FILE:LINE for JSON Lines,
    FILE[INDEX] (from 0, as jq counts) for an array."""

    name: str
    data: bytes
    source: str
    position: int
    number: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class BadReport:
    name: str
    reason: str
    number: int | None = None
    url: str | None = None


def list_kind(name: str, head: bytes) -> str | None:
    """LINES or ARRAY when a file called NAME, starting with HEAD, is a list of reports; None otherwise."""
    start = _strip_start(head)
    if name.lower().endswith(LIST_SUFFIXES):
        return ARRAY if start.startswith(b"[") else LINES
    if _BUNDLE_MARK in head:
        return None
    if _ARRAY_START.match(start) and (_REPORT_KEY.search(start) or start.rstrip(_BLANK) == b"[]"):
        return ARRAY
    first_line = start.split(b"\n", 1)[0]
    if _OBJECT_START.match(first_line) and _REPORT_KEY.search(first_line):
        return LINES
    return None


def read_reports(name: str, data: bytes, kind: str) -> list[Report | BadReport]:
    """Every report in DATA (a file called NAME holding a list of KIND), in order."""
    try:
        text = data.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        return [BadReport(name, f"not valid UTF-8 text (bad byte at offset {exc.start})")]
    items = _array_items(name, text) if kind == ARRAY else _line_items(name, text)
    if not items:
        return [BadReport(name, "holds no reports")]
    return items


def report_text(title: str, body: str) -> str:
    """A report as the analyzer reads a pasted issue: the title, then the body."""
    return "\n".join(part for part in (title, body) if part)


def _strip_start(head: bytes) -> bytes:
    return head.removeprefix(_BOM).lstrip(_BLANK)


def _line_items(name: str, text: str) -> list[Report | BadReport]:
    items: list[Report | BadReport] = []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: JSON strings may hold U+2028
        if line.strip():
            items.append(_item(f"{name}:{number}", name, number, line))
    return items


def _array_items(name: str, text: str) -> list[Report | BadReport]:
    try:
        elements = json.loads(text)
    except json.JSONDecodeError as exc:
        return [BadReport(name, f"not a JSON array of reports ({exc})")]
    except RecursionError:
        return [BadReport(name, "refused: nested too deeply")]
    if not isinstance(elements, list):
        return [BadReport(name, f"not a JSON array of reports (a JSON {_json_type(elements)})")]
    return [_report(f"{name}[{index}]", name, index, element) for index, element in enumerate(elements)]


def _item(label: str, source: str, position: int, line: str) -> Report | BadReport:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return BadReport(label, f"not a JSON object ({exc.msg}: column {exc.colno})")
    except RecursionError:
        return BadReport(label, "refused: nested too deeply")
    return _report(label, source, position, value)


def _report(label: str, source: str, position: int, value: object) -> Report | BadReport:
    if not isinstance(value, dict):
        return BadReport(label, f"not a report object (a JSON {_json_type(value)})")
    number, url = _issue_number(value.get("number")), _url(value.get("url") or value.get("html_url"))
    title, body = _string(value.get("title")), _string(value.get("body"))
    if not title.strip() and not body.strip():
        return BadReport(label, "no title or body text", number, url)
    data = report_text(title, body).encode("utf-8", "replace")
    return Report(label, data, source, position, number, url)


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""


def _issue_number(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19 and int(value) > 0:
        return int(value)
    return None


def _url(value: object) -> str | None:
    if isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= MAX_URL_CHARS:
        return value
    return None


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
