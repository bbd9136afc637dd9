"""GPU and driver facts: NVML first, `nvidia-smi --query-gpu` when NVML is unusable, plus raw nvidia-smi text.

Nothing here creates a CUDA context. NVML sees every GPU in PCI order whatever CUDA_VISIBLE_DEVICES
says, so each GPU carries its pci_bus_id. Every NVML read is wrapped: a failing field lands in
gpu["errors"][field] as the NVML error's name, and the other fields are still read.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vllm_bug.bundler import nvidia_smi as smi
from vllm_bug.bundler.runner import CommandResult, Manifest, ProbeRecord, run_command, run_python_probe
from vllm_bug.bundler.visible_devices import MigDevice, SeenGpus, check_visible_devices
from vllm_bug.formats import nvidia_smi as smi_format

MAX_GPUS = 256
MAX_PROCESSES = 1024
MAX_PEER_GPUS = 16  # pairwise topology is read only for the first 16 GPUs
TEXT_LIMITS = {"plain": 262144, "query": 1048576, "topo": 262144, "query_csv": 262144}

COMPUTE_MODES = {0: "Default", 1: "Exclusive_Thread", 2: "Prohibited", 3: "Exclusive_Process"}
TOPOLOGY_LEVELS = {0: "INTERNAL", 10: "SINGLE", 20: "MULTIPLE", 30: "HOSTBRIDGE", 40: "NODE", 50: "SYSTEM"}
P2P_STATUSES = {
    0: "OK",
    1: "CHIPSET_NOT_SUPPORTED",
    2: "GPU_NOT_SUPPORTED",
    3: "IOH_TOPOLOGY_NOT_SUPPORTED",
    4: "DISABLED_BY_REGKEY",
    5: "NOT_SUPPORTED",
    6: "UNKNOWN",
}
CLOCK_EVENT_BITS = (
    (0x1, "GpuIdle"),
    (0x2, "ApplicationsClocksSetting"),
    (0x4, "SwPowerCap"),
    (0x8, "HwSlowdown"),
    (0x10, "SyncBoost"),
    (0x20, "SwThermalSlowdown"),
    (0x40, "HwThermalSlowdown"),
    (0x80, "HwPowerBrakeSlowdown"),
    (0x100, "DisplayClockSetting"),
    (0x200, "BoardLimit"),
    (0x400, "Reliability"),
)

# NVML enum values passed as literals: the binding's own constants are not all plain ints
# (NVML_P2P_CAPS_INDEX_READ is a tuple) and a fake module need not define them.
_TEMPERATURE_GPU = 0
_UNCORRECTED = 1
_VOLATILE, _AGGREGATE = 0, 1
_RETIRED_SINGLE_BIT, _RETIRED_DOUBLE_BIT = 0, 1
_P2P_NVLINK = 2
_NVLINK_LINKS_FALLBACK = 18
_LIBRARY_ABSENT = ("NVMLError_LibraryNotFound", "ImportError", "ModuleNotFoundError")

NVIDIA_SMI_DIRS = ("/usr/bin", "/usr/local/nvidia/bin", "/usr/lib/wsl/lib", "/opt/nvidia/bin")


@dataclass
class NvmlReading:
    gpus: list[dict[str, Any]] = field(default_factory=list)
    driver: dict[str, Any] = field(default_factory=dict)
    init_error: str | None = None
    library_absent: bool = False
    seen: SeenGpus | None = None  # the UUIDs in the clear, for the CUDA_VISIBLE_DEVICES check only

    @property
    def usable(self) -> bool:
        return self.init_error is None


# -- small helpers -------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\x00")
    return str(value)


def _error_name(exc: BaseException) -> str:
    return type(exc).__name__


def _error_text(where: str, exc: BaseException) -> str:
    try:
        detail = str(exc)
    except Exception:  # noqa: BLE001 - str() of an NVMLError can itself call into NVML
        detail = ""
    return f"{where}: {_error_name(exc)}" + (f" ({detail})" if detail else "")


def cuda_version_from_int(value: int) -> str:
    """NVML's 13000 -> "13.0", 12040 -> "12.4"."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def clock_event_names(mask: int) -> list[str]:
    names = [name for bit, name in CLOCK_EVENT_BITS if mask & bit]
    known = 0
    for bit, _ in CLOCK_EVENT_BITS:
        known |= bit
    if mask & ~known:
        names.append(f"Unknown(0x{mask & ~known:x})")
    return names


