"""`analyze --format json`: the DESIGN.md contract, with Facts serialised without empty fields."""

from __future__ import annotations

import dataclasses
from typing import Any

from vllm_bug.analyzer.facts import Facts, Gpu, Traceback
from vllm_bug.analyzer.findings import Analysis

JSON_SCHEMA_VERSION = 1
MAX_FRAMES = 40
MAX_TEXT_CHARS = 20_000
# Facts that are the input itself, parsing scaffolding, or derived from other facts (analyzer/complete.py).
_SKIPPED_FACTS = {"lines", "tracebacks", "input_kind", "memory", "oom_phase", "signals", "mentions"}


def analysis_to_json(analysis: Analysis) -> dict[str, Any]:
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "input": {"kind": analysis.input_kind, "sha256": analysis.sha256},
        "signature": analysis.signature,
        "diagnoses": [finding.to_json() for finding in analysis.diagnoses],
        "facts": facts_to_json(analysis.facts),
    }


def facts_to_json(facts: Facts) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in dataclasses.fields(facts):
        if field.name in _SKIPPED_FACTS or field.name.startswith("_"):  # _searchable: a cache, not a fact
            continue
        value = _plain(getattr(facts, field.name))
        if not _empty(value):
            out[field.name] = value
    if facts.lines:
        out["input_lines"] = len(facts.lines)
    if facts.tracebacks:
        out["traceback_count"] = len(facts.tracebacks)
    if facts.signals is not None:
        seen = facts.signals.hits.keys() | facts.signals.in_root | facts.signals.in_frames
        if seen:
            out["signals_seen"] = sorted(seen)
    return out


def traceback_to_json(tb: Traceback) -> dict[str, Any]:
    out: dict[str, Any] = {"exc_type": tb.exc_type, "message": tb.message}
    if tb.frames:
        out["frames"] = [
            _without_empty({"path": f.path, "line": f.line, "function": f.function}) for f in tb.frames[-MAX_FRAMES:]
        ]
    if tb.text:
        out["text"] = tb.text[-MAX_TEXT_CHARS:]
    if tb.chained_from is not None:
        out["chained_from"] = {"exc_type": tb.chained_from.exc_type, "message": tb.chained_from.message}
    if tb.carried_by is not None:
        out["carried_by"] = {"exc_type": tb.carried_by.exc_type, "message": tb.carried_by.message}
    return out


def gpu_to_json(gpu: Gpu) -> dict[str, Any]:
    out = {field.name: _plain(getattr(gpu, field.name)) for field in dataclasses.fields(gpu)}
    if gpu.compute_capability:
        out["compute_capability"] = f"{gpu.compute_capability[0]}.{gpu.compute_capability[1]}"
    return _without_empty(out)


def _plain(value: Any) -> Any:
    """JSON-ready copy: dataclasses to dicts, tuples to lists, sets sorted."""
    if isinstance(value, Traceback):
        return traceback_to_json(value)
    if isinstance(value, Gpu):
        return gpu_to_json(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _without_empty({f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _without_empty(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not _empty(v)}
