"""GPU memory exhausted (category cuda_oom): which phase ran out tells what to change."""

from __future__ import annotations

from itertools import count, takewhile
from typing import TYPE_CHECKING

from vllm_bug.analyzer.complete import ensure_complete
from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.knowledge import (
    cudagraph_workarounds,
    default_gpu_memory_utilization,
    kv_cache_dtype_advice,
)
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    engine_arg,
    engine_arg_number,
    evidence,
    fmt_gib,
    has,
    level,
    memory_fixes,
    memory_report,
    min_cc,
    parse_size,
    vllm_not_involved,
    vllm_version,
)
from vllm_bug.analyzer.signals import Hit

if TYPE_CHECKING:
    from vllm_bug.analyzer.memory_holders import MemoryHolder

# Sizes in torch's OOM message: the key in details, then the signal groups that may hold it (newer wording first).
OOM_SIZES = (
    ("requested_bytes", "requested"),
    ("total_bytes", "total", "total_before"),
    ("free_bytes", "free", "free_before"),
    ("this_process_bytes", "this_process"),
    ("reserved_unallocated_bytes", "reserved_unallocated"),
)


def has_gpu_oom(facts: Facts) -> bool:
    """Whether the input says the GPU ran out of memory (a line about host memory does not count)."""
    return has(facts, "GPU_OUT_OF_MEMORY")


def oom_lines(facts: Facts) -> list[str]:
    return evidence(facts, "CUDA_OUT_OF_MEMORY", limit=2) or evidence(facts, "OUT_OF_MEMORY", limit=2)


def oom_phase(facts: Facts) -> str | None:
    """What vLLM was doing when memory ran out (analyzer/memory/oom_phase.py), worked out once per Facts."""
    return ensure_complete(facts).oom_phase


def process_sizes(hit: Hit) -> list[tuple[str, float]]:
    """(pid, bytes) for each 'Process N has X memory in use' of one line of torch's OOM message, in order."""
    groups = hit.groups
    return [
        (groups[f"pid{i}"], parse_size(groups[f"size{i}"], groups[f"unit{i}"]))
        for i in takewhile(lambda i: f"pid{i}" in groups, count(1))
    ]


def oom_numbers(facts: Facts) -> dict:
    """Numbers torch prints in its OOM message: request, capacity, free, per-process use."""
    assert facts.signals is not None
    out: dict = {}
    hit = facts.signals.first("TORCH_OOM_TRIED_TO_ALLOCATE")
    groups = hit.groups if hit else {}
    for key, *names in OOM_SIZES:
        name = next((name for name in names if name in groups), None)
        if name:
            out[key] = parse_size(groups[name], groups[f"{name}_unit"])
    procs = {pid: size for line in facts.signals.all("TORCH_OOM_PROCESS_MEMORY") for pid, size in process_sizes(line)}
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


def holders_in_the_way(facts: Facts) -> list[MemoryHolder]:
    """The other processes on the GPU when, without their memory, the failed allocation would have fit.

    With torch's numbers: free + theirs >= requested. Without them: they held a quarter of the GPU or more."""
    holders = facts.memory_holders
    if not holders:
        return []
    held = sum(holder.used_bytes for holder in holders)
    nums = oom_numbers(facts)
    requested, free = nums.get("requested_bytes"), nums.get("free_bytes")
    if requested is not None and free is not None:
        return holders if free + held >= requested else []
    total = nums.get("total_bytes") or max((gpu.memory_total_bytes or 0 for gpu in facts.gpus), default=0)
    return holders if total and held >= HOLDERS_SHARE * total else []


HOLDERS_SHARE = 0.25  # without torch's numbers: the share of the GPU that other processes must hold to be the cause


def holders_text(holders: list[MemoryHolder]) -> str:
    """'pid 537 (python3) with 94.51 GiB' / 'pid 537 (python3) with 94.51 GiB and pid 612 with 20.00 GiB'."""
    parts = [f"{holder.describe()} with {fmt_gib(holder.used_bytes)}" for holder in holders[:HOLDERS_NAMED]]
    more = len(holders) - HOLDERS_NAMED
    text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    return text + (f" (and {more} more)" if more > 0 else "")


HOLDERS_NAMED = 3


