"""What `collect` and `run` print once the bundle is written: the facts a reporter can check at a glance,
then what to do next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vllm_bug.commands.output import terminal_safe

SUMMARY_LABEL_WIDTH = 11
UNREMARKABLE_ABSENT = frozenset({"clang", "cmake", "gcc"})  # a missing compiler rarely matters to a bug report


def format_summary(
    payload: dict[str, Any], path: Path, seconds: float, extras: list[str], nodes: dict[str, Any] | None = None
) -> str:
    """The summary for the bundle at PATH; EXTRAS are the next steps listed at the end; NODES, a cluster
    bundle's nodes section (collect --ray)."""
    size = path.stat().st_size if path.exists() else 0
    rows = [
        ("GPU", _gpu_line(payload)),
        ("driver", _driver_line(payload.get("driver") or {})),
        ("python", _python_line(payload)),
        ("torch", _torch_line(payload.get("torch") or {})),
        ("nvcc", _nvcc_line(payload.get("cuda_toolkit") or {})),
        ("vLLM", _vllm_line(payload.get("vllm") or {})),
    ]
    rows = [(label, value) for label, value in rows if value is not None]
    log = payload.get("log")
    if log:
        count = len(log.get("tracebacks") or [])
        cut = f", {log.get('omitted_bytes', 0):,} bytes cut from the middle" if log.get("truncated") else ""
        lines_read = log.get("original_lines", 0)
        rows.append(
            (
                "log",
                (
                    f"{lines_read:,} line{'' if lines_read == 1 else 's'}, "
                    f"{count} traceback{'' if count == 1 else 's'}{cut}"
                ),
            )
        )
    command = payload.get("command")
    if command:
        duration = command.get("duration_s")
        took = f" after {duration:.1f} s" if isinstance(duration, (int, float)) else ""
        rows.append(("command", f"exit code {command.get('exit_code')}{took}"))
    model = payload.get("model")
    if model:
        state = "config.json summarised" if model.get("found") else "config.json not on this machine"
        rows.append(("model", f"{model.get('name')} ({state})"))
    xid = payload.get("xid") or []
    if xid:
        rows.append(("Xid", f"{len(xid)} NVIDIA Xid line{'' if len(xid) == 1 else 's'} in the kernel log"))
    rows += _probe_rows(payload["manifest"]["probes"])
    if nodes is not None:
        rows.append(("nodes", _nodes_line(nodes)))
    redactions = payload.get("redactions") or []
    rows.append(
        (
            "redacted",
            ", ".join(f"{r['kind']} x{r['count']}" for r in redactions) if redactions else "nothing found to redact",
        )
    )
    lines = [f"vllm-bug: wrote {terminal_safe(path)} ({size / 1024:.1f} KiB) in {seconds:.1f} s"]
    lines += [f"  {label + ':':<{SUMMARY_LABEL_WIDTH}}{value}" for label, value in rows]
    lines += [f"warning: {warning}" for warning in python_warnings(payload)]
    if extras:
        lines.append("Next:")
        lines += [f"  - {extra}" for extra in extras]
    return "\n".join(lines)


def _nodes_line(nodes: dict[str, Any]) -> str:
    """'3 of 3 answered' or '2 of 3 answered; node-3 dead (Ray lists this node as dead)'."""
    entries = nodes.get("entries") or []
    answered = [e for e in entries if e.get("status") == "ok"]
    others = [
        f"{e['label']} {e['status']}" + (f" ({str(e['error'])[:80]})" if e.get("error") else "")
        for e in entries
        if e.get("status") != "ok"
    ]
    line = f"{len(answered)} of {len(entries)} answered"
    return line + ("; " + "; ".join(others[:4]) if others else "") + ("; ..." if len(others) > 4 else "")


