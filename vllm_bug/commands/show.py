"""`vllm-bug show`: a bundle's JSON document, validated first and redacted again (it may come from an
older or modified writer), every node's payload too."""

from __future__ import annotations

from vllm_bug.commands import Result


def execute(bundle: str) -> Result:
    from vllm_bug.schema.bundle import read_bundle
    from vllm_bug.schema.cluster import scrub_every_node
    from vllm_bug.schema.redact import Redactor

    return Result(document=scrub_every_node(read_bundle(bundle), Redactor(home=None)))
