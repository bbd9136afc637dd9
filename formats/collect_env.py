"""`collect_env` output: vLLM's sectioned format and PyTorch's older flat format.

Both print `Label: value` lines (vLLM pads the label: `PyTorch version              : 2.7.0`);
multi-line values (the GPU list, topology, cuDNN files) continue on the next lines. Package lines
are `[pip3] name==version` or `[conda] name  version  build  channel`. Only labels this module knows
are read, so the parser is safe to run over any pasted text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.pip_list import parse_entry

MAX_LINE_CHARS = 2000  # a longer line is no `Label: value` line

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
_GPU_ITEM_HEAD = lazy_compile(r"^\s*GPU\s+(?P<index>\d{1,9})\s*:")
_PACKAGE_LINE_HEAD = lazy_compile(r"^\s*\[(?P<tool>pip3?|conda|uv)\]\s")
_BANNER = lazy_compile(r"^\s*={10,}\s*$")
_ENV_NAME = lazy_compile(r"[A-Za-z_][A-Za-z0-9_]{0,100}")
_VERSION = lazy_compile(r"(?<!\d)\d{1,9}\.\d{1,9}(?:\.\d{1,9})*")
_VLLM_VERSION = lazy_compile(r"v?(\d+\.\d+[\w.+-]*)")
_MAJOR_MINOR = lazy_compile(r"(?<!\d)(\d{1,9}\.\d{1,9})")
_PYTHON_VERSION = lazy_compile(r"(\d+\.\d+(?:\.\d+)?)")
_KERNEL = lazy_compile(r"Linux-(.+?)-(?:x86_64|aarch64|ppc64le|arm64)")


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
        """The raw value of a field, None when absent or printed as unknown ('N/A', 'Could not collect')."""
        value = self.values.get(key)
        if value is None or value.strip().lower() in _UNKNOWN:
            return None
        return value.strip()

    # -- the fields as typed values --------------------------------------------------------
    @property
    def torch_cuda_available(self) -> bool | None:
        return parse_bool(self.get("torch_cuda_available"))

    @property
    def nvcc_version(self) -> str | None:
        return first_version(self.get("nvcc_version"))

    @property
    def driver_version(self) -> str | None:
        return first_version(self.get("driver_version"))

    @property
    def vllm_version(self) -> str | None:
        """'0.9.1' from '0.9.1', 'v0.9.1' or '0.9.2.dev1+g123@abc (git sha: abc)'."""
        value = self.get("vllm_version")
        m = _VLLM_VERSION.match(value.split("@")[0].strip()) if value else None
        return m.group(1) if m else None

    @property
    def glibc(self) -> str | None:
        """'2.35' from 'glibc2.35'."""
        value = self.get("glibc")
        m = _MAJOR_MINOR.search(value) if value else None
        return m.group(1) if m else None

    @property
    def python_version(self) -> str | None:
        """'3.12.3' from '3.12.3 (main, ...) [GCC 13.2.0] (64-bit runtime)'."""
        value = self.get("python_version")
        m = _PYTHON_VERSION.match(value) if value else None
        return m.group(1) if m else None

    @property
    def kernel(self) -> str | None:
        """'5.15.0-119-generic' from 'Linux-5.15.0-119-generic-x86_64-with-glibc2.35'."""
        value = self.get("python_platform")
        m = _KERNEL.match(value) if value else None
        return m.group(1) if m else None


def parse_collect_env(lines: Sequence[str]) -> CollectEnv | None:
    """The fields collect_env printed in LINES, or None when none are there; unknown lines are ignored."""
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
            item = parse_gpu_item(line)
            if item:
                out.gpus.append(item)
                continue
            pending_list = None
        if line.startswith("[") and (m := _PACKAGE_LINE_HEAD.match(line)):
            package = parse_entry(line[m.end() :].strip(), conda=m.group("tool") == "conda")
            if package is not None:
                out.packages.setdefault(package.name, package.version)
            continue
        if section.startswith("environment variables") and "=" in line:
            name, _, value = line.strip().partition("=")
            if _ENV_NAME.fullmatch(name):
                out.env[name] = value
            continue
        colon = line.find(":", 0, 80)
        if colon < 2 or len(line) > MAX_LINE_CHARS:
            continue
        # a label line's label is all that stands before its first colon, so an unknown one is known here
        label = " ".join(line[:colon].lower().split())
        if label not in _LABELS and label != "gpu topology":
            continue
        m = _LABEL_LINE.match(line)
        if not m:
            continue
        key = _LABELS.get(label)
        if key is None:
            out.topology = m.group("value")
            continue
        if key in out.values and out.values[key].strip().lower() not in _UNKNOWN:
            continue  # the first report of a field wins (pasted outputs sometimes repeat)
        value = m.group("value").strip()
        out.values[key] = value
        if key == "gpu_models":
            inline = parse_gpu_item(value)
            if inline:
                out.gpus.append(inline)
            elif value and value.lower() not in _UNKNOWN and not value.lower().startswith("gpu"):
                out.gpus.append((0, value))  # 'GPU models and configuration: NVIDIA A100-SXM4-80GB'
            pending_list = "gpu_models"
    return out if out.found else None


def _banner_lines(lines: Sequence[str]) -> set[int]:
    return {i for i, line in enumerate(lines) if line[:10] == "==========" and _BANNER.match(line)}


def parse_gpu_item(line: str) -> tuple[int, str] | None:
    """(0, 'NVIDIA H100 80GB HBM3') from 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)', else None.

    The name stops before any '('; only a trailing '(UUID: ...)' may follow it.
    """
    m = _GPU_ITEM_HEAD.match(line)
    if not m or "\n" in line:
        return None
    rest = line[m.end() :]
    trimmed = rest.rstrip()
    if "(" in trimmed:
        opening = trimmed.find("(")
        if not (trimmed.endswith(")") and trimmed.startswith("(UUID:", opening) and ")" not in trimmed[opening:-1]):
            return None
        rest = rest[:opening]
    if not rest:
        return None
    return int(m.group("index")), rest.strip()


def parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("true", "yes", "1"):
        return True
    if v in ("false", "no", "0"):
        return False
    return None


def first_version(value: str | None) -> str | None:
    """The first dotted version in VALUE ('12.8' from 'Build cuda_12.8.r12.8/compiler...'), else None."""
    if not value:
        return None
    m = _VERSION.search(value)
    return m.group(0) if m else None
