"""The orchestrator and the collect command: concurrency, deadline, output handling, size."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import minimal_payload
from vllm_bug.bundler import collect as co
from vllm_bug.bundler.runner import Manifest
from vllm_bug.commands import collect
from vllm_bug.commands.summary import format_summary
from vllm_bug.errors import UsageProblem, VllmBugError
from vllm_bug.schema.bundle import encode, make_envelope, read_bundle

FIXTURES = Path(__file__).parent / "fixtures" / "device" / "h200"


def fake_interpreter(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-python"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_run_concurrently_abandons_what_misses_the_deadline():
    manifest = Manifest()
    started = time.monotonic()
    results = co.run_concurrently(
        {
            "fast": lambda: 1,
            "boom": lambda: 1 / 0,
            "hang": lambda: time.sleep(30),
            "slow": lambda: time.sleep(0.3) or 2,
        },
        deadline=started + 1.0,
        manifest=manifest,
    )
    elapsed = time.monotonic() - started
    assert results == {"fast": 1, "slow": 2}
    assert 0.9 < elapsed < 2.0
    records = {r.name: r for r in manifest.records}
    assert records["task:hang"].status == "timeout"
    assert records["task:boom"].status == "error" and "ZeroDivisionError" in records["task:boom"].error


def test_probes_run_at_the_same_time():
    manifest = Manifest()
    started = time.monotonic()
    co.run_concurrently({f"p{i}": (lambda: time.sleep(0.5)) for i in range(6)}, started + 10, manifest)
    assert time.monotonic() - started < 1.5


def test_hanging_torch_import_is_bounded_by_timeout(tmp_path, monkeypatch):
    python = fake_interpreter(tmp_path, "sleep 60")
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    payload, manifest, _ = co.build_payload(co.CollectOptions(timeout_s=2.0, python_exe=python))
    assert time.monotonic() - started < 6
    probes = {p["name"]: p for p in payload["manifest"]["probes"]}
    assert probes["python-imports"]["status"] == "timeout"
    assert probes["python-metadata"]["status"] == "timeout"
    assert "hung" in payload["torch"]["error"]
    encode(make_envelope(payload))  # still a valid bundle


def test_payload_from_this_machine_is_valid_and_complete(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    payload, manifest, redactor = co.build_payload(co.CollectOptions(timeout_s=30))
    encode(make_envelope(payload))
    assert payload["gpus"] == []  # no GPU here
    assert payload["packages"]["click"]
    assert payload["host"]["python"]["executable"] == sys.executable
    names = {p["name"] for p in payload["manifest"]["probes"]}
    assert {"python-imports", "python-metadata"} <= names
    assert not any(n.startswith("task:") for n in names)  # no probe framework failed or timed out
    assert payload["manifest"]["collector"]["timeout_s"] == 30
    assert payload["log"] is None and payload["command"] is None


def test_output_exists_is_never_overwritten(tmp_path):
    out = tmp_path / "bundle.zst"
    out.write_bytes(b"precious")
    with pytest.raises(VllmBugError, match="already exists; use --force") as info:
        collect.execute(output=str(out), timeout_s=20, quiet=True)
    assert info.value.exit_code == 1
    assert out.read_bytes() == b"precious"


def test_force_overwrites(tmp_path):
    out = tmp_path / "bundle.zst"
    out.write_bytes(b"old")
    result = collect.execute(output=str(out), force=True, timeout_s=20, quiet=True)
    assert result.exit_code == 0
    assert read_bundle(out)["format"] == "vllm-bug-bundle"
    assert result.text == f"{out}\n"


def test_output_directory_missing(tmp_path):
    with pytest.raises(VllmBugError, match="does not exist"):
        collect.execute(output=str(tmp_path / "nodir" / "b.zst"), timeout_s=20)


def test_output_directory_not_writable(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root: make the check see what a normal user would
        monkeypatch.setattr(co.os, "access", lambda path, mode: False)
    try:
        with pytest.raises(VllmBugError, match="not writable"):
            collect.execute(output=str(locked / "b.zst"), timeout_s=20)
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []


def test_missing_python_is_a_usage_error(tmp_path):
    with pytest.raises(UsageProblem, match="no such interpreter"):
        collect.execute(output=str(tmp_path / "b.zst"), python_exe=str(tmp_path / "nope"))


def test_unreadable_log_fails_before_writing(tmp_path):
    with pytest.raises(VllmBugError) as info:
        collect.execute(output=str(tmp_path / "b.zst"), log_path=str(tmp_path / "missing.log"))
    assert info.value.exit_code == 3
    assert not (tmp_path / "b.zst").exists()


def test_default_name_summary_and_the_files_beside_the_bundle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "vllm.log"
    log.write_text('INFO start\nTraceback (most recent call last):\n  File "x", line 1\nValueError: boom\n')
    result = collect.execute(log_path=str(log), timeout_s=20)
    assert result.exit_code == 0 and result.warnings == []
    (bundle,) = tmp_path.glob("vllm-bug-*.zst")
    assert re.fullmatch(r"vllm-bug-\d{8}-\d{6}\.zst", bundle.name)
    assert "ValueError: boom" in read_bundle(bundle)["payload"]["log"]["tracebacks"][0]
    report, archive = bundle.with_suffix(".md"), bundle.with_suffix(".zip")
    assert "ValueError: boom" in report.read_text()
    assert zipfile.ZipFile(archive).read(bundle.name) == bundle.read_bytes()
    out = result.text
    assert f"wrote {bundle}" in out
    assert "1 traceback\n" in out and "  GPU:       none found" in out
    assert "Next:\n  - open https://github.com/vllm-project/vllm/issues/new?template=" in out
    assert f"  - attach {archive} to the issue" in out and f"--body-file {report}\n" in out
    assert bundle.with_suffix(".environment.md").exists() and bundle.with_suffix(".describe.md").exists()
    assert "  redacted:  " in out


def test_single_gpu_bundle_with_smi_query_and_package_list_fits_32_kib():
    """The issue's size budget, measured on real H200 outputs with a full pip list."""
    payload = minimal_payload()
    payload["nvidia_smi"] = {
        "plain": (FIXTURES / "nvidia-smi.txt").read_text(),
        "query": (FIXTURES / "nvidia-smi-q.txt").read_text(),
        "topo": (FIXTURES / "topo.txt").read_text(),
    }
    rows = (FIXTURES / "pip-list.txt").read_text().splitlines()[2:]
    payload["packages"] = dict(line.split()[:2] for line in rows if line.strip())
    payload["gpus"] = [{"index": 0, "name": "NVIDIA H200", "compute_capability": "9.0"}]
    payload["env"] = {f"VLLM_VAR_{i}": "1" for i in range(40)}
    size = len(encode(make_envelope(payload)))
    assert len(payload["packages"]) > 190
    assert size <= 32 * 1024, f"{size} bytes"


