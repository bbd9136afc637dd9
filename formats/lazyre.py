"""Module-level regexes compiled on first use, so a run pays only for the patterns it needs.

`lazy_compile(pattern, flags)` stands in for `re.compile(pattern, flags)` at import time. The
first attribute looked up compiles the pattern and copies the compiled pattern's methods onto the
object, so later calls cost the same as on a real re.Pattern. Identity is kept (`rx is _TAG`). The
compiled program comes from formats.regex_cache, which keeps it between runs.
"""

from __future__ import annotations

import re
from typing import Any

from vllm_bug.formats.regex_cache import compile_cached

_FORWARDED = (
    "search",
    "match",
    "fullmatch",
    "finditer",
    "findall",
    "sub",
    "subn",
    "split",
    "pattern",
    "flags",
    "groups",
    "groupindex",
)


class LazyPattern:
    def __init__(self, pattern: str | bytes, flags: int = 0) -> None:
        self._source = (pattern, flags)

    def compiled(self) -> re.Pattern[Any]:
        return compile_cached(*self._source)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_source":
            raise AttributeError(name)
        compiled = self.compiled()
        for attr in _FORWARDED:
            setattr(self, attr, getattr(compiled, attr))
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"lazy_compile({self._source[0]!r}, {self._source[1]!r})"


def lazy_compile(pattern: str | bytes, flags: int = 0) -> Any:
    """A stand-in for re.compile(pattern, flags) that compiles when first used (typed Any: it quacks as re.Pattern)."""
    return LazyPattern(pattern, flags)
