"""tools/behaviour_snapshot.py: which cases it feeds analyze, and its two diffs (by name, by input content)."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("behaviour_snapshot", ROOT / "tools" / "behaviour_snapshot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(tmp_path: Path, name: str, snapshot: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(snapshot))
    return str(path)


def _result(rule: str, digest: str | None) -> dict:
    result = {"exit_code": 0, "signature": f"sig-{rule}", "diagnoses": [{"rule": rule, "category": "nccl"}]}
    if digest is not None:
        result["input_sha256"] = digest
    return result


def test_every_corpus_case_is_fed_from_the_checkout_itself(tool):
    """A worktree has no ../shared beside it: the dev corpus used to be skipped there without a word."""
    names = set(tool.cases())
    dev = (ROOT / "tests/fixtures/reports/real-issues-dev.jsonl").read_text().splitlines()
    held = (ROOT / "tests/fixtures/heldout/cases.jsonl").read_text().splitlines()
    assert sum(n.startswith("real-issues-dev.jsonl:") for n in names) == len(dev) > 0
    assert sum(n.startswith("cases.jsonl:") for n in names) == len(held) > 0
    assert not any(n.endswith((".md", ".jsonl")) for n in names)


def test_name_diff_ignores_the_recorded_input_hash(tool, tmp_path, capsys):
    old = _write(tmp_path, "old.json", {"a": _result("X", None)})
    new = _write(tmp_path, "new.json", {"a": _result("X", "h1")})
    assert tool.main(["--diff", old, new]) == 0
    assert capsys.readouterr().out.strip() == "0 of 1 cases differ"


def test_content_diff_matches_moved_and_merged_inputs(tool, tmp_path, capsys):
    before = _write(
        tmp_path,
        "b.json",
        {"old/a.txt": _result("X", "h1"), "copy/a.txt": _result("X", "h1"), "c.txt": _result("Y", "h2")},
    )
    after = _write(tmp_path, "a.json", {"new/a.txt": _result("X", "h1"), "c.txt": _result("Y", "h2")})
    assert tool.main(["--diff", "--by-content", before, after]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "0 of 2 distinct inputs differ (before: 3 cases, after: 2; 1 inputs under other names)"


def test_content_diff_reports_a_changed_outcome_and_a_lost_input(tool, tmp_path, capsys):
    before = _write(tmp_path, "b.json", {"a.txt": _result("X", "h1"), "gone.txt": _result("Y", "h2")})
    after = _write(tmp_path, "a.json", {"moved/a.txt": _result("Z", "h1")})
    tool.main(["--diff", "--by-content", before, after])
    out = capsys.readouterr().out
    assert "== moved/a.txt\n   top: [('X', 'nccl')] -> [('Z', 'nccl')]" in out
    assert "== gone.txt\n   only in before" in out
    assert "2 of 2 distinct inputs differ" in out


def test_content_diff_refuses_a_snapshot_without_hashes(tool, tmp_path, capsys):
    old = _write(tmp_path, "old.json", {"a": _result("X", None)})
    new = _write(tmp_path, "new.json", {"a": _result("X", "h1")})
    assert tool.main(["--diff", "--by-content", old, new]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no input_sha256" in err and "old.json" in err
