"""collect --ray against a real Ray cluster of several nodes started on this machine (ray.cluster_utils).

The cluster is started once for the module (about 15 s on two cores); each test bounds its own waits
with the collector's per-node timeout. Skipped only when Ray cannot be imported.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[test]' installs it")

from vllm_bug.bundler.ray_collect import collect_on_node, collect_with_cluster, start_cluster_collection  # noqa: E402
from vllm_bug.commands import collect as collect_command  # noqa: E402
from vllm_bug.errors import VllmBugError  # noqa: E402
from vllm_bug.schema import bundle as B  # noqa: E402
from vllm_bug.schema.cluster import entries_of  # noqa: E402

pytestmark = pytest.mark.ray
NODES = 3
# GCS notices a killed node within about a second instead of the default fifteen
FAST_FAILURE_DETECTION = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 300,
    "health_check_failure_threshold": 3,
}


SECRET = "hf_" + "Q7x" * 12  # a token in the environment every Ray worker inherits


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    previous = os.environ.get("HF_TOKEN")
    os.environ["HF_TOKEN"] = SECRET
    local = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": FAST_FAILURE_DETECTION})
    try:
        for _ in range(NODES - 1):
            local.add_node(num_cpus=1)
        local.wait_for_nodes()
        yield local
    finally:
        local.shutdown()
        if previous is None:
            os.environ.pop("HF_TOKEN", None)
        else:
            os.environ["HF_TOKEN"] = previous


def alive_ids() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_collect_ray_writes_one_bundle_with_one_entry_per_node(cluster, tmp_path, capsys):
    out = tmp_path / "cluster.zst"
    result = collect_command.execute(output=str(out), timeout_s=30, ray_address=cluster.address, node_timeout_s=45)
    assert result.exit_code == 0
    doc = B.read_bundle(out)
    entries = entries_of(doc)
    assert doc["schema_version"] == 2 and doc["nodes"]["source"] == "ray" and doc["nodes"]["expected"] == NODES
    assert doc["nodes"]["ray_version"] == ray.__version__
    assert [e["label"] for e in entries] == [f"node-{i}" for i in range(1, NODES + 1)]
    assert len({e["ray_node_id"] for e in entries}) == NODES
    assert all(e["status"] == "ok" and e["payload"]["manifest"]["probes"] for e in entries)
    assert [e["head"] for e in entries] == [True] + [False] * (NODES - 1)
    assert sum(e["primary"] for e in entries) == 1  # the node this process runs on
    assert all(e["payload"]["manifest"]["collector"]["argv"] == ["vllm-bug", "collect", "--ray"] for e in entries)
    assert doc["payload"]["manifest"]["collector"]["argv"] != ["vllm-bug", "collect", "--ray"]  # this machine's own
    assert f"nodes:     {NODES} of {NODES} answered" in result.text


def test_nodes_are_collected_while_the_cluster_has_no_free_cpu(cluster, capsys):
    """vLLM's Ray executor holds every resource in a placement group; the collector must not need any."""
    from ray.util.placement_group import placement_group, remove_placement_group

    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    group = placement_group([{"CPU": 1}] * NODES, strategy="STRICT_SPREAD", lifetime="detached")
    try:
        ray.get(group.ready(), timeout=30)
        assert wait_for(lambda: ray.available_resources().get("CPU", 0) == 0)  # the view lags a little
        ray.shutdown()  # the group stays, as vLLM's does while the collector (another process) runs
        _payload, nodes = collect_with_cluster(
            lambda: {}, cluster.address, collect_timeout_s=20, node_timeout_s=40, progress=True
        )
    finally:
        if not ray.is_initialized():
            ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        remove_placement_group(group)
        ray.shutdown()
    assert [e["status"] for e in nodes["entries"]] == ["ok"] * NODES
    # the answers came straight from the nodes, never through a writer: each node redacted its own payload
    assert SECRET not in json.dumps(nodes)
    assert all(e["payload"]["env"]["HF_TOKEN"].startswith("<redacted") for e in nodes["entries"])
    assert all(e["payload"]["redactions"] for e in nodes["entries"])
    progress = capsys.readouterr().err.splitlines()  # one line as each node answers
    assert len(progress) == NODES and all(
        re.fullmatch(
            r"vllm-bug: node-\d \([0-9a-f]{8}\) answered after "
            r"[\d.]+ s \[\d/3\]",
            line,
        )
        for line in progress
    )


