"""Facts from a validated bundle: the measured sections first, then whatever its log text adds.

The schema lets almost every field be null, and probes that failed leave sections empty, so every
read here tolerates missing or odd values. Text extraction then runs over the log (and the
captured tracebacks and nvidia-smi output) to fill lines, tracebacks, root cause and engine args
the same way as for pasted text, without overriding anything measured.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from vllm_bug.analyzer.bundle_crosslayer import read_cross_layer
from vllm_bug.analyzer.facts import Facts, Gpu, NodeFacts, normalise_package_name
from vllm_bug.analyzer.facts_text.environment import mask_secret
from vllm_bug.analyzer.facts_text.gpus import apply_nvidia_smi
from vllm_bug.analyzer.gpus import parse_compute_capability
from vllm_bug.analyzer.involvement import has_vllm_log_header, has_vllm_process_tags
from vllm_bug.analyzer.logclean import clean_lines
from vllm_bug.analyzer.textfacts import fill_from_lines
from vllm_bug.analyzer.tracebacks import pick_root_cause
from vllm_bug.formats.engine_args import parse_command_args
from vllm_bug.formats.traceback import parse_tracebacks


def facts_from_bundle(doc: dict[str, Any]) -> Facts:
    payload = _dict(doc.get("payload"))
    facts = Facts(input_kind="bundle")
    _measured(facts, payload)
    model = payload.get("model")
    facts.model = model if isinstance(model, dict) else None
    facts.redactions = [r for r in _list(payload.get("redactions")) if isinstance(r, dict)]
    facts.collection_problems = _collection_problems(_dict(payload.get("manifest")))
    _command(facts, payload.get("command"))
    _from_text_sections(facts, payload)
    read_cross_layer(facts, payload)
    _nodes(facts, doc)
    return facts


def _measured(facts: Facts, payload: dict[str, Any]) -> None:
    """What the probes measured on one machine: host, GPUs, driver, CUDA, torch, vLLM, packages, env."""
    _host(facts, _dict(payload.get("host")))
    facts.gpus = [_gpu(g, i) for i, g in enumerate(_list(payload.get("gpus"))) if isinstance(g, dict)]
    driver = _dict(payload.get("driver"))
    facts.driver_version = _str(driver.get("version"))
    facts.driver_cuda = _str(driver.get("cuda_version"))
    toolkit = _dict(payload.get("cuda_toolkit"))
    facts.nvcc_version = _str(toolkit.get("nvcc_version"))
    facts.cuda_home = _str(toolkit.get("cuda_home"))
    _torch(facts, _dict(payload.get("torch")))
    _vllm(facts, _dict(payload.get("vllm")))
    facts.packages = {
        normalise_package_name(str(k)): str(v) for k, v in _dict(payload.get("packages")).items() if v is not None
    }
    if facts.torch_version is None:
        facts.torch_version = facts.package("torch")
    if facts.vllm_version is None:
        facts.vllm_version = facts.package("vllm")
    facts.env = {str(k): mask_secret(str(k), str(v)) for k, v in _dict(payload.get("env")).items() if v is not None}
    facts.xid = [str(x) for x in _list(payload.get("xid"))]
    topology = _dict(payload.get("nvidia_smi")).get("topo")
    facts.gpu_topology = topology.rstrip() if isinstance(topology, str) and topology.strip() else None  # tabs align it
    facts.conda_packages = {str(k): str(v) for k, v in _dict(payload.get("conda_packages")).items() if v is not None}


NODE_SETTING_PREFIXES = ("NCCL_", "GLOO_")
NODE_SETTING_NAMES = ("VLLM_HOST_IP",)
NOT_SETTINGS = ("NCCL_VERSION",)  # the container image's label of its NCCL, not a setting
NOT_INSTALLED = "not installed"


def _nodes(facts: Facts, doc: dict[str, Any]) -> None:
    """A cluster bundle's nodes, each from its own payload (nothing for a single-node bundle)."""
    nodes = _dict(doc.get("nodes"))
    facts.nodes = [_node(entry) for entry in _list(nodes.get("entries")) if isinstance(entry, dict)]
    facts.nodes_expected = _int(nodes.get("expected"))


def _is_node_setting(name: str) -> bool:
    return (name.startswith(NODE_SETTING_PREFIXES) or name in NODE_SETTING_NAMES) and name not in NOT_SETTINGS


