"""What a bundle keeps of nvidia-smi: its text with unique identifiers hashed and control bytes removed,
the driver versions its banner names, and the schema's GPU entry for a `--query-gpu` row.

Reading nvidia-smi's formats is vllm_bug.formats.nvidia_smi's job; nothing here runs a command.
"""

from __future__ import annotations

import re
from typing import Any

from vllm_bug.formats.ansi import strip_control
from vllm_bug.formats.nvidia_smi import is_unavailable, parse_enabled, parse_header, parse_number
from vllm_bug.schema.identifiers import hash_gpu_uuids, identifier_hash

MIB = 1 << 20

_IDENTIFYING_KEY = re.compile(
    r"^([ \t]*)([\w .]*?(?:serial|uuid|guid|\bpdi\b|host id)[\w .]*?)([ \t]*:[ \t]*)(\S[^\n]*?)[ \t]*$", re.I | re.M
)
_COMPUTE_CAPABILITY = re.compile(r"\d{1,3}\.\d{1,3}")


def scrub_identifiers(text: str) -> str:
    """Replace GPU/MIG UUIDs (GPU-<hashed:...>), serial numbers and similar unique ids by their hashes."""

    def keyed(match: re.Match[str]) -> str:
        value = match.group(4)
        if is_unavailable(value) or value.startswith("<hashed:"):
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{match.group(3)}<hashed:{identifier_hash(value)}>"

    text = _IDENTIFYING_KEY.sub(keyed, text)
    return hash_gpu_uuids(text)


def clean_text(text: str | None, limit: int) -> str | None:
    """Drop NULs and other control bytes (keeping tabs, newlines and ANSI escapes) and cap the length."""
    if text is None:
        return None
    return strip_control(text, keep_escape=True)[:limit]


def capped(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


def header_versions(text: str | None) -> dict[str, str | None]:
    """{'version': driver, 'cuda_version': the driver's CUDA} from plain `nvidia-smi` or `nvidia-smi -q` text."""
    header = parse_header(text or "")
    if header is None:
        return {"version": None, "cuda_version": None}
    return {"version": capped(header.driver_version, 64), "cuda_version": capped(header.cuda_version, 32)}


def _mib_bytes(raw: str | None) -> int | None:
    value = parse_number(raw)
    return int(value * MIB) if value is not None else None


def _int(raw: str | None) -> int | None:
    value = parse_number(raw)
    return int(value) if value is not None else None


def gpu_from_query_row(row: dict[str, str | None], position: int) -> dict[str, Any]:
    """One schema-shaped GPU entry from one --query-gpu row; unparseable values become None."""
    index = _int(row.get("index"))
    cap = row.get("compute_cap")
    uuid = row.get("uuid")
    gpu: dict[str, Any] = {
        "index": index if index is not None and index >= 0 else position,
        "name": capped(row.get("name"), 256),
        "compute_capability": cap if cap and _COMPUTE_CAPABILITY.fullmatch(cap) else None,
        "memory_total_bytes": _mib_bytes(row.get("memory.total")),
        "memory_used_bytes": _mib_bytes(row.get("memory.used")),
        "memory_free_bytes": _mib_bytes(row.get("memory.free")),
        "pci_bus_id": capped(row.get("pci.bus_id"), 64),
        "uuid_hash": identifier_hash(uuid) if uuid else None,
        "persistence_mode": parse_enabled(row.get("persistence_mode")),
        "compute_mode": capped(row.get("compute_mode"), 64),
        "temperature_c": parse_number(row.get("temperature.gpu")),
        "power_w": parse_number(row.get("power.draw")),
        "processes": [],
        "source": "nvidia-smi",
    }
    if "mig.mode.current" in row:
        gpu["mig_mode"] = {
            "current": parse_enabled(row.get("mig.mode.current")),
            "pending": parse_enabled(row.get("mig.mode.pending")),
        }
    if "ecc.mode.current" in row:
        gpu["ecc"] = {
            "mode_current": parse_enabled(row.get("ecc.mode.current")),
            "mode_pending": parse_enabled(row.get("ecc.mode.pending")),
            "volatile_uncorrected": _int(row.get("ecc.errors.uncorrected.volatile.total")),
            "aggregate_uncorrected": _int(row.get("ecc.errors.uncorrected.aggregate.total")),
        }
    return gpu
