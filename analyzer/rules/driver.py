"""The NVIDIA driver is too old or unusable for the CUDA runtime (category driver_insufficient)."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.knowledge import (
    cuda_major_minor,
    driver_below_toolkit,
    driver_floor_for_cuda,
    driver_for_cuda_toolkit,
    driver_too_old_for_cuda,
    max_cuda_for_driver,
)
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    HINT,
    SECONDARY,
    STRONG_HINT,
    evidence,
    gpu_caps,
    has,
    level,
    vllm_only,
    vllm_or_not,
)

CONSUMER_BRANDS = ("geforce", "rtx", "titan", "quadro")  # GPU name words of cards without forward compatibility

# Drivers NVIDIA itself listed with a CUDA-in-container defect; upgrading past them (not "to the newest") fixes it.
# Their versions are also the alternatives of the KNOWN_BAD_DRIVER_VERSION signal (data/signals/driver.json).
KNOWN_BAD_DRIVERS = {
    "555.85": "Windows 555.85 broke CUDA inside Docker Desktop / WSL containers until NVIDIA Container Toolkit 1.15 "
    "(Docker Desktop 4.31); update Docker Desktop or move to a later driver",
}


def _runtime_cuda(facts: Facts) -> str | None:
    """The CUDA runtime in use: torch's build, else a CUDA version named in an image tag."""
    if facts.torch_cuda:
        return facts.torch_cuda
    assert facts.signals is not None
    for hit in facts.signals.all("RUNTIME_CUDA_IN_NAME"):
        cuda = hit.groups.get("cuda") or hit.groups.get("cuda_later")
        if cuda:
            return cuda
    return None


def _in_container(facts: Facts) -> bool:
    return has(facts, "CONTAINER_MENTIONED", "DOCKER_GPUS_FLAG")


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


def driver_upgrade_fix(facts: Facts) -> str:
    """The driver that runs the facts' CUDA runtime (or a newer branch when the runtime is unknown)."""
    return _upgrade_fix(_runtime_cuda(facts))


@rule("CUDA_DRIVER_INSUFFICIENT", category="driver_insufficient", signals=("CUDA_DRIVER_INSUFFICIENT",))
def cuda_driver_insufficient(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "CUDA_DRIVER_INSUFFICIENT", limit=2)
    if not lines:
        return None
    cuda = _runtime_cuda(facts)
    if _driver_new_enough(facts, cuda):
        # The host driver is fine; the process found another libcuda (compat package, wrong mount).
        return Diagnosis(
            level(facts, "CUDA_DRIVER_INSUFFICIENT"),
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
                f"or install {vllm_or_not(facts, 'torch/vLLM builds', 'a torch build')} for CUDA {older[0]}.{older[1]} "
                "or older, which this driver runs"
            )
    fixes += vllm_only(
        facts,
        "datacenter GPUs only: VLLM_ENABLE_CUDA_COMPATIBILITY=1 with the cuda-compat package can run a newer "
        "CUDA on an older driver (not on GeForce / RTX workstation cards)",
    )
    return Diagnosis(
        level(facts, "CUDA_DRIVER_INSUFFICIENT"),
        title,
        evidence=lines,
        fixes=fixes,
    )


def _driver_cuda_torch_found(facts: Facts) -> tuple[int, int] | None:
    """The CUDA version of the driver that torch reported as too old ('found version 11040': 11.4)."""
    assert facts.signals is not None
    for hit in facts.signals.all("CUDA_DRIVER_INSUFFICIENT"):
        found = hit.groups.get("driver_api")
        if found:
            return int(found) // 1000, int(found) % 1000 // 10
    return None