class _Reader:
    """Calls NVML functions by name; a failure is stored under its field and returns None."""

    def __init__(self, nvml: Any, errors: dict[str, str]):
        self.nvml = nvml
        self.errors = errors

    def attempt(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Call without recording: raises what NVML raised (AttributeError when the binding lacks it)."""
        return getattr(self.nvml, function)(*args, **kwargs)

    def read(self, name: str, function: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.attempt(function, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every NVML failure is data
            self.errors[name] = _field_error(exc, function)
            return None


def _field_error(exc: BaseException, function: str) -> str:
    if isinstance(exc, AttributeError):
        return f"FunctionNotFound: the NVML binding has no {function}"
    return _error_name(exc)[:1000]


# -- NVML ------------------------------------------------------------------------------------


def import_nvml() -> Any:
    """nvidia-ml-py's pynvml, else the copy vLLM vendors (loaded by path: vllm itself is never imported)."""
    try:
        import pynvml  # noqa: PLC0415 - kept off the CLI start-up path

        return pynvml
    except ImportError:
        pass
    spec = importlib.util.find_spec("vllm")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = os.path.join(folder, "third_party", "pynvml.py")
            if os.path.isfile(path):
                return _load_module_from(path, "vllm_bug_vendored_pynvml")
    raise ImportError("no NVML binding: neither nvidia-ml-py nor vllm's vendored pynvml is installed")


def _load_module_from(path: str, name: str) -> Any:
    """Load a single-file module by path; it is registered first, as pynvml looks itself up in sys.modules."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {name} from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def read_nvml(nvml: Any = None) -> NvmlReading:
    """Everything NVML says about the driver and each GPU. Never raises; init is always paired with shutdown."""
    try:
        nvml = import_nvml() if nvml is None else nvml
    except Exception as exc:  # noqa: BLE001
        return NvmlReading(init_error=_error_text("import pynvml", exc), library_absent=True)
    try:
        nvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001
        return NvmlReading(init_error=_error_text("nvmlInit", exc), library_absent=_error_name(exc) in _LIBRARY_ABSENT)
    try:
        return _read_initialised(nvml)
    finally:
        with contextlib.suppress(Exception):  # nothing useful to do if shutdown fails
            nvml.nvmlShutdown()


def _read_initialised(nvml: Any) -> NvmlReading:
    driver_errors: dict[str, str] = {}
    reader = _Reader(nvml, driver_errors)
    cuda_int = reader.read("cuda_version", "nvmlSystemGetCudaDriverVersion")
    driver: dict[str, Any] = {
        "version": smi.capped(_text(reader.read("version", "nvmlSystemGetDriverVersion")), 64),
        "cuda_version": cuda_version_from_int(int(cuda_int)) if isinstance(cuda_int, int) else None,
        "nvml_version": smi.capped(_text(reader.read("nvml_version", "nvmlSystemGetNVMLVersion")), 64),
        "source": "nvml",
        "error": None,
    }
    count = reader.read("device_count", "nvmlDeviceGetCount")
    gpus: list[dict[str, Any]] = []
    handles: list[Any] = []
    uuids: list[str | None] = []
    for index in range(min(int(count or 0), MAX_GPUS)):
        gpu, handle = read_gpu(nvml, index, uuids)
        gpus.append(gpu)
        handles.append(handle)
    _add_peers(nvml, gpus, handles)
    if driver_errors:
        driver["errors"] = driver_errors
    mig_devices, mig_complete = _mig_devices(nvml, gpus, handles)
    seen = SeenGpus(uuids, mig_devices, mig_complete) if count is not None else None
    return NvmlReading(gpus=gpus, driver=driver, seen=seen)


def read_gpu(nvml: Any, index: int, uuids: list[str | None] | None = None) -> tuple[dict[str, Any], Any]:
    """One GPU's facts (schema 'gpus' item) and its NVML handle (None when it could not be had).

    The GPU's UUID itself is recorded only as a hash; `uuids`, when given, gets it in the clear."""
    errors: dict[str, str] = {}
    gpu: dict[str, Any] = {"index": index, "name": None, "errors": errors, "source": "nvml"}
    reader = _Reader(nvml, errors)
    handle = reader.read("handle", "nvmlDeviceGetHandleByIndex", index)
    if handle is None:
        if uuids is not None:
            uuids.append(None)
        return gpu, None
    gpu["name"] = smi.capped(_text(reader.read("name", "nvmlDeviceGetName", handle)), 256)
    capability = reader.read("compute_capability", "nvmlDeviceGetCudaComputeCapability", handle)
    gpu["compute_capability"] = f"{capability[0]}.{capability[1]}" if capability else None
    gpu.update(_memory(reader, handle))
    pci = reader.read("pci_bus_id", "nvmlDeviceGetPciInfo", handle)
    gpu["pci_bus_id"] = smi.capped(_text(getattr(pci, "busId", None)), 64) if pci is not None else None
    uuid = _text(reader.read("uuid_hash", "nvmlDeviceGetUUID", handle))
    gpu["uuid_hash"] = smi.identifier_hash(uuid) if uuid else None
    if uuids is not None:
        uuids.append(uuid or None)
    persistence = reader.read("persistence_mode", "nvmlDeviceGetPersistenceMode", handle)
    gpu["persistence_mode"] = None if persistence is None else persistence == 1
    compute_mode = reader.read("compute_mode", "nvmlDeviceGetComputeMode", handle)
    gpu["compute_mode"] = None if compute_mode is None else COMPUTE_MODES.get(compute_mode, str(compute_mode))
    mig = reader.read("mig_mode", "nvmlDeviceGetMigMode", handle)
    gpu["mig_mode"] = {"current": mig[0] == 1, "pending": mig[1] == 1} if mig else None
    gpu["ecc"] = _ecc(reader, handle)
    rows = reader.read("remapped_rows", "nvmlDeviceGetRemappedRows", handle)
    gpu["remapped_rows"] = (
        {"correctable": rows[0], "uncorrectable": rows[1], "pending": bool(rows[2]), "failure": bool(rows[3])}
        if rows
        else None
    )
    gpu["retired_pages"] = _retired_pages(reader, handle)
    gpu["clock_event_reasons"] = _clock_events(reader, handle)
    gpu["temperature_c"] = reader.read("temperature_c", "nvmlDeviceGetTemperature", handle, _TEMPERATURE_GPU)
    power = reader.read("power_w", "nvmlDeviceGetPowerUsage", handle)
    gpu["power_w"] = round(power / 1000.0, 3) if power is not None else None
    limit = reader.read("power_limit_w", "nvmlDeviceGetEnforcedPowerLimit", handle)
    gpu["power_limit_w"] = round(limit / 1000.0, 3) if limit is not None else None
    gpu["processes"] = _processes(reader, handle)
    gpu["nvlinks_up"] = _nvlinks_up(reader, handle)
    return gpu, handle


def _memory(reader: _Reader, handle: Any) -> dict[str, Any]:
    # Version 2 separates driver-reserved memory from "used" (as nvidia-smi shows it); old drivers lack it.
    version2 = getattr(reader.nvml, "nvmlMemory_v2", None)
    info = None
    if version2 is not None:
        try:
            info = reader.attempt("nvmlDeviceGetMemoryInfo", handle, version=version2)
        except Exception:  # noqa: BLE001 - fall back to version 1 below
            info = None
    if info is None:
        info = reader.read("memory", "nvmlDeviceGetMemoryInfo", handle)
    out: dict[str, int | None] = {"memory_total_bytes": None, "memory_used_bytes": None, "memory_free_bytes": None}
    if info is not None:
        out = {
            "memory_total_bytes": _int_or_none(getattr(info, "total", None)),
            "memory_used_bytes": _int_or_none(getattr(info, "used", None)),
            "memory_free_bytes": _int_or_none(getattr(info, "free", None)),
        }
        reserved = _int_or_none(getattr(info, "reserved", None))
        if reserved is not None:
            out["memory_reserved_bytes"] = reserved
    return out


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _ecc(reader: _Reader, handle: Any) -> dict[str, Any] | None:
    mode = reader.read("ecc_mode", "nvmlDeviceGetEccMode", handle)
    volatile = reader.read("ecc_volatile_uncorrected", "nvmlDeviceGetTotalEccErrors", handle, _UNCORRECTED, _VOLATILE)
    aggregate = reader.read(
        "ecc_aggregate_uncorrected", "nvmlDeviceGetTotalEccErrors", handle, _UNCORRECTED, _AGGREGATE
    )
    if mode is None and volatile is None and aggregate is None:
        return None
    return {
        "mode_current": None if mode is None else mode[0] == 1,
        "mode_pending": None if mode is None else mode[1] == 1,
        "volatile_uncorrected": volatile,
        "aggregate_uncorrected": aggregate,
    }


def _retired_pages(reader: _Reader, handle: Any) -> dict[str, Any] | None:
    """Page retirement exists before Ampere only; later GPUs answer NotSupported (recorded once)."""
    single = reader.read("retired_pages", "nvmlDeviceGetRetiredPages", handle, _RETIRED_SINGLE_BIT)
    if single is None:
        return None
    double = reader.read("retired_pages", "nvmlDeviceGetRetiredPages", handle, _RETIRED_DOUBLE_BIT)
    pending = reader.read("retired_pages_pending", "nvmlDeviceGetRetiredPagesPendingStatus", handle)
    return {
        "single_bit": len(single),
        "double_bit": None if double is None else len(double),
        "pending": None if pending is None else bool(pending),
    }


def _clock_events(reader: _Reader, handle: Any) -> list[str] | None:
    try:
        mask = reader.attempt("nvmlDeviceGetCurrentClocksEventReasons", handle)
    except Exception:  # noqa: BLE001 - older bindings and drivers: the deprecated name below
        mask = reader.read("clock_event_reasons", "nvmlDeviceGetCurrentClocksThrottleReasons", handle)
    return clock_event_names(int(mask)) if mask is not None else None


def _processes(reader: _Reader, handle: Any) -> list[dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for function in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        kind = "compute" if "Compute" in function else "graphics"
        for proc in reader.read(f"processes_{kind}", function, handle) or []:
            pid = _int_or_none(getattr(proc, "pid", None))
            if pid is None or pid in found or len(found) >= MAX_PROCESSES:
                continue
            try:
                name = _text(reader.attempt("nvmlSystemGetProcessName", pid))
            except Exception:  # noqa: BLE001 - a host pid invisible from a container, or gone
                name = None
            found[pid] = {
                "pid": pid,
                "used_memory_bytes": _int_or_none(getattr(proc, "usedGpuMemory", None)),
                "name": name[:1024] if name else None,
                "type": kind,
            }
    return list(found.values())


def _nvlinks_up(reader: _Reader, handle: Any) -> int | None:
    links = getattr(reader.nvml, "NVML_NVLINK_MAX_LINKS", _NVLINK_LINKS_FALLBACK)
    active = 0
    for link in range(int(links) if isinstance(links, int) else _NVLINK_LINKS_FALLBACK):
        try:
            state = reader.attempt("nvmlDeviceGetNvLinkState", handle, link)
        except Exception as exc:  # noqa: BLE001 - NotSupported/InvalidArgument: no (more) links
            if link == 0 and _error_name(exc) not in ("NVMLError_NotSupported", "NVMLError_InvalidArgument"):
                reader.errors["nvlinks_up"] = _field_error(exc, "nvmlDeviceGetNvLinkState")
                return None
            break
        active += 1 if state == 1 else 0
    return active


def _mig_devices(nvml: Any, gpus: list[dict[str, Any]], handles: list[Any]) -> tuple[list[MigDevice], bool]:
    """The MIG devices of every GPU in MIG mode, and whether all of them could be read."""
    found: list[MigDevice] = []
    complete = True
    for gpu, handle in zip(gpus, handles, strict=True):
        if not (gpu.get("mig_mode") or {}).get("current"):
            continue
        try:
            slots = int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))
        except Exception:  # noqa: BLE001 - an old binding or driver: the MIG entries stay unchecked
            complete = False
            continue
        for slot in range(min(slots, MAX_GPUS)):
            try:
                mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            except Exception as exc:  # noqa: BLE001 - NotFound: an empty slot
                complete = complete and _error_name(exc) == "NVMLError_NotFound"
                continue
            found.append(
                MigDevice(
                    gpu["index"],
                    _optional(nvml, "nvmlDeviceGetUUID", mig),
                    _optional(nvml, "nvmlDeviceGetGpuInstanceId", mig),
                    _optional(nvml, "nvmlDeviceGetComputeInstanceId", mig),
                )
            )
    return found, complete


