"""nvidia-smi's output: the banner (driver and CUDA versions), the GPU and process tables, `-q`, and
the `--query-gpu` CSV. Pure functions on text; nothing here runs a command.

The banner reads `| NVIDIA-SMI 580.95.05   Driver Version: 580.95.05   CUDA Version: 13.0 |`; `-q` prints
`Driver Version                            : 580.95.05`. A table row holds a GPU's index and name on
one line and its memory (`15890MiB / 16160MiB`) on the next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vllm_bug.formats.lazyre import lazy_compile

MIB = 1 << 20

# Fields asked of `nvidia-smi --query-gpu` when NVML is unusable. compute_cap needs a 510+ driver,
# so a shorter list is kept for older ones.
QUERY_FIELDS = (
    "index",
    "name",
    "compute_cap",
    "driver_version",
    "memory.total",
    "memory.used",
    "memory.free",
    "pci.bus_id",
    "uuid",
    "persistence_mode",
    "compute_mode",
    "mig.mode.current",
    "mig.mode.pending",
    "ecc.mode.current",
    "ecc.mode.pending",
    "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.uncorrected.aggregate.total",
    "temperature.gpu",
    "power.draw",
)
BASIC_QUERY_FIELDS = (
    "index",
    "name",
    "driver_version",
    "memory.total",
    "memory.used",
    "memory.free",
    "pci.bus_id",
    "uuid",
)


# -- the banner --------------------------------------------------------------------------------
@dataclass
class SmiHeader:
    driver_version: str | None  # '580.95.05'
    cuda_version: str | None  # the newest CUDA the driver supports: '13.0'


# the driver version (a three-digit major: '4.2' in prose is no driver), and the CUDA version beside it
_HEADER = lazy_compile(
    r"Driver Version\s*:\s*(\d{3}\.\d{1,6}(?:\.\d{1,6})?)(?:\s+CUDA Version\s*:\s*(\d{1,4}\.\d{1,4}))?"
)
_CUDA = lazy_compile(r"CUDA Version\s*:\s*(\d{1,4}\.\d{1,4})")


def parse_header(text: str) -> SmiHeader | None:
    """The driver version and its CUDA version from the banner of plain `nvidia-smi` or from `-q`.

    The CUDA version printed next to the driver wins; otherwise the first 'CUDA Version:' anywhere.
    """
    driver = cuda = None
    if "Driver Version" in text and (m := _HEADER.search(text)):
        driver, cuda = m.group(1), m.group(2)
    if cuda is None and "CUDA Version" in text and (m := _CUDA.search(text)):
        cuda = m.group(1)
    return SmiHeader(driver, cuda) if driver or cuda else None


def looks_like_nvidia_smi(text: str) -> bool:
    """Whether TEXT is nvidia-smi's output (plain or -q), not an error message or something else."""
    if "NVIDIA-SMI" in text or "NVSMI LOG" in text:
        return True
    header = parse_header(text)
    return header is not None and header.driver_version is not None


_DRIVER_FAILURE = lazy_compile(
    r"(NVIDIA-SMI has failed[^\n]*|Failed to initialize NVML[^\n]*|No devices were found[^\n]*|"
    r"Unable to determine the device handle[^\n]*|[^\n]*GPU is lost[^\n]*)",
    re.IGNORECASE,
)


def driver_failure_line(text: str) -> str | None:
    """The line in which nvidia-smi says it cannot reach the driver, if it said so."""
    match = _DRIVER_FAILURE.search(text)
    return match.group(1).strip()[:1000] if match else None


# -- the tables --------------------------------------------------------------------------------
@dataclass
class SmiGpuRow:
    index: int
    name: str  # as the table prints it, perhaps cut: 'Tesla V100-SXM2...'
    memory_used_mib: int
    memory_total_mib: int


@dataclass
class SmiProcess:
    gpu_index: int
    pid: int
    type: str  # 'C' compute, 'G' graphics, 'C+G', 'M'
    name: str
    used_memory_mib: int | None  # None where nvidia-smi prints N/A


@dataclass
class SmiTable:
    gpus: list[SmiGpuRow] = field(default_factory=list)
    processes: list[SmiProcess] = field(default_factory=list)