def _probe_rows(probes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    failed = []
    for p in probes:
        if p["status"] in ("error", "timeout"):
            what = "timed out" if p["status"] == "timeout" else "failed"
            failed.append(f"{p['name']} {what} after {p.get('duration_s', 0):.1f} s")
    absent: list[str] = []
    for p in probes:
        tool = p["name"].split()[0]  # "nvidia-smi -q" and "nvidia-smi topo -m" are nvidia-smi too
        if p["status"] == "missing" and tool not in UNREMARKABLE_ABSENT and tool not in absent:
            absent.append(tool)
    rows = [("probes", "; ".join(failed) if failed else "none failed or hung")]
    if absent:
        rows.append(("not found", ", ".join(absent)))
    return rows


def _python_line(payload: dict[str, Any]) -> str | None:
    """'Python 3.12.3 at /x/.venv/bin/python (VIRTUAL_ENV is /x/.venv)': the interpreter inspected, and why."""
    python = (payload.get("host") or {}).get("python") or {}
    where = python.get("executable")
    if not where:
        return None
    version = f"Python {python['version']} at " if python.get("version") else ""
    because = f" ({python['chosen_because']})" if python.get("chosen_because") else ""
    return f"{version}{where}{because}"


def python_warnings(payload: dict[str, Any]) -> list[str]:
    """What the collector found wrong with the interpreter it inspected (several environments, ...)."""
    warnings = ((payload.get("host") or {}).get("python") or {}).get("warnings") or []
    return [str(w) for w in warnings]


def _gpu_line(payload: dict[str, Any]) -> str:
    gpus = payload.get("gpus") or []
    driver = payload.get("driver") or {}
    if not gpus:
        reason = (driver.get("error") or "").splitlines()[0][:120] if driver.get("error") else ""
        return "none found" + (f" ({reason})" if reason else "")
    names: dict[str, int] = {}
    for gpu in gpus:
        details = []
        if gpu.get("compute_capability"):
            details.append(f"compute capability {gpu['compute_capability']}")
        if isinstance(gpu.get("memory_total_bytes"), int):
            details.append(f"{gpu['memory_total_bytes'] / 2**30:.1f} GiB")
        label = f"{gpu.get('name')}" + (f" ({', '.join(details)})" if details else "")
        names[label] = names.get(label, 0) + 1
    return ", ".join(f"{n} x {label}" if n > 1 else label for label, n in names.items())


def _driver_line(driver: dict[str, Any]) -> str:
    if not driver.get("version"):
        return "unknown"
    cuda = f", supports CUDA up to {driver['cuda_version']}" if driver.get("cuda_version") else ""
    return f"{driver['version']}{cuda}"


def _nvcc_line(toolkit: dict[str, Any]) -> str:
    if not toolkit.get("nvcc_version"):
        return "not found"
    where = f" ({toolkit['nvcc_path']})" if toolkit.get("nvcc_path") else ""
    return f"CUDA {toolkit['nvcc_version']} toolkit{where}"


def _torch_line(torch: dict[str, Any]) -> str:
    if torch.get("installed") is False:
        return "not installed"
    if not torch.get("version"):
        return f"unknown ({torch.get('error') or 'probe failed'})"
    parts = [str(torch["version"])]
    if torch.get("cuda"):
        parts.append(f"built for CUDA {torch['cuda']}")
    if torch.get("cuda_available") is not None:
        count = torch.get("device_count")
        parts.append(
            f"sees CUDA: {'yes' if torch['cuda_available'] else 'NO'}"
            + (f", {count} device{'' if count == 1 else 's'}" if isinstance(count, int) else "")
        )
    if torch.get("error"):
        parts.append(f"import failed: {str(torch['error'])[:100]}")
    return ", ".join(parts)


def _vllm_line(vllm: dict[str, Any]) -> str:
    if vllm.get("installed") is False:
        return "not installed"
    version = vllm.get("version") or "unknown version"
    variant = f" ({vllm['build_variant']})" if vllm.get("build_variant") else ""
    if vllm.get("import_ok") is False:
        state = f"import FAILED: {str(vllm.get('import_error') or '')[:100]}"
    elif vllm.get("c_import_ok") is False:
        state = f"import ok, vllm._C FAILED: {str(vllm.get('c_import_error') or '')[:100]}"
    elif vllm.get("import_ok"):
        state = "import ok"
    else:
        state = "import not checked"
    unmet = vllm.get("requirements_unmet") or []
    return f"{version}{variant}, {state}" + (f"; {len(unmet)} requirement(s) unmet" if unmet else "")
