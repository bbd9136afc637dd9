"""Per-GPU memory beyond weights and KV cache: an explicit, stated estimate (see assumptions)."""

from __future__ import annotations

from dataclasses import dataclass

from vllm_bug.analyzer.memory.assumptions import (
    ASSUMED_BATCHED_TOKENS,
    FIXED_OVERHEAD_BYTES,
    MULTI_GPU_OVERHEAD_BYTES,
    SAMPLER_LOGIT_BYTES,
)
from vllm_bug.analyzer.memory.dtypes import DTYPE_BYTES
from vllm_bug.analyzer.memory.shape import ModelShape
from vllm_bug.analyzer.memory.units import gib, plain_number


@dataclass
class Overhead:
    fixed_bytes: int
    multi_gpu_bytes: int
    activation_bytes: int
    sampler_bytes: int
    formula: str

    @property
    def total_bytes(self) -> int:
        return self.fixed_bytes + self.multi_gpu_bytes + self.activation_bytes + self.sampler_bytes


def overhead_estimate(shape: ModelShape, act_dtype: str, tp: int, pp: int, max_num_seqs: int) -> Overhead:
    """Per-GPU memory beyond weights and KV cache, as an explicit, stated estimate."""
    act_bytes = DTYPE_BYTES[act_dtype]
    if shape.is_moe:
        mlp_width = shape.num_experts_per_tok * (shape.moe_intermediate_size or shape.intermediate_size or 0)
    else:
        mlp_width = shape.intermediate_size or 4 * shape.hidden_size
    per_token = 4 * shape.hidden_size + 2 * mlp_width // tp
    activation = int(ASSUMED_BATCHED_TOKENS * per_token * act_bytes)
    sampler = max_num_seqs * (shape.vocab_size or 0) * SAMPLER_LOGIT_BYTES
    multi = MULTI_GPU_OVERHEAD_BYTES if tp * pp > 1 else 0
    formula = (
        f"{gib(FIXED_OVERHEAD_BYTES)} fixed (CUDA context, CUDA graphs, non-torch)"
        + (f" + {gib(multi)} NCCL buffers" if multi else "")
        + f" + {gib(activation)} activations ({ASSUMED_BATCHED_TOKENS:,} batched tokens x"
        f" (4 x {shape.hidden_size:,} + 2 x {mlp_width:,}/{tp}) x {plain_number(act_bytes)} bytes)"
        + f" + {gib(sampler)} sampler ({max_num_seqs:,} seqs x {shape.vocab_size or 0:,} vocab x 4 bytes)"
    )
    return Overhead(FIXED_OVERHEAD_BYTES, multi, activation, sampler, formula)
