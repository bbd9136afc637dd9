"""Runs probes the way sos runs plugin commands: each with a timeout and an output cap, recorded in the manifest.

A probe that fails, hangs or is missing becomes data (a ProbeRecord), never an exception.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_OUTPUT_CAP = 1 << 20

STATUSES = ("ok", "error", "timeout", "missing", "skipped")


@dataclass
class ProbeRecord:
    name: str
    status: str
    duration_s: float
    exit_code: int | None = None
    truncated: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "status": self.status, "duration_s": round(self.duration_s, 4)}
        if self.exit_code is not None:
            out["exit_code"] = self.exit_code
        if self.truncated:
            out["truncated"] = True
        if self.error:
            from vllm_bug.schema.redact import cut_text

            out["error"] = cut_text(self.error, 2000, keep="head")  # redacted before any cut inside a line
        return out


@dataclass
class CommandResult:
    record: ProbeRecord
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.record.status == "ok"


@dataclass
class Manifest:
    """Thread-safe list of probe records for one collection."""

    records: list[ProbeRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, record: ProbeRecord) -> ProbeRecord:
        with self._lock:
            self.records.append(record)
        return record

    def to_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in sorted(self.records, key=lambda r: r.name)]


def _decode(data: bytes, cap: int) -> tuple[str, bool]:
    truncated = len(data) > cap
    return data[:cap].decode("utf-8", errors="replace"), truncated


def run_command(
    name: str,
    argv: list[str],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    output_cap: int = DEFAULT_OUTPUT_CAP,
    env: dict[str, str] | None = None,
    stdin_text: str | None = None,
) -> CommandResult:
    """Run argv (no shell) in its own process group; kill the whole group on timeout."""
    start = time.monotonic()
    exe = argv[0] if os.path.sep in argv[0] else shutil.which(argv[0])
    if exe is None or not os.path.exists(exe):
        return CommandResult(ProbeRecord(name, "missing", time.monotonic() - start, error=f"{argv[0]} not found"))
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("LC_ALL", "C.UTF-8")
    try:
        proc = subprocess.Popen(
            [exe, *argv[1:]],
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=run_env,
            start_new_session=True,
        )
    except OSError as exc:
        return CommandResult(
            ProbeRecord(name, "error", time.monotonic() - start, error=f"cannot start {argv[0]}: {exc.strerror or exc}")
        )
    try:
        out, err = proc.communicate(input=stdin_text.encode() if stdin_text is not None else None, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = _drain(proc)
        stdout, trunc = _decode(out, output_cap)
        stderr, _ = _decode(err, output_cap)
        record = ProbeRecord(
            name, "timeout", time.monotonic() - start, truncated=trunc, error=f"no answer within {timeout_s:g} s"
        )
        return CommandResult(record, stdout, stderr)
    stdout, trunc_out = _decode(out, output_cap)
    stderr, trunc_err = _decode(err, output_cap)
    status = "ok" if proc.returncode == 0 else "error"
    error = None if status == "ok" else _last_output(stderr, stdout) or f"exit code {proc.returncode}"
    record = ProbeRecord(
        name, status, time.monotonic() - start, exit_code=proc.returncode, truncated=trunc_out or trunc_err, error=error
    )
    return CommandResult(record, stdout, stderr)


def _last_output(stderr: str, stdout: str, limit: int = 500) -> str:
    """The end of what a failed command printed, cut at a line end (or redacted before a cut inside a line)."""
    from vllm_bug.schema.redact import cut_text

    return cut_text(stderr.strip() or stdout.strip(), limit, keep="tail")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _drain(proc: subprocess.Popen) -> tuple[bytes, bytes]:
    try:
        return proc.communicate(timeout=2)
    except subprocess.TimeoutExpired:
        return b"", b""


def run_python_probe(
    name: str,
    func: Callable[[], Any],
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[Any, ProbeRecord]:
    """Run an in-process probe function in a daemon thread with a timeout.

    Returns (value, record); value is None unless the probe finished without raising. A probe that
    hangs is abandoned (its thread is a daemon and cannot block exit).
    """
    start = time.monotonic()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # noqa: BLE001 - every probe failure is data
            box["error"] = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=target, name=f"probe-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    duration = time.monotonic() - start
    if thread.is_alive():
        return None, ProbeRecord(name, "timeout", duration, error=f"no answer within {timeout_s:g} s")
    if "error" in box:
        return None, ProbeRecord(name, "error", duration, error=box["error"])
    return box.get("value"), ProbeRecord(name, "ok", duration)
