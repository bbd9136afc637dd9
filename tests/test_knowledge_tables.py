"""The data tables rules read: signals (message -> id) and diagnoses (id -> category, title, fixes)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from rule_helpers import facts, fire
from vllm_bug.analyzer.findings import CATEGORIES
from vllm_bug.analyzer.rules import REGISTRY
from vllm_bug.analyzer.rules.table import ADVICE_NAMES, rows
from vllm_bug.analyzer.signals import row_problems, table

DATA = Path(__file__).resolve().parents[1] / "analyzer" / "data"
SIGNAL_FILES = sorted((DATA / "signals").glob("*.json"))
DIAGNOSIS_FILES = sorted((DATA / "diagnoses").glob("*.json"))
SIGNALS = {"signals": {k: v for p in SIGNAL_FILES for k, v in json.loads(p.read_text("utf-8"))["signals"].items()}}
DIAGNOSES = {
    "diagnoses": {k: v for p in DIAGNOSIS_FILES for k, v in json.loads(p.read_text("utf-8"))["diagnoses"].items()}
}


@pytest.mark.parametrize("path", SIGNAL_FILES + DIAGNOSIS_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_tables_follow_their_schemas(path):
    schema = DATA / f"{path.parent.name}.schema.json"
    jsonschema.validate(json.loads(path.read_text("utf-8")), json.loads(schema.read_text("utf-8")))


@pytest.mark.parametrize("signal_id", sorted(SIGNALS["signals"]))
def test_signal_row_compiles_and_its_examples_match(signal_id):
    assert row_problems(SIGNALS["signals"][signal_id]) == []


FRAME_SCOPES = ("frames", "all_frames")


@pytest.mark.parametrize(
    "signal_id", sorted(s for s, row in SIGNALS["signals"].items() if row.get("scope") not in FRAME_SCOPES)
)
def test_each_example_is_found_as_that_signal(signal_id):
    for example in SIGNALS["signals"][signal_id]["examples"]:
        assert facts(example).signals.seen(signal_id), example


@pytest.mark.parametrize(
    "signal_id", sorted(s for s, row in SIGNALS["signals"].items() if row.get("scope") == "all_frames")
)
def test_each_all_frames_example_is_found_in_a_cut_traceback_that_is_not_the_root_cause(signal_id):
    from vllm_bug.analyzer.facts import Frame, Traceback

    for example in SIGNALS["signals"][signal_id]["examples"]:
        path, function = example.rsplit(" ", 1)
        found = facts(tracebacks=[Traceback("", "", frames=[Frame(path, 1, function)])]).signals
        assert found.in_any_frames(signal_id) and found.seen(signal_id) and not found.root(signal_id), example
        assert found.frame_path(signal_id) == path


def test_row_problems_catch_bad_rows():
    assert row_problems({"pattern": "(", "words": ["x"]})[0].startswith("pattern does not compile")
    assert row_problems({"pattern": "abc", "words": ["abc"], "examples": ["xyz"]}) == ["example does not match: 'xyz'"]
    assert row_problems({"pattern": "a.c", "words": ["zzz"], "examples": ["abc"]}) == [
        "example contains none of the words: 'abc'"
    ]
    assert row_problems({"pattern": "abc", "words": ["ABC"], "examples": []}) == ["words must be lower case"]


def test_unknown_signal_id_is_an_error_not_absent():
    with pytest.raises(KeyError):
        facts("x").signals.seen("NO_SUCH_SIGNAL")


@pytest.mark.parametrize("key", sorted(DIAGNOSES["diagnoses"]))
def test_diagnosis_row_is_registered_and_sound(key):
    row = rows()[key]
    assert row["category"] in CATEGORIES
    assert all(signal in table() for signal in row["signals"])
    assert all(fix["advice"] in ADVICE_NAMES for fix in row["fixes"] if isinstance(fix, dict) and "advice" in fix)
    assert REGISTRY[key].category == row["category"] and REGISTRY[key].signals == tuple(row["signals"])


def example_of(signal_id: str) -> str:
    """A hand-written signal's first example, or a catalogue row's message with each value filled in."""
    from vllm_bug.analyzer.signals import catalogue_row

    if signal_id in SIGNALS["signals"]:
        return SIGNALS["signals"][signal_id]["examples"][0]
    return catalogue_row(signal_id).template.replace("{}", "7")


@pytest.mark.parametrize("key", sorted(DIAGNOSES["diagnoses"]))
def test_diagnosis_row_fires_on_its_signals_examples_and_not_on_unrelated_text(key):
    row = rows()[key]
    example = example_of(row["signals"][0])
    finding = fire(key, facts(example))
    assert finding is not None and finding.rule == key and finding.category == row["category"]
    assert finding.title == row["title"] and example.strip()[:60] in " ".join(finding.evidence)
    assert fire(key, facts("INFO 06-01 10:00:00 [api_server.py:1900] vLLM API server version 0.19.0")) is None


def test_json_facts_list_the_signals_seen_not_their_internals():
    from vllm_bug.analyzer.jsonout import facts_to_json

    out = facts_to_json(
        facts(
            "triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: 81920, "
            "Hardware limit: 65536.",
            "vllm serve m --max-model-len 8",
        )
    )
    seen = out["signals_seen"]  # context signals of other families (ANY_ERROR_WORD) may be listed too
    assert {"TRITON_OUT_OF_SHARED_MEMORY", "VLLM_MENTIONED"} <= set(seen) and seen == sorted(seen)
    assert "TRITON_NO_C_COMPILER" not in seen
    assert "signals" not in out and "mentions" not in out


def test_every_diagnoses_table_belongs_to_a_rule_family():
    from vllm_bug.analyzer.rules import RULE_MODULES

    assert {path.stem for path in DIAGNOSIS_FILES} <= set(RULE_MODULES)
