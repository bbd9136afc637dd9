import csv
import gzip
import io
import json
import re
import sys

import pytest
from click.testing import CliRunner

from report_helpers import corpus_cases
from vllm_bug.cli import cli
from vllm_bug.commands import triage as triage_command
from vllm_bug.commands.triage import expand_inputs, triage

OOM = corpus_cases()["vllm-project/vllm#15105"]
NCCL = corpus_cases()["vllm-project/vllm#7800"]


def text_of(case):
    return case["title"] + "\n" + case["error_text"] + "\n" + case["env_text"]


def varied(text: str, pid: int, gpu: int) -> str:
    text = re.sub(r"pid=\d+", f"pid={pid}", text)
    text = re.sub(r"GPU \d", f"GPU {gpu}", text)
    return text.replace("/usr/local/lib/python3.10/dist-packages/", "/opt/venv/lib/python3.12/site-packages/")


@pytest.fixture
def inbox(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "oom1.log").write_text(text_of(OOM))
    (tmp_path / "a" / "oom2.txt").write_text(varied(text_of(OOM), 4242, 3))
    (tmp_path / "nccl.md").write_text(text_of(NCCL))
    (tmp_path / "broken.log").write_bytes(gzip.compress(b"x" * 100))
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG....")  # not an input type: skipped
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.log").write_text(text_of(OOM))
    return tmp_path


def test_expand_inputs_walks_dirs_and_filters(inbox):
    files, bad = expand_inputs([str(inbox), str(inbox / "missing.log")])
    names = sorted(p.rsplit("/", 1)[-1] for p in files)
    assert names == ["broken.log", "nccl.md", "oom1.log", "oom2.txt"]
    reasons = dict((p.rsplit("/", 1)[-1], r) for p, r in bad)
    assert reasons == {"empty.log": "empty file", "missing.log": "no such file or directory"}


def test_triage_groups_same_bug_and_lists_bad_files(inbox):
    result = triage([str(inbox)], jobs=1)
    assert result.analyzed == 3
    counts = sorted((len(g.files), g.category) for g in result.groups)
    assert counts == [(1, "nccl"), (2, "cuda_oom")]
    oom = next(g for g in result.groups if len(g.files) == 2)
    assert oom.signature.startswith("vllm-sig/1:oom:")
    assert oom.example.endswith("oom1.log")
    bad = dict((p.rsplit("/", 1)[-1], r) for p, r in result.bad)
    assert set(bad) == {"broken.log", "empty.log"}
    assert "gzip" in bad["broken.log"]


def test_cli_table_json_and_csv(inbox):
    runner = CliRunner()
    table = runner.invoke(cli, ["triage", str(inbox), "-j", "1"])
    assert table.exit_code == 0, table.output
    assert "3 analysed, 2 bad, 2 groups" in table.stdout
    assert re.search(r"^\s+2\s+cuda_oom\s+vllm-sig/1:oom:", table.stdout, re.M)
    assert "Bad files (2):" in table.stdout and "broken.log" in table.stdout

    as_json = runner.invoke(cli, ["triage", str(inbox), "--format", "json", "-j", "1"])
    doc = json.loads(as_json.stdout)
    assert doc["analyzed"] == 3 and doc["inputs"] == 5 and len(doc["bad_files"]) == 2
    assert doc["groups"][0]["count"] == 2 and len(doc["groups"][0]["files"]) == 2
    assert "bad file" in as_json.stderr

    as_csv = runner.invoke(cli, ["triage", str(inbox), "--format", "csv", "-j", "1"])
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["count"] for r in rows] == ["2", "1"] and rows[1]["category"] == "nccl"


def test_output_file_is_not_overwritten_without_force(inbox, tmp_path):
    out = tmp_path / "out.json"
    out.write_text("keep")
    runner = CliRunner()
    refused = runner.invoke(cli, ["triage", str(inbox / "nccl.md"), "-o", str(out), "--format", "json"])
    assert refused.exit_code == 1 and out.read_text() == "keep"
    forced = runner.invoke(cli, ["triage", str(inbox / "nccl.md"), "-o", str(out), "--format", "json", "--force"])
    assert forced.exit_code == 0 and json.loads(out.read_text())["analyzed"] == 1


def test_exit_codes_when_nothing_is_usable(inbox, tmp_path):
    from vllm_bug.cli import main

    def run(args):
        with pytest.raises(SystemExit) as exc:
            main(["triage", *args])
        return exc.value.code

    assert run([str(inbox / "broken.log")]) == 3
    empty = tmp_path / "emptydir"
    empty.mkdir()
    assert run([str(empty)]) == 2


def test_parallel_matches_in_process(tmp_path):
    texts = [text_of(c) for c in list(corpus_cases().values())[:20]]
    for i in range(100):
        (tmp_path / f"r{i:03d}.log").write_text(varied(texts[i % len(texts)], 1000 + i, i % 8))
    one = triage([str(tmp_path)], jobs=1)
    two = triage([str(tmp_path)], jobs=2)
    assert [g.to_json() for g in one.groups] == [g.to_json() for g in two.groups]
    assert one.analyzed == 100 and len(one.groups) <= 20


