"""Across the nodes of a cluster bundle: version skew, settings that differ or name what a node lacks,
too few GPUs for the parallel sizes, nodes that are dead or did not answer.

These rules read Facts.nodes, which only a cluster bundle (collect --ray, merge) fills; for one
machine they never run. Evidence lines are the compared facts, one per node or per value.
"""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts, NodeFacts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import DIRECT, HINT, STRONG_HINT, engine_arg_number, has, parallel_size

# (NodeFacts attribute, what the report calls it); the driver's two only matter less
SOFTWARE = (
    ("torch_version", "torch"),
    ("torch_cuda", "torch's CUDA"),
    ("vllm_version", "vLLM"),
    ("nccl_version", "NCCL"),
    ("python_version", "Python"),
)
DRIVER = (("driver_version", "NVIDIA driver"), ("driver_cuda", "driver's CUDA"))
PER_NODE_SETTINGS = ("VLLM_HOST_IP",)  # differ on purpose: each node names its own address
IFNAME_SETTINGS = ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME")
NO_INTERFACE_SIGNALS = ("NCCL_NO_INTERFACE", "GLOO_NO_ADDRESS")
MAX_EVIDENCE = 8


def answered(facts: Facts) -> list[NodeFacts]:
    return [node for node in facts.nodes if node.status == "ok"]


def value_groups(nodes: list[NodeFacts], attribute: str) -> dict[str, list[str]]:
    """value -> labels of the nodes that have it, for the nodes where it is known; {} when all agree."""
    groups: dict[str, list[str]] = {}
    for node in nodes:
        value = getattr(node, attribute)
        if value:
            groups.setdefault(str(value), []).append(node.label)
    return groups if len(groups) > 1 else {}


def _groups_line(what: str, groups: dict[str, list[str]]) -> str:
    return f"{what}: " + "; ".join(f"{value} on {', '.join(labels)}" for value, labels in groups.items())


@rule("CLUSTER_VERSIONS_DIFFER", category="nccl", needs=("nodes",))
def cluster_versions_differ(facts: Facts) -> Diagnosis | None:
    nodes = answered(facts)
    differ = {what: groups for attribute, what in SOFTWARE + DRIVER if (groups := value_groups(nodes, attribute))}
    if not differ:
        return None
    software = [what for _, what in SOFTWARE if what in differ]
    fixes = []
    if software:
        fixes.append(
            "install the same torch, vLLM and Python on every node: one container image (or one locked "
            "environment) for all of them is the reliable way"
        )
    if "NCCL" in differ:
        fixes.append(
            "torch brings its own NCCL (the nvidia-nccl-cu* package): the same torch build everywhere gives "
            "the same NCCL; an NCCL preloaded through LD_PRELOAD or LD_LIBRARY_PATH on one node breaks that"
        )
    if "NVIDIA driver" in differ or "driver's CUDA" in differ:
        fixes.append("run the same NVIDIA driver on every node, at least as new as the CUDA that torch is built for")
    return Diagnosis(
        STRONG_HINT if software else HINT,
        f"The nodes run different {_words(list(differ))}; the ranks of one vLLM job must all run the same software, "
        "or NCCL and the workers fail in ways that point elsewhere.",
        evidence=[_groups_line(what, groups) for what, groups in differ.items()][:MAX_EVIDENCE],
        fixes=fixes,
        details={"differences": differ},
    )


@rule("CLUSTER_SETTINGS_DIFFER", category="nccl", needs=("nodes",))
def cluster_settings_differ(facts: Facts) -> Diagnosis | None:
    nodes = answered(facts)
    if len(nodes) < 2:
        return None
    names = sorted({name for node in nodes for name in node.settings} - set(PER_NODE_SETTINGS))
    differ = {}
    for name in names:
        groups: dict[str, list[str]] = {}
        for node in nodes:
            groups.setdefault(node.settings.get(name, "unset"), []).append(node.label)
        if len(groups) > 1:
            differ[name] = groups
    if not differ:
        return None
    return Diagnosis(
        HINT,
        f"NCCL/gloo settings differ between the nodes: {', '.join(list(differ)[:6])}"
        + (f" and {len(differ) - 6} more" if len(differ) > 6 else "")
        + ".",
        evidence=[_groups_line(name, groups) for name, groups in differ.items()][:MAX_EVIDENCE],
        fixes=[
            "set NCCL_* and GLOO_* the same way on every node, in the environment that `ray start` (or the "
            "launcher) runs in: the workers inherit it, so a variable set only in one shell reaches one node",
            "with vLLM's Ray executor, variables set where vLLM starts are copied to the workers; ones set by "
            "hand on a single node are not",
        ],
        details={"differences": differ},
    )


@rule("CLUSTER_INTERFACE_MISSING", category="nccl", needs=("nodes",))
def cluster_interface_missing(facts: Facts) -> Diagnosis | None:
    problems: list[str] = []
    for node in answered(facts):
        problems += _interface_problems(node)
    problems += _shared_host_ip(answered(facts))
    if not problems:
        return None
    seen_error = has(facts, *NO_INTERFACE_SIGNALS)
    return Diagnosis(
        DIRECT if seen_error else STRONG_HINT,
        "A network setting names an interface or address that a node does not have: NCCL or gloo cannot "
        "connect the nodes through it.",
        evidence=problems[:MAX_EVIDENCE],
        fixes=[
            "set NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME to the interface the nodes reach each other through, "
            "as every node names it (`ip -br addr` on each); a prefix such as `eth` or `ens` matches differing "
            "names, `^lo,docker` excludes instead",
            "set VLLM_HOST_IP on each node to that node's own address on that network (or leave it unset)",
        ],
        details={"problems": problems},
    )


