"""Extractors that turn pasted text into Facts, one module per kind of fact.

Each reads the records of `vllm_bug.formats` (or, for prose that follows no format, its own few
patterns) and fills only what is still unknown, so a bundle's measured facts always win over what
its log text says. `vllm_bug.analyzer.textfacts` runs them in order.
"""
