"""`vllm-bug collect` and `vllm-bug run`: option handling, the run pass-through, the summary.

Exit codes: 0 ok; 1 the bundle cannot be written (output exists without --force, directory not
writable, ...); 2 usage (--python names no interpreter, --log - on a terminal); 3 the --log is unusable
(missing, unreadable, a directory, empty, binary or compressed). `run` exits with COMMAND's own
code (128+N when a signal N killed it), or 127 when COMMAND cannot be started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from vllm_bug.errors import UsageProblem, VllmBugError

AfterWrite = Callable[[Path, dict], list[str]]
Companions = Callable[[Path], "list[Path]"]  # files the after-write step will put beside the bundle
EXIT_CANNOT_START = 127
PUMP_CHUNK = 65536
# Processes the command leaves behind (hung workers) can hold its pipes open for ever: once the command
# has exited, its output is read until the pipes have been quiet this long, or for at most ORPHAN_MAX_S.
ORPHAN_QUIET_S = 2.0
ORPHAN_MAX_S = 30.0


# ------------------------------------------------------------------ collect

def collect_command(log_path: str | None = None, output: str | None = None, force: bool = False,
                    timeout_s: float = 60.0, python_exe: str | None = None, model: str | None = None,
                    quiet: bool = False, *, after_write: AfterWrite | None = None,
                    companions: Companions | None = None) -> int:
    from vllm_bug.bundler.collect import CollectOptions, output_path
    from vllm_bug.bundler.interpreter import choose
    from vllm_bug.bundler.logcapture import read_log

    path = output_path(output)
    _check_outputs(path, force, companions)
    choice = choose(python_exe, os.environ)
    log = read_log(log_path) if log_path else None
    options = CollectOptions(output=str(path), force=force, timeout_s=timeout_s, python_exe=choice.chosen.executable,
                             model=model, log=log, progress=not quiet and sys.stderr.isatty(), interpreter=choice)
    return _collect_and_report(options, path, quiet, after_write, sys.stdout)


def _check_outputs(path: Path, force: bool, companions: Companions | None) -> None:
    """Before any probe or command runs: the bundle and every file written beside it must be writable."""
    from vllm_bug.bundler.collect import check_output_writable

    for target in [path, *(companions(path) if companions else [])]:
        check_output_writable(target, force)


def _collect_and_report(options: Any, path: Path, quiet: bool, after_write: AfterWrite | None, stream) -> int:
    from vllm_bug.bundler.collect import build_payload, write_payload

    started = time.monotonic()
    payload, _manifest, _redactor = build_payload(options)
    written, doc = write_payload(payload, path, options.force)
    extras = after_write(written, doc) if after_write else []
    if quiet:
        print(written, file=stream)
        for warning in _python_warnings(doc["payload"]):
            print(f"vllm-bug: warning: {warning}", file=sys.stderr)
    else:
        print(format_summary(doc["payload"], written, time.monotonic() - started, extras or []), file=stream)
    stream.flush()
    return 0


# ------------------------------------------------------------------ summary

SUMMARY_LABEL_WIDTH = 11
UNREMARKABLE_ABSENT = frozenset({"clang", "cmake", "gcc"})  # a missing compiler rarely matters to a bug report


def format_summary(payload: dict[str, Any], path: Path, seconds: float, extras: list[str]) -> str:
    """What `collect`/`run` print: the facts a reporter can check at a glance, then what to do next."""
    size = path.stat().st_size if path.exists() else 0
    rows = [("GPU", _gpu_line(payload)), ("driver", _driver_line(payload.get("driver") or {})),
            ("python", _python_line(payload)), ("torch", _torch_line(payload.get("torch") or {})),
            ("nvcc", _nvcc_line(payload.get("cuda_toolkit") or {})), ("vLLM", _vllm_line(payload.get("vllm") or {}))]
    rows = [(label, value) for label, value in rows if value is not None]
    log = payload.get("log")
    if log:
        count = len(log.get("tracebacks") or [])
        cut = f", {log.get('omitted_bytes', 0):,} bytes cut from the middle" if log.get("truncated") else ""
        lines_read = log.get("original_lines", 0)
        rows.append(("log", f"{lines_read:,} line{'' if lines_read == 1 else 's'}, "
                            f"{count} traceback{'' if count == 1 else 's'}{cut}"))
    command = payload.get("command")
    if command:
        duration = command.get("duration_s")
        took = f" after {duration:.1f} s" if isinstance(duration, (int, float)) else ""
        rows.append(("command", f"exit code {command.get('exit_code')}{took}"))
    model = payload.get("model")
    if model:
        state = "config.json summarised" if model.get("found") else "config.json not on this machine"
        rows.append(("model", f"{model.get('name')} ({state})"))
    xid = payload.get("xid") or []
    if xid:
        rows.append(("Xid", f"{len(xid)} NVIDIA Xid line{'' if len(xid) == 1 else 's'} in the kernel log"))
    rows += _probe_rows(payload["manifest"]["probes"])
    redactions = payload.get("redactions") or []
    rows.append(("redacted", ", ".join(f"{r['kind']} x{r['count']}" for r in redactions) if redactions
                 else "nothing found to redact"))
    lines = [f"vllm-bug: wrote {path} ({size / 1024:.1f} KiB) in {seconds:.1f} s"]
    lines += [f"  {label + ':':<{SUMMARY_LABEL_WIDTH}}{value}" for label, value in rows]
    lines += [f"warning: {warning}" for warning in _python_warnings(payload)]
    if extras:
        lines.append("Next:")
        lines += [f"  - {extra}" for extra in extras]
    return "\n".join(lines)


def _probe_rows(probes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    failed = []
    for p in probes:
        if p["status"] in ("error", "timeout"):
            what = "timed out" if p["status"] == "timeout" else "failed"
            failed.append(f"{p['name']} {what} after {p.get('duration_s', 0):.1f} s")
    absent: list[str] = []
    for p in probes:
        tool = p["name"].split()[0]  # "nvidia-smi -q" and "nvidia-smi topo -m" are nvidia-smi too
        if p["status"] == "missing" and tool not in UNREMARKABLE_ABSENT and tool not in absent:
            absent.append(tool)
    rows = [("probes", "; ".join(failed) if failed else "none failed or hung")]
    if absent:
        rows.append(("not found", ", ".join(absent)))
    return rows


def _python_line(payload: dict[str, Any]) -> str | None:
    """'Python 3.12.3 at /x/.venv/bin/python (VIRTUAL_ENV is /x/.venv)': the interpreter inspected, and why."""
    python = (payload.get("host") or {}).get("python") or {}
    where = python.get("executable")
    if not where:
        return None
    version = f"Python {python['version']} at " if python.get("version") else ""
    because = f" ({python['chosen_because']})" if python.get("chosen_because") else ""
    return f"{version}{where}{because}"


def _python_warnings(payload: dict[str, Any]) -> list[str]:
    warnings = ((payload.get("host") or {}).get("python") or {}).get("warnings") or []
    return [str(w) for w in warnings]


def _gpu_line(payload: dict[str, Any]) -> str:
    gpus = payload.get("gpus") or []
    driver = payload.get("driver") or {}
    if not gpus:
        reason = (driver.get("error") or "").splitlines()[0][:120] if driver.get("error") else ""
        return "none found" + (f" ({reason})" if reason else "")
    names: dict[str, int] = {}
    for gpu in gpus:
        details = []
        if gpu.get("compute_capability"):
            details.append(f"compute capability {gpu['compute_capability']}")
        if isinstance(gpu.get("memory_total_bytes"), int):
            details.append(f"{gpu['memory_total_bytes'] / 2**30:.1f} GiB")
        label = f"{gpu.get('name')}" + (f" ({', '.join(details)})" if details else "")
        names[label] = names.get(label, 0) + 1
    return ", ".join(f"{n} x {label}" if n > 1 else label for label, n in names.items())


def _driver_line(driver: dict[str, Any]) -> str:
    if not driver.get("version"):
        return "unknown"
    cuda = f", supports CUDA up to {driver['cuda_version']}" if driver.get("cuda_version") else ""
    return f"{driver['version']}{cuda}"


def _nvcc_line(toolkit: dict[str, Any]) -> str:
    if not toolkit.get("nvcc_version"):
        return "not found"
    where = f" ({toolkit['nvcc_path']})" if toolkit.get("nvcc_path") else ""
    return f"CUDA {toolkit['nvcc_version']} toolkit{where}"


def _torch_line(torch: dict[str, Any]) -> str:
    if torch.get("installed") is False:
        return "not installed"
    if not torch.get("version"):
        return f"unknown ({torch.get('error') or 'probe failed'})"
    parts = [str(torch["version"])]
    if torch.get("cuda"):
        parts.append(f"built for CUDA {torch['cuda']}")
    if torch.get("cuda_available") is not None:
        count = torch.get("device_count")
        parts.append(f"sees CUDA: {'yes' if torch['cuda_available'] else 'NO'}"
                     + (f", {count} device{'' if count == 1 else 's'}" if isinstance(count, int) else ""))
    if torch.get("error"):
        parts.append(f"import failed: {str(torch['error'])[:100]}")
    return ", ".join(parts)


def _vllm_line(vllm: dict[str, Any]) -> str:
    if vllm.get("installed") is False:
        return "not installed"
    version = vllm.get("version") or "unknown version"
    variant = f" ({vllm['build_variant']})" if vllm.get("build_variant") else ""
    if vllm.get("import_ok") is False:
        state = f"import FAILED: {str(vllm.get('import_error') or '')[:100]}"
    elif vllm.get("c_import_ok") is False:
        state = f"import ok, vllm._C FAILED: {str(vllm.get('c_import_error') or '')[:100]}"
    elif vllm.get("import_ok"):
        state = "import ok"
    else:
        state = "import not checked"
    unmet = vllm.get("requirements_unmet") or []
    return f"{version}{variant}, {state}" + (f"; {len(unmet)} requirement(s) unmet" if unmet else "")


# ------------------------------------------------------------------ run

class _Pump:
    """Copies one pipe to one of our streams as bytes arrive, and complete lines into the log."""

    def __init__(self, name: str, fd: int, sink, accumulator, lock: threading.Lock) -> None:
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


def _forward_signals(child: subprocess.Popen) -> dict[int, Any]:
    def forward(signum, _frame):
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


def run_child(argv: list[str], stdout_sink, stderr_sink):
    """Run argv with its output passing through live; (exit_code, raw returncode, duration, accumulator)."""
    from vllm_bug.bundler.logcapture import LogAccumulator

    accumulator = LogAccumulator()
    started = time.monotonic()
    try:
        child = _start_child(argv)
    except OSError as exc:
        raise _CannotStart(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    previous = _forward_signals(child)
    lock = threading.Lock()
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
    return exit_code, returncode, time.monotonic() - started, accumulator


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


class _CannotStart(Exception):
    pass


def run_command(output: str | None = None, force: bool = False, always: bool = False,
                command: tuple[str, ...] | list[str] = (), python_exe: str | None = None, *,
                after_write: AfterWrite | None = None, companions: Companions | None = None) -> int:
    from vllm_bug.bundler.collect import CollectOptions, output_path
    from vllm_bug.bundler.interpreter import choose

    argv = list(command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageProblem("no command given; usage: vllm-bug run -- COMMAND [ARGS...]")
    path = output_path(output)
    _check_outputs(path, force, companions)
    choice = choose(python_exe, os.environ, argv=argv)  # before the command runs: a bad --python is a usage error
    try:
        exit_code, returncode, duration, accumulator = run_child(
            argv, _binary(sys.stdout), _binary(sys.stderr))
    except _CannotStart as exc:
        print(f"vllm-bug: error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    if exit_code == 0 and not always:
        return 0
    command_facts: dict[str, Any] = {"argv": argv, "exit_code": exit_code, "duration_s": round(duration, 3)}
    if returncode < 0:
        command_facts["signal"] = -returncode
    log = accumulator.finish("command", os.path.basename(argv[0]))
    options = CollectOptions(output=str(path), force=force, python_exe=choice.chosen.executable, log=log,
                             command=command_facts, progress=sys.stderr.isatty(), interpreter=choice)
    print(f"vllm-bug: {argv[0]} exited with code {exit_code}; collecting a bundle...", file=sys.stderr)
    try:
        _collect_and_report(options, path, False, after_write, sys.stderr)
    except VllmBugError as exc:
        print(f"vllm-bug: error: {exc}", file=sys.stderr)
        return exit_code or exc.exit_code
    return exit_code


def _binary(stream):
    return getattr(stream, "buffer", stream)
