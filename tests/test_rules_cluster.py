"""Cross-node rules on cluster bundles merged from the real two-H200 bundles, changed as real nodes differ."""

from __future__ import annotations

import pytest

from cluster_helpers import COLLECT, NCCL_FAIL, as_node, changed, real_payload
from vllm_bug.analyzer.analyze import analyze_loaded
from vllm_bug.analyzer.load import LoadedInput
from vllm_bug.analyzer.rules.cluster import select_gloo_interfaces, select_nccl_interfaces
from vllm_bug.schema import bundle as B
from vllm_bug.schema import cluster as C

CLUSTER_RULES = (
    "CLUSTER_VERSIONS_DIFFER",
    "CLUSTER_SETTINGS_DIFFER",
    "CLUSTER_INTERFACE_MISSING",
    "CLUSTER_NODE_UNAVAILABLE",
    "CLUSTER_TOO_FEW_GPUS",
)


def merged(*payloads, extra_entries=()):
    docs = [(f"node{i}.zst", B.make_envelope(p)) for i, p in enumerate(payloads)]
    doc = C.merge_documents(docs)
    if extra_entries:
        entries = C.entries_of(doc) + [
            C.node_entry(f"node-{len(payloads) + i + 1}", **e) for i, e in enumerate(extra_entries)
        ]
        doc = B.make_envelope(doc["payload"], nodes=C.nodes_section("ray", entries, expected=len(entries)))
    B.validate(doc)
    return doc


def analyze(doc):
    analysis = analyze_loaded(LoadedInput(kind="bundle", sha256="0" * 64, doc=doc, text=None, name="cluster.zst"))
    return analysis, {f.rule: f for f in analysis.diagnoses}


def node(name, path=COLLECT, change=None):
    payload = as_node(real_payload(path), name)
    return changed(payload, change) if change else payload


def set_torch(version, nccl=None):
    def change(p):
        p["torch"]["version"] = version
        if nccl:
            p["torch"]["nccl_version"] = nccl

    return change


def set_env(**values):
    return lambda p: p["env"].update(values)


def test_identical_nodes_raise_no_cluster_finding():
    _, found = analyze(merged(node("a"), node("b"), node("c")))
    assert not set(found) & set(CLUSTER_RULES)


def test_a_single_node_bundle_gets_no_cluster_facts_or_findings():
    analysis, found = analyze(B.read_bundle(NCCL_FAIL))
    assert analysis.facts.nodes == [] and not set(found) & set(CLUSTER_RULES)


def test_torch_and_nccl_skew_is_named_per_node():
    doc = merged(node("a"), node("b"), node("c", change=set_torch("2.10.0+cu129", nccl="2.27.3")))
    analysis, found = analyze(doc)
    finding = found["CLUSTER_VERSIONS_DIFFER"]
    assert finding.category == "nccl" and finding.confidence == pytest.approx(0.7)
    assert "torch" in finding.title and "NCCL" in finding.title
    assert "torch: 2.11.0+cu130 on node-1, node-2; 2.10.0+cu129 on node-3" in finding.evidence
    assert "NCCL: 2.28.9 on node-1, node-2; 2.27.3 on node-3" in finding.evidence
    assert [n.torch_version for n in analysis.facts.nodes] == ["2.11.0+cu130", "2.11.0+cu130", "2.10.0+cu129"]


def test_a_driver_only_difference_is_a_weaker_hint():
    other_driver = node("b", change=lambda p: p["driver"].update(version="570.172.08", cuda_version="12.8"))
    _, found = analyze(merged(node("a"), other_driver))
    finding = found["CLUSTER_VERSIONS_DIFFER"]
    assert finding.confidence == pytest.approx(0.5)
    assert finding.evidence == [
        "NVIDIA driver: 580.159.04 on node-1; 570.172.08 on node-2",
        "driver's CUDA: 13.0 on node-1; 12.8 on node-2",
    ]


def test_python_version_skew_is_found():
    def older_python(p):
        p["host"]["python"]["version"] = "3.12.11"

    _, found = analyze(merged(node("a"), node("b", change=older_python)))
    assert "Python: 3.12.3 on node-1; 3.12.11 on node-2" in found["CLUSTER_VERSIONS_DIFFER"].evidence


def test_nccl_settings_that_differ_but_not_each_nodes_own_address():
    a = node("a", change=set_env(NCCL_IB_DISABLE="1", VLLM_HOST_IP="10.0.0.1"))
    b = node("b", change=set_env(VLLM_HOST_IP="10.0.0.2"))
    _, found = analyze(merged(a, b))
    finding = found["CLUSTER_SETTINGS_DIFFER"]
    assert finding.evidence == ["NCCL_IB_DISABLE: 1 on node-1; unset on node-2"]
    assert "VLLM_HOST_IP" not in " ".join(finding.evidence)