def _optional(nvml: Any, function: str, handle: Any) -> Any:
    try:
        value = getattr(nvml, function)(handle)
    except Exception:  # noqa: BLE001 - unknown stays None
        return None
    return _text(value) if isinstance(value, (str, bytes)) else value


def _add_peers(nvml: Any, gpus: list[dict[str, Any]], handles: list[Any]) -> None:
    """For each pair of GPUs: how they are connected (NVML topology level) and whether NVLink P2P works."""
    usable = [
        (gpu, handle)
        for gpu, handle in zip(gpus[:MAX_PEER_GPUS], handles[:MAX_PEER_GPUS], strict=False)
        if handle is not None
    ]
    if len(usable) < 2:
        return
    for gpu, _ in usable:
        gpu["peers"] = []
    for i, (gpu_a, handle_a) in enumerate(usable):
        for gpu_b, handle_b in usable[i + 1 :]:
            reader = _Reader(nvml, gpu_a["errors"])
            level = reader.read("peers", "nvmlDeviceGetTopologyCommonAncestor", handle_a, handle_b)
            p2p = reader.read("peers", "nvmlDeviceGetP2PStatus", handle_a, handle_b, _P2P_NVLINK)
            link = None if level is None else TOPOLOGY_LEVELS.get(level, str(level))
            status = None if p2p is None else P2P_STATUSES.get(p2p, str(p2p))
            gpu_a["peers"].append({"index": gpu_b["index"], "topology": link, "p2p_nvlink": status})
            gpu_b["peers"].append({"index": gpu_a["index"], "topology": link, "p2p_nvlink": status})