@rule("DRIVER_LACKS_API_FUNCTION", category="driver_insufficient", signals=("DRIVER_API_SYMBOL_UNDEFINED",))
def driver_lacks_api_function(facts: Facts) -> Diagnosis | None:
    """A compiled extension needs a CUDA driver API function (cu<Name>, exported by the driver's libcuda.so) that
    the loaded libcuda.so lacks: the driver predates the CUDA the extension was built with (not an ABI mismatch
    with torch, which names a mangled C++ symbol)."""
    assert facts.signals is not None
    hit = facts.signals.first("DRIVER_API_SYMBOL_UNDEFINED")
    if hit is None:
        return None
    cuda = _runtime_cuda(facts)
    state = _driver_state(facts)
    title = (
        f"The NVIDIA driver's libcuda.so lacks the CUDA driver function {hit.groups['symbol']} that a compiled "
        "extension calls: the driver is older than the CUDA this build needs"
    )
    title += f" (CUDA {cuda}; {state})." if cuda and state else f" (CUDA {cuda})." if cuda else "."
    fixes = [_upgrade_fix(cuda)]
    older = max_cuda_for_driver(facts.driver_version) if facts.driver_version else _driver_cuda_torch_found(facts)
    fixes.append(
        f"or install {vllm_or_not(facts, 'torch/vLLM builds', 'builds')} for the CUDA version the driver supports"
        + (f" (CUDA {older[0]}.{older[1]} or older)" if older else " (nvidia-smi shows it as 'CUDA Version')")
    )
    fixes.append(
        "in a container, check that the host driver's libcuda.so is the one loaded (ldconfig -p | grep libcuda), "
        "not an older copy in the image"
    )
    return Diagnosis(level(facts, "DRIVER_API_SYMBOL_UNDEFINED"), title, evidence=[hit.line], fixes=fixes)


@rule("CUDA_FORWARD_COMPAT_UNSUPPORTED", category="driver_insufficient", signals=("CUDA_COMPAT_NOT_SUPPORTED",))
def forward_compat_unsupported(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "CUDA_COMPAT_NOT_SUPPORTED", limit=2)
    if not lines:
        return None
    cuda = _runtime_cuda(facts)
    names = [name.lower() for name, _ in gpu_caps(facts)]
    consumer = any(brand in name for name in names for brand in CONSUMER_BRANDS)
    fixes = [_upgrade_fix(cuda) + " on the host, so that no forward-compatibility libraries are needed"]
    fixes.append(
        "or use an image / wheels built for the CUDA version the host driver supports"
        + (f" (up to CUDA {facts.driver_cuda})" if facts.driver_cuda else " (nvidia-smi shows it as 'CUDA Version')")
    )
    fixes.append(
        "remove the cuda-compat libraries from the image or LD_LIBRARY_PATH: forward compatibility only works "
        "on datacenter GPUs" + (" and this is a consumer card" if consumer else "")
    )
    return Diagnosis(
        level(facts, "CUDA_COMPAT_NOT_SUPPORTED"),
        "CUDA tried forward compatibility (a newer CUDA than the host driver, through compat libraries), "
        "which this GPU does not support (error 804).",
        evidence=lines,
        fixes=fixes,
    )


@rule("CUDA_DRIVER_COMBINATION_UNSUPPORTED", category="driver_insufficient", signals=("CUDA_SYSTEM_DRIVER_MISMATCH",))
def driver_combination_unsupported(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "CUDA_SYSTEM_DRIVER_MISMATCH", limit=2)
    if not lines:
        return None
    cuda = _runtime_cuda(facts)
    if _driver_new_enough(facts, cuda) or _in_container(facts):
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
    return Diagnosis(
        level(facts, "CUDA_SYSTEM_DRIVER_MISMATCH"),
        title,
        evidence=lines,
        fixes=fixes,
    )