def _node(entry: dict[str, Any]) -> NodeFacts:
    status = _str(entry.get("status")) or "error"
    node = NodeFacts(
        label=_str(entry.get("label")) or "node",
        status=status,
        error=_str(entry.get("error")),
        primary=entry.get("primary") is True,
        head=entry.get("head") if isinstance(entry.get("head"), bool) else None,
    )
    payload = entry.get("payload")
    ray_gpus = entry.get("ray_gpus")
    if not isinstance(payload, dict):
        if isinstance(ray_gpus, (int, float)) and not isinstance(ray_gpus, bool):
            node.gpu_count = int(ray_gpus)
        return node
    measured = Facts(input_kind="bundle")
    _measured(measured, payload)
    node.gpu_count = len(measured.gpus)
    node.gpu_names = [g.name for g in measured.gpus if g.name]
    for name in ("driver_version", "driver_cuda", "torch_version", "torch_cuda", "vllm_version", "python_version"):
        setattr(node, name, getattr(measured, name))
    if node.torch_version is None and _dict(payload.get("torch")).get("installed") is False:
        node.torch_version = NOT_INSTALLED
    if node.vllm_version is None and measured.vllm_installed is False:
        node.vllm_version = NOT_INSTALLED
    node.nccl_version = _str(_dict(payload.get("torch")).get("nccl_version"))
    node.settings = {name: value for name, value in measured.env.items() if _is_node_setting(name)}
    network = _dict(_dict(payload.get("host")).get("network"))
    if isinstance(network.get("interfaces"), list):
        interfaces = [i for i in network["interfaces"] if isinstance(i, dict) and _str(i.get("name"))]
        node.interfaces = [str(i["name"]) for i in interfaces]
        node.interfaces_down = [str(i["name"]) for i in interfaces if _str(i.get("state")) == "down"]
    node.addresses_held = {str(k): v for k, v in _dict(network.get("addresses_held")).items() if isinstance(v, dict)}
    return node


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _host(facts: Facts, host: dict[str, Any]) -> None:
    facts.os = _str(host.get("os"))
    facts.kernel = _str(host.get("kernel"))
    facts.glibc = _str(host.get("glibc"))
    facts.glibcxx_max = _str(host.get("glibcxx_max"))
    facts.python_version = _str(_dict(host.get("python")).get("version"))
    if facts.python_version:
        m = re.match(r"\d+\.\d+(?:\.\d+)?", facts.python_version)
        facts.python_version = m.group(0) if m else facts.python_version
    facts.container = {str(k): bool(v) for k, v in _dict(host.get("container")).items() if isinstance(v, bool)}
    facts.shm_total_bytes = _int(host.get("shm_total_bytes"))
    _interpreter(facts, _dict(host.get("python")))
    cpu = _dict(host.get("cpu"))
    facts.cpu_model = _str(cpu.get("model"))
    facts.cpu_count = _int(cpu.get("count"))
    facts.cpu_sockets = _int(cpu.get("sockets"))
    facts.cpu_flags = _strings(cpu.get("flags"))
    facts.numa_nodes = [
        {
            "node": _int(n.get("node")),
            "cpus": _str(n.get("cpus")),
            "memory_total_bytes": _int(n.get("memory_total_bytes")),
        }
        for n in _list(host.get("numa_nodes"))
        if isinstance(n, dict)
    ]
    facts.cudnn_libraries = _strings(host.get("cudnn_libraries"))


def _interpreter(facts: Facts, python: dict[str, Any]) -> None:
    facts.python_build = _str(python.get("build"))
    bits = _int(python.get("bits"))
    facts.python_bits = bits if bits in (32, 64) else None
    facts.python_platform = _str(python.get("platform"))
    facts.python_executable = _str(python.get("executable"))
    facts.python_chosen_because = _str(python.get("chosen_because"))
    facts.python_warnings = _strings(python.get("warnings"))


def _strings(value: Any) -> list[str]:
    return [str(v) for v in _list(value) if isinstance(v, str) and v.strip()]


def _gpu(raw: dict[str, Any], position: int) -> Gpu:
    mig = raw.get("mig_mode")
    mig_enabled = None
    if isinstance(mig, dict):
        current = str(mig.get("current", "")).lower()
        mig_enabled = current in ("enabled", "1", "true") if current else None
    index = _int(raw.get("index"))
    return Gpu(
        name=_str(raw.get("name")),
        compute_capability=parse_compute_capability(_str(raw.get("compute_capability"))),
        memory_total_bytes=_int(raw.get("memory_total_bytes")),
        memory_used_bytes=_int(raw.get("memory_used_bytes")),
        index=index if index is not None else position,
        processes=[p for p in _list(raw.get("processes")) if isinstance(p, dict)],
        mig_enabled=mig_enabled,
        compute_mode=_str(raw.get("compute_mode")),
    )


