"""CUDA_VISIBLE_DEVICES checked against the GPUs NVML saw (real H200 readings), before any UUID is hashed."""

from __future__ import annotations

import hashlib

import pynvml
import pytest

from test_probes_gpu import H200, H200X2, FakeNvml, FixtureRun, assert_valid, load_nvml_readings
from vllm_bug.bundler import probes_gpu as G
from vllm_bug.bundler import visible_devices as V
from vllm_bug.bundler.runner import CommandResult, Manifest, ProbeRecord
from vllm_bug.formats import nvidia_smi as smi

UUIDS = [device["uuid"] for device in load_nvml_readings(H200X2)["devices"]]  # GPU-3fde5e08-..., GPU-0183f6d4-...


def hashed(text: str) -> str:
    return f"<hashed:{hashlib.sha256(text.encode()).hexdigest()[:16]}>"


def check(value: str, nvml=None) -> dict:
    section = G.collect_gpu_section(
        Manifest(), nvml=nvml or FakeNvml(H200X2), run=FixtureRun(H200X2), visible_devices=value
    )
    assert_valid(section)
    return section["cuda_visible_devices"]


def outcomes(record: dict) -> list[tuple[str, str, list[int]]]:
    return [(entry["kind"], entry["outcome"], entry["matches"]) for entry in record["entries"]]


def test_a_uuid_that_names_no_gpu_leaves_cuda_nothing():
    record = check("GPU-6a1b2c3d-0000-1111-2222-333344445555")
    assert outcomes(record) == [("gpu_uuid", "no_match", [])]
    assert record["entries"][0]["full"] is True
    assert record["nvml_gpu_count"] == 2 and record["visible_count"] == 0


def test_full_uuids_and_unique_prefixes_match_their_gpus_and_are_hashed_like_them():
    record = check(f"{UUIDS[1]},GPU-3fde5e08")
    assert outcomes(record) == [("gpu_uuid", "ok", [1]), ("gpu_uuid", "ok", [0])]
    gpus = G.collect_gpu_section(Manifest(), nvml=FakeNvml(H200X2), run=FixtureRun(H200X2))["gpus"]
    assert record["entries"][0]["entry"] == hashed(UUIDS[1]) == f"<hashed:{gpus[1]['uuid_hash']}>"
    assert record["entries"][1] == {
        "entry": hashed("GPU-3fde5e08"),
        "kind": "gpu_uuid",
        "full": False,
        "outcome": "ok",
        "matches": [0],
    }
    assert all("3fde5e08" not in entry["entry"] for entry in record["entries"])
    assert record["visible_count"] == 2


def test_cuda_stops_at_the_first_entry_that_names_no_device():
    record = check("1,GPU-ffffffff,0")
    assert outcomes(record) == [("index", "ok", [1]), ("gpu_uuid", "no_match", []), ("index", "ok", [0])]
    assert record["visible_count"] == 1


def test_indices_beyond_the_count_and_ambiguous_prefixes():
    assert outcomes(check("0,2")) == [("index", "ok", [0]), ("index", "beyond_count", [])]
    assert check("0,2")["visible_count"] == 1
    assert outcomes(check("GPU-")) == [("gpu_uuid", "ambiguous", [0, 1])]
    assert outcomes(check("banana")) == [("unknown", "invalid", [])]


@pytest.mark.parametrize("value", ["", "-1", "NoDevFiles", "none"])
def test_values_that_hide_every_device(value):
    record = check(value)
    assert record["hides_all"] is True and record["entries"] == [] and record["visible_count"] == 0


def test_unset_means_no_record():
    section = G.collect_gpu_section(Manifest(), nvml=FakeNvml(H200), run=FixtureRun(H200))
    assert "cuda_visible_devices" not in section


class MigNvml(FakeNvml):
    """One H200 in MIG mode with two MIG devices (GPU instances 1 and 2, compute instance 0 each)."""

    MIG = [("MIG-0e8a3b3c-1111-5f2a-9c1d-aaaaaaaaaaaa", 1, 0), ("MIG-7d2c9f00-2222-5b1e-8e0f-bbbbbbbbbbbb", 2, 0)]

    def nvmlDeviceGetMigMode(self, h):
        return [1, 1]

    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, slot):
        if slot >= len(self.MIG):
            raise pynvml.NVMLError_NotFound()
        return ("mig", slot)

    def nvmlDeviceGetUUID(self, h):
        return self.MIG[h[1]][0] if isinstance(h, tuple) else super().nvmlDeviceGetUUID(h)

    def nvmlDeviceGetGpuInstanceId(self, h):
        return self.MIG[h[1]][1]

    def nvmlDeviceGetComputeInstanceId(self, h):
        return self.MIG[h[1]][2]


def test_mig_device_uuids_and_the_older_mig_form():
    gpu_uuid = load_nvml_readings(H200)["devices"][0]["uuid"]
    value = f"MIG-7d2c9f00,MIG-{gpu_uuid}/1/0,MIG-{gpu_uuid}/3/0"
    section = G.collect_gpu_section(Manifest(), nvml=MigNvml(H200), run=FixtureRun(H200), visible_devices=value)
    assert_valid(section)
    record = section["cuda_visible_devices"]
    assert outcomes(record) == [("mig", "ok", [0]), ("mig", "ok", [0]), ("mig", "no_match", [])]
    assert record["visible_count"] == 2


def test_mig_entries_stay_unchecked_when_the_binding_cannot_list_mig_devices():
    gpu_uuid = load_nvml_readings(H200)["devices"][0]["uuid"]
    fake = MigNvml(H200, hidden=("nvmlDeviceGetMaxMigDeviceCount",))
    section = G.collect_gpu_section(Manifest(), nvml=fake, run=FixtureRun(H200), visible_devices=f"MIG-{gpu_uuid}/1/0")
    assert outcomes(section["cuda_visible_devices"]) == [("mig", "unchecked", [])]
    assert section["cuda_visible_devices"]["visible_count"] is None


def test_without_nvml_the_uuids_come_from_the_nvidia_smi_csv():
    values = {"index": "0", "name": "NVIDIA H200", "uuid": UUIDS[0], "pci.bus_id": "00000000:00:06.0"}
    csv = ", ".join(values.get(name, "[N/A]") for name in smi.QUERY_FIELDS) + "\n"

    def answer(name):
        return CommandResult(ProbeRecord(name, "ok", 0.01, exit_code=0), stdout=csv)

    fake = FakeNvml(H200, init_error=pynvml.NVMLError_LibraryNotFound)
    section = G.collect_gpu_section(
        Manifest(), nvml=fake, run=FixtureRun(H200, {"csv": answer}), visible_devices="GPU-3fde5e08,GPU-0183f6d4"
    )
    assert outcomes(section["cuda_visible_devices"]) == [("gpu_uuid", "ok", [0]), ("gpu_uuid", "no_match", [])]


def test_without_any_gpu_reading_nothing_is_claimed():
    record = V.check_visible_devices("0,GPU-3fde5e08", None)
    assert outcomes(record) == [("index", "unchecked", []), ("gpu_uuid", "unchecked", [])]
    assert record["visible_count"] is None and record["nvml_gpu_count"] is None


def test_hide_uuids_hashes_every_uuid_form_and_keeps_indices():
    value = f"0,{UUIDS[0]},GPU-3fde,MIG-{UUIDS[1]}/1/0"
    assert V.hide_uuids(value) == f"0,{hashed(UUIDS[0])},{hashed('GPU-3fde')},{hashed('MIG-' + UUIDS[1] + '/1/0')}"
