"""Asynchronous CUDA errors raised by kernels: illegal memory access, device-side asserts, bad launches."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.knowledge import BF16_MIN_CC, attention_backend_advice, cudagraph_workarounds
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    engine_arg,
    evidence,
    has,
    level,
    min_cc,
    vllm_only,
    vllm_or_not,
    vllm_version,
)

MEMORY_FAULTS = ("CUDA_ILLEGAL_ADDRESS", "CUDA_INVALID_ADDRESS_SPACE")
# The other faults that lose the CUDA context, each with its name for the finding's title.
KERNEL_FAULTS = (
    ("CUDA_MISALIGNED_ADDRESS", "misaligned address"),
    ("CUDA_LAUNCH_FAILURE", "unspecified launch failure"),
    ("CUDA_ILLEGAL_INSTRUCTION", "illegal instruction"),
    ("CUDA_INVALID_PC", "invalid program counter"),
    ("CUDA_HARDWARE_STACK_ERROR", "hardware stack error"),
)
KERNEL_FAULT_SIGNALS = tuple(signal for signal, _ in KERNEL_FAULTS)
XID_ADVICE = "check dmesg for Xid errors (Xid 13/31/43 point at the application, 48/63/64/79 at the hardware)"
LAUNCH_BLOCKING_ADVICE = (
    "rerun with CUDA_LAUNCH_BLOCKING=1 so the traceback points at the failing kernel (the one "
    "shown is usually not where the error happened)"
)


def debug_fixes(facts: Facts, graphs: bool = True) -> list[str]:
    """How to find the kernel behind an asynchronous CUDA error."""
    out = [LAUNCH_BLOCKING_ADVICE]
    if graphs:
        out += vllm_only(
            facts,
            "add --enforce-eager: if the crash disappears, it happens inside CUDA graph replay, where "
            "CUDA_LAUNCH_BLOCKING cannot localise it",
        )
    out.append(
        "for a definite location: CUDA_ENABLE_COREDUMP_ON_EXCEPTION=1 CUDA_COREDUMP_FILE=/tmp/cuda_coredump_%h.%p "
        "and open the dump in cuda-gdb; attach the result to the issue"
    )
    return out


@rule("ILLEGAL_MEMORY_ACCESS", category="illegal_memory_access", signals=MEMORY_FAULTS)
def illegal_memory_access(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, *MEMORY_FAULTS, limit=2)
    if not lines:
        return None
    fixes = debug_fixes(facts)
    version = vllm_version(facts)
    backend = engine_arg(facts, "attention_backend")
    fixes += vllm_only(
        facts,
        "try another attention backend to rule out a kernel bug: "
        + attention_backend_advice(version, "TRITON_ATTN" if backend != "TRITON_ATTN" else "FLASH_ATTN"),
    )
    quant = engine_arg(facts, "quantization")
    if quant or has(facts, "QUANTIZED_KERNEL_NAME"):
        fixes.append(
            "quantized kernels (Marlin, MoE, FP8/FP4) are common culprits: note the quantization and the "
            "batch sizes at which it fails"
        )
    fixes += vllm_only(
        facts,
        "check whether a newer vLLM release already fixes it; mention the exact model, --max-num-seqs and "
        "request pattern in the report, as these crashes often depend on batch shape",
    )
    if has(facts, "CUDA_INVALID_ADDRESS_SPACE") and not has(facts, "CUDA_ILLEGAL_ADDRESS"):
        title = (
            "A GPU kernel accessed memory through the wrong address space (cudaErrorInvalidAddressSpace: a "
            "pointer used for a global or shared memory operation does not point there), a memory fault like an "
            "illegal memory access; the CUDA context is lost and the process must restart."
        )
    else:
        title = (
            "A GPU kernel read or wrote memory it does not own (illegal memory access); the CUDA context is "
            f"lost and the {vllm_or_not(facts, 'engine', 'process')} must restart."
        )
    return Diagnosis(level(facts, *MEMORY_FAULTS), title, evidence=lines, fixes=fixes)


@rule("DEVICE_SIDE_ASSERT", category="device_side_assert", signals=("DEVICE_SIDE_ASSERT", "ASSERTION_FAILED"))
def device_side_assert(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "DEVICE_SIDE_ASSERT", "ASSERTION_FAILED", limit=3)
    if not lines:
        return None
    index_oob = has(facts, "INDEX_OUT_OF_BOUNDS")
    fixes = debug_fixes(facts)
    if index_oob:
        fixes.insert(
            0,
            "an index was out of range inside a kernel: most often a token id >= the model's vocab size "
            "(tokenizer and model disagree, added special tokens, prompt embeddings, logit bias / "
            "penalties on ids outside the vocabulary); check the request that triggered it",
        )
    else:
        fixes.append(
            "the assertion text printed by the kernel (lines ending 'Assertion ... failed') names the check; "
            "include it in the report"
        )
    fixes.append("TORCH_USE_CUDA_DSA needs a torch built with it; it does nothing on release wheels")
    return Diagnosis(
        level(facts, "DEVICE_SIDE_ASSERT", "CUDA_KERNEL_ASSERTION"),
        "A check inside a GPU kernel failed (device-side assert)"
        + (": an index was out of bounds." if index_oob else "."),
        evidence=lines,
        fixes=fixes,
    )


@rule("CUSTOM_ALLREDUCE_INVALID_ARGUMENT", category="invalid_config_arg", signals=("CUSTOM_ALL_REDUCE",))
def custom_allreduce_invalid_argument(facts: Facts) -> Diagnosis | None:
    if not has(facts, "INVALID_ARGUMENT_TEXT"):
        return None
    lines = evidence(facts, "CUSTOM_ALLREDUCE_INVALID_ARGUMENT", "CUDA_INVALID_ARGUMENT", limit=2)
    return Diagnosis(
        level(facts, "INVALID_ARGUMENT_TEXT"),
        "vLLM's custom all-reduce could not register its peer-to-peer (CUDA IPC) buffers between GPUs "
        "('invalid argument').",
        evidence=lines,
        fixes=[
            "add --disable-custom-all-reduce (NCCL then does the all-reduce)",
            (
                "check GPU peer access: nvidia-smi topo -m; P2P over PCIe is often blocked by IOMMU/ACS or "
                "virtualisation"
            ),
            "multi-node or mixed topologies (e.g. pipeline parallel across nodes) are the usual trigger",
        ],
    )


@rule("CUDA_INVALID_ARGUMENT", category="invalid_config_arg", signals=("CUDA_INVALID_ARGUMENT",))
def cuda_invalid_argument(facts: Facts) -> Diagnosis | None:
    if has(facts, "CUSTOM_ALL_REDUCE"):
        return None
    lines = evidence(facts, "CUDA_INVALID_ARGUMENT", limit=2)
    if not lines:
        return None
    fixes = [*debug_fixes(facts)[:2]]
    gpu = min_cc(facts)
    if gpu and gpu[1] < BF16_MIN_CC:
        fixes.append(
            f"the {gpu[0]} (compute capability {gpu[1][0]}.{gpu[1][1]}) is outside what many kernels are "
            + vllm_or_not(
                facts,
                "tuned for: try --dtype half and another attention backend",
                "tuned for: try float16 instead of bfloat16",
            )
        )
    fixes += vllm_only(facts, "with several GPUs: --disable-custom-all-reduce rules out peer-to-peer registration")
    return Diagnosis(
        level(facts, "CUDA_INVALID_ARGUMENT"),
        "A CUDA call was given an invalid argument (a launch parameter, pointer or size the device rejected).",
        evidence=lines,
        fixes=fixes,
    )


@rule("CUDA_KERNEL_FAULT", category="other", signals=KERNEL_FAULT_SIGNALS)
def cuda_kernel_fault(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, *KERNEL_FAULT_SIGNALS, limit=2)
    if not lines or has(facts, *MEMORY_FAULTS):
        return None
    names = [name for signal, name in KERNEL_FAULTS if has(facts, signal)]
    return Diagnosis(
        level(facts, *KERNEL_FAULT_SIGNALS, seen=0.8),
        f"A GPU kernel faulted ({' / '.join(names)}); the CUDA context is lost.",
        evidence=lines,
        fixes=[
            *debug_fixes(facts),
            XID_ADVICE,
            *vllm_only(facts, *cudagraph_workarounds(vllm_version(facts))[1:2]),
        ],
    )


@rule("NAN_IN_SAMPLING_PROBABILITIES", category="other", signals=("SAMPLING_PROBS_INF_NAN",))
def nan_in_sampling_probabilities(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "SAMPLING_PROBS_INF_NAN", limit=1)
    if not lines:
        return None
    gpu = min_cc(facts)
    fixes = []
    dtype = vllm_or_not(facts, "--dtype ", "torch_dtype=torch.")
    if gpu is None or gpu[1] >= BF16_MIN_CC:
        fixes.append(
            f"if the model runs in float16, use {dtype}bfloat16: fp16 overflows to inf/nan in many models "
            "trained in bf16"
        )
    else:
        fixes.append(
            f"this GPU has no bf16; use {dtype}float32 for the layers that overflow, or a model fine-tuned in fp16"
        )
    fixes += [
        "check the checkpoint for nan/inf weights (a broken fine-tune or merge produces this too)",
        "compare with temperature=0 (greedy) and without top-p/top-k to see whether sampling settings matter",
    ]
    return Diagnosis(
        level(facts, "SAMPLING_PROBS_INF_NAN"),
        "The model produced inf/nan logits, so sampling failed.",
        evidence=lines,
        fixes=fixes,
    )
