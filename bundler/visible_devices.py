"""Does each CUDA_VISIBLE_DEVICES entry name a GPU that NVML sees? Worked out while the UUIDs are still known.

CUDA reads the variable as a comma-separated list of device indices, GPU UUIDs ("GPU-8932f937-..."
or any prefix of one that is unique on the machine), MIG device UUIDs ("MIG-<uuid>") or the older
MIG form "MIG-GPU-<gpu uuid>/<GPU instance>/<compute instance>". It stops at the first entry that names
no device: the devices before it are the visible ones, the rest are ignored. NVML ignores the variable
and sees every GPU, so the collector can compare the two; the bundle keeps the outcome per entry, with
each UUID entry hashed like the GPUs' own UUIDs (a full UUID hashes to its GPU's uuid_hash).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vllm_bug.schema.identifiers import identifier_hash

MAX_ENTRIES = 64
HIDING_VALUES = ("", "-1", "none", "void", "nodevfiles")  # values people use to hide every device

_LEGACY_MIG = re.compile(r"^MIG-(GPU-[0-9a-fA-F-]+)/(\d+)/(\d+)$")
_UUID_IN_TEXT = re.compile(r"\b(?:GPU|MIG)-[0-9A-Za-z][0-9A-Za-z/-]*", re.I)
_FULL_GPU_UUID = re.compile(r"GPU-[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class MigDevice:
    parent_index: int  # the NVML index of the GPU it is carved from
    uuid: str | None
    gpu_instance: int | None
    compute_instance: int | None


@dataclass(frozen=True)
class SeenGpus:
    """What NVML (or nvidia-smi) saw, with the UUIDs in the clear; never recorded as such."""

    uuids: list[str | None]  # by NVML index; None where the UUID could not be read
    mig_devices: list[MigDevice]
    mig_complete: bool = True  # False when the MIG devices of a GPU in MIG mode could not all be read


def hide_uuids(value: str) -> str:
    """A CUDA_VISIBLE_DEVICES-style value with every UUID entry replaced by <hashed:...>."""
    return _UUID_IN_TEXT.sub(lambda m: f"<hashed:{identifier_hash(m.group(0))}>", value)


def check_visible_devices(value: str, seen: SeenGpus | None) -> dict[str, Any]:
    """The bundle's "cuda_visible_devices" record for `value`, against the GPUs in `seen` (None: unknown)."""
    raw_entries = [] if value.strip().lower() in HIDING_VALUES else value.split(",")
    entries = [_check_entry(entry.strip(), seen) for entry in raw_entries[:MAX_ENTRIES]]
    visible = 0
    for entry in entries:
        if entry["outcome"] != "ok":
            break
        visible += 1
    checked = seen is not None and all(entry["outcome"] != "unchecked" for entry in entries)
    return {
        "entries": entries,
        "truncated": len(raw_entries) > MAX_ENTRIES,
        "hides_all": not raw_entries,
        "nvml_gpu_count": len(seen.uuids) if seen is not None else None,
        "visible_count": visible if checked else None,
    }


def _check_entry(entry: str, seen: SeenGpus | None) -> dict[str, Any]:
    if re.fullmatch(r"[+-]?\d{1,9}", entry):
        return {"entry": entry, "kind": "index", **_check_index(int(entry), seen)}
    hashed = f"<hashed:{identifier_hash(entry)}>"
    upper = entry.upper()
    if upper.startswith("MIG-"):
        return {"entry": hashed, "kind": "mig", **_check_mig(entry, seen)}
    if upper.startswith("GPU-"):
        full = bool(_FULL_GPU_UUID.fullmatch(entry))
        return {"entry": hashed, "kind": "gpu_uuid", "full": full, **_check_uuid(entry, seen)}
    return {"entry": hashed if entry else "", "kind": "unknown", "outcome": "invalid", "matches": []}


def _check_index(index: int, seen: SeenGpus | None) -> dict[str, Any]:
    if index < 0:
        return {"outcome": "invalid", "matches": []}
    if seen is None:
        return {"outcome": "unchecked", "matches": []}
    if index >= len(seen.uuids):
        return {"outcome": "beyond_count", "matches": []}
    return {"outcome": "ok", "matches": [index]}


def _check_uuid(entry: str, seen: SeenGpus | None) -> dict[str, Any]:
    if seen is None or any(uuid is None for uuid in seen.uuids):
        return {"outcome": "unchecked", "matches": []}
    wanted = entry.lower()
    matches = [index for index, uuid in enumerate(seen.uuids) if uuid and uuid.lower().startswith(wanted)]
    return {"outcome": _outcome(matches), "matches": matches}


def _check_mig(entry: str, seen: SeenGpus | None) -> dict[str, Any]:
    if seen is None or not seen.mig_complete:
        return {"outcome": "unchecked", "matches": []}
    legacy = _LEGACY_MIG.match(entry)
    if legacy:
        gpu_uuid, gpu_instance, compute_instance = legacy.group(1).lower(), int(legacy.group(2)), int(legacy.group(3))
        matches = [
            device.parent_index
            for device in seen.mig_devices
            if (seen.uuids[device.parent_index] or "").lower() == gpu_uuid
            and (device.gpu_instance, device.compute_instance) == (gpu_instance, compute_instance)
        ]
    else:
        wanted = entry.lower()
        matches = [device.parent_index for device in seen.mig_devices if (device.uuid or "").lower().startswith(wanted)]
    return {"outcome": _outcome(matches), "matches": matches}


def _outcome(matches: list[int]) -> str:
    if not matches:
        return "no_match"
    return "ok" if len(matches) == 1 else "ambiguous"
