"""GPU memory exhausted (category cuda_oom): which phase ran out tells what to change."""

from __future__ import annotations

import re

from vllm_bug.analyzer.complete import ensure_complete
from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.knowledge import cudagraph_workarounds, default_gpu_memory_utilization, kv_cache_dtype_advice
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    grep,
    has,
    engine_arg,
    engine_arg_number,
    evidence,
    fmt_gib,
    level,
    memory_fixes,
    memory_report,
    min_cc,
    parse_size,
    vllm_not_involved,
    vllm_version,
)

OOM = (r"CUDA out of(?: memory|\s*$)|OutOfMemoryError|CUDA error: out of memory|CUDA_ERROR_OUT_OF_MEMORY|"
       r"cudaErrorMemoryAllocation|CUBLAS_STATUS_ALLOC_FAILED|not enough GPU memory|"
       r"out of memory occurred when warming up|\bOOM\b|out of memory")
# "out of memory" alone also matches host messages; these say the host ran out, not the GPU.
HOST_OOM = r"Out of memory: Killed process|oom-kill|OOM killer|host memory|CPU memory|\bRAM\b.*out of memory"


def has_gpu_oom(facts: Facts) -> bool:
    lines = grep(facts, OOM, limit=20)
    return any(not re.search(HOST_OOM, line, re.IGNORECASE) for line in lines)


def oom_lines(facts: Facts) -> list[str]:
    return evidence(facts, r"CUDA out of(?: memory|\s*$)|OutOfMemoryError|CUDA error: out of memory|CUDA_ERROR_OUT_OF_MEMORY|"
                           r"cudaErrorMemoryAllocation|CUBLAS_STATUS_ALLOC_FAILED|not enough GPU memory|"
                           r"out of memory occurred when warming up", limit=2) or evidence(facts, OOM, limit=2)


def oom_phase(facts: Facts) -> str | None:
    """What vLLM was doing when memory ran out (analyzer/memory/oom_phase.py), worked out once per Facts."""
    return ensure_complete(facts).oom_phase


def oom_numbers(facts: Facts) -> dict:
    """Numbers torch prints in its OOM message: request, capacity, free, per-process use."""
    text = " ".join(grep(facts, r"Tried to allocate", limit=1))
    out: dict = {}
    m = re.search(r"Tried to allocate (\d{1,15}(?:\.\d+)?) ?([KMGT]i?B)", text)
    if m:
        out["requested_bytes"] = parse_size(*m.groups())
    m = re.search(r"total capac\w* of (\d{1,15}(?:\.\d+)?) ?([KMGT]i?B)", text) or re.search(r"(\d{1,15}(?:\.\d+)?) ?([KMGT]i?B) total capacity", text)
    if m:
        out["total_bytes"] = parse_size(*m.groups())
    m = re.search(r"of which (\d{1,15}(?:\.\d+)?) ?([KMGT]i?B) is free", text) or re.search(r"(\d{1,15}(?:\.\d+)?) ?([KMGT]i?B) free", text)
    if m:
        out["free_bytes"] = parse_size(*m.groups())
    m = re.search(r"this process has (\d{1,15}(?:\.\d+)?) ?([KMGT]i?B) memory in use", text)
    if m:
        out["this_process_bytes"] = parse_size(*m.groups())
    m = re.search(r"(?:and )?(\d{1,15}(?:\.\d+)?) ?([KMGT]i?B|bytes) (?:is )?reserved by PyTorch but unallocated", text)
    if m:
        out["reserved_unallocated_bytes"] = parse_size(m.group(1), "b" if m.group(2) == "bytes" else m.group(2))
    procs = {}
    for line in grep(facts, r"Process \d+ has [\d.]+ ?[KMGT]i?B memory in use", limit=50):
        for pid, num, unit in re.findall(r"Process (\d+) has (\d{1,15}(?:\.\d+)?) ?([KMGT]i?B) memory in use", line):
            procs[pid] = parse_size(num, unit)
    if procs:
        out["processes"] = procs
    return out


