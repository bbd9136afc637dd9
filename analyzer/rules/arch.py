"""The GPU's architecture is not supported by the build or the requested feature (category no_kernel_image)."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.gpus import parse_compute_capability
from vllm_bug.analyzer.knowledge import (
    BF16_MIN_CC,
    BLACKWELL_MIN_TORCH_CUDA,
    FP8_NATIVE_MIN_CC,
    QUANT_MIN_CC,
    VLLM_MIN_CC,
    at_least,
    cc_in_arch_list,
    cuda_major_minor,
)
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    HINT,
    STRONG_HINT,
    cc_text,
    engine_arg,
    evidence,
    gpu_caps,
    has,
    level,
    lines_naming,
    min_cc,
    vllm_not_involved,
    vllm_only,
    vllm_version,
)

# Where the input may state a compute capability, most specific first, and the named group holding it.
CC_SIGNALS = (
    ("TORCH_ARCH_WARNING", "sm"),
    ("GPU_NAME_OPTION_SM", "sm"),
    ("COMPUTE_CAPABILITY_STATED", "cc"),
    ("COMPUTE_IN_PARENS", "cc"),
    ("CUDA_CAPABILITY_STATED", "cc"),
    ("SM_ARCH_NAMED", "sm"),
)
# the reporter's words, ranked with those of rules/indirect.py (below any finding on an error message)
ARCH_NAMED_CONFIDENCE = 0.47


def _cc_from_text(facts: Facts) -> tuple[int, int] | None:
    """A compute capability the input states: sm_XX in a warning, 'Compute 6.1', 'compute capability 7.0'."""
    assert facts.signals is not None
    for signal_id, group in CC_SIGNALS:
        hit = facts.signals.first(signal_id)
        cc = parse_compute_capability(hit.groups.get(group)) if hit else None
        if cc:
            return cc
    return None


def _input_says(facts: Facts, *signal_ids: str) -> bool:
    """Whether an input line carries one of the signals: a root cause the parser guessed from a bare line is
    typed 'Error', so the root cause's text would always say 'error'."""
    return bool(evidence(facts, *signal_ids, limit=1))


def _gpu(facts: Facts) -> tuple[str, tuple[int, int]] | None:
    known = min_cc(facts)
    if known:
        return known
    cc = _cc_from_text(facts)
    return ("the GPU", cc) if cc else None


def _arch_fixes(facts: Facts, gpu: tuple[str, tuple[int, int]] | None) -> list[str]:
    """What supports this GPU, from its generation."""
    plain = vllm_not_involved(facts)
    if gpu is None:
        return [
            "check the GPU's compute capability (nvidia-smi --query-gpu=name,compute_cap --format=csv) against "
            "torch.cuda.get_arch_list()"
            + ("" if plain else " and the vLLM wheel's CUDA version")
            + "; the one missing the GPU's sm_XY needs replacing"
        ]
    name, cc = gpu
    torch_cuda = cuda_major_minor(facts.torch_cuda)
    if cc >= (10, 0):
        fixes = [
            f"{name} (sm_{cc[0]}{cc[1]}, Blackwell) needs torch built with CUDA >= 12.8: torch from the "
            "cu128/cu129/cu130 index"
            if plain
            else f"{name} (sm_{cc[0]}{cc[1]}, Blackwell) needs torch built with CUDA >= 12.8 and a vLLM built for it "
            "(vLLM >= 0.9 on PyPI): pip install -U vllm, or torch from the cu128/cu129/cu130 index"
        ]
        if torch_cuda and torch_cuda < BLACKWELL_MIN_TORCH_CUDA:
            fixes.insert(
                0, f"your torch is built with CUDA {facts.torch_cuda}, which cannot produce sm_{cc[0]}{cc[1]} code"
            )
        return fixes
    if cc < VLLM_MIN_CC and plain:
        return [
            f"{name} has compute capability {cc_text(cc)}, which current torch CUDA builds no longer include: an "
            "older torch release built for it, or a newer GPU",
        ]
    if cc < VLLM_MIN_CC:
        return [
            f"{name} has compute capability {cc_text(cc)}; vLLM's CUDA builds need 7.0 or newer (current wheels "
            "7.5 or newer), so no official wheel runs on it",
            "use a newer GPU, or a runtime that still supports this generation (llama.cpp, or transformers "
            "with an older torch)",
        ]
    if cc < (7, 5) and (at_least(vllm_version(facts), (0, 20)) or (torch_cuda and torch_cuda[0] >= 13)):
        return [
            "CUDA 13 builds dropped Volta (sm_70): install the CUDA 12.x build of torch and vLLM "
            "(e.g. uv pip install vllm --torch-backend=cu128 / cu129), or an older vLLM release"
        ]
    return [
        f"{name} has compute capability {cc_text(cc)}: a custom or source build may lack sm_{cc[0]}{cc[1]}; rebuild "
        f'with TORCH_CUDA_ARCH_LIST="{cc_text(cc)}" or install the official wheels',
        "a mismatched torch (from another index or a nightly) can also lack it: check torch.cuda.get_arch_list()",
    ]


