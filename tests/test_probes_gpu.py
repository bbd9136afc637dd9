"""GPU section: a fake NVML built from real H200 readings, fake nvidia-smi outputs and executables."""

import hashlib
import json
import os
import re
import stat
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pynvml  # only for NVML's real error classes; nothing here loads the NVML library
import pytest

from conftest import FIXTURES, minimal_payload
from vllm_bug.bundler import nvidia_smi as smi
from vllm_bug.bundler import probes_gpu as G
from vllm_bug.bundler.runner import CommandResult, Manifest, ProbeRecord, run_command
from vllm_bug.formats import nvidia_smi as smi_format
from vllm_bug.schema.bundle import make_envelope, validate

H200 = FIXTURES / "device" / "h200"
H200X2 = FIXTURES / "device" / "h200x2"
DEVICE_LINE = re.compile(r"^(\d+) (.+?) \((\d+), (\d+)\) (\d+) (\d+) (GPU-\S+) (\S+)$")


# -- a fake pynvml that answers with the readings in nvml.txt -----------------------------


def load_nvml_readings(folder: Path) -> dict:
    """Parse the real NVML dump: driver line, one line per device, then its per-call values."""
    driver, cuda, devices = None, None, []
    for line in (folder / "nvml.txt").read_text().splitlines():
        if line.startswith("driver "):
            _, driver, _, cuda = line.split()
        elif DEVICE_LINE.match(line):
            idx, name, major, minor, total, used, uuid, bus = DEVICE_LINE.match(line).groups()
            devices.append(
                {
                    "name": name,
                    "cc": (int(major), int(minor)),
                    "total": int(total),
                    "used": int(used),
                    "uuid": uuid,
                    "bus": bus,
                    "calls": {},
                }
            )
        elif line.startswith("   nvml"):
            function, value = line.strip().split(" ", 1)
            if value.startswith("ERR "):
                devices[-1]["calls"][function] = getattr(pynvml, value.split()[1])
            else:
                devices[-1]["calls"][function] = json.loads(value)
    links, ancestor, p2p = {}, None, None
    topo = folder / "nvml-topo.txt"
    if topo.exists():
        for line in topo.read_text().splitlines():
            parts = line.split()
            if parts[1] == "nvlinks_up":
                links[int(parts[0])] = int(parts[2])
            elif parts[2] == "common_ancestor":
                ancestor = int(parts[3])
            elif parts[2] == "p2p_nvlink":
                p2p = int(parts[3])
    return {"driver": driver, "cuda": int(cuda), "devices": devices, "links": links, "ancestor": ancestor, "p2p": p2p}


