"""`collect --ray`: the single-node collector, run on every node of a running Ray cluster at once.

It attaches to a cluster that is already running (ADDRESS, or "auto": RAY_ADDRESS, then the cluster
started on this machine) and never starts one. On each alive node it runs one task that asks Ray for no
resources at all (num_cpus=0, so a cluster whose CPUs and GPUs vLLM holds still runs it), pinned to
that node (a hard node-affinity), never retried. The task runs bundler/collect.py's probes in that
node's Ray worker, which is the Python and the environment vLLM's workers get there, and redacts the
payload before it leaves the node. Nodes answer in any order; a node that Ray lists as dead, that
dies, fails or does not answer within the per-node timeout becomes an entry saying so.

Ray is an optional extra: without it, one line says how to get it (exit 1).
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vllm_bug.errors import VllmBugError

RAY_MISSING = (
    "collect --ray needs Ray, which is not installed in this Python: pip install 'vllm-bug[ray]' "
    "(or run vllm-bug from the environment vLLM runs Ray in)"
)
NODE_STARTUP_S = 30.0  # on top of the collect timeout: a Ray worker to start, with its runtime environment
WAIT_STEP_S = 0.5
CONNECT_CHECK_S = 5.0
HEAD_RESOURCE = "node:__internal_head__"
NodeTask = Callable[[float], dict[str, Any]]


def collect_on_node(timeout_s: float) -> dict[str, Any]:
    """Runs inside a Ray worker: this node's payload, redacted here, and how long it took."""
    from vllm_bug.bundler.collect import CollectOptions, build_payload

    started = time.monotonic()
    options = CollectOptions(
        timeout_s=timeout_s, python_exe=sys.executable, warm_up=False, argv=["vllm-bug", "collect", "--ray"]
    )
    payload, _manifest, _redactor = build_payload(options)
    return {"payload": payload, "duration_s": time.monotonic() - started}


@dataclass
class _Node:
    ray_id: str
    head: bool
    alive: bool
    gpus: float | None
    label: str = ""
    ref: Any = None
    entry: dict[str, Any] | None = None


@dataclass
class ClusterCollection:
    """Tasks started on every node (start), then their answers gathered into entries (finish)."""

    ray: Any
    nodes: list[_Node]
    local_id: str | None
    deadline: float
    started: float
    progress: bool
    ray_version: str | None
    listed: int
    done: list[_Node] = field(default_factory=list)

    def finish(self) -> dict[str, Any]:
        """The nodes section: every node's entry, after all answered or the per-node timeout passed."""
        from vllm_bug.schema.cluster import nodes_section

        try:
            self._wait()
            self._record_the_rest()
        finally:
            self.ray.shutdown()
        entries = [node.entry for node in self.nodes if node.entry is not None]
        return nodes_section("ray", entries, expected=self.listed, ray_version=self.ray_version)

    def _wait(self) -> None:
        pending = {node.ref: node for node in self.nodes if node.ref is not None}
        while pending and time.monotonic() < self.deadline:
            step = min(WAIT_STEP_S, max(0.0, self.deadline - time.monotonic()))
            ready, _ = self.ray.wait(list(pending), num_returns=1, timeout=step)
            for ref in ready:
                node = pending.pop(ref)
                node.entry = self._answer(node)
                self._say(node)

    def _answer(self, node: _Node) -> dict[str, Any]:
        from vllm_bug.schema.cluster import node_entry

        took = time.monotonic() - self.started
        try:
            result = self.ray.get(node.ref)
        except Exception as exc:  # noqa: BLE001 - a failing node is an entry, never the end of the collect
            status = "dead" if _died(exc) or not _still_alive(self.ray, node.ray_id) else "error"
            return self._entry(node, status=status, error=_one_line(exc), duration_s=took)
        if not isinstance(result, dict) or not isinstance(result.get("payload"), dict):
            return self._entry(node, status="error", error="the node answered without a payload", duration_s=took)
        return node_entry(
            node.label, payload=result["payload"], duration_s=result.get("duration_s", took), **self._ray_facts(node)
        )

    def _record_the_rest(self) -> None:
        for node in self.nodes:
            if node.entry is not None:
                continue
            if not node.alive:
                node.entry = self._entry(node, status="dead", error="Ray lists this node as dead")
                continue
            self.ray.cancel(node.ref, force=True)
            waited = time.monotonic() - self.started
            status = "timeout" if _still_alive(self.ray, node.ray_id) else "dead"
            node.entry = self._entry(
                node,
                status=status,
                duration_s=waited,
                error=f"no answer within {waited:.0f} s (--node-timeout)"
                if status == "timeout"
                else "the node died while it was being collected",
            )
            self._say(node)

    def _entry(self, node: _Node, *, error: str, **fields: Any) -> dict[str, Any]:
        from vllm_bug.schema.cluster import node_entry
        from vllm_bug.schema.redact import Redactor

        return node_entry(node.label, error=Redactor().text(error), **fields, **self._ray_facts(node))

    def _ray_facts(self, node: _Node) -> dict[str, Any]:
        return {
            "primary": node.ray_id == self.local_id,
            "ray_node_id": node.ray_id,
            "head": node.head,
            "ray_gpus": node.gpus,
        }

    def _say(self, node: _Node) -> None:
        if not self.progress or node.entry is None:
            return
        answered = sum(1 for n in self.nodes if n.entry is not None and n.ref is not None)
        total = sum(1 for n in self.nodes if n.ref is not None)
        entry = node.entry
        state = "answered" if entry["status"] == "ok" else f"{entry['status']}: {entry.get('error') or ''}"[:100]
        seconds = entry.get("duration_s") or 0.0
        sys.stderr.write(
            f"vllm-bug: {node.label} ({node.ray_id[:8]}) {state} after {seconds:.1f} s [{answered}/{total}]\n"
        )
        sys.stderr.flush()


