"""`vllm-bug run`'s supervisor: runs a command with its output passing through live, and captured for the bundle.

The command runs in its own process group; SIGINT, SIGTERM and SIGHUP sent to vllm-bug are passed on to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

PUMP_CHUNK = 65536
# Processes the command leaves behind (hung workers) can hold its pipes open for ever: once the command
# has exited, its output is read until the pipes have been quiet this long, or for at most ORPHAN_MAX_S.
ORPHAN_QUIET_S = 2.0
ORPHAN_MAX_S = 30.0


class CannotStart(Exception):
    """The command could not be started at all (not found, not executable)."""


@dataclass
class Finished:
    exit_code: int  # the shell's convention: 128+N when signal N ended the command
    returncode: int  # Popen's: negative for a signal
    duration_s: float
    log: Any  # a logcapture.LogAccumulator holding everything the command wrote


# ------------------------------------------------------------------ output

class _Pump:
    """Copies one pipe to one of our streams as bytes arrive, and complete lines into the log."""

    def __init__(self, name: str, fd: int, sink: BinaryIO, accumulator: Any, lock: threading.Lock) -> None:
        self.name, self.fd, self.sink, self.accumulator, self.lock = name, fd, sink, accumulator, lock
        self.carry = b""
        self.last_read = time.monotonic()
        self.busy = False  # passing data on: a slow reader of our own output is not a quiet pipe
        self.detached = False  # set (under lock) when run_child stops waiting: the log is complete
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            try:
                data = os.read(self.fd, PUMP_CHUNK)
            except OSError:
                break
            if not data:
                break
            self.busy = True
            self._pass_through(data)
            self._keep(data)
            self.last_read, self.busy = time.monotonic(), False
        if self.carry:
            with self.lock:
                if not self.detached:
                    self.accumulator.feed(self.carry + b"\n", self.name)
            self.carry = b""

    def _pass_through(self, data: bytes) -> None:
        try:
            self.sink.write(data)
            self.sink.flush()
        except (OSError, ValueError):
            pass  # our own output went away (closed pipe): keep capturing anyway

    def _keep(self, data: bytes) -> None:
        data = self.carry + data
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) < PUMP_CHUNK * 16:
            self.carry = data
            return
        cut = cut or len(data)
        self.carry = data[cut:]
        with self.lock:
            if not self.detached:
                self.accumulator.feed(data[:cut], self.name)


def _wait_for_output(pumps: list[_Pump], lock: threading.Lock) -> None:
    """Read the exited command's pipes to their end, unless processes it left behind keep them open."""
    exited = time.monotonic()
    while any(p.thread.is_alive() for p in pumps):
        now = time.monotonic()
        quiet = not any(p.busy for p in pumps) and now - max(exited, *(p.last_read for p in pumps)) > ORPHAN_QUIET_S
        if quiet or now - exited > ORPHAN_MAX_S:
            break
        for pump in pumps:
            pump.thread.join(0.05)
    with lock:
        for pump in pumps:
            pump.detached = True


# ------------------------------------------------------------------ starting the command

def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")  # a Python child writing to a pipe would otherwise hold its output back
    return env


def _start_child(argv: list[str]) -> subprocess.Popen:
    kwargs: dict[str, Any] = {}
    if sys.version_info >= (3, 11):
        kwargs["process_group"] = 0
    else:
        kwargs["preexec_fn"] = os.setpgrp
    stdin = subprocess.DEVNULL if sys.stdin is None or sys.stdin.isatty() else None
    return subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_child_env(), **kwargs)


# ------------------------------------------------------------------ signals

def _forward_signals(child: subprocess.Popen) -> dict[int, Any]:
    def forward(signum: int, _frame: Any) -> None:
        try:
            os.killpg(child.pid, signum)
        except (ProcessLookupError, PermissionError):
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            previous[sig] = signal.signal(sig, forward)
        except (ValueError, OSError):  # not the main thread: leave signals alone
            pass
    return previous


def run_child(argv: list[str], stdout_sink: BinaryIO, stderr_sink: BinaryIO) -> Finished:
    """Run argv with its output passing through live and captured."""
    from vllm_bug.bundler.logcapture import LogAccumulator

    accumulator = LogAccumulator()
    started = time.monotonic()
    try:
        child = _start_child(argv)
    except OSError as exc:
        raise CannotStart(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    previous = _forward_signals(child)
    lock = threading.Lock()
    assert child.stdout is not None and child.stderr is not None
    pumps = [_Pump("stdout", child.stdout.fileno(), stdout_sink, accumulator, lock),
             _Pump("stderr", child.stderr.fileno(), stderr_sink, accumulator, lock)]
    try:
        for pump in pumps:
            pump.thread.start()
        returncode = child.wait()
        _wait_for_output(pumps, lock)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for pump, pipe in zip(pumps, (child.stdout, child.stderr)):
            if not pump.thread.is_alive():  # closing a pipe a pump still reads could hand its fd number to another file
                pipe.close()
    exit_code = returncode if returncode >= 0 else 128 - returncode
    return Finished(exit_code, returncode, time.monotonic() - started, accumulator)
