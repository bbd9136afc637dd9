"""Pick the root cause among the exceptions a log printed (reading them is vllm_bug.formats.traceback's job).

Wrapper errors that only report that something failed elsewhere are never chosen as the root cause;
errors that name the GPU, CUDA, NCCL or memory beat generic ones; an issue title or a one-line
report can stand in when the text holds no exception ("Error" for a bare message).
"""

from __future__ import annotations

import re

from vllm_bug.formats.issue_text import strip_tags
from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.traceback import (
    MAX_CONTINUATION,
    Traceback,
    exception_in_prose,
    parse_exception_line,
    parse_tracebacks,
    pseudo_exception,
)

_WRAPPER_TYPES = lazy_compile(
    r"(?:^|\.)(?:EngineDeadError|EngineGenerateError|CancelledError|KeyboardInterrupt|SystemExit|GeneratorExit"
    r"|RayTaskError|RayActorError|ActorDiedError|ActorUnavailableError|WorkerCrashedError|RayChannelError"
    r"|RayChannelTimeoutError|ChildFailedError|ProcessRaisedException"
    r"|ProcessExitedException|BrokenProcessPool|RemoteException|AsyncEngineDeadError)$"
)
_WRAPPER_MESSAGES = lazy_compile(
    r"Engine core initialization failed|EngineCore encountered an issue|died unexpectedly"
    r"|RPC call to \S+ timed out|please check the stack trace above|See (?:the )?(?:root cause|stack trace)"
    r"|root cause (?:above|below)|Engine process failed to start"
    r"|initialization failed due to an exception in a background process"
    r"|Call to collective_rpc method failed|Background process failed|worker .{0,40} failed with error"
    r"|Worker (?:proc )?failed|WorkerProc initialization failed|Exception in worker|engine (?:loop )?(?:is )?dead"
    r"|Background loop has errored",
    re.IGNORECASE,
)
_SECONDARY_TYPES = lazy_compile(
    r"(?:^|\.)(?:EOFError|BrokenPipeError|ConnectionResetError|ConnectionRefusedError|ZMQError|TimeoutError"
    r"|ResourceWarning|UserWarning|FutureWarning|DeprecationWarning|RuntimeWarning|Warning|ModuleNotFoundError"
    r"|AttributeError)$"
)
_STRONG = lazy_compile(
    r"CUDA|cuda|NCCL|nccl|out of memory|OutOfMemory|illegal memory|device-side assert|kernel image|undefined symbol"
    r"|GLIBC|libcudart|libcuda|Error 80\d|Triton|ptxas|NVML|GPU|cache blocks|KV cache|max seq len|max_model_len"
    r"|compute capability|[Bb]float16|graph|CUBLAS|cuDNN|CUDNN|invalid argument|misaligned address|launch failure"
    r"|probability tensor|Assertion|driver|vllm\._C|_C\.abi3|infer device|memory",
)


# -- choosing the root cause -------------------------------------------------------------------
def is_wrapper(tb: Traceback) -> bool:
    base_type = tb.exc_type.split("(", 1)[0]
    return bool(_WRAPPER_TYPES.search(base_type) or _WRAPPER_MESSAGES.search(tb.message))


# Distributed errors that report a peer's death or a stalled collective: the consequence of another rank's failure,
# so any other GPU error in the input is the better root cause. PyTorch c10d (ProcessGroupNCCL watchdog, 'NCCL
# communicator was aborted', DistNetworkError), NCCL's ncclRemoteError text, sockets closed by a dead peer.
_CONSEQUENCE = lazy_compile(
    r"remote process exited or there was a network error|ncclRemoteError|NCCL communicator was aborted"
    r"|Watchdog caught collective operation timeout|collective operation timeout|DistNetworkError"
    r"|Connection (?:reset|closed) by peer|Broken pipe"
)


def _rank(tb: Traceback) -> tuple[int, int]:
    """(tier, position): a GPU/CUDA-flavoured error first (a peer's failure reported by a collective after it),
    then any typed one, then the rest; earliest first."""
    base_type = tb.exc_type.split("(", 1)[0]
    strong = bool(_STRONG.search(tb.message) or _STRONG.search(base_type))
    if _SECONDARY_TYPES.search(base_type) and not strong:
        tier = 4
    elif strong:
        tier = 1 if _CONSEQUENCE.search(tb.message) or _CONSEQUENCE.search(base_type) else 0
    elif tb.frames or base_type:
        tier = 2
    else:
        tier = 3
    return tier, tb.start_line if tb.start_line is not None else 0


