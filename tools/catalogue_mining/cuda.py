"""The CUDA runtime's errors: cudaError_t names and numbers from driver_types.h, and the text
cudaGetErrorString gives each, read by calling that function in the runtime library itself (no GPU is
needed for it). A runtime is a CUDA toolkit folder or an nvidia-cuda-runtime wheel.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

# The category each error belongs to in the analyzer's table; an error not listed is generic (many causes).
CATEGORY_BY_NAME = {
    "cudaErrorMemoryAllocation": "cuda_oom",
    "cudaErrorIllegalAddress": "illegal_memory_access",
    "cudaErrorMisalignedAddress": "illegal_memory_access",
    "cudaErrorInvalidAddressSpace": "illegal_memory_access",
    "cudaErrorAssert": "device_side_assert",
    "cudaErrorNoKernelImageForDevice": "no_kernel_image",
    "cudaErrorInvalidConfiguration": "invalid_config_arg",
    "cudaErrorInvalidValue": "invalid_config_arg",
    "cudaErrorInsufficientDriver": "driver_insufficient",
    "cudaErrorSystemDriverMismatch": "driver_insufficient",
    "cudaErrorCompatNotSupportedOnDevice": "driver_insufficient",
    "cudaErrorUnsupportedPtxVersion": "driver_insufficient",
    "cudaErrorCallRequiresNewerDriver": "driver_insufficient",
    "cudaErrorSystemNotReady": "driver_insufficient",
    "cudaErrorNoDevice": "cuda_not_available",
    "cudaErrorInvalidDevice": "cuda_not_available",
    "cudaErrorDevicesUnavailable": "cuda_not_available",
}
GRAPH_NAME = re.compile(r"Capture|Graph")  # stream-capture and graph errors: failures of CUDA graphs


def category_of(name: str) -> str:
    if name in CATEGORY_BY_NAME:
        return CATEGORY_BY_NAME[name]
    if GRAPH_NAME.search(name):
        return "cuda_graph"
    return "generic"


@dataclass(frozen=True)
class CudaError:
    name: str
    number: int
    excerpt: str  # the enum line of driver_types.h, trimmed
    deprecated: bool


_ENUM = re.compile(r"enum\s+(?:__device_builtin__\s+)?cudaError\s*\{(.*?)\}", re.DOTALL)
_ENTRY = re.compile(r"(/\*\*(?:(?!\*/).)*\*/)?\s*,?\s*(cuda(?:Success|Error\w+))\s*=\s*(\d+)", re.DOTALL)


def header_errors(header: str) -> list[CudaError]:
    """The cudaError enum of driver_types.h (its doc comment says when an entry is deprecated)."""
    block = _ENUM.search(header)
    if not block:
        return []
    out = []
    for match in _ENTRY.finditer(block.group(1)):
        doc, name, number = match.group(1) or "", match.group(2), int(match.group(3))
        if name == "cudaSuccess" or name.endswith("Base"):
            continue
        excerpt = f"{name} = {number}"
        out.append(CudaError(name, number, excerpt, "deprecated" in doc.lower()))
    return out


@dataclass(frozen=True)
class Runtime:
    version: str
    header: str  # driver_types.h text
    header_path: str
    library: Path | None  # libcudart.so.* on disk (extracted from a wheel when needed)
    origin: str  # what was read: a toolkit folder or a wheel's file name


def open_runtime(path: Path, scratch: Path) -> Runtime:
    """A CUDA toolkit folder (include/driver_types.h, lib64/libcudart.so*) or an nvidia-cuda-runtime wheel."""
    if path.is_dir():
        header = next(iter(sorted(path.glob("include/driver_types.h"))))
        libs = sorted(path.glob("lib64/libcudart.so.*")) + sorted(path.glob("lib/libcudart.so.*"))
        version_file = path / "version.json"
        version = json.loads(version_file.read_text())["cuda"]["version"] if version_file.is_file() else path.name
        return Runtime(
            version,
            header.read_text("utf-8", "replace"),
            "include/driver_types.h",
            libs[0] if libs else None,
            f"CUDA toolkit {version}",
        )
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        header_name = next(n for n in names if n.endswith("/include/driver_types.h"))
        lib_name = next((n for n in names if re.search(r"/libcudart\.so\.\d+(\.\d+)*$", n)), None)
        library = None
        if lib_name:
            library = scratch / path.stem / Path(lib_name).name
            library.parent.mkdir(parents=True, exist_ok=True)
            library.write_bytes(wheel.read(lib_name))
        version = path.name.split("-")[1]
        return Runtime(version, wheel.read(header_name).decode("utf-8", "replace"), header_name, library, path.name)


_PROBE = """
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])
lib.cudaGetErrorString.restype = ctypes.c_char_p
lib.cudaGetErrorName.restype = ctypes.c_char_p
out = {}
for n in json.loads(sys.argv[2]):
    out[n] = [lib.cudaGetErrorName(n).decode(), lib.cudaGetErrorString(n).decode()]
print(json.dumps(out))
"""


def error_strings(library: Path, numbers: list[int]) -> dict[int, tuple[str, str]]:
    """number -> (cudaGetErrorName, cudaGetErrorString), asked of the library in a child process."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(library), json.dumps(numbers)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return {int(k): (v[0], v[1]) for k, v in json.loads(proc.stdout).items()}


def runtime_table(runtime: Runtime) -> list[tuple[CudaError, str | None]]:
    """Each error of the runtime with its description (None when the library was not available)."""
    errors = header_errors(runtime.header)
    strings = error_strings(runtime.library, [e.number for e in errors]) if runtime.library else {}
    out = []
    for error in errors:
        name, text = strings.get(error.number, (error.name, None))
        if name != error.name or text == "unrecognized error code":
            text = None
        out.append((error, text))
    return out


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="cudart-"))
