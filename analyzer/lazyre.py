"""Lazily compiled regexes; the implementation lives in vllm_bug.formats.lazyre (rules import it from here)."""

from vllm_bug.formats.lazyre import LazyPattern, lazy_compile

__all__ = ["LazyPattern", "lazy_compile"]
