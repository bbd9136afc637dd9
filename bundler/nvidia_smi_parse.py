"""Parsing and scrubbing of nvidia-smi text: the header, the --query-gpu CSV, identifiers.

Pure functions on strings; nothing here runs a command. Every parser tolerates garbage and returns
what it could read rather than raising.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

MIB = 1 << 20

# Fields asked of `nvidia-smi --query-gpu` when NVML is unusable. compute_cap needs a 510+ driver,
# so a shorter list is kept for older ones.
QUERY_FIELDS = (
    "index", "name", "compute_cap", "driver_version", "memory.total", "memory.used", "memory.free",
    "pci.bus_id", "uuid", "persistence_mode", "compute_mode", "mig.mode.current", "mig.mode.pending",
    "ecc.mode.current", "ecc.mode.pending", "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.uncorrected.aggregate.total", "temperature.gpu", "power.draw",
)
BASIC_QUERY_FIELDS = ("index", "name", "driver_version", "memory.total", "memory.used", "memory.free", "pci.bus_id", "uuid")

_UNAVAILABLE = re.compile(r"^\[?(n/?a|not supported|unknown error|gpu is lost|insufficient permissions|requested functionality has been deprecated)\]?$", re.I)
_UNIT_SUFFIX = re.compile(r"\s*(MiB|GiB|KiB|W|C|%|MHz)$")
_HEADER_DRIVER = re.compile(r"Driver Version\s*:\s*([0-9][0-9.]*)")
_HEADER_CUDA = re.compile(r"CUDA Version\s*:\s*([0-9]+\.[0-9]+)")
_GPU_UUID = re.compile(r"\b(?:GPU|MIG)-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_IDENTIFYING_KEY = re.compile(r"^([ \t]*)([\w .]*?(?:serial|uuid|guid|\bpdi\b|host id)[\w .]*?)([ \t]*:[ \t]*)(\S[^\n]*?)[ \t]*$", re.I | re.M)
_DRIVER_FAILURE = re.compile(
    r"(NVIDIA-SMI has failed[^\n]*|Failed to initialize NVML[^\n]*|No devices were found[^\n]*|"
    r"Unable to determine the device handle[^\n]*|[^\n]*GPU is lost[^\n]*)",
    re.I,
)


def identifier_hash(value: str) -> str:
    """First 16 hex digits of sha256: stable across sources, never the identifier itself."""
    return hashlib.sha256(value.strip().encode("utf-8", "replace")).hexdigest()[:16]


def scrub_identifiers(text: str) -> str:
    """Replace GPU/MIG UUIDs, serial numbers and similar unique ids by their hashes."""

    def keyed(match: re.Match[str]) -> str:
        value = match.group(4)
        if _UNAVAILABLE.match(value) or value.startswith("<hashed:"):
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{match.group(3)}<hashed:{identifier_hash(value)}>"

    text = _IDENTIFYING_KEY.sub(keyed, text)
    return _GPU_UUID.sub(lambda m: f"<hashed:{identifier_hash(m.group(0))}>", text)


def clean_text(text: str | None, limit: int) -> str | None:
    """Drop NULs and other control bytes (keeping tabs, newlines and ANSI escapes) and cap the length."""
    if text is None:
        return None
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]", "", text)
    return text[:limit]


def capped(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


def looks_like_nvidia_smi(text: str) -> bool:
    return bool(_HEADER_DRIVER.search(text) or "NVIDIA-SMI" in text or "NVSMI LOG" in text)


def parse_header(text: str | None) -> dict[str, str | None]:
    """Driver version and the driver's maximum CUDA version from plain `nvidia-smi` or `nvidia-smi -q`."""
    text = text or ""
    driver = _HEADER_DRIVER.search(text)
    cuda = _HEADER_CUDA.search(text)
    return {"version": capped(driver.group(1), 64) if driver else None,
            "cuda_version": capped(cuda.group(1), 32) if cuda else None}


