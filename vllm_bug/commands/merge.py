"""`vllm-bug merge`: bundles collected node by node (torchrun, slurm, ssh) into one cluster bundle.

Exit codes: 0 written; 1 the output cannot be written (it exists without --force, it is one of the
bundles merged, its folder is missing, ...); 2 usage (fewer than two bundles, the same node twice,
-o -); 3 a bundle is not readable; 4 a bundle is refused as unsafe.
"""

from __future__ import annotations

from vllm_bug.commands import Result
from vllm_bug.commands.output import STDOUT, destination, naming_input, terminal_safe, write_file
from vllm_bug.errors import UsageProblem


def execute(bundles: list[str], output: str, force: bool = False) -> Result:
    from vllm_bug.schema.bundle import encode, read_bundle
    from vllm_bug.schema.cluster import entries_of, merge_documents
    from vllm_bug.schema.redact import Redactor

    if output == STDOUT:
        raise UsageProblem("merge writes a bundle file: give -o PATH")
    target = destination(output, force, inputs=bundles)  # checked before any bundle is read
    documents = []
    for path in bundles:
        with naming_input(path):
            documents.append((path, read_bundle(path)))
    merged = merge_documents(documents, lambda: Redactor(home=None))
    assert target.path is not None
    written = write_file(target.path, encode(merged), force)
    return Result(
        text=f"vllm-bug: wrote {terminal_safe(written)}: {len(entries_of(merged))} nodes, "
        f"schema_version {merged['schema_version']}\n"
    )
