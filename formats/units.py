"""Numbers as logs print them: sizes with units ('1.5 GiB') and counts with thousands separators ('150,745')."""

from __future__ import annotations

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
TIB = 1 << 40
UNIT_BYTES = {"gib": GIB, "gb": GIB, "g": GIB, "mib": MIB, "mb": MIB, "m": MIB, "kib": KIB, "kb": KIB, "tib": TIB}
MAX_COUNT_DIGITS = 18  # a longer count is garbage, not a fact (and int() refuses > 4300 digits)


def to_bytes(number: str, unit: int) -> int | None:
    """'1.5', GIB -> bytes; None when NUMBER is no number or too large to be a real size."""
    try:
        value = float(number) * unit
    except ValueError:
        return None
    return int(value) if abs(value) < 2**63 else None


def parse_count(text: str) -> int | None:
    """'12,345' -> 12345; None for a bare comma, more than MAX_COUNT_DIGITS digits, or anything but digits."""
    digits = text.replace(",", "")
    return int(digits) if 0 < len(digits) <= MAX_COUNT_DIGITS and digits.isdecimal() else None