def feature_fixes(facts: Facts) -> list[str]:
    """What to do when a feature (a kernel, backend or quantization) refused the GPU for its compute capability."""
    gpu = min_cc(facts)  # not a capability read from the text: the message names the one it needs
    which = f"the {gpu[0]} (compute capability {cc_text(gpu[1])})" if gpu else "this GPU"
    return [
        f"the option, backend or quantization the message names needs a newer GPU generation than {which}: leave "
        "it out or choose one this GPU supports (the defaults pick one)",
        "or run on a GPU of the generation the message asks for",
    ]


@rule("NO_KERNEL_IMAGE", category="no_kernel_image", signals=("NO_KERNEL_IMAGE",))
def no_kernel_image(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "NO_KERNEL_IMAGE", limit=2)
    if not lines:
        return None
    gpu = _gpu(facts)
    title = "A compiled kernel has no code for this GPU's architecture"
    title += f" ({gpu[0]}, compute capability {cc_text(gpu[1])})." if gpu else "."
    return Diagnosis(
        level(facts, "NO_KERNEL_IMAGE"),
        title,
        evidence=lines,
        fixes=_arch_fixes(facts, gpu),
    )


def _named(name: str) -> str:
    """The GPU's name and a comma, when the input names it (_gpu says 'the GPU' otherwise)."""
    return "" if name == "the GPU" else f"{name}, "


@rule("ARCH_SUPPORT_MISSING_NAMED", category="no_kernel_image", signals=("ARCH_SUPPORT_MISSING_NAMED",))
def arch_support_missing_named(facts: Facts) -> Diagnosis | None:
    """The reporter says a build lacks the GPU's architecture (no error line needed): the lowest-ranked kind of
    evidence, so any finding on an error message comes first."""
    from vllm_bug.analyzer.rules.indirect import REPORTER, indirect

    lines = evidence(facts, "ARCH_SUPPORT_MISSING_NAMED", limit=2)
    if not lines:
        return None
    gpu = _gpu(facts)
    return indirect(
        REPORTER,
        ARCH_NAMED_CONFIDENCE,
        "The report says the build has no code for the GPU's architecture"
        + (f" ({_named(gpu[0])}compute capability {cc_text(gpu[1])})" if gpu else "")
        + " (from the report's words; no recognised error message says so).",
        lines,
        _arch_fixes(facts, gpu),
    )


@rule("GPU_NOT_IN_TORCH_ARCH_LIST", category="no_kernel_image")
def gpu_not_in_torch_arch_list(facts: Facts) -> Diagnosis | None:
    """Cross-stack: torch's compiled architectures (or torch's own warning) leave this GPU out."""
    warn = evidence(facts, "TORCH_ARCH_WARNING", "TORCH_TOO_OLD_GPU", limit=2)
    missing = []
    if facts.torch_arch_list:
        missing = [(name, cc) for name, cc in gpu_caps(facts) if not cc_in_arch_list(cc, facts.torch_arch_list)]
    if not warn and not missing:
        return None
    gpu = missing[0] if missing else _gpu(facts)
    arch = ", ".join(facts.torch_arch_list or []) or "see the warning"
    return Diagnosis(
        STRONG_HINT if not has(facts, "NO_KERNEL_IMAGE") else 0.9,
        f"torch {facts.torch_version or ''} was not built for this GPU".replace("  ", " ")
        + (f" ({gpu[0]}, sm_{gpu[1][0]}{gpu[1][1]}); it supports {arch}." if gpu else "."),
        evidence=warn or evidence(facts, "SM_NAMED", limit=1),
        fixes=_arch_fixes(facts, gpu),
    )


