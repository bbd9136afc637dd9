"""The quick schema check: never accepts what jsonschema rejects, accepts real bundles, steps aside when unsure."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest

from conftest import minimal_payload
from vllm_bug.schema import bundle
from vllm_bug.schema.fastcheck import compile_check

FIXTURES = Path(__file__).parent / "fixtures" / "device" / "h200"


def _jsonschema_valid(doc) -> bool:
    return not any(True for _ in bundle._validator(bundle.SCHEMA_VERSION).iter_errors(doc))


@pytest.fixture(scope="module")
def quick():
    check = compile_check(bundle.load_schema(bundle.SCHEMA_VERSION))
    assert check is not None, "the shipped schema uses a keyword the quick check lacks: extend fastcheck"
    return check


@pytest.fixture(scope="module")
def realistic_doc(tmp_path_factory):
    from vllm_bug.bundler import collect as co

    payload, _, _ = co.build_payload(co.CollectOptions(timeout_s=30))
    payload["nvidia_smi"] = dict(payload.get("nvidia_smi") or {}, plain=(FIXTURES / "nvidia-smi.txt").read_text())
    payload["gpus"] = [
        {"index": i, "name": "NVIDIA H200", "compute_capability": "9.0", "memory_total_bytes": 150_754_820_096}
        for i in range(2)
    ]
    payload["log"] = {"source": "file", "truncated": False, "text": "RuntimeError: CUDA error: out of memory\n"}
    doc = bundle.make_envelope(payload)
    assert _jsonschema_valid(doc)
    return doc


def test_accepts_real_bundles(quick, realistic_doc):
    assert quick(realistic_doc)
    assert quick(bundle.make_envelope(minimal_payload()))


def _paths(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):
            yield from _paths(value, path + (i,))


def _replace(doc, path, value):
    out = copy.deepcopy(doc)
    if not path:
        return value
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def _mutants(doc):
    odd_values = [None, 0, -1, 1.0, 1.5, float("nan"), True, "", "x", "y" * 70000, [], [1], {}, {"extra_key": 1}]
    for path, node in _paths(doc):
        for value in odd_values:
            yield _replace(doc, path, value)
        if isinstance(node, dict):
            for key in list(node)[:12]:
                smaller = copy.deepcopy(node)
                del smaller[key]
                yield _replace(doc, path, smaller)
            yield _replace(doc, path, dict(node, unexpected_field="z"))
        if isinstance(node, list):
            yield _replace(doc, path, node + node + [None] * 5000)


def test_never_accepts_what_jsonschema_rejects(quick, realistic_doc):
    mutants = list(_mutants(realistic_doc))
    random.Random(7).shuffle(mutants)
    rejected_by_jsonschema = 0
    for doc in mutants[:1500]:
        if quick(doc):
            assert _jsonschema_valid(doc)
        else:
            rejected_by_jsonschema += not _jsonschema_valid(doc)
    assert rejected_by_jsonschema > 300  # the mutations did reach invalid documents


@pytest.mark.parametrize(
    "schema",
    [
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
        {"$ref": "https://elsewhere.invalid/schema.json#/x"},
        {"$ref": "#/$defs/missing", "$defs": {"x": {"type": "string"}}},
        {"$ref": "#", "type": "object"},
        {"type": "object", "patternProperties": {"^a": {"type": "string"}}},
        {"type": "object", "properties": {"a": {"format": "date-time"}}},
        {"type": "thing"},
        {"const": {"a": 1}},
    ],
)
def test_schemas_beyond_the_checker_are_left_to_jsonschema(schema):
    assert compile_check(schema) is None


def test_invalid_bundle_is_still_reported_by_jsonschema():
    doc = bundle.make_envelope(minimal_payload())
    doc["payload"]["gpus"] = "not a list"
    with pytest.raises(bundle.BundleInvalid, match=r"gpus.*not of type 'array'"):
        bundle.validate(doc)


def test_quick_check_is_strict_where_json_schema_is_loose():
    check = compile_check({"type": "object", "properties": {"n": {"type": "integer"}, "k": {"const": 1}}})
    assert check({"n": 3, "k": 1})
    assert not check({"n": 3.0})  # valid JSON Schema, but the quick check leaves floats to jsonschema
    assert not check({"n": True}) and not check({"k": True})
