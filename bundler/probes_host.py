"""Host facts: OS, kernel, C and C++ runtimes, Python, container hints, CPU, NUMA, memory, /dev/shm, cuDNN,
the node id and network interfaces (probes_network).

Files are read under `root` (default "/") so tests can build a fake /proc and /etc. Every fact is read
on its own: one that cannot be read is None and the others are still collected.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from vllm_bug.bundler import probes_network
from vllm_bug.bundler.runner import Manifest, ProbeRecord

PROBE_NAME = "host"
TEXT_READ_CAP = 1 << 20
LIBRARY_READ_CAP = 32 << 20
LD_CACHE_READ_CAP = 8 << 20
_GLIBCXX = re.compile(rb"GLIBCXX_(\d+)\.(\d+)(?:\.(\d+))?")
# Paths in the cache's string table; two can be adjacent (names are often merged into the tail of their path)
_LD_CACHE_LIBSTDCXX = re.compile(rb"(?<=\x00)(/[^\x00]*/libstdc\+\+\.so\.6)(?=\x00)")
_LD_CACHE_CUDNN = re.compile(rb"(?<=\x00)(/[^\x00]*/libcudnn[^\x00/]*\.so[^\x00/]*)(?=\x00)")
# CPU features that decide which kernels run (vLLM's CPU backend, oneDNN, the sampler's fallbacks)
_CPU_FLAG = re.compile(r"^(?:avx2|avx512\w*|avx_vnni\w*|amx\w*|sve\w*|asimd\w*|bf16|i8mm)$")
MAX_NUMA_NODES = 1024
MAX_CUDNN_LIBRARIES = 64
_FOREIGN_ARCH = re.compile(r"lib32|libx32|i[3-6]86")
_CONTAINER_CGROUP = re.compile(r"docker|containerd|kubepods|libpod")


def _under(root: Path, path: str | os.PathLike[str]) -> Path:
    """An absolute path as seen inside `root`."""
    return root / str(path).lstrip("/")


def read_text(path: Path, cap: int = TEXT_READ_CAP) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(cap).decode("utf-8", "replace")
    except OSError:
        return None


# -- OS and C runtimes --------------------------------------------------------------------------


def os_pretty_name(root: Path) -> str | None:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        text = read_text(root / candidate)
        if text is None:
            continue
        match = re.search(r"^PRETTY_NAME=(.*)$", text, re.M)
        if match:
            return match.group(1).strip().strip("'\"")[:512] or None
    return None


def glibc_version() -> str | None:
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.39"
    except (ValueError, OSError, AttributeError):
        value = None
    if value and value.split()[-1][:1].isdigit():
        return value.split()[-1]
    library, version = platform.libc_ver()
    return (version or None) if library == "glibc" else None


def glibcxx_versions(path: Path, cap: int = LIBRARY_READ_CAP) -> list[str]:
    """Every GLIBCXX_x.y[.z] symbol version named inside a libstdc++ file, oldest first."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(cap)
    except OSError:
        return []
    found = {tuple(int(part) for part in match.groups() if part is not None) for match in _GLIBCXX.finditer(data)}
    return [".".join(str(part) for part in version) for version in sorted(found)]


def loaded_libstdcxx(root: Path) -> list[str]:
    """libstdc++ files mapped into this process (read from /proc/self/maps)."""
    text = read_text(root / "proc/self/maps", cap=8 << 20) or ""
    paths = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and os.path.basename(parts[5]).startswith("libstdc++.so") and parts[5] not in paths:
            paths.append(parts[5].strip())
    return paths


def ld_cache_paths(root: Path, entry: re.Pattern[bytes]) -> list[str]:
    """The library paths of the dynamic linker's cache that `entry` matches, each once, in cache order."""
    try:
        with open(root / "etc/ld.so.cache", "rb") as handle:
            data = handle.read(LD_CACHE_READ_CAP)
    except OSError:
        return []
    return list(dict.fromkeys(m.group(1).decode("utf-8", "replace") for m in entry.finditer(data)))


def ld_cache_libstdcxx(root: Path) -> list[str]:
    """libstdc++.so.6 entries of the dynamic linker's cache, this architecture's first."""
    return sorted(ld_cache_paths(root, _LD_CACHE_LIBSTDCXX), key=lambda p: bool(_FOREIGN_ARCH.search(p)))


