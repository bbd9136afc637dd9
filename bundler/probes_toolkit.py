"""The CUDA toolkit: which nvcc a build would use, its release, and CUDA_HOME.

This is the toolkit's CUDA version, not the driver's maximum (NVML) nor the one torch was built with.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from typing import Any

from vllm_bug.bundler.runner import CommandResult, Manifest, ProbeRecord, run_command

PROBE_NAME = "nvcc --version"
NVCC_OUTPUT_LIMIT = 4096
DEFAULT_CUDA_HOME = "/usr/local/cuda"
_RELEASE = re.compile(r"release\s+(\d+)\.(\d+)")
_FULL_VERSION = re.compile(r"\bV(\d+\.\d+\.\d+)\b")


def parse_nvcc_release(text: str) -> str | None:
    """'Cuda compilation tools, release 13.0, V13.0.88' -> '13.0'."""
    match = _RELEASE.search(text or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None


def parse_nvcc_full_version(text: str) -> str | None:
    match = _FULL_VERSION.search(text or "")
    return match.group(1) if match else None


def cuda_home_setting(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """CUDA_HOME as the environment sets it (CUDA_PATH is the older spelling), and which variable said so."""
    for name in ("CUDA_HOME", "CUDA_PATH"):
        value = environ.get(name)
        if value:
            return value, name
    return None, None


def find_nvcc(environ: Mapping[str, str]) -> str | None:
    """nvcc on PATH, else under $CUDA_HOME/bin, else under /usr/local/cuda/bin (the order builds look)."""
    on_path = shutil.which("nvcc", path=environ.get("PATH", ""))
    if on_path:
        return on_path
    home, _ = cuda_home_setting(environ)
    for folder in (home, DEFAULT_CUDA_HOME):
        if folder:
            candidate = os.path.join(folder, "bin", "nvcc")
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return None


def collect_cuda_toolkit(
    manifest: Manifest,
    timeout_s: float = 10.0,
    run: Callable[..., CommandResult] = run_command,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The bundle's "cuda_toolkit" section. Never raises."""
    start = time.monotonic()
    environ = os.environ if environ is None else environ
    section: dict[str, Any] = {"nvcc_version": None, "nvcc_path": None, "nvcc_output": None, "cuda_home": None}
    try:
        home, home_source = cuda_home_setting(environ)
        nvcc = find_nvcc(environ)
        section["nvcc_path"] = nvcc
        if home is None and nvcc:
            home, home_source = os.path.dirname(os.path.dirname(nvcc)), "nvcc"
        section["cuda_home"] = home
        section["cuda_home_source"] = home_source
        if nvcc is None:
            manifest.add(
                ProbeRecord(
                    PROBE_NAME,
                    "missing",
                    time.monotonic() - start,
                    error="nvcc not found on PATH, in $CUDA_HOME/bin or in /usr/local/cuda/bin",
                )
            )
            return section
        result = run(PROBE_NAME, [nvcc, "--version"], timeout_s=timeout_s)
        text = (result.stdout or result.stderr).strip()
        section["nvcc_output"] = text[:NVCC_OUTPUT_LIMIT] or None
        section["nvcc_version"] = parse_nvcc_release(result.stdout)
        full = parse_nvcc_full_version(result.stdout)
        if full:
            section["nvcc_full_version"] = full
        if result.record.status == "ok" and section["nvcc_version"] is None:
            result.record.status = "error"
            result.record.error = "nvcc printed no 'release X.Y' line"
        manifest.add(result.record)
    except Exception as exc:  # noqa: BLE001 - recorded, never raised
        manifest.add(ProbeRecord(PROBE_NAME, "error", time.monotonic() - start, error=f"{type(exc).__name__}: {exc}"))
    return section
