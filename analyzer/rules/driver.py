"""The NVIDIA driver is too old or unusable for the CUDA runtime (category driver_insufficient)."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.knowledge import (
    cuda_major_minor,
    driver_below_toolkit,
    driver_floor_for_cuda,
    driver_for_cuda_toolkit,
    driver_too_old_for_cuda,
    max_cuda_for_driver,
)
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import HINT, SECONDARY, STRONG_HINT, evidence, gpu_caps, grep, has, level

INSUFFICIENT = (
    r"CUDA driver version is insufficient for CUDA runtime version|cudaErrorInsufficientDriver|"
    r"CUDA_ERROR_INSUFFICIENT_DRIVER|NVIDIA driver on your system is too old|Error 35: CUDA driver version"
)
ERR_804 = r"Error 804|forward compatibility was attempted on non supported HW|cudaErrorCompatNotSupportedOnDevice|CUDA_ERROR_COMPAT_NOT_SUPPORTED"
ERR_803 = r"Error 803|unsupported display driver / cuda driver combination|cudaErrorSystemDriverMismatch|CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"
NVML_MISMATCH = r"Driver/library version mismatch|NVML library version"
NOT_LOADED = (
    r"NVIDIA-SMI has failed because it couldn'?t communicate with the NVIDIA driver|"
    r"Found no NVIDIA driver on your system|NVIDIA kernel module .* not loaded|"
    r"cudaErrorNoDevice.*driver|couldn't find libnvidia-ml|libcuda\.so\.1: cannot open shared object file|"
    r"Failed to initialize NVML: (?!Driver/library)"
)
ERR_802 = r"Error 802|system not yet initialized|cudaErrorSystemNotReady"
PTX_TOOLCHAIN = r"provided PTX was compiled with an unsupported toolchain|CUDA_ERROR_UNSUPPORTED_PTX_VERSION|cudaErrorUnsupportedPtxVersion"
CONTAINER = r"docker|container|kubernetes|\bk8s\b|\bpod\b|podman|nvidia-container|--gpus|runtimeClassName|compose"

# Drivers NVIDIA itself listed with a CUDA-in-container defect; upgrading past them (not "to the newest") fixes it.
KNOWN_BAD_DRIVERS = {
    "555.85": "Windows 555.85 broke CUDA inside Docker Desktop / WSL containers until NVIDIA Container Toolkit 1.15 "
    "(Docker Desktop 4.31); update Docker Desktop or move to a later driver",
}


def _runtime_cuda(facts: Facts) -> str | None:
    """The CUDA runtime in use: torch's build, else a CUDA version named in an image tag."""
    if facts.torch_cuda:
        return facts.torch_cuda
    for line in grep(facts, r"cuda-?(1[1-3]\.\d)|\bcu(1[1-3]\d)\b", limit=3):
        m = re.search(r"cuda-?(1[1-3]\.\d)", line, re.IGNORECASE)
        if m:
            return m.group(1)
    return None


def _driver_state(facts: Facts) -> str:
    parts = []
    if facts.driver_version:
        parts.append(f"driver {facts.driver_version}")
    if facts.driver_cuda:
        parts.append(f"supports CUDA up to {facts.driver_cuda}")
    return ", ".join(parts)


def _driver_new_enough(facts: Facts, cuda: str | None) -> bool:
    too_old = driver_too_old_for_cuda(facts.driver_version, facts.driver_cuda, cuda)
    return too_old is False


def _upgrade_fix(cuda: str | None) -> str:
    floor = driver_for_cuda_toolkit(cuda)
    if floor:
        return f"install an NVIDIA driver >= {floor} (the one CUDA {cuda} ships with), then reboot"
    return "install a newer NVIDIA driver branch for the GPU, then reboot"


@rule("CUDA_DRIVER_INSUFFICIENT", category="driver_insufficient")
def cuda_driver_insufficient(facts: Facts) -> Finding | None:
    lines = evidence(facts, INSUFFICIENT, limit=2)
    if not lines:
        return None
    cuda = _runtime_cuda(facts)
    if _driver_new_enough(facts, cuda):
        # The host driver is fine; the process found another libcuda (compat package, wrong mount).
        return Finding(
            "CUDA_DRIVER_INSUFFICIENT",
            "driver_insufficient",
            level(facts, INSUFFICIENT),
            f"CUDA reports the driver as too old, although the host has {_driver_state(facts)}: the process "
            "is loading a different libcuda than the host driver's.",
            evidence=lines,
            fixes=[
                "look for a cuda-compat package or a libcuda.so copied into the image or LD_LIBRARY_PATH "
                "(ldconfig -p | grep libcuda) and remove it",
                "in containers, let the NVIDIA container toolkit inject the host driver (--gpus all / "
                "runtime nvidia) instead of baking libcuda into the image",
            ],
        )
    title = "The NVIDIA driver is older than the CUDA runtime this build needs"
    title += f" (CUDA {cuda}; {_driver_state(facts)})." if cuda and _driver_state(facts) else "."
    fixes = [_upgrade_fix(cuda)]
    if cuda:
        older = cuda_major_minor(facts.driver_cuda) if facts.driver_cuda else max_cuda_for_driver(facts.driver_version)
        if older:
            fixes.append(
                f"or install torch/vLLM builds for CUDA {older[0]}.{older[1]} or older, which this driver runs"
            )
    fixes.append(
        "datacenter GPUs only: VLLM_ENABLE_CUDA_COMPATIBILITY=1 with the cuda-compat package can run a newer "
        "CUDA on an older driver (not on GeForce / RTX workstation cards)"
    )
    return Finding(
        "CUDA_DRIVER_INSUFFICIENT",
        "driver_insufficient",
        level(facts, INSUFFICIENT),
        title,
        evidence=lines,
        fixes=fixes,
    )


