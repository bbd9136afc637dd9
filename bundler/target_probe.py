"""Runs inside the TARGET interpreter (the one vLLM runs in), never inside vllm-bug.

Standard library only, and written for any Python >= 3.8, because the target may be older than
vllm-bug's own interpreter. The collector passes target_requirements.py's source followed by this file's
with ``python -c SOURCE MODE``:

    metadata  package versions via importlib.metadata (and conda's package list in a conda
              environment), the interpreter's build, bitness and platform, vLLM's location /
              editable state / build variant, whether each of vLLM's declared requirements is
              satisfied, and every missing or conflicting requirement among all installed
              distributions (what `pip check` reports). Imports neither torch nor vllm.
    imports   ``import torch`` facts (no CUDA context: no tensors, no torch.cuda.init), then vLLM:
              its version from vllm/_version.py, checked against its metadata and torch pin, and
              its compiled extension vllm/_C loaded on its own (the fast path). Only when one of
              those checks fails, or the caller passes a reason as a second argument, does it run
              ``import vllm`` and ``import vllm._C`` (the full path). ``import_path`` and
              ``full_import_reasons`` say which ran and why; a failure keeps its traceback.

Every record goes to the ORIGINAL stdout as one line ``MARKER {json}``, flushed at once, so a
crash or hang later in the run cannot take earlier records with it. Whatever the imported
libraries print is sent to stderr instead, so it can never be mistaken for a record.
"""

import importlib
import json
import os
import re
import sys
import time
import traceback
from typing import Any, Dict, List, Optional, TextIO

if "requirement_tools" not in globals():  # imported as a module; as the probe, the checks' source comes first
    from vllm_bug.bundler.target_requirements import (
        applicable,
        requirement_problems,
        requirement_tools,
        top_level_modules,
    )

MARKER = "@@vllm-bug-probe@@"
# Generous: the collector redacts what comes back and only then cuts it to the size a bundle keeps.
TRACEBACK_CAP = 256 << 10
ERROR_CAP = 64 << 10

_out: Optional[TextIO] = None


def _claim_stdout():
    """Keep a private copy of stdout for records; point fd 1 at stderr for everything else."""
    global _out
    try:
        sys.stdout.flush()
        fd = os.dup(1)
        os.dup2(2, 1)
        _out = os.fdopen(fd, "w", encoding="utf-8")
    except OSError:
        _out = sys.stdout


def emit(record):
    out = _out if _out is not None else sys.stdout  # stdout until _claim_stdout ran
    out.write(MARKER + " " + json.dumps(record, ensure_ascii=True, default=str) + "\n")
    out.flush()


def _cap(text, limit):
    """The first and last lines of `text` within `limit` characters; lines are kept whole where they fit,
    so the collector's redaction still sees each one as it was printed."""
    if text is None or len(text) <= limit:
        return text
    half = limit // 2
    head_end = text.rfind("\n", 0, half)
    if head_end < half // 2:
        head_end = half
    tail_start = text.find("\n", len(text) - half)
    if tail_start < 0 or tail_start > len(text) - half // 2:
        tail_start = len(text) - half
    joint = "" if text[tail_start] == "\n" else "\n"
    return text[:head_end] + "\n[... %d characters cut ...]" % (tail_start - head_end) + joint + text[tail_start:]


def _exception_facts(exc):
    line = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return {"error": _cap(line, ERROR_CAP), "traceback": _cap(traceback.format_exc(), TRACEBACK_CAP)}


# ---------------------------------------------------------------- metadata mode


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _all_distributions(metadata):
    """(name -> version, name -> [other versions], [(name, version, Requires-Dist lines)], name -> dist)."""
    packages: Dict[str, str] = {}
    duplicates: Dict[str, List[str]] = {}
    declared = []
    found = {}
    for dist in metadata.distributions():
        try:
            meta = dist.metadata  # parsed once: dist.version and dist.requires would each parse it again
            name = meta["Name"]
            version = meta["Version"]
        except Exception:
            continue
        if not name:
            continue
        key = _normalise(name)
        if key in packages:
            if packages[key] != version:
                duplicates.setdefault(key, [packages[key]]).append(version)
            continue  # the first one on sys.path is the one Python imports
        packages[key] = version
        found[key] = dist
        try:
            requires = meta.get_all("Requires-Dist")
            if requires is None and dist.read_text("requires.txt") is not None:
                requires = dist.requires  # egg-info keeps them apart, in sections for each extra
        except Exception:
            requires = None
        declared.append((name, version, list(requires or [])))
    return packages, duplicates, declared, found


