"""benchmarks/unseen/cases.jsonl and round2.jsonl: their format only, and that they share no report with the
project's other sets or with each other.

The sets are for measuring, never for tuning: no accuracy floor here (the figures are recorded in
benchmarks/unseen/README.md), and no test reads the cases' wording beyond checking their shape.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from vllm_bug.analyzer.findings import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
UNSEEN = ROOT / "benchmarks" / "unseen" / "cases.jsonl"
ROUND2 = ROOT / "benchmarks" / "unseen" / "round2.jsonl"
ROUND_FIELD = {UNSEEN: {}, ROUND2: {"round": int}}
OTHER_SETS = (
    ROOT / "tests" / "fixtures" / "reports" / "real-issues-dev.jsonl",
    ROOT / "tests" / "fixtures" / "heldout" / "cases.jsonl",
)
REQUIRED = {
    "id": str,
    "url": str,
    "repository": str,
    "number": int,
    "date": str,
    "title": str,
    "category": str,
    "error_text": str,
    "env_text": str,
    "label_rationale": str,
    "label_basis": str,
    "facts": dict,
}
OPTIONAL = {"date_estimated": bool}
LABEL_BASES = {"resolution", "maintainer", "reporter", "message"}
URL = re.compile(r"https://github\.com/(?P<repo>[\w.-]+/[\w.-]+)/(?:issues|pull)/(?P<number>\d+)")


def _load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _long_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if len(line.strip()) >= 30}


@pytest.fixture(scope="module", params=[UNSEEN, ROUND2], ids=["round1", "round2"])
def unseen_set(request) -> tuple[Path, list[dict]]:
    return request.param, _load(request.param)


@pytest.fixture(scope="module")
def cases(unseen_set) -> list[dict]:
    return unseen_set[1]


@pytest.fixture(scope="module")
def others() -> list[dict]:
    return [case for path in OTHER_SETS for case in _load(path)]


def test_every_case_has_exactly_the_documented_fields_with_their_types(unseen_set):
    path, cases = unseen_set
    required = {**REQUIRED, **ROUND_FIELD[path]}
    for case in cases:
        assert set(required) <= set(case) <= set(required) | set(OPTIONAL), case.get("id")
        for name, kind in {**required, **OPTIONAL}.items():
            if name in case:
                assert isinstance(case[name], kind), (case["id"], name)


def test_labels_are_categories_with_a_stated_basis_and_reason(cases):
    for case in cases:
        assert case["category"] in CATEGORIES, case["id"]
        assert case["label_basis"] in LABEL_BASES, case["id"]
        assert case["label_rationale"].strip() and "\n" not in case["label_rationale"], case["id"]
        assert (case["title"] + case["error_text"]).strip(), case["id"]


def test_url_repository_number_and_id_agree_and_dates_are_real_days(cases):
    for case in cases:
        match = URL.fullmatch(case["url"])
        assert match, case["id"]
        assert match["repo"] == case["repository"] and int(match["number"]) == case["number"], case["id"]
        assert case["id"] == f"{case['repository']}#{case['number']}"
        assert date(2023, 1, 1) <= date.fromisoformat(case["date"]) <= date(2026, 12, 31), case["id"]


def test_urls_are_unique(cases):
    urls = [case["url"] for case in cases]
    assert len(urls) == len(set(urls))


def test_no_report_of_the_other_sets_is_reused_by_url_or_number(cases, others):
    taken = {case["id"] for case in others} | {case["url"] for case in others}
    assert not taken & ({case["id"] for case in cases} | {case["url"] for case in cases})


def test_no_case_copies_the_text_of_a_case_of_the_other_sets(cases, others):
    """A copy shares at least three long lines and more than half of its own with one other case."""
    other_lines = [(other["id"], _long_lines(other["error_text"])) for other in others]
    for case in cases:
        mine = _long_lines(case["error_text"])
        for other_id, theirs in other_lines:
            shared = len(mine & theirs)
            assert not (shared >= 3 and shared > len(mine) / 2), (case["id"], other_id)


def test_the_second_round_says_its_round_and_shares_no_report_or_log_with_the_first():
    first, second = _load(UNSEEN), _load(ROUND2)
    assert {case["round"] for case in second} == {2}
    taken = {case["id"] for case in first} | {case["url"] for case in first}
    assert not taken & ({case["id"] for case in second} | {case["url"] for case in second})
    first_lines = [(case["id"], _long_lines(case["error_text"])) for case in first]
    for case in second:
        mine = _long_lines(case["error_text"])
        for other_id, theirs in first_lines:
            shared = len(mine & theirs)
            assert not (shared >= 3 and shared > len(mine) / 2), (case["id"], other_id)


def _cited_elsewhere_in_the_repository() -> str:
    skip_dirs = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    texts = []
    for path in ROOT.rglob("*"):
        if skip_dirs & set(path.relative_to(ROOT).parts) or not path.is_file() or path == ROUND2:
            continue
        if path.suffix in {".py", ".md", ".json", ".jsonl", ".txt", ".toml", ".yaml", ".yml", ".cfg", ".sh", ""}:
            texts.append(path.read_text(encoding="utf-8", errors="ignore").lower())
    return "\n".join(texts)


def test_no_second_round_report_is_cited_anywhere_else_in_the_repository():
    """Rule provenance, tests and notes are what rule authors read: a report cited there is not unseen."""
    cited = _cited_elsewhere_in_the_repository()
    for case in _load(ROUND2):
        assert case["id"].lower() not in cited, case["id"]
        assert case["url"].lower().removeprefix("https://") not in cited, case["id"]