@rule("BF16_ON_OLD_GPU", category="no_kernel_image")
def bf16_on_old_gpu(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "BF16_UNSUPPORTED", limit=2)
    gpu = _gpu(facts)
    dtype = str(engine_arg(facts, "dtype") or "").lower()
    predicted = gpu is not None and gpu[1] < BF16_MIN_CC and dtype in ("bfloat16", "bf16")
    if not lines and not predicted:
        return None
    where = f"the {gpu[0]} has compute capability {cc_text(gpu[1])}" if gpu else "this GPU is older than Ampere"
    return Diagnosis(
        level(facts, "BF16_UNSUPPORTED") if lines else STRONG_HINT,
        f"bfloat16 needs compute capability 8.0 or newer; {where}.",
        evidence=lines or evidence(facts, "DTYPE_MENTIONED", limit=1),
        fixes=[
            "--dtype half (float16); for LLM(...) pass dtype='half'",
            "models trained in bf16 occasionally overflow in fp16 (nan outputs); if so, --dtype float32 "
            "for small models",
        ],
    )


@rule("FP8_ON_OLD_GPU", category="no_kernel_image")
def fp8_on_old_gpu(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "FP8_UNSUPPORTED", limit=2)
    gpu = _gpu(facts)
    quant = str(engine_arg(facts, "quantization") or "").lower()
    kv = str(engine_arg(facts, "kv_cache_dtype") or "").lower()
    wants_fp8 = "fp8" in quant or kv.startswith("fp8")
    predicted = gpu is not None and gpu[1] < FP8_NATIVE_MIN_CC and wants_fp8 and _input_says(facts, "ERROR_WORD")
    if not lines and not predicted:
        return None
    where = f"the {gpu[0]} has compute capability {cc_text(gpu[1])}" if gpu else "this GPU is older than Ada (8.9)"
    fixes = []
    if kv.startswith("fp8"):
        fixes.append("drop --kv-cache-dtype fp8 (or pick an attention backend that supports an fp8 cache on this GPU)")
    if gpu and gpu[1] >= (8, 0):
        fixes.append(
            "FP8 checkpoints run weight-only through the Marlin kernels on 8.0-8.6 in recent vLLM releases; "
            "upgrade vLLM if yours predates that, or use an AWQ/GPTQ checkpoint"
        )
    else:
        fixes.append("use an AWQ or GPTQ checkpoint instead of FP8 on this GPU")
    return Diagnosis(
        level(facts, "FP8_UNSUPPORTED") if lines else HINT,
        f"Native FP8 kernels need compute capability 8.9 or newer; {where}.",
        evidence=lines or evidence(facts, "FP8_MENTIONED", limit=1),
        fixes=fixes,
    )