def _requirements_check(declared, packages, found, tools):
    """What `pip check` would report, with the import names of the distributions it involves."""
    started = time.monotonic()
    check = requirement_problems(declared, packages, tools)
    check["parser"] = tools.source
    check["distributions"] = len(declared)
    involved = {p["package"] for p in check["problems"]} | {p["name"] for p in check["problems"] if p["installed"]}
    modules = {}
    for name in sorted(involved)[:50]:
        if name in found:
            names = top_level_modules(found[name])
            if names:
                modules[name] = names
    if modules:
        check["modules"] = modules
    check["duration_s"] = round(time.monotonic() - started, 3)
    return check


def _direct_url(dist):
    try:
        text = dist.read_text("direct_url.json")
        return json.loads(text) if text else None
    except Exception:
        return None


def _local_version(version):
    return version.split("+", 1)[1] if version and "+" in version else None


def _requirement_check(raw, tools, installed_of):
    entry = {"requirement": raw[:1000]}
    try:
        requirement = applicable(raw, tools)
    except Exception as exc:
        entry["satisfied"] = None
        entry["error"] = str(exc)[:200]
        return entry
    if requirement is None:
        return None
    entry["name"] = _normalise(requirement.name)
    installed = installed_of(requirement.name)
    entry["installed"] = installed
    entry["satisfied"] = False if installed is None else tools.satisfied(requirement, installed)
    return entry


def _vllm_facts(metadata, packages, tools):
    facts: Dict[str, Any] = {"installed": "vllm" in packages}
    if not facts["installed"]:
        return facts
    dist = metadata.distribution("vllm")
    facts["version"] = dist.version
    try:
        import importlib.util

        spec = importlib.util.find_spec("vllm")
        if spec is not None:
            locations: List[Optional[str]] = list(spec.submodule_search_locations or []) or [None]
            origin = spec.origin or locations[0]
            facts["location"] = os.path.dirname(origin) if origin and origin.endswith(".py") else origin
    except Exception as exc:
        facts["location_error"] = str(exc)[:200]
    direct = _direct_url(dist)
    if direct:
        facts["editable"] = bool((direct.get("dir_info") or {}).get("editable"))
        facts["install_url"] = str(direct.get("url", ""))[:1000]
    else:
        facts["editable"] = False
    facts["requirement_parser"] = tools.source

    def installed_of(name):
        return packages.get(_normalise(name))

    requirements = []
    torch_pin = None
    for raw in dist.requires or []:
        entry = _requirement_check(raw, tools, installed_of)
        if entry is None:
            continue
        requirements.append(entry)
        if entry.get("name") == "torch":
            torch_pin = entry["requirement"]
    facts["requirements"] = requirements[:1000]
    facts["torch_requirement"] = torch_pin
    local = _local_version(dist.version)
    if local:
        facts["build_variant"] = local
        facts["build_variant_source"] = "local version"
    elif torch_pin:
        pin = re.search(r"\+([A-Za-z0-9.]+)", torch_pin)
        facts["build_variant"] = pin.group(1) if pin else "default wheel (" + torch_pin.replace(" ", "")[:40] + ")"
        facts["build_variant_source"] = "torch requirement"
    return facts


