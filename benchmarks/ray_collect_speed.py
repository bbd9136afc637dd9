"""How long `vllm-bug collect --ray` takes on a local Ray cluster of N nodes, next to one single-node collect.

Starts a Ray cluster of --nodes nodes on this machine (ray.cluster_utils, one CPU each), then runs,
interleaved, --runs times each after one uncounted warm-up round:
    single   vllm-bug collect -q -o <tmp>/single-<i>.zst
    cluster  vllm-bug collect --ray ADDRESS -q -o <tmp>/cluster-<i>.zst
and prints the median wall times and their ratio cluster/single end to end, then the collection
itself: the slowest node's own collect time in each cluster bundle against the single-node bundle's
(manifest duration_s). The nodes are collected in parallel, so that ratio should stay near 1 (target
<= 1.5); the rest of the end-to-end difference is Ray's fixed cost (importing ray, attaching to the
cluster, starting one worker process per node for the new job), paid once whatever the node count.

    python benchmarks/ray_collect_speed.py [--nodes 3] [--runs 5]

Exit status: 0 target met, 2 missed, 1 a command failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATIO_TARGET = 1.5


def vllm_bug() -> list[str]:
    return [sys.executable, "-m", "vllm_bug"]


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr[-2000:]}")
    return took


def shown(bundle: Path, env: dict[str, str]) -> dict:
    done = subprocess.run([*vllm_bug(), "show", str(bundle)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def slowest_node(doc: dict) -> float:
    return max(float(e.get("duration_s") or 0) for e in doc["nodes"]["entries"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from ray.cluster_utils import Cluster

    started = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        print(f"cluster of {args.nodes} nodes up in {time.perf_counter() - started:.1f} s")
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)
        single: list[float] = []
        ray: list[float] = []
        with tempfile.TemporaryDirectory(prefix="vllm-bug-ray-bench-") as tmp:
            for i in range(args.runs + 1):
                one = timed([*vllm_bug(), "collect", "-q", "-o", f"{tmp}/single-{i}.zst"], env)
                many = timed(
                    [*vllm_bug(), "collect", "--ray", cluster.address, "-q", "-o", f"{tmp}/cluster-{i}.zst"], env
                )
                if i:  # round 0 warms the page cache and Ray's worker pool
                    single.append(one)
                    ray.append(many)
            singles = [shown(Path(tmp) / f"single-{i}.zst", env) for i in range(1, args.runs + 1)]
            clusters = [shown(Path(tmp) / f"cluster-{i}.zst", env) for i in range(1, args.runs + 1)]
            single_collect = [d["payload"]["manifest"]["duration_s"] for d in singles]
            node_collect = [slowest_node(d) for d in clusters]
            per_node = [
                f"{e['label']} {e['status']} {e.get('duration_s') or 0:.2f} s" for e in clusters[-1]["nodes"]["entries"]
            ]
            last = Path(tmp) / f"cluster-{args.runs}.zst"
            sizes = ((Path(tmp) / f"single-{args.runs}.zst").stat().st_size, last.stat().st_size)
    finally:
        cluster.shutdown()
    end_to_end = statistics.median(ray) / statistics.median(single)
    collection = statistics.median(node_collect) / statistics.median(single_collect)
    print(
        f"end to end, single-node collect: median {statistics.median(single):.2f} s over {args.runs} runs "
        f"({', '.join(f'{t:.2f}' for t in single)})"
    )
    print(
        f"end to end, collect --ray on {args.nodes} nodes: median {statistics.median(ray):.2f} s "
        f"({', '.join(f'{t:.2f}' for t in ray)}); ratio {end_to_end:.2f}"
    )
    print(
        f"collection: single {statistics.median(single_collect):.2f} s, slowest of {args.nodes} nodes "
        f"{statistics.median(node_collect):.2f} s (medians); ratio {collection:.2f} (target <= {RATIO_TARGET})"
    )
    print("each node's own collect, last run: " + "; ".join(per_node))
    print(f"bundle sizes: single {sizes[0] / 1024:.1f} KiB, cluster {sizes[1] / 1024:.1f} KiB")
    return 0 if collection <= RATIO_TARGET else 2


if __name__ == "__main__":
    sys.exit(main())
