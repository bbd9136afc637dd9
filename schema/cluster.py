"""The nodes section of a cluster bundle (schema_version 2): its entries, node identity, merging.

A cluster bundle keeps version 1's top-level payload (the primary node: where collect ran, or the first
bundle merged) and adds "nodes": {"source", "expected", "ray_version", "entries": [...]}, one entry per
node with its label, status (ok / dead / timeout / error), error and its own payload when it has one.

Two payloads come from the same node when their host.node_id (a hash: machine id, boot id, host name)
is equal; bundles written before node ids existed are compared by the hashed UUIDs of their GPUs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from vllm_bug.errors import UsageProblem

NODE_STATUSES = ("ok", "dead", "timeout", "error")
MAX_ERROR_CHARS = 2000
MAX_NODES = 4096


def node_entry(
    label: str,
    *,
    payload: dict[str, Any] | None = None,
    status: str = "ok",
    error: str | None = None,
    duration_s: float | None = None,
    primary: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """One node's entry; `extra` holds what the source knows of it (ray_node_id, head, ray_gpus)."""
    if status not in NODE_STATUSES:
        raise ValueError(f"unknown node status {status!r}")
    entry: dict[str, Any] = {
        "label": label,
        "node_id": identity_of(payload).node_id if payload else None,
        "primary": primary,
        "status": status,
        "error": error[:MAX_ERROR_CHARS] if error else None,
        "duration_s": round(duration_s, 3) if duration_s is not None else None,
    }
    entry.update(extra)
    if payload is not None:
        entry["payload"] = payload
    return entry


def nodes_section(
    source: str, entries: list[dict[str, Any]], expected: int | None = None, ray_version: str | None = None
) -> dict[str, Any]:
    return {"source": source, "expected": expected, "ray_version": ray_version, "entries": entries}


def entries_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The node entries of a cluster bundle; a single-node bundle has none."""
    nodes = doc.get("nodes")
    entries = nodes.get("entries") if isinstance(nodes, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def scrub_every_node(doc: dict[str, Any], redactor: Any) -> dict[str, Any]:
    """A copy of DOC with its payload and every node's payload passed through REDACTOR (schema.redact)."""
    out = dict(doc, payload=redactor.scrub(doc.get("payload")))
    entries = entries_of(doc)
    if entries:
        scrubbed = [dict(e, payload=redactor.scrub(e["payload"])) if "payload" in e else dict(e) for e in entries]
        out["nodes"] = dict(doc["nodes"], entries=scrubbed)
    return out


# ------------------------------------------------------------------ identity


class NodeIdentity(NamedTuple):
    node_id: str | None
    gpus: frozenset[str]  # hashed GPU UUIDs

    def same_as(self, other: NodeIdentity) -> bool:
        if self.node_id and other.node_id:
            return self.node_id == other.node_id
        return bool(self.gpus) and self.gpus == other.gpus  # older bundles: the same GPUs are the same machine

    def describe(self) -> str:
        if self.node_id:
            return f"node id {self.node_id}"
        return f"the same {len(self.gpus)} GPU(s)"


def identity_of(payload: Any) -> NodeIdentity:
    payload = payload if isinstance(payload, dict) else {}
    host = payload.get("host") if isinstance(payload.get("host"), dict) else {}
    node_id = host.get("node_id") if isinstance(host.get("node_id"), str) else None
    gpus = payload.get("gpus") if isinstance(payload.get("gpus"), list) else []
    hashes = frozenset(g["uuid_hash"] for g in gpus if isinstance(g, dict) and isinstance(g.get("uuid_hash"), str))
    return NodeIdentity(node_id, hashes)


# ------------------------------------------------------------------ merging


def merge_documents(named: list[tuple[str, dict[str, Any]]], redactor_factory: Any = None) -> dict[str, Any]:
    """One cluster bundle from bundles collected node by node (each validated already), in the order given.

    The first bundle's node is the primary. A cluster bundle among the inputs brings all its nodes.
    Raises UsageProblem (exit 2) when two inputs describe the same node, or when fewer than two are given.
    REDACTOR_FACTORY makes a fresh schema.redact.Redactor for each payload: every node is redacted again
    (a bundle may come from an older or modified collector), and what was found is added to its summary.
    """
    from vllm_bug.schema.bundle import make_envelope

    if len(named) < 2:
        raise UsageProblem("merge needs two or more bundles, one per node")
    collected: list[tuple[str, dict[str, Any]]] = []
    for name, doc in named:
        collected += [(name, entry) for entry in _entries_for_merge(doc)]
    _refuse_repeated_nodes(collected)
    if len(collected) > MAX_NODES:
        raise UsageProblem(f"{len(collected)} nodes are more than a bundle holds ({MAX_NODES})")
    entries = []
    for position, (_name, entry) in enumerate(collected, start=1):
        entry = dict(entry, label=f"node-{position}", primary=position == 1)
        if "payload" in entry and redactor_factory is not None:
            entry["payload"] = redact_again(entry["payload"], redactor_factory())
        entries.append(entry)
    primary = entries[0].get("payload")
    if primary is None:
        raise UsageProblem(f"the first bundle's node ({named[0][0]}) has no payload to put first; name another first")
    return make_envelope(primary, nodes=nodes_section("merge", entries))


def _entries_for_merge(doc: dict[str, Any]) -> list[dict[str, Any]]:
    entries = entries_of(doc)
    if entries:
        primary_first = sorted(entries, key=lambda e: not e.get("primary"))
        return [{k: v for k, v in e.items() if k not in ("label", "primary")} for e in primary_first]
    return [node_entry("node", payload=doc["payload"])]


def _refuse_repeated_nodes(collected: list[tuple[str, dict[str, Any]]]) -> None:
    seen: list[tuple[str, NodeIdentity]] = []
    for name, entry in collected:
        if "payload" not in entry:
            continue  # a dead node of a cluster bundle: nothing to tell it by
        identity = identity_of(entry["payload"])
        for earlier_name, earlier in seen:
            if identity.same_as(earlier):
                where = f"{earlier_name} and {name}" if earlier_name != name else f"{name} twice"
                raise UsageProblem(
                    f"{where}: collected on the same node ({identity.describe()}); merge takes one bundle per node"
                )
        seen.append((name, identity))


def redact_again(payload: dict[str, Any], redactor: Any) -> dict[str, Any]:
    """PAYLOAD passed through REDACTOR, with what it found added to the payload's own redaction summary."""
    earlier = payload.get("redactions")
    summary: list[Any] = earlier if isinstance(earlier, list) else []
    out = redactor.scrub({k: v for k, v in payload.items() if k != "redactions"})
    counts: dict[str, int] = {}
    for item in [*summary, *redactor.summary()]:
        if isinstance(item, dict) and isinstance(item.get("kind"), str) and isinstance(item.get("count"), int):
            counts[item["kind"]] = counts.get(item["kind"], 0) + item["count"]
    out["redactions"] = [{"kind": kind, "count": count} for kind, count in counts.items()]
    return out
