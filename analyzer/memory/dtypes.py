"""Bytes per element of the dtypes vLLM accepts for weights and the KV cache."""

from __future__ import annotations

DTYPE_BYTES: dict[str, float] = {
    "float32": 4,
    "float": 4,
    "fp32": 4,
    "float16": 2,
    "half": 2,
    "fp16": 2,
    "bfloat16": 2,
    "bf16": 2,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
    "fp8_inc": 1,
    "int8": 1,
    "int4": 0.5,
}
FLOAT32 = ("float32", "float", "fp32")
FP8_KV_DTYPES = ("fp8", "fp8_e4m3", "fp8_e5m2")
ONLINE_QUANT_DTYPES = {"fp8", "int8", "int4"}  # weight formats that leave embeddings in 16 bits


def canonical_dtype(name: str | None) -> str:
    """'torch.BFloat16 ' -> 'bfloat16'; None -> 'auto'."""
    return str(name or "auto").strip().lower().replace("torch.", "")
