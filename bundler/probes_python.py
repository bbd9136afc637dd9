"""torch and vLLM facts, gathered in subprocesses of the target interpreter (never imported here).

Two probes run bundler/target_probe.py (after target_requirements.py, its requirement checks) in the target
interpreter, concurrently with everything
else: ``python-metadata`` (package metadata only: fast) and ``python-imports`` (``import torch``,
then vLLM's facts: read from its files with its compiled extension loaded on its own, or from
``import vllm`` and ``vllm._C`` when something says vLLM may be broken: the slow one). A crash,
hang, missing interpreter or garbage output becomes a manifest record and an ``error`` in the
section, never an exception; records the probe printed before it crashed or hung are kept.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from vllm_bug.bundler.runner import CommandResult, Manifest, run_command

MARKER = "@@vllm-bug-probe@@"
METADATA_PROBE = "python-metadata"
IMPORTS_PROBE = "python-imports"
STDERR_TAIL = 4000
# What a bundle keeps of the texts the probe reports (it sends more, so that they are redacted before this cut).
PROBE_TEXT_CAPS = {
    "error": 2000,
    "traceback": 16384,
    "import_error": 2000,
    "import_traceback": 16384,
    "c_import_error": 2000,
    "c_import_traceback": 16384,
}
GARBAGE_LINE_CHARS = 200


def _cut(text: str, limit: int, keep: str = "both") -> str:
    """`text` cut to `limit` at line ends, or redacted first when a cut must fall inside a line."""
    from vllm_bug.schema.redact import cut_text

    return cut_text(text, limit, keep=keep)


def _cap_probe_texts(facts: Any) -> Any:
    """A probe record's error and traceback texts, cut to the size a bundle keeps."""
    if isinstance(facts, dict):
        for key, limit in PROBE_TEXT_CAPS.items():
            if isinstance(facts.get(key), str):
                facts[key] = _cut(facts[key], limit)
    return facts


PROBE_FILES = ("target_requirements.py", "target_probe.py")  # one program: the requirement checks, then the probe


def probe_source() -> str:
    here = Path(__file__).parent
    return "\n\n".join(here.joinpath(name).read_text(encoding="utf-8") for name in PROBE_FILES)


def probe_argv(python_exe: str | None, mode: str, *extra: str) -> list[str]:
    return [python_exe or sys.executable, "-c", probe_source(), mode, *extra]


_IMPORT_TROUBLE = re.compile(r"\b(?:ImportError|ModuleNotFoundError)\b|undefined symbol|cannot open shared object file")


def import_trouble_in_log(text: str | None) -> str | None:
    """The first log line that reports a failed import or library load (a reason to import vLLM fully)."""
    text = text or ""
    found = _IMPORT_TROUBLE.search(text)
    if found is None:
        return None
    start = text.rfind("\n", 0, found.start()) + 1
    end = text.find("\n", found.end())
    line = text[start : end if end >= 0 else None].strip()
    return "the log reports: " + line[:300]