def driver_failure_line(text: str | None) -> str | None:
    """The line in which nvidia-smi says it cannot reach the driver, if it said so."""
    match = _DRIVER_FAILURE.search(text or "")
    return match.group(1).strip()[:1000] if match else None


def parse_query_csv(text: str, fields: tuple[str, ...] | list[str] = QUERY_FIELDS) -> list[dict[str, str | None]]:
    """Rows of `nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]` as {field: raw value}.

    A header line (with or without "[MiB]" units), if present, decides the field order. Values that
    nvidia-smi reports as unavailable become None. Lines with the wrong number of columns are skipped.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and _is_header(lines[0], fields):
        fields = [re.sub(r"\s*\[.*?\]\s*$", "", name.strip()) for name in lines[0].split(",")]
        lines = lines[1:]
    rows = []
    for line in lines:
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(fields):
            continue
        rows.append({name: (None if _UNAVAILABLE.match(cell) or cell == "" else cell) for name, cell in zip(fields, cells)})
    return rows


def _is_header(line: str, fields) -> bool:
    first = line.split(",")[0].strip().lower()
    return first in {f.lower() for f in fields} or first in {f.lower() for f in QUERY_FIELDS}


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(_UNIT_SUFFIX.sub("", raw))
    except ValueError:
        return None


def _mib_bytes(raw: str | None) -> int | None:
    value = _number(raw)
    return int(value * MIB) if value is not None else None


def _enabled(raw: str | None) -> bool | None:
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered in ("enabled", "on", "yes"):
        return True
    if lowered in ("disabled", "off", "no"):
        return False
    return None


def _int(raw: str | None) -> int | None:
    value = _number(raw)
    return int(value) if value is not None else None


def gpu_from_query_row(row: dict[str, str | None], position: int) -> dict[str, Any]:
    """One schema-shaped GPU entry from one --query-gpu row; unparseable values become None."""
    index = _int(row.get("index"))
    cap = row.get("compute_cap")
    uuid = row.get("uuid")
    gpu: dict[str, Any] = {
        "index": index if index is not None and index >= 0 else position,
        "name": capped(row.get("name"), 256),
        "compute_capability": cap if cap and re.fullmatch(r"\d{1,3}\.\d{1,3}", cap) else None,
        "memory_total_bytes": _mib_bytes(row.get("memory.total")),
        "memory_used_bytes": _mib_bytes(row.get("memory.used")),
        "memory_free_bytes": _mib_bytes(row.get("memory.free")),
        "pci_bus_id": capped(row.get("pci.bus_id"), 64),
        "uuid_hash": identifier_hash(uuid) if uuid else None,
        "persistence_mode": _enabled(row.get("persistence_mode")),
        "compute_mode": capped(row.get("compute_mode"), 64),
        "temperature_c": _number(row.get("temperature.gpu")),
        "power_w": _number(row.get("power.draw")),
        "processes": [],
        "source": "nvidia-smi",
    }
    if "mig.mode.current" in row:
        gpu["mig_mode"] = {"current": _enabled(row.get("mig.mode.current")), "pending": _enabled(row.get("mig.mode.pending"))}
    if "ecc.mode.current" in row:
        gpu["ecc"] = {
            "mode_current": _enabled(row.get("ecc.mode.current")),
            "mode_pending": _enabled(row.get("ecc.mode.pending")),
            "volatile_uncorrected": _int(row.get("ecc.errors.uncorrected.volatile.total")),
            "aggregate_uncorrected": _int(row.get("ecc.errors.uncorrected.aggregate.total")),
        }
    return gpu


def rejected_fields(stderr_or_stdout: str) -> bool:
    """True when nvidia-smi refused the field list (an older driver without compute_cap etc.)."""
    return bool(re.search(r"is not a valid field to query|Invalid combination of input arguments", stderr_or_stdout, re.I))
