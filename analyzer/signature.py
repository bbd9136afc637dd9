"""Root-cause signatures: short, readable, versioned, and the same for every report of one bug.

Layout (algorithm version 1)::

    vllm-sig/1:<kind>:<ExcType>:<qualifier>:<frame,frame,frame>#<hash8>

- kind: a coarse error family (oom, host-oom, cuda-error, nccl, import, kv-cache, triton, assert,
  python, message, none), read from the exception type and message;
- ExcType: the exception's short type, with aliases that differ only between torch versions merged;
- qualifier: the message core with everything that varies between machines removed (sizes,
  numbers, GPU indices, addresses, paths, pids); for CUDA errors the error name, for NCCL the error
  text, for OOM just "CUDA out of memory";
- frames: up to three in-app frames (modules under vllm.*) nearest the crash, innermost first,
  each as `<file stem>.<function>` (line numbers and directories never count);
- hash8: the first 8 hex digits of sha1 over the contributing values.

Ideas from apport (readable type:qualifier:frames), Sentry (versioned, explained, in-app frames
only, message parameterised only as a fallback) and Socorro (skip lists for wrappers).
"""

from __future__ import annotations

import hashlib
import re

from vllm_bug.analyzer.facts import Facts, Frame, Traceback
from vllm_bug.analyzer.prefilter import fold, may_match
from vllm_bug.analyzer.tracebacks import is_ray_host_oom, is_wrapper
from vllm_bug.formats.ansi import SIGNATURE, strip_ansi
from vllm_bug.formats.issue_text import strip_template_tag
from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.logline import strip_error_line_prefix
from vllm_bug.formats.traceback import first_validation_error

ALGORITHM = "vllm-sig/1"
MAX_APP_FRAMES = 3
MAX_QUALIFIER_CHARS = 80

# Frames that only forward a call; they never identify a bug.
_PASS_THROUGH_FUNCTIONS = {
    "wrapper",
    "inner",
    "wrapped",
    "_wrapper",
    "decorate_context",
    "__call__",
    "_call_impl",
    "_wrapped_call_impl",
    "run_method",
    "_run_worker_process",
    "worker_busy_loop",
    "execute_method",
    "collective_rpc",
    "<module>",
    "main",
    "run",
    "_bootstrap",
    "_target",
}

_TYPE_ALIASES = {
    "AcceleratorError": "RuntimeError",  # torch >= 2.8 raises CUDA errors as AcceleratorError(RuntimeError)
    "CudaError": "RuntimeError",
    "DistBackendError": "NCCLError",
    "DistError": "NCCLError",
}

# For these kinds the exception class differs between torch versions and code paths, not between bugs.
_CANONICAL_TYPE = {"cuda-error": "RuntimeError", "oom": "OutOfMemoryError", "nccl": "NCCLError"}

_CUDA_ERROR = lazy_compile(
    r"CUDA error:\s*([A-Za-z][A-Za-z \-,'/]*?)\s*(?=[(\n`]|\"|$|\.(?:\s|$)|CUDA kernel errors)", re.IGNORECASE
)
# CUDA error names as people quote them without the "CUDA error:" prefix.
_KNOWN_CUDA_ERRORS = [
    (lazy_compile(r"illegal memory access", re.I), "an illegal memory access was encountered"),
    (lazy_compile(r"device-side assert", re.I), "device-side assert triggered"),
    (lazy_compile(r"no kernel image is available", re.I), "no kernel image is available for execution on the device"),
    (lazy_compile(r"misaligned address", re.I), "misaligned address"),
    (lazy_compile(r"unspecified launch failure", re.I), "unspecified launch failure"),
    (
        lazy_compile(r"operation not permitted when stream is capturing", re.I),
        "operation not permitted when stream is capturing",
    ),
    (lazy_compile(r"invalid configuration argument", re.I), "invalid configuration argument"),
]
_CUDA_FILE_ERROR = lazy_compile(
    r"Cuda error\s+\S*?([\w.\-]+\.(?:cuh|cu|cpp|h|hpp))(?::\d+)?\s*'([^']+)'", re.IGNORECASE
)
_FAILED_FILE_ERROR = lazy_compile(r"Failed:\s+\S*?([\w.\-]+\.(?:cuh|cu|cpp|h|hpp)):\d+\s*'([^']+)'", re.IGNORECASE)
_CUDA_DRIVER_ERROR = lazy_compile(r"Error (\d{3}): ([^()\n]+?)\s*(?:\(|$|\n)")
_NCCL_ERROR = lazy_compile(
    r"NCCL error(?: in: [^,\n]*,)?:?\s*([a-z][a-z ]+?)(?:\s*\(|,|$|\n)"
    r"|(nccl[A-Z]\w+Error)|NCCL (?:WARN|ERROR) ([^\n]{1,80})",
    re.IGNORECASE,
)
_OOM = lazy_compile(r"CUDA out of memory|OutOfMemoryError|out of memory", re.IGNORECASE)
_KV_CACHE = lazy_compile(
    r"No available memory for the cache blocks|larger than the maximum number of tokens that can be stored in KV cache|"
    r"KV cache is needed, which is larger than the available KV cache memory|insufficient KV cache",
    re.IGNORECASE,
)
_IMPORT_TYPES = {"ImportError", "ModuleNotFoundError"}
_TRITON = lazy_compile(r"triton|ptxas|inductor|BackendCompilerFailed|CompilationError|OutOfResources", re.IGNORECASE)

