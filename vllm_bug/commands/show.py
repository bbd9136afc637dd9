"""`vllm-bug show`: a bundle's JSON document, validated first."""

from __future__ import annotations

from vllm_bug.commands import Result


def execute(bundle: str) -> Result:
    from vllm_bug.schema.bundle import read_bundle

    return Result(document=read_bundle(bundle))