@rule("NVIDIA_DRIVER_NOT_LOADED", category="driver_insufficient", signals=("NVIDIA_DRIVER_NOT_LOADED",))
def nvidia_driver_not_loaded(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "NVIDIA_DRIVER_NOT_LOADED", limit=2)
    if not lines:
        return None
    if _in_container(facts):
        return None  # availability.py: the container has no GPU runtime
    return Diagnosis(
        level(facts, "NVIDIA_DRIVER_NOT_LOADED"),
        "The NVIDIA driver is not usable on this machine (not installed, not loaded, or its libraries are missing).",
        evidence=lines,
        fixes=[
            "check `nvidia-smi` and `lsmod | grep nvidia`; install or reinstall the driver for this kernel "
            "(DKMS rebuild after a kernel update) and reboot",
            "with Secure Boot on, the module must be signed (or Secure Boot disabled)",
        ],
    )


@rule("PTX_TOOLCHAIN_NEWER_THAN_DRIVER", category="driver_insufficient", signals=("PTX_UNSUPPORTED_TOOLCHAIN",))
def ptx_toolchain_newer_than_driver(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "PTX_UNSUPPORTED_TOOLCHAIN", limit=2)
    if not lines:
        return None
    return Diagnosis(
        level(facts, "PTX_UNSUPPORTED_TOOLCHAIN"),
        "Code compiled to PTX by a newer CUDA toolchain (often Triton's bundled ptxas) cannot be loaded by "
        "this driver.",
        evidence=lines,
        fixes=[
            _upgrade_fix(_runtime_cuda(facts)),
            "or use a Triton/torch release built for the CUDA version your driver supports",
        ],
    )


@rule("DRIVER_OLDER_THAN_TORCH_CUDA", category="driver_insufficient", needs=("torch_cuda",))
def driver_older_than_torch_cuda(facts: Facts) -> Diagnosis | None:
    """Cross-stack: nvidia-smi's CUDA version (or the driver version) is below what torch's CUDA build needs."""
    if has(facts, "CUDA_DRIVER_INSUFFICIENT"):
        return None  # the direct rule says it with the error message
    too_old = driver_too_old_for_cuda(facts.driver_version, facts.driver_cuda, facts.torch_cuda)
    evid = evidence(facts, "DRIVER_VERSION_LINE", limit=3)
    if too_old:
        floor = driver_floor_for_cuda(facts.torch_cuda)
        return Diagnosis(
            STRONG_HINT,
            f"torch is built for CUDA {facts.torch_cuda}, which needs a driver >= {floor}; this machine has "
            f"{_driver_state(facts)}.",
            evidence=evid,
            fixes=[
                _upgrade_fix(facts.torch_cuda),
                f"or install {vllm_or_not(facts, 'torch and vLLM builds', 'a torch build')} for CUDA "
                f"{facts.driver_cuda or 'the driver supports'}",
            ],
        )
    if driver_below_toolkit(facts.driver_cuda, facts.torch_cuda):
        return Diagnosis(
            SECONDARY,
            f"The driver supports CUDA {facts.driver_cuda}, older than torch's CUDA {facts.torch_cuda}: it "
            "runs through minor-version compatibility, but kernels JIT-compiled from newer PTX (Triton, "
            "torch.compile) can fail.",
            evidence=evid,
            fixes=[_upgrade_fix(facts.torch_cuda)],
        )
    return None


@rule("KNOWN_BAD_DRIVER", category="driver_insufficient")
def known_bad_driver(facts: Facts) -> Diagnosis | None:
    assert facts.signals is not None
    mentioned = [
        hit.groups.get("version") or hit.groups.get("version_after")
        for hit in facts.signals.all("KNOWN_BAD_DRIVER_VERSION")
    ]
    for version in [facts.driver_version, *mentioned]:
        if version in KNOWN_BAD_DRIVERS:
            return Diagnosis(
                HINT + 0.1,
                f"Driver {version} has a known defect that breaks CUDA in containers.",
                evidence=evidence(facts, "KNOWN_BAD_DRIVER_VERSION", limit=2),
                fixes=[KNOWN_BAD_DRIVERS[version]],
            )
    return None