def cudnn_libraries(root: Path, environ: Mapping[str, str]) -> list[str]:
    """The cuDNN files the dynamic linker knows, links resolved (what torch's collect_env lists), else
    CUDNN_LIBRARY. A pip wheel's own copy (nvidia-cudnn-*) is in the package list instead."""

    def real_file(path: str) -> str | None:
        real = os.path.realpath(_under(root, path))
        if not os.path.isfile(real):
            return None
        return real if root == Path("/") else "/" + os.path.relpath(real, root)  # as seen inside root

    found = {real for real in map(real_file, ld_cache_paths(root, _LD_CACHE_CUDNN)) if real}
    if not found and environ.get("CUDNN_LIBRARY"):
        found = {real for real in [real_file(environ["CUDNN_LIBRARY"])] if real}
    return sorted(found)[:MAX_CUDNN_LIBRARIES]


def libstdcxx_candidates(root: Path, environ: Mapping[str, str], prefix: str) -> Iterable[Path]:
    """Where the libstdc++ a CUDA extension would load lives, in the order the loader would look."""
    for path in loaded_libstdcxx(root):
        yield _under(root, path)
    for folder in environ.get("LD_LIBRARY_PATH", "").split(":"):
        if folder:
            yield _under(root, os.path.join(folder, "libstdc++.so.6"))
    yield Path(prefix) / "lib" / "libstdc++.so.6"  # conda environments ship their own
    for path in ld_cache_libstdcxx(root):
        yield _under(root, path)
    machine = platform.machine()
    for folder in (
        f"/usr/lib/{machine}-linux-gnu",
        f"/lib/{machine}-linux-gnu",
        "/usr/lib64",
        "/lib64",
        "/usr/lib",
        "/lib",
    ):
        yield _under(root, os.path.join(folder, "libstdc++.so.6"))


def glibcxx_max(root: Path, environ: Mapping[str, str], prefix: str) -> tuple[str | None, str | None]:
    """The newest GLIBCXX version the first libstdc++ found offers, and that file's path."""
    for candidate in libstdcxx_candidates(root, environ, prefix):
        if candidate.is_file():
            versions = glibcxx_versions(candidate)
            if versions:
                return versions[-1], str(candidate)
    return None, None


# -- Python ---------------------------------------------------------------------------------------


def python_env_kind(prefix: str, base_prefix: str, environ: Mapping[str, str]) -> str:
    """uv, conda, venv or system: what kind of environment this interpreter runs in."""
    config = read_text(Path(prefix) / "pyvenv.cfg", cap=65536)
    if config is not None and re.search(r"^\s*uv\s*=", config, re.M):
        return "uv"
    if (Path(prefix) / "conda-meta").is_dir() or (
        environ.get("CONDA_PREFIX") and environ.get("CONDA_PREFIX") == prefix
    ):
        return "conda"
    if prefix != base_prefix or config is not None:
        return "venv"
    return "system"


def python_facts(environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable or None,
        "env_kind": python_env_kind(sys.prefix, getattr(sys, "base_prefix", sys.prefix), environ),
    }


# -- containers, CPU, memory -----------------------------------------------------------------


def container_hints(root: Path, environ: Mapping[str, str], kernel_release: str) -> dict[str, bool]:
    cgroups = " ".join(filter(None, (read_text(root / "proc/1/cgroup"), read_text(root / "proc/self/cgroup"))))
    mountinfo = read_text(root / "proc/self/mountinfo") or ""
    version = read_text(root / "proc/version") or ""
    return {
        "docker": (root / ".dockerenv").exists()
        or bool(_CONTAINER_CGROUP.search(cgroups))
        or "/docker/containers/" in mountinfo,
        "podman": (root / "run/.containerenv").exists(),
        "kubernetes": bool(environ.get("KUBERNETES_SERVICE_HOST")),
        "wsl": "microsoft" in kernel_release.lower() or "microsoft" in version.lower(),
    }


def cpu_facts(root: Path) -> dict[str, Any]:
    text = read_text(root / "proc/cpuinfo") or ""
    model = None
    for key in ("model name", "Model", "Hardware", "cpu model", "cpu"):
        match = re.search(rf"^{re.escape(key)}\s*:\s*(.+)$", text, re.M)
        if match:
            model = match.group(1).strip()[:512]
            break
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    sockets = {m.group(1) for m in re.finditer(r"^physical id\s*:\s*(\d+)\s*$", text, re.M)}
    return {
        "model": model,
        "count": os.cpu_count(),
        "usable": usable,
        "sockets": len(sockets) or None,
        "flags": cpu_flags(text),
    }