class FakeNvml:
    """Answers like pynvml from real readings. fail[(function, index)] = error class makes one call fail
    (index None: every GPU); hidden functions behave as if the binding lacked them."""

    NVML_NVLINK_MAX_LINKS = 36

    def __init__(
        self, folder: Path, fail=None, hidden=(), init_error=None, memory_v2=False, processes=None, init_delay=0.0
    ):
        self.data = load_nvml_readings(folder)
        self.fail = dict(fail or {})
        self.hidden = set(hidden)
        self.init_error = init_error
        self.init_delay = init_delay
        self.processes = processes or {}
        self.inits = self.shutdowns = 0
        if memory_v2:
            self.nvmlMemory_v2 = 0x02000028

    def __getattribute__(self, name):
        if name in object.__getattribute__(self, "hidden"):
            raise AttributeError(name)
        return object.__getattribute__(self, name)

    def _device(self, function, handle):
        error = self.fail.get((function, handle.index)) or self.fail.get((function, None))
        if error:
            raise error()
        return self.data["devices"][handle.index]

    def _recorded(self, function, handle):
        value = self._device(function, handle)["calls"].get(function)
        if isinstance(value, type):
            raise value()
        return value

    def nvmlInit(self):
        time.sleep(self.init_delay)
        if self.init_error:
            raise self.init_error()
        self.inits += 1

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self):
        return self.data["driver"]

    def nvmlSystemGetCudaDriverVersion(self):
        return self.data["cuda"]

    def nvmlSystemGetNVMLVersion(self):
        return "13." + self.data["driver"]

    def nvmlDeviceGetCount(self):
        return len(self.data["devices"])

    def nvmlDeviceGetHandleByIndex(self, index):
        handle = SimpleNamespace(index=index)
        self._device("nvmlDeviceGetHandleByIndex", handle)
        return handle

    def nvmlDeviceGetName(self, h):
        return self._device("nvmlDeviceGetName", h)["name"]

    def nvmlDeviceGetCudaComputeCapability(self, h):
        return self._device("nvmlDeviceGetCudaComputeCapability", h)["cc"]

    def nvmlDeviceGetMemoryInfo(self, h, version=None):
        d = self._device("nvmlDeviceGetMemoryInfo", h)
        if version:  # version 2 reports the driver's reservation apart from "used"
            return SimpleNamespace(total=d["total"], reserved=d["used"], used=0, free=d["total"] - d["used"])
        return SimpleNamespace(total=d["total"], used=d["used"], free=d["total"] - d["used"])

    def nvmlDeviceGetPciInfo(self, h):
        return SimpleNamespace(busId=self._device("nvmlDeviceGetPciInfo", h)["bus"])

    def nvmlDeviceGetUUID(self, h):
        return self._device("nvmlDeviceGetUUID", h)["uuid"]

    def nvmlDeviceGetPersistenceMode(self, h):
        return self._recorded("nvmlDeviceGetPersistenceMode", h)

    def nvmlDeviceGetComputeMode(self, h):
        self._device("nvmlDeviceGetComputeMode", h)
        return 0  # "Default", as nvidia-smi.txt shows

    def nvmlDeviceGetMigMode(self, h):
        return self._recorded("nvmlDeviceGetMigMode", h)

    def nvmlDeviceGetEccMode(self, h):
        self._device("nvmlDeviceGetEccMode", h)
        return [1, 1]  # "ECC Mode: Enabled / Enabled" in nvidia-smi-q.txt

    def nvmlDeviceGetTotalEccErrors(self, h, error_type, counter_type):
        return self._recorded("nvmlDeviceGetTotalEccErrors", h)

    def nvmlDeviceGetRemappedRows(self, h):
        self._device("nvmlDeviceGetRemappedRows", h)
        return (0, 0, 0, 0)  # "Remapped Rows" block of nvidia-smi-q.txt

    def nvmlDeviceGetRetiredPages(self, h, cause):
        return self._recorded("nvmlDeviceGetRetiredPages", h)

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h):
        return self._recorded("nvmlDeviceGetRetiredPages", h)

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        self._device("nvmlDeviceGetCurrentClocksEventReasons", h)
        return self._recorded("nvmlDeviceGetCurrentClocksThrottleReasons", h)

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h):
        return self._recorded("nvmlDeviceGetCurrentClocksThrottleReasons", h)

    def nvmlDeviceGetTemperature(self, h, sensor):
        return self._recorded("nvmlDeviceGetTemperature", h)

    def nvmlDeviceGetPowerUsage(self, h):
        return self._recorded("nvmlDeviceGetPowerUsage", h)

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        self._device("nvmlDeviceGetEnforcedPowerLimit", h)
        return 700000  # "Current Power Limit: 700.00 W"

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        self._device("nvmlDeviceGetComputeRunningProcesses", h)
        return [SimpleNamespace(pid=p["pid"], usedGpuMemory=p["used"]) for p in self.processes.get(h.index, [])]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        self._device("nvmlDeviceGetGraphicsRunningProcesses", h)
        return []

    def nvmlSystemGetProcessName(self, pid):
        for procs in self.processes.values():
            for p in procs:
                if p["pid"] == pid and p.get("name"):
                    return p["name"]
        raise pynvml.NVMLError_NotFound()

    def nvmlDeviceGetNvLinkState(self, h, link):
        self._device("nvmlDeviceGetNvLinkState", h)
        if h.index not in self.data["links"]:
            raise pynvml.NVMLError_NotSupported()
        if link >= self.data["links"][h.index]:
            raise pynvml.NVMLError_InvalidArgument()
        return 1

    def nvmlDeviceGetTopologyCommonAncestor(self, a, b):
        return self.data["ancestor"]

    def nvmlDeviceGetP2PStatus(self, a, b, index):
        assert index == 2, "only the NVLink capability is asked"
        return self.data["p2p"]