# -- nvidia-smi ------------------------------------------------------------------------------


def locate_nvidia_smi() -> str:
    found = shutil.which("nvidia-smi")
    if found:
        return found
    for folder in NVIDIA_SMI_DIRS:
        candidate = os.path.join(folder, "nvidia-smi")
        if os.access(candidate, os.X_OK):
            return candidate
    return "nvidia-smi"


def _safe_run(run: Callable[..., CommandResult], name: str, argv: list[str], timeout_s: float) -> CommandResult:
    start = time.monotonic()
    try:
        return run(name, argv, timeout_s=timeout_s)
    except Exception as exc:  # noqa: BLE001 - a broken runner is recorded like a broken command
        return CommandResult(ProbeRecord(name, "error", time.monotonic() - start, error=_error_text("run", exc)))


def _accept_text(result: CommandResult, looks_right: Callable[[str], bool], key: str) -> str | None:
    """The command's text, scrubbed of identifiers, or None; odd output marks the record as an error."""
    text = result.stdout if result.stdout.strip() else None
    if text is None:
        return None
    if not looks_right(text):
        if result.record.status == "ok":
            result.record.status = "error"
            result.record.error = f"output does not look like nvidia-smi's ({len(result.stdout)} characters)"
        return None
    return smi.clean_text(smi.scrub_identifiers(text), TEXT_LIMITS[key])