def holders_sentence(holders: list[MemoryHolder]) -> str:
    who = "Another process" if len(holders) == 1 else "Other processes"
    return f"{who} held the GPU memory that was needed: {holders_text(holders)}."


def holders_fix(holders: list[MemoryHolder], nums: dict) -> str:
    pids = " ".join(holder.pid for holder in holders[:HOLDERS_NAMED])
    requested = nums.get("requested_bytes")
    fits = f": with that memory free, the {fmt_gib(requested)} allocation fits" if requested else ""
    return (
        f"stop {holders_text(holders)} (kill {pids}, if it is yours and idle), or run on a GPU it does not use "
        f"(CUDA_VISIBLE_DEVICES){fits}"
    )


def _diagnosis(facts: Facts, title: str, fixes: list[str], phase: str | None) -> Diagnosis:
    nums = oom_numbers(facts)
    report = memory_report(facts)
    details: dict = {"phase": phase or "unknown"}
    if nums:
        details["oom"] = dict(nums)
    if report:
        details["memory"] = report
    sentence = numbers_sentence(nums)
    holders = holders_in_the_way(facts)
    if holders:
        title = f"{holders_sentence(holders)} {title}"
        fixes = [holders_fix(holders, nums), *fixes]
        details["holders"] = [{"pid": h.pid, "name": h.name, "used_bytes": h.used_bytes} for h in holders]
    return Diagnosis(
        level(facts, "OUT_OF_MEMORY"),
        title + (f" {sentence}" if sentence else ""),
        evidence=oom_lines(facts),
        fixes=memory_fixes(report) + fixes,
        details=details,
    )


def context_fixes(facts: Facts) -> list[str]:
    out = []
    max_len = engine_arg(facts, "max_model_len")
    if max_len:
        out.append(f"lower --max-model-len (now {max_len}); profiling reserves activations for a full-length batch")
    else:
        out.append(
            "set --max-model-len to what you need (e.g. 8192); without it the model's full context "
            "length is profiled and reserved"
        )
    seqs = engine_arg(facts, "max_num_seqs")
    out.append(
        f"lower --max-num-seqs (now {seqs})"
        if seqs
        else "lower --max-num-seqs (e.g. 64) and --max-num-batched-tokens to shrink the warm-up batch"
    )
    return out


@rule("CUDA_OOM_LOADING_WEIGHTS", category="cuda_oom", signals=("GPU_OUT_OF_MEMORY",))
def oom_loading_weights(facts: Facts) -> Diagnosis | None:
    if oom_phase(facts) != "weights":
        return None
    tp = engine_arg(facts, "tensor_parallel_size")
    shards = int(tp) * 2 if tp and str(tp).isdigit() else 2
    fixes = [
        f"the weights alone do not fit: shard them with --tensor-parallel-size {shards} "
        "(or more GPUs), or load a quantized checkpoint (AWQ, GPTQ, FP8)",
        *(
            []
            if holders_in_the_way(facts)
            else ["make sure no other process holds memory on the GPU (nvidia-smi) before starting"]
        ),
        "--cpu-offload-gb N moves part of the weights to host memory (slow, last resort)",
    ]
    return _diagnosis(facts, "The GPU ran out of memory while loading the model weights.", fixes, "weights")


@rule("CUDA_OOM_SAMPLER_WARMUP", category="cuda_oom", signals=("GPU_OUT_OF_MEMORY", "SAMPLER_WARMUP_OOM"))
def oom_sampler_warmup(facts: Facts) -> Diagnosis | None:
    if oom_phase(facts) != "sampler":
        return None
    seqs = engine_arg(facts, "max_num_seqs")
    fixes = [
        f"lower --max-num-seqs (now {seqs})"
        if seqs
        else "lower --max-num-seqs (e.g. 128 or 64): the sampler warm-up runs one dummy request per sequence slot",
        f"lower {utilization_text(facts)} a little, so that the warm-up has headroom outside the KV cache",
    ]
    return _diagnosis(
        facts,
        "The GPU ran out of memory while warming up the sampler with max_num_seqs dummy requests.",
        fixes,
        "sampler",
    )


