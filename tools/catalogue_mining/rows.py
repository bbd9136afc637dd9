"""Catalogue rows: a message (one or more printed forms) with its regex, tokens, category and provenance."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from .messages import Template, regex, tokens

GENERIC = "generic"  # a message with many possible causes: no category of its own


@dataclass
class Form:
    template: Template
    open_start: bool = True
    open_end: bool = True
    prefix: str = ""  # regex put before the template's (a word boundary, for a bare identifier)
    suffix: str = ""

    def pattern(self, used: set[str] | None = None) -> str:
        return self.prefix + regex(self.template, used) + self.suffix

    def tokens(self) -> list[str]:
        return tokens(self.template, self.open_start, self.open_end)


@dataclass
class Row:
    id: str
    forms: list[Form]
    category: str
    excerpt: str
    excerpt_kind: str  # python | c | text
    provenance: dict[str, Any]
    exception: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def usable_forms(self) -> list[Form]:
        return [form for form in self.forms if form.tokens() and form.template.head().parts]

    def to_json(self) -> dict[str, Any] | None:
        forms = self.usable_forms()
        if not forms:
            return None
        patterns: list[str] = []
        used: set[str] = set()  # a group name may occur once in the whole alternation
        for form in forms:
            if form.pattern() in patterns:
                continue
            patterns.append(form.pattern(used))
        out: dict[str, Any] = {
            "pattern": patterns[0] if len(patterns) == 1 else "|".join(f"(?:{p})" for p in patterns),
            "tokens": _distinct([form.tokens() for form in forms]),
            "category": self.category,
        }
        if self.exception:
            out["exception"] = self.exception
        out["template"] = forms[0].template.text()
        out.update(self.extra)
        out["excerpt"] = self.excerpt
        out["excerpt_kind"] = self.excerpt_kind
        out["provenance"] = self.provenance
        return out


def slug_id(prefix: str, text: str, salt: str = "") -> str:
    """PREFIX_FIRST_WORDS_ABC123: readable, and stable while the message's head and exception stay the same."""
    words = [w.upper() for w in re.findall(r"[A-Za-z][A-Za-z0-9]*", text)][:6]
    slug = "_".join(words)[:36].rstrip("_") or "MESSAGE"
    digest = hashlib.sha1(f"{salt}\0{text}".encode()).hexdigest()[:6].upper()
    return f"{prefix}_{slug}_{digest}"


def snake(name: str) -> str:
    """cudaErrorMemoryAllocation -> MEMORY_ALLOCATION (after the given prefix is removed by the caller)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).upper()


def spans(present: list[str], order: list[str]) -> list[list[str]]:
    """Runs of consecutive releases (in `order`) as [first, last] pairs."""
    out: list[list[str]] = []
    have = set(present)
    previous = None
    for position, ref in enumerate(order):
        if ref in have:
            if out and previous == position - 1:
                out[-1][1] = ref
            else:
                out.append([ref, ref])
            previous = position
    return out


def _distinct(items: list[list[str]]) -> list[list[str]]:
    out: list[list[str]] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
