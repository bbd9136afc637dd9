"""`nvidia-smi topo -m`: how each pair of GPUs is connected, in one line for a report.

The matrix is tab-separated: a header of column names (GPU0, GPU1, ..., NIC0, CPU Affinity, NUMA
Affinity, ...), then one row per device, whose cells line up with the header's. A link is `X`
(itself), `NV#` (# bonded NVLinks), or a PCIe path: PIX, PXB, PHB, NODE, SYS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vllm_bug.analyzer.markdown import clean

_GPU = re.compile(r"GPU\d{1,4}")
MAX_PAIRS_LISTED = 4


@dataclass
class Topology:
    links: dict[tuple[str, str], str] = field(default_factory=dict)  # ("GPU0", "GPU1") -> "NV18"
    numa: dict[str, str] = field(default_factory=dict)  # "GPU0" -> "0"


def parse_topology(text: str) -> Topology:
    """The GPU-to-GPU links and each GPU's NUMA node; whatever does not parse is left out."""
    topology = Topology()
    header: list[str] | None = None
    for line in clean(text).splitlines():
        cells = [cell.strip() for cell in line.split("\t")]
        if header is None:
            if len(cells) > 1 and _GPU.fullmatch(cells[1]):
                header = cells
            continue
        if not cells or not _GPU.fullmatch(cells[0]):
            if line.strip():
                break  # the legend: the matrix has ended
            continue
        for column, value in zip(header[1:], cells[1:], strict=False):  # rows may end early
            if _GPU.fullmatch(column) and column != cells[0] and value:
                pair = (cells[0], column) if _index(cells[0]) < _index(column) else (column, cells[0])
                topology.links.setdefault(pair, value)
            elif column == "NUMA Affinity" and value and value.upper() != "N/A":
                topology.numa[cells[0]] = value
    return topology


def _index(gpu: str) -> int:
    return int(gpu[3:])


def interconnect_summary(text: str) -> str | None:
    """'GPU0-GPU1 NV18; NUMA node 0' or 'NV18 for all 28 GPU pairs; NUMA nodes 0, 1', None if unparsed."""
    topology = parse_topology(text)
    if not topology.links:
        return None
    pairs = sorted(topology.links.items(), key=lambda item: (_index(item[0][0]), _index(item[0][1])))
    if len(pairs) <= MAX_PAIRS_LISTED:
        links = ", ".join(f"{a}-{b} {link}" for (a, b), link in pairs)
    else:
        counts: dict[str, int] = {}
        for _, link in pairs:
            counts[link] = counts.get(link, 0) + 1
        if len(counts) == 1:
            links = f"{pairs[0][1]} for all {len(pairs)} GPU pairs"
        else:
            links = ", ".join(f"{link} for {n} pairs" for link, n in sorted(counts.items(), key=lambda c: -c[1]))
    nodes = sorted(set(topology.numa.values()), key=lambda n: (len(n), n))
    if not nodes:
        return links
    return f"{links}; NUMA node{'s' if len(nodes) > 1 else ''} {', '.join(nodes)}"
