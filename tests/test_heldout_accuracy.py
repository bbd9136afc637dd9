"""Held-out real reports (tests/fixtures/heldout/cases.jsonl): accuracy floor and no advice against stated facts.

The cases were collected from public issue trackers separately from the dev corpus and labelled by
hand (label_rationale says why); the analyzer was not tuned on their wording.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from vllm_bug.analyzer.analyze import analyze_text
from vllm_bug.analyzer.findings import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "tests" / "fixtures" / "heldout" / "cases.jsonl"
DEV_COPY = ROOT / "tests" / "fixtures" / "reports" / "real-issues-dev.jsonl"
MIN_TOP1 = 0.95  # measured 65/65 when the set was built; the margin absorbs a case or three
NOT_YET_HELD_OUT: set[str] = set()  # categories with no held-out report yet (engine_config has some since round 2)
FIELDS = {"id", "url", "title", "category", "error_text", "env_text", "label_rationale"}


def _load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _benchmark():
    spec = importlib.util.spec_from_file_location("corpus_accuracy", ROOT / "benchmarks" / "corpus_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    return _load(HELDOUT)


@pytest.fixture(scope="module")
def results(cases):
    bench = _benchmark()
    return [(case, analyze_text(bench.case_text(case))) for case in cases]


def test_the_set_is_well_formed_and_disjoint_from_the_dev_corpus(cases):
    assert len(cases) >= 40
    assert all(set(case) >= FIELDS for case in cases)
    assert all(case["category"] in CATEGORIES and case["label_rationale"].strip() for case in cases)
    assert set(CATEGORIES) - set(Counter(case["category"] for case in cases)) <= NOT_YET_HELD_OUT
    ids = [case["id"] for case in cases]
    assert len(ids) == len(set(ids))
    assert not set(ids) & {case["id"] for case in _load(DEV_COPY)}


def test_top1_accuracy_stays_above_the_floor(results):
    misses = [
        (case["id"], case["category"], analysis.category)
        for case, analysis in results
        if analysis.category != case["category"]
    ]
    accuracy = 1 - len(misses) / len(results)
    assert accuracy >= MIN_TOP1, f"top-1 {accuracy:.1%}; misses: {misses}"


def test_no_finding_contradicts_the_stated_facts(results):
    bench = _benchmark()
    problems = [(case["id"], problem) for case, analysis in results for problem in bench.contradictions(case, analysis)]
    assert problems == []


def test_driver_error_on_a_new_driver_is_not_told_to_upgrade(results):
    """kvcached#74: CUDA calls driver 575 too old for CUDA 12.4; the advice must look for another libcuda."""
    case, analysis = next((c, a) for c, a in results if c["id"] == "ovg-project/kvcached#74")
    top = analysis.diagnoses[0]
    assert top.category == "driver_insufficient"
    assert not any("install an NVIDIA driver >=" in fix for fix in top.fixes)
