"""Builds that disagree: CUDA runtime libraries, torch ABI, glibc/libstdc++ (category cuda_version_mismatch)."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts, parse_version
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.knowledge import is_dev_build, torch_required_by_vllm, vllm_wheel_cuda
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    HINT,
    SECONDARY,
    STRONG_HINT,
    evidence,
    has,
    level,
    vllm_or_not,
    vllm_version,
)


def _groups(facts: Facts, signal_id: str) -> dict[str, str]:
    """The named groups of the signal's first match in the input ({} when it was not seen there)."""
    assert facts.signals is not None
    hit = facts.signals.first(signal_id)
    return hit.groups if hit else {}


def torch_reinstall_fix(facts: Facts) -> str:
    need = torch_required_by_vllm(vllm_version(facts))
    if need:
        return (
            f"reinstall the torch that vLLM {vllm_version(facts)} was built against: pip install torch=={need} "
            f"(or reinstall vLLM itself so pip resolves it: pip install --force-reinstall vllm=={vllm_version(facts)})"
        )
    return (
        "reinstall vLLM into a clean virtual environment and let it pull the torch it was built against "
        "(pip install vllm, or uv pip install vllm --torch-backend=auto); do not upgrade torch separately"
    )


@rule("CUDA_LIBRARY_MISSING", category="cuda_version_mismatch", signals=("CUDA_LIBRARY_MISSING",))
def cuda_library_missing(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "CUDA_LIBRARY_MISSING", limit=2)
    if not lines:
        return None
    found = _groups(facts, "CUDA_LIBRARY_MISSING")
    lib = found.get("lib", "a CUDA library")
    wanted = found.get("major")
    title = f"{lib} is missing: a compiled package was built for a CUDA runtime that is not installed."
    fixes = []
    if wanted and facts.torch_cuda and not facts.torch_cuda.startswith(wanted):
        title = (
            f"{lib} is missing: the failing package was built for CUDA {wanted}, but torch "
            f"{facts.torch_version or ''} uses CUDA {facts.torch_cuda}."
        )
        fixes.append(
            f"install matching builds: either torch built for CUDA {wanted}.x, or a vLLM build for "
            f"CUDA {facts.torch_cuda}"
        )
    wheel_cuda = vllm_wheel_cuda(vllm_version(facts))
    if wheel_cuda:
        fixes.append(
            f"the default PyPI wheel of vLLM {vllm_version(facts)} targets CUDA {wheel_cuda}; other CUDA "
            "variants come from vLLM's own wheel index, not from differently named PyPI packages"
        )
    fixes += [
        "pip wheels bring their CUDA runtime as nvidia-*-cu1x packages: reinstall them "
        "(pip install --force-reinstall torch) rather than installing a system CUDA toolkit",
        "if you load system CUDA libraries, check LD_LIBRARY_PATH points at the version the package expects",
    ]
    return Diagnosis(level(facts, "CUDA_LIBRARY_MISSING"), title, evidence=lines, fixes=fixes)


def _driver_lines(facts: Facts) -> set[str]:
    """Lines whose undefined symbol is a CUDA driver API function: the driver is too old, not torch mismatched."""
    assert facts.signals is not None
    return {hit.line for hit in facts.signals.all("DRIVER_API_SYMBOL_UNDEFINED")}