def test_the_real_nccl_fail_bundle_names_an_interface_no_node_has():
    """h200-2gpu-run-nccl-fail ran with NCCL_SOCKET_IFNAME=nosuchif; with interfaces recorded, the rule says so."""
    _, found = analyze(merged(node("a", NCCL_FAIL), node("b", NCCL_FAIL)))
    finding = found["CLUSTER_INTERFACE_MISSING"]
    assert finding.evidence[:2] == [
        "node-1: NCCL_SOCKET_IFNAME=nosuchif, but its interfaces are eth0, ib0, lo",
        "node-2: NCCL_SOCKET_IFNAME=nosuchif, but its interfaces are eth0, ib0, lo",
    ]
    assert "CLUSTER_SETTINGS_DIFFER" not in found  # the same on both: not a difference


def test_an_interface_one_node_lacks_or_has_down():
    a = node("a", change=set_env(NCCL_SOCKET_IFNAME="ib", GLOO_SOCKET_IFNAME="ib0"))
    b = as_node(real_payload(), "b", interfaces=[{"name": "eth0", "state": "up"}, {"name": "lo", "state": "unknown"}])
    b["env"].update(NCCL_SOCKET_IFNAME="ib", GLOO_SOCKET_IFNAME="ib0")
    c = as_node(real_payload(), "c", interfaces=[{"name": "ib0", "state": "down"}, {"name": "lo", "state": None}])
    c["env"].update(NCCL_SOCKET_IFNAME="ib", GLOO_SOCKET_IFNAME="ib0")
    _, found = analyze(merged(a, b, c))
    assert found["CLUSTER_INTERFACE_MISSING"].evidence == [
        "node-2: NCCL_SOCKET_IFNAME=ib, but its interfaces are eth0, lo",
        "node-2: GLOO_SOCKET_IFNAME=ib0, but its interfaces are eth0, lo",
        "node-3: NCCL_SOCKET_IFNAME=ib names ib0, which is down",
        "node-3: GLOO_SOCKET_IFNAME=ib0 names ib0, which is down",
    ]


def test_vllm_host_ip_copied_to_every_node_or_not_held_there():
    def host_ip(value, local):
        def change(p):
            p["env"]["VLLM_HOST_IP"] = value
            p["host"]["network"]["addresses_held"] = {"VLLM_HOST_IP": {"local": local, "interface": None}}

        return change

    doc = merged(node("a", change=host_ip("10.0.0.1", True)), node("b", change=host_ip("10.0.0.1", False)))
    _, found = analyze(doc)
    assert found["CLUSTER_INTERFACE_MISSING"].evidence == [
        "node-2: VLLM_HOST_IP=10.0.0.1 is not an address of this node",
        "VLLM_HOST_IP=10.0.0.1 on node-1, node-2: one address for several nodes",
    ]


def test_bundles_without_interface_facts_are_not_judged():
    old = real_payload(NCCL_FAIL)  # written before interfaces were recorded
    other = node("b", NCCL_FAIL)
    del other["host"]["network"]
    _, found = analyze(merged(old, other))
    assert "CLUSTER_INTERFACE_MISSING" not in found


def test_a_dead_node_and_one_that_timed_out():
    doc = merged(
        node("a"),
        node("b"),
        extra_entries=[
            {"status": "dead", "error": "Ray lists this node as dead", "ray_gpus": 8.0},
            {"status": "timeout", "error": "no answer within 90 s (--node-timeout)"},
        ],
    )
    analysis, found = analyze(doc)
    finding = found["CLUSTER_NODE_UNAVAILABLE"]
    assert finding.confidence == pytest.approx(0.7)
    assert finding.title.startswith("node-3 is dead: the workers there died with it")
    assert finding.evidence == [
        "node-3: dead (Ray lists this node as dead)",
        "node-4: timeout (no answer within 90 s (--node-timeout))",
    ]
    assert [n.status for n in analysis.facts.nodes] == ["ok", "ok", "dead", "timeout"]
    assert analysis.facts.nodes[2].gpu_count == 8  # Ray's count where the node could not say