def test_summary_lists_failed_probes_and_redactions(tmp_path):
    payload = minimal_payload()
    payload["manifest"]["probes"] = [
        {"name": "nvidia-smi", "status": "missing", "duration_s": 0.0},
        {"name": "host", "status": "ok", "duration_s": 0.1},
    ]
    payload["redactions"] = [{"kind": "hf_token", "count": 2}]
    payload["torch"] = {
        "installed": True,
        "version": "2.9.0+cu128",
        "cuda": "12.8",
        "cuda_available": False,
        "device_count": 0,
    }
    payload["vllm"] = {
        "installed": True,
        "version": "0.11.0",
        "import_ok": False,
        "import_error": "ImportError: libcudart.so.12",
    }
    text = format_summary(payload, tmp_path / "x.zst", 1.0, [])
    assert "  probes:    none failed or hung\n" in text and "  not found: nvidia-smi\n" in text
    assert "  redacted:  hf_token x2" in text
    assert "  torch:     2.9.0+cu128, built for CUDA 12.8, sees CUDA: NO, 0 devices\n" in text
    assert "  vLLM:      0.11.0, import FAILED: ImportError: libcudart.so.12" in text
    assert "Next:" not in text


def test_summary_says_which_probe_hung_and_hides_absent_compilers(tmp_path):
    payload = minimal_payload()
    payload["manifest"]["probes"] = [
        {"name": "nvidia-smi", "status": "timeout", "duration_s": 10.02},
        {"name": "python-imports", "status": "error", "duration_s": 0.5},
        {"name": "clang", "status": "missing", "duration_s": 0.0},
    ]
    payload["gpus"] = [
        {"index": i, "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_total_bytes": 85520809984}
        for i in range(2)
    ]
    payload["driver"] = {"version": "570.86.15", "cuda_version": "12.8"}
    payload["cuda_toolkit"] = {"nvcc_version": "12.8", "nvcc_path": "/usr/local/cuda/bin/nvcc"}
    payload["vllm"] = {"installed": False}
    payload["command"] = {"argv": ["vllm", "serve"], "exit_code": 1, "duration_s": 12.3456}
    text = format_summary(payload, tmp_path / "x.zst", 1.0, ["paste x.md", "attach x.zip"])
    lines = text.splitlines()
    assert lines[1:9] == [
        "  GPU:       2 x NVIDIA H100 80GB HBM3 (compute capability 9.0, 79.6 GiB)",
        "  driver:    570.86.15, supports CUDA up to 12.8",
        "  torch:     unknown (probe failed)",
        "  nvcc:      CUDA 12.8 toolkit (/usr/local/cuda/bin/nvcc)",
        "  vLLM:      not installed",
        "  command:   exit code 1 after 12.3 s",
        "  probes:    nvidia-smi timed out after 10.0 s; python-imports failed after 0.5 s",
        "  redacted:  nothing found to redact",
    ]
    assert "clang" not in text
    assert lines[-3:] == ["Next:", "  - paste x.md", "  - attach x.zip"]


def test_progress_line_only_on_a_terminal(capsys):
    progress = co._Progress(enabled=False)
    progress.tick(["python-imports"], 8)
    progress.clear()
    assert capsys.readouterr().err == ""
    progress = co._Progress(enabled=True)
    progress.tick(["python-imports"], 8)
    progress.clear()
    err = capsys.readouterr().err
    assert "7/8 done" in err and "python-imports" in err


def test_payload_json_has_no_nan_or_bytes(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    payload, _, _ = co.build_payload(co.CollectOptions(timeout_s=20))
    json.dumps(payload, allow_nan=False)