def run_metadata():
    import platform
    import struct

    facts: Dict[str, Any] = {
        "python": {
            "version": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "prefix": sys.prefix,
            "base_prefix": getattr(sys, "base_prefix", sys.prefix),
            "env_kind": _env_kind(),
            "build": " ".join(sys.version.split())[:512],
            "bits": struct.calcsize("P") * 8,
        }
    }
    try:
        facts["python"]["platform"] = platform.platform()[:512]
    except Exception:
        facts["python"]["platform"] = None
    conda = _conda_packages(sys.prefix)
    if conda is not None:
        facts["conda_packages"] = conda
    try:
        import importlib.metadata as metadata
    except ImportError:
        facts["error"] = "importlib.metadata is unavailable (Python < 3.8)"
        emit({"stage": "metadata", **facts})
        return
    packages, duplicates, declared, found = _all_distributions(metadata)
    facts["packages"] = packages
    if duplicates:
        facts["duplicates"] = duplicates
    tools = requirement_tools()
    try:
        facts["requirements_check"] = _requirements_check(declared, packages, found, tools)
    except Exception as exc:
        facts["requirements_check"] = {"error": ("%s: %s" % (type(exc).__name__, exc))[:ERROR_CAP]}
    try:
        facts["vllm"] = _vllm_facts(metadata, packages, tools)
    except Exception as exc:
        facts["vllm"] = {"installed": "vllm" in packages, "version": packages.get("vllm")}
        facts["vllm"].update(_exception_facts(exc))
    torch_version = packages.get("torch")
    facts["torch"] = {
        "installed": torch_version is not None,
        "version": torch_version,
        "build_variant": _local_version(torch_version),
    }
    emit({"stage": "metadata", **facts})


def _conda_packages(prefix):
    """name -> version for a conda environment (from conda-meta's file names: no conda needed), else None.

    Each record is named NAME-VERSION-BUILD.json, and conda allows no '-' in a version or a build."""
    folder = os.path.join(prefix, "conda-meta")
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    packages = {}
    for file_name in sorted(names)[:5000]:
        if not file_name.endswith(".json"):
            continue
        parts = file_name[:-5].rsplit("-", 2)
        if len(parts) == 3 and parts[0]:
            packages[parts[0][:200]] = parts[1][:200]
    return packages


def _env_kind():
    if os.environ.get("CONDA_PREFIX") and os.path.realpath(os.environ["CONDA_PREFIX"]) == os.path.realpath(sys.prefix):
        return "conda"
    cfg = os.path.join(sys.prefix, "pyvenv.cfg")
    if os.path.exists(cfg):
        try:
            with open(cfg, encoding="utf-8", errors="replace") as fh:
                if re.search(r"^\s*uv\s*=", fh.read(), re.M):
                    return "uv"
        except OSError:
            pass
        return "venv"
    if os.path.exists(os.path.join(sys.prefix, "conda-meta")):
        return "conda"
    return "system"


# ---------------------------------------------------------------- imports mode


def _torch_facts():
    started = time.monotonic()
    import torch  # noqa: F401 - the point of the probe

    facts = {"installed": True, "version": str(torch.__version__)}
    version = getattr(torch, "version", None)
    facts["cuda"] = getattr(version, "cuda", None)
    facts["hip"] = getattr(version, "hip", None)
    facts["debug"] = getattr(version, "debug", None)
    facts["git_version"] = getattr(version, "git_version", None)
    facts["location"] = os.path.dirname(getattr(torch, "__file__", "") or "") or None
    facts["import_s"] = round(time.monotonic() - started, 3)
    errors = {}

    def fact(key, getter):
        try:
            facts[key] = getter()
        except Exception as exc:
            facts[key] = None
            errors[key] = ("%s: %s" % (type(exc).__name__, exc))[:500]

    fact("cudnn", lambda: _str_or_none(torch.backends.cudnn.version()))
    fact("arch_list", lambda: list(torch.cuda.get_arch_list()))
    fact("cuda_available", lambda: bool(torch.cuda.is_available()))
    fact("device_count", lambda: int(torch.cuda.device_count()))
    fact("nccl_version", _nccl_version)
    # torch.backends.xnnpack is not imported by `import torch` in recent releases
    fact("xnnpack", lambda: bool(importlib.import_module("torch.backends.xnnpack").enabled))
    if errors:
        facts["errors"] = errors
    return facts


def _str_or_none(value):
    return None if value is None else str(value)


