"""Memory held by other processes on the same GPU (category cuda_oom)."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    GIB,
    HINT,
    evidence,
    fmt_gib,
    level,
    vllm_not_involved,
)
from vllm_bug.analyzer.rules.memory import holders_in_the_way, holders_text, process_sizes

PROCESS_LINES_READ = 20  # torch's per-process lines looked at for one that lists several processes


@rule("FREE_MEMORY_BELOW_UTILIZATION", category="cuda_oom", signals=("FREE_MEMORY_BELOW_UTILIZATION",))
def free_memory_below_utilization(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "FREE_MEMORY_BELOW_UTILIZATION", limit=2)
    if not lines:
        return None
    assert facts.signals is not None
    hit = facts.signals.first("FREE_MEMORY_BELOW_UTILIZATION")
    sizes = hit.groups if hit else {}
    holders = facts.memory_holders
    fixes = [
        "find what else holds memory on that GPU (nvidia-smi --query-compute-apps=pid,used_memory --format=csv) "
        "and stop it, or give this instance a GPU of its own (CUDA_VISIBLE_DEVICES)"
    ]
    details: dict = {}
    title = (
        "Less GPU memory is free at start-up than --gpu-memory-utilization asks for: other processes "
        "(or a previous vLLM that is still running) hold memory on the GPU."
    )
    if "free_gib" in sizes:
        free, total, util, wanted = (
            float(sizes[name]) for name in ("free_gib", "total_gib", "utilization", "requested_gib")
        )
        if holders and sum(h.used_bytes for h in holders) >= (wanted - free) * GIB:
            title = (
                f"Less GPU memory is free at start-up than --gpu-memory-utilization asks for ({wanted:.1f} GiB "
                f"wanted, {free:.1f} GiB free): {holders_text(holders)} held the rest."
            )
            fixes[0] = f"stop {holders_text(holders)}, or give this instance a GPU of its own (CUDA_VISIBLE_DEVICES)"
            details["holders"] = [{"pid": h.pid, "name": h.name, "used_bytes": h.used_bytes} for h in holders]
        fits = max(0.0, (free - 0.5) / total) if total else 0.0
        details.update({"free_gib": free, "total_gib": total, "requested_utilization": util, "requested_gib": wanted})
        fixes.append(
            f"or lower --gpu-memory-utilization to at most {fits:.2f} ({free:.1f} of {total:.1f} GiB are free; "
            f"{util:g} asks for {wanted:.1f} GiB)"
        )
    else:
        fixes.append("or lower --gpu-memory-utilization below the fraction that is actually free")
    return Diagnosis(
        level(facts, "FREE_MEMORY_BELOW_UTILIZATION"),
        title,
        evidence=lines,
        fixes=fixes,
        details=details,
    )


@rule("OTHER_PROCESSES_HOLD_GPU_MEMORY", category="cuda_oom", signals=("GPU_OUT_OF_MEMORY", "KV_CACHE_NO_BLOCKS"))
def other_processes_hold_memory(facts: Facts) -> Diagnosis | None:
    """Several processes named in torch's OOM message, or seen on the GPU when the bundle was collected."""
    assert facts.signals is not None
    if holders_in_the_way(facts):
        return None  # the out-of-memory finding names them already
    others: list[str] = []
    # One OOM message lists every process on that GPU; per-rank messages for other GPUs do not count.
    for hit in facts.signals.all("TORCH_OOM_PROCESS_MEMORY")[:PROCESS_LINES_READ]:
        procs = process_sizes(hit)
        if len({pid for pid, _ in procs}) >= 2:
            others = [f"process {pid}: {fmt_gib(size)}" for pid, size in procs]
            break
    for gpu in facts.gpus:
        for proc in gpu.processes:
            used = proc.get("used_memory_bytes") or proc.get("used_bytes") or 0
            name = str(proc.get("name") or proc.get("process_name") or "")
            if used >= GIB // 2 and "vllm" not in name.lower():
                others.append(f"{name or 'pid ' + str(proc.get('pid'))} on GPU {gpu.index}: {fmt_gib(used)}")
    if not others:
        return None
    lines = evidence(facts, "TORCH_OOM_PROCESS_MEMORY", limit=2)
    fixes = ["stop the other processes or move them to another GPU (nvidia-smi lists them), then retry"]
    if vllm_not_involved(facts):
        title = "More than one process holds memory on the GPU."
    else:
        title = "More than one process holds memory on the GPU; vLLM's budget assumes it has the GPU to itself."
        fixes.append(
            "when two vLLM instances must share a GPU, give each a --gpu-memory-utilization whose sum "
            "stays below 0.9, and each must still fit its weights in its share"
        )
    return Diagnosis(HINT + 0.1, title, evidence=lines, fixes=fixes, details={"processes": others})
