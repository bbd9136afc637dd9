"""End to end on this (GPU-less) machine: the real CLI, canary secrets planted everywhere.

The whole decompressed bundle is searched for every canary; none may survive, and the bundle must
say which kinds of secret it removed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zstandard

from vllm_bug.schema.bundle import read_bundle

HF = "hf_CanaryHfTokenAbcdefghijklmnopqrstuv"
GITHUB = "ghp_CanaryGithub0123456789abcdefghijklmn"
OPENAI = "sk-proj-CanaryOpenAi0123456789abcdefghijklmnop"
API_KEY = "canary-api-key-7f3a9c2e1b"
URL_PASSWORD = "CanaryUrlPassw0rd"
BEARER = "CanaryBearerToken0123456789abcdef"
MODEL_PASSWORD = "CanaryModelPass99"
GPU_UUID = "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6"  # not a secret, but hashed like the GPUs' own UUIDs
ALL = (HF, GITHUB, OPENAI, API_KEY, URL_PASSWORD, BEARER, MODEL_PASSWORD)


def canary_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "HF_TOKEN": HF,
            "VLLM_API_KEY": API_KEY,
            "OPENAI_API_KEY": OPENAI,
            "NCCL_DEBUG_FILE": f"/tmp/{GITHUB}.log",
            "HTTPS_PROXY": f"http://alice:{URL_PASSWORD}@proxy.example:3128",
            "VLLM_USAGE_STATS_SERVER": f"https://bob:{URL_PASSWORD}@stats.example",
            "HOME": str(tmp_path / "home"),
            "CUDA_VISIBLE_DEVICES": f"0,{GPU_UUID}",
        }
    )
    return env


def canary_log(tmp_path: Path) -> Path:
    log = tmp_path / "vllm.log"
    log.write_text(
        f"INFO 01-01 00:00:00 [utils.py:1] non-default args: {{'model': 'https://u:{MODEL_PASSWORD}@hub.example/m', "
        f"'api_key': '{API_KEY}'}}\n"
        f"$ vllm serve org/model --api-key {API_KEY} --hf-token {HF}\n"
        f"DEBUG request headers: Authorization: Bearer {BEARER}\n"
        "Traceback (most recent call last):\n"
        '  File "/venv/lib/python3.12/site-packages/huggingface_hub/utils/_http.py", line 409, in hf_raise\n'
        f"    raise HfHubHTTPError(token={HF!r})\n"
        f"huggingface_hub.errors.GatedRepoError: 401 for https://x:{URL_PASSWORD}@huggingface.co/org/model "
        f"(token {OPENAI})\n"
    )
    return log


def raw_bundle(path: Path) -> str:
    with open(path, "rb") as fh:
        return zstandard.ZstdDecompressor().decompressobj().decompress(fh.read()).decode("utf-8")


def assert_no_canary(path: Path) -> dict:
    text = raw_bundle(path)
    leaked = [c for c in ALL if c in text]
    assert not leaked, f"secrets reached the bundle: {leaked}"
    # also the JSON-escaped forms, in case a canary was split by escaping
    assert not [c for c in ALL if json.dumps(c)[1:-1] in text]
    # and the report and zip written beside it
    for companion in (path.with_suffix(".md"), path.with_suffix(".zip")):
        if companion.exists():
            body = companion.read_bytes()
            assert not [c for c in ALL if c.encode() in body], f"secrets reached {companion.name}"
    return read_bundle(path)


def run_cli(args: list[str], tmp_path: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vllm_bug", *args],
        cwd=tmp_path,
        env=canary_env(tmp_path),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=180,
        **kwargs,
    )


def test_collect_end_to_end_has_no_secrets(tmp_path):
    log = canary_log(tmp_path)
    out = tmp_path / "bundle.zst"
    model = f"https://carol:{MODEL_PASSWORD}@models.example/llama"
    result = run_cli(["collect", "--log", str(log), "-o", str(out), "--model", model, "--timeout", "60"], tmp_path)
    assert result.returncode == 0, result.stderr
    for canary in ALL:
        assert canary not in result.stdout + result.stderr
    doc = assert_no_canary(out)
    payload = doc["payload"]
    kinds = {r["kind"] for r in payload["redactions"]}
    assert {"hf_token", "url_password"} <= kinds, kinds
    assert all(r["count"] >= 1 for r in payload["redactions"])
    assert "redacted:" in result.stdout and "hf_token x" in result.stdout

    # the facts a GPU-less machine can give, and its failures recorded rather than fatal
    assert payload["gpus"] == []
    probes = {p["name"]: p for p in payload["manifest"]["probes"]}
    assert probes["python-imports"]["status"] == "ok"
    assert any(
        p["status"] in ("missing", "error") for name, p in probes.items() if "nvidia-smi" in name or name == "nvml"
    )
    assert payload["driver"].get("error")
    assert payload["packages"]["click"]
    assert payload["torch"]["installed"] is False and payload["vllm"]["installed"] is False
    assert "HF_TOKEN" in payload["env"] and "OPENAI_API_KEY" not in payload["env"]
    assert payload["log"]["tracebacks"] and "GatedRepoError" in payload["log"]["tracebacks"][0]
    assert payload["model"]["source"] == "option" and payload["model"]["found"] is False

    # cross-layer facts: the device list checked (nothing to check it against here), the installed requirements
    assert GPU_UUID[4:12] not in raw_bundle(out)
    assert [e["outcome"] for e in payload["cuda_visible_devices"]["entries"]] == ["unchecked", "unchecked"]
    check = payload["requirements_check"]
    assert check["distributions"] == len(payload["packages"]) and isinstance(check["problems"], list)


def test_run_end_to_end_has_no_secrets(tmp_path):
    out = tmp_path / "run.zst"
    child = (
        "import sys\n"
        "print('argv:', ' '.join(sys.argv[1:]), flush=True)\n"
        f"print('Authorization: Bearer {BEARER}', file=sys.stderr, flush=True)\n"
        "sys.exit(4)\n"
    )
    result = run_cli(
        [
            "run",
            "-o",
            str(out),
            "--",
            sys.executable,
            "-c",
            child,
            "--api-key",
            API_KEY,
            f"--hf-token={HF}",
            "--model",
            f"https://d:{MODEL_PASSWORD}@h.example/m",
        ],
        tmp_path,
    )
    assert result.returncode == 4
    assert API_KEY in result.stdout  # the user's own terminal sees the output unchanged
    doc = assert_no_canary(out)
    payload = doc["payload"]
    argv = payload["command"]["argv"]
    assert argv[:2] == [sys.executable, "-c"] and "--api-key" in argv
    assert payload["command"]["exit_code"] == 4
    assert payload["log"]["source"] == "command"
    kinds = {r["kind"] for r in payload["redactions"]}
    assert kinds and "url_password" in kinds


def test_collect_from_stdin(tmp_path):
    log = canary_log(tmp_path)
    out = tmp_path / "stdin.zst"
    with open(log, "rb") as stdin:
        result = subprocess.run(
            [sys.executable, "-m", "vllm_bug", "collect", "--log", "-", "-q", "-o", str(out)],
            cwd=tmp_path,
            env=canary_env(tmp_path),
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    doc = assert_no_canary(out)
    assert doc["payload"]["log"]["source"] == "stdin"


@pytest.mark.parametrize("problem, code", [("missing", 3), ("binary", 3), ("exists", 1), ("report exists", 1)])
def test_collect_refusals_are_one_line(tmp_path, problem, code):
    out = tmp_path / "b.zst"
    log = tmp_path / "vllm.log"
    if problem == "binary":
        log.write_bytes(bytes(range(256)) * 100)
    elif problem == "exists":
        log.write_text("INFO ok\n")
        out.write_bytes(b"keep")
    elif problem == "report exists":  # the .md written beside the bundle is checked before collecting
        log.write_text("INFO ok\n")
        (tmp_path / "b.md").write_bytes(b"keep")
    result = run_cli(["collect", "--log", str(log), "-o", str(out)], tmp_path)
    assert result.returncode == code
    assert result.stderr.startswith("vllm-bug: error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    if problem == "exists":
        assert out.read_bytes() == b"keep"
    else:
        assert not out.exists()
    if problem == "report exists":
        assert (tmp_path / "b.md").read_bytes() == b"keep"


def test_ctrl_c_during_collect_exits_130_and_leaves_nothing(tmp_path):
    # Ctrl-C printed click's "Aborted!" and exited 1, and could leave a lone .zst behind
    log = tmp_path / "vllm.log"
    log.write_text("INFO ok\n")
    slow_python = tmp_path / "slow-python"
    slow_python.write_text("#!/bin/sh\nsleep 20\n")
    slow_python.chmod(0o755)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vllm_bug",
            "collect",
            "--log",
            str(log),
            "-o",
            "b.zst",
            "--python",
            str(slow_python),
            "--timeout",
            "60",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)  # the probes are waiting on the slow interpreter
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert stderr.endswith("vllm-bug: interrupted\n") and "Aborted" not in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow-python", "vllm.log"]
