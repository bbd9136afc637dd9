"""`vllm-bug collect`: probe this machine, write the bundle and the files beside it, print a summary.

Exit codes: 0 written; 1 the files cannot be written (a name exists without --force, the folder is
missing or not writable, ...), or collect --ray finds no Ray installed or no cluster to attach to;
2 usage (--python names no interpreter, --log - on a terminal, -o naming a .md, .zip or standard
output); 3 the --log is unusable (missing, unreadable, a directory, empty, binary or compressed);
130 interrupted (nothing is written).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from vllm_bug.commands import Result
from vllm_bug.commands.output import terminal_safe
from vllm_bug.commands.report_files import BundleNames, plan_names, write_bundle_files
from vllm_bug.errors import UsageProblem

MIN_TIMEOUT_S = 1.0
MAX_TIMEOUT_S = 3600.0  # cli.py shows the same bounds in --timeout's click.FloatRange


def execute(
    log_path: str | None = None,
    output: str | None = None,
    force: bool = False,
    timeout_s: float = 60.0,
    python_exe: str | None = None,
    model: str | None = None,
    quiet: bool = False,
    ray_address: str | None = None,
    node_timeout_s: float | None = None,
) -> Result:
    names = plan_names(output, force)
    progress = not quiet and sys.stderr.isatty()
    options = collect_options(
        log_path=log_path,
        timeout_s=timeout_s,
        python_exe=python_exe,
        model=model,
        progress=progress and not ray_address,  # with --ray, a line for each node as it answers instead
    )
    cluster = None
    if ray_address:
        cluster = {"address": ray_address, "node_timeout_s": node_timeout_s, "progress": progress}
    return collect_and_write(options, names, force, quiet=quiet, cluster=cluster)


def collect_options(
    *,
    log_path: str | None = None,
    log_text: str | None = None,
    timeout_s: float = 60.0,
    python_exe: str | None = None,
    model: str | None = None,
    progress: bool = False,
) -> Any:
    """The bundler's CollectOptions: the interpreter chosen (exit 2 for a bad --python), then the log read
    (exit 3 when unusable), from LOG_PATH ('-' for standard input) or else LOG_TEXT."""
    from vllm_bug.bundler.collect import CollectOptions
    from vllm_bug.bundler.interpreter import choose
    from vllm_bug.bundler.logcapture import read_log, read_log_text

    if not MIN_TIMEOUT_S <= timeout_s <= MAX_TIMEOUT_S:
        raise UsageProblem(f"--timeout {timeout_s}: give seconds from {MIN_TIMEOUT_S:g} to {MAX_TIMEOUT_S:g}")
    choice = choose(python_exe, os.environ)
    log = None
    if log_path:
        log = read_log(log_path)
    elif log_text is not None:
        log = read_log_text(log_text)
    return CollectOptions(
        timeout_s=timeout_s,
        python_exe=choice.chosen.executable,
        model=model,
        log=log,
        progress=progress,
        interpreter=choice,
    )


def collect_and_write(
    options: Any,
    names: BundleNames,
    force: bool,
    *,
    quiet: bool = False,
    take_another: bool = False,
    cluster: dict[str, Any] | None = None,
) -> Result:
    """Run the probes (with CLUSTER, ray_collect's options: on every node too), write the bundle and the
    files beside it, and describe what was written."""
    from vllm_bug.commands.summary import format_summary, python_warnings

    started = time.monotonic()
    doc = collect_document(options, cluster)
    written = write_bundle_files(doc, names, force, take_another=take_another)
    if quiet:
        return Result(
            text=f"{terminal_safe(written.files.bundle)}\n", warnings=written.notes + python_warnings(doc["payload"])
        )
    seconds = time.monotonic() - started
    text = format_summary(doc["payload"], written.files.bundle, seconds, written.steps, doc.get("nodes")) + "\n"
    return Result(text=text, warnings=written.notes)


def collect_document(options: Any, cluster: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the probes and return the bundle document (redacted and validated, not yet written); with
    CLUSTER, this machine's collect is the payload and every node of the Ray cluster an entry of its nodes."""
    from vllm_bug.bundler.collect import build_payload
    from vllm_bug.schema.bundle import make_envelope

    if cluster is None:
        payload, _manifest, _redactor = build_payload(options)
        return make_envelope(payload)
    from vllm_bug.bundler.ray_collect import collect_with_cluster

    (payload, _manifest, _redactor), nodes = collect_with_cluster(
        lambda: build_payload(options), collect_timeout_s=options.timeout_s, **cluster
    )
    return make_envelope(payload, nodes=nodes)
