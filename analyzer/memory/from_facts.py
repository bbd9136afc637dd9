"""The memory estimate for an analysed report: its model, its GPUs and the engine arguments it shows."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.memory.assumptions import DEFAULT_GPU_MEMORY_UTILIZATION
from vllm_bug.analyzer.memory.catalogue import lookup_model
from vllm_bug.analyzer.memory.dtypes import DTYPE_BYTES, ONLINE_QUANT_DTYPES, canonical_dtype
from vllm_bug.analyzer.memory.estimate import MemoryEstimate, estimate
from vllm_bug.analyzer.memory.gpu_size import gpu_memory_bytes_for
from vllm_bug.analyzer.memory.shape import ModelShape, ShapeError, shape_from_config

# --quantization values whose checkpoints' config.json may lack quantization_config: the weight dtype they imply
_QUANT_FLAG_DTYPES = {
    "awq": "int4",
    "awq_marlin": "int4",
    "gptq": "int4",
    "gptq_marlin": "int4",
    "bitsandbytes": "int4",
    "fbgemm_fp8": "fp8",
    "modelopt": "fp8",
}


class GpusSeen(NamedTuple):
    """The smallest GPU of a report decides what fits: its memory and compute capability."""

    memory_bytes: int | None
    compute_capability: tuple[int, int] | None
    label: str | None  # the first GPU's name, for the arithmetic's text


def estimate_for_facts(facts: Facts) -> MemoryEstimate | None:
    """The memory arithmetic for a report's model, GPUs and engine args, or None when too little is known.

    With no --max-num-seqs in the engine args, checks one sequence of max_model_len: what vLLM
    needs to start. Notes say which settings were assumed.
    """
    shape = shape_for_facts(facts)
    gpus = gpus_for_facts(facts)
    if shape is None or gpus.memory_bytes is None:
        return None
    args = facts.engine_args if isinstance(facts.engine_args, dict) else {}
    tp = _int_arg(args, "tensor_parallel_size") or 1
    pp = _int_arg(args, "pipeline_parallel_size") or 1
    utilization = _float_arg(args, "gpu_memory_utilization")
    max_num_seqs = _int_arg(args, "max_num_seqs")
    try:
        result = estimate(
            shape,
            gpus.memory_bytes,
            num_gpus=max(len(facts.gpus or []), tp * pp),
            tp=tp,
            pp=pp,
            max_model_len=_int_arg(args, "max_model_len"),
            max_num_seqs=max_num_seqs or 1,
            gpu_memory_utilization=utilization or DEFAULT_GPU_MEMORY_UTILIZATION,
            weight_dtype=_weight_dtype(shape, args),
            kv_cache_dtype=_known_dtype(args.get("kv_cache_dtype")),
            compute_capability=gpus.compute_capability,
            gpu_label=gpus.label,
        )
    except ShapeError:
        return None
    if utilization is None:
        result.notes.append(
            "gpu_memory_utilization not given: assumed vLLM's default "
            f"{DEFAULT_GPU_MEMORY_UTILIZATION} (0.90 in older releases)."
        )
    if max_num_seqs is None:
        result.notes.append(
            "max_num_seqs not given: checked one sequence of max_model_len, which is what vLLM needs to start."
        )
    return result


def shape_for_facts(facts: Facts) -> ModelShape | None:
    """The model's shape: from its config.json when the facts have one, else the built-in table by name."""
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


def gpus_for_facts(facts: Facts) -> GpusSeen:
    """Memory and compute capability of the report's smallest GPU, from what was measured or its name."""
    from vllm_bug.analyzer.gpus import lookup_gpu

    sizes, caps, label = [], [], None
    for gpu in facts.gpus or []:
        if gpu.memory_total_bytes:
            sizes.append(gpu.memory_total_bytes)
        elif gpu.name and (size := gpu_memory_bytes_for(gpu.name)):
            sizes.append(size)
        spec = None if gpu.compute_capability else lookup_gpu(gpu.name)
        cap = gpu.compute_capability or (spec.compute_capability if spec else None)
        if cap:
            caps.append(cast("tuple[int, int]", tuple(cap)))  # a bundle's JSON may hold a list
        label = label or gpu.name
    return GpusSeen(min(sizes) if sizes else None, min(caps) if caps else None, label)


def _weight_dtype(shape: ModelShape, args: dict[str, Any]) -> str:
    weight_dtype = str(args.get("dtype") or "auto")
    quant = str(args.get("quantization") or "").lower()
    if not shape.quant_method:  # the config lacks quantization_config: trust the flag
        weight_dtype = quant if quant in ONLINE_QUANT_DTYPES else _QUANT_FLAG_DTYPES.get(quant, weight_dtype)
    return _known_dtype(weight_dtype)


def _known_dtype(value: Any) -> str:
    """The dtype as given when the arithmetic knows it, else 'auto'."""
    dtype = str(value or "auto")
    return dtype if canonical_dtype(dtype) in DTYPE_BYTES else "auto"


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
