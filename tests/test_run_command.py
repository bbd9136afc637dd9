"""`vllm-bug run -- CMD`: pass-through, exit codes, signals, and the bundle it collects on failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vllm_bug.schema.bundle import read_bundle

FAILING = """
import sys
print("hello on stdout", flush=True)
print("Traceback (most recent call last):\\n  File \\"serve.py\\", line 3, in main\\n"
      "ValueError: boom", file=sys.stderr, flush=True)
sys.exit(3)
"""


def vllm_bug(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vllm_bug", *args], cwd=cwd, capture_output=True,
                          text=True, errors="replace", timeout=120, **kwargs)


def test_failure_passes_output_through_and_collects(tmp_path):
    out = tmp_path / "b.zst"
    result = vllm_bug("run", "-o", str(out), "--", sys.executable, "-c", FAILING, cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout == "hello on stdout\n"  # stdout untouched: the summary goes to stderr
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert f"wrote {out}" in result.stderr
    payload = read_bundle(out)["payload"]
    assert payload["command"]["exit_code"] == 3
    assert payload["command"]["argv"][0] == sys.executable
    assert payload["command"]["duration_s"] >= 0
    log = payload["log"]
    assert log["source"] == "command"
    assert "hello on stdout" in log["text"] and "ValueError: boom" in log["text"]
    assert log["tracebacks"] == ['Traceback (most recent call last):\n  File "serve.py", line 3, in main\nValueError: boom']


def test_success_collects_nothing_unless_always(tmp_path):
    ok = [sys.executable, "-c", "print('fine')"]
    result = vllm_bug("run", "-o", "b.zst", "--", *ok, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "fine\n")
    assert not (tmp_path / "b.zst").exists()
    result = vllm_bug("run", "--always", "-o", "b.zst", "--", *ok, cwd=tmp_path)
    assert result.returncode == 0
    assert read_bundle(tmp_path / "b.zst")["payload"]["command"]["exit_code"] == 0


def test_command_that_cannot_start(tmp_path):
    result = vllm_bug("run", "-o", "b.zst", "--", "no-such-command-vllm-bug-test", cwd=tmp_path)
    assert result.returncode == 127
    assert result.stderr.strip().count("\n") == 0
    assert "cannot run no-such-command-vllm-bug-test" in result.stderr
    assert not (tmp_path / "b.zst").exists()


def test_killed_by_a_signal_exits_128_plus_signal(tmp_path):
    suicide = "import os, signal; print('dying', flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    result = vllm_bug("run", "-o", "b.zst", "--", sys.executable, "-c", suicide, cwd=tmp_path)
    assert result.returncode == 128 + signal.SIGKILL
    command = read_bundle(tmp_path / "b.zst")["payload"]["command"]
    assert command["exit_code"] == 137 and command["signal"] == signal.SIGKILL


def test_existing_output_stops_before_running(tmp_path):
    (tmp_path / "b.zst").write_bytes(b"keep me")
    marker = tmp_path / "ran"
    result = vllm_bug("run", "-o", "b.zst", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')", cwd=tmp_path)
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert not marker.exists()
    assert (tmp_path / "b.zst").read_bytes() == b"keep me"


def test_sigterm_is_forwarded_and_output_is_live(tmp_path):
    child = ("import signal, sys, time\n"
             "def stop(*_):\n    print('child got SIGTERM', flush=True)\n    sys.exit(7)\n"
             "signal.signal(signal.SIGTERM, stop)\n"
             "print('ready', flush=True)\n"
             "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-m", "vllm_bug", "run", "-o", "b.zst", "--", sys.executable, "-c", child],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # arrives while the child still sleeps: the copy is live
        assert first == "ready\n"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 7
    assert "child got SIGTERM" in stdout
    log = read_bundle(tmp_path / "b.zst")["payload"]["log"]
    assert "ready" in log["text"] and "child got SIGTERM" in log["text"]


def test_binary_output_is_still_captured(tmp_path):
    noisy = "import os, sys; os.write(1, bytes(range(256)) * 4 + b'\\nlast words\\n'); sys.exit(2)"
    result = vllm_bug("run", "-o", "b.zst", "--", sys.executable, "-c", noisy, cwd=tmp_path)
    assert result.returncode == 2
    log = read_bundle(tmp_path / "b.zst")["payload"]["log"]
    assert "last words" in log["text"] and log["removed_control_bytes"] > 0


def test_no_command_is_a_usage_error(tmp_path):
    from vllm_bug.commands import run
    from vllm_bug.errors import UsageProblem

    with pytest.raises(UsageProblem):
        run.execute(output=str(tmp_path / "b.zst"), command=("--",))


# -- names, signals, job control -----------------------------------------------------------------------------
def test_runs_started_together_each_keep_their_bundle(tmp_path):
    # default names had one-second resolution: of four runs started together, three exited 1 ("already
    # exists") and their command's output was lost
    procs = [subprocess.Popen([sys.executable, "-m", "vllm_bug", "run", "--", "sh", "-c", "echo run $$; exit 1"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    for proc in procs:
        proc.communicate(timeout=300)
    assert [proc.returncode for proc in procs] == [1, 1, 1, 1]
    bundles = sorted(tmp_path.glob("vllm-bug-*.zst"))
    assert len(bundles) == 4
    assert len({read_bundle(b)["payload"]["log"]["text"] for b in bundles}) == 4  # each run's own output
    for bundle in bundles:
        assert bundle.with_suffix(".md").exists() and bundle.with_suffix(".zip").exists()


def test_default_name_skips_one_already_taken(tmp_path, monkeypatch):
    from vllm_bug.commands import report_files

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(report_files, "default_stem", lambda: "vllm-bug-20260101-000000")
    (tmp_path / "vllm-bug-20260101-000000.zip").write_text("someone's")
    assert report_files.plan_names(None, force=False).first.bundle == tmp_path / "vllm-bug-20260101-000000-2.zst"
