"""`vllm-bug validate`: is this a well-formed bundle this version can read?"""

from __future__ import annotations

from vllm_bug.commands import Result
from vllm_bug.commands.output import naming_input, terminal_safe


def execute(bundle: str) -> Result:
    from vllm_bug.schema.bundle import read_bundle

    with naming_input(bundle):
        doc = read_bundle(bundle)
    return Result(
        text=f"{terminal_safe(bundle)}: valid vllm-bug bundle, schema_version {doc['schema_version']}, "
        f"written by vllm-bug {terminal_safe(doc['tool']['version'])} at "
        f"{terminal_safe(doc['created_utc'])}\n"
    )
