"""The GPUs: nvidia-smi's tables, GPU names and counts in prose, memory totals and compute capability."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts, Gpu
from vllm_bug.analyzer.facts_text.common import set_unknown
from vllm_bug.analyzer.gpus import lookup_gpu
from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.nvidia_smi import parse_header, parse_table
from vllm_bug.formats.units import GIB, MIB, UNIT_BYTES, to_bytes

MAX_GPUS_FROM_COUNT = 64


def apply_nvidia_smi(facts: Facts, text: str) -> None:
    """Driver and CUDA versions from nvidia-smi's banner; GPUs, their memory and processes from its tables."""
    header = parse_header(text)
    if header is not None:
        set_unknown(facts, "driver_version", header.driver_version)
        set_unknown(facts, "driver_cuda", header.cuda_version)
    table = parse_table(text)
    if table is None:
        return
    smi_gpus = [
        Gpu(
            name=row.name,
            index=row.index,
            memory_used_bytes=row.memory_used_mib * MIB,
            memory_total_bytes=row.memory_total_mib * MIB,
        )
        for row in table.gpus
    ]
    if smi_gpus:
        if not facts.gpus:
            facts.gpus = smi_gpus
        else:
            by_index = {g.index: g for g in smi_gpus}
            for gpu in facts.gpus:
                smi = by_index.get(gpu.index)
                if smi:
                    gpu.memory_total_bytes = gpu.memory_total_bytes or smi.memory_total_bytes
                    gpu.memory_used_bytes = gpu.memory_used_bytes or smi.memory_used_bytes
    gpus_by_index = {g.index: g for g in facts.gpus}
    for process in table.processes:
        owner = gpus_by_index.get(process.gpu_index)
        if owner is not None:
            used = process.used_memory_mib
            owner.processes.append(
                {
                    "pid": process.pid,
                    "name": process.name,
                    "type": process.type,
                    "used_memory_bytes": used * MIB if used is not None else None,
                }
            )


# -- GPU names in prose -------------------------------------------------------------------------
_GPU_WORDS = (
    r"(?:NVIDIA[ \t]+)?(?:GeForce[ \t]+|Tesla[ \t]+|Quadro[ \t]+)?"
    r"(?:(?:RTX|GTX)[ \t]*(?:PRO[ \t]*)?[A]?\d{3,4}(?:[ \t]*(?:Ti|SUPER|Super|Ada|D|Laptop(?: GPU)?|Blackwell))*"
    r"|TITAN[ \t]+(?:RTX|V|Xp?)"
    r"|(?:GB|GH)\d{2,3}|[ABHL]\d{2,3}[A-Z]?(?:[- ](?:SXM\d?|PCIe|PCIE|NVL|\d{2,3}GB?))*|[HBL]\d{1,2}0?S?"
    r"|[TPVK]\d{1,3}S?(?:-(?:SXM\d|PCIE|PCIe)-?\d{0,3}GB?)*)"
)
_GPU_MENTION = lazy_compile(r"(?<![\w./-])(" + _GPU_WORDS + r")(?![\w/])")
# '4090', '4060Ti Super * 2', "4090's": a consumer card named by its number alone
_RTX_NUMBER = r"(?:20[6-8]|30[5-9]|40[6-9]|50[6-9])0(?:[ \t]?Ti)?(?:[ \t]?Super)?"
_BARE_RTX = lazy_compile(
    r"(?:(?<=NVIDIA )|(?<=GeForce ))(" + _RTX_NUMBER + r")\b"
    r"|(?<![\w./:$#-])(" + _RTX_NUMBER + r")(?='s|[ \t]*(?:GPUs?|gpus?|显卡|[x×*][ \t]*\d))",
    re.IGNORECASE,
)
_GPU_COUNT = lazy_compile(
    r"(?<![\w.])(?:(\d{1,2})[ \t]*[x×*][ \t]*(" + _GPU_WORDS + r")"
    r"|(" + _GPU_WORDS + r")[ \t]*(?:GPUs?[ \t]*)?[x×*][ \t]*(\d{1,2}))(?![\w.])"
)
_COUNT_AFTER = lazy_compile(r"[ \t]*[x×*][ \t]*(\d{1,2})")
_SHORT_NAME = lazy_compile(r"[ABHLTPVK]\d{1,2}")
_GPU_CONTEXT_BEFORE = lazy_compile(r"(?:NVIDIA|Tesla|GPU|on|with|x|\d)\s*$", re.IGNORECASE)


def gpu_window(lines: list[str]) -> str:
    """Where a long pasted report names its GPU: the head, the tail, and lines that talk about GPUs."""
    middle = [line for line in lines[300:-300] if "GPU" in line or "gpu" in line or "NVIDIA" in line or "显卡" in line]
    return "\n".join(lines[:300] + middle + lines[-300:])


