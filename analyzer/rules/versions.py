"""Builds that disagree: CUDA runtime libraries, torch ABI, glibc/libstdc++ (category cuda_version_mismatch)."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts, parse_version
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.knowledge import is_dev_build, torch_required_by_vllm, vllm_wheel_cuda
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import HINT, SECONDARY, STRONG_HINT, evidence, grep, has, level, vllm_version

MISSING_CUDA_LIB = (
    r"(libcudart|libcublas\w*|libcudnn\w*|libnvrtc|libcusparse\w*|libcufft|libcurand|libnvJitLink|"
    r"libcusolver|libnccl)\.so(\.[\d.]+)?: cannot open shared object file"
)
VLLM_UNDEFINED_SYMBOL = r"(vllm/|vllm\.|_C\.abi3\.so|_C\.cpython|_moe_C|_flashmla_C|vllm_flash_attn).*undefined symbol|undefined symbol.*_C\.abi3"
EXT_UNDEFINED_SYMBOL = r"\.so: undefined symbol|undefined symbol: _Z"
GLIBC_MISSING = r"version [`'‘]GLIBC_(\d+\.\d+)['’]? not found"
GLIBCXX_MISSING = r"version [`'‘]GLIBCXX_(\d+\.\d+\.\d+)['’]? not found|version [`'‘]CXXABI_[\d.]+['’]? not found"
DETECTED_MISMATCH = (
    r"detected CUDA version \(([\d.]+)\) mismatches the version that was used to compile PyTorch \(([\d.]+)\)"
)


def _torch_reinstall(facts: Facts) -> str:
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


@rule("CUDA_LIBRARY_MISSING", category="cuda_version_mismatch")
def cuda_library_missing(facts: Facts) -> Finding | None:
    lines = evidence(facts, MISSING_CUDA_LIB, limit=2)
    if not lines:
        return None
    m = re.search(MISSING_CUDA_LIB, lines[0])
    lib = m.group(0).split(":")[0] if m else "a CUDA library"
    wanted = re.search(r"\.so\.(\d+)", lib)
    title = f"{lib} is missing: a compiled package was built for a CUDA runtime that is not installed."
    fixes = []
    if wanted and facts.torch_cuda and not facts.torch_cuda.startswith(wanted.group(1)):
        title = (
            f"{lib} is missing: the failing package was built for CUDA {wanted.group(1)}, but torch "
            f"{facts.torch_version or ''} uses CUDA {facts.torch_cuda}."
        )
        fixes.append(
            f"install matching builds: either torch built for CUDA {wanted.group(1)}.x, or a vLLM build for "
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
    return Finding(
        "CUDA_LIBRARY_MISSING",
        "cuda_version_mismatch",
        level(facts, MISSING_CUDA_LIB),
        title,
        evidence=lines,
        fixes=fixes,
    )


@rule("VLLM_C_UNDEFINED_SYMBOL", category="cuda_version_mismatch")
def vllm_c_undefined_symbol(facts: Facts) -> Finding | None:
    lines = evidence(facts, VLLM_UNDEFINED_SYMBOL, limit=2)
    if not lines:
        return None
    need = torch_required_by_vllm(vllm_version(facts))
    torch = facts.torch_version or facts.package("torch")
    title = "vLLM's compiled extension does not match the installed torch (undefined symbol)."
    if need and torch and parse_version(torch)[:2] != parse_version(need)[:2]:
        title = (
            f"vLLM's compiled extension does not match the installed torch: vLLM {vllm_version(facts)} was built "
            f"against torch {need}, but torch {torch} is installed."
        )
    fixes = [
        _torch_reinstall(facts),
        "if vLLM was built from source (pip install -e .), rebuild it after every torch change: remove build/ and "
        "the stale vllm/*.so files, then reinstall",
        "nightly vLLM wheels need the matching nightly torch; mixing a release with a nightly breaks the ABI",
    ]
    return Finding(
        "VLLM_C_UNDEFINED_SYMBOL",
        "cuda_version_mismatch",
        level(facts, VLLM_UNDEFINED_SYMBOL),
        title,
        evidence=lines,
        fixes=fixes,
    )


@rule("EXTENSION_UNDEFINED_SYMBOL", category="cuda_version_mismatch")
def extension_undefined_symbol(facts: Facts) -> Finding | None:
    if has(facts, VLLM_UNDEFINED_SYMBOL):
        return None
    lines = evidence(facts, EXT_UNDEFINED_SYMBOL, limit=2)
    if not lines:
        return None
    m = re.search(r"([\w\-./]+\.so)\S*: undefined symbol", lines[0])
    lib = m.group(1).rsplit("/", 1)[-1] if m else "a compiled extension"
    return Finding(
        "EXTENSION_UNDEFINED_SYMBOL",
        "cuda_version_mismatch",
        level(facts, EXT_UNDEFINED_SYMBOL, seen=0.8),
        f"{lib} was built against a different torch than the one installed (undefined symbol).",
        evidence=lines,
        fixes=[
            f"reinstall the package that ships {lib} for your torch {facts.torch_version or ''}".rstrip()
            + " (for flash-attn / xformers: a build matching torch's version and CUDA)",
            _torch_reinstall(facts),
        ],
    )


def _first_match(facts: Facts, pattern: str) -> re.Match | None:
    """The pattern's match in the first input line it is found in, as grep finds it (case-insensitive, unclipped)."""
    for line in grep(facts, pattern, limit=1):
        return re.search(pattern, line, re.IGNORECASE)
    return None