def collect_with_cluster(
    local: Callable[[], Any],
    address: str,
    collect_timeout_s: float,
    node_timeout_s: float | None = None,
    progress: bool = False,
    node_task: NodeTask | None = None,
) -> tuple[Any, dict[str, Any]]:
    """LOCAL() (this machine's own collect, with the log) while Ray is loaded, the cluster attached and every
    node answers; returns (LOCAL's result, the nodes section). Ray's own start-up costs overlap LOCAL."""
    require_ray()
    local_run = _Background(local)
    collection = start_cluster_collection(address, collect_timeout_s, node_timeout_s, progress, node_task)
    nodes = collection.finish()
    return local_run.result(), nodes


class _Background:
    """A function run in a daemon thread; result() waits for it and raises what it raised."""

    def __init__(self, func: Callable[[], Any]) -> None:
        import threading

        self.func = func
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="vllm-bug-local-collect", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.value = self.func()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self.error = exc

    def result(self) -> Any:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value


def require_ray() -> None:
    """The one-line refusal where Ray is not installed, without paying for importing it."""
    import importlib.util

    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise VllmBugError(RAY_MISSING)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise VllmBugError(RAY_MISSING) from None
    return ray


def start_cluster_collection(
    address: str,
    collect_timeout_s: float,
    node_timeout_s: float | None = None,
    progress: bool = False,
    node_task: NodeTask | None = None,
) -> ClusterCollection:
    """Attach to the cluster at ADDRESS and start one collect task on every alive node; returns at once."""
    ray = import_ray()
    _connect(ray, address)
    try:
        listed = ray.nodes()
        nodes = _nodes_in_order(listed)
        local_id = _local_node_id(ray)
        remote = ray.remote(num_cpus=0, max_retries=0)(node_task or collect_on_node)
        strategy = _affinity(ray)
        runtime_env = _runtime_env()
        started = time.monotonic()
        for node in nodes:
            if node.alive:
                options: dict[str, Any] = {"scheduling_strategy": strategy(node.ray_id)}
                if runtime_env:
                    options["runtime_env"] = runtime_env
                node.ref = remote.options(**options).remote(collect_timeout_s)
    except BaseException:
        ray.shutdown()
        raise
    wait = node_timeout_s if node_timeout_s is not None else collect_timeout_s + NODE_STARTUP_S
    return ClusterCollection(
        ray=ray,
        nodes=nodes,
        local_id=local_id,
        deadline=started + wait,
        started=started,
        progress=progress,
        ray_version=getattr(ray, "__version__", None),
        listed=len(listed),
    )