@rule("CUDA_FORWARD_COMPAT_UNSUPPORTED", category="driver_insufficient")
def forward_compat_unsupported(facts: Facts) -> Finding | None:
    lines = evidence(facts, ERR_804, limit=2)
    if not lines:
        return None
    cuda = _runtime_cuda(facts)
    names = [name for name, _ in gpu_caps(facts)]
    consumer = any(re.search(r"GeForce|RTX|TITAN|Quadro", n, re.IGNORECASE) for n in names)
    fixes = [_upgrade_fix(cuda) + " on the host, so that no forward-compatibility libraries are needed"]
    fixes.append(
        "or use an image / wheels built for the CUDA version the host driver supports"
        + (f" (up to CUDA {facts.driver_cuda})" if facts.driver_cuda else " (nvidia-smi shows it as 'CUDA Version')")
    )
    fixes.append(
        "remove the cuda-compat libraries from the image or LD_LIBRARY_PATH: forward compatibility only works "
        "on datacenter GPUs" + (" and this is a consumer card" if consumer else "")
    )
    return Finding(
        "CUDA_FORWARD_COMPAT_UNSUPPORTED",
        "driver_insufficient",
        level(facts, ERR_804),
        "CUDA tried forward compatibility (a newer CUDA than the host driver, through compat libraries), "
        "which this GPU does not support (error 804).",
        evidence=lines,
        fixes=fixes,
    )


@rule("CUDA_DRIVER_COMBINATION_UNSUPPORTED", category="driver_insufficient")
def driver_combination_unsupported(facts: Facts) -> Finding | None:
    lines = evidence(facts, ERR_803, limit=2)
    if not lines:
        return None
    cuda = _runtime_cuda(facts)
    if _driver_new_enough(facts, cuda) or has(facts, CONTAINER):
        title = "The user-space driver library (libcuda) does not match the loaded kernel driver (error 803)" + (
            f"; the host driver itself is new enough ({_driver_state(facts)})."
            if _driver_new_enough(facts, cuda)
            else "."
        )
        fixes = [
            "in a container: do not ship or mount cuda-compat / libcuda in the image; let the NVIDIA container "
            "toolkit inject the host's libcuda (check `ldconfig -p | grep libcuda` inside the container)",
            "on the host: after a driver upgrade, reboot (or reload the nvidia kernel modules) so that library and "
            "module versions agree",
        ]
    else:
        title = "The driver stack is inconsistent or too old for this CUDA runtime (error 803)."
        fixes = ["reboot after a driver upgrade so the kernel module and libcuda match", _upgrade_fix(cuda)]
    return Finding(
        "CUDA_DRIVER_COMBINATION_UNSUPPORTED",
        "driver_insufficient",
        level(facts, ERR_803),
        title,
        evidence=lines,
        fixes=fixes,
    )


@rule("NVML_DRIVER_LIBRARY_MISMATCH", category="driver_insufficient")
def nvml_driver_library_mismatch(facts: Facts) -> Finding | None:
    lines = evidence(facts, NVML_MISMATCH, limit=2)
    if not lines:
        return None
    return Finding(
        "NVML_DRIVER_LIBRARY_MISMATCH",
        "driver_insufficient",
        level(facts, NVML_MISMATCH),
        "The NVIDIA kernel module and the user-space driver libraries have different versions, usually "
        "after a driver upgrade without a reboot.",
        evidence=lines,
        fixes=[
            "reboot the machine (or unload and reload the nvidia kernel modules once nothing uses the GPU)",
            "if it persists, a package manager left two driver versions installed: remove the stale one",
        ],
    )


