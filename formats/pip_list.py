"""Installed-package listings as people paste them: `pip freeze`, `pip list`, and the entries of
collect_env's package section (`[pip3] torch==2.7.0`, `[conda] torch  2.7.0  py3.12_cuda12.6  pytorch`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vllm_bug.formats.lazyre import lazy_compile

MAX_TABLE_ROWS = 5000  # rows read under one `pip list` header


@dataclass
class Package:
    name: str  # as printed (not normalised)
    version: str


# 'torch==2.7.0', '- vllm==0.9.1', '`transformers==4.52.4`' on a line of its own
_FREEZE_LINE = lazy_compile(
    r"^[ \t]*(?:[-*][ \t]+)?`?([A-Za-z][A-Za-z0-9._-]{0,80})==([0-9][\w.+!-]{0,60})`?[ \t]*$", re.MULTILINE
)
_PIP_LIST_HEADER = lazy_compile(r"^Package[ \t]+Version[^\n]*\n-{3,}[ \t]+-{3,}[^\n]*\n", re.MULTILINE)
_PIP_LIST_ROW = lazy_compile(r"([A-Za-z0-9][A-Za-z0-9._-]{0,80})[ \t]+(\d[\w.+!-]{0,60})(?:[ \t]+\S.*)?")
_EQ_ENTRY = lazy_compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,100})\s*==\s*(?P<version>[\w.+!-]{1,80})")
_CONDA_ENTRY = lazy_compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,100})\s+(?P<version>\d[\w.+!-]{0,80})(?:\s|$)")


def parse_packages(text: str) -> list[Package]:
    """Every package TEXT lists: `pip freeze` lines first, then the rows of each `pip list` table."""
    packages = []
    if "==" in text:
        packages = [Package(m.group(1), m.group(2)) for m in _FREEZE_LINE.finditer(text)]
    for header in _PIP_LIST_HEADER.finditer(text):
        packages.extend(_table_rows(text, header.end()))
    return packages


def _table_rows(text: str, pos: int) -> list[Package]:
    rows = []
    for _ in range(MAX_TABLE_ROWS):
        end = text.find("\n", pos)
        m = _PIP_LIST_ROW.fullmatch(text[pos : end if end != -1 else len(text)].strip())
        if not m:
            break
        rows.append(Package(m.group(1), m.group(2)))
        if end == -1:
            break
        pos = end + 1
    return rows


def parse_entry(text: str, conda: bool = False) -> Package | None:
    """'torch==2.7.0' (pip), or also 'torch  2.7.0  build  channel' when CONDA."""
    m = _EQ_ENTRY.match(text) or (_CONDA_ENTRY.match(text) if conda else None)
    return Package(m.group("name"), m.group("version")) if m else None
