"""The built-in models (analyzer/data/models.json): config.json fields of well-known models, found by name."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from vllm_bug.analyzer.memory.shape import ModelShape, shape_from_config
from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.package_files import package_folder


@lru_cache(maxsize=1)
def builtin_models() -> tuple[dict[str, Any], ...]:
    text = package_folder("vllm_bug.analyzer").joinpath("data/models.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["models"])


_SUFFIXES = lazy_compile(r"(-(instruct|chat|it|hf|base|\d{4}))+$")


def _normalise_name(name: str) -> str:
    n = name.strip().rstrip("/").lower()
    n = n.rsplit("/", 1)[-1]
    if n.startswith("meta-llama-"):
        n = n[len("meta-") :]
    return _SUFFIXES.sub("", n)


def lookup_model(name: str) -> ModelShape | None:
    """A built-in model by name: case-insensitive, with or without org prefix and -Instruct/-chat/-it/-hf."""
    if not name or not name.strip():
        return None
    wanted = {name.strip().lower(), _normalise_name(name)}
    for entry in builtin_models():
        keys = {entry["name"].lower(), _normalise_name(entry["name"])}
        keys.update(a.lower() for a in entry.get("aliases", []))
        keys.update(_normalise_name(a) for a in entry.get("aliases", []))
        if wanted & keys:
            return shape_from_config(entry, name=entry["name"])
    return None
