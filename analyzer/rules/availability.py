"""No GPU visible to CUDA: hidden devices, containers without a GPU runtime, CPU builds (cuda_not_available)."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    STRONG_HINT,
    engine_arg_number,
    env_value,
    evidence,
    gpu_count,
    grep,
    has,
    level,
)

NO_GPUS = (
    r"No CUDA GPUs are available|no CUDA-capable device is detected|cudaErrorNoDevice|CUDA_ERROR_NO_DEVICE|"
    r"Error 100: no CUDA-capable device|No GPUs? (found|available|detected)|"
    r"Found no NVIDIA driver on your system|torch\.cuda\.is_available\(\) (is|returned) False|"
    r"No <?cuda>? ?devices? found"
)
INFER_DEVICE = r"Failed to infer device type|Device string must not be empty|device_type=''|Platform detection failed"
CPU_BUILD = r"Torch not compiled with CUDA enabled|\+cpu\b|CUDA used to build PyTorch: None|Is CUDA available: False"
DEVICE_COUNT = r"Unexpected error from cudaGetDeviceCount\(\)"
INVALID_ORDINAL = (
    r"invalid device ordinal|cudaErrorInvalidDevice\b|CUDA_ERROR_INVALID_DEVICE|"
    r"NVMLError_InvalidArgument|NVML.*Invalid Argument"
)
CONTAINER = r"docker|container|kubernetes|\bk8s\b|\bpod\b|podman|compose|runtimeClassName"
WINDOWS = r"Microsoft Windows|Windows-10|Windows-11|win_amd64|\bOS: Windows"


def _visible_count(facts: Facts) -> int | None:
    value = env_value(facts, "CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    value = value.strip()
    if value in ("", "-1", "NoDevFiles", "none", "void"):
        return 0
    return len([v for v in value.split(",") if v.strip()])


def _first_indices(count: int) -> str:
    """0,1,...,count-1 written out, elided past a few (a pasted tp of 10**24 must not build that list)."""
    return ",".join(str(i) for i in range(count)) if count <= 16 else f"0,1,...,{count - 1}"


def _parallel_size(facts: Facts) -> int | None:
    tp = engine_arg_number(facts, "tensor_parallel_size") or engine_arg_number(facts, "tp")
    pp = engine_arg_number(facts, "pipeline_parallel_size") or 1
    return int(tp * pp) if tp else None


def _container_fixes(facts: Facts) -> list[str]:
    return [
        "in Docker: run with --gpus all (or --runtime nvidia) and check that `nvidia-smi` works inside the container",
        "in Kubernetes: request nvidia.com/gpu in the pod's resources and set runtimeClassName: nvidia where the "
        "cluster uses one",
    ]


def _cpu_build(facts: Facts) -> bool:
    torch = facts.torch_version or facts.package("torch") or ""
    return (
        torch.endswith("+cpu")
        or (facts.torch_cuda in ("None", "none"))
        or has(facts, r"Torch not compiled with CUDA enabled|CUDA used to build PyTorch: None")
    )


@rule("TORCH_CPU_BUILD", category="cuda_not_available")
def torch_cpu_build(facts: Facts) -> Finding | None:
    if not _cpu_build(facts):
        return None
    windows = has(facts, WINDOWS)
    fixes = [
        "install a CUDA build of torch; the simplest is to install vLLM into a fresh environment and let it pull "
        "its own torch (pip install vllm)"
    ]
    if windows:
        fixes.insert(
            0,
            "vLLM has no native Windows CUDA build: run it under WSL2 or Linux (or in the "
            "vllm/vllm-openai container with Docker Desktop's WSL2 backend)",
        )
    return Finding(
        "TORCH_CPU_BUILD",
        "cuda_not_available",
        level(facts, CPU_BUILD, seen=0.9)
        if has(facts, INFER_DEVICE + "|" + NO_GPUS + "|" + CPU_BUILD)
        else STRONG_HINT,
        f"torch {facts.torch_version or ''} is a CPU-only build, so CUDA can never be used.".replace("  ", " ")
        + (" The system is native Windows." if windows else ""),
        evidence=evidence(facts, CPU_BUILD, WINDOWS, limit=3),
        fixes=fixes,
    )


@rule("CUDA_VISIBLE_DEVICES_HIDES_GPUS", category="cuda_not_available")
def cuda_visible_devices_hides_gpus(facts: Facts) -> Finding | None:
    visible = _visible_count(facts)
    if visible is None:
        return None
    need = _parallel_size(facts)
    present = gpu_count(facts)
    value = env_value(facts, "CUDA_VISIBLE_DEVICES")
    ev = evidence(facts, r"CUDA_VISIBLE_DEVICES", limit=2)
    if visible == 0:
        return Finding(
            "CUDA_VISIBLE_DEVICES_HIDES_GPUS",
            "cuda_not_available",
            0.9,
            f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU from CUDA.",
            evidence=ev,
            fixes=["unset CUDA_VISIBLE_DEVICES, or set it to the GPU indices to use (e.g. 0,1)"],
        )
    if need and visible < need:
        return Finding(
            "CUDA_VISIBLE_DEVICES_HIDES_GPUS",
            "cuda_not_available",
            0.85,
            f"CUDA_VISIBLE_DEVICES={value} exposes {visible} GPU(s), but tensor x pipeline parallel size "
            f"asks for {need}.",
            evidence=ev,
            fixes=[
                f"expose {need} GPUs (e.g. CUDA_VISIBLE_DEVICES={_first_indices(need)}) "
                f"or lower --tensor-parallel-size to {visible}"
            ],
        )
    if present and value and all(re.fullmatch(r"\s*\d{1,9}\s*", v) for v in value.split(",")):
        too_high = [v for v in value.split(",") if int(v) >= present]
        if too_high:
            return Finding(
                "CUDA_VISIBLE_DEVICES_HIDES_GPUS",
                "cuda_not_available",
                STRONG_HINT,
                f"CUDA_VISIBLE_DEVICES names GPU {', '.join(too_high)}, but the machine has {present} GPU(s) "
                f"(indices 0-{present - 1}).",
                evidence=ev,
                fixes=["use indices that exist (nvidia-smi -L lists them)"],
            )
    return None


@rule("TOO_FEW_GPUS_FOR_PARALLELISM", category="cuda_not_available")
def too_few_gpus_for_parallelism(facts: Facts) -> Finding | None:
    """More GPUs requested than visible: invalid device ordinal, NVML invalid argument, Ray placement groups."""
    rx = (
        INVALID_ORDINAL + r"|required GPUs exceeds the total number of available GPUs|Cannot provide a placement "
        r"group|Tensor parallel size \(\d+\) exceeds available GPUs"
    )
    lines = evidence(facts, rx, limit=2)
    if (
        not lines
        or _visible_count(facts) is not None
        and has(facts, r"CUDA_VISIBLE_DEVICES")
        and cuda_visible_devices_hides_gpus(facts) is not None
    ):
        return None
    need = _parallel_size(facts)
    return Finding(
        "TOO_FEW_GPUS_FOR_PARALLELISM",
        "cuda_not_available",
        level(facts, rx, seen=0.8),
        "A GPU index beyond the visible devices was used: the run asks for more GPUs than CUDA can see"
        + (f" (tensor x pipeline parallel = {need})." if need else "."),
        evidence=lines,
        fixes=[
            "check CUDA_VISIBLE_DEVICES (and docker --gpus / the pod's GPU request): it must expose at "
            "least tensor-parallel-size x pipeline-parallel-size GPUs",
            "or lower --tensor-parallel-size to the number of visible GPUs",
            "with Ray: `ray status` must show enough GPUs in the cluster",
        ],
    )


@rule("FAILED_TO_INFER_DEVICE", category="cuda_not_available")
def failed_to_infer_device(facts: Facts) -> Finding | None:
    lines = evidence(facts, INFER_DEVICE, limit=2)
    if not lines:
        return None
    fixes = []
    if _cpu_build(facts):
        fixes.append("torch here is a CPU-only build: install a CUDA build (see the torch finding)")
    if has(facts, CONTAINER):
        fixes += _container_fixes(facts)
    fixes += [
        "check that `python -c 'import torch; print(torch.cuda.is_available())'` prints True in the same "
        "environment; if not, the driver or the GPU passthrough is the problem",
        "make sure CUDA_VISIBLE_DEVICES is unset or names existing GPUs",
        "VLLM_LOGGING_LEVEL=DEBUG shows why each platform plugin was rejected",
    ]
    return Finding(
        "FAILED_TO_INFER_DEVICE",
        "cuda_not_available",
        level(facts, INFER_DEVICE),
        "vLLM found no usable accelerator platform: CUDA is not available to this process.",
        evidence=lines,
        fixes=fixes,
    )


@rule("NO_CUDA_GPUS", category="cuda_not_available")
def no_cuda_gpus(facts: Facts) -> Finding | None:
    lines = evidence(facts, NO_GPUS, limit=2)
    if not lines:
        return None
    fixes = []
    visible = _visible_count(facts)
    if visible == 0:
        fixes.append("CUDA_VISIBLE_DEVICES hides every GPU: unset it")
    if has(facts, CONTAINER) or has(facts, r"wsl|microsoft-standard|/mnt/c/"):
        fixes += _container_fixes(facts)
    if has(facts, r"wsl|microsoft-standard|/mnt/c/|DESKTOP-"):
        fixes.append(
            "under WSL2 / Docker Desktop, GPU access needs a current Windows driver and Docker Desktop with "
            "the WSL2 backend; check `nvidia-smi` inside the container, not only in WSL"
        )
    fixes.append("check that nvidia-smi lists the GPU in the same environment that runs vLLM")
    return Finding(
        "NO_CUDA_GPUS",
        "cuda_not_available",
        level(facts, NO_GPUS),
        "CUDA sees no GPU in this process.",
        evidence=lines,
        fixes=fixes,
    )


@rule("CUDA_DEVICE_COUNT_FAILED", category="cuda_not_available")
def cuda_device_count_failed(facts: Facts) -> Finding | None:
    """cudaGetDeviceCount failures other than the driver errors (803/804/802/35) that driver.py explains."""
    lines = evidence(facts, DEVICE_COUNT, limit=1)
    if not lines or re.search(r"Error (80[234]|35)\b", " ".join(grep(facts, DEVICE_COUNT, limit=3))):
        return None
    code = re.search(r"Error (\d+)", lines[0])
    return Finding(
        "CUDA_DEVICE_COUNT_FAILED",
        "cuda_not_available",
        level(facts, DEVICE_COUNT, seen=0.8),
        "CUDA failed to count the GPUs" + (f" (error {code.group(1)})" if code else "") + ".",
        evidence=lines,
        fixes=[
            "run nvidia-smi in the same environment; error 999 (unknown) usually needs a reboot or a "
            "GPU reset after a driver fault (check dmesg for Xid lines)",
            *_container_fixes(facts)[:1],
        ],
    )


@rule("FORKED_CUDA_REINIT", category="other")
def forked_cuda_reinit(facts: Facts) -> Finding | None:
    rx = r"Cannot re-initialize CUDA in forked subprocess"
    lines = evidence(facts, rx, limit=1)
    if not lines:
        return None
    return Finding(
        "FORKED_CUDA_REINIT",
        "other",
        level(facts, rx),
        "CUDA was initialised before worker processes were forked.",
        evidence=lines,
        fixes=[
            "VLLM_WORKER_MULTIPROC_METHOD=spawn",
            "put the script's entry point under "
            "`if __name__ == '__main__':` and do not touch torch.cuda before creating the LLM",
        ],
    )
