"""One entry point from a loaded input to Facts, whatever the input was."""

from __future__ import annotations

from vllm_bug.analyzer.bundlefacts import facts_from_bundle
from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.load import LoadedInput
from vllm_bug.analyzer.textfacts import facts_from_text

__all__ = ["build_facts", "facts_from_bundle", "facts_from_text"]


def build_facts(loaded: LoadedInput) -> Facts:
    if loaded.kind == "bundle" and loaded.doc is not None:
        return facts_from_bundle(loaded.doc)
    return facts_from_text(loaded.text or "")
