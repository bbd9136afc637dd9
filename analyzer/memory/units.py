"""Byte units and how sizes are written in the arithmetic's text."""

from __future__ import annotations

GIB = 1 << 30
KIB = 1 << 10


def gib(nbytes: float) -> str:
    return f"{nbytes / GIB:,.2f} GiB"


def plain_number(value: float) -> str:
    """2.0 -> '2', 0.5 -> '0.5': bytes per element without a needless '.0'."""
    return f"{value:g}" if value != int(value) else str(int(value))
