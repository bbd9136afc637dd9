"""Cluster bundles (schema_version 2): the schema, older readers, node identity, merging, redaction."""

from __future__ import annotations

import json

import pytest
import zstandard

from cluster_helpers import COLLECT, NCCL_FAIL, as_node, real_payload, write
from conftest import minimal_payload
from vllm_bug.errors import UnreadableInput, UsageProblem
from vllm_bug.schema import bundle as B
from vllm_bug.schema import cluster as C
from vllm_bug.schema.fastcheck import compile_check
from vllm_bug.schema.redact import Redactor


def cluster_doc(*payloads, statuses=None):
    entries = [C.node_entry(f"node-{i}", payload=p, primary=i == 1) for i, p in enumerate(payloads, start=1)]
    for status in statuses or []:
        entries.append(C.node_entry(f"node-{len(entries) + 1}", status=status, error=f"node {status}"))
    return B.make_envelope(payloads[0], nodes=C.nodes_section("ray", entries, expected=len(entries)))


def jsonschema_errors(doc):
    return list(B._validator(doc["schema_version"]).iter_errors(doc))


def test_a_cluster_bundle_is_version_2_and_round_trips(tmp_path):
    a, b = as_node(real_payload(), "a"), as_node(real_payload(), "b")
    doc = cluster_doc(a, b, statuses=["dead"])
    assert doc["schema_version"] == B.CLUSTER_SCHEMA_VERSION == 2
    path = tmp_path / "cluster.zst"
    path.write_bytes(B.encode(doc))
    back = B.read_bundle(path)
    assert [e["label"] for e in C.entries_of(back)] == ["node-1", "node-2", "node-3"]
    assert [e["status"] for e in C.entries_of(back)] == ["ok", "ok", "dead"]
    assert "payload" not in C.entries_of(back)[2]


def test_single_node_bundles_stay_version_1():
    assert B.make_envelope(minimal_payload())["schema_version"] == 1
    assert C.entries_of(B.make_envelope(minimal_payload())) == []


def test_an_older_reader_refuses_a_cluster_bundle_with_upgrade(monkeypatch):
    doc = cluster_doc(minimal_payload())
    data = zstandard.ZstdCompressor().compress(json.dumps(doc).encode())
    monkeypatch.setattr(B, "SUPPORTED_SCHEMA_VERSIONS", (1,))  # what every release before the nodes section reads
    with pytest.raises(UnreadableInput, match=r"schema_version 2, newer than this vllm-bug reads \(up to 1\): upgrade"):
        B.decode(data)


def test_version_1_may_not_carry_nodes_and_version_2_must():
    doc = cluster_doc(minimal_payload())
    v1 = dict(doc, schema_version=1)
    with pytest.raises(B.BundleInvalid, match="nodes"):
        B.validate(v1)
    v2 = {k: v for k, v in doc.items() if k != "nodes"}
    with pytest.raises(B.BundleInvalid, match="nodes"):
        B.validate(v2)


def test_every_node_payload_is_checked_against_the_v1_payload_schema():
    doc = cluster_doc(minimal_payload(), minimal_payload())
    doc["nodes"]["entries"][1]["payload"]["gpus"] = "two"
    with pytest.raises(B.BundleInvalid, match=r"entries\[1\]\.payload\.gpus"):
        B.validate(doc)


def test_quick_check_follows_refs_into_version_1_and_agrees_with_jsonschema():
    check = compile_check(B.load_schema(2), [B.load_schema(1), B.load_schema(2)])
    assert check is not None, "bundle-v2 uses something the quick check cannot follow"
    good = cluster_doc(as_node(real_payload(), "a"), as_node(real_payload(NCCL_FAIL), "b"), statuses=["timeout"])
    assert check(good) and not jsonschema_errors(good)
    for breakage in (
        lambda d: d["nodes"]["entries"][0].update(status="lost"),
        lambda d: d["nodes"]["entries"][1]["payload"].update(gpus=None),
        lambda d: d["nodes"].update(entries=[]),
        lambda d: d["nodes"].pop("source"),
        lambda d: d["payload"]["host"].update(node_id="NOT-HEX"),
        lambda d: d.update(extra=1),
    ):
        bad = json.loads(json.dumps(good))
        breakage(bad)
        assert not check(bad)
        assert jsonschema_errors(bad)


