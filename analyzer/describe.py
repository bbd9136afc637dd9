"""Facts in words, shared by the plain-text and the Markdown reports (plain strings, not escaped)."""

from __future__ import annotations

from vllm_bug.formats.lazyre import lazy_compile

GIB = 2**30
_XID = lazy_compile(r"\bXid\s*(?:\([^)]*\))?\s*:?\s*(\d+)")
_NOISE_TYPES = ("", "Error")  # "Error" is the extractor's name for an error line without a Python type


def gpu_groups(facts, memory: bool = True) -> list[str]:
    """'2 x NVIDIA H100 80GB HBM3 (compute capability 9.0, 79.6 GiB)', one entry per distinct model."""
    counts: dict[str, int] = {}
    for gpu in facts.gpus:
        details = []
        if gpu.compute_capability:
            details.append(f"compute capability {gpu.compute_capability[0]}.{gpu.compute_capability[1]}")
        if memory and gpu.memory_total_bytes:
            details.append(f"{gpu.memory_total_bytes / GIB:.1f} GiB")
        label = (gpu.name or "unknown GPU") + (f" ({', '.join(details)})" if details else "")
        counts[label] = counts.get(label, 0) + 1
    return [f"{n} x {label}" if n > 1 else label for label, n in counts.items()]


def gpu_names(facts) -> list[str]:
    """Short: '2 x NVIDIA H100 80GB HBM3'."""
    counts: dict[str, int] = {}
    for gpu in facts.gpus:
        if gpu.name:
            counts[gpu.name] = counts.get(gpu.name, 0) + 1
    return [f"{n} x {name}" if n > 1 else name for name, n in counts.items()]


def gpu_memory_in_use(facts) -> list[str]:
    """'GPU 0: 70.1 of 79.6 GiB' for each GPU that had memory in use when the facts were taken."""
    out = []
    for position, gpu in enumerate(facts.gpus):
        if gpu.memory_used_bytes and gpu.memory_used_bytes >= 256 * 2**20:
            index = gpu.index if gpu.index is not None else position
            total = f" of {gpu.memory_total_bytes / GIB:.1f}" if gpu.memory_total_bytes else ""
            out.append(f"GPU {index}: {gpu.memory_used_bytes / GIB:.1f}{total} GiB")
    return out


def gpu_processes(facts, limit: int = 8) -> list[str]:
    """'GPU 0: pid 4242 python3 (70.0 GiB)' for the processes holding GPU memory."""
    out = []
    for position, gpu in enumerate(facts.gpus):
        index = gpu.index if gpu.index is not None else position
        for proc in gpu.processes:
            used = proc.get("used_memory_bytes")
            size = f" ({used / GIB:.1f} GiB)" if isinstance(used, int) and used > 0 else ""
            name = " ".join(str(proc.get("name") or "").split())[:80] or "?"
            out.append(f"GPU {index}: pid {proc.get('pid', '?')} {name}{size}")
    if len(out) > limit:
        out = out[:limit] + [f"... {len(out) - limit} more"]
    return out


def cpu_line(facts) -> str | None:
    """'Intel(R) Xeon(R) Processor, 32 CPUs, 1 socket'."""
    parts = [facts.cpu_model] if facts.cpu_model else []
    if facts.cpu_count:
        parts.append(f"{facts.cpu_count} CPU{'s' if facts.cpu_count != 1 else ''}")
    if facts.cpu_sockets:
        parts.append(f"{facts.cpu_sockets} socket{'s' if facts.cpu_sockets != 1 else ''}")
    return ", ".join(parts) or None


def numa_line(facts) -> str | None:
    """'2 nodes: node0 CPUs 0-31 (251.8 GiB); node1 CPUs 32-63 (252.0 GiB)'."""
    nodes = facts.numa_nodes
    if not nodes:
        return None
    described = []
    for node in nodes[:8]:
        memory = node.get("memory_total_bytes")
        size = f" ({memory / GIB:.1f} GiB)" if isinstance(memory, int) else ""
        described.append(f"node{node.get('node')} CPUs {node.get('cpus') or '?'}{size}")
    more = f"; {len(nodes) - 8} more" if len(nodes) > 8 else ""
    return f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}: " + "; ".join(described) + more


