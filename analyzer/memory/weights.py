"""Parameters counted from a model's shape, and the bytes its weights take in a given dtype."""

from __future__ import annotations

from dataclasses import dataclass

from vllm_bug.analyzer.memory.dtypes import DTYPE_BYTES, FLOAT32, ONLINE_QUANT_DTYPES, canonical_dtype
from vllm_bug.analyzer.memory.shape import ModelShape, ShapeError
from vllm_bug.analyzer.memory.units import plain_number


@dataclass(frozen=True)
class ParamBreakdown:
    embedding: int
    lm_head: int
    attention: int
    dense_mlp: int
    experts: int  # routed and shared experts plus routers
    norms: int

    @property
    def total(self) -> int:
        return self.embedding + self.lm_head + self.attention + self.dense_mlp + self.experts + self.norms


def param_breakdown(shape: ModelShape) -> ParamBreakdown | None:
    """Parameters counted from the shape (biases ignored); None without vocab or MLP sizes."""
    if shape.vocab_size is None or shape.intermediate_size is None and shape.moe_intermediate_size is None:
        return None
    h, layers = shape.hidden_size, shape.num_layers
    embedding = shape.vocab_size * h
    lm_head = 0 if shape.tie_word_embeddings else embedding
    attention = layers * _attention_params(shape)
    if shape.is_moe:
        expert_inter = shape.moe_intermediate_size or shape.intermediate_size or 0
        shared = shape.num_shared_experts * 3 * h * expert_inter
        if shape.shared_expert_intermediate_size:
            shared += 3 * h * shape.shared_expert_intermediate_size
        per_moe_layer = shape.num_experts * 3 * h * expert_inter + shared + h * shape.num_experts
        dense_layers = shape.num_dense_layers
        experts = (layers - dense_layers) * per_moe_layer
        dense_mlp = dense_layers * 3 * h * (shape.intermediate_size or expert_inter)
    else:
        experts = 0
        dense_mlp = layers * 3 * h * (shape.intermediate_size or 0)
    norms = (2 * layers + 1) * h
    return ParamBreakdown(embedding, lm_head, attention, dense_mlp, experts, norms)


def _attention_params(shape: ModelShape) -> int:
    h = shape.hidden_size
    if shape.mla_kv_lora_rank is not None:  # shape.is_mla, spelled out for the type checker
        heads = shape.num_attention_heads
        rope = shape.mla_rope_head_dim or 0
        nope = shape.mla_qk_nope_head_dim or shape.head_dim
        v_dim = shape.mla_v_head_dim or shape.head_dim
        q_dim = heads * (nope + rope)
        q = h * shape.mla_q_lora_rank + shape.mla_q_lora_rank * q_dim if shape.mla_q_lora_rank else h * q_dim
        kv = h * (shape.mla_kv_lora_rank + rope) + shape.mla_kv_lora_rank * heads * (nope + v_dim)
        return q + kv + heads * v_dim * h
    q_out = shape.num_attention_heads * shape.head_dim
    kv_out = shape.num_kv_heads * shape.head_dim
    return h * q_out + 2 * h * kv_out + q_out * h


def activation_dtype(shape: ModelShape, weight_dtype: str) -> str:
    """The 16/32-bit dtype vLLM computes in: --dtype when it is one, else the checkpoint's.

    vLLM's dtype "auto" downcasts float32 checkpoints to 16 bits.
    """
    wd = canonical_dtype(weight_dtype)
    if wd in DTYPE_BYTES and wd not in ONLINE_QUANT_DTYPES:
        return wd
    return "bfloat16" if shape.dtype in FLOAT32 else shape.dtype


@dataclass(frozen=True)
class WeightsEstimate:
    total_bytes: int
    parameters: int
    formula: str  # how total_bytes was computed, for the arithmetic lines


def weights_estimate(shape: ModelShape, weight_dtype: str = "auto") -> WeightsEstimate:
    """Bytes of weights: parameter count x bytes per parameter, per part when quantized."""
    wd = canonical_dtype(weight_dtype)
    if wd not in ("auto",) and wd not in DTYPE_BYTES:
        raise ShapeError(f"unknown weight dtype {weight_dtype!r} (auto, float16, bfloat16, float32, fp8, int8, int4)")
    act = activation_dtype(shape, wd)
    act_bytes = DTYPE_BYTES[act]
    breakdown = param_breakdown(shape)
    params = shape.num_parameters or (breakdown.total if breakdown else None)
    if params is None:
        raise ShapeError(
            "cannot size the weights: the config has neither a parameter count nor vocab_size and intermediate_size"
        )
    if wd in ONLINE_QUANT_DTYPES:
        quant_bytes, experts_only, label = DTYPE_BYTES[wd], False, wd
    elif shape.quant_method:
        quant_bytes, experts_only, label = (
            shape.quant_bytes_per_weight or 1.0,
            shape.quant_experts_only,
            shape.quant_method,
        )
    else:
        return WeightsEstimate(
            int(params * act_bytes), params, f"{params:,} params x {plain_number(act_bytes)} bytes ({act})"
        )
    if breakdown is None:
        total = int(params * quant_bytes)
        return WeightsEstimate(
            total,
            params,
            f"{params:,} params x {plain_number(quant_bytes)} bytes ({label}, all weights assumed quantized)",
        )
    # Embeddings, norms and (for MoE-only formats) attention stay in 16 bits; the published count's
    # difference from the shape's (biases, extra modules) is kept at 16 bits too.
    if experts_only:
        quantized = breakdown.experts
        where = "experts"
    else:
        quantized = breakdown.attention + breakdown.dense_mlp + breakdown.experts
        where = "linear layers"
    unquantized = max(params - quantized, 0)
    total = int(quantized * quant_bytes + unquantized * act_bytes)
    formula = (
        f"{quantized:,} {where} params x {plain_number(quant_bytes)} bytes ({label}) "
        f"+ {unquantized:,} other params x {plain_number(act_bytes)} bytes ({act})"
    )
    return WeightsEstimate(total, params, formula)