def test_the_quick_check_resolves_local_definitions():
    check = compile_check({"$defs": {"n": {"type": "integer"}}, "type": "array", "items": {"$ref": "#/$defs/n"}})
    assert check([1, 2]) and not check([1, "2"])


# ------------------------------------------------------------------ identity and merge


def test_bundles_of_one_machine_are_the_same_node_and_others_are_not():
    collect, nccl = C.identity_of(real_payload(COLLECT)), C.identity_of(real_payload(NCCL_FAIL))
    h100 = C.identity_of(real_payload(COLLECT.parent / "h100-1gpu-no-torch.zst"))
    assert collect.node_id is None and len(collect.gpus) == 2  # written before node ids: told apart by GPU
    assert collect.same_as(nccl) and not collect.same_as(h100)
    assert not C.identity_of(as_node(real_payload(), "a")).same_as(C.identity_of(as_node(real_payload(), "b")))
    assert not C.identity_of(minimal_payload()).same_as(C.identity_of(minimal_payload()))  # nothing to tell by


def test_merge_keeps_input_order_and_makes_the_first_the_primary(tmp_path):
    a, b = as_node(real_payload(NCCL_FAIL), "a"), as_node(real_payload(COLLECT), "b")
    docs = [(str(write(tmp_path, n, p)), B.read_bundle(tmp_path / f"{n}.zst")) for n, p in (("a", a), ("b", b))]
    merged = C.merge_documents(docs)
    B.validate(merged)
    entries = C.entries_of(merged)
    assert merged["nodes"]["source"] == "merge"
    assert [(e["label"], e["primary"], e["node_id"]) for e in entries] == [
        ("node-1", True, a["host"]["node_id"]),
        ("node-2", False, b["host"]["node_id"]),
    ]
    assert merged["payload"] == a and entries[1]["payload"] == b


def test_merge_refuses_the_same_node_twice():
    same = [("run.zst", B.read_bundle(NCCL_FAIL)), ("collect.zst", B.read_bundle(COLLECT))]
    with pytest.raises(UsageProblem, match=r"run.zst and collect.zst: collected on the same node \(the same 2 GPU"):
        C.merge_documents(same)
    a = B.make_envelope(as_node(real_payload(), "a"))
    with pytest.raises(UsageProblem, match=r"a.zst twice: collected on the same node \(node id [0-9a-f]{16}\)"):
        C.merge_documents([("a.zst", a), ("a.zst", a)])


def test_merge_needs_two_bundles():
    with pytest.raises(UsageProblem, match="two or more"):
        C.merge_documents([("a.zst", B.make_envelope(minimal_payload()))])


def test_a_cluster_bundle_merges_in_with_all_its_nodes():
    cluster = cluster_doc(as_node(real_payload(), "a"), as_node(real_payload(), "b"), statuses=["dead"])
    extra = B.make_envelope(as_node(real_payload(), "c"))
    merged = C.merge_documents([("cluster.zst", cluster), ("c.zst", extra)])
    assert [(e["label"], e["status"], e["primary"]) for e in C.entries_of(merged)] == [
        ("node-1", "ok", True),
        ("node-2", "ok", False),
        ("node-3", "dead", False),
        ("node-4", "ok", False),
    ]
    with pytest.raises(UsageProblem, match="same node"):
        C.merge_documents([("cluster.zst", cluster), ("a.zst", B.make_envelope(as_node(real_payload(), "a")))])


def test_merge_redacts_every_node_again_and_counts_it():
    leaky = as_node(real_payload(), "b")
    leaky["env"]["NCCL_DEBUG_FILE"] = "/tmp/x?token=hf_abcdefghijklmnopqrstuvwxyz0123456789"
    merged = C.merge_documents(
        [("a", B.make_envelope(as_node(real_payload(), "a"))), ("b", B.make_envelope(leaky))],
        redactor_factory=lambda: Redactor(home=None),
    )
    node_b = C.entries_of(merged)[1]["payload"]
    assert "hf_abcdefghijklmnopqrstuvwxyz0123456789" not in json.dumps(merged)
    assert sum(r["count"] for r in node_b["redactions"]) == sum(r["count"] for r in leaky["redactions"]) + 1


