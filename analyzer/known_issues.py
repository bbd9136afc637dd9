"""Known vLLM problems, shipped as data (data/known_issues.json), matched offline.

`match_known_issue(signature, facts)` returns the first entry whose conditions all hold, so more
specific entries come first in the file. Benign entries (a harmless warning) only match when the
input has no real error.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from vllm_bug.analyzer.facts import Facts, version_lt
from vllm_bug.analyzer.prefilter import fold, may_match
from vllm_bug.formats.package_files import package_folder
from vllm_bug.formats.regex_cache import compile_cached

MAX_SEARCH_CHARS = 2_000_000
_CONDITION_KEYS = {
    "signature_prefix",
    "pattern",
    "any_of",
    "category",
    "vllm_version_below",
    "torch_version_below",
    "torch_version_at_least",
    "no_root_cause",
}


@cache
def load_known_issues() -> tuple[dict[str, Any], ...]:
    """The table, with its regexes compiled once (per process)."""
    raw = package_folder("vllm_bug.analyzer").joinpath("data/known_issues.json").read_text("utf-8")
    entries = json.loads(raw)["entries"]
    for entry in entries:
        unknown = set(entry["match"]) - _CONDITION_KEYS
        if unknown:
            raise ValueError(f"known issue {entry['id']}: unknown match keys {sorted(unknown)}")
        entry["_compiled"] = _compile(entry["match"])
    return tuple(entries)


def _compile(match: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "pattern" in match:
        out["pattern"] = compile_cached(match["pattern"])
    out["any_of"] = [
        {**cond, "pattern": compile_cached(cond["pattern"])} if "pattern" in cond else dict(cond)
        for cond in match.get("any_of", [])
    ]
    return out


def search_text(facts: Facts) -> str:
    """What patterns are searched in: the root cause, the title and the input's lines."""
    parts: list[str] = []
    if facts.title:
        parts.append(facts.title)
    root = facts.root_cause
    if root is not None:
        parts.append(f"{root.exc_type}: {root.message}")
        if root.text:
            parts.append(root.text)
    parts.extend(g.name for g in facts.gpus if g.name)
    size = sum(len(p) for p in parts)
    for line in facts.lines:
        if size > MAX_SEARCH_CHARS:
            break
        parts.append(line)
        size += len(line) + 1
    return "\n".join(parts)


def match_known_issue(signature: str, facts: Facts, category: str | None = None) -> dict[str, Any] | None:
    """The known issue this input most likely is, as a plain dict (no compiled parts), or None."""
    text: _Searched | None = None
    for entry in load_known_issues():
        match, compiled = entry["match"], entry["_compiled"]
        if "signature_prefix" in match and not signature.startswith(match["signature_prefix"]):
            continue
        if "category" in match and match["category"] != category:
            continue
        if match.get("no_root_cause") and facts.root_cause is not None:
            continue
        if not _versions_fit(match, facts):
            continue
        if "pattern" in compiled or compiled["any_of"]:
            if text is None:
                text = _Searched(search_text(facts))
            if "pattern" in compiled and not text.has(compiled["pattern"]):
                continue
            if compiled["any_of"] and not any(_holds(cond, text, facts) for cond in compiled["any_of"]):
                continue
        return public_entry(entry)
    return None


def public_entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if not k.startswith("_")}


class _Searched:
    """The text the table's patterns search, and its folded copy: a pattern none of whose required words is in
    the folded copy cannot match and is not run (prefilter.may_match)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.folded = fold(text)

    def has(self, rx: re.Pattern[str]) -> bool:
        return may_match(rx.pattern, self.folded) and rx.search(self.text) is not None


def _holds(cond: dict[str, Any], text: _Searched, facts: Facts) -> bool:
    if "pattern" in cond:
        return text.has(cond["pattern"])
    if "compute_capability_major" in cond:
        majors = set(cond["compute_capability_major"])
        return any(g.compute_capability and g.compute_capability[0] in majors for g in facts.gpus)
    return False


def _versions_fit(match: dict[str, Any], facts: Facts) -> bool:
    """Version conditions hold only when the version is known and on the right side."""
    checks = [
        ("vllm_version_below", facts.vllm_version, False),
        ("torch_version_below", facts.torch_version, False),
        ("torch_version_at_least", facts.torch_version, True),
    ]
    for key, have, at_least in checks:
        if key not in match:
            continue
        below = version_lt(have, match[key])
        if below is None or below == at_least:
            return False
    return True


def issue_url(ref: str | None) -> str | None:
    """'vllm-project/vllm#123' -> 'https://github.com/vllm-project/vllm/issues/123'."""
    if not ref:
        return None
    m = re.fullmatch(r"([\w.-]+/[\w.-]+)#(\d+)", ref)
    return f"https://github.com/{m.group(1)}/issues/{m.group(2)}" if m else None
