"""Bundles the collector wrote on real GPU machines (H200, 1 and 2 GPUs), checked against what
nvidia-smi printed on the same machine at the same time, and diagnosed by the analyzer."""

import re
from pathlib import Path

import pytest

from vllm_bug.analyzer.analyze import analyze_loaded
from vllm_bug.analyzer.load import load_input
from vllm_bug.schema.bundle import read_bundle

BUNDLES = Path(__file__).parent / "fixtures" / "bundles"
DEVICE = Path(__file__).parent / "fixtures" / "device"
LIVE_X2 = DEVICE / "h200x2-live"
ALL = sorted(BUNDLES.glob("*.zst"))
MIB = 1 << 20


def payload(name: str) -> dict:
    return read_bundle(BUNDLES / name)["payload"]


def smi_q_sections(text: str) -> list[str]:
    """nvidia-smi -q text split into one section per GPU."""
    return re.split(r"\n(?=GPU [0-9A-Fa-f]{8}:)", text)[1:]


def field(section: str, label: str, after: str | None = None) -> str:
    if after:
        section = section[section.index(after) :]
    m = re.search(rf"^\s*{re.escape(label)}\s*:\s*(.+?)\s*$", section, re.MULTILINE)
    assert m, label
    return m.group(1)


def test_there_are_real_bundles_from_one_and_two_gpu_machines():
    counts = {len(read_bundle(p)["payload"]["gpus"]) for p in ALL}
    assert counts == {1, 2}
    names = {read_bundle(p)["payload"]["gpus"][0]["name"] for p in ALL}
    assert names == {"NVIDIA H200", "NVIDIA H100 80GB HBM3"}


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_gpu_facts_agree_with_nvidia_smi_q_in_the_same_bundle(path):
    p = read_bundle(path)["payload"]
    sections = smi_q_sections(p["nvidia_smi"]["query"])
    assert len(sections) == len(p["gpus"])
    header = p["nvidia_smi"]["query"]
    assert field(header, "Driver Version") == p["driver"]["version"]
    assert field(header, "CUDA Version") == p["driver"]["cuda_version"]
    for gpu, section in zip(p["gpus"], sections, strict=True):
        assert field(section, "Product Name") == gpu["name"]
        total_mib = int(field(section, "Total", after="FB Memory Usage").split()[0])
        assert gpu["memory_total_bytes"] == total_mib * MIB
        assert field(section, "Persistence Mode") == ("Enabled" if gpu["persistence_mode"] else "Disabled")
        assert field(section, "Compute Mode") == gpu["compute_mode"]
        assert field(section, "Current", after="MIG Mode") == ("Enabled" if gpu["mig_mode"]["current"] else "Disabled")
        assert field(section, "Current", after="ECC Mode") == ("Enabled" if gpu["ecc"]["mode_current"] else "Disabled")
        assert (
            section.split(":", 1)[0].endswith(gpu["pci_bus_id"][-12:].upper())
            or gpu["pci_bus_id"].upper() in section.upper()
        )


def test_two_gpu_bundle_agrees_with_nvidia_smi_run_beside_it():
    p = payload("h200-2gpu-collect.zst")
    plain = (LIVE_X2 / "smi.txt").read_text()
    assert plain.count("NVIDIA H200") == len(p["gpus"]) == 2
    assert f"Driver Version: {p['driver']['version']}" in plain
    assert f"CUDA Version: {p['driver']['cuda_version']}" in plain
    for gpu in p["gpus"]:
        assert f"{gpu['memory_total_bytes'] // MIB}MiB" in plain
        assert gpu["pci_bus_id"] in plain
    assert p["torch"]["device_count"] == 2
    assert all(peer["p2p_nvlink"] == "OK" for gpu in p["gpus"] for peer in gpu["peers"])
    assert "NV18" in (DEVICE / "h200x2" / "topo.txt").read_text()


WITH_TORCH = [p for p in ALL if "no-torch" not in p.name]


@pytest.mark.parametrize("path", WITH_TORCH, ids=lambda p: p.name)
def test_the_three_cuda_versions_are_told_apart(path):
    p = read_bundle(path)["payload"]
    assert p["driver"]["cuda_version"] == "13.0"  # nvidia-smi's header: the driver's newest CUDA
    assert p["cuda_toolkit"]["nvcc_version"] == "13.0"
    assert "release 13.0" in p["cuda_toolkit"]["nvcc_output"]
    assert p["torch"]["cuda"] == "13.0" and p["torch"]["version"].endswith("+cu130")
    # torch lists the architectures it was built for only while it sees a GPU
    assert "sm_90" in p["torch"]["arch_list"] or (p["torch"]["device_count"] == 0 and p["torch"]["arch_list"] == [])
    assert all(g["compute_capability"] == "9.0" for g in p["gpus"])


def test_interpreter_without_torch_is_a_recorded_fact_not_a_failure():
    # collected on an H100 with --python pointing at the system interpreter, which has no torch
    p = payload("h100-1gpu-no-torch.zst")
    assert p["torch"]["installed"] is False and p["vllm"]["installed"] is False
    assert p["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3" and p["gpus"][0]["compute_capability"] == "9.0"
    assert p["driver"]["cuda_version"] == "13.0" and p["cuda_toolkit"]["nvcc_version"] == "13.0"
    assert all(r["status"] in ("ok", "missing") for r in p["manifest"]["probes"])
    facts = analyze_loaded(load_input(str(BUNDLES / "h100-1gpu-no-torch.zst"))).facts
    assert facts.gpus[0].memory_total_bytes == p["gpus"][0]["memory_total_bytes"]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_identifiers_are_hashed_and_bundles_are_small(path):
    raw = path.read_bytes()
    assert len(raw) <= 32 * 1024
    p = read_bundle(path)["payload"]
    assert not re.search(r"GPU-[0-9a-f]{8}-[0-9a-f]{4}-", str(p))
    assert all(re.fullmatch(r"[0-9a-f]{16}", g["uuid_hash"]) for g in p["gpus"])
    # the lent machines have no vLLM; one was installed by hand for the bundle named after it
    assert p["vllm"]["installed"] is ("vllm" in path.name)


@pytest.mark.parametrize(
    "name, category",
    [
        ("h200-1gpu-illegal-memory-access.zst", "illegal_memory_access"),
        ("h200-1gpu-run-oom.zst", "cuda_oom"),
        ("h200-1gpu-run-oom-other-process.zst", "cuda_oom"),
        ("h200-1gpu-run-uuid-matches-no-gpu.zst", "cuda_not_available"),
        ("h200-2gpu-run-nccl-fail.zst", "nccl"),
        ("h200-2gpu-collect.zst", "other"),
        ("h100-1gpu-no-torch.zst", "other"),
    ],
)
def test_analyzer_diagnoses_real_bundles(name, category):
    analysis = analyze_loaded(load_input(str(BUNDLES / name)))
    assert analysis.category == category
    if category != "other":
        assert analysis.diagnoses[0].evidence


def test_run_bundle_keeps_command_exit_code_and_rank_traceback():
    p = payload("h200-2gpu-run-nccl-fail.zst")
    assert p["command"]["exit_code"] == 1
    assert any("torchrun" in a for a in p["command"]["argv"])
    assert any("DistBackendError" in tb for tb in p["log"]["tracebacks"])
    assert p["env"]["NCCL_SOCKET_IFNAME"] == "nosuchif"