def test_a_node_that_does_not_answer_in_time_is_recorded_as_timeout(cluster):
    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    slow_node = sorted(alive_ids())[0]
    ray.shutdown()

    def slow_on_one_node(timeout_s):
        import ray as ray_in_worker

        if ray_in_worker.get_runtime_context().get_node_id() == slow_node:
            time.sleep(60)
        return collect_on_node(timeout_s)

    started = time.monotonic()
    _, nodes = collect_with_cluster(
        lambda: {}, cluster.address, collect_timeout_s=20, node_timeout_s=8, node_task=slow_on_one_node
    )
    assert time.monotonic() - started < 20
    by_id = {e["ray_node_id"]: e for e in nodes["entries"]}
    assert by_id[slow_node]["status"] == "timeout" and "no answer within" in by_id[slow_node]["error"]
    assert "payload" not in by_id[slow_node]
    assert [e["status"] for i, e in by_id.items() if i != slow_node] == ["ok"] * (NODES - 1)


def test_a_node_killed_mid_collect_is_recorded_and_then_listed_dead(cluster, tmp_path):
    doomed = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    doomed_id = doomed.node_id
    started = tmp_path / "doomed-task-started"

    def slow_on_doomed_node(timeout_s):
        import pathlib

        import ray as ray_in_worker

        if ray_in_worker.get_runtime_context().get_node_id() == doomed_id:
            pathlib.Path(started).touch()
            time.sleep(60)
        return collect_on_node(timeout_s)

    collection = start_cluster_collection(
        cluster.address, collect_timeout_s=20, node_timeout_s=25, node_task=slow_on_doomed_node
    )
    deadline = time.monotonic() + 20  # the doomed node's task must be running before its node dies
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started.exists()
    cluster.remove_node(doomed, allow_graceful=False)
    nodes = collection.finish()
    by_id = {e["ray_node_id"]: e for e in nodes["entries"]}
    assert len(by_id) == NODES + 1
    # dead when Ray has noticed by then; on a loaded machine the node's wait may run out first
    assert by_id[doomed_id]["status"] in ("dead", "timeout"), by_id[doomed_id]
    assert "payload" not in by_id[doomed_id] and by_id[doomed_id]["error"]
    assert sorted(e["status"] for i, e in by_id.items() if i != doomed_id) == ["ok"] * NODES

    nodes = start_cluster_collection(cluster.address, collect_timeout_s=20, node_timeout_s=25).finish()
    dead = [e for e in nodes["entries"] if e["ray_node_id"] == doomed_id]
    assert dead and dead[0]["status"] == "dead" and dead[0]["error"] == "Ray lists this node as dead"
    assert nodes["expected"] == NODES + 1


def test_no_cluster_at_the_address_is_one_clear_error():
    with pytest.raises(VllmBugError, match="cannot attach to a running Ray cluster at '127.0.0.1:1'"):
        start_cluster_collection("127.0.0.1:1", collect_timeout_s=5)


def test_without_ray_one_line_says_how_to_get_it(monkeypatch, tmp_path, capsys):
    from vllm_bug.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as where it is not installed
    with pytest.raises(SystemExit) as exc:
        main(["collect", "--ray", "-o", str(tmp_path / "x.zst")])
    err = capsys.readouterr().err
    assert exc.value.code == 1
    assert err.strip() == (
        "vllm-bug: error: collect --ray needs Ray, which is not installed in this Python: "
        "pip install 'vllm-bug[ray]' (or run vllm-bug from the environment vLLM runs Ray in)"
    )
    assert not (tmp_path / "x.zst").exists()


def test_vllm_bug_travels_to_the_nodes_only_from_a_self_contained_install(tmp_path, monkeypatch):
    import vllm_bug
    from vllm_bug.bundler.ray_collect import _runtime_env

    assert _runtime_env() is None  # this checkout's editable install: bundler/ lies outside vllm_bug/
    installed = tmp_path / "site-packages" / "vllm_bug"
    for part in ("bundler", "schema", "analyzer"):
        (installed / part).mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    monkeypatch.setattr(vllm_bug, "__file__", str(installed / "__init__.py"))
    assert _runtime_env() == {"py_modules": [str(installed)]}