_GPU_ROW = lazy_compile(
    r"^\|\s{0,6}(?P<index>\d{1,3})\s{1,6}(?P<name>\S[^|\n]{0,80}?)\s+(?:On|Off|WDDM|TCC)\s*\|"
    r"[^|\n]{0,40}\|[^|\n]{0,40}\|[ \t]*\n"
    r"\|[^|\n]{0,80}\|\s*(?P<used>\d{1,9})MiB\s*/\s*(?P<total>\d{1,9})MiB\s*\|",
    re.MULTILINE,
)
_PROCESS_ROW = lazy_compile(
    r"^\|\s{0,6}(?P<gpu>\d{1,3})\s+(?:N/A|\d+)\s+(?:N/A|\d+)\s+(?P<pid>\d{1,10})\s+(?P<type>[CGM+]{1,3})\s+"
    r"(?P<name>\S[^|\n]{0,120}?)\s+(?P<mem>\d{1,9}|N/A)(?:MiB)?\s*\|",
    re.MULTILINE,
)


def parse_table(text: str) -> SmiTable | None:
    """The GPU rows and process rows of plain nvidia-smi's tables, or None when TEXT holds neither."""
    if "MiB" not in text or "|" not in text:
        return None
    gpus = [
        SmiGpuRow(int(m.group("index")), m.group("name").strip(), int(m.group("used")), int(m.group("total")))
        for m in _GPU_ROW.finditer(text)
    ]
    processes = []
    if "Processes" in text:
        for m in _PROCESS_ROW.finditer(text):
            mem = m.group("mem")
            processes.append(
                SmiProcess(
                    int(m.group("gpu")),
                    int(m.group("pid")),
                    m.group("type"),
                    m.group("name").strip(),
                    int(mem) if mem.isdigit() else None,
                )
            )
    return SmiTable(gpus, processes) if gpus or processes else None


# -- --query-gpu CSV ---------------------------------------------------------------------------
_UNAVAILABLE = lazy_compile(
    r"^\[?(n/?a|not supported|unknown error|gpu is lost|insufficient permissions"
    r"|requested functionality has been deprecated)\]?$",
    re.IGNORECASE,
)
_UNITS = ("MiB", "GiB", "KiB", "W", "C", "%", "MHz")
_REJECTED_FIELDS = lazy_compile(r"is not a valid field to query|Invalid combination of input arguments", re.IGNORECASE)


def is_unavailable(value: str) -> bool:
    """Whether nvidia-smi printed VALUE for 'no value' ('N/A', '[Not Supported]', '[GPU is lost]' ...)."""
    return _UNAVAILABLE.match(value) is not None


def parse_query_csv(text: str, fields: tuple[str, ...] | list[str] = QUERY_FIELDS) -> list[dict[str, str | None]]:
    """Rows of `nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]` as {field: raw value}.

    A header line (with or without "[MiB]" units), if present, decides the field order. Values that
    nvidia-smi reports as unavailable become None. Lines with the wrong number of columns are skipped.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and _is_header(lines[0], fields):
        fields = [_without_unit(name) for name in lines[0].split(",")]
        lines = lines[1:]
    rows = []
    for line in lines:
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(fields):
            continue
        rows.append(
            {
                name: (None if is_unavailable(cell) or cell == "" else cell)
                for name, cell in zip(fields, cells, strict=True)
            }
        )
    return rows


def _without_unit(name: str) -> str:
    """'memory.total [MiB]' -> 'memory.total'."""
    name = name.strip()
    if name.endswith("]") and "[" in name:
        return name[: name.index("[")].rstrip()
    return name


def _is_header(line: str, fields: tuple[str, ...] | list[str]) -> bool:
    first = line.split(",")[0].strip().lower()
    return first in {f.lower() for f in fields} or first in {f.lower() for f in QUERY_FIELDS}


def rejected_fields(output: str) -> bool:
    """True when nvidia-smi refused the field list (an older driver without compute_cap etc.)."""
    return _REJECTED_FIELDS.search(output) is not None


def parse_number(raw: str | None) -> float | None:
    """'80 MiB', '250.00 W', '45' -> a float (the unit dropped); None when there is no number."""
    if raw is None:
        return None
    value = raw.strip()
    for unit in _UNITS:
        if value.endswith(unit):
            value = value[: -len(unit)]
            break
    try:
        return float(value)
    except ValueError:
        return None


def parse_enabled(raw: str | None) -> bool | None:
    """'Enabled'/'On'/'Yes' -> True, 'Disabled'/'Off'/'No' -> False, anything else None."""
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered in ("enabled", "on", "yes"):
        return True
    if lowered in ("disabled", "off", "no"):
        return False
    return None
