"""Xid lines from dmesg, journalctl or the syslog files, with fake executables and a fake root."""

import stat
import time
from pathlib import Path

from conftest import minimal_payload
from vllm_bug.bundler import xid as X
from vllm_bug.bundler.runner import Manifest, run_command
from vllm_bug.schema.bundle import make_envelope, validate

UUID = "GPU-3fde5e08-4d8b-8211-5c99-cf4ced6c1ba3"  # a real H200's UUID (tests/fixtures/device/h200x2)
# Kernel log in the layout NVIDIA's Xid documentation gives: "NVRM: Xid (PCI:<bus>): <code>, pid=..., ..."
KERNEL_LOG = f"""[    0.000000] Linux version 6.18.44-fc-v657-gpu
[    4.120331] nvidia: module license 'NVIDIA' taints kernel.
[ 1802.442191] NVRM: Xid (PCI:0000:00:06): 13, pid=40122, name=python3, Graphics SM Warp Exception on (GPC 0, TPC 1, SM 0): Out Of Range Address
[ 1802.442207] NVRM: Xid (PCI:0000:00:06): 43, pid=40122, name=python3, Ch 00000008
[ 1803.100000] python3[40122]: segfault at 0 ip 0000 sp 0000 error 4
[ 2210.771004] NVRM: GPU at PCI:0000:00:07: {UUID}
[ 2210.771010] NVRM: Xid (PCI:0000:00:07): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.
[ 2210.771020] NVRM: GPU 0000:00:07.0: GPU has fallen off the bus.
"""
EXPECTED = [
    "[ 1802.442191] NVRM: Xid (PCI:0000:00:06): 13, pid=40122, name=python3, Graphics SM Warp Exception on (GPC 0, TPC 1, SM 0): Out Of Range Address",
    "[ 1802.442207] NVRM: Xid (PCI:0000:00:06): 43, pid=40122, name=python3, Ch 00000008",
    "[ 2210.771010] NVRM: Xid (PCI:0000:00:07): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    "[ 2210.771020] NVRM: GPU 0000:00:07.0: GPU has fallen off the bus.",
]
REFUSED = "echo 'dmesg: read kernel buffer failed: Operation not permitted' >&2\nexit 1"


def script(bindir: Path, name: str, body: str) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def printing(tmp_path: Path, text: str) -> str:
    log = tmp_path / "kernel.log"
    log.write_text(text)
    return f"cat '{log}'"


def runner(bindir: Path, seen=None):
    def run(name, argv, timeout_s=10.0, **kwargs):
        if seen is not None:
            seen.append(argv)
        return run_command(name, [str(bindir / argv[0]), *argv[1:]], timeout_s=timeout_s, **kwargs)

    return run


def statuses(manifest: Manifest) -> dict:
    return {r["name"]: r["status"] for r in manifest.to_json()}


def test_xid_lines_from_dmesg(tmp_path):
    script(tmp_path / "bin", "dmesg", printing(tmp_path, KERNEL_LOG))
    manifest = Manifest()
    lines = X.collect_xid(manifest, run=runner(tmp_path / "bin"), root=tmp_path / "root")
    assert lines == EXPECTED
    assert statuses(manifest) == {"dmesg": "ok"}
    payload = minimal_payload()
    payload["xid"] = lines
    validate(make_envelope(payload))


def test_refused_dmesg_falls_back_to_journalctl(tmp_path):
    script(tmp_path / "bin", "dmesg", REFUSED)
    script(tmp_path / "bin", "journalctl", printing(tmp_path, KERNEL_LOG))
    seen = []
    manifest = Manifest()
    lines = X.collect_xid(manifest, run=runner(tmp_path / "bin", seen), root=tmp_path / "root")
    assert lines == EXPECTED
    assert statuses(manifest) == {"dmesg": "error", "journalctl -k": "ok"}
    assert "Operation not permitted" in next(r["error"] for r in manifest.to_json() if r["name"] == "dmesg")
    assert seen[1][:4] == ["journalctl", "-k", "--no-pager", "-q"]


def test_silent_journalctl_falls_back_to_kern_log(tmp_path):
    script(tmp_path / "bin", "dmesg", REFUSED)
    script(tmp_path / "bin", "journalctl", "exit 0")  # what an unprivileged user gets with -q
    root = tmp_path / "root"
    (root / "var/log").mkdir(parents=True)
    (root / "var/log/kern.log").write_text(KERNEL_LOG.replace("[", "Nov 26 21:40:49 vm kernel: ["))
    manifest = Manifest()
    lines = X.collect_xid(manifest, run=runner(tmp_path / "bin"), root=root)
    assert [line.split("kernel: ", 1)[1] for line in lines] == EXPECTED
    assert statuses(manifest) == {"dmesg": "error", "journalctl -k": "error", "kern.log": "ok"}


def test_no_source_at_all_is_recorded(tmp_path):
    manifest = Manifest()
    assert X.collect_xid(manifest, run=runner(tmp_path / "nothing"), root=tmp_path / "root") == []
    assert statuses(manifest) == {
        "dmesg": "missing",
        "journalctl -k": "missing",
        "kern.log": "missing",
        "messages": "missing",
    }


def test_unreadable_log_file_is_an_error_record(tmp_path):
    root = tmp_path / "root"
    (root / "var/log/kern.log").mkdir(parents=True)  # a directory cannot be read as a file
    manifest = Manifest()
    assert X.collect_xid(manifest, run=runner(tmp_path / "nothing"), root=root) == []
    assert statuses(manifest)["kern.log"] == "error"


def test_dmesg_uuids_are_hashed():
    lines = X.xid_lines(f"NVRM: Xid (PCI:0000:00:07): 79, GPU {UUID} has fallen off the bus.\n")
    assert len(lines) == 1 and UUID not in lines[0] and "<hashed:" in lines[0]


def test_at_most_200_newest_last_and_long_lines_capped():
    text = "".join(f"[{i}.0] NVRM: Xid (PCI:0000:00:06): 31, pid={i}, name=python3\n" for i in range(500))
    text += "[501.0] NVRM: Xid (PCI:0000:00:06): 13, " + "x" * 5000 + "\n"
    lines = X.xid_lines(text)
    assert len(lines) == 200
    assert lines[0].startswith("[301.0]") and lines[-2].startswith("[499.0]")
    assert len(lines[-1]) == 1000 and lines[-1].startswith("[501.0]")


def test_hanging_dmesg_keeps_the_whole_probe_within_its_bound(tmp_path):
    script(tmp_path / "bin", "dmesg", "sleep 30")
    script(tmp_path / "bin", "journalctl", "sleep 30")
    manifest = Manifest()
    start = time.monotonic()
    assert X.collect_xid(manifest, timeout_s=1.0, run=runner(tmp_path / "bin"), root=tmp_path / "root") == []
    assert time.monotonic() - start < 3.0
    found = statuses(manifest)
    assert found["dmesg"] == "timeout" and found["journalctl -k"] in ("skipped", "timeout")


def test_read_tail_keeps_the_newest_bytes(tmp_path):
    log = tmp_path / "kern.log"
    log.write_text("old line\n" * 1000 + "newest line\n")
    assert X.read_tail(log, cap=12) == "newest line\n"