@rule("GLIBC_TOO_OLD", category="cuda_version_mismatch")
def glibc_too_old(facts: Facts) -> Finding | None:
    lines = evidence(facts, GLIBC_MISSING, limit=2)
    if not lines:
        return None
    m = _first_match(facts, GLIBC_MISSING)
    if m is None:
        return None
    need = m.group(1)
    have = facts.glibc
    if have is None:
        m = _first_match(facts, r"Libc version:\s*glibc-([\d.]+)")
        have = m.group(1) if m else None
    title = f"The system C library is too old: a binary needs GLIBC_{need}"
    title += f", this system has glibc {have}." if have else "."
    return Finding(
        "GLIBC_TOO_OLD",
        "cuda_version_mismatch",
        level(facts, GLIBC_MISSING),
        title,
        evidence=lines,
        fixes=[
            f"run on an OS with glibc >= {need} (e.g. Ubuntu 22.04 has 2.35, RHEL 9 has 2.34), or use the "
            "vllm/vllm-openai container image, which brings its own",
            "or build vLLM from source on this system so that it links against the local glibc",
        ],
    )


@rule("GLIBCXX_TOO_OLD", category="cuda_version_mismatch")
def glibcxx_too_old(facts: Facts) -> Finding | None:
    lines = evidence(facts, GLIBCXX_MISSING, limit=2)
    if not lines:
        return None
    m = re.search(r"GLIBCXX_([\d.]+)|CXXABI_[\d.]+", lines[0])
    symbol = m.group(0) if m else "a newer GLIBCXX"
    in_conda = any("conda" in line for line in lines)
    fixes = [
        "a newer libstdc++ is needed than the one loaded: in conda, `conda install -c conda-forge libstdcxx-ng` "
        "(or 'libstdcxx') updates the environment's copy"
        if in_conda
        else "install a newer libstdc++ (newer GCC runtime) or run in the vllm/vllm-openai container",
        "if the system libstdc++ is new enough but an older copy is found first, fix LD_LIBRARY_PATH "
        "(strings $(g++ -print-file-name=libstdc++.so.6) | grep GLIBCXX lists what it provides)",
    ]
    return Finding(
        "GLIBCXX_TOO_OLD",
        "cuda_version_mismatch",
        level(facts, GLIBCXX_MISSING),
        f"The C++ runtime (libstdc++) loaded is older than a compiled package needs ({symbol}).",
        evidence=lines,
        fixes=fixes,
    )


@rule("TORCH_CUDA_DETECTED_MISMATCH", category="cuda_version_mismatch")
def torch_cuda_detected_mismatch(facts: Facts) -> Finding | None:
    lines = evidence(facts, DETECTED_MISMATCH, limit=1)
    if not lines:
        return None
    m = _first_match(facts, DETECTED_MISMATCH)
    if m is None:
        return None
    nvcc, torch_cuda = m.groups()
    return Finding(
        "TORCH_CUDA_DETECTED_MISMATCH",
        "cuda_version_mismatch",
        level(facts, DETECTED_MISMATCH),
        f"A source build found CUDA toolkit {nvcc} (nvcc), but torch was built with CUDA {torch_cuda}.",
        evidence=lines,
        fixes=[
            f"point CUDA_HOME (and PATH) at a CUDA {torch_cuda.split('.')[0]}.x toolkit matching torch, or "
            f"install a torch built for CUDA {nvcc}",
            "only source builds and JIT-compiled kernels care about nvcc; a prebuilt wheel does not",
        ],
    )


@rule("TORCH_NOT_WHAT_VLLM_REQUIRES", category="cuda_version_mismatch", needs=("torch_version",))
def torch_not_what_vllm_requires(facts: Facts) -> Finding | None:
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
    broke = has(facts, r"undefined symbol|Failed to import from vllm\._C|ImportError")
    return Finding(
        "TORCH_NOT_WHAT_VLLM_REQUIRES",
        "cuda_version_mismatch",
        STRONG_HINT if broke else SECONDARY,
        f"torch {facts.torch_version} is installed, but vLLM {version} requires torch {required}.",
        evidence=evidence(facts, r"torch(==| version|\s*:)\s*\d|PyTorch version", limit=1),
        fixes=[
            f"pip install torch=={required} (and the torchvision/torchaudio releases that go with it), or "
            f"reinstall vLLM {version} so pip resolves its pins"
        ],
    )


@rule("VLLM_C_MISSING", category="cuda_version_mismatch")
def vllm_c_missing(facts: Facts) -> Finding | None:
    rx = r"No module named ['\"]vllm\._C['\"]|No module named ['\"]vllm\._version['\"]"
    lines = evidence(facts, rx, limit=1)
    if not lines or has(facts, VLLM_UNDEFINED_SYMBOL) or has(facts, GLIBC_MISSING):
        return None
    return Finding(
        "VLLM_C_MISSING",
        "cuda_version_mismatch",
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
