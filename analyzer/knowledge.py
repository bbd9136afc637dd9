"""What changed across vLLM, torch, CUDA and NVIDIA driver releases: the tables rules consult.

Every table holds only entries we are sure of; a lookup that cannot answer returns None and the rule
that asked stays silent rather than guess. Versions are tuples compared numerically.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, NamedTuple, cast

from vllm_bug.analyzer.facts import parse_version

Version = tuple[int, ...]


def vt(text: str | None) -> Version | None:
    """'0.11.1rc2.dev5' -> (0, 11, 1); None when there are no digits."""
    return parse_version(text)


def at_least(version: str | None, floor: Version) -> bool | None:
    v = vt(version)
    if v is None:
        return None
    width = max(len(v), len(floor))
    return v + (0,) * (width - len(v)) >= floor + (0,) * (width - len(floor))


def is_dev_build(version: str | None) -> bool:
    """Nightly, rc or source builds: their pins move between releases."""
    text = (version or "").lower()
    return any(tag in text for tag in ("dev", "rc", "nightly", "+g", "git sha", "main@"))


# -- what each vLLM release pins and defaults to: mined from the releases ---------------------------------
# analyzer/data/catalogue/vllm_releases.json is written by tools/mine_catalogue.py: the torch each
# published release requires (its wheel's metadata), and EngineArgs' constant defaults of the releases it
# read (the first of each minor series; a patch release is taken to keep its series' defaults).
@lru_cache(maxsize=1)
def _releases() -> dict[str, Any]:
    from vllm_bug.formats.package_files import package_folder

    path = package_folder("vllm_bug.analyzer") / "data" / "catalogue" / "vllm_releases.json"
    return cast(dict[str, Any], json.loads(path.read_text("utf-8")))


@lru_cache(maxsize=1)
def _torch_pins() -> dict[Version, str | None]:
    pins: dict[Version, str | None] = {}
    for release, entry in _releases()["torch_pins"].items():
        v = vt(release)
        if v is not None:
            pins[_pad(v)] = entry["torch"]
    return pins


def _pad(v: Version, width: int = 4) -> Version:
    return v + (0,) * (width - len(v))


def torch_required_by_vllm(vllm_version: str | None) -> str | None:
    """The torch release a published vLLM wheel pins, or None when unknown (a dev build, a version newer
    than the mined releases, or a minor series with no mined release)."""
    v = vt(vllm_version)
    if v is None or is_dev_build(vllm_version):
        return None
    pins = _torch_pins()
    key = _pad(v)
    if not pins or key > max(pins):
        return None
    same_series = [release for release in pins if release[:2] == key[:2] and release <= key]
    return pins[max(same_series)] if same_series else None


def release_default(name: str, vllm_version: str | None) -> Any | None:
    """EngineArgs' default for `name` in this vLLM version (as in the newest mined release not newer than
    it), or None: a version older than every mined release, or no constant default there."""
    v = vt(vllm_version)
    if v is None:
        return None
    order = _releases()["source"]["releases"]
    mined = [ref for ref in order if _pad(vt(ref) or ()) <= _pad(v)]
    if not mined:
        return None
    at = order.index(mined[-1])
    for entry in _releases()["defaults"].get(name, []):
        if any(order.index(first) <= at <= order.index(last) for first, last in entry["present"]):
            return entry["value"]
    return None


# -- driver needed by each CUDA runtime (Linux x86_64) ----------------------------------------------
# The toolkit's own driver (full feature set), and the floor for minor-version compatibility.
_TOOLKIT_DRIVER: dict[tuple[int, int], str] = {
    (11, 8): "520.61.05",
    (12, 0): "525.60.13",
    (12, 1): "530.30.02",
    (12, 2): "535.54.03",
    (12, 3): "545.23.06",
    (12, 4): "550.54.14",
    (12, 5): "555.42.02",
    (12, 6): "560.28.03",
    (12, 8): "570.26",
    (12, 9): "575.51.03",
    (13, 0): "580.65.06",
    (13, 1): "590.44.01",
}
_MINOR_COMPAT_FLOOR: dict[int, str] = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}


def cuda_major_minor(text: str | None) -> tuple[int, int] | None:
    v = vt(text)
    if not v:
        return None
    if len(v) == 1:
        # nccl / nvml style 12060 -> 12.6
        n = v[0]
        if n >= 1000:
            return n // 1000, (n % 1000) // 10
        return n, 0
    return v[0], v[1]


def driver_floor_for_cuda(cuda: str | None) -> str | None:
    """Oldest driver that can run this CUDA major at all (with minor-version compatibility)."""
    mm = cuda_major_minor(cuda)
    return _MINOR_COMPAT_FLOOR.get(mm[0]) if mm else None


def driver_for_cuda_toolkit(cuda: str | None) -> str | None:
    """The driver the CUDA toolkit release itself ships with (needed for PTX JIT of its code)."""
    mm = cuda_major_minor(cuda)
    if not mm:
        return None
    if mm in _TOOLKIT_DRIVER:
        return _TOOLKIT_DRIVER[mm]
    same_major = sorted(k for k in _TOOLKIT_DRIVER if k[0] == mm[0] and k <= mm)
    return _TOOLKIT_DRIVER[same_major[-1]] if same_major else None


def max_cuda_for_driver(driver: str | None) -> tuple[int, int] | None:
    """The newest CUDA whose toolkit driver this driver meets (what nvidia-smi prints as 'CUDA Version')."""
    d = vt(driver)
    if not d:
        return None
    best = None
    for cuda, need in sorted(_TOOLKIT_DRIVER.items()):
        floor = vt(need)
        if floor is not None and at_least(driver, floor):
            best = cuda
    return best


def driver_too_old_for_cuda(driver: str | None, driver_cuda: str | None, cuda: str | None) -> bool | None:
    """True when the driver cannot run this CUDA major at all; None when facts are missing."""
    need_major = cuda_major_minor(cuda)
    if not need_major:
        return None
    have = cuda_major_minor(driver_cuda) if driver_cuda else None
    if have is not None:
        return have[0] < need_major[0]
    floor = driver_floor_for_cuda(cuda)
    d, f = vt(driver), vt(floor)
    if d is None or f is None:
        return None
    return d < f


def driver_below_toolkit(driver_cuda: str | None, cuda: str | None) -> bool | None:
    """Same CUDA major, older minor: runs via minor-version compatibility, but PTX JIT may fail."""
    have, need = cuda_major_minor(driver_cuda), cuda_major_minor(cuda)
    if not have or not need:
        return None
    return have[0] == need[0] and have < need


# -- compute capability --------------------------------------------------------------------------
BF16_MIN_CC = (8, 0)
FP8_NATIVE_MIN_CC = (8, 9)
VLLM_MIN_CC = (7, 0)
BLACKWELL_MIN_TORCH_CUDA = (12, 8)


def cuda_supported_cc_range(cuda: str | None) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """(oldest, newest) compute capability a CUDA toolkit can compile for."""
    mm = cuda_major_minor(cuda)
    if not mm:
        return None
    if mm[0] >= 13:
        return (7, 5), (12, 1)
    if mm >= (12, 9):
        return (5, 0), (12, 1)
    if mm >= (12, 8):
        return (5, 0), (12, 0)
    if mm[0] == 12:
        return (5, 0), (9, 0)
    if mm >= (11, 8):
        return (3, 5), (9, 0)
    return (3, 5), (8, 6)


def cc_runs_binary(gpu: tuple[int, int], built: tuple[int, int]) -> bool:
    """A cubin built for sm_XY runs on a GPU of the same major with an equal or newer minor."""
    return gpu[0] == built[0] and gpu[1] >= built[1]


def cc_in_arch_list(gpu: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether torch's compiled architectures (['sm_80', 'sm_90', ...]) cover this GPU."""
    from vllm_bug.analyzer.gpus import parse_compute_capability

    for entry in arch_list:
        text = entry.strip().lower()
        built = parse_compute_capability(text.replace("compute_", "sm_"))
        if not built:
            continue
        if text.startswith("compute_") and built <= gpu:
            return True  # PTX can be JIT-compiled for newer GPUs
        if cc_runs_binary(gpu, built):
            return True
    return False


