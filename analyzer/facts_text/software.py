"""Versions of the software stack: collect_env's fields, package listings, and versions named in logs and prose."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts, Gpu, normalise_package_name
from vllm_bug.analyzer.facts_text.common import fill_from_match, set_unknown
from vllm_bug.analyzer.facts_text.environment import mask_secret
from vllm_bug.analyzer.prefilter import fold
from vllm_bug.formats.collect_env import CollectEnv
from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.pip_list import parse_packages
from vllm_bug.formats.vllm_log import parse_version_line


def apply_collect_env(facts: Facts, env: CollectEnv | None) -> None:
    if env is None:
        return
    set_unknown(facts, "torch_version", env.get("torch_version"))
    set_unknown(facts, "torch_cuda", env.get("torch_cuda"))
    if facts.torch_cuda_available is None:
        facts.torch_cuda_available = env.torch_cuda_available
    set_unknown(facts, "nvcc_version", env.nvcc_version)
    set_unknown(facts, "driver_version", env.driver_version)
    set_unknown(facts, "vllm_version", env.vllm_version)
    set_unknown(facts, "os", env.get("os"))
    set_unknown(facts, "glibc", env.glibc)
    set_unknown(facts, "python_version", env.python_version)
    set_unknown(facts, "kernel", env.kernel)
    if not facts.gpus and env.gpus:
        facts.gpus = [Gpu(name=name, index=index) for index, name in env.gpus]
    for name, version in env.packages.items():
        facts.packages.setdefault(normalise_package_name(name), version)
    for key, value in env.env.items():
        facts.env.setdefault(key, mask_secret(key, value))


def packages_from_text(facts: Facts, text: str) -> None:
    for package in parse_packages(text):
        facts.packages.setdefault(normalise_package_name(package.name), package.version)


# 'torch==2.1.0', 'torch 2.7.0+cu128', 'PyTorch: v2.4', 'torch2.1.0+cuda118'
_TORCH_PROSE = lazy_compile(
    r"(?<![\w.])(?:py)?torch(?:==|-(?=\d)|[ \t]*(?:[:=][ \t]*)?`?v?)(\d+\.\d+(?:\.\d+)?(?:\+[a-z]{2,5}\d*)?)",
    re.IGNORECASE,
)
_TORCH_CU_SUFFIX = lazy_compile(r"\+cu(?:da)?(\d{2,3})$")
_VLLM_IMAGE = lazy_compile(r"vllm/vllm-openai:v?(\d+\.\d+(?:\.\d+)?(?:\.post\d+)?)")
_VLLM_PROSE = lazy_compile(
    r"(?<![\w])vllm(?:==|[ \t]*(?:[:=][ \t]*)?`?v?|-)(\d+\.\d+(?:\.\d+)?(?:[.+]?(?:post|rc|dev)\d+)*(?:\+[\w.]+)?)",
    re.IGNORECASE,
)
_NVCC = lazy_compile(r"Cuda compilation tools, release (\d+\.\d+), V(\d+\.\d+\.\d+)")
_PY_PATH = lazy_compile(r"/python(3\.\d{1,2})/(?:site|dist)-packages/")


# A phrase each line that formats.vllm_log.parse_version_line reads holds, folded.
_VERSION_LINE_WORDS = ("vllm api server", "llm engine (v", "vllm version")


def _group_where_word_starts(rx: re.Pattern[str], text: str, folded: str, word: str) -> str | None:
    """Group 1 of rx.search(text), for a pattern whose every match starts with `word` (folded): the
    pattern is tried only where the word stands, not at every position of the text."""
    at = folded.find(word)
    while at >= 0:
        m = rx.match(text, at)
        if m is not None:
            return m.group(1)
        at = folded.find(word, at + 1)
    return None


def versions_from_text(facts: Facts, text: str) -> None:
    # Each search below is case-insensitive and starts with a lookbehind or a group, so the regex engine
    # tries it at every position: a word that any match holds is looked for first.
    folded = fold(text)
    set_unknown(facts, "torch_version", facts.package("torch"))
    if "torch" in folded:
        fill_from_match(facts, "torch_version", _TORCH_PROSE, text)
    if facts.torch_cuda is None and facts.torch_version:
        m = _TORCH_CU_SUFFIX.search(facts.torch_version)
        if m:
            digits = m.group(1)
            facts.torch_cuda = f"{digits[:-1]}.{digits[-1]}"
    set_unknown(facts, "vllm_version", facts.package("vllm"))
    if facts.vllm_version is None and any(word in folded for word in _VERSION_LINE_WORDS):
        facts.vllm_version = parse_version_line(text)
    fill_from_match(facts, "vllm_version", _VLLM_IMAGE, text)
    if facts.vllm_version is None:  # "vllm" starts every match: tried only where it stands (vllm-bug's notes hold it)
        facts.vllm_version = _group_where_word_starts(_VLLM_PROSE, text, folded, "vllm")
    if "compilation tools" in text:
        fill_from_match(facts, "nvcc_version", _NVCC, text, group=2)
    fill_from_match(facts, "python_version", _PY_PATH, text)


# 'driver 535.104.05', 'Driver Version: 550.54', '驱动 550.90'
_DRIVER_PROSE = lazy_compile(
    r"(?:driver(?:[ \t]+version)?|驱动)[ \t]*(?:[:=：][ \t]*)?`?(\d{3}\.\d{1,3}(?:\.\d{1,3})?)\b", re.IGNORECASE
)
_DEVICE_QUERY = lazy_compile(r"CUDA Driver Version / Runtime Version\s+(\d+\.\d+)\s*/\s*(\d+\.\d+)")


def driver_from_text(facts: Facts, text: str) -> None:
    if "driver" in fold(text) or "驱动" in text:  # a word every match holds (see versions_from_text)
        fill_from_match(facts, "driver_version", _DRIVER_PROSE, text)
    if "Runtime Version" in text:
        fill_from_match(facts, "driver_cuda", _DEVICE_QUERY, text)
