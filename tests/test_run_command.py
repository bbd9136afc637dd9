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
    return subprocess.run(
        [sys.executable, "-m", "vllm_bug", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        **kwargs,
    )


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
    assert log["tracebacks"] == [
        'Traceback (most recent call last):\n  File "serve.py", line 3, in main\nValueError: boom'
    ]


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
    child = (
        "import signal, sys, time\n"
        "def stop(*_):\n    print('child got SIGTERM', flush=True)\n    sys.exit(7)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm_bug", "run", "-o", "b.zst", "--", sys.executable, "-c", child],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "vllm_bug", "run", "--", "sh", "-c", "echo run $$; exit 1"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
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


def process_state(pid: int) -> str:
    """'R', 'S', 'T' (stopped), 'Z'...; 'gone' once the process no longer exists."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def wait_for_state(pid: int, wanted: set[str], seconds: float = 10.0) -> str:
    deadline = time.monotonic() + seconds
    state = process_state(pid)
    while state not in wanted and time.monotonic() < deadline:
        time.sleep(0.05)
        state = process_state(pid)
    return state


SLEEPER = (
    "import os, signal, sys, time\n"
    "for name in sys.argv[1:]:\n"
    "    signal.signal(getattr(signal, name), lambda s, f: print('child ignores', s, flush=True))\n"
    "print(os.getpid(), flush=True)\n"
    "while True:\n    time.sleep(0.1)\n"
)

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")


def start_run(tmp_path: Path, *traps: str) -> tuple[subprocess.Popen, int]:
    """vllm-bug run -- SLEEPER in its own process group (as a shell starts a job); returns it and the child's pid."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm_bug", "run", "-o", "b.zst", "--", sys.executable, "-c", SLEEPER, *traps],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=os.setpgrp,
    )
    return proc, int(proc.stdout.readline())


@needs_proc
def test_the_command_dies_with_vllm_bug(tmp_path):
    # SIGKILL to vllm-bug left the command running (a vLLM server kept its GPUs)
    proc, child = start_run(tmp_path)
    proc.kill()
    proc.wait(timeout=10)
    assert wait_for_state(child, {"gone", "Z"}) in ("gone", "Z")


@needs_proc
def test_sigquit_is_passed_on(tmp_path):
    proc, child = start_run(tmp_path)
    try:
        proc.send_signal(signal.SIGQUIT)
        assert wait_for_state(child, {"gone", "Z"}) in ("gone", "Z")
        proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGQUIT
    assert read_bundle(tmp_path / "b.zst")["payload"]["command"]["signal"] == signal.SIGQUIT


@needs_proc
def test_ctrl_z_stops_the_command_too_and_fg_continues_it(tmp_path):
    # Ctrl-Z stopped vllm-bug but the command ran on
    proc, child = start_run(tmp_path)
    try:
        proc.send_signal(signal.SIGTSTP)
        assert wait_for_state(child, {"T"}) == "T"
        assert wait_for_state(proc.pid, {"T"}) == "T"
        proc.send_signal(signal.SIGCONT)  # what the shell's fg or bg sends
        assert wait_for_state(child, {"R", "S"}) in ("R", "S")
        assert wait_for_state(proc.pid, {"R", "S"}) in ("R", "S")
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert wait_for_state(child, {"gone", "Z"}) in ("gone", "Z")


@needs_proc
@pytest.mark.parametrize("traps, presses, exit_code", [(("SIGINT",), 2, 128 + 15), (("SIGINT", "SIGTERM"), 3, 128 + 9)])
def test_repeated_ctrl_c_stops_a_command_that_traps_it(tmp_path, traps, presses, exit_code):
    # a command that trapped SIGINT could not be stopped: every Ctrl-C was only passed on
    proc, child = start_run(tmp_path, *traps)
    try:
        for press in range(presses):
            proc.send_signal(signal.SIGINT)
            if press < presses - 1:
                assert proc.stdout.readline().startswith("child ignores")
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == exit_code
    assert "second Ctrl-C: stopping python" in stderr


@needs_proc
def test_after_a_second_ctrl_c_the_grace_period_ends_in_sigkill(monkeypatch):
    import io
    import threading

    from vllm_bug.bundler import supervise

    monkeypatch.setattr(supervise, "KILL_GRACE_S", 0.5)
    said: list[str] = []
    stdout = io.BytesIO()

    def press_ctrl_c_twice():
        while b"\n" not in stdout.getvalue():  # the child has set its traps
            time.sleep(0.05)
        for _ in range(2):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.3)  # apart: two signals sent at once may arrive as one

    threading.Thread(target=press_ctrl_c_twice, daemon=True).start()
    finished = supervise.run_child(
        [sys.executable, "-c", SLEEPER, "SIGINT", "SIGTERM"], stdout, io.BytesIO(), say=said.append
    )
    assert finished.returncode == -signal.SIGKILL
    assert said[-1] == "python did not stop within 0.5 s: killing it (SIGKILL)"