def _nccl_version():
    import torch

    if not torch.cuda.is_available() and getattr(torch.version, "cuda", None) is None:
        return None
    version = torch.cuda.nccl.version()
    if isinstance(version, tuple):
        return ".".join(str(part) for part in version)
    # older torch packs it as MAJOR*1000 + MINOR*100 + PATCH (or *10000 from 2.19 on)
    version = int(version)
    if version >= 10000:
        return "%d.%d.%d" % (version // 10000, (version // 100) % 100, version % 100)
    return "%d.%d.%d" % (version // 1000, (version // 100) % 10, version % 100)


def _import_vllm():
    started = time.monotonic()
    facts: Dict[str, Any] = {}
    import vllm  # noqa: F401

    facts["version"] = str(getattr(vllm, "__version__", "") or "") or None
    facts["location"] = os.path.dirname(getattr(vllm, "__file__", "") or "") or None
    facts["import_s"] = round(time.monotonic() - started, 3)
    return facts


# vLLM's package import costs seconds on top of torch's. When nothing says vLLM may be broken, the probe
# reads what the import would tell from files and loads the compiled extension alone, in this interpreter,
# after torch; any sign of trouble below sends it down the full `import vllm; import vllm._C` path.

_VERSION_LINE = re.compile(r"""^__version__\s*(?::[^=\n]*)?=\s*(?:version\s*=\s*)?['"]([^'"\n]+)['"]""", re.M)
_COMMIT_LINE = re.compile(r"""^__commit_id__\s*(?::[^=\n]*)?=\s*(?:commit_id\s*=\s*)?['"]([^'"\n]+)['"]""", re.M)


def _package_dir(spec):
    locations = list(spec.submodule_search_locations or [])
    if locations:
        return locations[0]
    return os.path.dirname(spec.origin) if spec.origin else None


def _read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(65536)
    except OSError:
        return None


def _source_version(package_dir, facts, reasons):
    """vLLM's __version__ as vllm/_version.py (written at build time) holds it."""
    text = _read_text(os.path.join(package_dir, "_version.py"))
    found = _VERSION_LINE.search(text or "")
    if not found:
        reasons.append("vllm/_version.py is missing or holds no version (vLLM would call itself 'dev')")
        return
    facts["version"] = found.group(1)[:128]
    commit = _COMMIT_LINE.search(text)
    if commit:
        facts["commit"] = commit.group(1)[:64]


def _distribution_checks(package_dir, facts, reasons, torch_version):
    """Is the vllm found on sys.path the one its metadata describes, built for the torch that imported?"""
    import importlib.metadata as metadata

    try:
        dist = metadata.distribution("vllm")
    except Exception:
        reasons.append(f"no installed vllm distribution describes {package_dir}")
        return
    if facts.get("version") and dist.version != facts["version"]:
        reasons.append(f"vllm/_version.py says {facts['version']}, the installed metadata {dist.version}")
    described = os.path.realpath(str(dist.locate_file(os.path.join("vllm", "__init__.py"))))
    if os.path.exists(described) and os.path.dirname(described) != os.path.realpath(package_dir):
        installed_dir = os.path.dirname(described)
        reasons.append(f"vllm imports from {package_dir}, but the installed distribution is in {installed_dir}")
    if torch_version is None:
        return
    tools = requirement_tools()
    for raw in dist.requires or []:
        if not re.match(r"\s*torch\s*[=<>!~(]", raw):
            continue
        try:
            requirement = applicable(raw, tools)
            if requirement is not None and tools.satisfied(requirement, torch_version) is False:
                reasons.append(f"vllm requires {raw.strip()[:200]}; torch {torch_version} imported")
        except Exception:
            continue


def _extension_path(package_dir):
    import importlib.machinery

    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = os.path.join(package_dir, "_C" + suffix)
        if os.path.isfile(candidate):
            return candidate
    return None


def _load_extension(path):
    """Load vllm/_C as `import vllm._C` would, without importing the vllm package around it."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.ExtensionFileLoader("vllm._C", path)
    spec = importlib.machinery.ModuleSpec("vllm._C", loader, origin=path)
    loader.exec_module(importlib.util.module_from_spec(spec))


def _vllm_without_import(spec, torch_facts, forced_reason):
    """(facts, reasons to import vLLM fully); facts hold what the full import would have reported."""
    facts: dict = {"installed": True}
    reasons = [forced_reason] if forced_reason else []
    package_dir = _package_dir(spec)
    facts["location"] = package_dir
    if not package_dir or not (spec.origin or "").endswith("__init__.py"):
        reasons.append(f"vllm is not a regular package here (origin {spec.origin})")
        return facts, reasons
    if torch_facts.get("error"):
        reasons.append("torch did not import")
    _source_version(package_dir, facts, reasons)
    try:
        _distribution_checks(package_dir, facts, reasons, torch_facts.get("version"))
    except Exception as exc:
        reasons.append(f"reading vllm's metadata failed: {type(exc).__name__}: {exc}"[:300])
    if os.environ.get("VLLM_LOGGING_CONFIG_PATH") and not os.path.isfile(os.environ["VLLM_LOGGING_CONFIG_PATH"]):
        reasons.append("VLLM_LOGGING_CONFIG_PATH names no file (vLLM's import reads it)")
    extension = _extension_path(package_dir)
    if extension is None:
        reasons.append(f"no compiled extension vllm/_C* in {package_dir}")
    if reasons:
        return facts, reasons
    facts["c_path"] = extension
    emit({"stage": "vllm_c_direct_start", "path": extension})
    started = time.monotonic()
    try:
        _load_extension(extension)
    except BaseException as exc:  # noqa: BLE001 - a failed load is a fact, and a reason to import fully
        problem = _exception_facts(exc)
        facts["c_direct_error"], facts["c_direct_traceback"] = problem["error"], problem["traceback"]
        reasons.append(f"loading {os.path.basename(extension)} failed")
        return facts, reasons
    facts["c_load_s"] = round(time.monotonic() - started, 3)
    return facts, reasons


def _vllm_full_import(facts):
    emit({"stage": "vllm_start"})
    try:
        facts.update(_import_vllm())
        facts["import_ok"] = True
    except BaseException as exc:  # noqa: BLE001
        facts["import_ok"] = False
        problem = _exception_facts(exc)
        facts["import_error"], facts["import_traceback"] = problem["error"], problem["traceback"]
        return
    emit({"stage": "vllm_c_start"})
    try:
        import vllm._C  # noqa: F401

        facts["c_import_ok"] = True
    except BaseException as exc:  # noqa: BLE001
        facts["c_import_ok"] = False
        problem = _exception_facts(exc)
        facts["c_import_error"], facts["c_import_traceback"] = problem["error"], problem["traceback"]


def run_imports(full_import_reason=None):
    import importlib.util

    emit({"stage": "torch_start"})
    try:
        torch_facts = _torch_facts()
    except BaseException as exc:  # noqa: BLE001 - a failed import is the fact we came for
        torch_facts = {"installed": importlib.util.find_spec("torch") is not None}
        torch_facts.update(_exception_facts(exc))
    emit({"stage": "torch", "torch": torch_facts})

    spec = importlib.util.find_spec("vllm")
    if spec is None:
        emit({"stage": "vllm", "vllm": {"installed": False, "import_ok": None, "c_import_ok": None}})
        return
    facts, reasons = _vllm_without_import(spec, torch_facts, full_import_reason)
    if reasons:
        facts["import_path"] = "full"
        facts["full_import_reasons"] = [reason[:500] for reason in reasons[:20]]
        _vllm_full_import(facts)
    else:
        facts["import_path"] = "fast"
        facts["import_ok"] = True
        facts["c_import_ok"] = True
    emit({"stage": "vllm", "vllm": facts})


def main(argv):
    _claim_stdout()
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "metadata":
        run_metadata()
    elif mode == "imports":
        run_imports(argv[2] if len(argv) > 2 and argv[2] else None)
    else:
        emit({"stage": "error", "error": "unknown mode %r" % mode})
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
