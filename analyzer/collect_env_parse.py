"""Parse `collect_env` output: vLLM's sectioned format and PyTorch's older flat format.

Both print `Label: value` lines (vLLM pads the label: `PyTorch version              : 2.7.0`);
multi-line values (the GPU list, topology, cuDNN files) continue on the next lines. Package lines
are `[pip3] name==version` or `[conda] name  version  build  channel`. Only labels this module knows
are read, so the parser is safe to run over any pasted text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from vllm_bug.analyzer.lazyre import lazy_compile

_UNKNOWN = {"", "n/a", "na", "none", "could not collect", "no cuda", "not set", "unknown", "-"}

# label (lower case, spaces collapsed) -> field name
_LABELS = {
    "pytorch version": "torch_version",
    "cuda used to build pytorch": "torch_cuda",
    "is cuda available": "torch_cuda_available",
    "cuda runtime version": "nvcc_version",
    "gpu models and configuration": "gpu_models",
    "nvidia driver version": "driver_version",
    "vllm version": "vllm_version",
    "os": "os",
    "libc version": "glibc",
    "python version": "python_version",
    "python platform": "python_platform",
    "vllm build flags": "vllm_build_flags",
    "cuda_module_loading set to": "cuda_module_loading",
    "rocm used to build pytorch": "rocm_version",
}
_LABEL_LINE = lazy_compile(r"^\s{0,4}(?P<label>[A-Za-z][A-Za-z_ ]{1,40}?)\s*:\s?(?P<value>.*)$")
_GPU_LIST_ITEM = lazy_compile(r"^\s*GPU\s+(?P<index>\d+)\s*:\s*(?P<name>[^\n(]+?)\s*(?:\(UUID:[^)]*\))?\s*$")
_PIP3 = lazy_compile(r"^\s*\[(?P<tool>pip3?|conda|uv)\]\s+(?P<rest>.+?)\s*$")
_EQ_PACKAGE = lazy_compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,100})\s*==\s*(?P<version>[\w.+!-]{1,80})")
_CONDA_PACKAGE = lazy_compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,100})\s+(?P<version>\d[\w.+!-]{0,80})(?:\s|$)")
_BANNER = lazy_compile(r"^\s*={10,}\s*$")


@dataclass
class CollectEnv:
    values: dict[str, str] = field(default_factory=dict)  # field name -> raw value ('' when unknown)
    gpus: list[tuple[int, str]] = field(default_factory=list)  # (index, name) from the GPU list
    packages: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # from the 'Environment Variables' section
    topology: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.values or self.gpus or self.packages)

    def get(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None or value.strip().lower() in _UNKNOWN:
            return None
        return value.strip()


def parse_collect_env(lines: list[str]) -> CollectEnv:
    """Read the fields collect_env printed; unknown lines are ignored."""
    out = CollectEnv()
    section = ""
    pending_list: str | None = None  # a label whose value continues on the next lines
    banners = _banner_lines(lines)
    for idx, line in enumerate(lines):
        if banners:
            if idx in banners:
                continue
            if idx - 1 in banners and idx + 1 in banners:
                section = line.strip().lower()
                pending_list = None
                continue
        if pending_list == "gpu_models":
            m = _GPU_LIST_ITEM.match(line)
            if m:
                out.gpus.append((int(m.group("index")), m.group("name").strip()))
                continue
            pending_list = None
        if line.startswith("[") and (m := _PIP3.match(line)):
            _add_package(out.packages, m.group("rest"), conda=m.group("tool") == "conda")
            continue
        if section.startswith("environment variables") and "=" in line:
            key, _, value = line.strip().partition("=")
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,100}", key):
                out.env[key] = value
            continue
        colon = line.find(":", 0, 80)
        if colon < 2 or len(line) > 2000:
            continue
        m = _LABEL_LINE.match(line)
        if not m:
            continue
        label = " ".join(m.group("label").lower().split())
        key = _LABELS.get(label)
        if key is None:
            if label == "gpu topology":
                out.topology = m.group("value")
            continue
        if key in out.values and out.values[key].strip().lower() not in _UNKNOWN:
            continue  # the first report of a field wins (pasted outputs sometimes repeat)
        value = m.group("value").strip()
        out.values[key] = value
        if key == "gpu_models":
            inline = _GPU_LIST_ITEM.match(value)
            if inline:
                out.gpus.append((int(inline.group("index")), inline.group("name").strip()))
            elif value and value.lower() not in _UNKNOWN and not value.lower().startswith("gpu"):
                out.gpus.append((0, value))  # 'GPU models and configuration: NVIDIA A100-SXM4-80GB'
            pending_list = "gpu_models"
    return out


def _banner_lines(lines: list[str]) -> set[int]:
    return {i for i, line in enumerate(lines) if line[:10] == "==========" and _BANNER.match(line)}


def _add_package(packages: dict[str, str], rest: str, conda: bool) -> None:
    m = _EQ_PACKAGE.match(rest) or (_CONDA_PACKAGE.match(rest) if conda else None)
    if m:
        packages.setdefault(m.group("name"), m.group("version"))


def parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("true", "yes", "1"):
        return True
    if v in ("false", "no", "0"):
        return False
    return None
