"""Offline vllm.LLM whose KV cache budget holds less than one sequence of max_model_len."""

import sys

from vllm import LLM

llm = LLM(
    model=sys.argv[1],
    max_model_len=2048,
    kv_cache_memory_bytes=1_000_000,
    enforce_eager=True,
    attention_backend="TRITON_ATTN",
)
print(llm.generate(["w1 w2 w3"]))