def test_progress_bar_on_a_terminal(inbox, monkeypatch, capsys):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    fake = Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    result = triage_command.execute([str(inbox)], fmt="json", jobs=1)
    assert result.exit_code == 0
    assert "analysing" in fake.getvalue()
    json.loads(result.text)


def test_internal_errors_become_bad_files(inbox, monkeypatch):
    def boom(loaded):
        raise KeyError("kaput")

    import vllm_bug.analyzer.build as build

    monkeypatch.setattr(build, "build_facts", boom)
    result = triage([str(inbox / "nccl.md")], jobs=1)
    assert result.analyzed == 0 and result.bad[0][1].startswith("internal error: KeyError")


def test_benchmark_script_runs(tmp_path):
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "triage_speed.py"
    done = subprocess.run(
        [sys.executable, str(script), "--count", "120", "--jobs", "1", "--keep", str(tmp_path / "b")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "analysed: 120  bad: 0" in done.stdout, done.stdout + done.stderr
    assert re.search(r"reports/second: \d+\s+\(\d+\.\d\dx the 500/s target\)", done.stdout)
    assert len(list((tmp_path / "b").rglob("*.zst"))) == 12


# -- one input's failure is its row; the table is always written ------------------------------------------
def with_one_bad_input(monkeypatch, behave):
    """signature_of misbehaves (inside the worker) for files named 'poison*'."""
    from vllm_bug.analyzer.triage import signature_of

    def patched(path):
        if "poison" in path:
            behave()
        return signature_of(path)

    monkeypatch.setattr(triage_command, "signature_of", patched)


def killed():
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer does


def test_a_killed_worker_costs_only_its_input(inbox, monkeypatch):
    # one killed worker ended the run with BrokenProcessPool: exit 1 and no table
    (inbox / "poison.log").write_text(text_of(OOM))
    with_one_bad_input(monkeypatch, killed)
    result = CliRunner().invoke(cli, ["triage", str(inbox), "-j", "2"])
    assert result.exit_code == 0, result.output
    assert "3 analysed, 3 bad, 2 groups" in result.stdout
    assert re.search(r"poison\.log: its worker process was killed by SIGKILL \(out of memory\?\)", result.stdout)


def test_an_input_that_takes_too_long_is_stopped(inbox, monkeypatch):
    import time

    (inbox / "poison.log").write_text(text_of(OOM))
    monkeypatch.setattr(triage_command, "FILE_SECONDS", 1.0)
    with_one_bad_input(monkeypatch, lambda: time.sleep(60))
    started = time.monotonic()
    result = triage([str(inbox)], jobs=1)
    assert time.monotonic() - started < 30
    assert result.analyzed == 3
    assert dict((p.rsplit("/", 1)[-1], r) for p, r in result.bad)["poison.log"] == "took longer than 1 s: stopped"


def test_an_input_that_needs_too_much_memory_is_refused(inbox, monkeypatch):
    (inbox / "poison.log").write_text(text_of(OOM))
    monkeypatch.setattr(triage_command, "FILE_MEMORY_BYTES", 512 << 20)
    with_one_bad_input(monkeypatch, lambda: bytearray(1 << 30))
    result = triage([str(inbox)], jobs=1)
    assert result.analyzed == 3
    assert (
        dict((p.rsplit("/", 1)[-1], r) for p, r in result.bad)["poison.log"]
        == "needed more memory than one input may use"
    )


def test_when_every_input_fails_the_table_is_still_written(tmp_path, monkeypatch):
    (tmp_path / "poison.log").write_text(text_of(OOM))
    with_one_bad_input(monkeypatch, killed)
    out = tmp_path / "table.txt"
    result = CliRunner().invoke(cli, ["triage", str(tmp_path / "poison.log"), "-o", str(out), "-j", "1"])
    assert result.exit_code == 3 and "none of the 1 input(s) could be analysed" in result.stderr
    assert "0 analysed, 1 bad, 0 groups" in out.read_text()


def test_csv_cells_never_start_a_formula(tmp_path, monkeypatch):
    from vllm_bug.commands.triage import csv_cell

    assert [csv_cell(v) for v in ("=HYPERLINK(1)", "+1", "-2", "@SUM(A1)", "ok", "a=b")] == [
        "'=HYPERLINK(1)",
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "ok",
        "a=b",
    ]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "=cmd.log").write_text(text_of(NCCL))
    as_csv = CliRunner().invoke(cli, ["triage", "=cmd.log", "--format", "csv", "-j", "1"])
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert rows[0]["example"] == "'=cmd.log"


def test_a_bad_file_is_named_once_beside_its_reason(tmp_path):
    # the loader's message begins with the file's name; the report already shows it in front of the reason
    (tmp_path / "junk.zst").write_bytes(b"not a bundle")
    (tmp_path / "ok.log").write_text(text_of(OOM))
    result = triage([str(tmp_path)], jobs=1)
    assert [(path.rsplit("/", 1)[-1], reason) for path, reason in result.bad] == [
        ("junk.zst", "not a zstd-compressed bundle (bad magic bytes)")
    ]
