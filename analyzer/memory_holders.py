"""Other processes that held memory on the GPU when an allocation failed, worked out once per Facts.

torch's out-of-memory message lists every process NVML reports on that GPU: "Process N has X GiB memory
in use" for the others, "this process has" for itself (when its pid is not among NVML's, as in a container
with its own pid namespace, it cannot tell itself apart, and neither can we). A bundle lists the processes
on each GPU when it was collected (pid, name, memory), after the failed program had exited: those are
others too. Both are joined by pid; torch's numbers win, the bundle adds the names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vllm_bug.analyzer.facts import Facts, Gpu

MIN_HOLDER_BYTES = 256 << 20  # below this a process is a CUDA context, not what took the memory


@dataclass(frozen=True)
class MemoryHolder:
    pid: str
    used_bytes: float
    name: str | None = None  # the process's executable, when the bundle saw it
    gpu_index: int | None = None

    def describe(self) -> str:
        """'pid 537 (python3)' or 'pid 537'."""
        short = os.path.basename(self.name.rstrip("/")) if self.name else ""
        return f"pid {self.pid} ({short})" if short else f"pid {self.pid}"


def memory_holders(facts: Facts) -> list[MemoryHolder]:
    """The processes other than the failing one that held GPU memory, largest first.

    From torch's OOM message when it lists processes; else, for a bundle, from the processes seen on the GPUs."""
    from vllm_bug.analyzer.rules.memory import oom_numbers

    if facts.signals is None:
        return []
    named = {str(proc.get("pid")): (proc, gpu) for gpu in facts.gpus for proc in gpu.processes}
    numbers = oom_numbers(facts) if facts.signals.seen("TORCH_OOM_TRIED_TO_ALLOCATE") else {}
    listed = numbers.get("processes", {})
    if "this_process_bytes" in numbers and not listed:
        return []  # torch listed the processes on that GPU, and there was no other
    if listed and "this_process_bytes" not in numbers:
        return []  # torch did not know its own pid among them (another pid namespace): any may be the failing one
    holders = [_holder(pid, size, named.get(pid)) for pid, size in listed.items()]
    if not holders:
        holders = [_holder(pid, _used(proc), (proc, gpu)) for pid, (proc, gpu) in named.items()]
    return sorted((h for h in holders if h.used_bytes >= MIN_HOLDER_BYTES), key=lambda h: -h.used_bytes)


def _used(proc: dict) -> float:
    used = proc.get("used_memory_bytes") or proc.get("used_bytes") or 0
    return float(used) if isinstance(used, (int, float)) else 0.0


def _holder(pid: str, used: float, seen: tuple[dict, Gpu] | None) -> MemoryHolder:
    if seen is None:
        return MemoryHolder(pid, used)
    proc, gpu = seen
    name = proc.get("name") or proc.get("process_name")
    return MemoryHolder(pid, used, str(name) if name else None, gpu.index)
