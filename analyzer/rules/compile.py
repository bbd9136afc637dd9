"""Triton, torch.compile (Dynamo/Inductor) and ptxas failures (category triton_compile)."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.knowledge import TORCH_COMPILE_OFF_ADVICE, attention_backend_advice, compile_off_advice
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    clip,
    engine_arg,
    evidence,
    level,
    min_cc,
    vllm_only,
    vllm_or_not,
    vllm_version,
)
from vllm_bug.analyzer.rules.indirect import compile_fixes


@rule("PTXAS_ARCH_UNSUPPORTED", category="triton_compile", signals=("PTXAS_FAILED",))
def ptxas_arch_unsupported(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "PTXAS_FAILED", limit=3)
    assert facts.signals is not None
    named = [hit.groups["arch"] for hit in facts.signals.all("PTXAS_GPU_NAME")[:2]]
    arch = f"sm_{named[-1]}" if named else None
    blackwell = bool(named) and int(named[-1]) >= 100
    title = "ptxas failed to assemble a Triton kernel" + (f" for {arch}" if arch else "")
    title += ": the ptxas used is too old for this GPU." if blackwell else "."
    fixes = []
    if blackwell:
        fixes.append(
            f"{arch} needs ptxas from CUDA >= 12.8: upgrade triton (3.3+ bundles it) together with torch, or "
            "point TRITON_PTXAS_PATH at /usr/local/cuda-12.8+/bin/ptxas"
        )
    fixes += [
        "the lines after 'ptxas' name the failing instruction; include them in the report",
        vllm_or_not(
            facts, f"work around the Triton kernel: {compile_off_advice(vllm_version(facts))}", TORCH_COMPILE_OFF_ADVICE
        ),
    ]
    return Diagnosis(level(facts, "PTXAS_FAILED", "PTXAS_CALLED_PROCESS"), title, evidence=lines, fixes=fixes)


# below this much shared memory per block a GPU is one of those Triton configurations are often not tuned for
# (T4: 64 KiB, consumer Ampere and Ada cards: about 100 KiB); the A100 has 163 KiB, the H100 and H200 227 KiB
SMALL_SHARED_MEMORY = 128 * 1024


def _upgrade_for_shared_memory(sizes: dict[str, str]) -> str:
    """The upgrade advice, naming the small-memory GPUs only when the limit in the message is one of theirs."""
    limit = int(sizes["limit"]) if sizes.get("limit") else None
    if limit is not None and limit >= SMALL_SHARED_MEMORY:
        return "upgrade vLLM: its Triton kernel configurations are tuned per GPU and per release"
    return (
        "upgrade vLLM: kernel configurations for GPUs with little shared memory (T4, consumer cards) "
        "are tuned per release"
    )


@rule("TRITON_OUT_OF_SHARED_MEMORY", category="triton_compile", signals=("TRITON_OUT_OF_SHARED_MEMORY",))
def triton_out_of_shared_memory(facts: Facts) -> Diagnosis | None:
    assert facts.signals is not None
    hit = facts.signals.first("TRITON_OUT_OF_SHARED_MEMORY")
    lines = [hit.line] if hit else []
    sizes = hit.groups if hit else {}
    gpu = min_cc(facts)
    title = "A Triton kernel's tile configuration needs more shared memory than the GPU has"
    if "required" in sizes and "limit" in sizes:
        title += f" ({int(sizes['required']) // 1024} KiB needed, {int(sizes['limit']) // 1024} KiB available)"
    if gpu:
        title += f" on the {gpu[0]}"
    version = vllm_version(facts)
    return Diagnosis(
        level(facts, "TRITON_OUT_OF_SHARED_MEMORY"),
        title + ".",
        evidence=lines,
        fixes=vllm_only(
            facts,
            _upgrade_for_shared_memory(sizes),
            "switch the attention backend away from the Triton kernel that failed: "
            + attention_backend_advice(version, "FLASHINFER")
            + " or XFORMERS on older releases",
            "lower --max-num-batched-tokens; chunked-prefill kernels pick larger tiles for larger chunks",
        )
        or [
            "the kernel's tile sizes (BLOCK_M/BLOCK_N/num_stages in its triton.Config) need shrinking for "
            "this GPU: smaller blocks or fewer pipeline stages use less shared memory"
        ],
    )


@rule("TRITON_PASS_PIPELINE_FAILED", category="triton_compile", signals=("TRITON_PASS_PIPELINE_FAILED",))
def triton_pass_pipeline_failed(facts: Facts) -> Diagnosis | None:
    """Triton's MLIR pass pipeline failed: its crash reproducer, or MLIR's error and Triton's note after it, even
    when the log was cut before the Python error ('PassManager::run failed')."""
    assert facts.signals is not None
    hits = facts.signals.all("TRITON_PASS_PIPELINE_FAILED")
    if not hits:
        return None
    target = next((hit.groups["cc"] for hit in hits if hit.groups.get("cc")), None)
    title = "Triton's compiler failed in its MLIR pass pipeline while compiling a kernel"
    title += f" for sm_{target}." if target else "."
    fixes = [
        "the line 'Pipeline failed while executing [...]' names the pass that failed: report it to Triton (and to the "
        "project whose kernel it is) with the reproducer Triton printed above it; TRITON_REPRODUCER_PATH=FILE writes "
        "it to a file instead",
        *compile_fixes(facts)[1:],
    ]
    return Diagnosis(
        level(facts, "TRITON_PASS_PIPELINE_FAILED"),
        title,
        evidence=[clip(hit.line) for hit in hits[:2]],
        fixes=fixes,
    )


# what torch.compile adds around a Triton failure: Dynamo's and Inductor's modules, and their exceptions' names
TORCH_COMPILE_MODULES = ("torch._dynamo", "torch._inductor")
TORCH_COMPILE_WORDS = re.compile(
    r"torch\._dynamo|torch\._inductor|InductorError|BackendCompilerFailed|LoweringException"
)


def _all_frames(facts: Facts) -> list:
    frames = [frame for tb in facts.tracebacks for frame in tb.frames]
    return frames + (facts.root_cause.frames if facts.root_cause is not None else [])


def triton_kernel_failed_to_compile(facts: Facts) -> bool:
    """A CompilationError of Triton's compiler on a kernel it was handed directly: the traceback runs through
    triton.compiler and through neither Dynamo nor Inductor, and no error line names torch.compile's parts. A cut
    traceback without frames cannot tell, and stays torch.compile's."""
    lines = evidence(facts, "COMPILE_FAILED", limit=20)
    if not any("CompilationError" in line for line in lines) or any(TORCH_COMPILE_WORDS.search(x) for x in lines):
        return False
    modules = [frame.module for frame in _all_frames(facts)]
    return any(m.startswith("triton.compiler") for m in modules) and not any(
        m.startswith(TORCH_COMPILE_MODULES) for m in modules
    )


