"""Asynchronous CUDA errors raised by kernels: illegal memory access, device-side asserts, bad launches."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.knowledge import BF16_MIN_CC, attention_backend_advice, cudagraph_workarounds
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import has, engine_arg, evidence, level, min_cc, vllm_version

# A generic pointer used for a global/shared load or store that does not point into that space
# (cudaErrorInvalidAddressSpace, CUDA 13 wording): a memory fault with the same debugging as an illegal access.
ADDRESS_SPACE = (r"operation not supported on global/shared address space|cudaErrorInvalidAddressSpace|"
                 r"CUDA_ERROR_INVALID_ADDRESS_SPACE")
ILLEGAL_ACCESS = (r"illegal memory access|cudaErrorIllegalAddress|CUDA_ERROR_ILLEGAL_ADDRESS|"
                  r"an illegal memory access was encountered|" + ADDRESS_SPACE)
DEVICE_ASSERT = (r"device-side assert(?!ions)|cudaErrorAssert|CUDA_ERROR_ASSERT|\.cu:\d+: .*Assertion .* failed|"
                 r"Assertion `[^`]*` failed")
INVALID_CONFIG = r"invalid configuration argument|cudaErrorInvalidConfiguration|CUDA_ERROR_INVALID_CONFIGURATION"
INVALID_ARGUMENT = r"CUDA error: invalid argument|'invalid argument'|cudaErrorInvalidValue|CUDA_ERROR_INVALID_VALUE|Cuda error .*invalid argument"
CUSTOM_ALLREDUCE = r"custom_all_reduce"
KERNEL_FAULT = (r"misaligned address|unspecified launch failure|illegal instruction was encountered|"
                r"cudaErrorMisalignedAddress|cudaErrorLaunchFailure|CUDA_ERROR_LAUNCH_FAILED|"
                r"cudaErrorIllegalInstruction|CUDA_ERROR_MISALIGNED_ADDRESS|an illegal instruction|"
                r"invalid program counter|cudaErrorInvalidPc|CUDA_ERROR_INVALID_PC|"
                r"hardware stack error|cudaErrorHardwareStackError|CUDA_ERROR_HARDWARE_STACK_ERROR")
# which fault, in words, for the finding's title (first match wins)
_KERNEL_FAULT_NAMES = (
    (r"misaligned address|cudaErrorMisalignedAddress|CUDA_ERROR_MISALIGNED_ADDRESS", "misaligned address"),
    (r"unspecified launch failure|cudaErrorLaunchFailure|CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"),
    (r"illegal instruction|cudaErrorIllegalInstruction", "illegal instruction"),
    (r"invalid program counter|cudaErrorInvalidPc|CUDA_ERROR_INVALID_PC", "invalid program counter"),
    (r"hardware stack error|cudaErrorHardwareStackError|CUDA_ERROR_HARDWARE_STACK_ERROR", "hardware stack error"),
)
NAN_PROBS = r"probability tensor contains either `?inf`?, `?nan`? or element < 0"


def _debug_fixes(facts: Facts, graphs: bool = True) -> list[str]:
    out = ["rerun with CUDA_LAUNCH_BLOCKING=1 so the traceback points at the failing kernel (the one shown is "
           "usually not where the error happened)"]
    if graphs:
        out.append("add --enforce-eager: if the crash disappears, it happens inside CUDA graph replay, where "
                   "CUDA_LAUNCH_BLOCKING cannot localise it")
    out.append("for a definite location: CUDA_ENABLE_COREDUMP_ON_EXCEPTION=1 CUDA_COREDUMP_FILE=/tmp/cuda_coredump_%h.%p "
               "and open the dump in cuda-gdb; attach the result to the issue")
    return out


@rule("ILLEGAL_MEMORY_ACCESS", category="illegal_memory_access")
def illegal_memory_access(facts: Facts) -> Finding | None:
    lines = evidence(facts, ILLEGAL_ACCESS, limit=2)
    if not lines:
        return None
    fixes = _debug_fixes(facts)
    version = vllm_version(facts)
    backend = engine_arg(facts, "attention_backend")
    fixes.append("try another attention backend to rule out a kernel bug: "
                 + attention_backend_advice(version, "TRITON_ATTN" if backend != "TRITON_ATTN" else "FLASH_ATTN"))
    quant = engine_arg(facts, "quantization")
    if quant or has(facts, r"\b(awq|gptq|marlin|fp8|nvfp4|mxfp4)\b"):
        fixes.append("quantized kernels (Marlin, MoE, FP8/FP4) are common culprits: note the quantization and the "
                     "batch sizes at which it fails")
    fixes.append("check whether a newer vLLM release already fixes it; mention the exact model, --max-num-seqs and "
                 "request pattern in the report, as these crashes often depend on batch shape")
    if has(facts, ADDRESS_SPACE) and not has(facts, r"illegal memory access|cudaErrorIllegalAddress|CUDA_ERROR_ILLEGAL_ADDRESS"):
        title = ("A GPU kernel accessed memory through the wrong address space (cudaErrorInvalidAddressSpace: a "
                 "pointer used for a global or shared memory operation does not point there), a memory fault like an "
                 "illegal memory access; the CUDA context is lost and the process must restart.")
    else:
        title = ("A GPU kernel read or wrote memory it does not own (illegal memory access); the CUDA context is "
                 "lost and the engine must restart.")
    return Finding("ILLEGAL_MEMORY_ACCESS", "illegal_memory_access", level(facts, ILLEGAL_ACCESS), title,
                   evidence=lines, fixes=fixes)


@rule("DEVICE_SIDE_ASSERT", category="device_side_assert")
def device_side_assert(facts: Facts) -> Finding | None:
    lines = evidence(facts, r"device-side assert(?!ions)|cudaErrorAssert|CUDA_ERROR_ASSERT", r"Assertion .* failed", limit=3)
    if not lines:
        return None
    index_oob = has(facts, r"index out of bounds|idx_dim >= 0|srcIndex < srcSelectDimSize|index_size")
    fixes = _debug_fixes(facts)
    if index_oob:
        fixes.insert(0, "an index was out of range inside a kernel: most often a token id >= the model's vocab size "
                        "(tokenizer and model disagree, added special tokens, prompt embeddings, logit bias / "
                        "penalties on ids outside the vocabulary); check the request that triggered it")
    else:
        fixes.append("the assertion text printed by the kernel (lines ending 'Assertion ... failed') names the check; "
                     "include it in the report")
    fixes.append("TORCH_USE_CUDA_DSA needs a torch built with it; it does nothing on release wheels")
    return Finding("DEVICE_SIDE_ASSERT", "device_side_assert", level(facts, DEVICE_ASSERT),
                   "A check inside a GPU kernel failed (device-side assert)"
                   + (": an index was out of bounds." if index_oob else "."),
                   evidence=lines, fixes=fixes)


@rule("CUDA_INVALID_CONFIGURATION", category="invalid_config_arg")
def cuda_invalid_configuration(facts: Facts) -> Finding | None:
    lines = evidence(facts, INVALID_CONFIG, limit=2)
    if not lines:
        return None
    return Finding("CUDA_INVALID_CONFIGURATION", "invalid_config_arg", level(facts, INVALID_CONFIG),
                   "A kernel was launched with a grid or block size the GPU cannot run (invalid configuration "
                   "argument), usually because a batch or sequence dimension exceeded what the kernel supports.",
                   evidence=lines,
                   fixes=["lower --max-num-batched-tokens and --max-num-seqs to find the size that triggers it",
                          *_debug_fixes(facts, graphs=False)[:1],
                          "report the model, GPU and batch size; a newer vLLM may have fixed the kernel's launch bounds"])


@rule("CUSTOM_ALLREDUCE_INVALID_ARGUMENT", category="invalid_config_arg")
def custom_allreduce_invalid_argument(facts: Facts) -> Finding | None:
    if not (has(facts, CUSTOM_ALLREDUCE) and has(facts, r"invalid argument")):
        return None
    lines = evidence(facts, r"custom_all_reduce.*invalid argument", INVALID_ARGUMENT, limit=2)
    return Finding("CUSTOM_ALLREDUCE_INVALID_ARGUMENT", "invalid_config_arg", level(facts, r"invalid argument"),
                   "vLLM's custom all-reduce could not register its peer-to-peer (CUDA IPC) buffers between GPUs "
                   "('invalid argument').",
                   evidence=lines,
                   fixes=["add --disable-custom-all-reduce (NCCL then does the all-reduce)",
                          "check GPU peer access: nvidia-smi topo -m; P2P over PCIe is often blocked by IOMMU/ACS or "
                          "virtualisation",
                          "multi-node or mixed topologies (e.g. pipeline parallel across nodes) are the usual trigger"])


@rule("CUDA_INVALID_ARGUMENT", category="invalid_config_arg")
def cuda_invalid_argument(facts: Facts) -> Finding | None:
    if has(facts, CUSTOM_ALLREDUCE):
        return None
    lines = evidence(facts, INVALID_ARGUMENT, limit=2)
    if not lines:
        return None
    fixes = [*_debug_fixes(facts)[:2]]
    gpu = min_cc(facts)
    if gpu and gpu[1] < BF16_MIN_CC:
        fixes.append(f"the {gpu[0]} (compute capability {gpu[1][0]}.{gpu[1][1]}) is outside what many kernels are "
                     "tuned for: try --dtype half and another attention backend")
    fixes.append("with several GPUs: --disable-custom-all-reduce rules out peer-to-peer registration")
    return Finding("CUDA_INVALID_ARGUMENT", "invalid_config_arg", level(facts, INVALID_ARGUMENT),
                   "A CUDA call was given an invalid argument (a launch parameter, pointer or size the device rejected).",
                   evidence=lines, fixes=fixes)


@rule("CUDA_KERNEL_FAULT", category="other")
def cuda_kernel_fault(facts: Facts) -> Finding | None:
    lines = evidence(facts, KERNEL_FAULT, limit=2)
    if not lines or has(facts, ILLEGAL_ACCESS):
        return None
    names = [name for pattern, name in _KERNEL_FAULT_NAMES if has(facts, pattern)]
    return Finding("CUDA_KERNEL_FAULT", "other", level(facts, KERNEL_FAULT, seen=0.8),
                   f"A GPU kernel faulted ({' / '.join(names) or 'kernel fault'}); the CUDA context is lost.",
                   evidence=lines,
                   fixes=[*_debug_fixes(facts),
                          "check dmesg for Xid errors (Xid 13/31/43 point at the application, 48/63/64/79 at the "
                          "hardware)",
                          *cudagraph_workarounds(vllm_version(facts))[1:2]])


@rule("NAN_IN_SAMPLING_PROBABILITIES", category="other")
def nan_in_sampling_probabilities(facts: Facts) -> Finding | None:
    lines = evidence(facts, NAN_PROBS, limit=1)
    if not lines:
        return None
    gpu = min_cc(facts)
    fixes = []
    if gpu is None or gpu[1] >= BF16_MIN_CC:
        fixes.append("if the model runs in float16, use --dtype bfloat16: fp16 overflows to inf/nan in many models "
                     "trained in bf16")
    else:
        fixes.append("this GPU has no bf16; use --dtype float32 for the layers that overflow, or a model fine-tuned in "
                     "fp16")
    fixes += ["check the checkpoint for nan/inf weights (a broken fine-tune or merge produces this too)",
              "compare with temperature=0 (greedy) and without top-p/top-k to see whether sampling settings matter"]
    return Finding("NAN_IN_SAMPLING_PROBABILITIES", "other", level(facts, NAN_PROBS),
                   "The model produced inf/nan logits, so sampling failed.", evidence=lines, fixes=fixes)