# -- fake nvidia-smi ---------------------------------------------------------------------------


class FixtureRun:
    """A `run` that answers nvidia-smi commands with the fixture files of one machine."""

    def __init__(self, folder: Path, overrides=None):
        self.folder = folder
        self.overrides = overrides or {}
        self.calls = []

    def __call__(self, name, argv, timeout_s=10.0, **kwargs):
        self.calls.append(list(argv))
        args = argv[1:]
        key = "plain" if not args else "q" if args == ["-q"] else "topo" if args[:1] == ["topo"] else "csv"
        if key in self.overrides:
            return self.overrides[key](name)
        file = {"plain": "nvidia-smi.txt", "q": "nvidia-smi-q.txt", "topo": "topo.txt", "csv": "query.csv"}[key]
        return CommandResult(ProbeRecord(name, "ok", 0.01, exit_code=0), stdout=(self.folder / file).read_text())


def failing(stdout, exit_code):
    return lambda name: CommandResult(
        ProbeRecord(name, "error", 0.01, exit_code=exit_code, error=stdout), stdout=stdout
    )


def executable_run(bindir: Path):
    """A `run` that executes the scripts in bindir in place of the real commands."""

    def run(name, argv, timeout_s=10.0, **kwargs):
        return run_command(name, [str(bindir / os.path.basename(argv[0])), *argv[1:]], timeout_s=timeout_s, **kwargs)

    return run


def write_script(bindir: Path, name: str, body: str) -> Path:
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def records(manifest: Manifest) -> dict:
    return {r["name"]: r for r in manifest.to_json()}


def assert_valid(section: dict) -> None:
    payload = minimal_payload()
    payload.update(section)
    validate(make_envelope(payload))