def test_the_analyzer_redacts_every_node():
    leaky = as_node(real_payload(), "b")
    leaky["env"]["NCCL_DEBUG_FILE"] = "/tmp/x?token=hf_abcdefghijklmnopqrstuvwxyz0123456789"
    doc = cluster_doc(as_node(real_payload(), "a"), leaky)
    redactor = Redactor(home=None)
    scrubbed = C.scrub_every_node(doc, redactor)
    assert "hf_abcdefghijklmnopqrstuvwxyz0123456789" not in json.dumps(scrubbed)
    assert "hf_abcdefghijklmnopqrstuvwxyz0123456789" in json.dumps(doc)  # the input itself is left alone
    assert redactor.summary()


# ------------------------------------------------------------------ vllm-bug merge


def run_cli(capsys, *args):
    from vllm_bug.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_merge_command_writes_a_cluster_bundle(tmp_path, capsys):
    a = write(tmp_path, "a", as_node(real_payload(NCCL_FAIL), "a"))
    b = write(tmp_path, "b", as_node(real_payload(COLLECT), "b"))
    out_path = tmp_path / "cluster.zst"
    code, out, err = run_cli(capsys, "merge", str(a), str(b), "-o", str(out_path))
    assert (code, err) == (0, "")
    assert out.strip() == f"vllm-bug: wrote {out_path}: 2 nodes, schema_version 2"
    assert len(C.entries_of(B.read_bundle(out_path))) == 2


def test_merge_command_refusals_are_one_line_with_their_exit_code(tmp_path, capsys):
    a = write(tmp_path, "a", as_node(real_payload(), "a"))
    b = write(tmp_path, "b", as_node(real_payload(), "b"))
    code, _, err = run_cli(capsys, "merge", str(NCCL_FAIL), str(COLLECT), "-o", str(tmp_path / "x.zst"))
    assert code == 2 and "same node" in err and err.count("\n") == 1
    before = a.read_bytes()
    code, _, err = run_cli(capsys, "merge", str(a), str(b), "-o", str(a), "--force")
    assert code == 1 and "refusing to write over the input" in err and a.read_bytes() == before
    (tmp_path / "exists.zst").write_bytes(b"keep")
    code, _, err = run_cli(capsys, "merge", str(a), str(b), "-o", str(tmp_path / "exists.zst"))
    assert code == 1 and "already exists" in err and (tmp_path / "exists.zst").read_bytes() == b"keep"
    (tmp_path / "junk.zst").write_bytes(b"not a bundle")
    code, _, err = run_cli(capsys, "merge", str(a), str(tmp_path / "junk.zst"), "-o", str(tmp_path / "y.zst"))
    assert code == 3 and not (tmp_path / "y.zst").exists()
    code, _, err = run_cli(capsys, "merge", str(a), "-o", str(tmp_path / "z.zst"))
    assert code == 2 and "two or more" in err


def test_merge_writes_no_bundle_to_standard_output(tmp_path, capsys):
    a = write(tmp_path, "a", as_node(real_payload(), "a"))
    b = write(tmp_path, "b", as_node(real_payload(), "b"))
    code, out, err = run_cli(capsys, "merge", str(a), str(b), "-o", "-")
    assert (code, out) == (2, "") and "give -o PATH" in err


def test_merge_validate_and_show_name_the_file_that_is_not_a_bundle(tmp_path, capsys):
    a = write(tmp_path, "a", as_node(real_payload(), "a"))
    junk = tmp_path / "junk\x1b[31m.zst"  # a name that would colour the terminal is spelled out
    junk.write_bytes(b"not a bundle")
    shown = str(junk).replace("\x1b", "\\x1b")
    code, _, err = run_cli(capsys, "merge", str(a), str(junk), "-o", str(tmp_path / "y.zst"))
    assert code == 3 and err == f"vllm-bug: error: {shown}: not a zstd-compressed bundle (bad magic bytes)\n"
    for command in ("validate", "show"):
        code, _, err = run_cli(capsys, command, str(junk))
        assert code == 3 and err == f"vllm-bug: error: {shown}: not a zstd-compressed bundle (bad magic bytes)\n"
    code, _, err = run_cli(capsys, "validate", str(tmp_path / "missing.zst"))
    assert code == 3 and err.count(str(tmp_path / "missing.zst")) == 1  # named once, not twice