def pick_root_cause(
    lines: list[str], tracebacks: list[Traceback] | None = None, title: str | None = None, title_line: int | None = None
) -> Traceback | None:
    """The earliest real error, preferring GPU/CUDA-flavoured ones; wrappers are skipped.

    Falls back to a pseudo exception made from the title or a one-line report.
    """
    if tracebacks is None:
        tracebacks = parse_tracebacks(lines)
    candidates = [tb for tb in tracebacks if tb.exc_type and not is_wrapper(tb) and tb.start_line != title_line]
    candidates += [
        quoted
        for quoted in map(quoted_by_wrapper, tracebacks)
        if quoted is not None and quoted.start_line != title_line
    ]
    candidates += [
        carried
        for carried in (carried_by_ray(tb, tracebacks, lines) for tb in tracebacks)
        if carried is not None and carried.start_line != title_line
    ]
    if candidates:
        chosen = min(candidates, key=_rank)
        return carried_by_nccl(chosen, lines) or chosen
    cut = [tb for tb in tracebacks if not tb.exc_type and tb.frames]
    # a cut traceback shows something failed, so even a plain title may name it
    fallback = pseudo_root_cause(title, prose_ok=bool(cut)) if title else None
    if fallback is None:
        fallback = _one_line_report(lines)
    if fallback is not None and cut and not fallback.frames:
        fallback.frames = cut[-1].frames
    return fallback


# -- errors carried inside wrappers ---------------------------------------------------------------
# NCCL's CUDA checks (src/include/checks.h CUDACHECK: WARN("Cuda failure '%s'", cudaGetErrorString(err)); cudawrap.h
# CUCHECK: "Cuda failure %d '%s'") return ncclUnhandledCudaError; PyTorch (c10d NCCLUtils getNcclErrorDetailStr) adds
# "Last error:" and NCCL's last message to its "unhandled cuda error" exception. CUDACHECKIGNORE logs the same words
# at INFO level for failures NCCL recovers from, so those lines are not a cause.
_NCCL_CUDA_FAILURE = lazy_compile(r"Cuda failure (?:\d{1,6} )?'(?P<msg>[^'\n]{1,300})'")
_NCCL_UNHANDLED_CUDA = lazy_compile(r"unhandled cuda error|ncclUnhandledCudaError", re.IGNORECASE)
# vLLM's executor (vllm/v1/executor/multiproc_executor.py): RuntimeError(f"Worker failed with error '{result}', please
# check the stack trace above for the root cause"), where result is the worker's str(exception).
_WORKER_QUOTE = lazy_compile(
    r"Worker failed with error '(?P<msg>.+?)(?:', please check the stack trace above.*|'?\s*)$"
)


def carried_by_nccl(tb: Traceback, lines: list[str]) -> Traceback | None:
    """The CUDA error inside NCCL's "unhandled cuda error" ("Cuda failure 'out of memory'"), as the root cause;
    None when tb is not that NCCL error or the input does not say which CUDA call failed.

    The failure nearest after the NCCL error (PyTorch's "Last error:" lines) is preferred; else the first NCCL
    warning anywhere (NCCL_DEBUG prints it before the exception)."""
    if not _NCCL_UNHANDLED_CUDA.search(f"{tb.exc_type}: {tb.message}"):
        return None
    start = tb.start_line if tb.start_line is not None else 0
    found = _nccl_cuda_failure(tb.text.splitlines()) or _nccl_cuda_failure(lines[start : start + 2 * MAX_CONTINUATION])
    found = found or _nccl_cuda_failure(lines)
    if found is None:
        return None
    return Traceback(
        exc_type="Cuda failure",
        message=found,
        frames=tb.frames,
        text=tb.text,
        start_line=tb.start_line,
        chained_from=tb.chained_from,
        carried_by=tb,
    )


def _nccl_cuda_failure(lines: list[str]) -> str | None:
    for line in lines:
        if "Cuda failure" in line and "NCCL INFO" not in line:
            m = _NCCL_CUDA_FAILURE.search(line)
            if m:
                return m.group("msg").strip()
    return None