def _compiler_message(facts: Facts) -> str | None:
    """What the compiler objected to: the chained cause under the CompilationError, when there is one."""
    cause = facts.root_cause
    if cause is None or "CompilationError" in cause.exc_type or not cause.message:
        return None
    return cause.message


def _pinned_triton_fix(facts: Facts) -> str:
    triton = facts.package("triton")
    torch = facts.torch_version or facts.package("torch")
    versions = f" (you have triton {triton} with torch {torch})" if triton and torch else ""
    return (
        f"if triton was installed apart from torch, install the version torch pins{versions} to rule out a "
        "compiler change"
    )


@rule("TRITON_KERNEL_COMPILE_FAILED", category="triton_compile", signals=("COMPILE_FAILED",))
def triton_kernel_compile_failed(facts: Facts) -> Diagnosis | None:
    """A Triton kernel (a @triton.jit function, not code torch.compile generated) that Triton could not compile."""
    if not triton_kernel_failed_to_compile(facts):
        return None
    message = _compiler_message(facts)
    fixes = [
        "the error's 'at LINE:COLUMN' counts from the kernel's def line and points at the code Triton rejects; "
        "the line under the quoted source says which rule of the Triton language it breaks"
    ]
    if message and "power of 2" in message:
        fixes.append(
            "tl.arange ranges and block shapes must be powers of two: pass triton.next_power_of_2(n) as the block "
            "size and mask the lanes past n (mask=offsets < n)"
        )
    fixes.append(_pinned_triton_fix(facts))
    fixes += vllm_only(
        facts,
        "when the kernel is one of vLLM's own (its frames are under vllm/), report it with this log and the "
        "triton version",
    )
    return Diagnosis(
        level(facts, "COMPILE_FAILED"),
        "Triton could not compile a kernel" + (f": {message}." if message else "."),
        evidence=evidence(facts, "COMPILE_FAILED", limit=2),
        fixes=fixes,
    )


@rule("TORCH_COMPILE_FAILED", category="triton_compile", signals=("COMPILE_FAILED",))
def torch_compile_failed(facts: Facts) -> Diagnosis | None:
    if triton_kernel_failed_to_compile(facts):  # TRITON_KERNEL_COMPILE_FAILED's
        return None
    lines = evidence(facts, "COMPILE_FAILED", limit=2)
    version = vllm_version(facts)
    triton = facts.package("triton")
    torch = facts.torch_version or facts.package("torch")
    fixes = [
        vllm_or_not(facts, f"turn compilation off to confirm: {compile_off_advice(version)}", TORCH_COMPILE_OFF_ADVICE),
        *vllm_only(
            facts,
            "clear the compile cache (~/.cache/vllm/torch_compile_cache) or set "
            "VLLM_DISABLE_COMPILE_CACHE=1; stale caches from another vLLM/torch version fail like this",
        ),
        "a separately upgraded triton breaks torch.compile: install the triton version torch pins"
        + (f" (you have triton {triton} with torch {torch})" if triton and torch else ""),
        "for the report: TORCH_LOGS=+dynamo and a tlparse of the compile log locate the failing graph",
    ]
    if engine_arg(facts, "enforce_eager") is not None:
        fixes.pop(0)
    return Diagnosis(
        level(facts, "COMPILE_FAILED"),
        "torch.compile (Dynamo / Inductor / Triton) failed to compile part of the model.",
        evidence=lines,
        fixes=fixes,
    )