def vllm_state(facts) -> str | None:
    """'0.11.0', 'not installed', '0.11.0, import FAILED: ...', or None when the input does not say."""
    if not facts.vllm_version and (facts.vllm_installed is False or package_absent(facts, "vllm")):
        return "not installed"
    if not facts.vllm_version and facts.vllm_import_ok is None:
        return None
    version = facts.vllm_version or "version unknown"
    if facts.vllm_import_ok is False:
        return f"{version}, import FAILED: {first_line(facts.vllm_import_error) or 'no error message'}"
    if facts.vllm_c_import_error:
        return f"{version}, vllm._C FAILED to import: {first_line(facts.vllm_c_import_error)}"
    return version


def package_absent(facts, name: str) -> bool:
    """Whether a bundle shows `name` is not installed (a bundle lists every installed package)."""
    return facts.input_kind == "bundle" and bool(facts.packages) and name not in facts.packages


def torch_state(facts) -> str | None:
    if facts.torch_version:
        return facts.torch_version
    return "not installed" if package_absent(facts, "torch") else None


def cuda_versions(facts) -> list[tuple[str, str]]:
    """The three CUDA versions that get confused, each labelled by where it comes from."""
    rows = []
    if facts.driver_cuda:
        rows.append(("CUDA, driver max", f"{facts.driver_cuda} (newest CUDA the driver supports)"))
    if facts.nvcc_version:
        rows.append(("CUDA, nvcc toolkit", facts.nvcc_version + (f" ({facts.cuda_home})" if facts.cuda_home else "")))
    if facts.torch_cuda:
        rows.append(("CUDA, torch build", f"{facts.torch_cuda} (torch.version.cuda)"))
    return rows


def xid_codes(facts) -> list[str]:
    """The distinct Xid numbers in the kernel-log lines, in order of appearance."""
    codes: list[str] = []
    for line in facts.xid:
        m = _XID.search(line)
        if m and m.group(1) not in codes:
            codes.append(m.group(1))
    return codes


def has_exception_type(facts) -> bool:
    """Whether the root cause names a real exception type (not a line picked from prose)."""
    return facts.root_cause is not None and facts.root_cause.exc_type not in _NOISE_TYPES


def root_cause_line(facts, limit: int = 300) -> str | None:
    """The root-cause exception as one line, without a repeated or made-up type prefix."""
    root = facts.root_cause
    if root is None:
        return None
    message = " ".join(str(root.message or "").split())
    if root.exc_type in _NOISE_TYPES or message.startswith(root.exc_type + ":"):
        line = message
    else:
        line = f"{root.exc_type}: {message}" if message else root.exc_type
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def carried_note(facts) -> str | None:
    """How the root cause is known when a wrapper's text carried it, for the line after the error (else None)."""
    from vllm_bug.analyzer.tracebacks import is_wrapper

    root = facts.root_cause
    carrier = root.carried_by if root is not None else None
    if carrier is None:
        return None
    if is_wrapper(carrier):
        return f"quoted by a wrapper ({carrier.short_type}); the error's own traceback is not in the input"
    return f"carried inside the {carrier.short_type} that reported it"


def no_root_cause_line(facts) -> str | None:
    """What to say in place of the error when no root cause was found (None when there is one)."""
    if facts.root_cause is not None:
        return None
    wrapper = wrapper_only(facts)
    if wrapper is not None and wrapper_quotes_cause(facts):
        return f"{wrapper} (quoted by a wrapper; the error's own traceback is not in the input)"
    if wrapper is not None:
        return f"none found, only the wrapper '{wrapper}'; the error it reports is not in the input"
    if facts.lines or facts.input_kind == "text":
        return "none found (no Python exception or traceback in the input)"
    return None


def wrapper_only(facts, limit: int = 160) -> str | None:
    """'RuntimeError: Engine core initialization failed. ...' when the input's only errors are wrappers, or the
    error that carried the root cause ('RuntimeError: Worker failed with error ...')."""
    from vllm_bug.analyzer.tracebacks import only_wrappers

    root = facts.root_cause
    wrapper = root.carried_by if root is not None else only_wrappers(facts.tracebacks)
    if wrapper is None:
        return None
    line = " ".join(f"{wrapper.exc_type}: {wrapper.message}".split()).rstrip(": ")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def wrapper_quotes_cause(facts) -> bool:
    """Whether the wrapper that wrapper_only() names carries the error in its own message."""
    from vllm_bug.analyzer.tracebacks import only_wrappers
    from vllm_bug.analyzer.tracebacks import wrapper_quotes_cause as quotes

    if facts.root_cause is not None:
        return facts.root_cause.carried_by is not None
    wrapper = only_wrappers(facts.tracebacks)
    return wrapper is not None and quotes(wrapper)


