"""A GPU's memory from its model name, in the bytes nvidia-smi would report."""

from __future__ import annotations

import re

from vllm_bug.analyzer.memory.units import GIB
from vllm_bug.formats.lazyre import lazy_compile

_GPU_MIB_REPORTED = {  # nvidia-smi "memory.total" of common cards, in MiB; the catalogue's GB are nominal
    "A100 80GB": 81920,
    "A100": 40960,
    "H100": 81559,
    "H100 NVL": 95830,
    "H200": 143771,
    "L4": 23034,
    "L40": 46068,
    "A10": 23028,
    "T4": 15360,
    "GeForce RTX 4090": 24564,
    "GeForce RTX 3090": 24576,
    "V100": 16384,
    "V100 32GB": 32768,
    "RTX A6000": 49140,
}
_NOMINAL_SIZE = lazy_compile(r"(?<![A-Za-z0-9])(\d{2,3})\s*Gi?B\b", re.IGNORECASE)


def gpu_memory_bytes_for(name: str) -> int | None:
    """Memory of a GPU model by name: what nvidia-smi reports for common cards, else the nominal GB as GiB."""
    from vllm_bug.analyzer.gpus import lookup_gpu

    spec = lookup_gpu(name)
    if spec is None or spec.memory_gib is None:
        return None
    mib = _GPU_MIB_REPORTED.get(spec.family)
    nominal_from_name = _NOMINAL_SIZE.search(name)
    if mib is not None and (nominal_from_name is None or abs(mib / 1024 - spec.memory_gib) < 2):
        return mib * (1 << 20)
    return int(spec.memory_gib * GIB)