def _interface_problems(node: NodeFacts) -> list[str]:
    problems = []
    if node.interfaces is not None:
        for name in IFNAME_SETTINGS:
            value = node.settings.get(name)
            if value is None:
                continue
            chosen = (select_nccl_interfaces if name.startswith("NCCL") else select_gloo_interfaces)(
                value, node.interfaces
            )
            usable = [i for i in chosen if i not in node.interfaces_down]
            if not chosen:
                problems.append(f"{node.label}: {name}={value}, but its interfaces are {', '.join(node.interfaces)}")
            elif not usable:
                problems.append(f"{node.label}: {name}={value} names {', '.join(chosen)}, which is down")
    held = node.addresses_held.get("VLLM_HOST_IP")
    value = node.settings.get("VLLM_HOST_IP")
    if value and held and held.get("local") is False:
        problems.append(f"{node.label}: VLLM_HOST_IP={value} is not an address of this node")
    return problems


def _shared_host_ip(nodes: list[NodeFacts]) -> list[str]:
    """VLLM_HOST_IP copied from one node to others: each node must name its own address."""
    groups: dict[str, list[str]] = {}
    for node in nodes:
        if node.settings.get("VLLM_HOST_IP"):
            groups.setdefault(node.settings["VLLM_HOST_IP"], []).append(node.label)
    return [
        f"VLLM_HOST_IP={value} on {', '.join(labels)}: one address for several nodes"
        for value, labels in groups.items()
        if len(labels) > 1
    ]


def select_nccl_interfaces(spec: str, interfaces: list[str]) -> list[str]:
    """The interfaces NCCL_SOCKET_IFNAME lets NCCL use: comma-separated name prefixes, `=` before the list for
    exact names, `^` before it to exclude instead of include."""
    spec = spec.strip()
    exclude = spec.startswith("^")
    spec = spec[1:] if exclude else spec
    exact = spec.startswith("=")
    spec = spec[1:] if exact else spec
    names = [name.strip() for name in spec.split(",") if name.strip()]

    def named(interface: str) -> bool:
        return any(interface == name if exact else interface.startswith(name) for name in names)

    return [i for i in interfaces if named(i) != exclude]


def select_gloo_interfaces(spec: str, interfaces: list[str]) -> list[str]:
    """GLOO_SOCKET_IFNAME: one or more exact interface names, comma-separated; every one must exist."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    return names if names and all(name in interfaces for name in names) else []


@rule("CLUSTER_NODE_UNAVAILABLE", category="nccl", needs=("nodes",))
def cluster_node_unavailable(facts: Facts) -> Diagnosis | None:
    missing = [node for node in facts.nodes if node.status != "ok"]
    evidence = [f"{node.label}: {node.status}" + (f" ({node.error})" if node.error else "") for node in missing]
    expected = _expected_nodes(facts)
    if expected is not None and expected > len(facts.nodes):
        evidence.append(f"the job asks for {expected} nodes; the bundle holds {len(facts.nodes)}")
    if not evidence:
        return None
    dead = [node.label for node in missing if node.status == "dead"]
    if dead:
        one = len(dead) == 1
        title = (
            f"{_words(dead)} {'is' if one else 'are'} dead: the workers there died with {'it' if one else 'them'}, "
            "and the other nodes' NCCL errors or hangs follow from that."
        )
    else:
        title = "Not every node of the cluster could be collected: its facts are missing from the comparison."
    return Diagnosis(
        STRONG_HINT if dead else HINT,
        title,
        evidence=evidence[:MAX_EVIDENCE],
        fixes=[
            "look at the node itself: `ray status` lists the nodes Ray sees, and the raylet's log "
            "(/tmp/ray/session_latest/logs/raylet.out on that node) says why one left; out-of-memory kills show "
            "in `dmesg`",
            "collect that node on its own (vllm-bug collect there) and add it with vllm-bug merge",
        ],
        details={"nodes": {node.label: node.status for node in missing}},
    )


def _expected_nodes(facts: Facts) -> int | None:
    """The node count the job asks for (vLLM's --nnodes), else the one the cluster listed."""
    nnodes = engine_arg_number(facts, "nnodes")
    if nnodes is not None and nnodes >= 1:
        return int(nnodes)
    return facts.nodes_expected


@rule("CLUSTER_TOO_FEW_GPUS", category="engine_config", needs=("nodes",))
def cluster_too_few_gpus(facts: Facts) -> Diagnosis | None:
    need = parallel_size(facts)
    counted = [node for node in answered(facts) if node.gpu_count is not None]
    if not need or not counted:
        return None
    have = sum(node.gpu_count or 0 for node in counted)
    if have >= need:
        return None
    absent = [node.label for node in facts.nodes if node.status != "ok"]
    return Diagnosis(
        STRONG_HINT,
        f"tensor x pipeline parallel size asks for {need} GPUs, but the nodes that answered have {have}"
        + (f" ({_words(absent)} did not answer)" if absent else "")
        + ": Ray waits for GPUs that never come, "
        "or vLLM refuses to start.",
        evidence=[f"{node.label}: {node.gpu_count} GPU(s)" for node in counted][:MAX_EVIDENCE],
        fixes=[
            f"lower --tensor-parallel-size x --pipeline-parallel-size to at most {have}, or add nodes",
            "usually tensor parallel size is the GPUs of one node and pipeline parallel size the number of nodes",
        ],
        details={"needed": need, "available": have},
    )


def _words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
