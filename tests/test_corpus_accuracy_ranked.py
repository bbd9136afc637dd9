"""benchmarks/corpus_accuracy.py's ranked scoring (used by --unseen), on cases written here, not on the unseen set."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _benchmark():
    spec = importlib.util.spec_from_file_location("corpus_accuracy", ROOT / "benchmarks" / "corpus_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _benchmark()
OOM_LINE = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. "
    "GPU 0 has a total capacity of 23.65 GiB of which 98.25 MiB is free."
)
CASES = [
    {"id": "a/b#1", "title": "crash", "category": "cuda_oom", "error_text": OOM_LINE, "env_text": ""},
    {"id": "a/b#2", "title": "it stopped", "category": "nccl", "error_text": "nothing useful here", "env_text": ""},
]


def test_a_case_counts_at_top1_and_top3_only_when_its_category_is_ranked_there():
    ranked = bench.rank(CASES)
    assert [row[0] for row in ranked.rows] == ["a/b#1", "a/b#2"]
    assert ranked.rows[1][2] == ["other"]
    assert (ranked.top1(), ranked.top3()) == (1, 1)


def test_the_printout_lists_the_confusion_and_each_miss_with_what_was_given(capsys):
    bench.print_ranked("synthetic", bench.rank(CASES))
    out = capsys.readouterr().out
    assert "top-1   1/2    50.0%" in out
    assert "nccl                     -> other                    x1" in out
    assert "a/b#2: expected nccl, got other (-)" in out
    assert "a/b#1: expected" not in out


def _write_set(path: Path, cases: list[dict]) -> Path:
    path.write_text("".join(json.dumps(case) + "\n" for case in cases), encoding="utf-8")
    return path


def test_unseen_file_scores_each_given_set_on_its_own(tmp_path, capsys):
    first = _write_set(tmp_path / "first.jsonl", CASES[:1])
    second = _write_set(tmp_path / "second.jsonl", CASES[1:])
    assert bench.main(["--unseen-file", str(first), "--unseen-file", str(second)]) == 0
    out = capsys.readouterr().out
    first_part, second_part = out.split(f"corpus: {second}")
    assert f"corpus: {first} (1 cases" in first_part and "top-1   1/1   100.0%" in first_part
    assert "top-1   0/1     0.0%" in second_part and "a/b#2: expected nccl, got other (-)" in second_part


def test_unseen_file_that_is_missing_or_not_json_lines_is_a_one_line_error(tmp_path, capsys):
    assert bench.main(["--unseen-file", str(tmp_path / "absent.jsonl")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no such file: {tmp_path / 'absent.jsonl'}"
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n", encoding="utf-8")
    assert bench.main(["--unseen-file", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {broken}: not JSON lines (") and "\n" not in err
