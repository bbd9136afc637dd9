"""The installed-package list: normalised names, schema caps, and the packages that matter most.

The whole list goes into the bundle (it compresses to a few KiB); KEY_PACKAGES only decides what
the summary and the report show first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_PACKAGES = 5000
MAX_VERSION_CHARS = 256

KEY_PACKAGES = (
    "vllm",
    "torch",
    "triton",
    "flashinfer-python",
    "flash-attn",
    "vllm-flash-attn",
    "xformers",
    "transformers",
    "tokenizers",
    "huggingface-hub",
    "ray",
    "xgrammar",
    "compressed-tensors",
    "numpy",
    "pynvml",
    "nvidia-ml-py",
)
KEY_PREFIXES = ("nvidia-", "cupy")


def normalise_name(name: str) -> str:
    """PEP 503 form: lower case, runs of -_. become one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_key_package(name: str) -> bool:
    name = normalise_name(name)
    return name in KEY_PACKAGES or name.startswith(KEY_PREFIXES)


def key_versions(packages: dict[str, str]) -> dict[str, str]:
    """The packages that matter, in KEY_PACKAGES order, then nvidia-*/cupy* wheels by name."""
    normalised = {normalise_name(k): v for k, v in packages.items()}
    out = {name: normalised[name] for name in KEY_PACKAGES if name in normalised}
    for name in sorted(normalised):
        if name.startswith(KEY_PREFIXES) and name not in out:
            out[name] = normalised[name]
    return out


def clean_packages(packages: Mapping[str, object]) -> dict[str, str]:
    """Normalised, sorted, capped to what the schema accepts (key packages always kept)."""
    cleaned: dict[str, str] = {}
    for name, version in packages.items():
        if not isinstance(name, str) or not name:
            continue
        cleaned[normalise_name(name)[:200]] = str(version)[:MAX_VERSION_CHARS]
    names = sorted(cleaned)
    if len(names) > MAX_PACKAGES:
        keep = [n for n in names if is_key_package(n)]
        rest = [n for n in names if not is_key_package(n)]
        names = sorted(keep + rest[: MAX_PACKAGES - len(keep)])
    return {name: cleaned[name] for name in names}