@rule("VLLM_C_UNDEFINED_SYMBOL", category="cuda_version_mismatch", signals=("VLLM_C_UNDEFINED_SYMBOL",))
def vllm_c_undefined_symbol(facts: Facts) -> Diagnosis | None:
    lines = [line for line in evidence(facts, "VLLM_C_UNDEFINED_SYMBOL", limit=2) if line not in _driver_lines(facts)]
    if not lines:
        return None  # a CUDA driver function missing: rules/driver.py's DRIVER_LACKS_API_FUNCTION
    need = torch_required_by_vllm(vllm_version(facts))
    torch = facts.torch_version or facts.package("torch")
    title = "vLLM's compiled extension does not match the installed torch (undefined symbol)."
    have, want = parse_version(torch), parse_version(need)
    if have and want and have[:2] != want[:2]:
        title = (
            f"vLLM's compiled extension does not match the installed torch: vLLM {vllm_version(facts)} was built "
            f"against torch {need}, but torch {torch} is installed."
        )
    fixes = [
        torch_reinstall_fix(facts),
        "if vLLM was built from source (pip install -e .), rebuild it after every torch change: remove build/ and "
        "the stale vllm/*.so files, then reinstall",
        "nightly vLLM wheels need the matching nightly torch; mixing a release with a nightly breaks the ABI",
    ]
    return Diagnosis(level(facts, "VLLM_C_UNDEFINED_SYMBOL"), title, evidence=lines, fixes=fixes)


@rule("EXTENSION_UNDEFINED_SYMBOL", category="cuda_version_mismatch", signals=("EXT_UNDEFINED_SYMBOL",))
def extension_undefined_symbol(facts: Facts) -> Diagnosis | None:
    if has(facts, "VLLM_C_UNDEFINED_SYMBOL"):
        return None
    lines = [line for line in evidence(facts, "EXT_UNDEFINED_SYMBOL", limit=2) if line not in _driver_lines(facts)]
    if not lines:
        return None
    assert facts.signals is not None
    # the library the first quoted line names, when it names one
    named = [hit.groups["lib"] for hit in facts.signals.all("UNDEFINED_SYMBOL_LIBRARY") if hit.line == lines[0]]
    lib = named[0].rsplit("/", 1)[-1] if named else "a compiled extension"
    return Diagnosis(
        level(facts, "EXT_UNDEFINED_SYMBOL", seen=0.8),
        f"{lib} was built against a different torch than the one installed (undefined symbol).",
        evidence=lines,
        fixes=[
            f"reinstall the package that ships {lib} for your torch {facts.torch_version or ''}".rstrip()
            + " (for flash-attn / xformers: a build matching torch's version and CUDA)",
            torch_reinstall_fix(facts),
        ],
    )


@rule("GLIBC_TOO_OLD", category="cuda_version_mismatch", signals=("GLIBC_MISSING",))
def glibc_too_old(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "GLIBC_MISSING", limit=2)
    need = _groups(facts, "GLIBC_MISSING").get("need")
    if not lines or need is None:
        return None
    have = facts.glibc if facts.glibc is not None else _groups(facts, "LIBC_VERSION_LINE").get("version")
    title = f"The system C library is too old: a binary needs GLIBC_{need}"
    title += f", this system has glibc {have}." if have else "."
    return Diagnosis(
        level(facts, "GLIBC_MISSING"),
        title,
        evidence=lines,
        fixes=[
            f"run on an OS with glibc >= {need} (e.g. Ubuntu 22.04 has 2.35, RHEL 9 has 2.34), or use "
            "the vllm/vllm-openai container image, which brings its own",
            "or build vLLM from source on this system so that it links against the local glibc",
        ],
    )


@rule("GLIBCXX_TOO_OLD", category="cuda_version_mismatch", signals=("GLIBCXX_MISSING",))
def glibcxx_too_old(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "GLIBCXX_MISSING", limit=2)
    if not lines:
        return None
    assert facts.signals is not None
    quoted = facts.signals.all("GLIBCXX_MISSING")[:2]
    symbol = quoted[0].groups.get("symbol", "a newer GLIBCXX") if quoted else "a newer GLIBCXX"
    in_conda = any("conda" in hit.groups or "conda_later" in hit.groups for hit in quoted)
    fixes = [
        "a newer libstdc++ is needed than the one loaded: in conda, `conda install -c conda-forge libstdcxx-ng` "
        "(or 'libstdcxx') updates the environment's copy"
        if in_conda
        else "install a newer libstdc++ (newer GCC runtime)"
        + vllm_or_not(facts, " or run in the vllm/vllm-openai container", ""),
        "if the system libstdc++ is new enough but an older copy is found first, fix LD_LIBRARY_PATH "
        "(strings $(g++ -print-file-name=libstdc++.so.6) | grep GLIBCXX lists what it provides)",
    ]
    return Diagnosis(
        level(facts, "GLIBCXX_MISSING"),
        f"The C++ runtime (libstdc++) loaded is older than a compiled package needs ({symbol}).",
        evidence=lines,
        fixes=fixes,
    )


