"""The machine around the GPUs: Xid errors in the kernel log, containers, WSL, Kubernetes, /dev/shm size."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts
from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.units import GIB, MIB, TIB, to_bytes

MAX_XID_LINES = 100
_HINT_CHARS = 4 << 20  # container hints are looked for in the first 4 MiB only

_XID = lazy_compile(r"^.{0,200}?NVRM: Xid \([^)\n]{0,80}\):[^\n]{0,500}", re.MULTILINE)
_SHM = lazy_compile(r"--shm-size[= ](\d*\.?\d+)\s*([kmgt]i?b?)?\b", re.IGNORECASE)
_DOCKER = lazy_compile(r"\bdocker (?:run|compose|exec)|vllm/vllm-openai|docker-compose|/\.dockerenv")
_WSL = lazy_compile(r"microsoft-standard-wsl|\bwsl2?\b")
_SHM_UNIT = {"": 1, "k": 1 << 10, "m": MIB, "g": GIB, "t": TIB}


def xid_lines(facts: Facts, text: str) -> None:
    """The kernel's 'NVRM: Xid (PCI:...): 79, ...' lines: GPU faults the driver reported."""
    if "Xid" not in text or facts.xid:
        return
    facts.xid = [m.group(0).strip() for m in _XID.finditer(text)][:MAX_XID_LINES]


def host_hints(facts: Facts, text: str) -> None:
    lower = text.lower() if len(text) < _HINT_CHARS else text[:_HINT_CHARS].lower()
    if ("docker" in lower or "vllm/vllm-openai" in lower) and _DOCKER.search(lower):
        facts.container.setdefault("docker", True)
    if "wsl" in lower and _WSL.search(lower):
        facts.container.setdefault("wsl", True)
    if "kubectl" in lower or "kubernetes" in lower or "kind: deployment" in lower:
        facts.container.setdefault("kubernetes", True)
    if facts.shm_total_bytes is None and "shm-size" in lower:
        m = _SHM.search(text)
        if m:
            unit = (m.group(2) or "b").lower().rstrip("b").rstrip("i")
            facts.shm_total_bytes = to_bytes(m.group(1), _SHM_UNIT.get(unit, 1))