@rule("CUDA_OOM_CUDA_GRAPH_CAPTURE", category="cuda_oom", signals=("GPU_OUT_OF_MEMORY",))
def oom_cuda_graph_capture(facts: Facts) -> Diagnosis | None:
    if oom_phase(facts) != "cuda_graph":
        return None
    fixes = [
        f"lower {utilization_text(facts)} (e.g. by 0.03-0.05): the KV cache was sized before the graphs "
        "were captured, leaving too little for them"
    ]
    fixes += cudagraph_workarounds(vllm_version(facts))
    return _diagnosis(
        facts,
        "The GPU ran out of memory while capturing CUDA graphs, after the KV cache had been allocated.",
        fixes,
        "cuda_graph",
    )


@rule("CUDA_OOM_PROFILING", category="cuda_oom", signals=("GPU_OUT_OF_MEMORY",))
def oom_profiling(facts: Facts) -> Diagnosis | None:
    if oom_phase(facts) != "profiling":
        return None
    return _diagnosis(
        facts,
        "The GPU ran out of memory during the profiling run, which executes a full batch at the "
        "configured context length: the context length or batch size is too large for this GPU.",
        context_fixes(facts) + [f"or lower {utilization_text(facts)}"],
        "profiling",
    )


FRAGMENTATION_BYTES = 1 << 30  # reserved-but-unallocated memory from here on is worth reclaiming


def plain_torch_fixes(nums: dict, holders_known: bool = False) -> list[str]:
    """Advice for an out-of-memory error in a program that is not vLLM (a script, a trainer)."""
    fixes = []
    requested, total = nums.get("requested_bytes"), nums.get("total_bytes")
    if requested and total and requested > total:
        fixes.append(
            f"one allocation of {fmt_gib(requested)} is larger than the whole GPU ({fmt_gib(total)}): that "
            "tensor itself must shrink (smaller batch or sequence length, lower precision) or be split "
            "across GPUs"
        )
    held = nums.get("this_process_bytes")
    if held and total and held > 0.25 * total:
        fixes.append(
            f"the failing process itself already held {fmt_gib(held)}: release tensors it no longer needs "
            "(drop the references, then torch.cuda.empty_cache()) and run inference under "
            "torch.inference_mode()"
        )
    others = {pid: size for pid, size in nums.get("processes", {}).items()}
    if holders_known or ("this_process_bytes" in nums and not others):
        pass  # the first fix names them, or torch listed the GPU's processes and there was no other
    elif len(others) > 1:
        fixes.append(
            "other processes hold memory on this GPU ("
            + ", ".join(f"pid {pid}: {fmt_gib(size)}" for pid, size in list(others.items())[:4])
            + "): stop them or run on a free GPU (CUDA_VISIBLE_DEVICES)"
        )
    else:
        fixes.append(
            "check nvidia-smi for other processes holding memory on this GPU; stop them or run on a free GPU "
            "(CUDA_VISIBLE_DEVICES)"
        )
    fixes.append(
        "use a smaller batch size or sequence length, a smaller model, or lower precision (bf16/fp16, or "
        "8-/4-bit quantization)"
    )
    spare = nums.get("reserved_unallocated_bytes")
    if spare is not None and spare >= FRAGMENTATION_BYTES:
        fixes.append(
            f"{fmt_gib(spare)} was reserved by PyTorch but unallocated (fragmentation): set "
            "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"
        )
    return fixes


@rule("CUDA_OOM", category="cuda_oom", signals=("GPU_OUT_OF_MEMORY",))
def oom_generic(facts: Facts) -> Diagnosis | None:
    if oom_phase(facts) is not None:
        return None
    if vllm_not_involved(facts):
        why = (
            "vLLM is not installed there" if facts.vllm_installed is False else "no vLLM frame or log line in the input"
        )
        return _diagnosis(
            facts,
            f"The GPU ran out of memory in a program that is not vLLM ({why}), so vLLM's settings do not apply.",
            plain_torch_fixes(oom_numbers(facts), holders_known=bool(holders_in_the_way(facts))),
            None,
        )
    fixes = context_fixes(facts)
    gpu = min_cc(facts)
    kv = kv_cache_dtype_advice(gpu[1] if gpu else None)
    if kv:
        fixes.append(kv)
    fixes += [
        f"lower {utilization_text(facts)} if the OOM comes after start-up (it leaves room for activations)",
        "if the weights themselves do not fit: --tensor-parallel-size across more GPUs or a quantized checkpoint",
    ]
    return _diagnosis(facts, "The GPU ran out of memory.", fixes, None)
