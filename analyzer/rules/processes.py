"""Memory held by other processes on the same GPU (category cuda_oom)."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    GIB,
    HINT,
    evidence,
    fmt_gib,
    grep,
    has,
    level,
    parse_size,
    vllm_not_involved,
)
from vllm_bug.analyzer.rules.memory import has_gpu_oom

FREE_BELOW_UTIL = r"Free memory on device.*less than desired GPU memory utilization|less than desired GPU memory utilization"


@rule("FREE_MEMORY_BELOW_UTILIZATION", category="cuda_oom")
def free_memory_below_utilization(facts: Facts) -> Finding | None:
    lines = evidence(facts, FREE_BELOW_UTIL, limit=2)
    if not lines:
        return None
    m = re.search(r"\((\d{1,15}(?:\.\d+)?)/(\d{1,15}(?:\.\d+)?) GiB\).*utilization \((\d{1,15}(?:\.\d+)?), (\d{1,15}(?:\.\d+)?) GiB\)", lines[0])
    fixes = ["find what else holds memory on that GPU (nvidia-smi --query-compute-apps=pid,used_memory --format=csv) "
             "and stop it, or give this instance a GPU of its own (CUDA_VISIBLE_DEVICES)"]
    details = {}
    if m:
        free, total, util, wanted = (float(g) for g in m.groups())
        fits = max(0.0, (free - 0.5) / total) if total else 0.0
        details = {"free_gib": free, "total_gib": total, "requested_utilization": util, "requested_gib": wanted}
        fixes.append(f"or lower --gpu-memory-utilization to at most {fits:.2f} ({free:.1f} of {total:.1f} GiB are free; "
                     f"{util:g} asks for {wanted:.1f} GiB)")
    else:
        fixes.append("or lower --gpu-memory-utilization below the fraction that is actually free")
    return Finding("FREE_MEMORY_BELOW_UTILIZATION", "cuda_oom", level(facts, FREE_BELOW_UTIL),
                   "Less GPU memory is free at start-up than --gpu-memory-utilization asks for: other processes "
                   "(or a previous vLLM that is still running) hold memory on the GPU.",
                   evidence=lines, fixes=fixes, details=details)


@rule("OTHER_PROCESSES_HOLD_GPU_MEMORY", category="cuda_oom")
def other_processes_hold_memory(facts: Facts) -> Finding | None:
    """Several processes named in torch's OOM message, or seen on the GPU when the bundle was collected."""
    if not has_gpu_oom(facts) and not has(facts, r"No available memory for the cache blocks"):
        return None
    others: list[str] = []
    # One OOM message lists every process on that GPU; per-rank messages for other GPUs do not count.
    for line in grep(facts, r"Process \d+ has [\d.]+ ?[KMGT]i?B memory in use", limit=20):
        procs = re.findall(r"Process (\d+) has (\d{1,15}(?:\.\d+)?) ?([KMGT]i?B) memory in use", line)
        if len({pid for pid, _, _ in procs}) >= 2:
            others = [f"process {pid}: {fmt_gib(parse_size(num, unit))}" for pid, num, unit in procs]
            break
    for gpu in facts.gpus:
        for proc in gpu.processes:
            used = proc.get("used_memory_bytes") or proc.get("used_bytes") or 0
            name = str(proc.get("name") or proc.get("process_name") or "")
            if used >= GIB // 2 and "vllm" not in name.lower():
                others.append(f"{name or 'pid ' + str(proc.get('pid'))} on GPU {gpu.index}: {fmt_gib(used)}")
    if not others:
        return None
    lines = evidence(facts, r"Process \d+ has [\d.]+ ?[KMGT]i?B memory in use", limit=2)
    fixes = ["stop the other processes or move them to another GPU (nvidia-smi lists them), then retry"]
    if vllm_not_involved(facts):
        title = "More than one process holds memory on the GPU."
    else:
        title = "More than one process holds memory on the GPU; vLLM's budget assumes it has the GPU to itself."
        fixes.append("when two vLLM instances must share a GPU, give each a --gpu-memory-utilization whose sum "
                     "stays below 0.9, and each must still fit its weights in its share")
    return Finding("OTHER_PROCESSES_HOLD_GPU_MEMORY", "cuda_oom", HINT + 0.1, title, evidence=lines, fixes=fixes,
                   details={"processes": others})