# Minimum compute capability vLLM's quantization methods declare (get_min_capability()).
QUANT_MIN_CC: dict[str, tuple[int, int]] = {
    "awq": (7, 5),
    "gptq": (6, 0),
    "awq_marlin": (8, 0),
    "gptq_marlin": (8, 0),
    "marlin": (8, 0),
    "fp8": (8, 0),  # weight-only through Marlin on 8.0-8.6; native W8A8 needs 8.9
    "fbgemm_fp8": (8, 0),
    "bitsandbytes": (7, 0),
    "squeezellm": (7, 0),
    "modelopt_fp4": (10, 0),
    "nvfp4": (10, 0),
}


# -- flags and environment variables that changed -------------------------------------------------
class Removal(NamedTuple):
    name: str
    gone_since: Version  # first vLLM release known not to accept / honour it
    replacement: str  # what to use instead, in our words
    deprecated_since: Version | None = None
    never_existed: bool = False


# Our words for what to pass instead of a removed option, where the mined history's pointer (replaced_by: the
# option its deprecation message names) says too little or nothing. Which release removed each option is the
# history's (removed_flags below); tests/test_catalogue.py checks that every name here was removed.
FLAG_REPLACEMENT_WORDS: dict[str, str] = {
    "--swap-space": "nothing replaces it (the V1 engine keeps no CPU KV blocks); to save GPU memory use "
    "--gpu-memory-utilization, --max-model-len, --max-num-seqs, --kv-cache-dtype or --cpu-offload-gb",
    "--max-seq-len-to-capture": "--max-cudagraph-capture-size N (or --enforce-eager to skip CUDA graphs entirely)",
    "--max-context-len-to-capture": "--max-cudagraph-capture-size N (or --enforce-eager)",
    "--use-v2-block-manager": "nothing (the V2 block manager is the only one)",
    "--worker-use-ray": "--distributed-executor-backend ray",
    "--engine-use-ray": "nothing (Ray is chosen with --distributed-executor-backend ray)",
    "--task": "--runner pooling (with --convert when needed) for embedding/pooling models",
    "--enable-reasoning": "--reasoning-parser NAME alone (naming a parser turns reasoning output on)",
    "--disable-log-requests": "nothing (vLLM logs no requests unless --enable-log-requests is given)",
}


