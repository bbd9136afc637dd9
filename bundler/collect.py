"""The orchestrator: every probe at once, one deadline for all, redaction, validation, writing.

Probes run in daemon threads (not a ThreadPoolExecutor, whose workers are joined at interpreter
exit: a probe stuck inside the driver would then hold the process forever). A probe still running
at the deadline is recorded as a timeout and abandoned; its section keeps its empty default.
While the probes run, the schema validator and the compressor are warmed up in another thread,
so nothing is left to load once the slowest probe (the torch import) answers.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vllm_bug.bundler.runner import Manifest, ProbeRecord

DEFAULT_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 10.0
METADATA_TIMEOUT_S = 20.0
DEADLINE_MARGIN_S = 0.5


@dataclass
class CollectOptions:
    timeout_s: float = DEFAULT_TIMEOUT_S
    python_exe: str | None = None
    model: str | None = None
    log: Any = None  # a logcapture.LogCapture, already read
    command: dict[str, Any] | None = None  # {"argv", "exit_code", "duration_s"} for `vllm-bug run`
    interpreter: Any = None  # an interpreter.Choice: why python_exe was chosen, and the others to survey
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    progress: bool = False
    warm_up: bool = True  # load the writer's validator and compressor meanwhile (not where no bundle is written)
    argv: list[str] | None = None  # the command line the manifest records (default: this process's own)


# ------------------------------------------------------------------ concurrency


class _Task:
    def __init__(self, name: str, func: Callable[[], Any]) -> None:
        self.name = name
        self.func = func
        self.value: Any = None
        self.error: str | None = None
        self.done = threading.Event()
        self.started = time.monotonic()
        self.duration = 0.0

    def run(self) -> None:
        try:
            self.value = self.func()
        except BaseException as exc:  # noqa: BLE001 - a failing probe is data
            from vllm_bug.schema.redact import cut_text

            self.error = cut_text(f"{type(exc).__name__}: {exc}", 1000, keep="head")
        finally:
            self.duration = time.monotonic() - self.started
            self.done.set()


def run_concurrently(
    funcs: dict[str, Callable[[], Any]],
    deadline: float,
    manifest: Manifest,
    on_tick: Callable[[list[str], int], None] | None = None,
) -> dict[str, Any]:
    """Run every function in its own daemon thread; wait until all finish or the deadline passes.

    Returns name -> value for those that finished without raising. A task that raised or missed
    the deadline gets a manifest record (its own probes may have recorded more).
    """
    tasks = [_Task(name, func) for name, func in funcs.items()]
    for task in tasks:
        threading.Thread(target=task.run, name=f"vllm-bug-{task.name}", daemon=True).start()
    for task in tasks:
        while not task.done.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            task.done.wait(min(remaining, 0.2))
            if on_tick:
                on_tick([t.name for t in tasks if not t.done.is_set()], len(tasks))
    results: dict[str, Any] = {}
    for task in tasks:
        if not task.done.is_set():
            manifest.add(
                ProbeRecord(
                    f"task:{task.name}",
                    "timeout",
                    time.monotonic() - task.started,
                    error="still running at the collect deadline (--timeout); abandoned",
                )
            )
        elif task.error is not None:
            manifest.add(ProbeRecord(f"task:{task.name}", "error", task.duration, error=task.error))
        else:
            results[task.name] = task.value
    return results


def _warm_up_writer() -> None:
    from vllm_bug.schema import bundle

    bundle._quick_check(bundle.SCHEMA_VERSION)  # jsonschema itself is loaded only for an invalid bundle
    import zstandard  # noqa: F401


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.monotonic()
        self.last = 0.0

    def tick(self, pending: list[str], total: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        waiting = ", ".join(pending[:3]) + ("..." if len(pending) > 3 else "")
        elapsed = now - self.started
        line = f"vllm-bug: collecting {total - len(pending)}/{total} done, {elapsed:4.1f}s; waiting on {waiting}"
        sys.stderr.write("\r" + line[:120].ljust(120))
        sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 120 + "\r")
            sys.stderr.flush()


# ------------------------------------------------------------------ the probes


def probe_functions(options: CollectOptions, manifest: Manifest, deadline: float) -> dict[str, Callable[[], Any]]:
    budget = max(1.0, deadline - time.monotonic() - DEADLINE_MARGIN_S)
    probe_timeout = min(PROBE_TIMEOUT_S, budget)
    python_exe = options.python_exe

    def imports() -> dict[str, Any]:
        from vllm_bug.bundler.probes_python import collect_imports, import_trouble_in_log

        log = options.log
        reason = None
        if log is not None:
            reason = import_trouble_in_log("\n".join(log.tracebacks)) or import_trouble_in_log(log.text)
        return collect_imports(python_exe, manifest, timeout_s=budget, full_import_reason=reason)

    def metadata() -> dict[str, Any]:
        from vllm_bug.bundler.probes_python import collect_metadata

        return collect_metadata(python_exe, manifest, timeout_s=min(METADATA_TIMEOUT_S, budget))

    def gpu() -> dict[str, Any]:
        from vllm_bug.bundler.probes_gpu import collect_gpu_section

        return collect_gpu_section(
            manifest, timeout_s=probe_timeout, visible_devices=options.environ.get("CUDA_VISIBLE_DEVICES")
        )

    def toolkit() -> dict[str, Any]:
        from vllm_bug.bundler.probes_toolkit import collect_cuda_toolkit

        return collect_cuda_toolkit(manifest, timeout_s=probe_timeout)

    def host() -> dict[str, Any]:
        from vllm_bug.bundler.probes_host import collect_host

        return collect_host(manifest, environ=options.environ)

    def xid() -> list[str]:
        from vllm_bug.bundler.xid import collect_xid

        return collect_xid(manifest, timeout_s=min(5.0, budget))

    def compilers() -> dict[str, str | None]:
        return collect_compilers(manifest, timeout_s=probe_timeout)

    def model() -> dict[str, Any] | None:
        from vllm_bug.bundler.model_config import collect_model

        log_text = options.log.text if options.log is not None else None
        if options.log is not None and options.log.tracebacks:
            log_text = (log_text or "") + "\n" + "\n".join(options.log.tracebacks)
        argv = (options.command or {}).get("argv")
        return collect_model(options.model, log_text, argv, options.environ)

    def interpreters() -> list[dict[str, Any]]:
        from vllm_bug.bundler.interpreter import survey

        return survey(options.interpreter.others, timeout_s=probe_timeout)

    functions: dict[str, Callable[[], Any]] = {
        "python-imports": imports,
        "python-metadata": metadata,
        "gpu": gpu,
        "cuda-toolkit": toolkit,
        "host": host,
        "xid": xid,
        "model": model,
        "compilers": compilers,
    }
    if options.warm_up:
        functions["warm-up"] = _warm_up_writer
    if options.interpreter is not None and options.interpreter.others:
        functions["interpreters"] = interpreters
    return functions


COMPILERS = ("gcc", "clang", "cmake")


def collect_compilers(manifest: Manifest, timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, str | None]:
    """First line of `gcc/clang/cmake --version` (Triton needs a C compiler; collect_env lists all three)."""
    from vllm_bug.bundler.runner import run_command

    found: dict[str, str | None] = {}
    for name in COMPILERS:
        result = run_command(name, [name, "--version"], timeout_s=timeout_s, output_cap=4096)
        manifest.add(result.record)
        lines = result.stdout.strip().splitlines()
        found[name] = lines[0][:200] if result.ok and lines else None
    return found


# ------------------------------------------------------------------ assembling the payload


def assemble_payload(
    results: dict[str, Any],
    options: CollectOptions,
    manifest: Manifest,
    redactor: Any,
    started_utc: str,
    started: float,
) -> dict[str, Any]:
    from vllm_bug.bundler import probes_python
    from vllm_bug.bundler.packages import clean_packages

    metadata = results.get("python-metadata") or {"error": "metadata probe did not finish"}
    imports = results.get("python-imports") or {"error": "import probe did not finish"}
    gpu = results.get("gpu") or {}
    host = dict(results.get("host") or {})
    target_python = probes_python.target_python_facts(metadata)
    if target_python:
        host["python"] = {**(host.get("python") or {}), **target_python}
    if options.interpreter is not None:
        from vllm_bug.bundler.interpreter import bundle_facts

        host["python"] = {
            **(host.get("python") or {}),
            **bundle_facts(options.interpreter, metadata, results.get("interpreters") or []),
        }
    if "compilers" in results:
        host["compilers"] = results["compilers"]
    payload: dict[str, Any] = {
        "host": host,
        "gpus": list(gpu.get("gpus") or []),
        "driver": dict(gpu.get("driver") or {}),
        "cuda_toolkit": dict(results.get("cuda-toolkit") or {}),
        "torch": probes_python.build_torch_section(metadata, imports),
        "vllm": probes_python.build_vllm_section(metadata, imports),
        "packages": clean_packages(probes_python.packages_of(metadata)),
        "env": _collect_env(options.environ, redactor, manifest),
        "nvidia_smi": dict(gpu.get("nvidia_smi") or {}),
        "xid": list(results.get("xid") or [])[:500],
        "log": options.log.to_json() if options.log is not None else None,
        "command": options.command,
        "model": results.get("model"),
    }
    if metadata.get("duplicates"):
        payload["package_duplicates"] = metadata["duplicates"]
    if isinstance(metadata.get("requirements_check"), dict):
        payload["requirements_check"] = metadata["requirements_check"]
    if gpu.get("cuda_visible_devices") is not None:
        payload["cuda_visible_devices"] = gpu["cuda_visible_devices"]
    conda_packages = probes_python.conda_packages_of(metadata)
    if conda_packages is not None:
        payload["conda_packages"] = conda_packages
    for key, value in gpu.items():
        if key not in ("gpus", "driver", "nvidia_smi", "cuda_visible_devices"):
            payload.setdefault(f"gpu_{key}", value)
    if payload["log"] is not None:
        payload["log"]["text"] = redactor.text(payload["log"]["text"])
        payload["log"]["tracebacks"] = [redactor.text(t) for t in payload["log"]["tracebacks"]]
    if payload["command"] is not None:
        payload["command"] = {**payload["command"], "argv": redactor.argv(list(payload["command"]["argv"]))}
    payload["manifest"] = {
        "started_utc": started_utc,
        "duration_s": round(time.monotonic() - started, 3),
        "collector": {
            "argv": redactor.argv(list(sys.argv if options.argv is None else options.argv)),
            "python": sys.executable,
            "target_python": options.python_exe or sys.executable,
            "timeout_s": options.timeout_s,
        },
        "probes": manifest.to_json(),
    }
    from vllm_bug.schema.redact import summary_of

    payload = redactor.scrub(payload)
    payload["redactions"] = summary_of(payload, redactor)  # also what was redacted before a cut, by other Redactors
    return payload


def _collect_env(environ: dict[str, str], redactor: Any, manifest: Manifest) -> dict[str, str]:
    start = time.monotonic()
    try:
        from vllm_bug.bundler.envvars import collect_env

        env = collect_env(environ, redactor)
    except Exception as exc:  # noqa: BLE001 - recorded, and the bundle goes on without env
        manifest.add(ProbeRecord("env", "error", time.monotonic() - start, error=f"{type(exc).__name__}: {exc}"))
        return {}
    manifest.add(ProbeRecord("env", "ok", time.monotonic() - start))
    return env


def build_payload(options: CollectOptions) -> tuple[dict[str, Any], Manifest, Any]:
    """Run every probe concurrently within options.timeout_s; return (payload, manifest, redactor)."""
    from vllm_bug.schema.bundle import utc_now_iso
    from vllm_bug.schema.redact import Redactor

    started = time.monotonic()
    started_utc = utc_now_iso()
    deadline = started + options.timeout_s
    manifest = Manifest()
    redactor = Redactor()
    progress = _Progress(options.progress)
    results = run_concurrently(probe_functions(options, manifest, deadline), deadline, manifest, progress.tick)
    progress.clear()
    payload = assemble_payload(results, options, manifest, redactor, started_utc, started)
    return payload, manifest, redactor
