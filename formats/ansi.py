"""Terminal escape sequences and control characters: the one place that knows their shapes.

Callers differ in what they may meet, so the variants are explicit (`AnsiStyle`) rather than
one pattern for all:

- `TERMINAL`: bytes straight from a program's terminal output (the collector's log capture):
  any ECMA-48 control sequence, OSC strings of any length (titles, hyperlinks) and two-byte escapes.
- `PASTED`: text a person pasted (the analyzer's log cleaning): the usual control sequences, OSC
  strings up to 200 characters, escapes pasted as visible text ('ESC[31m', '^[[0m') and colour
  codes whose ESC byte was lost on the way ('[1;36m').
- `MARKDOWN`: text about to be quoted in a report: control sequences, two-byte escapes and a
  visible 'ESC[...m'.
- `SIGNATURE`: message text being reduced to a signature: colour-like sequences only.

Every pattern starts at an ESC byte or a literal marker, and each repetition stops at a character
its successor cannot match, so stripping is linear in the text.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Literal, NamedTuple

from vllm_bug.formats.lazyre import lazy_compile

_CSI = {
    "any": r"\x1b\[[0-?]*[ -/]*[@-~]",  # parameter bytes 0x30-0x3F, intermediates, a final byte
    "common": r"\x1b\[[0-9;?]*[ -/]*[@-~]",  # the parameters programs print: digits, ';', '?'
    "sgr_like": r"\x1b\[[0-9;]*[A-Za-z]",
}
_OSC = {
    "unbounded": r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)",
    "bounded": r"\x1b\][^\x07\x1b]{0,200}(?:\x07|\x1b\\)",
}
_TWO_BYTE = r"\x1b[@-Z\\-_]"  # ESC followed by 0x40-0x5F except '['
_PASTED = {
    "escape": r"(?:ESC|\^\[)\[[0-9;]{0,12}[A-Za-z]",  # 'ESC[31m', '^[[0m'
    "sgr": r"ESC\[[0-9;]*m",
}
_LOST_ESCAPE = r"\[(?:\d{1,3};){0,4}\d{1,3}m(?=[\s(\[A-Za-z]|$)"
_LOST_ESCAPE_HINT = lazy_compile(r"\[[\d;]{1,15}m")


class AnsiStyle(NamedTuple):
    """Which escape shapes to remove (see the module docstring for who uses which)."""

    csi: Literal["any", "common", "sgr_like"]
    osc: Literal["unbounded", "bounded"] | None = None
    two_byte: bool = False
    pasted: Literal["escape", "sgr"] | None = None
    lost_escape: bool = False


TERMINAL = AnsiStyle(csi="any", osc="unbounded", two_byte=True)
PASTED = AnsiStyle(csi="common", osc="bounded", pasted="escape", lost_escape=True)
MARKDOWN = AnsiStyle(csi="common", two_byte=True, pasted="sgr")
SIGNATURE = AnsiStyle(csi="sgr_like")


@cache
def ansi_pattern(style: AnsiStyle) -> re.Pattern[str]:
    """The compiled pattern for STYLE (alternatives in a fixed order: CSI, OSC, two-byte, pasted, lost)."""
    parts = [_CSI[style.csi]]
    if style.osc:
        parts.append(_OSC[style.osc])
    if style.two_byte:
        parts.append(_TWO_BYTE)
    if style.pasted:
        parts.append(_PASTED[style.pasted])
    if style.lost_escape:
        parts.append(_LOST_ESCAPE)
    return re.compile("|".join(parts))


def may_hold_escapes(text: str, style: AnsiStyle) -> bool:
    """A cheap test: False means STYLE's pattern cannot match anywhere in TEXT."""
    if "\x1b" in text:
        return True
    if style.pasted and ("ESC[" in text or (style.pasted == "escape" and "^[[" in text)):
        return True
    return style.lost_escape and _LOST_ESCAPE_HINT.search(text) is not None


def strip_ansi(text: str, style: AnsiStyle) -> str:
    """TEXT with the escape sequences STYLE knows removed."""
    if not may_hold_escapes(text, style):
        return text
    return ansi_pattern(style).sub("", text)


# C0 control characters except tab, line feed and carriage return, and DEL
_CONTROL = lazy_compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_KEEP_ESCAPE = lazy_compile(r"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")
# the same plus the bidirectional overrides and isolates that can disguise text
_CONTROL_AND_BIDI = lazy_compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def has_control(text: str) -> bool:
    """Whether TEXT holds a control character (ESC included) that `strip_control` removes."""
    return _CONTROL.search(text) is not None


def strip_control(text: str, *, keep_escape: bool = False, bidi: bool = False) -> str:
    """TEXT without C0 control characters (tab, newline and carriage return stay) and DEL.

    keep_escape keeps ESC bytes (so escape sequences stay whole for a later pass); bidi also removes
    Unicode bidirectional overrides and isolates (ESC goes too: bidi is for text about to be shown).
    """
    if bidi:
        return _CONTROL_AND_BIDI.sub("", text)
    return (_CONTROL_KEEP_ESCAPE if keep_escape else _CONTROL).sub("", text)
