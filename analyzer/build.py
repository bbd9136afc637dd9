"""One entry point from a loaded input to Facts, whatever the input was.

Every input is redacted before facts are drawn from it: pasted text was never redacted, and a
bundle may come from an older or modified collector; in a cluster bundle every node's payload is
redacted too. What the analyzer found to redact is kept in
Facts.redacted_here; a bundle's own summary stays in Facts.redactions.
"""

from __future__ import annotations

from vllm_bug.analyzer.bundlefacts import facts_from_bundle
from vllm_bug.analyzer.complete import complete_facts
from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.load import LoadedInput
from vllm_bug.analyzer.textfacts import facts_from_text, redacted_part_read
from vllm_bug.schema.cluster import scrub_every_node
from vllm_bug.schema.redact import Redactor

__all__ = ["build_facts", "facts_from_bundle", "facts_from_text"]


def build_facts(loaded: LoadedInput) -> Facts:
    redactor = Redactor(home=None)  # the analyzing user's home says nothing about the reporter's text
    if loaded.kind == "bundle" and loaded.doc is not None:
        facts = facts_from_bundle(scrub_every_node(loaded.doc, redactor))
    else:
        facts = facts_from_text(redacted_part_read(loaded.text or "", redactor))
    facts.redacted_here = redactor.summary()
    return complete_facts(facts)
