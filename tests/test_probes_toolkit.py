"""CUDA toolkit probe: fake nvcc executables printing the real H200 machine's output."""

import stat
import time

import pytest

from conftest import FIXTURES, minimal_payload
from vllm_bug.bundler import probes_toolkit as T
from vllm_bug.bundler.runner import Manifest
from vllm_bug.schema.bundle import make_envelope, validate

NVCC_TXT = FIXTURES / "device" / "h200" / "nvcc.txt"


@pytest.fixture(autouse=True)
def no_system_cuda(tmp_path, monkeypatch):
    """Keep a real /usr/local/cuda on the test machine out of the picture."""
    monkeypatch.setattr(T, "DEFAULT_CUDA_HOME", str(tmp_path / "no-default-cuda"))


def fake_nvcc(folder, body):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nvcc"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def printing_real_output(folder):
    return fake_nvcc(folder, f"cat '{NVCC_TXT}'")


def only_record(manifest):
    (record,) = manifest.to_json()
    assert record["name"] == "nvcc --version"
    return record


def assert_valid(section):
    payload = minimal_payload()
    payload["cuda_toolkit"] = section
    validate(make_envelope(payload))


def test_parses_the_real_nvcc_output():
    text = NVCC_TXT.read_text()
    assert T.parse_nvcc_release(text) == "13.0"
    assert T.parse_nvcc_full_version(text) == "13.0.88"
    assert T.parse_nvcc_release("Cuda compilation tools, release 12.4, V12.4.131") == "12.4"
    assert T.parse_nvcc_release("garbage") is None


def test_nvcc_on_path(tmp_path):
    nvcc = printing_real_output(tmp_path / "cuda-13.0" / "bin")
    manifest = Manifest()
    section = T.collect_cuda_toolkit(manifest, environ={"PATH": str(nvcc.parent)})
    assert section["nvcc_version"] == "13.0" and section["nvcc_full_version"] == "13.0.88"
    assert section["nvcc_path"] == str(nvcc)
    assert section["nvcc_output"] == NVCC_TXT.read_text().strip()
    assert section["cuda_home"] == str(tmp_path / "cuda-13.0") and section["cuda_home_source"] == "nvcc"
    assert only_record(manifest)["status"] == "ok"
    assert_valid(section)


def test_cuda_home_from_the_environment_wins_and_supplies_nvcc(tmp_path):
    nvcc = printing_real_output(tmp_path / "toolkit" / "bin")
    section = T.collect_cuda_toolkit(
        Manifest(), environ={"PATH": str(tmp_path / "empty"), "CUDA_HOME": str(tmp_path / "toolkit")}
    )
    assert section["nvcc_path"] == str(nvcc) and section["nvcc_version"] == "13.0"
    assert section["cuda_home"] == str(tmp_path / "toolkit") and section["cuda_home_source"] == "CUDA_HOME"


def test_default_location_is_the_last_resort(tmp_path, monkeypatch):
    nvcc = printing_real_output(tmp_path / "usr-local-cuda" / "bin")
    monkeypatch.setattr(T, "DEFAULT_CUDA_HOME", str(tmp_path / "usr-local-cuda"))
    section = T.collect_cuda_toolkit(Manifest(), environ={"PATH": ""})
    assert section["nvcc_path"] == str(nvcc) and section["nvcc_version"] == "13.0"


def test_nvcc_missing(tmp_path):
    manifest = Manifest()
    section = T.collect_cuda_toolkit(manifest, environ={"PATH": str(tmp_path), "CUDA_HOME": str(tmp_path / "nothing")})
    assert section["nvcc_version"] is None and section["nvcc_path"] is None
    assert section["cuda_home"] == str(tmp_path / "nothing")  # what the user set, even if it holds nothing
    assert only_record(manifest)["status"] == "missing"
    assert_valid(section)


def test_hanging_nvcc_times_out(tmp_path):
    fake_nvcc(tmp_path, "sleep 30")
    manifest = Manifest()
    start = time.monotonic()
    section = T.collect_cuda_toolkit(manifest, timeout_s=0.5, environ={"PATH": str(tmp_path)})
    assert time.monotonic() - start < 3.0
    assert only_record(manifest)["status"] == "timeout" and section["nvcc_version"] is None


def test_nvcc_printing_garbage_or_failing_is_recorded(tmp_path):
    fake_nvcc(tmp_path / "a", "head -c 3000 /dev/zero | tr '\\0' '\\377'")
    manifest = Manifest()
    section = T.collect_cuda_toolkit(manifest, environ={"PATH": str(tmp_path / "a")})
    assert only_record(manifest)["status"] == "error" and section["nvcc_version"] is None
    assert_valid(section)

    fake_nvcc(tmp_path / "b", "echo 'nvcc: error while loading shared libraries: libnvvm.so' >&2\nexit 127")
    manifest = Manifest()
    section = T.collect_cuda_toolkit(manifest, environ={"PATH": str(tmp_path / "b")})
    record = only_record(manifest)
    assert record["status"] == "error" and record["exit_code"] == 127
    assert "libnvvm" in section["nvcc_output"]
