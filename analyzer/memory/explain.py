"""The memory arithmetic written for people: the lines of the calculation, suggestions that would fit, notes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from vllm_bug.analyzer.memory.assumptions import ASSUMED_BATCHED_TOKENS, BLOCK_TOKENS
from vllm_bug.analyzer.memory.dtypes import DTYPE_BYTES, FP8_KV_DTYPES
from vllm_bug.analyzer.memory.shape import ModelShape
from vllm_bug.analyzer.memory.units import KIB, gib, plain_number

if TYPE_CHECKING:  # estimate imports this module to explain its results
    from vllm_bug.analyzer.memory.estimate import MemoryEstimate
    from vllm_bug.analyzer.memory.overhead import Overhead
    from vllm_bug.analyzer.memory.weights import WeightsEstimate


def arithmetic_lines(
    shape: ModelShape, weights: WeightsEstimate, overhead: Overhead, r: MemoryEstimate, gpu_label: str | None
) -> list[str]:
    """The estimate written out step by step: model, GPUs, weights, KV cache per token, budget, verdict."""
    lines = [
        _model_line(shape, weights),
        f"GPUs: {r.num_gpus} x {gib(r.gpu_memory_bytes)}"
        + (f" ({gpu_label})" if gpu_label else "")
        + f"; tensor-parallel {r.tp}, pipeline-parallel {r.pp}",
        f"Weights: {weights.formula} = {r.weights_bytes / 1e9:,.1f} GB = {gib(r.weights_bytes)}; "
        f"per GPU: / {r.tp * r.pp} = {gib(r.weights_per_gpu_bytes)}",
    ]
    lines += _kv_per_token_lines(shape, r)
    lines += [
        f"Usable per GPU: {gib(r.gpu_memory_bytes)} x gpu_memory_utilization {r.gpu_memory_utilization:g} "
        f"= {gib(r.usable_bytes_per_gpu)}",
        f"Overhead per GPU (an estimate, not measured): {overhead.formula} = {gib(r.overhead_bytes_per_gpu)}",
        f"KV cache budget per GPU: {gib(r.usable_bytes_per_gpu)} - {gib(r.weights_per_gpu_bytes)} weights - "
        f"{gib(r.overhead_bytes_per_gpu)} overhead = {gib(r.kv_budget_bytes_per_gpu)}"
        + (
            f" -> {r.kv_tokens_fit:,} tokens ({gib(r.kv_budget_bytes_per_gpu)} / {r.kv_bytes_per_token_per_gpu:,} "
            f"bytes, whole {BLOCK_TOKENS}-token blocks)"
            if r.kv_budget_bytes_per_gpu > 0
            else " -> no room for any KV cache"
        ),
        f"Requested: {r.max_num_seqs:,} sequence(s) x {r.max_model_len:,} tokens = {r.kv_tokens_needed:,} tokens x "
        f"{r.kv_bytes_per_token_per_gpu:,} bytes = {gib(r.kv_bytes_needed_per_gpu)} per GPU -> {_verdict(r)}",
    ]
    if not r.fits and not r.problems:
        lines.append(
            f"  vLLM {'starts' if r.one_sequence_fits else 'refuses to start'}: it needs room for one sequence of "
            f"max_model_len ({r.max_model_len:,} tokens); {r.alternatives.max_num_seqs_at_max_model_len:,} fit at once"
        )
    lines += [f"Problem: {p}" for p in r.problems]
    return lines


def _model_line(shape: ModelShape, weights: WeightsEstimate) -> str:
    attention = (
        f"MLA latent {shape.mla_kv_lora_rank} + rope {shape.mla_rope_head_dim or 0}"
        if shape.is_mla
        else f"{shape.num_kv_heads} KV heads, head_dim {shape.head_dim}"
    )
    experts = f", MoE {shape.num_experts} experts ({shape.num_experts_per_tok} active)" if shape.is_moe else ""
    return (
        f"Model: {shape.name or 'from config'}: {shape.num_layers} layers, {shape.num_attention_heads} attention "
        f"heads, {attention}, {weights.parameters / 1e9:,.2f}B parameters{experts}"
    )


def _kv_per_token_lines(shape: ModelShape, r: MemoryEstimate) -> list[str]:
    kv_bytes = plain_number(DTYPE_BYTES[r.kv_cache_dtype])
    per_gpu = f"{r.kv_bytes_per_token_per_gpu:,} bytes ({r.kv_bytes_per_token_per_gpu / KIB:,.1f} KiB)"
    if shape.mla_kv_lora_rank is not None:  # shape.is_mla
        rope = shape.mla_rope_head_dim or 0
        return [
            f"KV cache per token (MLA latent, the same on every TP rank): {math.ceil(shape.num_layers / r.pp)} "
            f"layers x ({shape.mla_kv_lora_rank} + {rope}) x {kv_bytes} bytes ({r.kv_cache_dtype}) "
            f"= {per_gpu} per GPU; not 2 x layers x heads x head_dim: latent size {shape.mla_kv_lora_rank + rope}"
        ]
    replicated = " (fewer KV heads than GPUs: each GPU keeps a replica of one)" if shape.num_kv_heads < r.tp else ""
    return [
        f"KV cache per token: 2 (K and V) x {shape.num_layers} layers x {shape.num_kv_heads} KV heads x "
        f"{shape.head_dim} head_dim x {kv_bytes} bytes ({r.kv_cache_dtype}) = {r.kv_bytes_per_token_model:,} bytes "
        f"({r.kv_bytes_per_token_model / KIB:,.1f} KiB) for the whole model",
        f"  per GPU at TP {r.tp}{f', PP {r.pp}' if r.pp > 1 else ''}: {r.kv_heads_per_gpu} KV head(s){replicated}"
        f" -> {per_gpu}",
    ]


def _verdict(r: MemoryEstimate) -> str:
    if r.memory_fits:
        return "fits" if r.fits else "fits in memory, but see the problem below"
    ratio = r.kv_bytes_needed_per_gpu / r.kv_budget_bytes_per_gpu if r.kv_budget_bytes_per_gpu > 0 else math.inf
    return "does NOT fit" + (f" ({ratio:,.1f}x the budget)" if math.isfinite(ratio) else "")


def suggestions(r: MemoryEstimate) -> list[str]:
    """Changes of one setting each that would make the request fit; none when it fits."""
    if r.fits:
        return []
    alt = r.alternatives
    if r.memory_fits:  # only the parallel layout is wrong
        if not alt.smallest_tp_that_fits:
            return []
        more = f" (needs {alt.smallest_tp_that_fits * r.pp} GPUs)" if alt.smallest_tp_needs_more_gpus else ""
        return [f"--tensor-parallel-size {alt.smallest_tp_that_fits}{more} is a valid size that fits"]
    out = []
    if alt.max_model_len_for_max_num_seqs > 0:
        out.append(
            f"--max-model-len {alt.max_model_len_for_max_num_seqs} lets {r.max_num_seqs:,} sequence(s) fit at once"
        )
    if alt.max_num_seqs_at_max_model_len > 0:
        out.append(
            f"at --max-model-len {r.max_model_len} only {alt.max_num_seqs_at_max_model_len:,} sequence(s) "
            f"fit at once: --max-num-seqs {alt.max_num_seqs_at_max_model_len} (vLLM queues the rest)"
        )
    elif r.kv_tokens_fit >= BLOCK_TOKENS:
        out.append(
            f"not even one sequence of {r.max_model_len:,} tokens fits: --max-model-len {r.kv_tokens_fit} at most"
        )
    if alt.smallest_tp_that_fits is not None and alt.smallest_tp_that_fits != r.tp:
        more = (
            f" (needs {alt.smallest_tp_that_fits * r.pp} GPUs of this size; {r.num_gpus} given)"
            if alt.smallest_tp_needs_more_gpus
            else ""
        )
        out.append(f"--tensor-parallel-size {alt.smallest_tp_that_fits} fits the whole request{more}")
    if alt.gpu_memory_utilization_needed <= 0.98:
        out.append(
            f"--gpu-memory-utilization {alt.gpu_memory_utilization_needed:.2f} would fit the request "
            "(if no other process uses the GPU)"
        )
    if r.kv_cache_dtype not in FP8_KV_DTYPES and alt.fp8_kv_supported is not False:
        if alt.fp8_kv_fits:
            unknown = " (needs compute capability >= 8.9; the GPU's is unknown)" if alt.fp8_kv_supported is None else ""
            out.append(f"--kv-cache-dtype fp8 halves the KV cache per token and fits the request{unknown}")
        elif alt.fp8_kv_max_model_len > (alt.max_model_len_for_max_num_seqs or 0):
            out.append(
                f"--kv-cache-dtype fp8 halves the KV cache per token: {r.max_num_seqs:,} sequences of up to "
                f"{alt.fp8_kv_max_model_len:,} tokens fit"
            )
    if not out:
        out.append(
            "no change of these settings fits: use more or larger GPUs, a quantized checkpoint, or a smaller model"
        )
    return out


def notes(shape: ModelShape, r: MemoryEstimate) -> list[str]:
    """What the reader should know about the estimate's assumptions and this model."""
    out = [
        f"The overhead is an estimate: vLLM measures it in its profiling run (activations of "
        f"max_num_batched_tokens, assumed {ASSUMED_BATCHED_TOKENS:,} here); its log line "
        "'Available KV cache memory' is the real figure.",
    ]
    if r.pp > 1:
        out.append(
            "With pipeline parallelism each GPU holds about 1/pp of the layers; embeddings on the first and "
            "last stages make those a little heavier."
        )
    if shape.is_mla:
        out.append(
            "MLA (DeepSeek-style attention) caches a compressed latent per layer instead of per-head K and V, "
            "so the usual 2 x layers x kv_heads x head_dim formula does not hold, and TP does not shrink "
            "the KV cache per GPU. FlashMLA's fp8 format adds scales, so fp8 is slightly more than half."
        )
    if shape.sliding_window and shape.sliding_window_layers:
        out.append(
            f"{shape.sliding_window_layers} of {shape.num_layers} layers use a sliding window of "
            f"{shape.sliding_window:,} tokens; vLLM keeps only that window for them, so the real KV need is "
            "lower than this upper bound."
        )
    if r.alternatives.fp8_kv_supported is False and r.kv_cache_dtype not in FP8_KV_DTYPES:
        cc = ".".join(map(str, r.compute_capability or ()))
        out.append(
            f"--kv-cache-dtype fp8 is not suggested: compute capability {cc} < 8.9 (fp8 e4m3 fails below "
            "8.9 in vLLM V1's Triton attention, vllm-project/vllm#26431; fp8_e5m2 may work but is not "
            "verified here)." + (" It would fit the request." if r.alternatives.fp8_kv_fits else "")
        )
    if r.activation_dtype in ("bfloat16", "bf16") and r.compute_capability and tuple(r.compute_capability) < (8, 0):
        out.append("bfloat16 needs compute capability >= 8.0: this GPU needs --dtype half (same size in memory).")
    if shape.quant_method:
        out.append(
            f"The checkpoint is quantized ({shape.quant_method}); its weight size is estimated from the "
            "bits per weight, embeddings kept in 16 bits."
        )
    return out
