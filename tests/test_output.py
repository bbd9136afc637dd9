"""vllm_bug.commands.output: -o, '-' for standard output, --force, never over an input, atomic writes,
files written together, one wording; and names made safe for a terminal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vllm_bug.cli import main
from vllm_bug.commands import output
from vllm_bug.commands.output import (
    commit_together,
    json_text,
    terminal_safe,
    write_file,
)
from vllm_bug.errors import VllmBugError

LOG = "RuntimeError: CUDA error: an illegal memory access was encountered\n"


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.fixture
def log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "in.log"
    path.write_text(LOG)
    return path


@pytest.mark.parametrize(
    "command", [["analyze", "in.log", "--format", "json"], ["triage", "in.log", "--format", "json", "-j", "1"]]
)
def test_dash_means_standard_output(log, capsys, command):
    # `-o -` wrote a file named '-'
    code, out, _ = run(capsys, *command, "-o", "-")
    assert code == 0
    assert json.loads(out)
    assert not (log.parent / "-").exists()


@pytest.mark.parametrize("command", [["analyze", "in.log"], ["triage", "in.log", "-j", "1"]])
def test_one_wording_for_an_existing_output(log, capsys, command):
    (log.parent / "taken").write_text("keep")
    code, _, err = run(capsys, *command, "-o", "taken")
    assert code == 1
    assert err == "vllm-bug: error: taken already exists; use --force to overwrite it\n"
    assert (log.parent / "taken").read_text() == "keep"


def test_collect_uses_the_same_wording(log, capsys):
    (log.parent / "b.zst").write_text("keep")
    code, _, err = run(capsys, "collect", "--log", "in.log", "-o", "b.zst")
    assert (code, err) == (1, "vllm-bug: error: b.zst already exists; use --force to overwrite it\n")


@pytest.mark.parametrize("command", [["analyze", "in.log"], ["triage", "in.log", "-j", "1"]])
def test_never_over_an_input_with_the_same_wording(log, capsys, command):
    code, _, err = run(capsys, *command, "-o", "in.log", "--force")
    assert (code, err) == (1, "vllm-bug: error: refusing to write over the input in.log\n")
    assert log.read_text() == LOG


def test_write_file_is_atomic_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out.txt"
    write_file(target, b"first")
    with pytest.raises(VllmBugError, match="already exists"):
        write_file(target, b"second")
    write_file(target, b"third", force=True)
    assert target.read_bytes() == b"third"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_files_written_together_appear_together_or_not_at_all(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    real_link = os.link

    def someone_takes_c(src, dst, **kwargs):
        if Path(dst) == c:
            c.write_text("theirs")
        return real_link(src, dst, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(output.os, "link", someone_takes_c)
        with pytest.raises(output.OutputExists):
            commit_together([(a, b"1"), (b, b"2"), (c, b"3")], force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"] and c.read_text() == "theirs"


def test_ctrl_c_cannot_split_files_written_together(tmp_path):
    files = [(tmp_path / name, name.encode()) for name in ("a", "b", "c")]
    real_link = os.link

    def interrupted_link(src, dst, **kwargs):
        if Path(dst).name == "a":
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C right after the first rename
        return real_link(src, dst, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(output.os, "link", interrupted_link)
        with pytest.raises(KeyboardInterrupt):  # acted on once all three are in place
            commit_together(files, force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "target, message",
    [
        (".", "vllm-bug: error: . is a directory; give a file name\n"),
        ("x" * 300, "vllm-bug: error: cannot write " + "x" * 300 + ": File name too long\n"),
        ("missing/b.zst", "vllm-bug: error: cannot write missing/b.zst: directory missing does not exist\n"),
    ],
)
def test_collect_output_in_odd_places_is_one_clear_line(log, capsys, target, message):
    # `-o .` and a 300-character name ended in "internal error"
    code, _, err = run(capsys, "collect", "--log", "in.log", "-o", target, "--timeout", "5")
    assert (code, err) == (1, message)
    assert sorted(p.name for p in log.parent.iterdir()) == ["in.log"]


@pytest.mark.parametrize("target", ["report.md", "b.zip", "B.ZIP", "-"])
def test_collect_refuses_a_bundle_name_that_its_companions_would_take(log, capsys, target):
    # `collect -o report.md --force` wrote the bundle as report.md, then the report over it
    code, _, err = run(capsys, "collect", "--log", "in.log", "-o", target, "--force", "--timeout", "5")
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"vllm-bug: error: -o {target}: ")
    assert sorted(p.name for p in log.parent.iterdir()) == ["in.log"]


def test_terminal_safe_spells_out_escape_sequences():
    osc52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
    title = "\x1b]0;owned\x9c"
    assert terminal_safe(f"a{osc52}b") == "a\\x1b]52;c;ZWNobyBwd25lZA==\\x07b"
    assert terminal_safe(title) == "\\x1b]0;owned\\x9c"
    assert terminal_safe("line\nbreak\u202e") == "line\\x0abreak\\u202e"
    assert terminal_safe("ünïcode /path") == "ünïcode /path"


def test_json_text_escapes_what_json_dumps_leaves_raw():
    text = json_text({"name": "a\x1b]0;t\x07b\x9bc\u202ed"})
    assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text
    assert json.loads(text) == {"name": "a\x1b]0;t\x07b\x9bc\u202ed"}


def test_names_with_escape_sequences_are_never_printed_raw(tmp_path):
    evil = tmp_path / "evil\x1b]52;c;aGk=\x07\x1b]0;title\x07.log"
    evil.write_text(LOG)
    zipped = tmp_path / "member.zip"
    import zipfile

    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("a\x1b]0;title\x07.zst", b"not a bundle")
        archive.writestr("b\x1b]52;c;aGk=\x07.zst", b"not a bundle")
    for args in (
        ["analyze", str(evil)],
        ["triage", str(tmp_path), "-j", "1"],
        ["triage", str(tmp_path), "-j", "1", "--format", "csv"],
        ["validate", str(evil)],
        ["analyze", str(zipped)],
        ["show", str(evil)],
    ):
        done = subprocess.run([sys.executable, "-m", "vllm_bug", *args], capture_output=True, timeout=120, check=False)
        assert b"\x1b" not in done.stdout + done.stderr and b"\x07" not in done.stdout + done.stderr, args
        assert done.stdout or done.stderr


def test_collect_into_an_unwritable_folder_stops_before_probing(tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    monkeypatch.chdir(locked)
    if os.access(locked, os.W_OK):  # root: make the check see what a normal user would
        real_access = os.access
        monkeypatch.setattr(
            output.os, "access", lambda path, mode: False if Path(path) == locked else real_access(path, mode)
        )
    try:
        code, _, err = run(capsys, "collect", "--python", "/no/such/python")
    finally:
        locked.chmod(0o700)
    assert code == 1 and err.startswith("vllm-bug: error: cannot write ") and err.endswith("is not writable\n")