def parse_records(stdout: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The probe's marker lines as dicts, plus a description of every line that was not one."""
    records: list[dict[str, Any]] = []
    garbage: list[str] = []
    for line in stdout.splitlines():
        if not line.startswith(MARKER):
            if line.strip():
                garbage.append(_cut(line, GARBAGE_LINE_CHARS, "head"))
            continue
        try:
            record = json.loads(line[len(MARKER) :])
        except ValueError:
            garbage.append(_cut(line, GARBAGE_LINE_CHARS, "head"))
            continue
        if isinstance(record, dict) and isinstance(record.get("stage"), str):
            records.append(record)
        else:
            garbage.append(_cut(line, GARBAGE_LINE_CHARS, "head"))
    return records, garbage


def describe_exit(result: CommandResult) -> str | None:
    """Why the probe ended badly, in words, or None when it exited 0."""
    record = result.record
    if record.status == "timeout":
        return f"probe hung: {record.error}"
    if record.status == "missing":
        return f"interpreter not found: {record.error}"
    code = record.exit_code
    if code is None:
        return record.error
    if code < 0:
        return f"probe crashed: killed by signal {-code} ({_signal_name(-code)})"
    if code != 0:
        return f"probe exited with code {code}: {_last_line(result.stderr)}"
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return _cut(lines[-1], 300, "head") if lines else "no output"


def run_target_probe(
    mode: str, name: str, python_exe: str | None, manifest: Manifest, timeout_s: float, *extra: str
) -> tuple[list[dict[str, Any]], CommandResult]:
    """Run one probe mode; add its manifest record (an error when its output was unusable)."""
    env = dict(os.environ)
    env.setdefault("PYTHONIOENCODING", "utf-8")
    result = run_command(name, probe_argv(python_exe, mode, *extra), timeout_s=timeout_s, env=env)
    records, garbage = parse_records(result.stdout)
    record = result.record
    if record.status == "ok" and not records:
        record.status = "error"
        sample = garbage[0] if garbage else "(nothing)"
        record.error = f"probe printed no usable record; first line: {sample}"
    elif record.status == "timeout" or (record.exit_code or 0) < 0:
        record.error = describe_exit(result)
    if garbage and record.status == "ok":
        record.error = f"ignored {len(garbage)} unexpected stdout line(s)"
    manifest.add(record)
    return records, result


def _stage(records: list[dict[str, Any]], stage: str) -> dict[str, Any] | None:
    for record in records:
        if record.get("stage") == stage:
            return record
    return None


def collect_metadata(python_exe: str | None, manifest: Manifest, timeout_s: float = 20.0) -> dict[str, Any]:
    """The metadata probe's record ({"python", "packages", "vllm", "torch", ...}) or {"error": ...}."""
    records, result = run_target_probe("metadata", METADATA_PROBE, python_exe, manifest, timeout_s)
    found = _stage(records, "metadata")
    if found is None:
        return {"error": describe_exit(result) or result.record.error or "no metadata record"}
    found = dict(found)
    found.pop("stage", None)
    _cap_probe_texts(found.get("vllm"))
    return found


def collect_imports(
    python_exe: str | None, manifest: Manifest, timeout_s: float = 45.0, full_import_reason: str | None = None
) -> dict[str, Any]:
    """{"torch": {...} | None, "vllm": {...} | None, "error": str | None, "stalled_in": stage | None}.

    With a full_import_reason the probe imports vLLM fully even when its files look sound."""
    extra = (full_import_reason,) if full_import_reason else ()
    records, result = run_target_probe("imports", IMPORTS_PROBE, python_exe, manifest, timeout_s, *extra)
    torch_record = _stage(records, "torch")
    vllm_record = _stage(records, "vllm")
    out: dict[str, Any] = {
        "torch": _cap_probe_texts(torch_record.get("torch")) if torch_record else None,
        "vllm": _cap_probe_texts(vllm_record.get("vllm")) if vllm_record else None,
        "error": describe_exit(result) or (result.record.error if result.record.status != "ok" else None),
        "stalled_in": None,
        "stderr_tail": _cut(result.stderr, STDERR_TAIL, "tail") if result.stderr else None,
    }
    if out["error"] and records:
        out["stalled_in"] = records[-1]["stage"]
    return out


# ------------------------------------------------------------------ payload sections


def build_torch_section(metadata: dict[str, Any], imports: dict[str, Any]) -> dict[str, Any]:
    meta_torch = metadata.get("torch") or {}
    section: dict[str, Any] = {
        "installed": meta_torch.get("installed"),
        "version": meta_torch.get("version"),
    }
    imported = imports.get("torch")
    if imported:
        section.update({k: v for k, v in imported.items() if v is not None or k not in section})
        if imported.get("error"):
            section["import_ok"] = False
        else:
            section["import_ok"] = True
    elif imports.get("error"):
        stage = imports.get("stalled_in")
        section["import_ok"] = False if section.get("installed") else None
        where = "while importing torch" if stage in (None, "torch_start") else f"after stage {stage}"
        section["error"] = f"{imports['error']} ({where})"
        if imports.get("stderr_tail"):
            section["traceback"] = imports["stderr_tail"]
    if section.get("installed") is False:
        section["error"] = "torch is not installed in the target interpreter"
        section["import_ok"] = None
        section.pop("traceback", None)
    if metadata.get("error") and section.get("installed") is None:
        section["metadata_error"] = metadata["error"]
    _cap_arch_list(section)
    return section


def _cap_arch_list(section: dict[str, Any]) -> None:
    archs = section.get("arch_list")
    if isinstance(archs, list):
        section["arch_list"] = [str(a)[:32] for a in archs[:64]]


def build_vllm_section(metadata: dict[str, Any], imports: dict[str, Any]) -> dict[str, Any]:
    meta_vllm = dict(metadata.get("vllm") or {})
    section: dict[str, Any] = {
        "installed": meta_vllm.pop("installed", None),
        "version": meta_vllm.pop("version", None),
        "build_variant": meta_vllm.pop("build_variant", None),
        "location": meta_vllm.pop("location", None),
        "requirements": meta_vllm.pop("requirements", []),
    }
    section.update(meta_vllm)
    unmet = [r["requirement"] for r in section["requirements"] if r.get("satisfied") is False]
    if section["requirements"]:
        section["requirements_unmet"] = unmet
    imported = imports.get("vllm")
    if imported:
        for key in (
            "import_ok",
            "import_error",
            "import_traceback",
            "c_import_ok",
            "c_import_error",
            "c_import_traceback",
            "import_s",
            "import_path",
            "full_import_reasons",
            "commit",
            "c_path",
            "c_load_s",
            "c_direct_error",
            "c_direct_traceback",
        ):
            if key in imported:
                section[key] = imported[key]
        if section.get("installed") is None:
            section["installed"] = imported.get("installed")
        if not section.get("version") and imported.get("version"):
            section["version"] = imported["version"]
    elif imports.get("error"):
        stage = imports.get("stalled_in")
        if stage == "vllm_c_direct_start":
            section["import_path"] = "fast"
            section["import_ok"] = None
            section["c_import_ok"] = False
            section["c_import_error"] = f"loading vllm._C on its own did not finish: {imports['error']}"
            if imports.get("stderr_tail"):
                section["c_import_traceback"] = imports["stderr_tail"]
        elif stage in ("vllm_start", "vllm_c_start"):
            what = "import vllm" if stage == "vllm_start" else "import vllm._C"
            section["import_ok"] = stage != "vllm_start"
            if stage == "vllm_c_start":
                section["c_import_ok"] = False
            message = f"{what} did not finish: {imports['error']}"
            section["c_import_error" if stage == "vllm_c_start" else "import_error"] = message
            if imports.get("stderr_tail"):
                key = "c_import_traceback" if stage == "vllm_c_start" else "import_traceback"
                section[key] = imports["stderr_tail"]
        else:
            section["import_ok"] = None
            section["import_error"] = f"import probe ended before reaching vllm: {imports['error']}"
    if section.get("installed") is False:
        section.setdefault("import_ok", None)
    if metadata.get("error"):
        section["metadata_error"] = metadata["error"]
    for key in ("import_error", "c_import_error", "c_direct_error"):
        if isinstance(section.get(key), str):
            section[key] = _cut(section[key], 4000, "head")
    return section


def target_python_facts(metadata: dict[str, Any]) -> dict[str, Any]:
    return dict(metadata.get("python") or {})


def packages_of(metadata: dict[str, Any]) -> dict[str, str]:
    return dict(metadata.get("packages") or {})


def conda_packages_of(metadata: dict[str, Any]) -> dict[str, str] | None:
    """conda's own package list when the target runs in a conda environment, else None."""
    found = metadata.get("conda_packages")
    if not isinstance(found, dict):
        return None
    return {str(name)[:200]: str(version)[:200] for name, version in list(found.items())[:5000]}
