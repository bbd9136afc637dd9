"""Memory arithmetic for serving a model with vLLM: weights per GPU, KV cache per token, what fits.

Units: sizes are bytes; they are printed in GiB (2**30 bytes), the unit nvidia-smi's MiB and
vLLM's log lines use. Vendors' "80GB" is a marketing number: an A100-80GB reports 81920 MiB
(80.0 GiB), an H100 80GB HBM3 81559 MiB (79.6 GiB), an H200 143771 MiB (140.4 GiB).

Everything here is an estimate of what vLLM's own profiling run will measure. Two parts are
assumptions and are printed as such:
- the activation/overhead allowance (a fixed part for the CUDA context, CUDA graphs and memory
  outside torch; NCCL buffers when more than one GPU; the activation peak of one forward pass of
  ASSUMED_BATCHED_TOKENS tokens; the sampler's float32 logits for max_num_seqs requests);
- FP8 KV cache support: `--kv-cache-dtype fp8` (e4m3) is suggested only on compute capability
  >= 8.9. On Ampere, vLLM V1's Triton attention path fails with "type fp8e4nv not supported in this
  architecture" (vllm-project/vllm#26431); e5m2 is a storage-only format that has worked on A100
  in the past, so it is mentioned as a caveat, never suggested.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

GIB = 1 << 30
KIB = 1 << 10
BLOCK_TOKENS = 16  # vLLM's default KV block size: token capacity comes in whole blocks

FIXED_OVERHEAD_BYTES = int(1.5 * GIB)  # CUDA context, CUDA graphs, allocations outside torch
MULTI_GPU_OVERHEAD_BYTES = int(0.5 * GIB)  # NCCL / custom all-reduce buffers
ASSUMED_BATCHED_TOKENS = 8192  # tokens in vLLM's profiling forward pass (max_num_batched_tokens)
SAMPLER_LOGIT_BYTES = 4  # the sampler warm-up holds float32 logits for max_num_seqs requests
FP8_KV_MIN_CC = (8, 9)
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92  # vLLM's default since it moved from 0.90
MAX_TP_SEARCHED = 64

DTYPE_BYTES: dict[str, float] = {
    "float32": 4, "float": 4, "fp32": 4,
    "float16": 2, "half": 2, "fp16": 2,
    "bfloat16": 2, "bf16": 2,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_inc": 1, "int8": 1,
    "int4": 0.5,
}
SIXTEEN_BIT = {"float16", "half", "fp16", "bfloat16", "bf16"}
ONLINE_QUANT_DTYPES = {"fp8", "int8", "int4"}  # weight formats that leave embeddings in 16 bits


class ShapeError(ValueError):
    """A config that does not describe a model this arithmetic can handle."""


# --------------------------------------------------------------------------------- model shape


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


def _as_count(config: dict[str, Any], key: str, *, required: bool = False, limit: int = 10**7) -> int | None:
    value = config.get(key)
    if value is None:
        if required:
            raise ShapeError(f"config has no {key}")
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
    layers = _as_count(config, "num_hidden_layers", required=True, limit=10_000)
    heads = _as_count(config, "num_attention_heads", required=True, limit=100_000)
    hidden = _as_count(config, "hidden_size", required=True)
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
    params = config.get("num_parameters")
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
        num_parameters=params if isinstance(params, int) and not isinstance(params, bool) and 0 < params <= 10**15 else None,
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        num_experts=num_experts,
        num_experts_per_tok=_first_count(config, "num_experts_per_tok", "experts_per_token", "moe_topk") or 0,
        moe_intermediate_size=_as_count(config, "moe_intermediate_size"),
        num_shared_experts=_as_count(config, "n_shared_experts", limit=1024) or 0,
        shared_expert_intermediate_size=_as_count(config, "shared_expert_intermediate_size"),
        num_dense_layers=min(_as_count(config, "first_k_dense_replace", limit=10_000) or 0, layers) if num_experts > 1 else 0,
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


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


# --------------------------------------------------------------------------------- built-in table


@lru_cache(maxsize=1)
def builtin_models() -> tuple[dict[str, Any], ...]:
    text = resources.files("vllm_bug.analyzer").joinpath("data/models.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["models"])


_SUFFIXES = re.compile(r"(-(instruct|chat|it|hf|base|\d{4}))+$")


def _normalise_name(name: str) -> str:
    n = name.strip().rstrip("/").lower()
    n = n.rsplit("/", 1)[-1]
    if n.startswith("meta-llama-"):
        n = n[len("meta-"):]
    return _SUFFIXES.sub("", n)


def lookup_model(name: str) -> ModelShape | None:
    """A built-in model by name: case-insensitive, with or without org prefix and -Instruct/-chat/-it/-hf."""
    if not name or not name.strip():
        return None
    wanted = {name.strip().lower(), _normalise_name(name)}
    for entry in builtin_models():
        keys = {entry["name"].lower(), _normalise_name(entry["name"])}
        keys.update(a.lower() for a in entry.get("aliases", []))
        keys.update(_normalise_name(a) for a in entry.get("aliases", []))
        if wanted & keys:
            return shape_from_config(entry, name=entry["name"])
    return None


# --------------------------------------------------------------------------------- parameters


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
    if shape.is_mla:
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


# --------------------------------------------------------------------------------- dtypes


def activation_dtype(shape: ModelShape, weight_dtype: str) -> str:
    """The 16/32-bit dtype vLLM computes in: --dtype when it is one, else the checkpoint's.

    vLLM's dtype "auto" downcasts float32 checkpoints to 16 bits.
    """
    wd = _canonical_dtype(weight_dtype)
    if wd in DTYPE_BYTES and wd not in ONLINE_QUANT_DTYPES:
        return wd
    return "bfloat16" if shape.dtype in ("float32", "float", "fp32") else shape.dtype


def resolve_kv_cache_dtype(shape: ModelShape, weight_dtype: str, kv_cache_dtype: str) -> str:
    kv = _canonical_dtype(kv_cache_dtype)
    if kv in ("", "auto"):
        return activation_dtype(shape, weight_dtype)
    if kv not in DTYPE_BYTES:
        raise ShapeError(f"unknown KV cache dtype {kv_cache_dtype!r} (auto, fp8, fp8_e4m3, fp8_e5m2, float16, bfloat16)")
    return kv


def _canonical_dtype(name: str | None) -> str:
    return str(name or "auto").strip().lower().replace("torch.", "")


@dataclass(frozen=True)
class WeightsEstimate:
    total_bytes: int
    parameters: int
    formula: str  # how total_bytes was computed, for the arithmetic lines


def weights_estimate(shape: ModelShape, weight_dtype: str = "auto") -> WeightsEstimate:
    """Bytes of weights: parameter count x bytes per parameter, per part when quantized."""
    wd = _canonical_dtype(weight_dtype)
    if wd not in ("auto",) and wd not in DTYPE_BYTES:
        raise ShapeError(f"unknown weight dtype {weight_dtype!r} (auto, float16, bfloat16, float32, fp8, int8, int4)")
    act = activation_dtype(shape, wd)
    act_bytes = DTYPE_BYTES[act]
    breakdown = param_breakdown(shape)
    params = shape.num_parameters or (breakdown.total if breakdown else None)
    if params is None:
        raise ShapeError("cannot size the weights: the config has neither a parameter count nor vocab_size and intermediate_size")
    if wd in ONLINE_QUANT_DTYPES:
        quant_bytes, experts_only, label = DTYPE_BYTES[wd], False, wd
    elif shape.quant_method:
        quant_bytes, experts_only, label = shape.quant_bytes_per_weight or 1.0, shape.quant_experts_only, shape.quant_method
    else:
        return WeightsEstimate(int(params * act_bytes), params, f"{params:,} params x {_num(act_bytes)} bytes ({act})")
    if breakdown is None:
        total = int(params * quant_bytes)
        return WeightsEstimate(total, params, f"{params:,} params x {_num(quant_bytes)} bytes ({label}, all weights assumed quantized)")
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
    formula = (f"{quantized:,} {where} params x {_num(quant_bytes)} bytes ({label}) "
               f"+ {unquantized:,} other params x {_num(act_bytes)} bytes ({act})")
    return WeightsEstimate(total, params, formula)


# --------------------------------------------------------------------------------- KV cache


def kv_heads_per_gpu(num_kv_heads: int, tp: int) -> int:
    """KV heads each tensor-parallel rank stores: a share, or one replicated head when tp > kv heads."""
    return max(1, num_kv_heads // tp)


def kv_bytes_per_token(shape: ModelShape, kv_dtype: str, tp: int = 1, pp: int = 1) -> int:
    """KV-cache bytes one token takes on one GPU (tp=pp=1: the whole model)."""
    layers = math.ceil(shape.num_layers / pp)
    nbytes = DTYPE_BYTES[kv_dtype]
    if shape.is_mla:
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


# --------------------------------------------------------------------------------- the estimate


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
    formula = (f"{gib(FIXED_OVERHEAD_BYTES)} fixed (CUDA context, CUDA graphs, non-torch)"
               + (f" + {gib(multi)} NCCL buffers" if multi else "")
               + f" + {gib(activation)} activations ({ASSUMED_BATCHED_TOKENS:,} batched tokens x"
               f" (4 x {shape.hidden_size:,} + 2 x {mlp_width:,}/{tp}) x {_num(act_bytes)} bytes)"
               + f" + {gib(sampler)} sampler ({max_num_seqs:,} seqs x {shape.vocab_size or 0:,} vocab x 4 bytes)")
    return Overhead(FIXED_OVERHEAD_BYTES, multi, activation, sampler, formula)


@dataclass
class Capacity:
    """What one configuration leaves for the KV cache and how many tokens that holds."""

    tp: int
    pp: int
    kv_dtype: str
    weights_per_gpu_bytes: int
    overhead_bytes: int
    usable_bytes: int
    kv_budget_bytes: int
    kv_bytes_per_token_per_gpu: int
    tokens_fit: int
    tokens_needed: int

    @property
    def kv_needed_bytes(self) -> int:
        return self.tokens_needed * self.kv_bytes_per_token_per_gpu

    @property
    def fits(self) -> bool:
        return self.tokens_fit >= self.tokens_needed


@dataclass
class Alternatives:
    max_num_seqs_at_max_model_len: int
    max_model_len_for_max_num_seqs: int  # 0: not even one block per sequence
    smallest_tp_that_fits: int | None
    smallest_tp_needs_more_gpus: bool
    gpu_memory_utilization_needed: float  # may exceed 1.0: then no value fits
    fp8_kv_fits: bool
    fp8_kv_supported: bool | None  # None: compute capability unknown
    fp8_kv_max_num_seqs: int
    fp8_kv_max_model_len: int


@dataclass
class MemoryEstimate:
    model: str | None
    gpu_memory_bytes: int
    num_gpus: int
    tp: int
    pp: int
    max_model_len: int
    max_num_seqs: int
    gpu_memory_utilization: float
    weight_dtype: str
    activation_dtype: str
    kv_cache_dtype: str
    compute_capability: tuple[int, int] | None
    parameters: int
    weights_bytes: int
    weights_per_gpu_bytes: int
    kv_bytes_per_token_model: int
    kv_bytes_per_token_per_gpu: int
    kv_heads_per_gpu: int | None
    usable_bytes_per_gpu: int
    overhead_bytes_per_gpu: int
    kv_budget_bytes_per_gpu: int
    kv_tokens_fit: int
    kv_tokens_needed: int
    kv_bytes_needed_per_gpu: int
    one_sequence_fits: bool  # what vLLM checks at start-up
    memory_fits: bool  # max_num_seqs sequences of max_model_len tokens at once, memory-wise
    fits: bool  # memory_fits and vLLM would accept the parallel layout
    alternatives: Alternatives
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["compute_capability"] = ".".join(map(str, self.compute_capability)) if self.compute_capability else None
        data["units"] = "bytes (printed lines use GiB = 2**30 bytes)"
        return data


def _capacity(shape: ModelShape, weights: WeightsEstimate, *, gpu_memory_bytes: int, tp: int, pp: int,
              utilization: float, act_dtype: str, kv_dtype: str, max_num_seqs: int, tokens_needed: int) -> Capacity:
    per_gpu = weights.total_bytes // (tp * pp)
    overhead = overhead_estimate(shape, act_dtype, tp, pp, max_num_seqs).total_bytes
    usable = int(gpu_memory_bytes * utilization)
    budget = usable - per_gpu - overhead
    per_token = kv_bytes_per_token(shape, kv_dtype, tp, pp)
    tokens = max(budget, 0) // per_token // BLOCK_TOKENS * BLOCK_TOKENS
    return Capacity(tp, pp, kv_dtype, per_gpu, overhead, usable, budget, per_token, tokens, tokens_needed)


def estimate(shape: ModelShape, gpu_memory_bytes: int, num_gpus: int = 1, tp: int | None = None, pp: int = 1,
             max_model_len: int | None = None, max_num_seqs: int = 1,
             gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION, weight_dtype: str = "auto",
             kv_cache_dtype: str = "auto", compute_capability: tuple[int, int] | None = None,
             gpu_label: str | None = None) -> MemoryEstimate:
    """The whole arithmetic for one configuration, with the alternatives that would fit.

    tp defaults to num_gpus // pp; max_model_len to the model's max_position_embeddings.
    Raises ShapeError when the inputs cannot be used (unknown dtype, no context length, ...).
    """
    if gpu_memory_bytes <= 0:
        raise ShapeError("GPU memory must be positive")
    if not 0 < gpu_memory_utilization <= 1:
        raise ShapeError(f"gpu_memory_utilization must be in (0, 1], not {gpu_memory_utilization}")
    pp = max(1, pp)
    tp = tp or max(1, num_gpus // pp)
    if max_model_len is None:
        if shape.max_position_embeddings is None:
            raise ShapeError("no max_model_len given and the config has no max_position_embeddings")
        max_model_len = shape.max_position_embeddings
    max_num_seqs = max(1, max_num_seqs)
    weights = weights_estimate(shape, weight_dtype)
    act = activation_dtype(shape, weight_dtype)
    kv_dtype = resolve_kv_cache_dtype(shape, weight_dtype, kv_cache_dtype)
    tokens_needed = max_model_len * max_num_seqs
    common = dict(gpu_memory_bytes=gpu_memory_bytes, pp=pp, act_dtype=act, max_num_seqs=max_num_seqs,
                  tokens_needed=tokens_needed)
    cap = _capacity(shape, weights, tp=tp, utilization=gpu_memory_utilization, kv_dtype=kv_dtype, **common)

    problems = []
    if (why := tp_problem(shape, tp)) is not None:
        problems.append(f"vLLM will refuse this: {why}")
    if tp * pp > num_gpus:
        problems.append(f"tensor-parallel {tp} x pipeline-parallel {pp} = {tp * pp} GPUs, but only {num_gpus} given")

    alternatives = _alternatives(shape, weights, cap, num_gpus=num_gpus, utilization=gpu_memory_utilization,
                                 max_model_len=max_model_len, max_num_seqs=max_num_seqs,
                                 compute_capability=compute_capability, common=common)
    result = MemoryEstimate(
        model=shape.name, gpu_memory_bytes=gpu_memory_bytes, num_gpus=num_gpus, tp=tp, pp=pp,
        max_model_len=max_model_len, max_num_seqs=max_num_seqs, gpu_memory_utilization=gpu_memory_utilization,
        weight_dtype=_canonical_dtype(weight_dtype), activation_dtype=act, kv_cache_dtype=kv_dtype,
        compute_capability=compute_capability, parameters=weights.parameters, weights_bytes=weights.total_bytes,
        weights_per_gpu_bytes=cap.weights_per_gpu_bytes,
        kv_bytes_per_token_model=kv_bytes_per_token(shape, kv_dtype),
        kv_bytes_per_token_per_gpu=cap.kv_bytes_per_token_per_gpu,
        kv_heads_per_gpu=None if shape.is_mla else kv_heads_per_gpu(shape.num_kv_heads, tp),
        usable_bytes_per_gpu=cap.usable_bytes, overhead_bytes_per_gpu=cap.overhead_bytes,
        kv_budget_bytes_per_gpu=cap.kv_budget_bytes, kv_tokens_fit=cap.tokens_fit, kv_tokens_needed=tokens_needed,
        kv_bytes_needed_per_gpu=cap.kv_needed_bytes,
        one_sequence_fits=cap.tokens_fit >= max_model_len and not problems,
        memory_fits=cap.fits, fits=cap.fits and not problems, alternatives=alternatives, problems=problems,
    )
    result.lines = _arithmetic_lines(shape, weights, result, gpu_label)
    result.suggestions = _suggestions(result)
    result.notes = _notes(shape, result)
    return result


def _alternatives(shape: ModelShape, weights: WeightsEstimate, cap: Capacity, *, num_gpus: int, utilization: float,
                  max_model_len: int, max_num_seqs: int, compute_capability: tuple[int, int] | None,
                  common: dict[str, Any]) -> Alternatives:
    smallest_tp = None
    for size in valid_tp_sizes(shape):
        trial = _capacity(shape, weights, tp=size, utilization=utilization, kv_dtype=cap.kv_dtype, **common)
        if trial.fits:
            smallest_tp = size
            break
    fixed_need = cap.weights_per_gpu_bytes + cap.overhead_bytes + cap.kv_needed_bytes
    utilization_needed = math.ceil(fixed_need / common["gpu_memory_bytes"] * 100) / 100
    fp8 = _capacity(shape, weights, tp=cap.tp, utilization=utilization, kv_dtype="fp8", **common)
    return Alternatives(
        max_num_seqs_at_max_model_len=cap.tokens_fit // max_model_len,
        max_model_len_for_max_num_seqs=cap.tokens_fit // max_num_seqs // BLOCK_TOKENS * BLOCK_TOKENS,
        smallest_tp_that_fits=smallest_tp,
        smallest_tp_needs_more_gpus=smallest_tp is not None and smallest_tp * cap.pp > num_gpus,
        gpu_memory_utilization_needed=utilization_needed,
        fp8_kv_fits=fp8.fits,
        fp8_kv_supported=None if compute_capability is None else tuple(compute_capability) >= FP8_KV_MIN_CC,
        fp8_kv_max_num_seqs=fp8.tokens_fit // max_model_len,
        fp8_kv_max_model_len=fp8.tokens_fit // max_num_seqs // BLOCK_TOKENS * BLOCK_TOKENS,
    )


# --------------------------------------------------------------------------------- wording


def gib(nbytes: float) -> str:
    return f"{nbytes / GIB:,.2f} GiB"


def _num(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def _arithmetic_lines(shape: ModelShape, weights: WeightsEstimate, r: MemoryEstimate, gpu_label: str | None) -> list[str]:
    kv_bytes = DTYPE_BYTES[r.kv_cache_dtype]
    lines = [
        f"Model: {shape.name or 'from config'}: {shape.num_layers} layers, {shape.num_attention_heads} attention heads, "
        + (f"MLA latent {shape.mla_kv_lora_rank} + rope {shape.mla_rope_head_dim or 0}" if shape.is_mla
           else f"{shape.num_kv_heads} KV heads, head_dim {shape.head_dim}")
        + f", {weights.parameters / 1e9:,.2f}B parameters"
        + (f", MoE {shape.num_experts} experts ({shape.num_experts_per_tok} active)" if shape.is_moe else ""),
        f"GPUs: {r.num_gpus} x {gib(r.gpu_memory_bytes)}" + (f" ({gpu_label})" if gpu_label else "")
        + f"; tensor-parallel {r.tp}, pipeline-parallel {r.pp}",
        f"Weights: {weights.formula} = {r.weights_bytes / 1e9:,.1f} GB = {gib(r.weights_bytes)}; "
        f"per GPU: / {r.tp * r.pp} = {gib(r.weights_per_gpu_bytes)}",
    ]
    if shape.is_mla:
        latent = shape.mla_kv_lora_rank + (shape.mla_rope_head_dim or 0)
        lines.append(
            f"KV cache per token (MLA latent, the same on every TP rank): {math.ceil(shape.num_layers / r.pp)} layers x "
            f"({shape.mla_kv_lora_rank} + {shape.mla_rope_head_dim or 0}) x {_num(kv_bytes)} bytes ({r.kv_cache_dtype}) "
            f"= {r.kv_bytes_per_token_per_gpu:,} bytes ({r.kv_bytes_per_token_per_gpu / KIB:,.1f} KiB) per GPU; "
            f"not 2 x layers x heads x head_dim: latent size {latent}")
    else:
        lines.append(
            f"KV cache per token: 2 (K and V) x {shape.num_layers} layers x {shape.num_kv_heads} KV heads x "
            f"{shape.head_dim} head_dim x {_num(kv_bytes)} bytes ({r.kv_cache_dtype}) = {r.kv_bytes_per_token_model:,} bytes "
            f"({r.kv_bytes_per_token_model / KIB:,.1f} KiB) for the whole model")
        replicated = " (fewer KV heads than GPUs: each GPU keeps a replica of one)" if shape.num_kv_heads < r.tp else ""
        lines.append(
            f"  per GPU at TP {r.tp}{f', PP {r.pp}' if r.pp > 1 else ''}: {r.kv_heads_per_gpu} KV head(s){replicated}"
            f" -> {r.kv_bytes_per_token_per_gpu:,} bytes ({r.kv_bytes_per_token_per_gpu / KIB:,.1f} KiB)")
    overhead = overhead_estimate(shape, r.activation_dtype, r.tp, r.pp, r.max_num_seqs)
    lines += [
        f"Usable per GPU: {gib(r.gpu_memory_bytes)} x gpu_memory_utilization {r.gpu_memory_utilization:g} = {gib(r.usable_bytes_per_gpu)}",
        f"Overhead per GPU (an estimate, not measured): {overhead.formula} = {gib(r.overhead_bytes_per_gpu)}",
        f"KV cache budget per GPU: {gib(r.usable_bytes_per_gpu)} - {gib(r.weights_per_gpu_bytes)} weights - "
        f"{gib(r.overhead_bytes_per_gpu)} overhead = {gib(r.kv_budget_bytes_per_gpu)}"
        + (f" -> {r.kv_tokens_fit:,} tokens ({gib(r.kv_budget_bytes_per_gpu)} / {r.kv_bytes_per_token_per_gpu:,} bytes, "
           f"whole {BLOCK_TOKENS}-token blocks)" if r.kv_budget_bytes_per_gpu > 0 else " -> no room for any KV cache"),
    ]
    ratio = r.kv_bytes_needed_per_gpu / r.kv_budget_bytes_per_gpu if r.kv_budget_bytes_per_gpu > 0 else math.inf
    if r.memory_fits:
        verdict = "fits" if r.fits else "fits in memory, but see the problem below"
    else:
        verdict = "does NOT fit" + (f" ({ratio:,.1f}x the budget)" if math.isfinite(ratio) else "")
    lines.append(
        f"Requested: {r.max_num_seqs:,} sequence(s) x {r.max_model_len:,} tokens = {r.kv_tokens_needed:,} tokens x "
        f"{r.kv_bytes_per_token_per_gpu:,} bytes = {gib(r.kv_bytes_needed_per_gpu)} per GPU -> {verdict}")
    if not r.fits and not r.problems:
        lines.append(
            f"  vLLM {'starts' if r.one_sequence_fits else 'refuses to start'}: it needs room for one sequence of "
            f"max_model_len ({r.max_model_len:,} tokens); {r.alternatives.max_num_seqs_at_max_model_len:,} fit at once")
    lines += [f"Problem: {p}" for p in r.problems]
    return lines


def _suggestions(r: MemoryEstimate) -> list[str]:
    if r.fits:
        return []
    alt = r.alternatives
    if r.memory_fits:  # only the parallel layout is wrong
        return [f"--tensor-parallel-size {alt.smallest_tp_that_fits}" + (f" (needs {alt.smallest_tp_that_fits * r.pp} GPUs)"
                if alt.smallest_tp_needs_more_gpus else "") + " is a valid size that fits"] if alt.smallest_tp_that_fits else []
    out = []
    if alt.max_model_len_for_max_num_seqs > 0:
        out.append(f"--max-model-len {alt.max_model_len_for_max_num_seqs} lets {r.max_num_seqs:,} sequence(s) fit at once")
    if alt.max_num_seqs_at_max_model_len > 0:
        out.append(f"at --max-model-len {r.max_model_len} only {alt.max_num_seqs_at_max_model_len:,} sequence(s) fit at once: "
                   f"--max-num-seqs {alt.max_num_seqs_at_max_model_len} (vLLM queues the rest)")
    elif r.kv_tokens_fit >= BLOCK_TOKENS:
        out.append(f"not even one sequence of {r.max_model_len:,} tokens fits: --max-model-len {r.kv_tokens_fit} at most")
    if alt.smallest_tp_that_fits is not None and alt.smallest_tp_that_fits != r.tp:
        more = (f" (needs {alt.smallest_tp_that_fits * r.pp} GPUs of this size; {r.num_gpus} given)"
                if alt.smallest_tp_needs_more_gpus else "")
        out.append(f"--tensor-parallel-size {alt.smallest_tp_that_fits} fits the whole request{more}")
    if alt.gpu_memory_utilization_needed <= 0.98:
        out.append(f"--gpu-memory-utilization {alt.gpu_memory_utilization_needed:.2f} would fit the request "
                   "(if no other process uses the GPU)")
    if r.kv_cache_dtype not in ("fp8", "fp8_e4m3", "fp8_e5m2"):
        if alt.fp8_kv_supported is not False:
            if alt.fp8_kv_fits:
                out.append("--kv-cache-dtype fp8 halves the KV cache per token and fits the request"
                           + (" (needs compute capability >= 8.9; the GPU's is unknown)" if alt.fp8_kv_supported is None else ""))
            elif alt.fp8_kv_max_model_len > (alt.max_model_len_for_max_num_seqs or 0):
                out.append(f"--kv-cache-dtype fp8 halves the KV cache per token: {r.max_num_seqs:,} sequences of up to "
                           f"{alt.fp8_kv_max_model_len:,} tokens fit")
    if not out:
        out.append("no change of these settings fits: use more or larger GPUs, a quantized checkpoint, or a smaller model")
    return out


def _notes(shape: ModelShape, r: MemoryEstimate) -> list[str]:
    notes = [
        f"The overhead is an estimate: vLLM measures it in its profiling run (activations of "
        f"max_num_batched_tokens, assumed {ASSUMED_BATCHED_TOKENS:,} here); its log line "
        "'Available KV cache memory' is the real figure.",
    ]
    if r.pp > 1:
        notes.append("With pipeline parallelism each GPU holds about 1/pp of the layers; embeddings on the first and "
                     "last stages make those a little heavier.")
    if shape.is_mla:
        notes.append("MLA (DeepSeek-style attention) caches a compressed latent per layer instead of per-head K and V, "
                     "so the usual 2 x layers x kv_heads x head_dim formula does not hold, and TP does not shrink "
                     "the KV cache per GPU. FlashMLA's fp8 format adds scales, so fp8 is slightly more than half.")
    if shape.sliding_window and shape.sliding_window_layers:
        notes.append(f"{shape.sliding_window_layers} of {shape.num_layers} layers use a sliding window of "
                     f"{shape.sliding_window:,} tokens; vLLM keeps only that window for them, so the real KV need is "
                     "lower than this upper bound.")
    if r.alternatives.fp8_kv_supported is False and r.kv_cache_dtype not in ("fp8", "fp8_e4m3", "fp8_e5m2"):
        cc = ".".join(map(str, r.compute_capability or ()))
        notes.append(f"--kv-cache-dtype fp8 is not suggested: compute capability {cc} < 8.9 (fp8 e4m3 fails below "
                     "8.9 in vLLM V1's Triton attention, vllm-project/vllm#26431; fp8_e5m2 may work but is not "
                     "verified here)."
                     + (" It would fit the request." if r.alternatives.fp8_kv_fits else ""))
    if r.activation_dtype in ("bfloat16", "bf16") and r.compute_capability and tuple(r.compute_capability) < (8, 0):
        notes.append("bfloat16 needs compute capability >= 8.0: this GPU needs --dtype half (same size in memory).")
    if shape.quant_method:
        notes.append(f"The checkpoint is quantized ({shape.quant_method}); its weight size is estimated from the "
                     "bits per weight, embeddings kept in 16 bits.")
    return notes


# --------------------------------------------------------------------------------- from facts

_GPU_MIB_REPORTED = {  # nvidia-smi "memory.total" of common cards, in MiB; the catalogue's GB are nominal
    "A100 80GB": 81920, "A100": 40960, "H100": 81559, "H100 NVL": 95830, "H200": 143771,
    "L4": 23034, "L40": 46068, "A10": 23028, "T4": 15360, "GeForce RTX 4090": 24564,
    "GeForce RTX 3090": 24576, "V100": 16384, "V100 32GB": 32768, "RTX A6000": 49140,
}


def gpu_memory_bytes_for(name: str) -> int | None:
    """Memory of a GPU model by name: what nvidia-smi reports for common cards, else the nominal GB as GiB."""
    from vllm_bug.analyzer.gpus import lookup_gpu

    spec = lookup_gpu(name)
    if spec is None or spec.memory_gib is None:
        return None
    mib = _GPU_MIB_REPORTED.get(spec.family)
    nominal_from_name = re.search(r"(?<![A-Za-z0-9])(\d{2,3})\s*Gi?B\b", name, re.IGNORECASE)
    if mib is not None and (nominal_from_name is None or abs(mib / 1024 - spec.memory_gib) < 2):
        return mib * (1 << 20)
    return int(spec.memory_gib * GIB)


def _int_arg(args: dict[str, Any], key: str) -> int | None:
    value = args.get(key)
    try:
        number = int(str(value).strip()) if value is not None and not isinstance(value, bool) else None
    except ValueError:
        return None
    return number if number and number > 0 else None


def _float_arg(args: dict[str, Any], key: str) -> float | None:
    try:
        number = float(args[key]) if args.get(key) is not None else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int too large for a float
        return None
    return number if number is not None and 0 < number <= 1 else None


_QUANT_FLAG_DTYPES = {"awq": "int4", "awq_marlin": "int4", "gptq": "int4", "gptq_marlin": "int4",
                      "bitsandbytes": "int4", "fbgemm_fp8": "fp8", "modelopt": "fp8"}


def _shape_for_facts(facts: Any) -> ModelShape | None:
    model = facts.model if isinstance(getattr(facts, "model", None), dict) else None
    name = (facts.engine_args or {}).get("model") if isinstance(facts.engine_args, dict) else None
    if model:
        try:
            return shape_from_config(model, name=name if isinstance(name, str) else None)
        except ShapeError:
            pass
    if isinstance(name, str):
        return lookup_model(name)
    if model and isinstance(model.get("name"), str):
        return lookup_model(model["name"])
    return None


def _gpu_for_facts(facts: Any) -> tuple[int | None, tuple[int, int] | None, str | None]:
    from vllm_bug.analyzer.gpus import lookup_gpu

    sizes, caps, label = [], [], None
    for gpu in facts.gpus or []:
        if gpu.memory_total_bytes:
            sizes.append(gpu.memory_total_bytes)
        elif gpu.name and (size := gpu_memory_bytes_for(gpu.name)):
            sizes.append(size)
        cap = gpu.compute_capability or (lookup_gpu(gpu.name).compute_capability if lookup_gpu(gpu.name) else None)
        if cap:
            caps.append(tuple(cap))
        label = label or gpu.name
    return (min(sizes) if sizes else None), (min(caps) if caps else None), label


def memory_report_for_facts(facts: Any) -> dict[str, Any] | None:
    """The memory arithmetic for a report's model, GPUs and engine args, or None when too little is known.

    With no --max-num-seqs in the engine args, checks one sequence of max_model_len: what vLLM
    needs to start. The dict is MemoryEstimate.to_dict(): numbers in bytes, `lines`, `suggestions`.
    """
    shape = _shape_for_facts(facts)
    gpu_bytes, cap, label = _gpu_for_facts(facts)
    if shape is None or gpu_bytes is None:
        return None
    args = facts.engine_args if isinstance(facts.engine_args, dict) else {}
    tp = _int_arg(args, "tensor_parallel_size") or 1
    pp = _int_arg(args, "pipeline_parallel_size") or 1
    weight_dtype = str(args.get("dtype") or "auto")
    quant = str(args.get("quantization") or "").lower()
    if not shape.quant_method:  # the config lacks quantization_config: trust the flag
        weight_dtype = quant if quant in ONLINE_QUANT_DTYPES else _QUANT_FLAG_DTYPES.get(quant, weight_dtype)
    if _canonical_dtype(weight_dtype) not in DTYPE_BYTES:
        weight_dtype = "auto"
    kv_dtype = str(args.get("kv_cache_dtype") or "auto")
    if _canonical_dtype(kv_dtype) not in DTYPE_BYTES:
        kv_dtype = "auto"
    try:
        result = estimate(
            shape, gpu_bytes, num_gpus=max(len(facts.gpus or []), tp * pp), tp=tp, pp=pp,
            max_model_len=_int_arg(args, "max_model_len"), max_num_seqs=_int_arg(args, "max_num_seqs") or 1,
            gpu_memory_utilization=_float_arg(args, "gpu_memory_utilization") or DEFAULT_GPU_MEMORY_UTILIZATION,
            weight_dtype=weight_dtype, kv_cache_dtype=kv_dtype, compute_capability=cap, gpu_label=label)
    except ShapeError:
        return None
    report = result.to_dict()
    if _float_arg(args, "gpu_memory_utilization") is None:
        report["notes"].append(f"gpu_memory_utilization not given: assumed vLLM's default {DEFAULT_GPU_MEMORY_UTILIZATION} "
                               "(0.90 in older releases).")
    if _int_arg(args, "max_num_seqs") is None:
        report["notes"].append("max_num_seqs not given: checked one sequence of max_model_len, which is what vLLM "
                               "needs to start.")
    return report
