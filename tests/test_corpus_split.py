"""benchmarks/corpus_accuracy.py --split-by-date: every corpus report has a filing date, and the split is by it."""

from __future__ import annotations

import importlib.util
import json
from datetime import date
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _benchmark():
    spec = importlib.util.spec_from_file_location("corpus_accuracy", ROOT / "benchmarks" / "corpus_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _benchmark()


def test_every_report_of_the_corpus_has_a_date():
    created = bench.report_dates()
    cases = bench.read_cases(bench.DEV_COPY) + bench.read_cases(bench.HELDOUT_CORPUS)
    dates = {case["id"]: created(case["id"]) for case in cases}
    assert all(date(2023, 1, 1) <= day <= date(2026, 12, 31) for day in dates.values())


def test_vllm_dates_follow_the_issue_numbers_and_hit_the_anchors():
    created = bench.report_dates()
    table = json.loads(bench.REPORT_DATES.read_text(encoding="utf-8"))
    for anchor in table["vllm_anchors"]:
        assert created(f"vllm-project/vllm#{anchor['number']}") == date.fromisoformat(anchor["created"])
    numbers = [1, 629, 2785, 9000, 15105, 23925, 27043, 40000, 57719, 70000]
    days = [created(f"vllm-project/vllm#{n}") for n in numbers]
    assert days == sorted(days)


def test_a_report_without_a_date_is_refused_by_name():
    with pytest.raises(KeyError, match="someone/else#3"):
        bench.report_dates()("someone/else#3")


def test_the_split_keeps_every_case_once_on_its_side_of_the_date():
    created = bench.report_dates()
    cases = [
        {"id": "vllm-project/vllm#10517"},
        {"id": "vllm-project/vllm#27043"},
        {"id": "llm-d/llm-d#706"},
        {"id": "QwenLM/Qwen3#12"},
    ]
    older, newer = bench.split_by_date(cases, date(2025, 10, 16), created)
    assert [c["id"] for c in older] == ["vllm-project/vllm#10517", "QwenLM/Qwen3#12"]
    assert [c["id"] for c in newer] == ["vllm-project/vllm#27043", "llm-d/llm-d#706"]


def test_the_command_prints_both_figures(tmp_path, capsys):
    corpus = tmp_path / "two.jsonl"
    rows = [
        {
            "id": "vllm-project/vllm#2785",
            "category": "cuda_oom",
            "title": "[Bug]: OOM",
            "error_text": "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
            "env_text": "",
        },
        {
            "id": "vllm-project/vllm#40000",
            "category": "nccl",
            "title": "[Bug]: hang",
            "error_text": "RuntimeError: NCCL error: unhandled system error",
            "env_text": "",
        },
    ]
    corpus.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    assert bench.main(["--corpus", str(corpus), "--split-by-date", "2025-01-01"]) == 0
    out = capsys.readouterr().out
    assert "filed before 2025-01-01" in out and "filed on or after 2025-01-01" in out
    assert out.count("overall                      1     1  100.0%") == 2


def test_a_bad_date_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--split-by-date", "soon"])
    assert exit_info.value.code == 2
    assert "not a date" in capsys.readouterr().err