@rule(
    "QUANTIZATION_NEEDS_NEWER_GPU",
    category="no_kernel_image",
    signals=("QUANT_METHOD_NEEDS_CAPABILITY", "QUANT_SCHEME_UNSUPPORTED"),
)
def quantization_needs_newer_gpu(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "QUANT_METHOD_NEEDS_CAPABILITY", "QUANT_SCHEME_UNSUPPORTED", limit=2)
    if not lines:
        return None
    assert facts.signals is not None
    hit = facts.signals.first("QUANT_METHOD_NEEDS_CAPABILITY")
    stated = hit.groups if hit else {}
    needs = parse_compute_capability(stated.get("minimum"))
    gpu_cc = parse_compute_capability(stated.get("current"))
    title = "The checkpoint's quantization method needs a newer GPU"
    alternatives: list[str] = []
    if needs and gpu_cc:
        title += f" ({stated.get('method') or 'this method'} needs {cc_text(needs)}, the GPU is {cc_text(gpu_cc)})"
        alternatives = sorted(name for name, cc in QUANT_MIN_CC.items() if cc <= gpu_cc)
    return Diagnosis(
        level(facts, "QUANT_METHOD_NEEDS_CAPABILITY"),
        title + ".",
        evidence=lines,
        fixes=[
            "use a checkpoint quantized with a method this GPU supports"
            + (f" (e.g. {', '.join(alternatives[:4])})" if alternatives else ""),
            "or run the unquantized model with --dtype half and --tensor-parallel-size to fit it",
        ],
    )


@rule("GPU_TOO_OLD_FOR_VLLM", category="no_kernel_image")
def gpu_too_old_for_vllm(facts: Facts) -> Diagnosis | None:
    """Cross-stack: the GPU generation is below what vLLM's CUDA wheels are built for."""
    gpu = _gpu(facts)
    if gpu is None or has(facts, "NO_KERNEL_IMAGE"):
        return None
    name, cc = gpu
    volta_dropped = cc < (7, 5) and at_least(vllm_version(facts), (0, 20))
    if cc >= VLLM_MIN_CC and not volta_dropped:
        return None
    if not _input_says(facts, "ERROR_WORD", "NOT_SUPPORTED_OR_CRASH"):
        return None
    return Diagnosis(
        HINT,
        f"{name} (compute capability {cc_text(cc)}) is older than vLLM {vllm_version(facts) or ''} supports.".replace(
            "  ", " "
        ),
        evidence=lines_naming(facts, name, limit=1)
        if name != "the GPU"
        else evidence(facts, "SM_OR_COMPUTE_NAMED", limit=1),
        fixes=_arch_fixes(facts, gpu),
    )


# Arch-specific CUDA targets (sm_90a, sm_100a, sm_120a), which vLLM's CUTLASS kernels are built for, run on that
# exact capability only; a variant of the generation (10.3, 12.1) needs the family target (sm_100f, sm_120f,
# CUDA 12.9 and later) or its own.
ARCH_SPECIFIC_MIN_MAJOR = 10
CUTLASS_ON_VARIANT_CONFIDENCE = 0.6


@rule("CUTLASS_LAUNCH_FAILED_ON_ARCH_VARIANT", category="no_kernel_image", signals=("CUTLASS_ERROR_INTERNAL",))
def cutlass_launch_failed_on_arch_variant(facts: Facts) -> Diagnosis | None:
    """CUTLASS's 'Error Internal' (its kernel did not launch) on a GPU that is a variant of a generation whose
    CUTLASS kernels are compiled for the generation's first capability only."""
    lines = evidence(facts, "CUTLASS_ERROR_INTERNAL", limit=2)
    gpu = min_cc(facts)
    if not lines or gpu is None:
        return None
    name, cc = gpu
    if cc[0] < ARCH_SPECIFIC_MIN_MAJOR or cc[1] == 0:
        return None
    return Diagnosis(
        CUTLASS_ON_VARIANT_CONFIDENCE,
        f"A CUTLASS kernel could not launch on the {name} (compute capability {cc_text(cc)}): kernels built for "
        f"sm_{cc[0]}0a run on capability {cc[0]}.0 only, and this build may have no code for sm_{cc[0]}{cc[1]}.",
        evidence=lines,
        fixes=[
            f"use a build whose CUTLASS kernels cover sm_{cc[0]}{cc[1]}: one compiled with CUDA 12.9 or later for the "
            f"family target ({cc[0]}.0f), or with TORCH_CUDA_ARCH_LIST including {cc_text(cc)}a",
            *vllm_only(
                facts,
                "or let vLLM pick a non-CUTLASS kernel for the failing layer: VLLM_DISABLED_KERNELS names kernels to "
                "skip (the log's 'Selected ... Kernel' line names the one chosen)",
            ),
        ],
    )