def _minor_release(tag: str) -> Version:
    """'v0.17.0' -> (0, 17): the miner reads the first release of each minor series, so a removal it records
    is known to the minor release only."""
    version = vt(tag) or (0,)
    return version[:2]


def _replacement_words(name: str, replaced_by: tuple[str, ...]) -> str:
    if name in FLAG_REPLACEMENT_WORDS:
        return FLAG_REPLACEMENT_WORDS[name]
    if replaced_by:
        return f"{' or '.join(replaced_by)}, which its deprecation message named"
    return "nothing that the release history names; `--help` lists the options of the release you run"


@lru_cache(maxsize=1)
def removed_flags() -> tuple[Removal, ...]:
    """Every option the mined releases (analyzer/data/catalogue/vllm_flags.json) show removed: gone_since is the
    first mined release without it, deprecated_since the first whose parser marked it deprecated."""
    removals = []
    for name, entry in _flags().items():
        if "removed_in" not in entry or _spelled_otherwise(name):
            continue
        history = flag_history(name)
        if history is None or history.removed_in is None:
            continue
        removals.append(
            Removal(
                name,
                _minor_release(history.removed_in),
                _replacement_words(name, history.replaced_by),
                deprecated_since=_minor_release(history.deprecated_in) if history.deprecated_in else None,
            )
        )
    return tuple(removals)


def _spelled_otherwise(name: str) -> bool:
    """'--preemption_mode' when the history also holds '--preemption-mode': argparse's option is the dashed one."""
    return "_" in name and name.replace("_", "-") in _flags()


def flag_removal(name: str) -> Removal | None:
    """The removal of an option ('--swap-space') the mined releases show removed; None for the others."""
    return _removed_flags_by_name().get(name)


@lru_cache(maxsize=1)
def _removed_flags_by_name() -> dict[str, Removal]:
    return {entry.name: entry for entry in removed_flags()}


REMOVED_ENV: tuple[Removal, ...] = (
    Removal("VLLM_ATTENTION_BACKEND", (0, 15), "--attention-backend NAME", deprecated_since=(0, 11, 1)),
    Removal(
        "VLLM_USE_V1", (0, 11), "nothing (V1 is the only engine; VLLM_ENABLE_V1_MULTIPROCESSING=0 runs it in-process)"
    ),
    Removal(
        "VLLM_INSTALL_PUNICA_KERNELS",
        (0, 5, 1),
        "nothing (the LoRA kernels are Triton kernels now and need no build switch)",
    ),
    Removal(
        "VLLM_USE_PRECOMPILED_KERNELS",
        (0,),
        "nothing at run time (the real VLLM_USE_PRECOMPILED=1 only matters for `pip install -e .` builds)",
        never_existed=True,
    ),
    Removal("VLLM_DISABLE_CUDA_GRAPH", (0,), "--enforce-eager (or a cudagraph_mode of NONE)", never_existed=True),
    Removal("VLLM_DISABLE_CUDA_GRAPHS", (0,), "--enforce-eager (or a cudagraph_mode of NONE)", never_existed=True),
    Removal("VLLM_TORCH_COMPILE", (0,), "-O0 / --enforce-eager to turn compilation off", never_existed=True),
)


class FlagHistory(NamedTuple):
    """A vLLM option's life in the mined releases (analyzer/data/catalogue/vllm_flags.json): release tags."""

    name: str
    first_seen: str
    last_seen: str
    removed_in: str | None  # the first mined release without it, when the newest lacks it
    deprecated_in: str | None  # the first mined release whose parser marks it deprecated
    replaced_by: tuple[str, ...]  # options its deprecation texts name, that the newest release has


