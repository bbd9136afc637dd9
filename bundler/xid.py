"""NVIDIA Xid lines from the kernel log: the GPU's own record of hardware and driver faults.

dmesg is tried first (it may be refused without root; that is recorded, not a failure), then
`journalctl -k`, then the syslog files. The first source that yields any text is used.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from vllm_bug.bundler.nvidia_smi import scrub_identifiers
from vllm_bug.bundler.runner import CommandResult, Manifest, ProbeRecord, run_command

MAX_LINES = 200
MAX_LINE_CHARS = 1000
KERNEL_LOG_CAP = 16 << 20
LOG_FILES = ("var/log/kern.log", "var/log/messages")
XID_LINE = re.compile(r"NVRM:.*(?:\bXid\b|fallen off the bus)", re.I)


def xid_lines(text: str) -> list[str]:
    """The newest Xid lines of a kernel log (oldest first), each capped, GPU UUIDs hashed."""
    found = [line.strip() for line in text.splitlines() if XID_LINE.search(line)]
    return [scrub_identifiers(line)[:MAX_LINE_CHARS] for line in found[-MAX_LINES:]]


def read_tail(path: Path, cap: int = KERNEL_LOG_CAP) -> str:
    """The last `cap` bytes of a file: its newest lines."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - cap))
        return handle.read(cap).decode("utf-8", "replace")


def _run_source(run: Callable[..., CommandResult], name: str, argv: list[str], timeout_s: float) -> CommandResult:
    start = time.monotonic()
    try:
        return run(name, argv, timeout_s=timeout_s, output_cap=KERNEL_LOG_CAP)
    except Exception as exc:  # noqa: BLE001 - recorded like any failed command
        return CommandResult(ProbeRecord(name, "error", time.monotonic() - start, error=f"{type(exc).__name__}: {exc}"))


def _read_log_file(root: Path, relative: str) -> tuple[str | None, ProbeRecord]:
    name = Path(relative).name
    start = time.monotonic()
    path = root / relative
    if not path.exists():
        return None, ProbeRecord(name, "missing", time.monotonic() - start, error=f"/{relative} does not exist")
    try:
        text = read_tail(path)
    except OSError as exc:
        return None, ProbeRecord(
            name, "error", time.monotonic() - start, error=f"cannot read /{relative}: {exc.strerror or exc}"
        )
    return text, ProbeRecord(name, "ok", time.monotonic() - start)


def collect_xid(
    manifest: Manifest, timeout_s: float = 5.0, run: Callable[..., CommandResult] = run_command, root: Path = Path("/")
) -> list[str]:
    """Xid lines, at most 200, newest last. Never raises; each source tried is a manifest record."""
    try:
        return _collect(manifest, timeout_s, run, Path(root))
    except Exception as exc:  # noqa: BLE001 - last resort
        manifest.add(ProbeRecord("xid", "error", 0.0, error=f"{type(exc).__name__}: {exc}"))
        return []


def _collect(manifest: Manifest, timeout_s: float, run: Callable[..., CommandResult], root: Path) -> list[str]:
    deadline = time.monotonic() + timeout_s
    commands = (("dmesg", ["dmesg"]), ("journalctl -k", ["journalctl", "-k", "--no-pager", "-q", "-n", "100000"]))
    for name, argv in commands:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            manifest.add(ProbeRecord(name, "skipped", 0.0, error="no time left for the kernel log"))
            continue
        result = _run_source(run, name, argv, remaining)
        if result.record.status == "ok" and not result.stdout.strip():
            result.record.status = "error"
            result.record.error = "empty output (not permitted to read the kernel log?)"
        manifest.add(result.record)
        if result.record.status == "ok":
            return xid_lines(result.stdout)
    for relative in LOG_FILES:
        text, record = _read_log_file(root, relative)
        manifest.add(record)
        if text:
            return xid_lines(text)
    return []
