"""PyTorch: how it wraps a CUDA error ("CUDA error: <text>", raised as torch.AcceleratorError), read from
c10/cuda/CUDAException.cpp, and the messages torch.cuda raises when CUDA or its driver cannot be used,
read from a torch wheel's torch/cuda/__init__.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .messages import Hole, Part, PyMessage, Template, python_messages
from .sources import Source

REPOSITORY = "pytorch/pytorch"
CHECK = "c10/cuda/CUDAException.cpp"
CUDA_MODULE = "torch/cuda/__init__.py"
PYTHON_NAME = {"AcceleratorError": "torch.AcceleratorError", "Error": "RuntimeError"}  # c10 class -> Python


@dataclass(frozen=True)
class Wrapper:
    exception: str
    template: Template  # the wrapper with a cuda_error hole
    excerpt: str
    path: str


def cuda_check_wrapper(source: Source) -> Wrapper | None:
    text = source.read(CHECK) or ""
    prefix = re.search(r'check_message\.append\(\s*"(CUDA error: )"\s*\)', text)
    if not prefix:
        return None
    thrown = re.search(r"throw\s+c10::(\w+)\s*\(", text)
    exception = PYTHON_NAME.get(thrown.group(1), thrown.group(1)) if thrown else "RuntimeError"
    parts: list[Part] = [prefix.group(1), Hole("cuda_error")]
    return Wrapper(exception, Template.of(parts), prefix.group(0), CHECK)


def cuda_module_messages(source: Source) -> Iterable[PyMessage]:
    text = source.read(CUDA_MODULE)
    return python_messages(text) if text else []


def category_of(text: str) -> str:
    low = text.lower()
    if re.search(r"amdsmi|\bhip|rocm|rocr", low):
        return "generic"  # AMD's stack: none of the analyzer's CUDA categories
    if "driver" in low:
        return "driver_insufficient"
    if re.search(
        r"not compiled with cuda|compiled without cuda|no cuda gpus|cuda_visible_devices"
        r"|found no nvidia|invalid device",
        low,
    ):
        return "cuda_not_available"
    if "capabilit" in low:
        return "no_kernel_image"
    return "generic"