@lru_cache(maxsize=1)
def _flags() -> dict[str, Any]:
    from vllm_bug.formats.package_files import package_folder

    path = package_folder("vllm_bug.analyzer") / "data" / "catalogue" / "vllm_flags.json"
    return cast(dict[str, Any], json.loads(path.read_text("utf-8"))["flags"])


def flag_history(name: str) -> FlagHistory | None:
    """What the mined releases say of an option ('--swap-space'); None when no mined release declares it."""
    entry = _flags().get(name)
    if entry is None:
        return None
    deprecated = entry.get("deprecated")
    return FlagHistory(
        name,
        entry["present"][0][0],
        entry["present"][-1][1],
        entry.get("removed_in"),
        deprecated[0][0] if deprecated else None,
        tuple(entry.get("replaced_by", ())),
    )


def release_text(version: Version) -> str:
    """(0, 10) -> '0.10'."""
    return ".".join(str(part) for part in version)


def removed_in(entries: tuple[Removal, ...], name: str, vllm_version: str | None) -> Removal | None:
    """The entry when `name` is gone in this vLLM version (fictional names: always)."""
    for entry in entries:
        if entry.name != name:
            continue
        if entry.never_existed:
            return entry
        ok = at_least(vllm_version, entry.gone_since)
        return entry if ok else None
    return None


def deprecated_in(entries: tuple[Removal, ...], name: str, vllm_version: str | None) -> Removal | None:
    for entry in entries:
        if (
            entry.name == name
            and entry.deprecated_since
            and at_least(vllm_version, entry.deprecated_since)
            and not at_least(vllm_version, entry.gone_since)
        ):
            return entry
    return None


# -- version-right advice -------------------------------------------------------------------------
def default_gpu_memory_utilization(vllm_version: str | None) -> float | None:
    """--gpu-memory-utilization's default in this vLLM version; None when it is not known."""
    value = release_default("gpu_memory_utilization", vllm_version)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def attention_backend_advice(vllm_version: str | None, backend: str) -> str:
    if vllm_version and not at_least(vllm_version, (0, 11, 1)):
        return f"VLLM_ATTENTION_BACKEND={backend}"
    if vllm_version is None:
        return f"--attention-backend {backend} (on vLLM older than 0.11.1: VLLM_ATTENTION_BACKEND={backend})"
    return f"--attention-backend {backend}"


def uses_v1_compile(vllm_version: str | None) -> bool | None:
    """V1 with torch.compile is the default from 0.8.0."""
    return at_least(vllm_version, (0, 8))


def cudagraph_workarounds(vllm_version: str | None) -> list[str]:
    """Ways to avoid or shrink CUDA graphs that this vLLM version accepts."""
    out = ["--enforce-eager (no CUDA graphs; slower decode, but isolates the problem)"]
    if at_least(vllm_version, (0, 10, 2)) is not False:
        out.append(
            """--compilation-config '{"cudagraph_mode": "PIECEWISE"}' (or "NONE") """
            "to keep compilation but capture less"
        )
    if at_least(vllm_version, (0, 11, 1)) is not False:
        out.append("--max-cudagraph-capture-size 64 (or lower) to capture fewer batch sizes")
    return out


# The same workarounds for a program that is not vLLM (a script or trainer using torch directly).
TORCH_GRAPH_ADVICE = (
    "run the same code without CUDA graphs (outside torch.cuda.graph / CUDAGraph capture, or torch.compile "
    "without mode='reduce-overhead') to confirm that the capture is what fails"
)
TORCH_COMPILE_OFF_ADVICE = "run it eagerly to confirm: TORCH_COMPILE_DISABLE=1 turns every torch.compile off"


def compile_off_advice(vllm_version: str | None) -> str:
    if uses_v1_compile(vllm_version) is False:
        return "--enforce-eager"
    return "-O0 (no torch.compile) or --enforce-eager (no torch.compile and no CUDA graphs)"


def vllm_wheel_cuda(vllm_version: str | None) -> str | None:
    """CUDA the default PyPI wheel of this vLLM release is built for: the release's VLLM_MAIN_CUDA_VERSION
    (mined, from 0.11), and before that variable existed the CUDA of the release notes."""
    mined = release_default("VLLM_MAIN_CUDA_VERSION", vllm_version)
    if isinstance(mined, str):
        return mined
    v = vt(vllm_version)
    if v is None:
        return None
    if (0, 9) <= v < (0, 11):
        return "12.8"
    if (0, 4, 1) <= v < (0, 9):
        return "12.1" if v < (0, 6, 4) else "12.4"
    if (0, 2, 2) <= v < (0, 4, 1):
        return "12.1"
    return None


def kv_cache_dtype_advice(min_cc: tuple[int, int] | None) -> str | None:
    if min_cc is None or min_cc >= FP8_NATIVE_MIN_CC:
        return "--kv-cache-dtype fp8 (halves the KV cache per token)"
    return None