def missing_for_diagnosis(facts) -> list[str]:
    """What a diagnosis needs and the input lacks (said when no rule recognised the problem)."""
    missing = []
    if facts.root_cause is None:
        missing.append("a Python traceback or an error message")
    elif not has_exception_type(facts) and not facts.root_cause.frames:
        missing.append("a Python traceback (the input has only a line describing the error)")
    if not facts.gpus and not facts.driver_version:
        missing.append("the GPU model and driver version (nvidia-smi output)")
    if not facts.torch_version and not facts.vllm_version and facts.vllm_installed is None:
        missing.append("the torch and vLLM versions (the output of `vllm collect-env`)")
    if facts.input_kind == "text" and not facts.launch_command and not facts.engine_args:
        missing.append("the launch command with its flags")
    return missing


def first_line(text: str | None, limit: int = 200) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    if not lines:
        return ""
    # a traceback's last line is its message; a one-line error is itself
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


# -- the nodes of a cluster bundle -------------------------------------------------------------
NODE_FACTS = (
    ("GPUs", None),
    ("NVIDIA driver", "driver_version"),
    ("driver's CUDA", "driver_cuda"),
    ("torch", "torch_version"),
    ("torch's CUDA", "torch_cuda"),
    ("vLLM", "vllm_version"),
    ("NCCL", "nccl_version"),
    ("Python", "python_version"),
)


def node_rows(facts) -> list[tuple[str, list[str], bool]]:
    """(fact, its value on each node, whether the nodes differ), the differing rows first.

    The rows: status, GPUs, the versions, every NCCL_*/GLOO_*/VLLM_HOST_IP setting seen on any node, the
    interfaces. Nodes that did not answer show '-' and do not count towards a difference."""
    nodes = facts.nodes
    rows: list[tuple[str, list[str]]] = [("status", [_node_status(n) for n in nodes])]
    for label, attribute in NODE_FACTS:
        rows.append((label, [_node_value(n, attribute) for n in nodes]))
    for name in sorted({name for n in nodes for name in n.settings}):
        rows.append((name, [n.settings.get(name, "unset") if n.status == "ok" else "-" for n in nodes]))
    if any(n.interfaces is not None for n in nodes):
        rows.append(("interfaces", [_node_interfaces(n) for n in nodes]))
    marked = [(label, values, _nodes_differ(label, values, nodes)) for label, values in rows]
    return [row for row in marked if row[2]] + [row for row in marked if not row[2]]


def _nodes_differ(label: str, values: list[str], nodes) -> bool:
    if label == "status":
        return any(n.status != "ok" for n in nodes)
    known = {value for value, node in zip(values, nodes, strict=True) if node.status == "ok" and value != "?"}
    return len(known) > 1


def nodes_line(facts) -> str:
    """'3 nodes (node-3 dead); they differ in torch, NCCL_IB_DISABLE' (or '...; no differences found')."""
    missing = [f"{n.label} {n.status}" for n in facts.nodes if n.status != "ok"]
    differ = [label for label, _values, differs in node_rows(facts) if differs and label != "status"]
    head = f"{len(facts.nodes)} node{'s' if len(facts.nodes) != 1 else ''}" + (
        f" ({', '.join(missing[:4])})" if missing else ""
    )
    return head + ("; they differ in " + ", ".join(differ[:8]) if differ else "; no differences found")


def _node_status(node) -> str:
    flags = [flag for flag, on in (("primary", node.primary), ("head", node.head)) if on]
    text = node.status + (f" ({', '.join(flags)})" if flags else "")
    return text + (f": {node.error}" if node.error and node.status != "ok" else "")


def _node_value(node, attribute: str | None) -> str:
    if node.status != "ok":
        return "-"
    if attribute is None:
        names: dict[str, int] = {}
        for name in node.gpu_names:
            names[name] = names.get(name, 0) + 1
        described = ", ".join(f"{n} x {name}" if n > 1 else name for name, n in names.items())
        return described or str(node.gpu_count or 0)
    return getattr(node, attribute) or "?"


def _node_interfaces(node) -> str:
    if node.status != "ok" or node.interfaces is None:
        return "-" if node.status != "ok" else "?"
    return ", ".join(name + (" (down)" if name in node.interfaces_down else "") for name in node.interfaces)
