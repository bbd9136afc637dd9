"""The text rules' signals are searched in: each distinct line once, and for huge inputs head and tail.

Built once per Facts (memoised on the object) by `searchable`; the signal detector and the
evidence de-duplication read it, rules never do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vllm_bug.formats.lazyre import lazy_compile

if TYPE_CHECKING:
    from vllm_bug.analyzer.facts import Facts

SEARCH_HEAD_CHARS = 96 << 10
SEARCH_TAIL_CHARS = 416 << 10
_DIGITS = lazy_compile(r"\d+")


class Searchable:
    """The input lines joined once, and their case-folded copy."""

    __slots__ = ("lines", "text", "_folded")

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.text = searchable_text(lines)
        self._folded: str | None = None

    @property
    def folded(self) -> str:
        if self._folded is None:
            from vllm_bug.analyzer.prefilter import fold

            self._folded = fold(self.text)
        return self._folded


def searchable(facts: Facts) -> Searchable:
    """The searchable form of facts.lines, rebuilt when facts.lines is replaced."""
    cached = facts._searchable
    if cached is not None and cached.lines is facts.lines:
        return cached
    entry = Searchable(facts.lines)
    facts._searchable = entry
    return entry


def searchable_text(lines: list[str]) -> str:
    """Each distinct line once (lines differing only in numbers count as one); for very long inputs
    the head (versions, arguments) and the tail (the failure)."""
    seen: set[str] = set()
    kept: list[str] = []
    for line in lines:
        shape = _DIGITS.sub("#", line)
        if shape in seen:
            continue
        seen.add(shape)
        kept.append(line)
    text = "\n".join(kept)
    if len(text) > SEARCH_HEAD_CHARS + SEARCH_TAIL_CHARS:
        head = text[:SEARCH_HEAD_CHARS].rsplit("\n", 1)[0]
        tail = text[-SEARCH_TAIL_CHARS:].split("\n", 1)[-1]
        text = head + "\n" + tail
    return text
