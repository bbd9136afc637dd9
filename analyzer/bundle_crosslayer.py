"""Facts that join two layers of a bundle: the installed distributions' requirements, and CUDA_VISIBLE_DEVICES
against the GPUs NVML saw.

A bundle written since the collector checks these carries `requirements_check` and `cuda_visible_devices`.
Older bundles are read as far as they allow: vLLM's own requirement list stands in for the full check, and
the device list is compared with the GPUs' UUID hashes wherever an entry is a whole UUID (or its hash).
"""

from __future__ import annotations

import re
from typing import Any

from vllm_bug.analyzer.facts import Facts, normalise_package_name
from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.schema.identifiers import identifier_hash

MAX_PROBLEMS = 1000
_HASHED = lazy_compile(r"<hashed:([0-9a-f]{16})>")
_HASHED_GPU_UUID = lazy_compile(r"(?i:GPU)-<hashed:([0-9a-f]{16})>")  # see schema.identifiers.hash_gpu_uuids
_FULL_GPU_UUID = lazy_compile(r"GPU-[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
HIDING_VALUES = ("", "-1", "none", "void", "nodevfiles")


def read_cross_layer(facts: Facts, payload: dict[str, Any]) -> None:
    """Fill the requirement and device-visibility facts of a bundle's payload."""
    check = payload.get("requirements_check")
    if isinstance(check, dict) and isinstance(check.get("problems"), list):
        facts.requirement_problems = [_problem(p) for p in check["problems"][:MAX_PROBLEMS] if _is_problem(p)]
        modules = check.get("modules")
        if isinstance(modules, dict):
            facts.requirement_modules = {
                normalise_package_name(str(name)): [str(m) for m in names if isinstance(m, str)]
                for name, names in modules.items()
                if isinstance(names, list)
            }
    else:
        facts.requirement_problems = _from_vllm_requirements(facts)
    kind = _dict(_dict(payload.get("host")).get("python")).get("env_kind")
    facts.python_env_kind = kind if isinstance(kind, str) and kind else None
    record = payload.get("cuda_visible_devices")
    if isinstance(record, dict) and isinstance(record.get("entries"), list):
        facts.visible_devices = record
    else:
        facts.visible_devices = _derived_visibility(facts.env.get("CUDA_VISIBLE_DEVICES"), payload)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_problem(raw: Any) -> bool:
    return isinstance(raw, dict) and isinstance(raw.get("name"), str) and raw.get("problem") in ("missing", "conflict")


def _problem(raw: dict[str, Any]) -> dict[str, Any]:
    def text(key: str) -> str | None:
        value = raw.get(key)
        return str(value) if value is not None else None

    return {
        "package": normalise_package_name(text("package") or "?"),
        "version": text("version"),
        "requirement": text("requirement"),
        "name": normalise_package_name(raw["name"]),
        "specifier": text("specifier") or "",
        "installed": text("installed"),
        "problem": raw["problem"],
        "extra": text("extra"),
        "wanted_by": normalise_package_name(text("wanted_by") or "") or None,
    }


def _from_vllm_requirements(facts: Facts) -> list[dict[str, Any]]:
    """vLLM's unmet requirements, as bundles without the full check record them."""
    found = []
    for req in facts.vllm_requirements:
        name = req.get("name")
        if req.get("satisfied") is not False or not isinstance(name, str):
            continue
        requirement = str(req.get("requirement") or name)
        installed = req.get("installed")
        found.append(
            {
                "package": "vllm",
                "version": facts.vllm_version,
                "requirement": requirement,
                "name": normalise_package_name(name),
                "specifier": _specifier_of(requirement, name),
                "installed": str(installed) if installed is not None else None,
                "problem": "missing" if installed is None else "conflict",
            }
        )
    return found


def _specifier_of(requirement: str, name: str) -> str:
    """'llguidance<1.8.0,>=1.7.0; platform_machine == ...' -> '<1.8.0,>=1.7.0' (extras and marker dropped)."""
    rest = requirement.split(";", 1)[0].strip()[len(name) :]
    rest = re.sub(r"^\s*\[[^\]]*\]", "", rest).strip()
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1]
    return rest.replace(" ", "") if not rest.startswith("@") else ""


def _derived_visibility(value: str | None, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The check an older collector did not record, as far as the GPUs' UUID hashes allow it."""
    gpus = [g for g in payload.get("gpus") or [] if isinstance(g, dict)]
    if value is None or not gpus:
        return None
    hashes = [g.get("uuid_hash") if isinstance(g.get("uuid_hash"), str) else None for g in gpus]
    raw_entries = [] if value.strip().lower() in HIDING_VALUES else value.split(",")
    entries = [_derived_entry(entry.strip(), hashes) for entry in raw_entries[:64]]
    visible = 0
    for entry in entries:
        if entry["outcome"] != "ok":
            break
        visible += 1
    checked = all(entry["outcome"] != "unchecked" for entry in entries)
    return {
        "entries": entries,
        "hides_all": not raw_entries,
        "nvml_gpu_count": len(gpus),
        "visible_count": visible if checked else None,
        "derived": True,
    }


def _derived_entry(entry: str, hashes: list[str | None]) -> dict[str, Any]:
    if re.fullmatch(r"[+-]?\d{1,9}", entry):
        index = int(entry)
        outcome = "invalid" if index < 0 else "ok" if index < len(hashes) else "beyond_count"
        return {"entry": entry, "kind": "index", "outcome": outcome, "matches": [index] if outcome == "ok" else []}
    whole = _HASHED_GPU_UUID.fullmatch(entry)  # a whole UUID that redaction hashed: judged as the UUID itself
    hashed = _HASHED.fullmatch(entry)  # a bare hash, which may be a prefix's
    if whole is not None:
        digest: str | None = whole.group(1)
    elif hashed is not None:
        digest = hashed.group(1)
    else:
        digest = identifier_hash(entry) if _FULL_GPU_UUID.fullmatch(entry) else None
    if entry.upper().startswith("MIG-"):
        kind = "mig"
    else:
        kind = "gpu_uuid" if hashed or entry.upper().startswith("GPU-") else "unknown"
    if digest is None or None in hashes:
        return {
            "entry": entry if kind == "unknown" else f"<hashed:{identifier_hash(entry)}>",
            "kind": kind,
            "outcome": "invalid" if kind == "unknown" else "unchecked",
            "matches": [],
        }
    matches = [index for index, known in enumerate(hashes) if known == digest]
    # a hash that is no GPU's may be a prefix's: only a whole UUID that matches nothing is known to be wrong
    outcome = "ok" if matches else "unchecked" if hashed else "no_match"
    return {"entry": f"<hashed:{digest}>", "kind": kind, "outcome": outcome, "matches": matches}
