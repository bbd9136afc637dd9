"""No GPU visible to CUDA: hidden devices, containers without a GPU runtime, CPU builds (cuda_not_available)."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    DIRECT,
    ROOT,
    STRONG_HINT,
    env_value,
    evidence,
    gpu_count,
    has,
    level,
    parallel_size,
    vllm_only,
    vllm_or_not,
)

# cudaGetDeviceCount codes that are driver problems (35, 802-804): driver.py explains those.
DRIVER_ERROR_CODES = ("35", "802", "803", "804")
# What a process says when CUDA shows it fewer GPUs than it needs.
GPU_MISSING_SIGNALS = ("NO_CUDA_GPUS", "DEVICE_INFERENCE_FAILED", "GPU_INDEX_BEYOND_VISIBLE")
ENTRY_WORDS = {
    "gpu_uuid": "a GPU UUID",
    "mig": "a MIG device",
    "unknown": "an entry that is neither an index nor a UUID",
}


def visible_devices_problem(facts: Facts) -> tuple[int, dict] | None:
    """(position, entry) of the first CUDA_VISIBLE_DEVICES entry that names no GPU NVML sees, when CUDA showed
    the program fewer GPUs because of it (torch's device count, or the program's own words)."""
    record = facts.visible_devices
    if not record or not record.get("nvml_gpu_count"):
        return None
    entries = [entry for entry in record.get("entries") or [] if isinstance(entry, dict)]
    position = next((i for i, entry in enumerate(entries) if entry.get("outcome") != "ok"), None)
    if position is None or entries[position].get("outcome") == "unchecked":
        return None
    short = facts.torch_device_count is not None and facts.torch_device_count == position
    return (position, entries[position]) if short or has(facts, *GPU_MISSING_SIGNALS) else None


def _entry_words(entry: dict) -> str:
    if entry.get("kind") == "index":
        return f"GPU index {entry.get('entry')}"
    if entry.get("outcome") == "ambiguous":
        return f"a GPU UUID prefix shared by {len(entry.get('matches') or [])} GPUs"
    return ENTRY_WORDS.get(str(entry.get("kind")), "an entry")


@rule("CUDA_VISIBLE_DEVICES_NAMES_NO_GPU", category="cuda_not_available", needs=("visible_devices",))
def cuda_visible_devices_names_no_gpu(facts: Facts) -> Diagnosis | None:
    """Cross-layer: NVML sees GPUs, but CUDA_VISIBLE_DEVICES names none of them, so CUDA shows the program none."""
    found = visible_devices_problem(facts)
    if found is None:
        return None
    position, entry = found
    seen = int(facts.visible_devices["nvml_gpu_count"])  # type: ignore[index]
    names = sorted({gpu.name for gpu in facts.gpus if gpu.name})
    on_machine = f"the {seen} GPU{'s' if seen != 1 else ''} NVML sees" + (f" ({', '.join(names)})" if names else "")
    what = _entry_words(entry)
    if position == 0:
        title = f"CUDA_VISIBLE_DEVICES names {what}, which matches none of {on_machine}, so CUDA sees no GPU."
    else:
        title = (
            f"Entry {position + 1} of CUDA_VISIBLE_DEVICES ({what}) matches none of {on_machine}: CUDA ignores it "
            f"and every entry after it, so only {position} GPU{'s are' if position != 1 else ' is'} visible."
        )
    fixes = [
        f"set CUDA_VISIBLE_DEVICES to {'index 0' if seen == 1 else f'GPU indices from 0 to {seen - 1}'}, or to UUIDs "
        "exactly as `nvidia-smi -L` prints them (MIG devices as MIG-<uuid>), or unset it to use every GPU",
        "a UUID copied from another machine, or from before the GPU was replaced or the machine was re-provisioned, "
        "names nothing here",
    ]
    value = env_value(facts, "CUDA_VISIBLE_DEVICES")
    said = evidence(facts, *GPU_MISSING_SIGNALS, limit=2)
    return Diagnosis(
        level(facts, *GPU_MISSING_SIGNALS, root=ROOT + 0.02, seen=DIRECT + 0.02) if said else STRONG_HINT + 0.1,
        title,
        evidence=said + ([f"CUDA_VISIBLE_DEVICES={value}"] if value is not None else []),
        fixes=fixes,
        details={"entry": entry, "visible_count": position, "nvml_gpu_count": seen},
    )


def _is_index(value: str) -> bool:
    """Whether a CUDA_VISIBLE_DEVICES entry is a device index (digits, spaces around them allowed)."""
    digits = value.strip()
    return digits.isdecimal() and len(digits) <= 9


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


def container_fixes(facts: Facts) -> list[str]:
    return [
        "in Docker: run with --gpus all (or --runtime nvidia) and check that `nvidia-smi` works inside the container",
        "in Kubernetes: request nvidia.com/gpu in the pod's resources and set runtimeClassName: nvidia where the "
        "cluster uses one",
    ]


def _cpu_build(facts: Facts) -> bool:
    torch = facts.torch_version or facts.package("torch") or ""
    return (
        torch.endswith("+cpu") or (facts.torch_cuda in ("None", "none")) or has(facts, "TORCH_NOT_COMPILED_WITH_CUDA")
    )


@rule("TORCH_CPU_BUILD", category="cuda_not_available")
def torch_cpu_build(facts: Facts) -> Diagnosis | None:
    if not _cpu_build(facts):
        return None
    windows = has(facts, "WINDOWS_MENTIONED")
    fixes = [
        vllm_or_not(
            facts,
            "install a CUDA build of torch; the simplest is to install vLLM into a fresh environment and let it pull "
            "its own torch (pip install vllm)",
            "install a CUDA build of torch (the command for your CUDA version is on pytorch.org: pip install torch "
            "--index-url https://download.pytorch.org/whl/cu128, say)",
        )
    ]
    if windows:
        fixes.insert(
            0,
            "vLLM has no native Windows CUDA build: run it under WSL2 or Linux (or in the "
            "vllm/vllm-openai container with Docker Desktop's WSL2 backend)",
        )
    return Diagnosis(
        level(facts, "TORCH_CPU_BUILD_STATED", seen=0.9)
        if has(facts, "DEVICE_INFERENCE_FAILED", "NO_CUDA_GPUS", "TORCH_CPU_BUILD_STATED")
        else STRONG_HINT,
        f"torch {facts.torch_version or ''} is a CPU-only build, so CUDA can never be used.".replace("  ", " ")
        + (" The system is native Windows." if windows else ""),
        evidence=evidence(facts, "TORCH_CPU_BUILD_STATED", "WINDOWS_MENTIONED", limit=3),
        fixes=fixes,
    )


@rule("CUDA_VISIBLE_DEVICES_HIDES_GPUS", category="cuda_not_available")
def cuda_visible_devices_hides_gpus(facts: Facts) -> Diagnosis | None:
    visible = _visible_count(facts)
    if visible is None or visible_devices_problem(facts) is not None:
        return None
    need = parallel_size(facts)
    present = gpu_count(facts)
    value = env_value(facts, "CUDA_VISIBLE_DEVICES")
    ev = evidence(facts, "CUDA_VISIBLE_DEVICES_MENTIONED", limit=2)
    if visible == 0:
        return Diagnosis(
            0.9,
            f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU from CUDA.",
            evidence=ev,
            fixes=["unset CUDA_VISIBLE_DEVICES, or set it to the GPU indices to use (e.g. 0,1)"],
        )
    if need and visible < need:
        return Diagnosis(
            0.85,
            f"CUDA_VISIBLE_DEVICES={value} exposes {visible} GPU(s), but tensor x pipeline parallel size "
            f"asks for {need}.",
            evidence=ev,
            fixes=[
                f"expose {need} GPUs (e.g. CUDA_VISIBLE_DEVICES={_first_indices(need)}) "
                f"or lower --tensor-parallel-size to {visible}"
            ],
        )
    if present and value and all(_is_index(v) for v in value.split(",")):
        too_high = [v for v in value.split(",") if int(v) >= present]
        if too_high:
            return Diagnosis(
                STRONG_HINT,
                f"CUDA_VISIBLE_DEVICES names GPU {', '.join(too_high)}, but the machine has {present} GPU(s) "
                f"(indices 0-{present - 1}).",
                evidence=ev,
                fixes=["use indices that exist (nvidia-smi -L lists them)"],
            )
    return None


@rule("TOO_FEW_GPUS_FOR_PARALLELISM", category="cuda_not_available", signals=("GPU_INDEX_BEYOND_VISIBLE",))
def too_few_gpus_for_parallelism(facts: Facts) -> Diagnosis | None:
    """More GPUs requested than visible: invalid device ordinal, NVML invalid argument, Ray placement groups."""
    lines = evidence(facts, "GPU_INDEX_BEYOND_VISIBLE", limit=2)
    if (
        not lines
        or visible_devices_problem(facts) is not None
        or _visible_count(facts) is not None
        and has(facts, "CUDA_VISIBLE_DEVICES_MENTIONED")
        and cuda_visible_devices_hides_gpus(facts) is not None
    ):
        return None
    need = parallel_size(facts)
    return Diagnosis(
        level(facts, "GPU_INDEX_BEYOND_VISIBLE", seen=0.8),
        "A GPU index beyond the visible devices was used: the run asks for more GPUs than CUDA can see"
        + (f" (tensor x pipeline parallel = {need})." if need else "."),
        evidence=lines,
        fixes=[
            "check CUDA_VISIBLE_DEVICES (and docker --gpus / the pod's GPU request): it must expose at "
            + vllm_or_not(
                facts,
                "least tensor-parallel-size x pipeline-parallel-size GPUs",
                "least as many GPUs as the program uses (device indices start at 0)",
            ),
            *vllm_only(facts, "or lower --tensor-parallel-size to the number of visible GPUs"),
            "with Ray: `ray status` must show enough GPUs in the cluster",
        ],
    )


# An engine on vLLM's UnspecifiedPlatform always stops at 'Failed to infer device type', so the platform line alone
# says what failed, though less directly than the error.
NO_PLATFORM_CONFIDENCE = 0.8


@rule("FAILED_TO_INFER_DEVICE", category="cuda_not_available", signals=("DEVICE_INFERENCE_FAILED", "VLLM_NO_PLATFORM"))
def failed_to_infer_device(facts: Facts) -> Diagnosis | None:
    raised = has(facts, "DEVICE_INFERENCE_FAILED")
    lines = evidence(facts, "DEVICE_INFERENCE_FAILED" if raised else "VLLM_NO_PLATFORM", limit=2)
    if not lines or visible_devices_problem(facts) is not None:
        return None  # without a GPU, vLLM's platform detection fails; the device list says why
    if not raised and _platform_warning_explains(facts):
        return None
    fixes = []
    if _cpu_build(facts):
        fixes.append("torch here is a CPU-only build: install a CUDA build (see the torch finding)")
    if has(facts, "CONTAINER_MENTIONED"):
        fixes += container_fixes(facts)
    if has(facts, "VLLM_NO_PLATFORM"):
        fixes.append(
            "vLLM recognises a CUDA machine through NVML: `python -c 'import pynvml; pynvml.nvmlInit(); "
            "print(pynvml.nvmlDeviceGetCount())'` must work where vLLM runs; if libnvidia-ml.so is not found, put "
            "the driver's library folder on LD_LIBRARY_PATH (GKE's device plugin mounts it at /usr/local/nvidia/lib64)"
        )
    fixes += [
        "check that `python -c 'import torch; print(torch.cuda.is_available())'` prints True in the same "
        "environment; if not, the driver or the GPU passthrough is the problem",
        "make sure CUDA_VISIBLE_DEVICES is unset or names existing GPUs",
        "VLLM_LOGGING_LEVEL=DEBUG shows why each platform plugin was rejected",
    ]
    return Diagnosis(
        level(facts, "DEVICE_INFERENCE_FAILED")
        if raised
        else level(facts, "VLLM_NO_PLATFORM", seen=NO_PLATFORM_CONFIDENCE),
        "vLLM found no usable accelerator platform: CUDA is not available to this process.",
        evidence=lines,
        fixes=fixes,
    )


def _platform_warning_explains(facts: Facts) -> bool:
    """Whether vLLM's logged 'No platform detected' line, followed by another error, is already the inferred cause
    of rules/warnings.py (which says it rests on vLLM's log)."""
    from vllm_bug.analyzer.rules.warnings import inferred_cause

    return inferred_cause("no_gpu_platform", facts) is not None


@rule("NO_CUDA_GPUS", category="cuda_not_available", signals=("NO_CUDA_GPUS",))
def no_cuda_gpus(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "NO_CUDA_GPUS", limit=2)
    if not lines or visible_devices_problem(facts) is not None:
        return None  # the device list explains it, and nvidia-smi listing the GPU would not help
    fixes = []
    visible = _visible_count(facts)
    if visible == 0:
        fixes.append("CUDA_VISIBLE_DEVICES hides every GPU: unset it")
    if has(facts, "CONTAINER_MENTIONED", "WSL_MENTIONED"):
        fixes += container_fixes(facts)
    if has(facts, "WSL_MENTIONED", "WINDOWS_HOSTNAME"):
        fixes.append(
            "under WSL2 / Docker Desktop, GPU access needs a current Windows driver and Docker Desktop with "
            "the WSL2 backend; check `nvidia-smi` inside the container, not only in WSL"
        )
    fixes.append(
        "check that nvidia-smi lists the GPU in the same environment that runs "
        + vllm_or_not(facts, "vLLM", "the program")
    )
    return Diagnosis(
        level(facts, "NO_CUDA_GPUS"),
        "CUDA sees no GPU in this process.",
        evidence=lines,
        fixes=fixes,
    )


@rule("CUDA_DEVICE_COUNT_FAILED", category="cuda_not_available", signals=("CUDA_DEVICE_COUNT_FAILED",))
def cuda_device_count_failed(facts: Facts) -> Diagnosis | None:
    """cudaGetDeviceCount failures other than the driver errors (803/804/802/35) that driver.py explains."""
    lines = evidence(facts, "CUDA_DEVICE_COUNT_FAILED", limit=1)
    assert facts.signals is not None
    codes = [hit.groups.get("code") for hit in facts.signals.all("CUDA_DEVICE_COUNT_FAILED")[:3]]
    if not lines or any(code in DRIVER_ERROR_CODES for code in codes):
        return None
    code = codes[0]
    return Diagnosis(
        level(facts, "CUDA_DEVICE_COUNT_FAILED", seen=0.8),
        "CUDA failed to count the GPUs" + (f" (error {code})" if code else "") + ".",
        evidence=lines,
        fixes=[
            "run nvidia-smi in the same environment; error 999 (unknown) usually needs a reboot or a "
            "GPU reset after a driver fault (check dmesg for Xid lines)",
            *container_fixes(facts)[:1],
        ],
    )
