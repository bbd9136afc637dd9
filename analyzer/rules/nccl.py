"""NCCL / multi-GPU / multi-node communication failures and hangs (category nccl)."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import DIRECT, ROOT, has, HINT, env_value, evidence, level

NCCL_ERROR = (r"NCCL error|ncclSystemError|ncclInternalError|ncclUnhandledCudaError|ncclRemoteError|"
              r"ncclInvalidUsage|ncclInvalidArgument|ProcessGroupNCCL.*(error|Error)|NCCL WARN|"
              r"DistBackendError|NCCL communicator was aborted")
SYSTEM_ERROR = r"unhandled system error|ncclSystemError"
CUDA_ERROR = r"unhandled cuda error|ncclUnhandledCudaError"
REMOTE_ERROR = r"remote process exited or there was a network error|ncclRemoteError|Connection (reset|refused|closed) by peer"
LOAD_FAILED = r"Failed to load NCCL library|libnccl\.so\S*: cannot open shared object file"
HANG = (r"Watchdog caught collective operation timeout|collective operation timeout|NCCL timeout|"
        r"\bhangs?\b|\bstuck\b|\bhanging\b|timed out.*(allreduce|all_reduce|barrier|broadcast)|"
        r"RPC call to \w+ timed out|DistNetworkError|No response from|Timed out (waiting|after)")
NO_INTERFACE = (r"no socket interface found|No usable listening interface found|\bno interface found|"
                r"Unable to find address for: \S")
IFNAME_VARS = ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME")
NCCL_CONTEXT = r"NCCL|nccl|tensor.parallel|pipeline.parallel|all.?reduce|\btp\s*=?\s*[2-9]|-tp [2-9]|distributed"


def _debug_fix() -> str:
    return ("rerun with NCCL_DEBUG=INFO (NCCL_DEBUG=TRACE for more) and read the 'NCCL WARN' lines: they name the "
            "failing transport")


@rule("NCCL_SYSTEM_ERROR", category="nccl")
def nccl_system_error(facts: Facts) -> Finding | None:
    lines = evidence(facts, SYSTEM_ERROR, limit=2)
    if not lines:
        return None
    container = has(facts, r"docker|container|kubernetes|\bpod\b")
    fixes = ["shared memory: in Docker pass --ipc=host (or --shm-size=16g or more); in Kubernetes mount an emptyDir "
             "with medium: Memory at /dev/shm" + (" (this run is in a container)" if container else ""),
             _debug_fix(),
             "with InfiniBand / GPUDirect RDMA the container needs the IPC_LOCK capability and unlimited locked "
             "memory (ulimit -l); NCCL_IB_DISABLE=1 tests without it",
             "NCCL_P2P_DISABLE=1 as a test: if it works, peer-to-peer between the GPUs is broken (IOMMU/ACS, "
             "virtualisation)"]
    if facts.shm_total_bytes is not None and facts.shm_total_bytes < 1024**3:
        fixes.insert(0, f"/dev/shm is only {facts.shm_total_bytes // 1024**2} MiB: NCCL needs far more for "
                        "intra-node transport")
    return Finding("NCCL_SYSTEM_ERROR", "nccl", level(facts, SYSTEM_ERROR),
                   "NCCL hit a system error while setting up communication between GPUs (commonly /dev/shm too "
                   "small, missing IPC_LOCK for RDMA, or a broken network interface).",
                   evidence=lines, fixes=fixes)


@rule("NCCL_CUDA_ERROR", category="nccl")
def nccl_cuda_error(facts: Facts) -> Finding | None:
    lines = evidence(facts, CUDA_ERROR, limit=2)
    if not lines:
        return None
    return Finding("NCCL_CUDA_ERROR", "nccl", level(facts, CUDA_ERROR),
                   "NCCL failed on a CUDA call (peer-to-peer access, IPC memory or the GPU itself).",
                   evidence=lines,
                   fixes=[_debug_fix(), "NCCL_P2P_DISABLE=1 as a test; if it helps, check nvidia-smi topo -m and "
                                        "IOMMU/ACS settings",
                          "--disable-custom-all-reduce removes vLLM's own peer-to-peer path"])


@rule("NCCL_REMOTE_ERROR", category="nccl")
def nccl_remote_error(facts: Facts) -> Finding | None:
    lines = evidence(facts, REMOTE_ERROR, limit=2)
    if not lines or not has(facts, NCCL_CONTEXT):
        return None
    return Finding("NCCL_REMOTE_ERROR", "nccl", level(facts, REMOTE_ERROR, seen=0.8),
                   "A peer rank disconnected: another worker died or the network between nodes failed.",
                   evidence=lines,
                   fixes=["look in the other workers' logs for their first error; that is the real cause",
                          "multi-node: set NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME to the interface that connects "
                          "the nodes, and VLLM_HOST_IP on each node", _debug_fix()])


@rule("NCCL_LIBRARY_LOAD_FAILED", category="nccl")
def nccl_library_load_failed(facts: Facts) -> Finding | None:
    lines = evidence(facts, LOAD_FAILED, limit=2)
    if not lines:
        return None
    return Finding("NCCL_LIBRARY_LOAD_FAILED", "nccl", level(facts, LOAD_FAILED),
                   "vLLM could not load the NCCL library.", evidence=lines,
                   fixes=["reinstall the NCCL wheel torch depends on (pip install --force-reinstall nvidia-nccl-cu12, "
                          "or -cu13 for CUDA 13 builds)",
                          "or point VLLM_NCCL_SO_PATH at a working libnccl.so.2"])


@rule("NCCL_NO_SOCKET_INTERFACE", category="nccl")
def nccl_no_socket_interface(facts: Facts) -> Finding | None:
    """NCCL (or gloo) found no network interface to bootstrap over: mostly a *_SOCKET_IFNAME naming none."""
    lines = evidence(facts, NO_INTERFACE, limit=2)
    if not lines:
        return None
    root = facts.root_cause
    confidence = ROOT if root is not None and re.search(NO_INTERFACE, root.text, re.IGNORECASE) else DIRECT
    who = "gloo" if not has(facts, r"socket interface found|listening interface found|\bno interface found") else "NCCL"
    settings = [(name, value) for name in IFNAME_VARS if (value := env_value(facts, name)) is not None]
    if settings:
        shown = " and ".join(f"{name}={value!r}" for name, value in settings)
        names = " / ".join(name for name, _ in settings)
        title = (f"{who} found no network interface to use: {shown} names an interface that does not exist on this "
                 "host (or is down).")
        fixes = [f"remove {names} so that {who} picks an interface itself, or set it to one that `ip -br addr` lists "
                 "as UP on every node: a name prefix such as `eth` or `ens`, or an exclusion list such as `^lo,docker`",
                 "across nodes, name the interface on the network the nodes reach each other through; "
                 "GLOO_SOCKET_IFNAME must name it as well"]
    else:
        title = f"{who} found no usable network interface to set up communication between the ranks."
        fixes = ["check `ip -br addr`: NCCL needs an interface that is UP with an address; a container started "
                 "without a network (--network=none) has only loopback, so use --network=host",
                 "if NCCL_SOCKET_IFNAME or GLOO_SOCKET_IFNAME is set where the job was launched, it must name an "
                 "interface of this host (a prefix such as `eth`, or `^lo,docker` to exclude)"]
    return Finding("NCCL_NO_SOCKET_INTERFACE", "nccl", confidence, title, evidence=lines,
                   fixes=fixes + [_debug_fix()], details={"settings": dict(settings)} if settings else {})


@rule("NCCL_ERROR", category="nccl")
def nccl_error(facts: Facts) -> Finding | None:
    if any(has(facts, p) for p in (SYSTEM_ERROR, CUDA_ERROR, LOAD_FAILED, NO_INTERFACE)):
        return None
    lines = evidence(facts, NCCL_ERROR, limit=2)
    if not lines:
        return None
    return Finding("NCCL_ERROR", "nccl", level(facts, NCCL_ERROR, seen=0.8),
                   "Communication between GPUs (NCCL) failed.", evidence=lines,
                   fixes=[_debug_fix(), "NCCL_P2P_DISABLE=1 as a test, and --disable-custom-all-reduce",
                          "make sure every rank runs the same torch / NCCL versions"])


@rule("MULTI_GPU_HANG", category="nccl")
def multi_gpu_hang(facts: Facts) -> Finding | None:
    """A hang or collective timeout in a multi-GPU run."""
    hang = evidence(facts, HANG, limit=2)
    if not hang or not has(facts, NCCL_CONTEXT):
        return None
    if any(has(facts, p) for p in (SYSTEM_ERROR, CUDA_ERROR, r"CUDA error|out of memory|illegal memory access")):
        return None
    old_driver = facts.driver_version and re.match(r"535\.", facts.driver_version)
    fixes = [_debug_fix() + "; the last lines before the hang show which step stalls",
             "NCCL_P2P_DISABLE=1 as a test: consumer GPUs without NVLink often advertise peer-to-peer that does not work",
             "--disable-custom-all-reduce; on 535-series drivers also VLLM_SKIP_P2P_CHECK=0 so vLLM verifies P2P "
             "instead of trusting the driver" + (" (your driver is " + facts.driver_version + ")" if old_driver else ""),
             "multi-node: NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME must name the interface that connects the nodes"]
    return Finding("MULTI_GPU_HANG", "nccl", HINT + 0.2,
                   "The multi-GPU run hung or a collective timed out.", evidence=hang, fixes=fixes)
