"""Triton, wheel by wheel: the errors its compiler, runtime and NVIDIA backend raise (Python), the C
launcher's errors (driver.c, with the CUDA error text it wraps), and messages of the compiled library
found in libtriton.so itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .messages import Hole, Part, PyMessage, Template, c_literal, printf_template, python_messages
from .sources import ZipRelease

REPOSITORY = "triton-lang/triton"
PYTHON_FOLDERS = ("triton/compiler/", "triton/runtime/", "triton/backends/nvidia/")
PYTHON_FILES = ("triton/errors.py",)
LAUNCHER = "triton/backends/nvidia/driver.c"
LIBRARY = "triton/_C/libtriton.so"
# Messages of Triton's C++ code (python/src/*.cc, lib/): looked up in the shipped library, since the wheel
# holds no C++ source. Each is a string the C++ code throws or prints as a whole.
LIBRARY_MESSAGES = ("PassManager::run failed",)


@dataclass(frozen=True)
class TritonMessage:
    exception: str
    template: Template
    excerpt: str
    path: str
    carries: str | None = None  # the hole holding another layer's error text (cuda_error)


def python_rows(release: ZipRelease) -> Iterable[TritonMessage]:
    for path in release.files("triton/"):
        if not path.endswith(".py") or not (path.startswith(PYTHON_FOLDERS) or path in PYTHON_FILES):
            continue
        try:
            messages: list[PyMessage] = python_messages(release.read(path) or "")
        except SyntaxError:
            continue
        for message in messages:
            yield TritonMessage(
                message.exception or _class_of_str(release, path, message), message.template, message.excerpt, path
            )


def _class_of_str(release: ZipRelease, path: str, message: PyMessage) -> str:
    """The exception class whose __str__ returns the message (the nearest class above that line)."""
    lines = (release.read(path) or "").splitlines()[: message.line]
    for line in reversed(lines):
        match = re.match(r"class\s+(\w+)", line)
        if match:
            return match.group(1)
    return ""


_PY_ERR = re.compile(r"PyErr_(?:SetString|Format)\s*\(\s*PyExc_(\w+)\s*,\s*((?:\"(?:[^\"\\\n]|\\.)*\"\s*)+)")
_WRAPPER = re.compile(r"\"(Triton Error \[\w+\]: )\"")


def launcher_rows(release: ZipRelease) -> Iterable[TritonMessage]:
    text = release.read(LAUNCHER) or ""
    for match in _PY_ERR.finditer(text):
        template = printf_template(c_literal(match.group(2)))
        yield TritonMessage(match.group(1), template, " ".join(match.group().split()), LAUNCHER)
    for match in _WRAPPER.finditer(text):
        parts: list[Part] = [match.group(1), Hole("cuda_error")]
        yield TritonMessage("RuntimeError", Template.of(parts), match.group(), LAUNCHER, carries="cuda_error")


def library_rows(release: ZipRelease) -> Iterable[TritonMessage]:
    found = binary_contains(release, LIBRARY, [m.encode() for m in LIBRARY_MESSAGES])
    for message in LIBRARY_MESSAGES:
        if message.encode() in found:
            yield TritonMessage("RuntimeError", Template.of([message]), message, LIBRARY)


def binary_contains(release: ZipRelease, path: str, needles: list[bytes], chunk: int = 1 << 24) -> set[bytes]:
    """Which needles occur in a (large) member of the wheel, read in chunks."""
    import zipfile

    found: set[bytes] = set()
    overlap = max((len(n) for n in needles), default=1)
    with zipfile.ZipFile(release.path) as archive:
        if path not in archive.namelist():
            return found
        with archive.open(path) as member:
            tail = b""
            while len(found) < len(needles):
                block = member.read(chunk)
                if not block:
                    break
                window = tail + block
                found.update(n for n in needles if n in window)
                tail = window[-overlap:]
    return found


def category_of(text: str) -> str:
    low = text.lower()
    if "libcuda" in low:
        return "driver_insufficient"
    return "triton_compile"
