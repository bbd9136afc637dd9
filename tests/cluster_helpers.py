"""Per-node bundles built from the real ones in fixtures/bundles/, changed the way two real nodes differ.

The two-H200 bundles were collected on one machine; a second node is the same document with its own
node id, its own GPUs (other UUID hashes) and the changes each test asks for (another torch, an
interface the node lacks, ...), written and read back through the real bundle code.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import FIXTURES
from vllm_bug.schema import bundle as B

BUNDLES = FIXTURES / "bundles"
COLLECT = BUNDLES / "h200-2gpu-collect.zst"
NCCL_FAIL = BUNDLES / "h200-2gpu-run-nccl-fail.zst"
INTERFACES = [{"name": "eth0", "state": "up"}, {"name": "ib0", "state": "up"}, {"name": "lo", "state": "unknown"}]


def real_payload(path: Path = COLLECT) -> dict[str, Any]:
    return copy.deepcopy(B.read_bundle(path)["payload"])


def as_node(payload: dict[str, Any], name: str, interfaces: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """PAYLOAD as collected on the node called NAME: its own node id and GPU UUID hashes, these interfaces."""
    out = copy.deepcopy(payload)
    out["host"]["node_id"] = hashlib.sha256(name.encode()).hexdigest()[:16]
    out["host"]["network"] = {"interfaces": copy.deepcopy(interfaces or INTERFACES), "addresses_held": {}}
    for index, gpu in enumerate(out["gpus"]):
        gpu["uuid_hash"] = hashlib.sha256(f"{name}/{index}".encode()).hexdigest()[:16]
    return out


def changed(payload: dict[str, Any], change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    change(out)
    return out


def write(tmp_path: Path, name: str, payload: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}.zst"
    path.write_bytes(B.encode(B.make_envelope(payload)))
    return path