def cpu_flags(cpuinfo: str) -> list[str]:
    """The first CPU's features that matter to vLLM and torch (x86 `flags`, Arm `Features`), sorted."""
    match = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", cpuinfo, re.M)
    words = match.group(1).split() if match else []
    return sorted({w[:64] for w in words if _CPU_FLAG.match(w)})[:256]


def numa_nodes(root: Path) -> list[dict[str, Any]]:
    """Each NUMA node's CPUs and memory, from /sys/devices/system/node (empty where it is not mounted)."""
    base = root / "sys/devices/system/node"
    try:
        names = [entry.name for entry in os.scandir(base) if re.fullmatch(r"node\d{1,6}", entry.name)]
    except OSError:
        return []
    nodes = []
    for name in sorted(names, key=lambda n: int(n[4:]))[:MAX_NUMA_NODES]:
        cpus = (read_text(base / name / "cpulist", cap=4096) or "").strip("\x00 \n") or None
        memory = re.search(r"MemTotal:\s*(\d+)\s*kB", read_text(base / name / "meminfo", cap=65536) or "")
        nodes.append(
            {"node": int(name[4:]), "cpus": cpus, "memory_total_bytes": int(memory.group(1)) * 1024 if memory else None}
        )
    return nodes


def memory_total_bytes(root: Path) -> int | None:
    match = re.search(r"^MemTotal:\s*(\d+)\s*kB", read_text(root / "proc/meminfo") or "", re.M)
    return int(match.group(1)) * 1024 if match else None


def memory_limit_bytes(root: Path) -> int | None:
    """The cgroup memory limit (v2, then v1), if one is set below 'unlimited'."""
    for candidate in ("sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"):
        text = (read_text(root / candidate, cap=64) or "").strip()
        if text.isdigit() and int(text) < (1 << 60):
            return int(text)
    return None


def shm_total_bytes(root: Path) -> int | None:
    try:
        stats = os.statvfs(root / "dev/shm")
    except OSError:
        return None
    return stats.f_blocks * stats.f_frsize


# -- the section -----------------------------------------------------------------------------


def collect_host(
    manifest: Manifest, environ: Mapping[str, str] | None = None, root: Path = Path("/")
) -> dict[str, Any]:
    """The bundle's "host" section. Never raises."""
    start = time.monotonic()
    environ = os.environ if environ is None else environ
    root = Path(root)
    failures: list[str] = []

    def fact(name: str, read: Callable[[], Any], default: Any = None) -> Any:
        try:
            return read()
        except Exception as exc:  # noqa: BLE001 - one unreadable fact never costs the others
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            return default

    kernel = fact("kernel", platform.release) or ""
    glibcxx, glibcxx_path = fact("glibcxx_max", lambda: glibcxx_max(root, environ, sys.prefix), (None, None))
    host = {
        "os": fact("os", lambda: os_pretty_name(root)),
        "kernel": kernel[:512] or None,
        "arch": fact("arch", platform.machine) or None,
        "glibc": fact("glibc", glibc_version),
        "glibcxx_max": glibcxx,
        "glibcxx_path": glibcxx_path,
        "python": fact("python", lambda: python_facts(environ), {}),
        "container": fact("container", lambda: container_hints(root, environ, kernel), {}),
        "cpu": fact("cpu", lambda: cpu_facts(root), {}),
        "numa_nodes": fact("numa_nodes", lambda: numa_nodes(root), []),
        "memory_total_bytes": fact("memory_total_bytes", lambda: memory_total_bytes(root)),
        "memory_limit_bytes": fact("memory_limit_bytes", lambda: memory_limit_bytes(root)),
        "shm_total_bytes": fact("shm_total_bytes", lambda: shm_total_bytes(root)),
        "cudnn_libraries": fact("cudnn_libraries", lambda: cudnn_libraries(root, environ), []),
        "node_id": fact("node_id", lambda: probes_network.node_id(root)),
        "network": fact("network", lambda: probes_network.network_facts(environ, root), {}),
    }
    status = "error" if failures else "ok"
    manifest.add(ProbeRecord(PROBE_NAME, status, time.monotonic() - start, error="; ".join(failures) or None))
    return host
