"""vLLM's log lines that carry numbers about memory: the KV cache, concurrency, weights.

    GPU KV cache size: 150,745 tokens
    Maximum concurrency for 131,072 tokens per request: 1.15x
    Available KV cache memory: 12.5 GiB
    ... the estimated maximum model length is 102400.
    # GPU blocks: 1478                                           (V0)
    Loading model weights took 14.9888 GB                        (also 'Model loading took', 'model weights take')

and the two errors that say the KV cache is too small for max_model_len (V0's 'max seq len (N) is
larger than the maximum number of tokens that can be stored in KV cache (M)', V1's '... (X GiB KV cache
is needed, which is larger than the available KV cache memory (Y GiB)').
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.units import GIB, UNIT_BYTES, parse_count, to_bytes

_TRIGGERS = ("KV cache", "KV Cache", "blocks", "model weights", "Model loading", "max seq len")
_KV_TOKENS = lazy_compile(r"GPU KV cache size:\s*([\d,]+)\s*tokens")
_MAX_CONCURRENCY = lazy_compile(r"Maximum concurrency for ([\d,]+) tokens per request:\s*(\d+(?:\.\d+)?)x")
_ESTIMATED_MAX_LEN = lazy_compile(r"estimated maximum model length is\s*([\d,]+)")
_V0_KV_TOO_SMALL = lazy_compile(
    r"max seq len \(([\d,]+)\) is larger than the maximum number of tokens that can be stored in KV cache \(([\d,]+)\)"
)
_KV_NEEDED = lazy_compile(
    r"max seq len \(([\d,]+)\),? \(?(\d+(?:\.\d+)?) GiB KV cache is needed, "
    r"which is larger than the available KV cache memory \((\-?\d+(?:\.\d+)?) GiB\)"
)
_AVAILABLE_KV = lazy_compile(r"Available KV cache memory:\s*(-?\d+(?:\.\d+)?)\s*(GiB|GB|MiB)")
_KV_REST = lazy_compile(
    r"the rest of the memory reserved for KV Cache is\s*(-?\d+(?:\.\d+)?)\s*(GiB|GB)"
    r"|kv_cache_size=(-?\d+(?:\.\d+)?)(GiB|GB)"
)
_GPU_BLOCKS = lazy_compile(r"# GPU blocks:\s*(\d+)")
_WEIGHTS = lazy_compile(
    r"(?:Loading model weights took|Model loading took|model weights take)\s*(\d+(?:\.\d+)?)\s*(GiB|GB)"
)


@dataclass
class MemoryLog:
    """The first of each number the engine logged (None: not logged, or not a usable number)."""

    kv_cache_tokens: int | None = None  # 'GPU KV cache size: N tokens'
    max_concurrency: float | None = None  # 'Maximum concurrency for N tokens per request: X'
    concurrency_request_tokens: int | None = None  # its N: the max_model_len the engine ran with
    estimated_max_model_len: int | None = None  # '... the estimated maximum model length is Z'
    too_small_max_seq_len: int | None = None  # V0's error: 'max seq len (N) is larger than ... KV cache (M)'
    too_small_kv_tokens: int | None = None  # its M
    needed_max_seq_len: int | None = None  # V1's error: 'max seq len (N), (X GiB KV cache is needed ... (Y GiB)'
    needed_available_bytes: int | None = None  # its Y (may be negative)
    available_kv_cache_bytes: int | None = None  # 'Available KV cache memory: Y GiB' (V0: 'reserved for KV Cache is')
    gpu_blocks: int | None = None  # '# GPU blocks: N' (V0)
    model_weights_bytes: int | None = None  # 'Model loading took X GiB'


def parse_memory_log(text: str) -> MemoryLog | None:
    """The memory numbers vLLM logged in TEXT, or None when it logged none of them."""
    if not any(word in text for word in _TRIGGERS):
        return None
    found: dict[str, Any] = {}
    if m := _KV_TOKENS.search(text):
        found["kv_cache_tokens"] = parse_count(m.group(1))
    if m := _MAX_CONCURRENCY.search(text):
        found["max_concurrency"] = float(m.group(2))
        found["concurrency_request_tokens"] = parse_count(m.group(1))
    if m := _ESTIMATED_MAX_LEN.search(text):
        found["estimated_max_model_len"] = parse_count(m.group(1))
    if m := _V0_KV_TOO_SMALL.search(text):
        found["too_small_max_seq_len"] = parse_count(m.group(1))
        found["too_small_kv_tokens"] = parse_count(m.group(2))
    if m := _KV_NEEDED.search(text):
        found["needed_max_seq_len"] = parse_count(m.group(1))
        found["needed_available_bytes"] = to_bytes(m.group(3), GIB)
    if m := _AVAILABLE_KV.search(text):
        found["available_kv_cache_bytes"] = to_bytes(m.group(1), UNIT_BYTES[m.group(2).lower()])
    elif m := _KV_REST.search(text):
        found["available_kv_cache_bytes"] = to_bytes(m.group(1) or m.group(3), GIB)
    if m := _GPU_BLOCKS.search(text):
        found["gpu_blocks"] = parse_count(m.group(1))
    if m := _WEIGHTS.search(text):
        found["model_weights_bytes"] = to_bytes(m.group(1), GIB)
    return MemoryLog(**found) if found else None


# 'vLLM API server version 0.9.1', 'Initializing a V1 LLM engine (v0.11.0) with config', 'vLLM version 0.6.3.post1'
_VERSION_LINE = lazy_compile(
    r"(?:vLLM API server version|Initializing an? (?:V1 )?LLM engine \(v|vLLM version"
    r"|Starting vLLM API server [^\n]{0,40}?version)"
    r"\s*v?(\d+\.\d+(?:\.\d+)?(?:[.+-]?(?:post|rc|dev)\d*)*(?:\+[\w.]+)?)",
    re.IGNORECASE,
)


def parse_version_line(text: str) -> str | None:
    """The vLLM version the first startup line in TEXT names ('0.11.0'), or None."""
    m = _VERSION_LINE.search(text)
    return m.group(1) if m else None