def quoted_by_wrapper(tb: Traceback) -> Traceback | None:
    """The error a worker-failure wrapper quotes ("Worker failed with error 'CUDA out of memory. ...'"), as an
    exception of its own carried by the wrapper; None for other errors and for quotes that name no GPU failure."""
    if not tb.exc_type or not is_wrapper(tb):
        return None
    m = _WORKER_QUOTE.search(tb.message.strip())
    if m is None or not _STRONG.search(m.group("msg")):
        return None
    quoted = m.group("msg").strip()
    exc = parse_exception_line(quoted) or pseudo_exception(quoted)
    exc_type, message = (exc.exc_type, exc.message) if exc is not None else ("Error", quoted)
    return Traceback(
        exc_type=exc_type,
        message=message.strip(),
        frames=tb.frames,
        text=tb.text,
        start_line=tb.start_line,
        chained_from=tb.chained_from,
        carried_by=tb,
    )


# Ray (python/ray/exceptions.py) hands a task's exception to its caller as RayTaskError, which as_instanceof_cause()
# re-classes as "RayTaskError(<the cause's class name>)" (never for Ray's own errors, so RayTaskError(OutOfMemoryError)
# is torch's OutOfMemoryError). Its message is the task's traceback with the "Traceback (most recent call last):" line
# replaced by the task's process title, "ray::Class.method() (pid=N, ip=A, ...)"; the cause's own exception line ends
# it. ActorDiedError quotes the same text for an actor whose __init__ raised, and an actor that Ray's memory monitor
# killed reports "Worker exit type: NODE_OUT_OF_MEMORY Worker exit detail: Task was killed due to the node running low
# on memory." (the raylet's words, "N worker(s) were killed due to ..." since Ray 2.56; the caller of a killed task gets
# ray.exceptions.OutOfMemoryError with them). That memory is the node's host RAM, not the GPU's.
_RAY_TASK_CLASS = lazy_compile(r"(?:^|\.)RayTaskError\((?P<cause>[\w.]{1,120})\)$")
_RAY_TASK_TITLE = lazy_compile(r"\bray::[\w.<>-]{1,200}\(\)\S{0,12} \(pid=\d{1,10}")
_RAY_WRAPPER = lazy_compile(
    r"(?:^|\.)(?:RayTaskError|RayActorError|ActorDiedError|ActorUnavailableError|WorkerCrashedError)$"
)
_RAY_HOST_OOM = lazy_compile(r"(?:Task was|\d{1,6} worker\(s\) were) killed due to the node running low on memory\.?")
RAY_HOST_OOM_TYPE = "ray.exceptions.OutOfMemoryError"


def carried_by_ray(tb: Traceback, tracebacks: list[Traceback], lines: list[str]) -> Traceback | None:
    """The error a Ray wrapper carries, as an exception of its own carried by the wrapper; None when the
    input already holds that error as an exception (Ray prints the cause's traceback right after its
    "ray::..." title) or the wrapper names none.

    Carried: an actor death that Ray's memory monitor caused (host memory, not the GPU's), and the class
    named by RayTaskError(<class>) when the task's own exception line was cut off."""
    if not tb.exc_type or not is_wrapper(tb):
        return None
    host_oom = _ray_host_oom(tb, lines)
    if host_oom is not None:
        return _carried(tb, RAY_HOST_OOM_TYPE, host_oom)
    m = _RAY_TASK_CLASS.search(tb.exc_type.rsplit(".", 1)[-1])
    if m is None or not _STRONG.search(m.group("cause")):
        return None  # a cut RuntimeError says nothing by itself: the cause stays missing
    inner = _printed_inside(tb, tracebacks)
    if inner is not None and inner.exc_type:
        return None
    carried = _carried(tb, m.group("cause"), "")
    if inner is not None:
        carried.frames = inner.frames
    return carried


def is_ray_host_oom(text: str) -> bool:
    """Whether text is Ray's memory monitor saying it killed a worker because the node's host memory ran low."""
    return _RAY_HOST_OOM.search(text) is not None