def test_a_node_missing_from_a_merge_is_found_through_nnodes():
    def launched_on_three(p):
        p["command"] = {"argv": ["vllm", "serve", "m", "--nnodes", "3", "--node-rank", "0"], "exit_code": 1}

    _, found = analyze(merged(node("a", change=launched_on_three), node("b")))
    assert found["CLUSTER_NODE_UNAVAILABLE"].evidence == ["the job asks for 3 nodes; the bundle holds 2"]


def test_too_few_gpus_for_tensor_times_pipeline_parallel():
    def tp_pp(p):
        p["command"] = {
            "argv": ["vllm", "serve", "m", "--tensor-parallel-size", "2", "--pipeline-parallel-size", "3"],
            "exit_code": 1,
        }

    doc = merged(node("a", change=tp_pp), node("b"), extra_entries=[{"status": "dead"}])
    _, found = analyze(doc)
    finding = found["CLUSTER_TOO_FEW_GPUS"]
    assert finding.category == "engine_config"
    assert finding.title.startswith(
        "tensor x pipeline parallel size asks for 6 GPUs, but the nodes that answered have 4 (node-3 did not answer)"
    )
    assert finding.evidence == ["node-1: 2 GPU(s)", "node-2: 2 GPU(s)"]
    _, enough = analyze(merged(node("a", change=tp_pp), node("b"), node("c")))
    assert "CLUSTER_TOO_FEW_GPUS" not in enough


@pytest.mark.parametrize(
    ("spec", "selected"),
    [
        ("eth", ["eth0", "eth1"]),
        ("=eth0", ["eth0"]),
        ("=eth", []),
        ("^lo,docker", ["eth0", "eth1", "ib0"]),
        ("^=eth0", ["docker0", "eth1", "ib0", "lo"]),
        ("ib,eth1", ["eth1", "ib0"]),
        ("nosuchif", []),
    ],
)
def test_nccl_socket_ifname_semantics(spec, selected):
    assert select_nccl_interfaces(spec, ["docker0", "eth0", "eth1", "ib0", "lo"]) == selected


def test_gloo_socket_ifname_needs_every_name():
    assert select_gloo_interfaces("eth0,ib0", ["eth0", "ib0"]) == ["eth0", "ib0"]
    assert select_gloo_interfaces("eth0,ib1", ["eth0", "ib0"]) == []
    assert select_gloo_interfaces("eth", ["eth0"]) == []


# ------------------------------------------------------------------ the report


def test_markdown_report_folds_a_per_node_table_with_the_differences_first():
    from vllm_bug.analyzer.render_markdown import render_markdown

    hostile = set_env(NCCL_ALGO="Ring|</details>`x`", NCCL_IB_DISABLE="1")
    doc = merged(
        node("a"),
        node("b", change=hostile),
        node("c", change=set_torch("2.10.0+cu129")),
        extra_entries=[{"status": "dead", "error": "Ray lists this node as dead"}],
    )
    analysis, _ = analyze(doc)
    report = render_markdown(analysis)
    block = report.split("<summary>Nodes: ", 1)[1].split("\n</details>", 1)[0]
    assert report.split("<summary>Nodes: ", 1)[0].endswith("<details>\n")
    summary, table = block.split("</summary>", 1)
    assert summary == "4 nodes (node-4 dead); they differ in torch, NCCL_ALGO, NCCL_IB_DISABLE"
    rows = [line for line in table.strip().splitlines() if line.startswith("|")]
    assert rows[0] == "| | node-1 | node-2 | node-3 | node-4 |"
    assert [row.split(" | ")[0] for row in rows[2:6]] == [
        "| **status** (differs)",
        "| **torch** (differs)",
        "| **NCCL_ALGO** (differs)",
        "| **NCCL_IB_DISABLE** (differs)",
    ]
    assert all(row.replace("\\|", "").count("|") == 6 for row in rows)  # the hostile value adds no column
    assert "`` Ring\\|</details>`x` ``" in table


def test_text_report_says_how_many_nodes_and_what_differs():
    from vllm_bug.analyzer.render_text import render_text

    analysis, _ = analyze(merged(node("a"), node("b", change=set_torch("2.10.0+cu129"))))
    assert "  Nodes:    2 nodes; they differ in torch\n" in render_text(analysis)


def test_json_output_lists_the_nodes():
    from vllm_bug.analyzer.jsonout import analysis_to_json

    analysis, _ = analyze(merged(node("a"), node("b"), extra_entries=[{"status": "timeout"}]))
    out = analysis_to_json(analysis)["facts"]
    assert [n["label"] for n in out["nodes"]] == ["node-1", "node-2", "node-3"]
    assert out["nodes"][2] == {"label": "node-3", "status": "timeout", "primary": False}
    assert out["nodes_expected"] == 3
