"""Triton, torch.compile (Dynamo/Inductor) and ptxas failures (category triton_compile)."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.knowledge import attention_backend_advice, compile_off_advice
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import grep, engine_arg, evidence, level, min_cc, vllm_version

PTXAS = (r"ptxas fatal|ptxas .*error|Value 'sm_\d+a?' is not defined for option 'gpu-name'|"
         r"ptxas.*--gpu-name=sm_\d+.*(non-zero exit status|returned)|PTXASError|Ptx assembly aborted")
NO_CC = r"Failed to find C compiler|Please specify via CC environment variable|error: command '(gcc|cc)' failed|Python\.h: No such file"
OUT_OF_RESOURCES = r"OutOfResources: out of resource: shared memory|out of resource: shared memory"
INDUCTOR = (r"InductorError|BackendCompilerFailed|torch\._dynamo\.exc\.\w+|torch\._inductor\.exc\.\w+|"
            r"triton\.compiler\.errors\.\w+|CompilationError|Triton compilation failed|"
            r"LoweringException|TritonMissing|Cannot find a working triton installation|No module named 'triton'")


@rule("PTXAS_ARCH_UNSUPPORTED", category="triton_compile")
def ptxas_arch_unsupported(facts: Facts) -> Finding | None:
    lines = evidence(facts, PTXAS, limit=3)
    if not lines:
        return None
    m = None
    for line in grep(facts, r"gpu-name=?'?sm_(\d+)", limit=2):
        m = re.search(r"sm_(\d{1,4})a?", line)
    arch = f"sm_{m.group(1)}" if m else None
    blackwell = arch is not None and int(m.group(1)) >= 100
    title = "ptxas failed to assemble a Triton kernel" + (f" for {arch}" if arch else "")
    title += ": the ptxas used is too old for this GPU." if blackwell else "."
    fixes = []
    if blackwell:
        fixes.append(f"{arch} needs ptxas from CUDA >= 12.8: upgrade triton (3.3+ bundles it) together with torch, or "
                     "point TRITON_PTXAS_PATH at /usr/local/cuda-12.8+/bin/ptxas")
    fixes += ["the lines after 'ptxas' name the failing instruction; include them in the report",
              f"work around the Triton kernel: {compile_off_advice(vllm_version(facts))}"]
    return Finding("PTXAS_ARCH_UNSUPPORTED", "triton_compile", level(facts, PTXAS + r"|CalledProcessError.*ptxas"),
                   title, evidence=lines, fixes=fixes)


@rule("TRITON_NO_C_COMPILER", category="triton_compile")
def triton_no_c_compiler(facts: Facts) -> Finding | None:
    lines = evidence(facts, NO_CC, limit=2)
    if not lines:
        return None
    return Finding("TRITON_NO_C_COMPILER", "triton_compile", level(facts, NO_CC),
                   "Triton needs a C compiler and the Python headers to build its launcher, and found none.",
                   evidence=lines,
                   fixes=["install them: apt-get install build-essential python3-dev (dnf install gcc python3-devel), "
                          "or set CC=/path/to/gcc",
                          "slim container images lack both; the vllm/vllm-openai image has them"])


@rule("TRITON_OUT_OF_SHARED_MEMORY", category="triton_compile")
def triton_out_of_shared_memory(facts: Facts) -> Finding | None:
    lines = evidence(facts, OUT_OF_RESOURCES, limit=1)
    if not lines:
        return None
    m = re.search(r"Required: (\d+), Hardware limit: (\d+)", lines[0])
    gpu = min_cc(facts)
    title = "A Triton kernel's tile configuration needs more shared memory than the GPU has"
    if m:
        title += f" ({int(m.group(1)) // 1024} KiB needed, {int(m.group(2)) // 1024} KiB available)"
    if gpu:
        title += f" on the {gpu[0]}"
    version = vllm_version(facts)
    return Finding("TRITON_OUT_OF_SHARED_MEMORY", "triton_compile", level(facts, OUT_OF_RESOURCES), title + ".",
                   evidence=lines,
                   fixes=["upgrade vLLM: kernel configurations for GPUs with little shared memory (T4, consumer cards) "
                          "are tuned per release",
                          "switch the attention backend away from the Triton kernel that failed: "
                          + attention_backend_advice(version, "FLASHINFER") + " or XFORMERS on older releases",
                          "lower --max-num-batched-tokens; chunked-prefill kernels pick larger tiles for larger chunks"])


@rule("TORCH_COMPILE_FAILED", category="triton_compile")
def torch_compile_failed(facts: Facts) -> Finding | None:
    lines = evidence(facts, INDUCTOR, limit=2)
    if not lines:
        return None
    version = vllm_version(facts)
    triton = facts.package("triton")
    torch = facts.torch_version or facts.package("torch")
    fixes = [f"turn compilation off to confirm: {compile_off_advice(version)}",
             "clear the compile cache (~/.cache/vllm/torch_compile_cache) or set VLLM_DISABLE_COMPILE_CACHE=1; stale "
             "caches from another vLLM/torch version fail like this",
             "a separately upgraded triton breaks torch.compile: install the triton version torch pins"
             + (f" (you have triton {triton} with torch {torch})" if triton and torch else ""),
             "for the report: TORCH_LOGS=+dynamo and a tlparse of the compile log locate the failing graph"]
    if engine_arg(facts, "enforce_eager") is not None:
        fixes.pop(0)
    return Finding("TORCH_COMPILE_FAILED", "triton_compile", level(facts, INDUCTOR),
                   "torch.compile (Dynamo / Inductor / Triton) failed to compile part of the model.",
                   evidence=lines, fixes=fixes)