def _torch(facts: Facts, torch: dict[str, Any]) -> None:
    facts.torch_version = _str(torch.get("version"))
    facts.torch_cuda = _str(torch.get("cuda"))
    arch = torch.get("arch_list")
    facts.torch_arch_list = [str(a) for a in arch] if isinstance(arch, list) else None
    available = torch.get("cuda_available")
    facts.torch_cuda_available = available if isinstance(available, bool) else None
    facts.torch_device_count = _int(torch.get("device_count"))


def _vllm(facts: Facts, vllm: dict[str, Any]) -> None:
    facts.vllm_version = _str(vllm.get("version"))
    ok = vllm.get("import_ok")
    facts.vllm_import_ok = ok if isinstance(ok, bool) else None
    facts.vllm_import_error = _str(vllm.get("import_error"))
    facts.vllm_requirements = [r for r in _list(vllm.get("requirements")) if isinstance(r, dict)]
    installed = vllm.get("installed")
    facts.vllm_installed = installed if isinstance(installed, bool) else None
    if vllm.get("c_import_ok") is False:
        facts.vllm_c_import_error = _str(vllm.get("c_import_error")) or "vllm._C failed to import"


def _collection_problems(manifest: dict[str, Any]) -> list[str]:
    """'nvidia-smi: timed out after 10.0 s' for each probe that failed or hung."""
    problems = []
    for probe in _list(manifest.get("probes")):
        if not isinstance(probe, dict) or probe.get("status") not in ("error", "timeout"):
            continue
        duration = probe.get("duration_s")
        took = f" after {duration:.1f} s" if isinstance(duration, (int, float)) else ""
        what = "timed out" if probe["status"] == "timeout" else "failed"
        error = (_str(probe.get("error")) or "").splitlines()
        problems.append(
            f"{_str(probe.get('name')) or 'a probe'}: {what}{took}" + (f" ({error[0][:200]})" if error else "")
        )
    return problems


def _command(facts: Facts, command: Any) -> None:
    if not isinstance(command, dict):
        return
    argv = [str(a) for a in _list(command.get("argv"))]
    if not argv:
        return
    facts.launch_command = " ".join(shlex.quote(a) for a in argv)[:4096]
    facts.command_recorded = True
    for key, value in parse_command_args(facts.launch_command).items():
        facts.engine_args.setdefault(key, value)


def _from_text_sections(facts: Facts, payload: dict[str, Any]) -> None:
    """Run the text extractors over the log, the captured tracebacks and nvidia-smi output."""
    log = _dict(payload.get("log"))
    log_text = log.get("text") if isinstance(log.get("text"), str) else ""
    lines = clean_lines(log_text) if log_text else []
    facts.lines = lines
    facts.vllm_process_tags = bool(log_text) and has_vllm_process_tags(str(log_text))
    facts.vllm_log_lines = bool(log_text) and has_vllm_log_header(str(log_text))
    fill_from_lines(facts, lines)
    if facts.root_cause is None or not facts.tracebacks:
        extra = "\n\n".join(t for t in _list(log.get("tracebacks")) if isinstance(t, str))
        import_tb = _str(_dict(payload.get("vllm")).get("import_traceback"))
        torch_tb = _str(_dict(payload.get("torch")).get("traceback"))
        extra = "\n\n".join(t for t in (extra, import_tb, torch_tb) if t)
        if extra:
            extra_lines = clean_lines(extra)
            offset = len(facts.lines)
            facts.lines = facts.lines + extra_lines
            found = parse_tracebacks(extra_lines)
            for tb in found:
                tb.start_line = (tb.start_line or 0) + offset
            facts.tracebacks = facts.tracebacks + found
            if facts.root_cause is None or facts.root_cause.exc_type == "Error":
                chosen = pick_root_cause(facts.lines, facts.tracebacks)
                facts.root_cause = chosen or facts.root_cause
    smi = _dict(payload.get("nvidia_smi"))
    plain = _str(smi.get("plain"))
    if plain and not any(g.processes for g in facts.gpus):
        apply_nvidia_smi(facts, "\n".join(clean_lines(plain)))
