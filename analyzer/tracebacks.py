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
    r"|RayTaskError|RayActorError|ActorDiedError|ActorUnavailableError|ChildFailedError|ProcessRaisedException"
    r"|ProcessExitedException|BrokenProcessPool)$"
)
_WRAPPER_MESSAGES = lazy_compile(
    r"Engine core initialization failed|EngineCore encountered an issue|died unexpectedly"
    r"|RPC call to \S+ timed out|please check the stack trace above|See (?:the )?(?:root cause|stack trace)"
    r"|root cause (?:above|below)|Engine process failed to start"
    r"|initialization failed due to an exception in a background process"
    r"|Call to collective_rpc method failed|Background process failed|worker .{0,40} failed with error",
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
