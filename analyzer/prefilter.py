"""Skip regexes that cannot match: a literal every match must contain, checked with `in` first.

Compiling a regex costs far more than searching a text for a plain word, and most of the analyzer's
patterns are alternations of error messages that are absent from any one report. `required_words`
reads a pattern (without compiling it) and returns, per top-level alternative, one lower-case
literal that any match of that alternative must contain; when none of them occurs in the
lower-cased text (`fold`), the pattern cannot match under re.IGNORECASE and is never compiled.
Whenever the reading is unsure (inline flags other than a leading (?i), an alternative without a
literal of 3+ characters) it returns None and the caller searches as before.
"""

from __future__ import annotations

from functools import lru_cache

MIN_WORD = 3
# Characters that re.IGNORECASE matches to an ASCII letter although str.lower() does not give it.
_FOLD_FIRST = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
_ZERO_OR_CLASS_ESCAPES = set("dDwWsSbBAZnrtfvaxuUNp0123456789")
_QUANTIFIERS = set("*+?{")


def fold(text: str) -> str:
    """The text as the prefilter compares it: lower case, with re's extra case-insensitive pairs folded."""
    if not text.isascii():
        text = text.translate(_FOLD_FIRST)
    return text.lower()


@lru_cache(maxsize=2048)
def required_words(pattern: str) -> tuple[str, ...] | None:
    """One literal per top-level alternative that a match must contain, or None when unsure. A pattern that
    starts with (?i) is read as the rest of it: the words are compared case-insensitively anyway."""
    if pattern.startswith("(?i)"):
        pattern = pattern[4:]
    if "(?" in pattern and _has_inline_flags(pattern):
        return None
    words = []
    for alternative in _split_alternatives(pattern):
        if alternative is None:
            return None
        best = max(_literal_runs(alternative), key=len, default="")
        if len(best) < MIN_WORD:
            return None
        words.append(best.lower())
    return tuple(words) if words else None


def may_match(pattern: str, folded_text: str) -> bool:
    """False only when the pattern (searched with re.IGNORECASE) certainly has no match in the text."""
    words = required_words(pattern)
    return words is None or any(word in folded_text for word in words)


def _has_inline_flags(pattern: str) -> bool:
    i = pattern.find("(?")
    while i != -1:
        if i == 0 or pattern[i - 1] != "\\":
            nxt = pattern[i + 2 : i + 3]
            if nxt and nxt in "aiLmsux-":
                return True
        i = pattern.find("(?", i + 2)
    return False


def _skip_class(pattern: str, i: int) -> int:
    """Index just after the character class that opens at pattern[i] == '['; -1 if unterminated."""
    j = i + 1
    if j < len(pattern) and pattern[j] == "^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    while j < len(pattern):
        ch = pattern[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "]":
            return j + 1
        j += 1
    return -1


def _atom_end(pattern: str, j: int) -> int:
    """Index just after the escape, character class or single character at pattern[j]; -1 if unterminated."""
    ch = pattern[j]
    if ch == "\\":
        return j + 2
    if ch == "[":
        return _skip_class(pattern, j)
    return j + 1


def _skip_group(pattern: str, i: int) -> int:
    """Index just after the group that opens at pattern[i] == '('; -1 if unbalanced."""
    depth = 0
    j = i
    while 0 <= j < len(pattern):
        ch = pattern[j]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j = _atom_end(pattern, j)
    return -1


def _split_alternatives(pattern: str) -> list[str | None]:
    parts: list[str | None] = []
    start = 0
    j = 0
    while 0 <= j < len(pattern):
        ch = pattern[j]
        if ch == ")":
            return [None]
        if ch == "|":
            parts.append(pattern[start:j])
            start = j + 1
        j = _skip_group(pattern, j) if ch == "(" else _atom_end(pattern, j)
    if j < 0:
        return [None]
    parts.append(pattern[start:])
    return parts


def _after_quantifier(pattern: str, j: int) -> int:
    """Index after the quantifier at j ('{2,3}' as a whole; a '{' that is not one is passed alone)."""
    if pattern[j] != "{":
        return j + 1
    end = pattern.find("}", j)
    inside = pattern[j + 1 : end] if end != -1 else "x"
    digits = inside.replace(",", "", 1)
    return end + 1 if digits.isdigit() or digits == "" else j + 1


def _literal_runs(alternative: str) -> list[str]:
    """Runs of literal ASCII characters at the top level that every match of the alternative contains."""
    runs: list[str] = []
    run: list[str] = []

    def close() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    j = 0
    n = len(alternative)
    while j < n:
        ch = alternative[j]
        if ch in _QUANTIFIERS:
            if run:
                run.pop()  # the quantified character may be absent or repeated
            close()
            j = _after_quantifier(alternative, j)
            continue
        if ch == "\\":
            nxt = alternative[j + 1 : j + 2]
            if not nxt or nxt in _ZERO_OR_CLASS_ESCAPES or nxt.isalnum() or not nxt.isascii():
                close()
                j += 2
                continue
            run.append(nxt)
            j += 2
            continue
        if ch == "[":
            close()
            j = _skip_class(alternative, j)
            if j < 0:
                return []
            continue
        if ch == "(":
            close()
            j = _skip_group(alternative, j)
            if j < 0:
                return []
            continue
        if ch in ".^$" or not ch.isascii():
            close()
            j += 1
            continue
        run.append(ch)
        j += 1
    close()
    return runs