def gpus_from_prose(facts: Facts, text: str) -> None:
    """'8xV100', 'A100 * 2', 'on an NVIDIA L4', 'my 4090': GPUs a report names, when nothing better said so."""
    if facts.gpus:
        return
    count_match = _GPU_COUNT.search(text)
    if count_match:
        count = int(count_match.group(1) or count_match.group(4))
        name = (count_match.group(2) or count_match.group(3)).strip()
        if lookup_gpu(name) and 1 <= count <= MAX_GPUS_FROM_COUNT:
            facts.gpus = [Gpu(name=name, index=i) for i in range(count)]
            return
    for m in _GPU_MENTION.finditer(text):
        name = m.group(1).strip()
        if lookup_gpu(name) is not None and not _is_false_gpu(name, text, m.start()):
            facts.gpus = [Gpu(name=name, index=0)]
            return
    m = _BARE_RTX.search(text)
    if m:
        name = "RTX " + (m.group(1) or m.group(2)).strip()
        count = _COUNT_AFTER.match(text[m.end() : m.end() + 12])
        n = int(count.group(1)) if count and 1 <= int(count.group(1)) <= MAX_GPUS_FROM_COUNT else 1
        facts.gpus = [Gpu(name=name, index=i) for i in range(n)]


def _is_false_gpu(name: str, text: str, start: int) -> bool:
    """Short names like 'A2', 'L4' or 'T4' also occur in model names and prose."""
    if _SHORT_NAME.fullmatch(name):
        return not _GPU_CONTEXT_BEFORE.search(text[max(0, start - 12) : start])
    return False


# -- memory and compute capability ---------------------------------------------------------------
_OOM_CAPACITY = lazy_compile(r"GPU (\d{1,3}) has a total capac\w{0,4} of (\d+(?:\.\d+)?) ?(GiB|MiB)")
_TOTAL_GPU_MEMORY = lazy_compile(r"total_gpu_memory\W{1,3}(\d+(?:\.\d+)?) ?(GiB|GB)")


def memory_totals(facts: Facts, text: str) -> None:
    """Each GPU's total memory from torch's OOM message ('GPU 0 has a total capacity of 79.19 GiB')."""
    totals: dict[int, int] = {}
    if "total capac" in text:
        for m in _OOM_CAPACITY.finditer(text):
            total = to_bytes(m.group(2), UNIT_BYTES[m.group(3).lower()])
            if total is not None:
                totals.setdefault(int(m.group(1)), total)
    if not totals and "total_gpu_memory" in text:
        m = _TOTAL_GPU_MEMORY.search(text)
        if m and (total := to_bytes(m.group(1), GIB)) is not None:
            totals[0] = total
    if not totals:
        return
    if not facts.gpus:
        facts.gpus = [Gpu(index=i) for i in sorted(totals)] if len(totals) > 1 else [Gpu(index=next(iter(totals)))]
    for gpu in facts.gpus:
        total = totals.get(gpu.index if gpu.index is not None else 0)
        if total is None and len(totals) == 1:
            total = next(iter(totals.values()))
        if total and gpu.memory_total_bytes is None:
            gpu.memory_total_bytes = total


_CC_STATED = lazy_compile(
    r"(?:(?:has|with|current|device|gpu'?s?)[ \t]+(?:cuda[ \t]+)?compute[ \t]+capability(?:[ \t]+of|[ \t]+is|:)?"
    r"|^[ \t]*compute[ \t]+capability[ \t]*[:=])[ \t]*(\d{1,2})\.(\d)"
    r"|Current capability:[ \t]*(\d{1,2})(\d)\b|with CUDA capability sm_(\d{1,2})(\d)\b|\(Compute (\d{1,2})\.(\d)\)"
    r"|--gpu-name[= ]sm_(\d{1,2})(\d)a?\b|Value 'sm_(\d{1,2})(\d)a?' is not defined for option 'gpu-name'",
    re.IGNORECASE | re.MULTILINE,
)
_TORCH_ARCHES = lazy_compile(r"supports CUDA capabilities((?:[ \t]+sm_\d{2,3}a?)+)")
_ARCH_LIST_REPR = lazy_compile(r"\[\s*'sm_\d{2,3}a?'(?:\s*,\s*'(?:sm|compute)_\d{2,3}a?')*\s*\]")
_ARCH = lazy_compile(r"(?:sm|compute)_\d{2,3}a?")


def compute_capability(facts: Facts, text: str) -> None:
    """A compute capability an error or warning states, and the architectures torch says it was built for."""
    if "apabilit" in text or "Compute " in text or "gpu-name" in text:
        m = _CC_STATED.search(text)
        if m:
            digits = [g for g in m.groups() if g is not None]
            cc = (int(digits[0]), int(digits[1]))
            if not facts.gpus:
                facts.gpus = [Gpu(index=0)]
            for gpu in facts.gpus:
                if gpu.compute_capability is None:
                    gpu.compute_capability = cc
        if facts.torch_arch_list is None:
            m = _TORCH_ARCHES.search(text)
            if m:
                facts.torch_arch_list = m.group(1).split()
    if facts.torch_arch_list is None and "'sm_" in text:
        m = _ARCH_LIST_REPR.search(text)
        if m:
            facts.torch_arch_list = _ARCH.findall(m.group(0))


def fill_gpu_specs(facts: Facts) -> None:
    """Compute capability and memory of GPUs known by name, where nothing stated them."""
    for gpu in facts.gpus:
        spec = lookup_gpu(gpu.name)
        if spec is None:
            continue
        if gpu.compute_capability is None:
            gpu.compute_capability = spec.compute_capability
        if gpu.memory_total_bytes is None and spec.memory_gib:
            gpu.memory_total_bytes = int(spec.memory_gib * GIB)
