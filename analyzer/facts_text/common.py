"""Setting a fact only while it is unknown."""

from __future__ import annotations

from typing import Any

from vllm_bug.analyzer.facts import Facts

_UNKNOWN: tuple[Any, ...] = (None, "", [], {})


def set_unknown(facts: Facts, name: str, value: Any) -> None:
    """facts.NAME = VALUE, unless VALUE is empty or NAME is already known."""
    if value in _UNKNOWN:
        return
    if getattr(facts, name) in _UNKNOWN:
        setattr(facts, name, value)


def fill_from_match(facts: Facts, name: str, rx: Any, text: str, group: int = 1) -> None:
    """facts.NAME from GROUP of RX's first match in TEXT, unless NAME is already known (None only)."""
    if getattr(facts, name) is None and (m := rx.search(text)):
        setattr(facts, name, m.group(group))