@rule("TORCH_CUDA_DETECTED_MISMATCH", category="cuda_version_mismatch", signals=("CUDA_VERSION_MISMATCH_DETECTED",))
def torch_cuda_detected_mismatch(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "CUDA_VERSION_MISMATCH_DETECTED", limit=1)
    found = _groups(facts, "CUDA_VERSION_MISMATCH_DETECTED")
    if not lines or not found:
        return None
    nvcc, torch_cuda = found["nvcc"], found["torch_cuda"]
    return Diagnosis(
        level(facts, "CUDA_VERSION_MISMATCH_DETECTED"),
        f"A source build found CUDA toolkit {nvcc} (nvcc), but torch was built with CUDA {torch_cuda}.",
        evidence=lines,
        fixes=[
            f"point CUDA_HOME (and PATH) at a CUDA {torch_cuda.split('.')[0]}.x toolkit matching torch, "
            f"or install a torch built for CUDA {nvcc}",
            "only source builds and JIT-compiled kernels care about nvcc; a prebuilt wheel does not",
        ],
    )


@rule("TORCH_NOT_WHAT_VLLM_REQUIRES", category="cuda_version_mismatch", needs=("torch_version",))
def torch_not_what_vllm_requires(facts: Facts) -> Diagnosis | None:
    """Cross-stack: the installed torch differs from the one the installed vLLM release pins."""
    version = vllm_version(facts)
    required = None
    for req in facts.vllm_requirements:
        if str(req.get("name", "")).lower() == "torch":
            spec = str(req.get("specifier") or req.get("spec") or "")
            m = re.search(r"==\s*([\d.]+)", spec)
            required = m.group(1) if m else None
    required = required or torch_required_by_vllm(version)
    if not required or (is_dev_build(version) and not facts.vllm_requirements):
        return None
    have, want = parse_version(facts.torch_version), parse_version(required)
    if have is None or want is None or have[:2] == want[:2]:
        return None
    broke = has(facts, "IMPORT_BROKEN")
    return Diagnosis(
        STRONG_HINT if broke else SECONDARY,
        f"torch {facts.torch_version} is installed, but vLLM {version} requires torch {required}.",
        evidence=evidence(facts, "TORCH_VERSION_LINE", limit=1),
        fixes=[
            f"pip install torch=={required} (and the torchvision/torchaudio releases that go with it), "
            f"or reinstall vLLM {version} so pip resolves its pins"
        ],
    )


@rule("VLLM_C_MISSING", category="cuda_version_mismatch", signals=("VLLM_C_MISSING",))
def vllm_c_missing(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "VLLM_C_MISSING", limit=1)
    if not lines or has(facts, "VLLM_C_UNDEFINED_SYMBOL") or has(facts, "GLIBC_MISSING"):
        return None
    return Diagnosis(
        HINT,
        "vLLM's compiled extension (vllm._C) is not there: an incomplete install, or Python imports the "
        "source checkout instead of the installed package.",
        evidence=lines,
        fixes=[
            "do not run from inside a vLLM source checkout (cd elsewhere), or build it there with pip install -e .",
            "on Windows or macOS there is no CUDA build of vLLM: use Linux or WSL2",
            "reinstall: pip install --force-reinstall vllm",
        ],
    )