def sha16(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- NVML working ------------------------------------------------------------------------------


def test_single_h200_section_matches_the_real_readings():
    fake = FakeNvml(H200)
    manifest = Manifest()
    section = G.collect_gpu_section(manifest, nvml=fake, run=FixtureRun(H200))
    real = load_nvml_readings(H200)["devices"][0]

    (gpu,) = section["gpus"]
    assert gpu["index"] == 0 and gpu["name"] == "NVIDIA H200"
    assert gpu["compute_capability"] == "9.0"
    assert gpu["memory_total_bytes"] == real["total"] == 143771 * (1 << 20)
    assert gpu["memory_used_bytes"] == real["used"]
    assert gpu["memory_free_bytes"] == real["total"] - real["used"]
    assert gpu["pci_bus_id"] == "00000000:00:06.0"
    assert gpu["uuid_hash"] == sha16(real["uuid"])
    assert gpu["persistence_mode"] is True
    assert gpu["compute_mode"] == "Default"
    assert gpu["mig_mode"] == {"current": False, "pending": False}
    assert gpu["ecc"] == {
        "mode_current": True,
        "mode_pending": True,
        "volatile_uncorrected": 0,
        "aggregate_uncorrected": 0,
    }
    assert gpu["remapped_rows"] == {"correctable": 0, "uncorrectable": 0, "pending": False, "failure": False}
    assert gpu["retired_pages"] is None
    assert gpu["errors"] == {"retired_pages": "NVMLError_NotSupported"}
    assert gpu["clock_event_reasons"] == ["GpuIdle"]
    assert gpu["temperature_c"] == 38
    assert gpu["power_w"] == pytest.approx(81.586)
    assert gpu["processes"] == []
    assert gpu["nvlinks_up"] == 0

    driver = section["driver"]
    assert driver == {
        "version": "580.159.04",
        "cuda_version": "13.0",
        "nvml_version": "13.580.159.04",
        "source": "nvml",
        "error": None,
    }
    assert fake.inits == 1 and fake.shutdowns == 1

    smi_text = section["nvidia_smi"]
    assert "CUDA Version: 13.0" in smi_text["plain"]
    assert "Product Name" in smi_text["query"] and "GPU0" in smi_text["topo"]
    dumped = json.dumps(section)
    assert real["uuid"] not in dumped and "1654024030402" not in dumped  # UUID and board serial
    assert f"<hashed:{sha16(real['uuid'])}>" in smi_text["query"]

    probes = records(manifest)
    assert {n: probes[n]["status"] for n in probes} == {
        "nvml": "ok",
        "nvidia-smi": "ok",
        "nvidia-smi -q": "ok",
        "nvidia-smi topo -m": "ok",
    }
    assert_valid(section)


def test_two_h200s_with_nvlink_topology_and_facts_agreeing_with_nvidia_smi():
    section = G.collect_gpu_section(Manifest(), nvml=FakeNvml(H200X2), run=FixtureRun(H200X2))
    gpus = section["gpus"]
    assert [g["index"] for g in gpus] == [0, 1]
    csv_rows = smi_format.parse_query_csv((H200X2 / "query.csv").read_text())
    assert [g["pci_bus_id"] for g in gpus] == [row["pci.bus_id"] for row in csv_rows]
    assert [g["memory_total_bytes"] for g in gpus] == [smi._mib_bytes(row["memory.total"]) for row in csv_rows]
    assert len({g["uuid_hash"] for g in gpus}) == 2
    assert [g["temperature_c"] for g in gpus] == [38, 39]
    assert all(g["nvlinks_up"] == 18 for g in gpus)
    assert gpus[0]["peers"] == [{"index": 1, "topology": "HOSTBRIDGE", "p2p_nvlink": "OK"}]
    assert gpus[1]["peers"] == [{"index": 0, "topology": "HOSTBRIDGE", "p2p_nvlink": "OK"}]
    for uuid_line in (H200X2 / "nvidia-smi-L.txt").read_text().splitlines():
        uuid = re.search(r"GPU-[0-9a-f-]+", uuid_line).group(0)
        assert uuid not in json.dumps(section)
    assert_valid(section)


def test_memory_v2_separates_reserved_memory_as_nvidia_smi_does():
    section = G.collect_gpu_section(Manifest(), nvml=FakeNvml(H200, memory_v2=True), run=FixtureRun(H200))
    gpu = section["gpus"][0]
    q_used = re.search(
        r"FB Memory Usage\n.*\n.*Reserved\s*:\s*(\d+) MiB\n\s*Used\s*:\s*(\d+) MiB",
        (H200 / "nvidia-smi-q.txt").read_text(),
    )
    assert gpu["memory_used_bytes"] == int(q_used.group(2)) * (1 << 20) == 0
    assert gpu["memory_reserved_bytes"] == load_nvml_readings(H200)["devices"][0]["used"]


def test_processes_holding_gpu_memory_are_listed_with_names():
    procs = {0: [{"pid": 4242, "used": 70 << 30, "name": b"/usr/bin/python3"}, {"pid": 77, "used": None}]}
    section = G.collect_gpu_section(Manifest(), nvml=FakeNvml(H200, processes=procs), run=FixtureRun(H200))
    assert section["gpus"][0]["processes"] == [
        {"pid": 4242, "used_memory_bytes": 70 << 30, "name": "/usr/bin/python3", "type": "compute"},
        {"pid": 77, "used_memory_bytes": None, "name": None, "type": "compute"},
    ]
    assert_valid(section)


# -- NVML failing per call -----------------------------------------------------------------------


def test_failing_fields_are_recorded_and_the_rest_still_read():
    fail = {
        ("nvmlDeviceGetMigMode", None): pynvml.NVMLError_NotSupported,
        ("nvmlDeviceGetEccMode", None): pynvml.NVMLError_NotSupported,
    }
    for function in (
        "nvmlDeviceGetName",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetTemperature",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetComputeRunningProcesses",
        "nvmlDeviceGetNvLinkState",
    ):
        fail[(function, 1)] = pynvml.NVMLError_GpuIsLost
    fake = FakeNvml(H200X2, fail=fail)
    manifest = Manifest()
    section = G.collect_gpu_section(manifest, nvml=fake, run=FixtureRun(H200X2))
    good, lost = section["gpus"]

    assert good["name"] == "NVIDIA H200" and good["memory_total_bytes"] == 150754820096
    assert good["mig_mode"] is None and good["errors"]["mig_mode"] == "NVMLError_NotSupported"
    assert good["ecc"]["mode_current"] is None and good["ecc"]["volatile_uncorrected"] == 0
    assert lost["index"] == 1 and lost["name"] is None and lost["memory_total_bytes"] is None
    for field in ("name", "memory", "temperature_c", "uuid_hash", "processes_compute", "nvlinks_up"):
        assert lost["errors"][field] == "NVMLError_GpuIsLost"
    assert lost["pci_bus_id"] == "00000000:00:07.0" and lost["power_w"] == pytest.approx(80.223)
    assert records(manifest)["nvml"]["status"] == "ok"
    assert fake.inits == fake.shutdowns == 1
    assert_valid(section)


def test_a_gpu_without_a_handle_keeps_its_index():
    fake = FakeNvml(H200X2, fail={("nvmlDeviceGetHandleByIndex", 0): pynvml.NVMLError_GpuIsLost})
    section = G.collect_gpu_section(Manifest(), nvml=fake, run=FixtureRun(H200X2))
    lost, good = section["gpus"]
    assert lost == {"index": 0, "name": None, "errors": {"handle": "NVMLError_GpuIsLost"}, "source": "nvml"}
    assert good["name"] == "NVIDIA H200" and "peers" not in good
    assert_valid(section)


def test_old_bindings_and_drivers_degrade_per_field():
    fake = FakeNvml(
        H200,
        hidden={"nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetRemappedRows"},
        fail={("nvmlDeviceGetEnforcedPowerLimit", None): pynvml.NVMLError_FunctionNotFound},
    )
    gpu = G.collect_gpu_section(Manifest(), nvml=fake, run=FixtureRun(H200))["gpus"][0]
    assert gpu["clock_event_reasons"] == ["GpuIdle"]  # from the deprecated throttle-reasons call
    assert gpu["remapped_rows"] is None
    assert gpu["errors"]["remapped_rows"].startswith("FunctionNotFound")
    assert gpu["errors"]["power_limit_w"] == "NVMLError_FunctionNotFound"
    assert "clock_event_reasons" not in gpu["errors"]


# -- NVML unusable -------------------------------------------------------------------------------


def test_nvml_library_missing_falls_back_to_the_nvidia_smi_csv():
    run = FixtureRun(H200X2)
    manifest = Manifest()
    section = G.collect_gpu_section(
        manifest, nvml=FakeNvml(H200X2, init_error=pynvml.NVMLError_LibraryNotFound), run=run
    )
    csv_call = next(argv for argv in run.calls if argv[1:2] and argv[1].startswith("--query-gpu="))
    assert csv_call[2] == "--format=csv,noheader,nounits"
    assert [g["name"] for g in section["gpus"]] == ["NVIDIA H200", "NVIDIA H200"]
    assert [g["pci_bus_id"] for g in section["gpus"]] == ["00000000:00:06.0", "00000000:00:07.0"]
    nvml_total = load_nvml_readings(H200X2)["devices"][0]["total"]
    assert all(g["memory_total_bytes"] == nvml_total and g["memory_used_bytes"] == 0 for g in section["gpus"])
    assert all(g["compute_capability"] == "9.0" and g["persistence_mode"] is True for g in section["gpus"])
    assert section["gpus"][0]["mig_mode"] == {"current": False, "pending": None}
    driver = section["driver"]
    assert driver["version"] == "580.159.04" and driver["cuda_version"] == "13.0"
    assert driver["source"] == "nvidia-smi" and "NVMLError_LibraryNotFound" in driver["error"]
    assert "NVIDIA H200" in section["nvidia_smi"]["query_csv"]
    probes = records(manifest)
    assert probes["nvml"]["status"] == "missing" and probes["nvidia-smi --query-gpu"]["status"] == "ok"
    assert_valid(section)


def test_csv_fallback_reads_noheader_nounits_and_unavailable_values():
    values = {
        "index": "0",
        "name": "NVIDIA H200",
        "compute_cap": "9.0",
        "driver_version": "580.159.04",
        "memory.total": "143771",
        "memory.used": "0",
        "memory.free": "143156",
        "pci.bus_id": "00000000:00:06.0",
        "uuid": "GPU-9d23f434-8ffc-72a0-9cba-4fceffdb1b13",
        "persistence_mode": "Enabled",
        "compute_mode": "Default",
        "mig.mode.current": "[N/A]",
        "mig.mode.pending": "[N/A]",
        "ecc.mode.current": "Enabled",
        "ecc.mode.pending": "Enabled",
        "ecc.errors.uncorrected.volatile.total": "0",
        "ecc.errors.uncorrected.aggregate.total": "[Not Supported]",
        "temperature.gpu": "38",
        "power.draw": "81.49",
    }
    line = ", ".join(values[f] for f in smi_format.QUERY_FIELDS)
    overrides = {"csv": lambda name: CommandResult(ProbeRecord(name, "ok", 0.01, exit_code=0), stdout=line + "\n")}
    fake = FakeNvml(H200, init_error=pynvml.NVMLError_DriverNotLoaded)
    section = G.collect_gpu_section(Manifest(), nvml=fake, run=FixtureRun(H200, overrides))
    gpu = section["gpus"][0]
    assert gpu["memory_free_bytes"] == 143156 << 20 and gpu["power_w"] == 81.49 and gpu["temperature_c"] == 38
    assert gpu["uuid_hash"] == sha16(values["uuid"]) and values["uuid"] not in json.dumps(section)
    assert gpu["mig_mode"] == {"current": None, "pending": None}
    assert gpu["ecc"]["volatile_uncorrected"] == 0 and gpu["ecc"]["aggregate_uncorrected"] is None
    assert_valid(section)


def test_old_nvidia_smi_refusing_a_field_is_asked_again_with_fewer():
    refused = failing('Field "compute_cap" is not a valid field to query.\n', 2)
    calls = []

    def run(name, argv, timeout_s=10.0, **kwargs):
        if argv[1:] and argv[1].startswith("--query-gpu"):
            calls.append(argv[1])
            if "compute_cap" in argv[1]:
                return refused(name)
            return CommandResult(
                ProbeRecord(name, "ok", 0.01, exit_code=0),
                stdout="0, Tesla V100-SXM2-16GB, 470.82.01, 16160, 0, 16160, 00000000:00:04.0, [N/A]\n",
            )
        return FixtureRun(H200)(name, argv, timeout_s)

    section = G.collect_gpu_section(
        Manifest(), nvml=FakeNvml(H200, init_error=pynvml.NVMLError_DriverNotLoaded), run=run
    )
    assert len(calls) == 2 and "compute_cap" not in calls[1]
    assert section["gpus"][0]["name"] == "Tesla V100-SXM2-16GB" and section["gpus"][0]["compute_capability"] is None
    assert section["driver"]["version"] == "470.82.01"


def test_driver_library_mismatch_is_kept_as_a_diagnosis():
    said = "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.95\n"
    run = FixtureRun(H200, {k: failing(said, 18) for k in ("plain", "q", "topo", "csv")})
    fake = FakeNvml(H200, init_error=pynvml.NVMLError_LibRmVersionMismatch)
    manifest = Manifest()
    section = G.collect_gpu_section(manifest, nvml=fake, run=run)
    assert section["gpus"] == []
    assert "NVMLError_LibRmVersionMismatch" in section["driver"]["error"]
    assert "Driver/library version mismatch" in section["driver"]["error"]
    assert section["driver"]["source"] is None
    assert records(manifest)["nvml"]["status"] == "error"
    assert records(manifest)["nvidia-smi"]["exit_code"] == 18
    assert_valid(section)


def test_driver_not_loaded_keeps_nvidia_smis_words(tmp_path):
    message = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."
    write_script(tmp_path, "nvidia-smi", f'echo "{message}"\nexit 9')
    manifest = Manifest()
    section = G.collect_gpu_section(
        manifest, nvml=FakeNvml(H200, init_error=pynvml.NVMLError_DriverNotLoaded), run=executable_run(tmp_path)
    )
    assert message in section["driver"]["error"] and "NVMLError_DriverNotLoaded" in section["driver"]["error"]
    probes = records(manifest)
    assert probes["nvidia-smi"]["status"] == "error" and probes["nvidia-smi"]["exit_code"] == 9
    assert probes["nvidia-smi --query-gpu"]["status"] == "error"
    assert section["gpus"] == [] and section["nvidia_smi"]["plain"].strip() == message  # what it printed, as printed
    assert_valid(section)


def test_nvidia_smi_missing_is_recorded_and_nothing_fails(tmp_path):
    manifest = Manifest()
    section = G.collect_gpu_section(
        manifest,
        nvml=FakeNvml(H200, init_error=pynvml.NVMLError_LibraryNotFound),
        run=executable_run(tmp_path / "empty"),
    )
    probes = records(manifest)
    assert [probes[n]["status"] for n in ("nvidia-smi", "nvidia-smi -q", "nvidia-smi topo -m")] == ["missing"] * 3
    assert probes["nvidia-smi --query-gpu"]["status"] == "skipped"
    assert section["gpus"] == [] and section["driver"]["source"] is None
    assert section["nvidia_smi"] == {"plain": None, "query": None, "topo": None}
    assert_valid(section)


def test_hanging_nvidia_smi_times_out_within_the_bound_and_nvml_facts_stay(tmp_path):
    write_script(tmp_path, "nvidia-smi", "sleep 30")
    manifest = Manifest()
    start = time.monotonic()
    section = G.collect_gpu_section(manifest, timeout_s=1.0, nvml=FakeNvml(H200), run=executable_run(tmp_path))
    assert time.monotonic() - start < 4.0
    probes = records(manifest)
    assert [probes[n]["status"] for n in ("nvidia-smi", "nvidia-smi -q", "nvidia-smi topo -m")] == ["timeout"] * 3
    assert section["gpus"][0]["name"] == "NVIDIA H200" and section["driver"]["source"] == "nvml"
    assert_valid(section)


def test_hanging_nvidia_smi_without_nvml_skips_the_csv_and_stays_bounded(tmp_path):
    write_script(tmp_path, "nvidia-smi", "sleep 30")
    manifest = Manifest()
    start = time.monotonic()
    section = G.collect_gpu_section(
        manifest, timeout_s=1.0, nvml=FakeNvml(H200, init_error=pynvml.NVMLError_Unknown), run=executable_run(tmp_path)
    )
    assert time.monotonic() - start < 4.0
    assert records(manifest)["nvidia-smi --query-gpu"]["status"] == "skipped"
    assert "NVMLError_Unknown" in section["driver"]["error"]


def test_hanging_nvml_is_abandoned_and_nvidia_smi_answers_instead():
    manifest = Manifest()
    start = time.monotonic()
    section = G.collect_gpu_section(manifest, timeout_s=0.5, nvml=FakeNvml(H200, init_delay=5.0), run=FixtureRun(H200))
    assert time.monotonic() - start < 3.0
    assert records(manifest)["nvml"]["status"] == "timeout"
    assert section["gpus"][0]["name"] == "NVIDIA H200" and section["driver"]["source"] == "nvidia-smi"
    assert section["driver"]["version"] == "580.159.04"


def test_binary_garbage_from_nvidia_smi_is_recorded_not_fatal(tmp_path):
    (tmp_path / "garbage.bin").write_bytes(bytes(range(256)) * 64)
    write_script(tmp_path / "bin", "nvidia-smi", f"cat '{tmp_path / 'garbage.bin'}'")
    manifest = Manifest()
    section = G.collect_gpu_section(
        manifest, nvml=FakeNvml(H200, init_error=pynvml.NVMLError_LibraryNotFound), run=executable_run(tmp_path / "bin")
    )
    probes = records(manifest)
    for name in ("nvidia-smi", "nvidia-smi -q", "nvidia-smi topo -m", "nvidia-smi --query-gpu"):
        assert probes[name]["status"] == "error" and probes[name]["exit_code"] == 0
    assert section["gpus"] == [] and section["nvidia_smi"]["plain"] is None
    assert "does not look like" in section["driver"]["error"]
    json.dumps(section)
    assert_valid(section)


def test_a_runner_that_raises_is_recorded():
    def broken(name, argv, timeout_s=10.0, **kwargs):
        raise OSError("no fork for you")

    manifest = Manifest()
    section = G.collect_gpu_section(manifest, nvml=FakeNvml(H200), run=broken)
    assert records(manifest)["nvidia-smi"]["status"] == "error"
    assert "no fork for you" in records(manifest)["nvidia-smi"]["error"]
    assert section["gpus"][0]["compute_capability"] == "9.0"


# -- helpers -------------------------------------------------------------------------------------


def test_scrubbing_the_real_q_output_hashes_ids_and_keeps_everything_else():
    text = (H200X2 / "nvidia-smi-q.txt").read_text()
    scrubbed = smi.scrub_identifiers(text)
    assert len(scrubbed.splitlines()) == len(text.splitlines())
    for line in (H200X2 / "nvidia-smi-L.txt").read_text().splitlines():
        uuid = re.search(r"GPU-[0-9a-f-]+", line).group(0)
        assert uuid not in scrubbed and f"<hashed:{sha16(uuid)}>" in scrubbed
    serials = re.findall(r"^\s*Serial Number\s*:\s*(\S+)$", text, re.M)
    assert len(serials) == 2 and not any(s in scrubbed for s in serials)
    assert re.search(r"Chassis Serial Number\s*:\s*N/A", scrubbed)
    assert "Bus Id                                         : 00000000:00:07.0" in scrubbed


def test_number_conversions():
    assert G.cuda_version_from_int(13000) == "13.0" and G.cuda_version_from_int(12040) == "12.4"
    assert G.clock_event_names(0x1 | 0x4 | 0x40) == ["GpuIdle", "SwPowerCap", "HwThermalSlowdown"]
    assert G.clock_event_names(0) == [] and G.clock_event_names(0x1000) == ["Unknown(0x1000)"]


def test_vllms_vendored_binding_is_used_without_importing_vllm(tmp_path, monkeypatch):
    package = tmp_path / "vllm"
    (package / "third_party").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('vllm must not be imported')\n")
    # like the real file, it looks itself up in sys.modules while loading
    (package / "third_party" / "pynvml.py").write_text("import sys\nVENDORED = sys.modules[__name__] is not None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    monkeypatch.delitem(sys.modules, "vllm_bug_vendored_pynvml", raising=False)
    module = G.import_nvml()
    assert module.VENDORED is True and "vllm" not in sys.modules
    monkeypatch.delitem(sys.modules, "vllm_bug_vendored_pynvml")


def test_oversized_csv_values_are_capped_to_fit_the_schema():
    line = ", ".join(["0", "N" * 5000, "5" * 300] + ["1"] * 5) + "\n"  # the 8 basic fields
    overrides = {"csv": lambda name: CommandResult(ProbeRecord(name, "ok", 0.01, exit_code=0), stdout=line)}
    run = FixtureRun(H200, overrides)

    def basic_fields_only(name, argv, timeout_s=10.0, **kwargs):
        if argv[1:] and "compute_cap" in argv[1] and "uuid" in argv[1]:
            return failing('Field "ecc.mode.pending" is not a valid field to query.', 2)(name)
        return run(name, argv, timeout_s)

    section = G.collect_gpu_section(
        Manifest(), nvml=FakeNvml(H200, init_error=pynvml.NVMLError_LibraryNotFound), run=basic_fields_only
    )
    (gpu,) = section["gpus"]
    assert len(gpu["name"]) == 256 and section["driver"]["version"] == "5" * 64
    assert_valid(section)