def _looks_like_topo(text: str) -> bool:
    return "GPU0" in text or "Legend" in text


def _query_csv(run: Callable[..., CommandResult], exe: str, timeout_s: float) -> tuple[CommandResult, tuple[str, ...]]:
    fields: tuple[str, ...] = smi_format.QUERY_FIELDS
    argv = [exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"]
    result = _safe_run(run, "nvidia-smi --query-gpu", argv, timeout_s)
    if result.record.status == "error" and smi_format.rejected_fields(result.stdout + result.stderr):
        fields = smi_format.BASIC_QUERY_FIELDS
        argv = [exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"]
        result = _safe_run(run, "nvidia-smi --query-gpu", argv, timeout_s)
    return result, fields


def _fallback_gpus(result: CommandResult, fields: tuple[str, ...]) -> tuple[list[dict[str, Any]], str | None]:
    """GPUs from the CSV answer, and the driver version it names."""
    if result.record.status != "ok":
        return [], None
    rows = smi_format.parse_query_csv(result.stdout, fields)
    if not rows:
        if result.stdout.strip():
            result.record.status = "error"
            result.record.error = f"no GPU rows in nvidia-smi's CSV answer ({len(result.stdout)} characters)"
        return [], None
    gpus = [smi.gpu_from_query_row(row, position) for position, row in enumerate(rows[:MAX_GPUS])]
    driver_version = next((row.get("driver_version") for row in rows if row.get("driver_version")), None)
    return gpus, driver_version


# -- the section -----------------------------------------------------------------------------


def collect_gpu_section(
    manifest: Manifest,
    timeout_s: float = 10.0,
    nvml: Any = None,
    run: Callable[..., CommandResult] = run_command,
    visible_devices: str | None = None,
) -> dict[str, Any]:
    """The bundle's "gpus", "driver" and "nvidia_smi" sections, and "cuda_visible_devices" when
    `visible_devices` (CUDA_VISIBLE_DEVICES) is set. Never raises."""
    try:
        return _collect(manifest, timeout_s, nvml, run, visible_devices)
    except Exception as exc:  # noqa: BLE001 - last resort: the collect must go on
        manifest.add(ProbeRecord("gpu-section", "error", 0.0, error=_error_text("gpu section", exc)))
        return {
            "gpus": [],
            "driver": {
                "version": None,
                "cuda_version": None,
                "nvml_version": None,
                "source": None,
                "error": _error_text("gpu section", exc)[:2000],
            },
            "nvidia_smi": {"plain": None, "query": None, "topo": None},
        }


def _nvml_probe(manifest: Manifest, nvml: Any, timeout_s: float) -> NvmlReading:
    reading, record = run_python_probe("nvml", lambda: read_nvml(nvml), timeout_s)
    if reading is None:
        reading = NvmlReading(init_error=f"NVML: {record.error}")
    elif reading.init_error:
        record.status = "missing" if reading.library_absent else "error"
        record.error = reading.init_error
    manifest.add(record)
    return reading


def _collect(
    manifest: Manifest, timeout_s: float, nvml: Any, run: Callable[..., CommandResult], visible_devices: str | None
) -> dict[str, Any]:
    exe = locate_nvidia_smi()
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="gpu-probe") as pool:
        nvml_future = pool.submit(_nvml_probe, manifest, nvml, timeout_s)
        plain_future = pool.submit(_safe_run, run, "nvidia-smi", [exe], timeout_s)
        query_future = pool.submit(_safe_run, run, "nvidia-smi -q", [exe, "-q"], timeout_s)
        topo_future = pool.submit(_safe_run, run, "nvidia-smi topo -m", [exe, "topo", "-m"], timeout_s)
        reading = nvml_future.result()
        plain, query, topo = plain_future.result(), query_future.result(), topo_future.result()

    nvidia_smi = {
        "plain": _accept_text(plain, smi_format.looks_like_nvidia_smi, "plain"),
        "query": _accept_text(query, smi_format.looks_like_nvidia_smi, "query"),
        "topo": _accept_text(topo, _looks_like_topo, "topo"),
    }
    for result in (plain, query, topo):
        manifest.add(result.record)

    header = smi.header_versions(nvidia_smi["plain"] or nvidia_smi["query"])
    seen = reading.seen
    if reading.usable:
        gpus, driver = reading.gpus, dict(reading.driver)
        for key in ("version", "cuda_version"):
            if driver.get(key) is None and header[key]:
                driver[key] = header[key]
    else:
        gpus, csv_driver, csv_text, seen = _fallback(manifest, run, exe, plain, timeout_s)
        if csv_text is not None:
            nvidia_smi["query_csv"] = csv_text
        version = smi.capped(csv_driver, 64) or header["version"]
        driver = {
            "version": version,
            "cuda_version": header["cuda_version"],
            "nvml_version": None,
            "source": "nvidia-smi" if (version or gpus) else None,
            "error": _driver_error(reading, plain, query),
        }
    section = {"gpus": gpus, "driver": driver, "nvidia_smi": nvidia_smi}
    if visible_devices is not None:
        section["cuda_visible_devices"] = check_visible_devices(visible_devices, seen)
    return section


def _fallback(
    manifest: Manifest, run, exe: str, plain: CommandResult, timeout_s: float
) -> tuple[list[dict[str, Any]], str | None, str | None, SeenGpus | None]:
    if plain.record.status in ("missing", "timeout"):
        reason = "nvidia-smi is missing" if plain.record.status == "missing" else "nvidia-smi did not answer"
        manifest.add(ProbeRecord("nvidia-smi --query-gpu", "skipped", 0.0, error=reason))
        return [], None, None, None
    result, fields = _query_csv(run, exe, timeout_s)
    gpus, driver_version = _fallback_gpus(result, fields)
    manifest.add(result.record)
    text = smi.clean_text(smi.scrub_identifiers(result.stdout), TEXT_LIMITS["query_csv"]) if gpus else None
    seen = None
    if gpus:  # nvidia-smi names no MIG device here, so MIG entries stay unchecked
        uuids = [row.get("uuid") or None for row in smi_format.parse_query_csv(result.stdout, fields)[:MAX_GPUS]]
        seen = SeenGpus(uuids, [], mig_complete=False)
    return gpus, driver_version, text, seen


def _driver_error(reading: NvmlReading, plain: CommandResult, query: CommandResult) -> str | None:
    """Why the driver could not be read: NVML's error name (a diagnosis in itself) and nvidia-smi's own words."""
    parts = [reading.init_error] if reading.init_error else []
    said = None
    for result in (plain, query):
        said = said or smi_format.driver_failure_line(result.stdout + "\n" + result.stderr)
    if said:
        parts.append(f"nvidia-smi: {said}")
    elif plain.record.status != "ok" and plain.record.error:
        parts.append(f"nvidia-smi: {plain.record.error.strip().splitlines()[-1]}")
    return "; ".join(parts)[:2000] if parts else None
