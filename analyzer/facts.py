"""One normalised set of facts, built from a bundle or from pasted text; the only thing rules see.

Every field may be unknown (None or empty): pasted reports rarely say everything. Versions are kept
as the reporter's strings ("2.9.0+cu128"); helpers below compare them. Evidence for findings must be
quoted from `lines` (the input's lines with log prefixes stripped) or from a fact's `source_line`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.traceback import Frame, Traceback

if TYPE_CHECKING:
    from vllm_bug.analyzer.memory.estimate import MemoryEstimate
    from vllm_bug.analyzer.memory_holders import MemoryHolder
    from vllm_bug.analyzer.mentions import Mentions
    from vllm_bug.analyzer.search import Searchable
    from vllm_bug.analyzer.signals import SignalSet

__all__ = ["Facts", "Frame", "Gpu", "Traceback", "normalise_package_name", "parse_version", "version_lt"]


@dataclass
class Gpu:
    name: str | None = None
    compute_capability: tuple[int, int] | None = None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    index: int | None = None
    processes: list[dict[str, Any]] = field(default_factory=list)
    mig_enabled: bool | None = None
    compute_mode: str | None = None


@dataclass
class NodeFacts:
    """One node of a cluster bundle (collect --ray, merge), as the cross-node rules compare nodes."""

    label: str  # "node-1", ...: how the report names it
    status: str  # "ok" | "dead" | "timeout" | "error"
    error: str | None = None
    primary: bool = False  # the node the rest of the facts describe
    head: bool | None = None  # Ray's head node
    gpu_count: int | None = None  # GPUs its payload lists; Ray's count when the payload has none
    gpu_names: list[str] = field(default_factory=list)
    driver_version: str | None = None
    driver_cuda: str | None = None
    torch_version: str | None = None
    torch_cuda: str | None = None
    vllm_version: str | None = None
    nccl_version: str | None = None  # the NCCL torch was built with
    python_version: str | None = None
    settings: dict[str, str] = field(default_factory=dict)  # NCCL_*, GLOO_* and VLLM_HOST_IP as set there
    interfaces: list[str] | None = None  # its network interfaces; None when the bundle did not record them
    interfaces_down: list[str] = field(default_factory=list)
    addresses_held: dict[str, dict[str, Any]] = field(default_factory=dict)  # VLLM_HOST_IP -> {local, interface}


@dataclass
class Facts:
    input_kind: str = "text"  # "bundle" | "text"
    gpus: list[Gpu] = field(default_factory=list)
    driver_version: str | None = None
    driver_cuda: str | None = None  # the newest CUDA the driver supports (nvidia-smi header)
    nvcc_version: str | None = None  # the CUDA toolkit on PATH
    cuda_home: str | None = None
    torch_version: str | None = None
    torch_cuda: str | None = None  # the CUDA torch was built with (torch.version.cuda)
    torch_arch_list: list[str] | None = None  # ["sm_80", "sm_90", ...]
    torch_cuda_available: bool | None = None
    torch_device_count: int | None = None
    vllm_version: str | None = None
    vllm_import_ok: bool | None = None
    vllm_import_error: str | None = None
    vllm_installed: bool | None = None  # False: the bundle found no vllm package in that Python
    vllm_c_import_error: str | None = None  # `import vllm` worked but vllm._C did not
    vllm_requirements: list[dict[str, Any]] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)  # lower-case name -> version
    env: dict[str, str] = field(default_factory=dict)
    engine_args: dict[str, Any] = field(default_factory=dict)  # from `non-default args: {...}` or argv
    launch_command: str | None = None
    command_recorded: bool = False  # launch_command is the argv `vllm-bug run` ran, not a guess from the text
    os: str | None = None
    kernel: str | None = None
    glibc: str | None = None
    glibcxx_max: str | None = None
    python_version: str | None = None
    container: dict[str, bool] = field(default_factory=dict)
    shm_total_bytes: int | None = None
    xid: list[str] = field(default_factory=list)
    model: dict[str, Any] | None = None  # shape from config.json: architectures, num_hidden_layers, ...
    lines: list[str] = field(default_factory=list)  # the input, prefixes stripped, per-rank duplicates merged
    tracebacks: list[Traceback] = field(default_factory=list)
    root_cause: Traceback | None = None  # the innermost real cause, wrappers skipped
    title: str | None = None  # issue title, when the input is a pasted issue
    vllm_process_tags: bool = False  # the raw input has lines tagged by vLLM's processes (EngineCore, VllmWorker)
    vllm_log_lines: bool = False  # the raw input has lines with vLLM's log header ('INFO 03-19 07:27:53 [core.py:58]')
    redactions: list[dict[str, Any]] = field(default_factory=list)
    redacted_here: list[dict[str, Any]] = field(default_factory=list)  # what the analyzer itself redacted
    collection_problems: list[str] = field(default_factory=list)  # bundle probes that failed or timed out
    # what the engine itself logged about memory (absent from most pasted reports)
    kv_cache_tokens: int | None = None  # "GPU KV cache size: N tokens" (V0: "... stored in KV cache (N)")
    kv_cache_memory_bytes: int | None = None  # "Available KV cache memory: X GiB" (may be negative)
    max_concurrency: float | None = None  # "Maximum concurrency for N tokens per request: X"
    estimated_max_model_len: int | None = None  # "the estimated maximum model length is Z"
    gpu_blocks: int | None = None  # "# GPU blocks: N" (V0)
    model_weights_bytes: int | None = None  # "Model loading took X GiB" / "model weights take X GiB"
    # the interpreter and the machine around the GPUs, as a bundle records them (what collect_env prints)
    python_build: str | None = None  # "3.12.3 (main, Aug 31 2026, 10:18:26) [GCC 13.3.0]"
    python_bits: int | None = None
    python_platform: str | None = None  # "Linux-6.18.44-x86_64-with-glibc2.39"
    python_executable: str | None = None  # the interpreter the collector inspected
    python_chosen_because: str | None = None  # why that one ("VIRTUAL_ENV is /x/.venv")
    python_warnings: list[str] = field(default_factory=list)  # e.g. vLLM missing there but present elsewhere
    cpu_model: str | None = None
    cpu_count: int | None = None
    cpu_sockets: int | None = None
    cpu_flags: list[str] = field(default_factory=list)  # avx512*, amx*, ...
    numa_nodes: list[dict[str, Any]] = field(default_factory=list)  # {"node", "cpus", "memory_total_bytes"}
    gpu_topology: str | None = None  # `nvidia-smi topo -m` as printed
    cudnn_libraries: list[str] = field(default_factory=list)
    conda_packages: dict[str, str] = field(default_factory=dict)  # only when the target runs in conda
    # a cluster bundle's nodes, each with its own versions and settings (empty for one machine)
    nodes: list[NodeFacts] = field(default_factory=list)
    nodes_expected: int | None = None  # how many nodes the cluster listed, dead ones included
    # cross-layer facts a bundle records (analyzer/bundle_crosslayer.py)
    requirement_problems: list[dict[str, Any]] = field(default_factory=list)  # what `pip check` reports there
    requirement_modules: dict[str, list[str]] = field(default_factory=dict)  # import names of those distributions
    python_env_kind: str | None = None  # "venv" | "uv" | "conda" | "system": how to install into it
    visible_devices: dict[str, Any] | None = None  # CUDA_VISIBLE_DEVICES checked against the GPUs NVML saw
    # derived once the facts above are complete (analyzer.complete.complete_facts); rules read these
    signals: SignalSet | None = None  # every recognised message, by signal id (analyzer/data/signals/)
    mentions: Mentions | None = None  # engine arguments and env assignments the text mentions
    memory: MemoryEstimate | None = None  # the memory arithmetic for the model on these GPUs (analyzer/memory/)
    oom_phase: str | None = None  # "weights" | "sampler" | "cuda_graph" | "profiling": what vLLM was doing
    memory_holders: list[MemoryHolder] = field(default_factory=list)  # other processes' memory on the GPU that failed
    _searchable: Searchable | None = field(default=None, repr=False, compare=False)

    def package(self, name: str) -> str | None:
        return self.packages.get(normalise_package_name(name))


_NAME_SEPARATORS = lazy_compile(r"[-_.]+")
_VERSION_START = lazy_compile(r"\s*v?(\d{1,9}(?:\.\d{1,9})*)(?!\d)")


def normalise_package_name(name: str) -> str:
    return _NAME_SEPARATORS.sub("-", name).lower()


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """'2.9.0+cu128' -> (2, 9, 0); '12.8' -> (12, 8); '0.6.4.post1' -> (0, 6, 4); None if no digits."""
    if not text:
        return None
    m = _VERSION_START.match(str(text))  # int() refuses > 4300 digits
    if not m:
        return None
    return tuple(int(p) for p in m.group(1).split("."))


def version_lt(a: str | None, b: str | None) -> bool | None:
    """a < b by numeric components, or None when either is unknown."""
    pa, pb = parse_version(a), parse_version(b)
    if pa is None or pb is None:
        return None
    width = max(len(pa), len(pb))
    return pa + (0,) * (width - len(pa)) < pb + (0,) * (width - len(pb))
