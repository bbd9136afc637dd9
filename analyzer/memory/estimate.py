"""The arithmetic for one configuration: weights and overhead per GPU, the KV cache budget, what fits, and
the alternatives that would fit. The explanation (lines, suggestions, notes) is written by explain."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from vllm_bug.analyzer.memory import explain
from vllm_bug.analyzer.memory.assumptions import BLOCK_TOKENS, DEFAULT_GPU_MEMORY_UTILIZATION, FP8_KV_MIN_CC
from vllm_bug.analyzer.memory.dtypes import DTYPE_BYTES, canonical_dtype
from vllm_bug.analyzer.memory.layout import kv_bytes_per_token, kv_heads_per_gpu, tp_problem, valid_tp_sizes
from vllm_bug.analyzer.memory.overhead import overhead_estimate
from vllm_bug.analyzer.memory.shape import ModelShape, ShapeError
from vllm_bug.analyzer.memory.weights import WeightsEstimate, activation_dtype, weights_estimate


def resolve_kv_cache_dtype(shape: ModelShape, weight_dtype: str, kv_cache_dtype: str) -> str:
    kv = canonical_dtype(kv_cache_dtype)
    if kv in ("", "auto"):
        return activation_dtype(shape, weight_dtype)
    if kv not in DTYPE_BYTES:
        raise ShapeError(
            f"unknown KV cache dtype {kv_cache_dtype!r} (auto, fp8, fp8_e4m3, fp8_e5m2, float16, bfloat16)"
        )
    return kv


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
        """JSON-ready: numbers in bytes, compute capability as '8.0', and the text fields."""
        data = asdict(self)
        data["compute_capability"] = ".".join(map(str, self.compute_capability)) if self.compute_capability else None
        data["units"] = "bytes (printed lines use GiB = 2**30 bytes)"
        return data


def _capacity(
    shape: ModelShape,
    weights: WeightsEstimate,
    *,
    gpu_memory_bytes: int,
    tp: int,
    pp: int,
    utilization: float,
    act_dtype: str,
    kv_dtype: str,
    max_num_seqs: int,
    tokens_needed: int,
) -> Capacity:
    per_gpu = weights.total_bytes // (tp * pp)
    overhead = overhead_estimate(shape, act_dtype, tp, pp, max_num_seqs).total_bytes
    usable = int(gpu_memory_bytes * utilization)
    budget = usable - per_gpu - overhead
    per_token = kv_bytes_per_token(shape, kv_dtype, tp, pp)
    tokens = max(budget, 0) // per_token // BLOCK_TOKENS * BLOCK_TOKENS
    return Capacity(tp, pp, kv_dtype, per_gpu, overhead, usable, budget, per_token, tokens, tokens_needed)


def estimate(
    shape: ModelShape,
    gpu_memory_bytes: int,
    num_gpus: int = 1,
    tp: int | None = None,
    pp: int = 1,
    max_model_len: int | None = None,
    max_num_seqs: int = 1,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    weight_dtype: str = "auto",
    kv_cache_dtype: str = "auto",
    compute_capability: tuple[int, int] | None = None,
    gpu_label: str | None = None,
) -> MemoryEstimate:
    """The whole arithmetic for one configuration, with the alternatives that would fit, explained.

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
    common: dict[str, Any] = dict(
        gpu_memory_bytes=gpu_memory_bytes, pp=pp, act_dtype=act, max_num_seqs=max_num_seqs, tokens_needed=tokens_needed
    )
    cap = _capacity(shape, weights, tp=tp, utilization=gpu_memory_utilization, kv_dtype=kv_dtype, **common)

    problems = []
    if (why := tp_problem(shape, tp)) is not None:
        problems.append(f"vLLM will refuse this: {why}")
    if tp * pp > num_gpus:
        problems.append(f"tensor-parallel {tp} x pipeline-parallel {pp} = {tp * pp} GPUs, but only {num_gpus} given")

    alternatives = _alternatives(
        shape,
        weights,
        cap,
        num_gpus=num_gpus,
        utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        compute_capability=compute_capability,
        common=common,
    )
    result = MemoryEstimate(
        model=shape.name,
        gpu_memory_bytes=gpu_memory_bytes,
        num_gpus=num_gpus,
        tp=tp,
        pp=pp,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        gpu_memory_utilization=gpu_memory_utilization,
        weight_dtype=canonical_dtype(weight_dtype),
        activation_dtype=act,
        kv_cache_dtype=kv_dtype,
        compute_capability=compute_capability,
        parameters=weights.parameters,
        weights_bytes=weights.total_bytes,
        weights_per_gpu_bytes=cap.weights_per_gpu_bytes,
        kv_bytes_per_token_model=kv_bytes_per_token(shape, kv_dtype),
        kv_bytes_per_token_per_gpu=cap.kv_bytes_per_token_per_gpu,
        kv_heads_per_gpu=None if shape.is_mla else kv_heads_per_gpu(shape.num_kv_heads, tp),
        usable_bytes_per_gpu=cap.usable_bytes,
        overhead_bytes_per_gpu=cap.overhead_bytes,
        kv_budget_bytes_per_gpu=cap.kv_budget_bytes,
        kv_tokens_fit=cap.tokens_fit,
        kv_tokens_needed=tokens_needed,
        kv_bytes_needed_per_gpu=cap.kv_needed_bytes,
        one_sequence_fits=cap.tokens_fit >= max_model_len and not problems,
        memory_fits=cap.fits,
        fits=cap.fits and not problems,
        alternatives=alternatives,
        problems=problems,
    )
    overhead = overhead_estimate(shape, act, tp, pp, max_num_seqs)
    result.lines = explain.arithmetic_lines(shape, weights, overhead, result, gpu_label)
    result.suggestions = explain.suggestions(result)
    result.notes = explain.notes(shape, result)
    return result


def _alternatives(
    shape: ModelShape,
    weights: WeightsEstimate,
    cap: Capacity,
    *,
    num_gpus: int,
    utilization: float,
    max_model_len: int,
    max_num_seqs: int,
    compute_capability: tuple[int, int] | None,
    common: dict[str, Any],
) -> Alternatives:
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
