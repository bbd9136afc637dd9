"""Find exceptions in cleaned log lines and pick the one that is the root cause.

Handles whole Python tracebacks, cut ones (no header, `[...]` joins, paths wrapped by GitHub),
chained exceptions, and error lines printed without a traceback (torch, Triton, cupy, NCCL, C++
`c10::Error` aborts). Wrapper errors that only report that something failed elsewhere are never
chosen as the root cause.

Exceptions that printed no Python type get a descriptive exc_type: "Triton Error [CUDA]",
"CUDA_ERROR_<NAME>", "NCCL error", "c10::Error", "Failed" (C++ checks), "CUDA error", and "Error"
for a bare message (an issue title, a one-line report).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vllm_bug.analyzer.facts import Frame, Traceback
from vllm_bug.analyzer.lazyre import lazy_compile

MAX_FRAMES = 300
MAX_TRACEBACKS = 200
MAX_CONTINUATION = 6

_HEADER = lazy_compile(r"Traceback \(most recent call last\):?\s*$")
_FRAME = lazy_compile(r'^\s*File "(?P<path>[^"]{1,2000})", line (?P<line>\d{1,9})(?:, in (?P<func>.+?))?\s*$')
_FRAME_START = lazy_compile(r'^\s*File "[^"]*$')  # a frame line wrapped before its closing quote
_CAUSE = lazy_compile(r"^\s*The above exception was the direct cause of the following exception:?\s*$")
_DURING = lazy_compile(r"^\s*During handling of the above exception, another exception occurred:?\s*$")
_ELISION = lazy_compile(r"^\s*(?:\[\s*\.\.\.\s*\]|\.\.\.|…|\.\.\.<\d+ lines>\.\.\.)\s*$")
_EXC_LINE = lazy_compile(
    r"^\s*(?P<type>(?:[A-Za-z_]\w{0,80}\.){0,8}[A-Za-z_]\w{0,80})(?P<inner>\([\w.]{1,120}\))?"
    r"(?::[ \t]?(?P<msg>.*)|\s*)$"
)
_EXC_NAME = lazy_compile(
    r"(?:Error|Exception|Exit|Interrupt|Warning|Failure|Fault|Timeout|Abort|Cancelled|Exhausted|Died)\w*$"
    r"|^\w*Error\w*$"
)
_BARE_EXC_NAMES = {"KeyboardInterrupt", "SystemExit", "GeneratorExit", "StopIteration", "CancelledError"}

# error lines without a Python exception type, searched anywhere in a line
_PSEUDO = (
    (lazy_compile(r"terminate called after throwing an instance of '(?P<type>[^']{1,200})'"), None),
    (lazy_compile(r"Triton Error \[CUDA\]:\s*(?P<msg>.+)"), "Triton Error [CUDA]"),
    (lazy_compile(r"\bwith (?P<type>[A-Z]\w*Error)\(\s*['\"](?P<msg>.+?)['\"]?\)?\s*$"), None),
    (lazy_compile(r"(?<![\w.])(?P<type>CUDA_ERROR_[A-Z_]{2,60})\b(?::\s*(?P<msg>.*))?"), None),
    (lazy_compile(r"\bNCCL error(?: in:? [^:]{0,300})?:\s*(?P<msg>.+)"), "NCCL error"),
    (lazy_compile(r"(?:^|\s)Failed:\s*(?P<msg>(?:Cuda|CUDA|NCCL)?\s*(?:error\s+)?\S+:\d+ '[^']{1,200}')"), "Failed"),
    (lazy_compile(r"(?<![\w.:])(?P<msg>CUDA error: .+)"), "CUDA error"),
)
_PSEUDO_HINT = lazy_compile(r"terminate called|Triton Error|Error\(|CUDA_ERROR_|NCCL error|Failed:|CUDA error:")
_WHAT = lazy_compile(r"^\s*what\(\):\s*(?P<msg>.+)")

_WRAPPER_TYPES = lazy_compile(
    r"(?:^|\.)(?:EngineDeadError|EngineGenerateError|CancelledError|KeyboardInterrupt|SystemExit|GeneratorExit"
    r"|RayTaskError|RayActorError|ActorDiedError|ActorUnavailableError|ChildFailedError|ProcessRaisedException"
    r"|ProcessExitedException|BrokenProcessPool)$"
)
_WRAPPER_MESSAGES = lazy_compile(
    r"Engine core initialization failed|EngineCore encountered an issue|died unexpectedly"
    r"|RPC call to \S+ timed out|please check the stack trace above|See (?:the )?(?:root cause|stack trace)"
    r"|root cause (?:above|below)|Engine process failed to start|initialization failed due to an exception in a background process"
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


@dataclass
class _Found:
    tb: Traceback
    order: int  # position in the input
    standalone: bool


def parse_tracebacks(lines: list[str], skip_lines: frozenset[int] = frozenset()) -> list[Traceback]:
    """Every exception printed in lines, in order; chained ones link to the exception they came from."""
    return [found.tb for found in _scan(lines, skip_lines)]


def _scan(lines: list[str], skip_lines: frozenset[int]) -> list[_Found]:
    found: list[_Found] = []
    n = len(lines)
    i = 0
    pending_chain: Traceback | None = None
    while i < n and len(found) < MAX_TRACEBACKS:
        line = lines[i]
        if i in skip_lines or not line:
            i += 1
            continue
        if _CAUSE.match(line) or _DURING.match(line):
            if found and found[-1].order < i:
                pending_chain = found[-1].tb
            i += 1
            continue
        header = _HEADER.search(line)
        if header or _FRAME.match(line) or _FRAME_START.match(line):
            tb, end = _parse_one(lines, i, has_header=bool(header))
            if header and header.start() > 0:
                _pseudo_from_line(line[: header.start()], i, found)
            if tb is not None:
                tb.chained_from = pending_chain
                pending_chain = None
                found.append(_Found(tb, i, standalone=False))
            i = max(end, i + 1)
            continue
        exc = _exception_line(line)
        if exc is not None:
            tb, end = _with_continuation(lines, i, exc[0], exc[1], frames=[], start=i)
            tb.chained_from = pending_chain
            pending_chain = None
            found.append(_Found(tb, i, standalone=True))
            i = end
            continue
        if _PSEUDO_HINT.search(line):
            _pseudo_from_line(line, i, found, lines)
        i += 1
    return found


def _parse_one(lines: list[str], start: int, has_header: bool) -> tuple[Traceback | None, int]:
    frames: list[Frame] = []
    since_frame = 0
    i = start + 1 if has_header else start
    n = len(lines)
    while i < n:
        line = lines[i]
        if _FRAME_START.match(line) and i + 1 < n and not _FRAME.match(line):
            joined = line.rstrip() + lines[i + 1].strip()
            if _FRAME.match(joined):
                line = joined
                i += 1
        m = _FRAME.match(line)
        if m:
            since_frame = 0
            if len(frames) < MAX_FRAMES:
                func = m.group("func")
                frames.append(Frame(m.group("path"), int(m.group("line")), func.strip() if func else None))
            i += 1
            continue
        if not line.strip() or _ELISION.match(line):
            i += 1
            continue
        exc = _exception_line(line)
        if exc is not None:
            return _with_continuation(lines, i, exc[0], exc[1], frames, start)
        if _HEADER.search(line) or _CAUSE.match(line) or _DURING.match(line):
            break
        if frames and since_frame < 8:
            if frames[-1].code is None:
                frames[-1].code = line.strip()
            since_frame += 1
            i += 1
            continue
        break
    if not frames:
        return None, i
    text = "\n".join(lines[start:i])
    return Traceback(exc_type="", message="", frames=frames, text=text, start_line=start), i


def _with_continuation(
    lines: list[str], exc_index: int, exc_type: str, message: str, frames: list[Frame], start: int
) -> tuple[Traceback, int]:
    end = exc_index + 1
    n = len(lines)
    while end < n and end - exc_index <= MAX_CONTINUATION:
        line = lines[end]
        if not line.strip() or _is_structural(line) or _NEW_RECORD.match(line) or _exception_line(line) is not None:
            break
        end += 1
    if not message.strip() and end > exc_index + 1:
        message = lines[exc_index + 1].strip()
    text = "\n".join(lines[start:end])
    tb = Traceback(exc_type=exc_type, message=message.strip(), frames=frames, text=text, start_line=start)
    return tb, end


# A line that starts a new log record, so it cannot continue an exception's message: glog/c10 headers
# ('W1126 22:56:40.131000 722 file.py:1012]', '[W1126 22:56:39.2 ProcessGroupNCCL.cpp:1575]', also after
# '[rank0]:'), logging levels with a date or a colon, ISO timestamps, NCCL's 'host:pid:tid [dev]' records.
_NEW_RECORD = lazy_compile(
    r"^\s*(?:\[rank\d+\]:\s*)?(?:\[?[IWEF]\d{4}\s+\d\d:\d\d:\d\d"
    r"|(?:INFO|WARNING|WARN|ERROR|DEBUG|CRITICAL|FATAL)(?:\s+\d\d-\d\d\s+\d\d:|:|\s+\[)"
    r"|\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d"
    r"|[\w.-]+:\d+:\d+ \[\d+\] )"
)


def _is_structural(line: str) -> bool:
    return bool(
        _HEADER.search(line) or _FRAME.match(line) or _CAUSE.match(line) or _DURING.match(line) or _ELISION.match(line)
    )


def _exception_line(line: str) -> tuple[str, str] | None:
    """('torch.OutOfMemoryError', 'CUDA out of memory...') for a line that is an exception, else None."""
    if len(line) > 8192 or ":" not in line and not line.strip() in _BARE_EXC_NAMES:
        return None
    m = _EXC_LINE.match(line)
    if not m:
        return None
    exc_type = m.group("type")
    short = exc_type.rsplit(".", 1)[-1]
    message = m.group("msg")
    if message is None:
        if short not in _BARE_EXC_NAMES:
            return None
        message = ""
    if not (_EXC_NAME.search(short) or short in _BARE_EXC_NAMES):
        return None
    if short[:1].islower() and "Error" not in short:
        return None
    if m.group("inner"):
        exc_type += m.group("inner")
    return exc_type, message


def _pseudo_from_line(line: str, index: int, found: list[_Found], lines: list[str] | None = None) -> None:
    exc = pseudo_exception(line, lines[index + 1] if lines is not None and index + 1 < len(lines) else "")
    if exc is not None:
        tb = Traceback(exc_type=exc[0], message=exc[1], text=line.strip(), start_line=index)
        found.append(_Found(tb, index, standalone=True))


def pseudo_exception(line: str, next_line: str = "") -> tuple[str, str] | None:
    """An error printed without a Python traceback: (exc_type, message) or None."""
    if len(line) > 8192:
        line = line[:8192]
    for rx, fixed_type in _PSEUDO:
        m = rx.search(line)
        if not m:
            continue
        groups = m.groupdict()
        exc_type = fixed_type or groups.get("type") or "Error"
        message = (groups.get("msg") or "").strip()
        if exc_type.startswith("c10::") or "::" in exc_type:
            what = _WHAT.match(next_line)
            message = what.group("msg").strip() if what else message
        if fixed_type == "Triton Error [CUDA]":
            message = "Triton Error [CUDA]: " + message
        return exc_type, message
    return None


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


def _rank(found: _Found) -> tuple[int, int]:
    tb = found.tb
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
    return tier, found.order


def pick_root_cause(
    lines: list[str], tracebacks: list[Traceback] | None = None, title: str | None = None, title_line: int | None = None
) -> Traceback | None:
    """The earliest real error, preferring GPU/CUDA-flavoured ones; wrappers are skipped.

    Falls back to a pseudo exception made from the title or a one-line report.
    """
    if tracebacks is None:
        tracebacks = parse_tracebacks(lines)
    candidates = [
        _Found(tb, tb.start_line if tb.start_line is not None else 0, standalone=not tb.frames)
        for tb in tracebacks
        if tb.exc_type and not is_wrapper(tb) and tb.start_line != title_line
    ]
    candidates += [
        _Found(quoted, quoted.start_line if quoted.start_line is not None else 0, standalone=True)
        for quoted in map(quoted_by_wrapper, tracebacks)
        if quoted is not None and quoted.start_line != title_line
    ]
    if candidates:
        chosen = min(candidates, key=_rank).tb
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
    exc = _exception_line(quoted) or pseudo_exception(quoted)
    exc_type, message = exc if exc is not None else ("Error", quoted)
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
_TITLE_TAG = lazy_compile(r"^\s*(?:\[[^\]]{1,40}\]\s*:?\s*)+")


def pseudo_root_cause(message: str | None, prose_ok: bool = False) -> Traceback | None:
    """A root cause made from a title or a one-line message ('[Bug]: CUDA error: ...').

    Text that does not read like an error report gives None unless prose_ok."""
    if not message or not message.strip():
        return None
    text = _TITLE_TAG.sub("", message.strip()).strip()
    if not text:
        return None
    m = re.search(r"(?:^|[\s(`'\"])((?:[A-Za-z_]\w*\.){0,6}[A-Z]\w*(?:Error|Exception)\w*(?:\([\w.]+\))?:\s*.+)", text)
    if m:
        exc = _exception_line(m.group(1))
        if exc is not None:
            return _unless_wrapper(Traceback(exc_type=exc[0], message=exc[1].strip(), text=message.strip()))
    exc = pseudo_exception(text)
    if exc is not None:
        return _unless_wrapper(Traceback(exc_type=exc[0], message=exc[1], text=message.strip()))
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
