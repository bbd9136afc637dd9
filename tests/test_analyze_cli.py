"""`vllm-bug analyze` end to end: formats, output files, refusals, real reports."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import minimal_payload
from vllm_bug.cli import main
from vllm_bug.schema.bundle import encode, make_envelope

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "excerpts"

LOG = """\
INFO 06-01 10:00:00 [api_server.py:1] vLLM API server version 0.19.0
INFO 06-01 10:00:00 [utils.py:1] non-default args: {'model': 'meta-llama/Llama-3.1-8B-Instruct', 'max_model_len': 131072}
(EngineCore_DP0 pid=42) ERROR 06-01 10:00:09 [core.py:700] EngineCore failed to start.
(EngineCore_DP0 pid=42) ERROR 06-01 10:00:09 [core.py:700] Traceback (most recent call last):
(EngineCore_DP0 pid=42) ERROR 06-01 10:00:09 [core.py:700]   File "/usr/lib/python3.12/site-packages/vllm/v1/core/kv_cache_utils.py", line 700, in check_enough_kv_cache_memory
(EngineCore_DP0 pid=42) ERROR 06-01 10:00:09 [core.py:700]     raise ValueError(
(EngineCore_DP0 pid=42) ERROR 06-01 10:00:09 [core.py:700] ValueError: To serve at least one request with the models's max seq len (131072), (16.00 GiB KV cache is needed, which is larger than the available KV cache memory (5.23 GiB). Based on the available memory, the estimated maximum model length is 42816. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.
RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
"""


def run(*args: str, stdin: bytes | None = None, capsys=None) -> tuple[int, str, str]:
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with pytest.raises(SystemExit) as exc:
            main(list(args))
    finally:
        sys.stdin = old_stdin
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "vllm.log"
    path.write_text(LOG)
    return path


def test_text_summary_names_the_cause_and_the_fix(log_file, capsys):
    code, out, _ = run("analyze", str(log_file), capsys=capsys)
    assert code == 0
    assert "kv_cache_insufficient" in out and "KV_CACHE_TOO_SMALL_FOR_MAX_LEN" in out
    assert "--max-model-len 41984" in out
    assert "> ValueError: To serve at least one request" in out  # evidence quoted from the input


def test_json_is_the_design_contract(log_file, capsys):
    code, out, _ = run("analyze", str(log_file), "--format", "json", capsys=capsys)
    doc = json.loads(out)
    assert code == 0
    assert list(doc) == ["schema_version", "input", "signature", "diagnoses", "facts"]
    assert doc["schema_version"] == 1
    assert doc["input"]["kind"] == "text"
    import hashlib

    assert doc["input"]["sha256"] == hashlib.sha256(log_file.read_bytes()).hexdigest()
    top = doc["diagnoses"][0]
    assert set(top) >= {"rule", "category", "confidence", "title", "evidence", "fixes"}
    assert top["category"] == "kv_cache_insufficient"
    assert doc["facts"]["vllm_version"] == "0.19.0"
    assert all(v not in (None, "", [], {}) for v in doc["facts"].values())
    assert "lines" not in doc["facts"]


def test_json_is_the_same_for_the_same_input(log_file, capsys):
    """A private cache on Facts (_searchable) once reached the JSON as an object repr with its address."""
    first = run("analyze", str(log_file), "--format", "json", capsys=capsys)[1]
    second = run("analyze", str(log_file), "--format", "json", capsys=capsys)[1]
    assert first == second
    assert not [key for key in json.loads(first)["facts"] if key.startswith("_")]


def test_bundle_input(tmp_path, capsys):
    payload = minimal_payload()
    payload["gpus"] = [{"index": 0, "name": "Tesla V100-SXM2-32GB", "compute_capability": "7.0"}]
    payload["log"] = {
        "source": "file",
        "truncated": False,
        "text": "ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. "
        "Your Tesla V100-SXM2-32GB GPU has compute capability 7.0.\n",
    }
    bundle = tmp_path / "b.zst"
    bundle.write_bytes(encode(make_envelope(payload)))
    code, out, _ = run("analyze", str(bundle), "--format", "json", capsys=capsys)
    doc = json.loads(out)
    assert code == 0 and doc["input"]["kind"] == "bundle"
    assert doc["diagnoses"][0]["rule"] == "BF16_ON_OLD_GPU"
    assert doc["facts"]["gpus"][0]["compute_capability"] == "7.0"


def test_stdin(capsys):
    code, out, _ = run(
        "analyze",
        "-",
        "--format",
        "json",
        stdin=b"RuntimeError: CUDA error: device-side assert triggered\n",
        capsys=capsys,
    )
    assert code == 0 and json.loads(out)["diagnoses"][0]["category"] == "device_side_assert"


def test_nothing_recognised_is_other(tmp_path, capsys):
    path = tmp_path / "ok.log"
    path.write_text("INFO Application startup complete.\n")
    code, out, _ = run("analyze", str(path), "--format", "json", capsys=capsys)
    assert code == 0 and json.loads(out)["diagnoses"] == []
    code, out, _ = run("analyze", str(path), capsys=capsys)
    assert "category: other" in out


def test_output_file_is_never_overwritten_without_force(log_file, tmp_path, capsys):
    target = tmp_path / "report.json"
    assert run("analyze", str(log_file), "--format", "json", "-o", str(target), capsys=capsys)[0] == 0
    first = target.read_text()
    assert json.loads(first)["diagnoses"]
    target.write_text("keep me")
    code, out, err = run("analyze", str(log_file), "-o", str(target), capsys=capsys)
    assert code == 1 and "--force" in err and err.count("\n") == 1
    assert target.read_text() == "keep me"
    assert run("analyze", str(log_file), "-o", str(target), "--force", capsys=capsys)[0] == 0
    assert "KV_CACHE_TOO_SMALL_FOR_MAX_LEN" in target.read_text()


def test_never_writes_over_the_input(log_file, capsys):
    code, _, err = run("analyze", str(log_file), "-o", str(log_file), "--force", capsys=capsys)
    assert code == 1 and "input" in err
    assert log_file.read_text() == LOG


def test_unreadable_inputs_exit_3_with_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.log"
    code, _, err = run("analyze", str(missing), capsys=capsys)
    assert code == 3 and err.count("\n") == 1 and "Traceback" not in err
    gz = tmp_path / "x.log"
    gz.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 50)
    code, _, err = run("analyze", str(gz), capsys=capsys)
    assert code == 3 and err.startswith("vllm-bug: error:")


def test_markdown_format(log_file, capsys):
    code, out, _ = run("analyze", str(log_file), "--format", "markdown", capsys=capsys)
    assert code == 0 and "--max-model-len" in out


def test_explain_shows_signature_reasons(log_file, capsys):
    code, out, _ = run("analyze", str(log_file), "--explain", capsys=capsys)
    assert code == 0 and "Signature:" in out and "algorithm" in out


@pytest.mark.parametrize(
    "fixture, category, forbidden",
    [
        ("err803_new_driver.txt", "driver_insufficient", "install an NVIDIA driver"),
        ("cpu_torch_windows.txt", "cuda_not_available", None),
        ("kv_cache_v0.txt", "kv_cache_insufficient", "--swap-space"),
        ("graph_capture_swap_space.txt", "cuda_graph", "--max-seq-len-to-capture"),
    ],
)
def test_real_reports(fixture, category, forbidden, capsys):
    code, out, _ = run("analyze", str(FIXTURES / fixture), "--format", "json", capsys=capsys)
    doc = json.loads(out)
    assert code == 0 and doc["diagnoses"][0]["category"] == category
    if forbidden:
        assert forbidden not in json.dumps(doc["diagnoses"])


def test_cli_subprocess_exit_code(tmp_path):
    bad = tmp_path / "bad.zst"
    bad.write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage" * 10)
    proc = subprocess.run([sys.executable, "-m", "vllm_bug", "analyze", str(bad)], capture_output=True, text=True)
    assert proc.returncode in (3, 4) and proc.stderr.count("\n") == 1


def test_prose_on_stdin_is_not_made_into_a_root_cause(capsys):
    code, out, _ = run("analyze", "-", stdin=b"hello\n", capsys=capsys)
    assert code == 0
    assert "Error: hello" not in out and "Reported: hello" not in out
    assert "  Error:    none found (no Python exception or traceback in the input)\n" in out
    assert "Signature: vllm-sig/1:none:-:-:-#" in out


def test_prose_report_markdown_says_no_error_was_found(capsys):
    code, out, _ = run("analyze", "-", "--format", "json", stdin=b"How do I serve two models at once?\n", capsys=capsys)
    assert code == 0
    data = json.loads(out)
    assert data["diagnoses"] == [] and data["signature"].startswith("vllm-sig/1:none:")


def test_a_report_whose_embedded_bundle_is_damaged_is_analysed_as_text_with_a_warning(tmp_path, capsys):
    # a wrong sha256 in the embed header made analyze fall back to the report's text without a word
    import hashlib

    from vllm_bug.analyzer.embed import embed_block

    payload = minimal_payload()
    error = "RuntimeError: CUDA error: device-side assert triggered\n"
    payload["log"] = {"source": "file", "truncated": False, "text": error}
    block = embed_block(encode(make_envelope(payload)))
    damaged = block.replace(block.split("sha256=")[1][:64], hashlib.sha256(b"other").hexdigest())
    report = tmp_path / "report.md"
    report.write_text("# report\n\nRuntimeError: CUDA error: device-side assert triggered\n\n" + damaged + "\n")
    code, out, err = run("analyze", str(report), "--format", "json", capsys=capsys)
    assert code == 0 and json.loads(out)["input"]["kind"] == "text"
    assert err == (
        f"vllm-bug: warning: {report}: the embedded bundle does not match its sha256: damaged; "
        "analysing the report as text\n"
    )
    report.write_text("# report\n\n" + block + "\n")
    code, out, err = run("analyze", str(report), "--format", "json", capsys=capsys)
    assert (code, err, json.loads(out)["input"]["kind"]) == (0, "", "bundle")
