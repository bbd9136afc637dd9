"""A small catalogue of NVIDIA GPUs: what a model name tells about compute capability and memory.

Pasted reports often name the GPU ("NVIDIA GeForce RTX 4090", "Tesla V100-SXM2-32GB", "A100-80GB")
without its compute capability; rules need the capability, memory arithmetic needs the memory.
Patterns are tried in order, so more specific names come first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from vllm_bug.analyzer.lazyre import lazy_compile
from vllm_bug.analyzer.prefilter import fold, may_match


@dataclass(frozen=True)
class GpuSpec:
    family: str
    compute_capability: tuple[int, int]
    memory_gib: float | None  # None when the name alone does not pin it down


_CATALOGUE: tuple[tuple[str, GpuSpec], ...] = (
    # Blackwell
    (r"\bGB10\b|DGX Spark", GpuSpec("GB10", (12, 1), 128)),
    (r"RTX\s*PRO\s*6000", GpuSpec("RTX PRO 6000 Blackwell", (12, 0), 96)),
    (r"RTX\s*50\d0\s*D?\b.*|RTX\s*5090", GpuSpec("GeForce RTX 50xx", (12, 0), None)),
    (r"\bB300\b|\bGB300\b", GpuSpec("B300", (10, 3), 288)),
    (r"\bB200\b|\bGB200\b", GpuSpec("B200", (10, 0), 180)),
    (r"\bB100\b", GpuSpec("B100", (10, 0), 192)),
    # Hopper
    (r"\bH200\b|\bGH200\b", GpuSpec("H200", (9, 0), 141)),
    (r"\bH100\b.*\b94\s*GB\b|\bH100\s*NVL\b", GpuSpec("H100 NVL", (9, 0), 94)),
    (r"\bH100\b|\bH800\b", GpuSpec("H100", (9, 0), 80)),
    (r"\bH20\b", GpuSpec("H20", (9, 0), 96)),
    # Ada
    (r"\bL40S?\b", GpuSpec("L40", (8, 9), 48)),
    (r"\bL20\b", GpuSpec("L20", (8, 9), 48)),
    (r"\bL4\b", GpuSpec("L4", (8, 9), 24)),
    (r"RTX\s*6000\s*Ada|RTX\s*6000\b.*Ada", GpuSpec("RTX 6000 Ada", (8, 9), 48)),
    (r"RTX\s*5000\s*Ada", GpuSpec("RTX 5000 Ada", (8, 9), 32)),
    (r"RTX\s*4090", GpuSpec("GeForce RTX 4090", (8, 9), 24)),
    (r"RTX\s*4080", GpuSpec("GeForce RTX 4080", (8, 9), 16)),
    (r"RTX\s*40[67]0", GpuSpec("GeForce RTX 40xx", (8, 9), None)),
    # Ampere
    (r"\bA100\b.*\b80\s*GB\b|\bA100\s*80G|\bA800\b.*80", GpuSpec("A100 80GB", (8, 0), 80)),
    (r"\bA100\b|\bA800\b", GpuSpec("A100", (8, 0), 40)),
    (r"\bA30\b", GpuSpec("A30", (8, 0), 24)),
    (r"\bA40\b", GpuSpec("A40", (8, 6), 48)),
    (r"\bA10G?\b", GpuSpec("A10", (8, 6), 24)),
    (r"\bA16\b", GpuSpec("A16", (8, 6), 16)),
    (r"\bA2\b", GpuSpec("A2", (8, 6), 16)),
    (r"RTX\s*A6000", GpuSpec("RTX A6000", (8, 6), 48)),
    (r"RTX\s*A5000", GpuSpec("RTX A5000", (8, 6), 24)),
    (r"RTX\s*A4000", GpuSpec("RTX A4000", (8, 6), 16)),
    (r"RTX\s*3090", GpuSpec("GeForce RTX 3090", (8, 6), 24)),
    (r"RTX\s*3080", GpuSpec("GeForce RTX 3080", (8, 6), None)),
    (r"RTX\s*30[5-7]0", GpuSpec("GeForce RTX 30xx", (8, 6), None)),
    # Turing
    (r"\bT4\b", GpuSpec("T4", (7, 5), 16)),
    (r"RTX\s*20[6-8]0|TITAN\s*RTX|Quadro\s*RTX", GpuSpec("Turing RTX", (7, 5), None)),
    (r"GTX\s*16[56]0", GpuSpec("GeForce GTX 16xx", (7, 5), None)),
    # Volta
    (r"\bV100\b.*32\s*GB|V100S", GpuSpec("V100 32GB", (7, 0), 32)),
    (r"\bV100\b", GpuSpec("V100", (7, 0), 16)),
    (r"TITAN\s*V\b", GpuSpec("TITAN V", (7, 0), 12)),
    # Pascal
    (r"\bP100\b", GpuSpec("P100", (6, 0), 16)),
    (r"\bP40\b", GpuSpec("P40", (6, 1), 24)),
    (r"\bP4\b", GpuSpec("P4", (6, 1), 8)),
    (r"GTX\s*10[5-8]0", GpuSpec("GeForce GTX 10xx", (6, 1), None)),
    (r"TITAN\s*Xp?", GpuSpec("TITAN X (Pascal)", (6, 1), 12)),
    # Maxwell / Kepler
    (r"\bM40\b|\bM60\b|GTX\s*9[5-8]0", GpuSpec("Maxwell", (5, 2), None)),
    (r"\bK80\b", GpuSpec("K80", (3, 7), 12)),
)

_COMPILED = tuple((p, lazy_compile(p, re.IGNORECASE), spec) for p, spec in _CATALOGUE)

# Explicit sizes in the name beat the catalogue's default ("A100-SXM4-40GB", "V100-PCIE-16GB").
_SIZE_IN_NAME = lazy_compile(r"(?<![A-Za-z0-9])(\d{2,3})\s*Gi?B\b", re.IGNORECASE)


@lru_cache(maxsize=512)
def lookup_gpu(name: str | None) -> GpuSpec | None:
    """Best guess from a GPU's marketing name; None when the name is unknown."""
    if not name:
        return None
    folded = fold(name)
    for pattern, rx, spec in _COMPILED:
        if may_match(pattern, folded) and rx.search(name):
            size = _SIZE_IN_NAME.search(name)
            if size and 4 <= int(size.group(1)) <= 512:
                return GpuSpec(spec.family, spec.compute_capability, float(size.group(1)))
            return spec
    return None


_CAPABILITY_PAIR = lazy_compile(r"^\(?\s*(\d{1,3})\s*[.,]\s*(\d{1,3})\s*\)?$")
_CAPABILITY_DIGITS = lazy_compile(r"^(?:sm_|compute_)?(\d{2,3})[a-z]?$", re.IGNORECASE)


def parse_compute_capability(text: str | None) -> tuple[int, int] | None:
    """'9.0' / 'sm_90' / '(9, 0)' / '90' -> (9, 0)."""
    if not text:
        return None
    t = str(text).strip()
    m = _CAPABILITY_PAIR.match(t)
    if m:
        return int(m.group(1)), int(m.group(2))
    m = _CAPABILITY_DIGITS.match(t)
    if m:
        digits = m.group(1)
        return int(digits[:-1]), int(digits[-1])
    return None


def arch_name(cc: tuple[int, int]) -> str:
    """(9, 0) -> 'sm_90'."""
    return f"sm_{cc[0]}{cc[1]}"