def _connect(ray: Any, address: str) -> None:
    """Join the running cluster as a driver, quietly; never start one (ray.init(address=None) would)."""
    if not address:
        raise VllmBugError("collect --ray needs a cluster address, or 'auto'")
    _refuse_unreachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, namespace="vllm-bug")
    except ConnectionError as exc:
        if address == "auto":
            raise VllmBugError(
                "found no running Ray cluster (neither RAY_ADDRESS nor one started on this machine); "
                "give its address: --ray HOST:PORT"
            ) from None
        raise VllmBugError(f"cannot attach to a running Ray cluster at {address!r}: {_one_line(exc)}") from None
    except (ValueError, RuntimeError) as exc:
        raise VllmBugError(f"cannot attach to a running Ray cluster at {address!r}: {_one_line(exc)}") from None


def _refuse_unreachable(address: str, timeout_s: float = CONNECT_CHECK_S) -> None:
    """A HOST:PORT nobody answers on fails here at once: Ray itself retries it for minutes."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # "auto", a ray:// client address: Ray resolves those itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise VllmBugError(f"cannot attach to a running Ray cluster at {address!r}: {reason}") from None


def _nodes_in_order(listed: list[dict[str, Any]]) -> list[_Node]:
    """Every node Ray lists, head first, then by node id; labelled node-1, node-2, ..."""
    nodes = []
    for raw in listed:
        resources = raw.get("Resources") or {}
        gpus = resources.get("GPU")
        nodes.append(
            _Node(
                ray_id=str(raw.get("NodeID", "")),
                head=HEAD_RESOURCE in resources,
                alive=bool(raw.get("Alive")),
                gpus=float(gpus) if isinstance(gpus, (int, float)) else None,
            )
        )
    nodes.sort(key=lambda n: (not n.head, n.ray_id))
    for position, node in enumerate(nodes, start=1):
        node.label = f"node-{position}"
    return nodes


def _local_node_id(ray: Any) -> str | None:
    try:
        return str(ray.get_runtime_context().get_node_id())
    except Exception:  # noqa: BLE001 - a client attached from outside the cluster is on no node
        return None


def _affinity(ray: Any) -> Callable[[str], Any]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return lambda node_id: NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)


def _runtime_env() -> dict[str, Any] | None:
    """Ship vllm_bug to the nodes when it is installed as one self-contained folder (a wheel install).

    Nodes without vllm-bug then still run the collector. An editable install spreads the package over
    the checkout: the nodes must have it installed themselves.
    """
    top = sys.modules["vllm_bug"]  # loaded before any of its modules; not imported here, so no layer is crossed
    package = Path(str(top.__file__)).parent
    if all((package / part).is_dir() for part in ("bundler", "schema")):
        return {"py_modules": [str(package)]}
    return None


def _died(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"NodeDiedError", "WorkerCrashedError", "ActorDiedError", "LocalRayletDiedError"})


def _still_alive(ray: Any, node_id: str) -> bool:
    try:
        return any(n.get("NodeID") == node_id and n.get("Alive") for n in ray.nodes())
    except Exception:  # noqa: BLE001 - Ray itself in trouble: say what is known, not alive
        return False


def _one_line(exc: BaseException) -> str:
    """'Type: message' on one line; for an exception the task raised, the task's own exception (Ray's
    wrapper adds the worker's traceback, pid and address)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    from vllm_bug.schema.redact import cut_text

    text = " ".join(str(exc).split()) or type(exc).__name__
    return cut_text(f"{type(exc).__name__}: {text}", 500, keep="head")  # redacted first: a cut may split a secret