@rule("NVIDIA_DRIVER_NOT_LOADED", category="driver_insufficient")
def nvidia_driver_not_loaded(facts: Facts) -> Finding | None:
    lines = evidence(facts, NOT_LOADED, limit=2)
    if not lines:
        return None
    if has(facts, CONTAINER):
        return None  # availability.py: the container has no GPU runtime
    return Finding(
        "NVIDIA_DRIVER_NOT_LOADED",
        "driver_insufficient",
        level(facts, NOT_LOADED),
        "The NVIDIA driver is not usable on this machine (not installed, not loaded, or its libraries are missing).",
        evidence=lines,
        fixes=[
            "check `nvidia-smi` and `lsmod | grep nvidia`; install or reinstall the driver for this kernel "
            "(DKMS rebuild after a kernel update) and reboot",
            "with Secure Boot on, the module must be signed (or Secure Boot disabled)",
        ],
    )


@rule("CUDA_SYSTEM_NOT_READY", category="driver_insufficient")
def cuda_system_not_ready(facts: Facts) -> Finding | None:
    lines = evidence(facts, ERR_802, limit=2)
    if not lines:
        return None
    return Finding(
        "CUDA_SYSTEM_NOT_READY",
        "driver_insufficient",
        level(facts, ERR_802),
        "CUDA reports the system as not yet initialized (error 802): on NVSwitch systems (HGX/DGX) the "
        "Fabric Manager is not running.",
        evidence=lines,
        fixes=[
            "start nvidia-fabricmanager (systemctl enable --now nvidia-fabricmanager); its version must "
            "equal the driver's exactly"
        ],
    )


@rule("PTX_TOOLCHAIN_NEWER_THAN_DRIVER", category="driver_insufficient")
def ptx_toolchain_newer_than_driver(facts: Facts) -> Finding | None:
    lines = evidence(facts, PTX_TOOLCHAIN, limit=2)
    if not lines:
        return None
    return Finding(
        "PTX_TOOLCHAIN_NEWER_THAN_DRIVER",
        "driver_insufficient",
        level(facts, PTX_TOOLCHAIN),
        "Code compiled to PTX by a newer CUDA toolchain (often Triton's bundled ptxas) cannot be loaded by "
        "this driver.",
        evidence=lines,
        fixes=[
            _upgrade_fix(_runtime_cuda(facts)),
            "or use a Triton/torch release built for the CUDA version your driver supports",
        ],
    )


@rule("DRIVER_OLDER_THAN_TORCH_CUDA", category="driver_insufficient", needs=("torch_cuda",))
def driver_older_than_torch_cuda(facts: Facts) -> Finding | None:
    """Cross-stack: nvidia-smi's CUDA version (or the driver version) is below what torch's CUDA build needs."""
    if has(facts, INSUFFICIENT):
        return None  # the direct rule says it with the error message
    too_old = driver_too_old_for_cuda(facts.driver_version, facts.driver_cuda, facts.torch_cuda)
    evid = evidence(facts, r"Driver Version|driver version|CUDA Version:|CUDA used to build PyTorch", limit=3)
    if too_old:
        floor = driver_floor_for_cuda(facts.torch_cuda)
        return Finding(
            "DRIVER_OLDER_THAN_TORCH_CUDA",
            "driver_insufficient",
            STRONG_HINT,
            f"torch is built for CUDA {facts.torch_cuda}, which needs a driver >= {floor}; this machine has "
            f"{_driver_state(facts)}.",
            evidence=evid,
            fixes=[
                _upgrade_fix(facts.torch_cuda),
                f"or install torch and vLLM builds for CUDA {facts.driver_cuda or 'the driver supports'}",
            ],
        )
    if driver_below_toolkit(facts.driver_cuda, facts.torch_cuda):
        return Finding(
            "DRIVER_OLDER_THAN_TORCH_CUDA",
            "driver_insufficient",
            SECONDARY,
            f"The driver supports CUDA {facts.driver_cuda}, older than torch's CUDA {facts.torch_cuda}: it "
            "runs through minor-version compatibility, but kernels JIT-compiled from newer PTX (Triton, "
            "torch.compile) can fail.",
            evidence=evid,
            fixes=[_upgrade_fix(facts.torch_cuda)],
        )
    return None


@rule("KNOWN_BAD_DRIVER", category="driver_insufficient")
def known_bad_driver(facts: Facts) -> Finding | None:
    versions = {facts.driver_version} if facts.driver_version else set()
    for line in grep(
        facts,
        r"(?<![\d.])\d{3}\.\d{2,3}(\.\d+)?(?![\d.]).*(driver|驱动)|(driver|驱动).*(?<![\d.])\d{3}\.\d{2}",
        limit=3,
    ):
        versions.update(re.findall(r"(?<![\d.])(\d{3}\.\d{2,3}(?:\.\d+)?)(?![\d.])", line))
    for version in versions:
        if version in KNOWN_BAD_DRIVERS:
            return Finding(
                "KNOWN_BAD_DRIVER",
                "driver_insufficient",
                HINT + 0.1,
                f"Driver {version} has a known defect that breaks CUDA in containers.",
                evidence=evidence(facts, re.escape(version), limit=2),
                fixes=[KNOWN_BAD_DRIVERS[version]],
            )
    return None
