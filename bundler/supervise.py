"""`vllm-bug run`'s supervisor: runs a command with its output passing through live, and captured for the bundle.

How the command is run, and why:
- It gets its own process group, so one killpg reaches it and every process it starts (vLLM's engine
  and worker processes) and never vllm-bug itself.
- That group is not the terminal's foreground group: the terminal's keys reach vllm-bug, which passes
  each one on, so the job behaves as it would without the wrapper. Ctrl-C (SIGINT), Ctrl-\\ (SIGQUIT),
  SIGTERM and SIGHUP go to the command's group as they are. Ctrl-Z (SIGTSTP) stops the command's group
  and then vllm-bug; when the shell continues vllm-bug (fg, bg: SIGCONT), vllm-bug continues the group.
  (Leaving the command in the terminal's group instead would let the terminal signal it directly, but
  then vllm-bug could not tell a Ctrl-C from a `kill -INT` meant for itself, nor signal the command's
  whole tree without signalling itself.)
- A second Ctrl-C escalates, for a command that traps SIGINT: SIGTERM to the group, then SIGKILL after
  KILL_GRACE_S or at a third Ctrl-C.
- On Linux the command gets SIGTERM when vllm-bug dies in any way, SIGKILL included (PR_SET_PDEATHSIG):
  SIGTERM rather than SIGKILL so that a vLLM server can still stop its own workers and free the GPUs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

PUMP_CHUNK = 65536
# Processes the command leaves behind (hung workers) can hold its pipes open for ever: once the command
# has exited, its output is read until the pipes have been quiet this long, or for at most ORPHAN_MAX_S.
ORPHAN_QUIET_S = 2.0
ORPHAN_MAX_S = 30.0
KILL_GRACE_S = 10.0
PARENT_DEATH_SIGNAL = signal.SIGTERM
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_WAIT_STEP_S = 0.2


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


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _child_setup() -> Callable[[], None]:
    """What the child runs between fork and exec: its own process group; on Linux, death with its parent."""
    prctl = _load_prctl()  # loaded here: nothing may be loaded between fork and exec
    parent = os.getpid()
    own_group = sys.version_info < (3, 11)  # newer Pythons do it themselves (process_group=0)

    def setup() -> None:
        if own_group:
            os.setpgrp()
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the signal was armed
                os.kill(os.getpid(), PARENT_DEATH_SIGNAL)

    return setup


def _start_child(argv: list[str]) -> subprocess.Popen:
    kwargs: dict[str, Any] = {"preexec_fn": _child_setup()}
    if sys.version_info >= (3, 11):
        kwargs["process_group"] = 0
    stdin = subprocess.DEVNULL if sys.stdin is None or sys.stdin.isatty() else None
    return subprocess.Popen(
        argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_child_env(), **kwargs
    )


# ------------------------------------------------------------------ signals


class _Relay:
    """Passes the signals vllm-bug receives on to the command's process group (see the module docstring)."""

    PASSED_ON = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")

    def __init__(self, child: subprocess.Popen, say: Callable[[str], None]) -> None:
        self.child, self.say = child, say
        self.interrupts = 0
        self.kill_at: float | None = None
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        for name in self.PASSED_ON:
            self._handle(name, self._on_signal)
        self._handle("SIGTSTP", self._on_stop)
        self._handle("SIGCONT", self._on_continue)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def wait(self) -> int:
        """Wait for the command to exit, killing it once the grace after a second Ctrl-C has passed."""
        while True:
            try:
                return self.child.wait(timeout=_WAIT_STEP_S)
            except subprocess.TimeoutExpired:
                pass
            if self.kill_at is not None and time.monotonic() >= self.kill_at:
                self.kill_at = None
                self.say(f"{self._name()} did not stop within {KILL_GRACE_S:g} s: killing it (SIGKILL)")
                self.send(signal.SIGKILL)

    def send(self, signum: int) -> None:
        try:
            os.killpg(self.child.pid, signum)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signum)

    def _handle(self, name: str, handler: Callable[[int, Any], None]) -> None:
        signum = getattr(signal, name, None)
        if signum is None:
            return  # not on this platform
        with contextlib.suppress(ValueError, OSError):  # not the main thread: leave signals alone
            self.previous[signum] = signal.signal(signum, handler)

    def _name(self) -> str:
        args = self.child.args
        return os.path.basename(str(args[0] if isinstance(args, (list, tuple)) else args))

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT:
            self.interrupts += 1
            if self.interrupts == 2:
                self.say(
                    f"second Ctrl-C: stopping {self._name()} with SIGTERM; "
                    f"it is killed in {KILL_GRACE_S:g} s, or at the next Ctrl-C"
                )
                self.kill_at = time.monotonic() + KILL_GRACE_S
                self.send(signal.SIGTERM)
                return
            if self.interrupts > 2:
                self.say(f"killing {self._name()} (SIGKILL)")
                self.kill_at = None
                self.send(signal.SIGKILL)
                return
        self.send(signum)

    def _on_stop(self, _signum: int, _frame: Any) -> None:
        self.send(signal.SIGTSTP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        try:
            os.kill(os.getpid(), signal.SIGTSTP)  # vllm-bug stops here until the shell continues it
        finally:
            signal.signal(signal.SIGTSTP, self._on_stop)
        self.send(signal.SIGCONT)

    def _on_continue(self, _signum: int, _frame: Any) -> None:
        self.send(signal.SIGCONT)


def _silent(_message: str) -> None:
    pass


def run_child(
    argv: list[str], stdout_sink: BinaryIO, stderr_sink: BinaryIO, say: Callable[[str], None] = _silent
) -> Finished:
    """Run argv with its output passing through live and captured; SAY reports escalations to the user."""
    from vllm_bug.bundler.logcapture import LogAccumulator

    accumulator = LogAccumulator()
    started = time.monotonic()
    try:
        child = _start_child(argv)
    except OSError as exc:
        raise CannotStart(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    relay = _Relay(child, say)
    relay.install()
    lock = threading.Lock()
    assert child.stdout is not None and child.stderr is not None
    pumps = [
        _Pump("stdout", child.stdout.fileno(), stdout_sink, accumulator, lock),
        _Pump("stderr", child.stderr.fileno(), stderr_sink, accumulator, lock),
    ]
    try:
        for pump in pumps:
            pump.thread.start()
        returncode = relay.wait()
        _wait_for_output(pumps, lock)
    finally:
        relay.restore()
        for pump, pipe in zip(pumps, (child.stdout, child.stderr), strict=True):
            if not pump.thread.is_alive():  # closing a pipe a pump still reads could hand its fd number to another file
                pipe.close()
    exit_code = returncode if returncode >= 0 else 128 - returncode
    return Finished(exit_code, returncode, time.monotonic() - started, accumulator)