def _ray_host_oom(tb: Traceback, lines: list[str]) -> str | None:
    """Ray's memory-monitor sentence in a Ray wrapper's text or in the lines right after it (an actor's exit detail
    follows its class, id, pid and address, each on a line of its own)."""
    if not _RAY_WRAPPER.search(tb.exc_type.split("(", 1)[0]):
        return None
    after = _end_line(tb)
    for text in (tb.text or tb.message, "\n".join(lines[after : after + 2 * MAX_CONTINUATION])):
        m = _RAY_HOST_OOM.search(text)
        if m is not None:
            return m.group(0)
    return None


def _printed_inside(tb: Traceback, tracebacks: list[Traceback]) -> Traceback | None:
    """The traceback Ray printed under a wrapper's "ray::..." title: the next one, starting where the wrapper's
    text ends (or one line later)."""
    if tb.start_line is None or not _RAY_TASK_TITLE.search(tb.message):
        return None
    after = _end_line(tb)
    following = [other for other in tracebacks if other.start_line is not None and other.start_line >= after]
    nearest = min(following, key=lambda other: other.start_line or 0, default=None)
    return nearest if nearest is not None and nearest.start_line in (after, after + 1) else None


def _end_line(tb: Traceback) -> int:
    """The index of the first line after tb's text."""
    return (tb.start_line or 0) + tb.text.count("\n") + 1


def _carried(tb: Traceback, exc_type: str, message: str) -> Traceback:
    return Traceback(
        exc_type=exc_type,
        message=message,
        frames=tb.frames,
        text=tb.text,
        start_line=tb.start_line,
        chained_from=tb.chained_from,
        carried_by=tb,
    )


# words and shapes of an error report; anything else is prose, never a root cause
_ERRORISH = lazy_compile(
    r"error|exception|fail|fault|cannot|can'?t\b|can not|could ?n[o']t|unable|\bOOM\b|out of memory|\bcuda|\bnccl"
    r"|cublas|cudnn|assert|\bkill|\bhangs?\b|\bhanging\b|\bhung\b|\bstuck\b|deadlock|time[ds]?[ -]?out|not supported"
    r"|unsupported|crash|abort|core dump|segmentation|SIGSEGV|SIGABRT|illegal|invalid|undefined symbol|not found"
    r"|no such|no kernel image|mismatch|incompatible|denied|refused|\bdied\b|\bdead\b|\bnan\b|\bXid\b|traceback"
    r"|panic|\bnot (?:run|work|start|load)|n't (?:run|work|start|load)|报错|错误|失败|异常|崩溃",
    re.IGNORECASE,
)


def pseudo_root_cause(message: str | None, prose_ok: bool = False) -> Traceback | None:
    """A root cause made from a title or a one-line message ('[Bug]: CUDA error: ...').

    Text that does not read like an error report gives None unless prose_ok."""
    if not message or not message.strip():
        return None
    text = strip_tags(message.strip()).strip()
    if not text:
        return None
    exc = exception_in_prose(text) or pseudo_exception(text)
    if exc is not None:
        return _unless_wrapper(Traceback(exc_type=exc.exc_type, message=exc.message.strip(), text=message.strip()))
    if _WRAPPER_MESSAGES.search(text):
        return None
    if not prose_ok and not looks_like_error(text):
        return None  # prose ('hello', 'How do I serve Qwen on two GPUs?') names no error to build on
    return Traceback(exc_type="Error", message=text[:500], text=message.strip())


def _unless_wrapper(tb: Traceback) -> Traceback | None:
    """A wrapper ('Engine core initialization failed. See root cause above.') only points at the cause."""
    return None if is_wrapper(tb) else tb


def only_wrappers(facts_tracebacks: list[Traceback]) -> Traceback | None:
    """The last wrapper error when every exception found only reports a failure elsewhere, else None."""
    typed = [tb for tb in facts_tracebacks if tb.exc_type]
    if typed and all(is_wrapper(tb) for tb in typed):
        return typed[-1]
    return None


def wrapper_quotes_cause(tb: Traceback) -> bool:
    """Whether a wrapper's message carries the error itself ("Worker failed with error 'CUDA out of memory...'")."""
    return bool(_STRONG.search(tb.message))


def looks_like_error(text: str) -> bool:
    """Whether free text (a title, a one-line report) reads like an error report rather than prose."""
    return bool(_ERRORISH.search(text))


def _one_line_report(lines: list[str]) -> Traceback | None:
    meaningful = [line for line in lines if line.strip()]
    if len(meaningful) == 1:
        return pseudo_root_cause(meaningful[0])
    return None