def utilization_text(facts: Facts) -> str:
    util = engine_arg_number(facts, "gpu_memory_utilization")
    if util is not None:
        return f"--gpu-memory-utilization (now {util:g})"
    default = default_gpu_memory_utilization(vllm_version(facts))
    return f"--gpu-memory-utilization (default {default:.2f})" if default else "--gpu-memory-utilization"


def numbers_sentence(nums: dict) -> str:
    parts = []
    if "requested_bytes" in nums:
        parts.append(f"asked for {fmt_gib(nums['requested_bytes'])}")
    if "total_bytes" in nums:
        parts.append(f"on a {fmt_gib(nums['total_bytes'])} GPU")
    if "free_bytes" in nums:
        parts.append(f"with {fmt_gib(nums['free_bytes'])} free")
    return ("The failed allocation " + ", ".join(parts) + ".") if parts else ""


def _finding(facts: Facts, key: str, title: str, fixes: list[str], phase: str | None) -> Finding:
    nums = oom_numbers(facts)
    report = memory_report(facts)
    details: dict = {"phase": phase or "unknown"}
    if nums:
        details["oom"] = {k: v for k, v in nums.items()}
    if report:
        details["memory"] = report
    sentence = numbers_sentence(nums)
    return Finding(key, "cuda_oom", level(facts, OOM), title + (f" {sentence}" if sentence else ""),
                   evidence=oom_lines(facts), fixes=memory_fixes(report) + fixes, details=details)


def context_fixes(facts: Facts) -> list[str]:
    out = []
    max_len = engine_arg(facts, "max_model_len")
    if max_len:
        out.append(f"lower --max-model-len (now {max_len}); profiling reserves activations for a full-length batch")
    else:
        out.append("set --max-model-len to what you need (e.g. 8192); without it the model's full context "
                   "length is profiled and reserved")
    seqs = engine_arg(facts, "max_num_seqs")
    out.append(f"lower --max-num-seqs (now {seqs})" if seqs else "lower --max-num-seqs (e.g. 64) and "
               "--max-num-batched-tokens to shrink the warm-up batch")
    return out


@rule("CUDA_OOM_LOADING_WEIGHTS", category="cuda_oom")
def oom_loading_weights(facts: Facts) -> Finding | None:
    if not has_gpu_oom(facts) or oom_phase(facts) != "weights":
        return None
    tp = engine_arg(facts, "tensor_parallel_size")
    fixes = [
        f"the weights alone do not fit: shard them with --tensor-parallel-size {int(tp) * 2 if tp and str(tp).isdigit() else 2} "
        "(or more GPUs), or load a quantized checkpoint (AWQ, GPTQ, FP8)",
        "make sure no other process holds memory on the GPU (nvidia-smi) before starting",
        "--cpu-offload-gb N moves part of the weights to host memory (slow, last resort)",
    ]
    return _finding(facts, "CUDA_OOM_LOADING_WEIGHTS", "The GPU ran out of memory while loading the model weights.",
                    fixes, "weights")


@rule("CUDA_OOM_SAMPLER_WARMUP", category="cuda_oom")
def oom_sampler_warmup(facts: Facts) -> Finding | None:
    if not has_gpu_oom(facts) and not has(facts, r"warming up sampler|_dummy_sampler_run.*memory"):
        return None
    if oom_phase(facts) != "sampler":
        return None
    seqs = engine_arg(facts, "max_num_seqs")
    fixes = [
        f"lower --max-num-seqs (now {seqs})" if seqs else
        "lower --max-num-seqs (e.g. 128 or 64): the sampler warm-up runs one dummy request per sequence slot",
        f"lower {utilization_text(facts)} a little, so that the warm-up has headroom outside the KV cache",
    ]
    return _finding(facts, "CUDA_OOM_SAMPLER_WARMUP",
                    "The GPU ran out of memory while warming up the sampler with max_num_seqs dummy requests.", fixes,
                    "sampler")