# Sentry-style parameterisation of free text.
_PARAMS = [
    (lazy_compile(r"https?://\S+"), "<url>"),
    (lazy_compile(r"[\w.+-]+@[\w-]+\.[\w.]+"), "<email>"),
    (lazy_compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (lazy_compile(r"\b0x[0-9a-f]+\b", re.I), "<addr>"),
    (lazy_compile(r"\b[0-9a-f]{12,}\b", re.I), "<hex>"),
    (lazy_compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?Z?"), "<time>"),
    (lazy_compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (lazy_compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (lazy_compile(r"(?<![\w/.])(?:/[\w.+@~\-]+)+/([\w.+@~\-]+)"), r"\1"),  # absolute path -> basename
    (lazy_compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?\s*(?:[KMGT]i?B|bytes|B|%|ms|s)?(?![\w.])", re.I), "<n>"),
    (lazy_compile(r"\s+"), " "),
]


def compute_signature(facts: Facts) -> tuple[str, list[str]]:
    """(signature, explanation lines saying what contributed and what was dropped)."""
    why: list[str] = [f"algorithm {ALGORITHM}"]
    root = _pick_root(facts, why)
    if root is not None:
        exc_type = _normalise_type(root.short_type, why)
        text = f"{root.exc_type}: {root.message}"
        kind, qualifier = _classify(exc_type, text, why)
        if kind == "python" and root.short_type in _PLACEHOLDER_TYPES:
            kind, exc_type, qualifier = _better_from_lines(facts, kind, exc_type, qualifier, why)
        frames = _app_frames(root, why)
    else:
        line = _error_line(facts)
        if line is None:
            why.append("no traceback and no error line found: signature says 'none'")
            return _assemble("none", "-", "-", [], why)
        why.append(f"no traceback: using the error line {line[:160]!r}")
        exc_type = _type_from_line(line) or "-"
        kind, qualifier = _classify(exc_type, line, why)
        if kind == "python":
            kind = "message"
        frames = []
    canonical = _CANONICAL_TYPE.get(kind)
    if canonical and canonical != exc_type:
        why.append(
            f"exception type {exc_type} counted as {canonical}: for {kind} the class depends on the torch version"
        )
        exc_type = canonical
    return _assemble(kind, exc_type, qualifier, frames, why)


def signature_prefix(signature: str, fields: int = 4) -> str:
    """The coarse part: 'vllm-sig/1:<kind>:<ExcType>:<qualifier>' (for grouping by cause, not place)."""
    return ":".join(signature.split("#", 1)[0].split(":")[:fields])


# -- choosing the exception ----------------------------------------------------------------


def _is_wrapper(tb: Traceback) -> bool:
    """An exception that only wraps or reports a failure elsewhere (Socorro's "prefix" list): the analyzer's list."""
    return is_wrapper(tb)


def _pick_root(facts: Facts, why: list[str]) -> Traceback | None:
    root = facts.root_cause or (facts.tracebacks[-1] if facts.tracebacks else None)
    if root is None:
        return None
    seen = 0
    while _is_wrapper(root) and root.chained_from is not None and seen < 20:
        why.append(f"skipped wrapper exception {root.short_type}: {_short(root.message)}")
        root = root.chained_from
        seen += 1
    if _is_wrapper(root):
        for tb in reversed(facts.tracebacks):
            if not _is_wrapper(tb):
                why.append(f"skipped wrapper exception {root.short_type}: {_short(root.message)}")
                root = tb
                break
    why.append(f"root cause: {root.exc_type}: {_short(root.message)}")
    return root


# What the traceback parser writes when no exception type was printed (a cut traceback, a title).
_PLACEHOLDER_TYPES = {"", "Error", "-"}


def _better_from_lines(facts: Facts, kind: str, exc_type: str, qualifier: str, why: list[str]) -> tuple[str, str, str]:
    """The root cause named no real exception: a known error text in the lines, if any, is the better qualifier."""
    line = _error_line(facts)
    if line is None:
        return kind, exc_type or "-", qualifier or "-"
    notes: list[str] = []
    line_type = _type_from_line(line) or exc_type or "-"
    line_kind, line_qualifier = _classify(line_type, line, notes)
    if line_kind == "python":
        return kind, exc_type or "-", qualifier or "-"
    why.append(f"the root cause names no exception type; using the error line {line[:160]!r}")
    why.extend(notes)
    return line_kind, line_type, line_qualifier


def _normalise_type(short_type: str, why: list[str]) -> str:
    alias = _TYPE_ALIASES.get(short_type)
    if alias:
        why.append(f"exception type {short_type} counted as {alias} (the name differs between torch versions)")
        return alias
    return short_type


def _type_from_line(line: str) -> str | None:
    m = re.search(r"\b((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Warning))\b", line)
    return m.group(1).rsplit(".", 1)[-1] if m else None


_STRONG_ERROR_PATTERN = (
    r"CUDA error|Cuda error|NCCL error|nccl\w*Error|out of memory|OutOfMemoryError|No available memory for the cache|"
    r"KV cache|no kernel image|device-side assert|illegal memory access|Error \d{3}:|custom_all_reduce|"
    r"undefined symbol|"
    r"cannot open shared object|GLIBC|\bcudaError[A-Z]\w+|\bCUDA_ERROR_[A-Z_]+|Triton Error"
)
_STRONG_ERROR = lazy_compile(_STRONG_ERROR_PATTERN, re.IGNORECASE)
_NAMED_ERROR = lazy_compile(r"\b[A-Za-z_][\w.]*(?:Error|Exception)\s*:")
_LOG_ERROR = lazy_compile(r"(?-i:\bERROR\b|\bFailed:)")
_ERROR_LINE_LINES = 20000  # the lines an error line is looked for in


def _error_line(facts: Facts) -> str | None:
    """The most telling error line: a known error text beats a named exception beats an ERROR log line."""
    best: tuple[int, str] | None = None
    lines = facts.lines[:_ERROR_LINE_LINES]
    may_be_strong, may_be_named, may_be_logged = _error_kinds_present(lines)
    for line in lines if may_be_strong or may_be_named or may_be_logged else ():
        if line.lstrip().startswith(('File "', "Traceback")):
            continue
        score = (
            (4 if may_be_strong and _STRONG_ERROR.search(line) else 0)
            + (2 if may_be_named and _NAMED_ERROR.search(line) else 0)
            + (1 if may_be_logged and _LOG_ERROR.search(line) else 0)
        )
        if score and (best is None or score > best[0]):
            best = (score, strip_error_line_prefix(line).strip())
            if score >= 6:
                break
    if best is None and facts.title:
        return strip_template_tag(facts.title).strip() or None
    if best is None:
        return None
    line = strip_template_tag(best[1])
    named = _NAMED_ERROR.search(line)
    return (
        line[named.start() :]
        if named and named.start() > 0 and not _STRONG_ERROR.search(line[: named.start()])
        else line
    )


def _error_kinds_present(lines: list[str]) -> tuple[bool, bool, bool]:
    """Whether _STRONG_ERROR, _NAMED_ERROR and _LOG_ERROR may match any of `lines`: a word each match
    holds is looked for in them all at once, so a long input without errors costs no search per line."""
    block = "\n".join(lines)
    named = "Error" in block or "Exception" in block
    logged = "ERROR" in block or "Failed:" in block
    return may_match(_STRONG_ERROR_PATTERN, fold(block)), named, logged


# -- the qualifier -------------------------------------------------------------------------


def parameterise(text: str) -> str:
    """Replace what varies between reports of one bug (numbers, paths, addresses...) with placeholders."""
    text = strip_ansi(text, SIGNATURE)
    for rx, repl in _PARAMS:
        text = rx.sub(repl, text)
    return text.strip()


def _classify(exc_type: str, text: str, why: list[str]) -> tuple[str, str]:
    """(kind, qualifier) from the exception type and its message (or an error line)."""
    m = _CUDA_FILE_ERROR.search(text) or _FAILED_FILE_ERROR.search(text)
    if m:
        q = f"{m.group(1)} '{m.group(2).strip()}'"
        why.append(f"qualifier: failing CUDA call in {m.group(1)}: {m.group(2).strip()!r} (path and line dropped)")
        return "cuda-error", q
    m = _CUDA_ERROR.search(text)
    if m and not _OOM.search(m.group(1)):
        name = _canonical_cuda_error(m.group(1).strip().rstrip(".,").lower())
        why.append(f"qualifier: the CUDA error name {name!r}")
        return "cuda-error", name
    if is_ray_host_oom(text):
        why.append("qualifier: Ray killed a worker for the node's host memory (not a GPU out-of-memory error)")
        return "host-oom", "node running low on memory"
    if _OOM.search(text) and not _KV_CACHE.search(text):
        why.append("qualifier: 'CUDA out of memory' (sizes, GPU index and process ids dropped)")
        return "oom", "CUDA out of memory"
    if _KV_CACHE.search(text):
        q = _KV_CACHE.search(text).group(0)
        why.append(f"qualifier: KV cache message {q!r}")
        return "kv-cache", q.lower()
    m = _NCCL_ERROR.search(text)
    if m and ("nccl" in text.lower()):
        core = next(g for g in m.groups() if g).strip().lower()
        why.append(f"qualifier: NCCL error {core!r} (NCCL version, file and line dropped)")
        return "nccl", core
    m = _CUDA_DRIVER_ERROR.search(text)
    if m:
        q = f"error {m.group(1)} {m.group(2).strip().lower()}"
        why.append(f"qualifier: CUDA driver error {q!r}")
        return "cuda-error", q
    for rx, name in _KNOWN_CUDA_ERRORS:
        if rx.search(text):
            why.append(f"qualifier: the CUDA error name {name!r}, quoted without its 'CUDA error:' prefix")
            return "cuda-error", name
    validation = first_validation_error(exc_type, text.split(": ", 1)[1] if ": " in text else text)
    core = parameterise(validation)[:200] if validation else _message_core(text)
    if exc_type in _IMPORT_TYPES or re.search(r"undefined symbol|cannot open shared object|GLIBC", text):
        kind = "import"
    elif _TRITON.search(exc_type) or _TRITON.search(text[:300]):
        kind = "triton"
    elif exc_type == "AssertionError":
        kind = "assert"
    else:
        kind = "python"
    why.append(f"qualifier: message with numbers, paths and addresses replaced: {core!r}")
    return kind, core


def _canonical_cuda_error(name: str) -> str:
    for rx, canonical in _KNOWN_CUDA_ERRORS:
        if rx.search(name):
            return canonical
    return name


def _message_core(text: str) -> str:
    """First meaningful line of 'Type: message', without the type, parameterised."""
    first = text.split(": ", 1)[1] if re.match(r"[\w.]+: ", text) else text
    lines = [ln.strip() for ln in first.splitlines() if ln.strip()]
    core = parameterise(lines[0] if lines else "")
    return core[:200]


# -- frames --------------------------------------------------------------------------------


def _frame_key(frame: Frame) -> str:
    stem = frame.module.rsplit(".", 1)[-1]
    function = frame.function or "?"
    return f"{stem}.{function}"


def _app_frames(root: Traceback, why: list[str]) -> list[str]:
    chosen: list[str] = []
    previous = None
    for frame in reversed(root.frames):  # innermost first
        module = frame.module
        label = f"{module or frame.path}:{frame.function}"
        if not (module == "vllm" or module.startswith("vllm.")):
            why.append(f"frame {label}: dropped, not in-app (not under vllm.)")
            continue
        if (frame.function or "") in _PASS_THROUGH_FUNCTIONS:
            why.append(f"frame {label}: dropped, a pass-through/wrapper function")
            continue
        key = _frame_key(frame)
        if key == previous:
            why.append(f"frame {label}: dropped, recursion")
            continue
        if len(chosen) >= MAX_APP_FRAMES:
            why.append(f"frame {label}: dropped, beyond the {MAX_APP_FRAMES} in-app frames nearest the crash")
            continue
        chosen.append(key)
        previous = key
        why.append(f"frame {label}: contributes as {key} (line number and path ignored)")
    if not root.frames:
        why.append("no frames in the traceback: signature uses type and message only")
    elif not chosen:
        why.append("no in-app frames: signature uses type and message only")
    return chosen


# -- assembling ----------------------------------------------------------------------------


def _field(value: str, limit: int) -> str:
    value = re.sub(r"[:#,\s]+", " ", value).strip() or "-"
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "~"


def _assemble(kind: str, exc_type: str, qualifier: str, frames: list[str], why: list[str]) -> tuple[str, list[str]]:
    contributing = [ALGORITHM, kind, exc_type, qualifier.lower(), *frames]
    digest = hashlib.sha1("\x1f".join(contributing).encode("utf-8")).hexdigest()[:8]
    readable = ":".join(
        [
            ALGORITHM,
            kind,
            _field(exc_type, 60),
            _field(qualifier, MAX_QUALIFIER_CHARS),
            ",".join(_field(f, 80) for f in frames) or "-",
        ]
    )
    why.append(f"hash {digest} over: {contributing!r}")
    return f"{readable}#{digest}", why


def _short(text: str | None, limit: int = 120) -> str:
    s = " ".join((text or "").split())
    return s if len(s) <= limit else s[: limit - 1] + "…"
