"""A model's shape, read from a Hugging Face config.json: what the memory arithmetic needs to know."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vllm_bug.analyzer.memory.dtypes import DTYPE_BYTES


class ShapeError(ValueError):
    """Inputs the memory arithmetic cannot use: a config that does not describe a model, an unknown dtype, ..."""


@dataclass(frozen=True)
class ModelShape:
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int | None = None
    vocab_size: int | None = None
    dtype: str = "bfloat16"
    max_position_embeddings: int | None = None
    num_parameters: int | None = None
    name: str | None = None
    architecture: str | None = None
    tie_word_embeddings: bool = False
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int | None = None
    num_shared_experts: int = 0
    shared_expert_intermediate_size: int | None = None
    num_dense_layers: int = 0  # MoE models whose first layers have a dense MLP (DeepSeek)
    mla_kv_lora_rank: int | None = None  # multi-head latent attention (DeepSeek-V2/V3)
    mla_rope_head_dim: int | None = None
    mla_q_lora_rank: int | None = None
    mla_qk_nope_head_dim: int | None = None
    mla_v_head_dim: int | None = None
    sliding_window: int | None = None
    sliding_window_layers: int = 0
    quant_method: str | None = None
    quant_bytes_per_weight: float | None = None
    quant_experts_only: bool = False

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    @property
    def is_mla(self) -> bool:
        return self.mla_kv_lora_rank is not None


def _required_count(config: dict[str, Any], key: str, *, limit: int = 10**7) -> int:
    value = _as_count(config, key, limit=limit)
    if value is None:
        raise ShapeError(f"config has no {key}")
    return value


def _as_count(config: dict[str, Any], key: str, *, limit: int = 10**7) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise ShapeError(f"config's {key} is not a positive integer up to {limit}: {str(value)[:40]!r}")
    return value


def _first_count(config: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = _as_count(config, key)
        if value is not None:
            return value
    return None


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    """Multimodal configs nest the language model under text_config (llm_config, language_config)."""
    for key in ("text_config", "llm_config", "language_config"):
        inner = config.get(key)
        if isinstance(inner, dict) and "num_hidden_layers" in inner:
            merged = {k: v for k, v in config.items() if k != key}
            merged.update(inner)
            for k in ("torch_dtype", "dtype", "quantization_config"):  # often only at the top level
                if k not in inner and k in config:
                    merged[k] = config[k]
            return merged
    return config


def _quantization(config: dict[str, Any]) -> tuple[str | None, float | None, bool]:
    """(method, bytes per quantized weight, only the MoE experts are quantized)."""
    qc = config.get("quantization_config")
    if not isinstance(qc, dict):
        return None, None, False
    method = str(qc.get("quant_method") or "").lower() or None
    if method is None:
        return None, None, False
    if method == "mxfp4":
        return method, 4.25 / 8, True  # 4-bit values plus one 8-bit scale per 32
    if method in ("modelopt_fp4", "nvfp4"):
        return method, 4.5 / 8, False  # 4-bit values plus one fp8 scale per 16
    if method == "modelopt":
        algo = str(qc.get("quant_algo") or "").upper()
        return method, (4.5 / 8 if "FP4" in algo else 1.0), False
    if method in ("fp8", "fbgemm_fp8", "ptpc_fp8", "fp_quant"):
        return method, 1.0, False
    if method == "bitsandbytes":
        return method, (0.5 if qc.get("load_in_4bit") else 1.0), False
    if method == "compressed-tensors":
        bits = _compressed_tensors_bits(qc)
        return method, (bits / 8 if bits else 1.0), False
    bits = qc.get("bits") or qc.get("w_bit") or qc.get("weight_bits")
    if isinstance(bits, int) and 1 <= bits <= 16:
        group = qc.get("group_size") or qc.get("q_group_size") or 128
        group = group if isinstance(group, int) and group > 0 else 128
        # a 16-bit scale (and a zero point of `bits` bits) per group of weights
        return method, bits / 8 + (16 + bits) / 8 / group, False
    return method, 0.5 + 20 / 8 / 128, False  # unknown method: assume 4-bit with group scales


def _compressed_tensors_bits(qc: dict[str, Any]) -> int | None:
    groups = qc.get("config_groups")
    if not isinstance(groups, dict):
        return None
    for group in groups.values():
        weights = group.get("weights") if isinstance(group, dict) else None
        if isinstance(weights, dict) and isinstance(weights.get("num_bits"), int):
            return weights["num_bits"]
    return None


def _dtype_of(config: dict[str, Any]) -> str:
    raw = config.get("torch_dtype") or config.get("dtype") or "bfloat16"
    name = str(raw).replace("torch.", "").lower()
    return name if name in DTYPE_BYTES else "bfloat16"


def _sliding_layers(config: dict[str, Any], num_layers: int) -> tuple[int | None, int]:
    window = config.get("sliding_window")
    if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
        return None, 0
    if config.get("use_sliding_window") is False:
        return None, 0
    kinds = config.get("layer_types")
    if isinstance(kinds, list) and kinds:
        return window, sum(1 for k in kinds[:num_layers] if k == "sliding_attention")
    pattern = config.get("layer_types_pattern")
    if isinstance(pattern, list) and pattern:
        return window, sum(1 for i in range(num_layers) if pattern[i % len(pattern)] == "sliding_attention")
    return window, num_layers


def shape_from_config(config: dict[str, Any], name: str | None = None) -> ModelShape:
    """A ModelShape from a Hugging Face config.json dict; raises ShapeError when it lacks the basics."""
    if not isinstance(config, dict):
        raise ShapeError("config is not a JSON object")
    config = _text_config(config)
    layers = _required_count(config, "num_hidden_layers", limit=10_000)
    heads = _required_count(config, "num_attention_heads", limit=100_000)
    hidden = _required_count(config, "hidden_size")
    kv_heads = _as_count(config, "num_key_value_heads", limit=100_000) or heads
    head_dim = _as_count(config, "head_dim", limit=100_000)
    if head_dim is None:
        if hidden % heads:
            raise ShapeError(f"config has no head_dim and hidden_size {hidden} is not a multiple of {heads} heads")
        head_dim = hidden // heads
    num_experts = _first_count(config, "num_local_experts", "num_experts", "n_routed_experts") or 0
    method, quant_bytes, experts_only = _quantization(config)
    window, sliding = _sliding_layers(config, layers)
    architectures = config.get("architectures")
    return ModelShape(
        name=name or _str_or_none(config.get("name")) or _str_or_none(config.get("_name_or_path")),
        architecture=str(architectures[0]) if isinstance(architectures, list) and architectures else None,
        num_layers=layers,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        intermediate_size=_as_count(config, "intermediate_size"),
        vocab_size=_as_count(config, "vocab_size"),
        dtype=_dtype_of(config),
        max_position_embeddings=_as_count(config, "max_position_embeddings", limit=10**9),
        num_parameters=_parameter_count(config.get("num_parameters")),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        num_experts=num_experts,
        num_experts_per_tok=_first_count(config, "num_experts_per_tok", "experts_per_token", "moe_topk") or 0,
        moe_intermediate_size=_as_count(config, "moe_intermediate_size"),
        num_shared_experts=_as_count(config, "n_shared_experts", limit=1024) or 0,
        shared_expert_intermediate_size=_as_count(config, "shared_expert_intermediate_size"),
        num_dense_layers=_dense_layers(config, layers) if num_experts > 1 else 0,
        mla_kv_lora_rank=_as_count(config, "kv_lora_rank"),
        mla_rope_head_dim=_as_count(config, "qk_rope_head_dim"),
        mla_q_lora_rank=_as_count(config, "q_lora_rank"),
        mla_qk_nope_head_dim=_as_count(config, "qk_nope_head_dim"),
        mla_v_head_dim=_as_count(config, "v_head_dim"),
        sliding_window=window,
        sliding_window_layers=sliding,
        quant_method=method,
        quant_bytes_per_weight=quant_bytes,
        quant_experts_only=experts_only,
    )


def _parameter_count(value: Any) -> int | None:
    """The published parameter count, when it is a plausible one."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 10**15 else None


def _dense_layers(config: dict[str, Any], layers: int) -> int:
    """MoE layers at the start that have a dense MLP instead (DeepSeek's first_k_dense_replace)."""
    return min(_as_count(config, "first_k_dense_replace", limit=10_000) or 0, layers)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