@rule("CUDA_OOM_CUDA_GRAPH_CAPTURE", category="cuda_oom")
def oom_cuda_graph_capture(facts: Facts) -> Finding | None:
    if not has_gpu_oom(facts) or oom_phase(facts) != "cuda_graph":
        return None
    fixes = [f"lower {utilization_text(facts)} (e.g. by 0.03-0.05): the KV cache was sized before the graphs "
             "were captured, leaving too little for them"]
    fixes += cudagraph_workarounds(vllm_version(facts))
    return _finding(facts, "CUDA_OOM_CUDA_GRAPH_CAPTURE",
                    "The GPU ran out of memory while capturing CUDA graphs, after the KV cache had been allocated.",
                    fixes, "cuda_graph")


@rule("CUDA_OOM_PROFILING", category="cuda_oom")
def oom_profiling(facts: Facts) -> Finding | None:
    if not has_gpu_oom(facts) or oom_phase(facts) != "profiling":
        return None
    return _finding(facts, "CUDA_OOM_PROFILING",
                    "The GPU ran out of memory during the profiling run, which executes a full batch at the "
                    "configured context length: the context length or batch size is too large for this GPU.",
                    context_fixes(facts) + [f"or lower {utilization_text(facts)}"], "profiling")


FRAGMENTATION_BYTES = 1 << 30  # reserved-but-unallocated memory from here on is worth reclaiming


def plain_torch_fixes(nums: dict) -> list[str]:
    """Advice for an out-of-memory error in a program that is not vLLM (a script, a trainer)."""
    fixes = []
    requested, total = nums.get("requested_bytes"), nums.get("total_bytes")
    if requested and total and requested > total:
        fixes.append(f"one allocation of {fmt_gib(requested)} is larger than the whole GPU ({fmt_gib(total)}): that "
                     "tensor itself must shrink (smaller batch or sequence length, lower precision) or be split "
                     "across GPUs")
    held = nums.get("this_process_bytes")
    if held and total and held > 0.25 * total:
        fixes.append(f"the failing process itself already held {fmt_gib(held)}: release tensors it no longer needs "
                     "(drop the references, then torch.cuda.empty_cache()) and run inference under "
                     "torch.inference_mode()")
    others = {pid: size for pid, size in nums.get("processes", {}).items()}
    if len(others) > 1:
        fixes.append("other processes hold memory on this GPU ("
                     + ", ".join(f"pid {pid}: {fmt_gib(size)}" for pid, size in list(others.items())[:4])
                     + "): stop them or run on a free GPU (CUDA_VISIBLE_DEVICES)")
    else:
        fixes.append("check nvidia-smi for other processes holding memory on this GPU; stop them or run on a free GPU "
                     "(CUDA_VISIBLE_DEVICES)")
    fixes.append("use a smaller batch size or sequence length, a smaller model, or lower precision (bf16/fp16, or "
                 "8-/4-bit quantization)")
    spare = nums.get("reserved_unallocated_bytes")
    if spare is not None and spare >= FRAGMENTATION_BYTES:
        fixes.append(f"{fmt_gib(spare)} was reserved by PyTorch but unallocated (fragmentation): set "
                     "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True")
    return fixes


@rule("CUDA_OOM", category="cuda_oom")
def oom_generic(facts: Facts) -> Finding | None:
    if not has_gpu_oom(facts) or oom_phase(facts) is not None:
        return None
    if vllm_not_involved(facts):
        why = "vLLM is not installed there" if facts.vllm_installed is False else "no vLLM frame or log line in the input"
        return _finding(facts, "CUDA_OOM",
                        f"The GPU ran out of memory in a program that is not vLLM ({why}), so vLLM's settings "
                        "do not apply.", plain_torch_fixes(oom_numbers(facts)), None)
    fixes = context_fixes(facts)
    kv = kv_cache_dtype_advice(min_cc(facts)[1] if min_cc(facts) else None)
    if kv:
        fixes.append(kv)
    fixes += [f"lower {utilization_text(facts)} if the OOM comes after start-up (it leaves room for activations)",
              "if the weights themselves do not fit: --tensor-parallel-size across more GPUs or a quantized checkpoint"]
    return _finding(facts, "CUDA_OOM", "The GPU ran out of memory.", fixes, None)
