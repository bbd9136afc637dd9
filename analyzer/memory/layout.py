"""A model spread over GPUs: which tensor-parallel sizes vLLM accepts, and the KV cache each GPU holds per token."""

from __future__ import annotations

import math

from vllm_bug.analyzer.memory.assumptions import MAX_TP_SEARCHED
from vllm_bug.analyzer.memory.dtypes import DTYPE_BYTES
from vllm_bug.analyzer.memory.shape import ModelShape


def kv_heads_per_gpu(num_kv_heads: int, tp: int) -> int:
    """KV heads each tensor-parallel rank stores: a share, or one replicated head when tp > kv heads."""
    return max(1, num_kv_heads // tp)


def kv_bytes_per_token(shape: ModelShape, kv_dtype: str, tp: int = 1, pp: int = 1) -> int:
    """KV-cache bytes one token takes on one GPU (tp=pp=1: the whole model)."""
    layers = math.ceil(shape.num_layers / pp)
    nbytes = DTYPE_BYTES[kv_dtype]
    if shape.mla_kv_lora_rank is not None:  # shape.is_mla
        # MLA caches one latent vector (kv_lora_rank + rope dims) per layer, the same on every TP rank
        return int(layers * (shape.mla_kv_lora_rank + (shape.mla_rope_head_dim or 0)) * nbytes)
    return int(2 * layers * kv_heads_per_gpu(shape.num_kv_heads, tp) * shape.head_dim * nbytes)


def tp_problem(shape: ModelShape, tp: int) -> str | None:
    """Why vLLM would refuse this tensor-parallel size, or None."""
    if shape.num_attention_heads % tp:
        return f"{shape.num_attention_heads} attention heads are not divisible by --tensor-parallel-size {tp}"
    kv = shape.num_kv_heads
    if not shape.is_mla and (kv % tp if tp <= kv else tp % kv):
        return f"{kv} KV heads cannot be split or replicated evenly over --tensor-parallel-size {tp}"
    return None


def valid_tp_sizes(shape: ModelShape, limit: int = MAX_TP_SEARCHED) -> list[int]:
    """Powers of two up to limit that vLLM accepts for this model."""
    sizes, tp = [], 1
    while tp <= limit:
        if tp_problem(shape, tp) is None:
            sizes.append(tp)
        tp *= 2
    return sizes
