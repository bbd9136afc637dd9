"""`vllm-bug memory`: the memory arithmetic for a model on given GPUs and engine args.

Exit codes: 0 the arithmetic was printed (whether or not the request fits; see "fits" in JSON),
2 bad options (no model, unknown model or GPU name, unknown dtype), 3 the config file is missing,
unreadable or not a model config, 4 the config file is refused (over CONFIG_MAX_BYTES, nested too deep).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from vllm_bug.analyzer.memory.assumptions import DEFAULT_GPU_MEMORY_UTILIZATION
from vllm_bug.analyzer.memory.catalogue import builtin_models, lookup_model
from vllm_bug.analyzer.memory.estimate import MemoryEstimate, estimate
from vllm_bug.analyzer.memory.gpu_size import gpu_memory_bytes_for
from vllm_bug.analyzer.memory.layout import kv_bytes_per_token
from vllm_bug.analyzer.memory.shape import ModelShape, ShapeError, shape_from_config
from vllm_bug.analyzer.memory.units import GIB
from vllm_bug.commands import Result
from vllm_bug.errors import UnreadableInput, UnsafeInput, UsageProblem
from vllm_bug.schema.bundle import read_file_capped

CONFIG_MAX_BYTES = 4 << 20  # real config.json files are a few KiB; vision configs a few hundred
GPU_EXAMPLES = "A100-80GB, A100-40GB, H100, H200, L40S, L4, A10G, RTX 4090, V100-32GB, T4, or a size in GiB such as 80"


def execute(
    *,
    config_path: str | None = None,
    model_name: str | None = None,
    list_models: bool = False,
    gpu: str | None = None,
    num_gpus: int = 1,
    tp: int | None = None,
    max_model_len: int | None = None,
    max_num_seqs: int = 1,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    dtype: str = "auto",
    kv_cache_dtype: str = "auto",
    fmt: str = "text",
) -> Result:
    if list_models:
        return _models_table(fmt)
    shape = _shape_from_options(config_path, model_name)
    gpu_bytes, compute_capability, gpu_label = parse_gpu(gpu)
    try:
        result = estimate(
            shape,
            gpu_bytes,
            num_gpus=num_gpus,
            tp=tp or num_gpus,
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            gpu_memory_utilization=gpu_memory_utilization,
            weight_dtype=dtype,
            kv_cache_dtype=kv_cache_dtype,
            compute_capability=compute_capability,
            gpu_label=gpu_label,
        )
    except ShapeError as exc:
        raise UsageProblem(str(exc)) from None
    if fmt == "json":
        return Result(document=result.to_dict())
    return Result(text=render_text(result) + "\n")


def render_text(result: MemoryEstimate) -> str:
    out = list(result.lines)
    if result.suggestions:
        out += ["", "What would fit (each change on its own):"] + [f"  - {s}" for s in result.suggestions]
    if result.notes:
        out += ["", "Notes:"] + [f"  - {n}" for n in result.notes]
    return "\n".join(out)


# ------------------------------------------------------------------------------------ inputs


def _shape_from_options(config_path: str | None, model_name: str | None) -> ModelShape:
    if config_path and model_name:
        raise UsageProblem("give either --config or --model, not both")
    if model_name:
        shape = lookup_model(model_name)
        if shape is None:
            raise UsageProblem(
                f"unknown model {model_name!r}: not in the built-in table (see --list-models); "
                "pass its config.json with --config"
            )
        return shape
    if config_path:
        config = read_config(config_path)
        try:
            return shape_from_config(config, name=_name_from_path(config_path))
        except ShapeError as exc:
            raise UnreadableInput(f"{config_path}: not a usable model config: {exc}") from None
    raise UsageProblem("give a model: --config PATH (a config.json or its folder) or --model NAME (see --list-models)")


def read_config(path_text: str) -> dict[str, Any]:
    """A config.json as a dict, read with a size cap; one-line errors for anything else."""
    path = Path(path_text)
    if path.is_dir():
        path = path / "config.json"
    raw = read_file_capped(path, CONFIG_MAX_BYTES, what="a config.json or its folder", streams=False)
    try:
        config = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise UnreadableInput(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise UnsafeInput(f"{path}: JSON nested too deeply") from None
    except ValueError as exc:
        raise UnreadableInput(f"{path}: not valid JSON: {str(exc).splitlines()[0][:120]}") from None
    if not isinstance(config, dict):
        raise UnreadableInput(f"{path}: not a JSON object")
    return config


def _name_from_path(path_text: str) -> str:
    path = Path(path_text)
    folder = path if path.is_dir() else path.parent
    return folder.name or path.name


_GIB_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:gib|g)?\s*$", re.IGNORECASE)
_GB_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*gb\s*$", re.IGNORECASE)


def parse_gpu(text: str | None) -> tuple[int, tuple[int, int] | None, str]:
    """--gpu as (memory bytes, compute capability or None, label); a bare number is GiB."""
    from vllm_bug.analyzer.gpus import lookup_gpu

    if not text or not text.strip():
        raise UsageProblem(f"give --gpu: a GPU model or its memory in GiB ({GPU_EXAMPLES})")
    if match := _GIB_NUMBER.match(text):
        size = float(match.group(1))
        if not 1 <= size <= 4096:
            raise UsageProblem(f"--gpu {text}: a GPU's memory in GiB must be between 1 and 4096")
        return int(size * GIB), None, f"{size:g} GiB"
    if _GB_NUMBER.match(text):
        raise UsageProblem(f"--gpu {text}: give GiB (what nvidia-smi's MiB / 1024 says) or a GPU model name")
    spec = lookup_gpu(text)
    if spec is None:
        raise UsageProblem(f"--gpu {text}: unknown GPU; examples: {GPU_EXAMPLES}")
    size_bytes = gpu_memory_bytes_for(text)
    if size_bytes is None:
        raise UsageProblem(f"--gpu {text}: the name does not say how much memory it has; give the memory in GiB")
    return (
        size_bytes,
        spec.compute_capability,
        f"{text.strip()}, compute capability {spec.compute_capability[0]}.{spec.compute_capability[1]}",
    )


# ------------------------------------------------------------------------------------ --list-models


def _models_table(fmt: str) -> Result:
    rows = []
    for entry in builtin_models():
        shape = shape_from_config(entry, name=entry["name"])
        rows.append(
            {
                "name": entry["name"],
                "parameters": shape.num_parameters,
                "layers": shape.num_layers,
                "attention_heads": shape.num_attention_heads,
                "kv_heads": None if shape.is_mla else shape.num_kv_heads,
                "head_dim": None if shape.is_mla else shape.head_dim,
                "experts": shape.num_experts or None,
                "kv_bytes_per_token_16bit": kv_bytes_per_token(shape, "bfloat16"),
                "max_position_embeddings": shape.max_position_embeddings,
                "dtype": shape.dtype,
                "quantization": shape.quant_method,
            }
        )
    if fmt == "json":
        return Result(document=rows)
    header = (
        f"{'model':36} {'params':>8} {'layers':>6} {'heads':>5} {'kv':>4} {'hdim':>4} {'experts':>7} "
        f"{'KV/token':>10} {'max ctx':>8}"
    )
    lines = [header]
    for row in rows:
        lines.append(
            f"{row['name']:36} {row['parameters'] / 1e9:>7.1f}B {row['layers']:>6} {row['attention_heads']:>5} "
            f"{row['kv_heads'] if row['kv_heads'] else 'MLA':>4} {row['head_dim'] or '-':>4} "
            f"{row['experts'] or '-':>7} "
            f"{row['kv_bytes_per_token_16bit'] / 1024:>6.0f} KiB {row['max_position_embeddings']:>8}"
        )
    lines.append(
        "KV/token: the whole model's KV cache per token in 16 bits. Names match with or without the org "
        "prefix and -Instruct/-chat/-it/-hf."
    )
    return Result(text="\n".join(lines) + "\n")
