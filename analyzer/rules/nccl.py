"""NCCL / multi-GPU / multi-node communication failures and hangs (category nccl)."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    DIRECT,
    HINT,
    ROOT,
    env_value,
    evidence,
    has,
    level,
    root_traceback_says,
    vllm_only,
    vllm_or_not,
)

NO_INTERFACE = ("NCCL_NO_INTERFACE", "GLOO_NO_ADDRESS")
# errors with a rule of their own, which the generic NCCL_ERROR leaves to it
SPECIFIC_ERRORS = ("NCCL_SYSTEM_ERROR", "NCCL_UNHANDLED_CUDA_ERROR", "NCCL_LIBRARY_LOAD_FAILED", *NO_INTERFACE)
MULTI_GPU = ("MULTI_GPU_WORDS", "TP_ABOVE_ONE")
IFNAME_VARS = ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME")
NCCL_RESULT_ROWS = "NCCL_RES_"  # the ids tools/mine_catalogue.py gives the ncclResult_t rows of nccl.json
# not an error (ncclInProgress), and timeouts, which MULTI_GPU_HANG explains with what stalled
NCCL_RESULTS_NOT_ERRORS = frozenset({"NCCL_RES_IN_PROGRESS", "NCCL_RES_TIMEOUT"})
MAX_RESULT_LINES = 20
RESULT_NAMED_CONFIDENCE = 0.75  # an NCCL result named in a title or prose, not NCCL's own error line
NCCL_DEBUG_ADVICE = (
    "rerun with NCCL_DEBUG=INFO (NCCL_DEBUG=TRACE for more) and read the 'NCCL WARN' lines: they name "
    "the failing transport"
)


@rule("NCCL_SYSTEM_ERROR", category="nccl", signals=("NCCL_SYSTEM_ERROR",))
def nccl_system_error(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "NCCL_SYSTEM_ERROR", limit=2)
    if not lines:
        return None
    container = has(facts, "IN_CONTAINER_WORDS")
    fixes = [
        (
            "shared memory: in Docker pass --ipc=host (or --shm-size=16g or more); in Kubernetes mount an emptyDir "
            "with medium: Memory at /dev/shm"
        )
        + (" (this run is in a container)" if container else ""),
        NCCL_DEBUG_ADVICE,
        (
            "with InfiniBand / GPUDirect RDMA the container needs the IPC_LOCK capability and unlimited locked "
            "memory (ulimit -l); NCCL_IB_DISABLE=1 tests without it"
        ),
        (
            "NCCL_P2P_DISABLE=1 as a test: if it works, peer-to-peer between the GPUs is broken (IOMMU/ACS, "
            "virtualisation)"
        ),
    ]
    if facts.shm_total_bytes is not None and facts.shm_total_bytes < 1024**3:
        fixes.insert(
            0, f"/dev/shm is only {facts.shm_total_bytes // 1024**2} MiB: NCCL needs far more for intra-node transport"
        )
    return Diagnosis(
        level(facts, "NCCL_SYSTEM_ERROR"),
        "NCCL hit a system error while setting up communication between GPUs (commonly /dev/shm too "
        "small, missing IPC_LOCK for RDMA, or a broken network interface).",
        evidence=lines,
        fixes=fixes,
    )


@rule("NCCL_REMOTE_ERROR", category="nccl", signals=("NCCL_REMOTE_ERROR",))
def nccl_remote_error(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "NCCL_REMOTE_ERROR", limit=2)
    if not lines or not has(facts, *MULTI_GPU):
        return None
    return Diagnosis(
        level(facts, "NCCL_REMOTE_ERROR", seen=0.8),
        "A peer rank disconnected: another worker died or the network between nodes failed.",
        evidence=lines,
        fixes=[
            "look in the other workers' logs for their first error; that is the real cause",
            "multi-node: set NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME to the interface that connects the nodes"
            + vllm_or_not(facts, ", and VLLM_HOST_IP on each node", ""),
            NCCL_DEBUG_ADVICE,
        ],
    )


@rule("NCCL_NO_SOCKET_INTERFACE", category="nccl", signals=NO_INTERFACE)
def nccl_no_socket_interface(facts: Facts) -> Diagnosis | None:
    """NCCL (or gloo) found no network interface to bootstrap over: mostly a *_SOCKET_IFNAME naming none."""
    lines = evidence(facts, *NO_INTERFACE, limit=2)
    if not lines:
        return None
    confidence = ROOT if root_traceback_says(facts, *NO_INTERFACE) else DIRECT
    who = "NCCL" if has(facts, "NCCL_NO_INTERFACE") else "gloo"
    settings = [(name, value) for name in IFNAME_VARS if (value := env_value(facts, name)) is not None]
    if settings:
        shown = " and ".join(f"{name}={value!r}" for name, value in settings)
        names = " / ".join(name for name, _ in settings)
        title = (
            f"{who} found no network interface to use: {shown} names an interface that does not exist on this "
            "host (or is down)."
        )
        fixes = [
            (
                f"remove {names} so that {who} picks an interface itself, or set it to one that `ip -br addr` "
                "lists as UP on every node: a name prefix such as `eth` or `ens`, or an exclusion list such as "
                "`^lo,docker`"
            ),
            (
                "across nodes, name the interface on the network the nodes reach each other through; "
                "GLOO_SOCKET_IFNAME must name it as well"
            ),
        ]
    else:
        title = f"{who} found no usable network interface to set up communication between the ranks."
        fixes = [
            (
                "check `ip -br addr`: NCCL needs an interface that is UP with an address; a container started "
                "without a network (--network=none) has only loopback, so use --network=host"
            ),
            (
                "if NCCL_SOCKET_IFNAME or GLOO_SOCKET_IFNAME is set where the job was launched, it must name an "
                "interface of this host (a prefix such as `eth`, or `^lo,docker` to exclude)"
            ),
        ]
    return Diagnosis(
        confidence,
        title,
        evidence=lines,
        fixes=[*fixes, NCCL_DEBUG_ADVICE],
        details={"settings": dict(settings)} if settings else {},
    )


def nccl_result_lines(facts: Facts) -> list[str]:
    """Lines that give an NCCL error result (its ncclResult_t name or the text ncclGetErrorString gives it: the
    catalogue's NCCL rows) and name NCCL itself, as 'NCCL internal error for ncclCommInitRank' does. The result
    texts alone ('internal error', 'invalid argument') say nothing without NCCL named beside them."""
    assert facts.signals is not None
    ids = [
        signal_id
        for signal_id in facts.signals.hits
        if signal_id.startswith(NCCL_RESULT_ROWS) and signal_id not in NCCL_RESULTS_NOT_ERRORS
    ]
    if not ids or not facts.signals.seen("NCCL_NAMED"):
        return []
    named = set(facts.signals.lines("NCCL_NAMED", limit=MAX_RESULT_LINES))
    return [line for line in facts.signals.lines(*ids, limit=MAX_RESULT_LINES) if line in named][:2]


@rule("NCCL_ERROR", category="nccl", signals=("NCCL_ERROR", "NCCL_NAMED"))
def nccl_error(facts: Facts) -> Diagnosis | None:
    if has(facts, *SPECIFIC_ERRORS):
        return None
    lines = evidence(facts, "NCCL_ERROR", limit=2) or nccl_result_lines(facts)
    if not lines:
        return None
    return Diagnosis(
        level(facts, "NCCL_ERROR", seen=0.8) if has(facts, "NCCL_ERROR") else RESULT_NAMED_CONFIDENCE,
        "Communication between GPUs (NCCL) failed.",
        evidence=lines,
        fixes=[
            NCCL_DEBUG_ADVICE,
            vllm_or_not(
                facts, "NCCL_P2P_DISABLE=1 as a test, and --disable-custom-all-reduce", "NCCL_P2P_DISABLE=1 as a test"
            ),
            "make sure every rank runs the same torch / NCCL versions",
        ],
    )


@rule("MULTI_GPU_HANG", category="nccl", signals=("COLLECTIVE_HANG",))
def multi_gpu_hang(facts: Facts) -> Diagnosis | None:
    """A hang or collective timeout in a multi-GPU run."""
    hang = evidence(facts, "COLLECTIVE_HANG", limit=2)
    if not hang or not has(facts, *MULTI_GPU):
        return None
    if has(facts, "NCCL_SYSTEM_ERROR", "NCCL_UNHANDLED_CUDA_ERROR", "CUDA_ERROR_OR_OOM"):
        return None
    driver = facts.driver_version or ""
    fixes = [
        NCCL_DEBUG_ADVICE + "; the last lines before the hang show which step stalls",
        "NCCL_P2P_DISABLE=1 as a test: consumer GPUs without NVLink often advertise peer-to-peer that does not work",
        *vllm_only(
            facts,
            "--disable-custom-all-reduce; on 535-series drivers also VLLM_SKIP_P2P_CHECK=0 so vLLM verifies P2P "
            "instead of trusting the driver" + (f" (your driver is {driver})" if driver.startswith("535.") else ""),
        ),
        "multi-node: NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME must name the interface that connects the nodes",
    ]
    return Diagnosis(HINT + 0.2, "The multi-GPU run hung or a collective timed out.", evidence=hang, fixes=fixes)
