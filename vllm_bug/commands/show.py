"""`vllm-bug show`: a bundle's JSON document, validated first and redacted again (it may come from an
older or modified writer), every node's payload too."""

from __future__ import annotations

from vllm_bug.commands import Result
from vllm_bug.commands.output import naming_input


def execute(bundle: str) -> Result:
    from vllm_bug.schema.bundle import read_bundle
    from vllm_bug.schema.cluster import scrub_every_node
    from vllm_bug.schema.redact import Redactor

    with naming_input(bundle):
        document = read_bundle(bundle)
    return Result(document=scrub_every_node(document, Redactor(home=None)))
