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
    return heads_split_problem(shape.num_attention_heads, None if shape.is_mla else shape.num_kv_heads, tp)


def heads_split_problem(attention_heads: int, kv_heads: int | None, tp: int) -> str | None:
    """Why vLLM would refuse to spread these heads over `tp` GPUs, or None. vLLM checks that the attention
    heads divide evenly (ModelConfig.verify_with_parallel_config); its QKV layer then splits the KV heads
    evenly, or replicates them when tp exceeds them, which needs tp to be a multiple of them. kv_heads is
    None when unknown or when the model has none to split (multi-head latent attention)."""
    if attention_heads % tp:
        return f"{attention_heads} attention heads are not divisible by --tensor-parallel-size {tp}"
    if kv_heads and (kv_heads % tp if tp <= kv_heads else tp % kv_heads):
        return f"{kv_heads} KV heads cannot be split or replicated evenly over --tensor-parallel-size {tp}"
    return None


def accepted_tp_sizes(attention_heads: int, kv_heads: int | None, gpus: int) -> list[int]:
    """Every tensor-parallel size up to `gpus` (at most MAX_TP_SEARCHED) that vLLM accepts for these heads."""
    if attention_heads < 1:
        return []
    limit = max(1, min(gpus, MAX_TP_SEARCHED))
    return [tp for tp in range(1, limit + 1) if heads_split_problem(attention_heads, kv_heads, tp) is None]


def valid_tp_sizes(shape: ModelShape, limit: int = MAX_TP_SEARCHED) -> list[int]:
    """Powers of two up to limit that vLLM accepts for this model."""
    sizes, tp = [], 1
    while tp <= limit:
        if tp_problem(shape, tp) is None:
            sizes.append(tp)
        tp *= 2
    return sizes
