"""Python tracebacks and error lines as printed in a log: one grammar, read two ways.

The grammar: a header (`Traceback (most recent call last):`), frame lines (`File "p", line N, in f`)
with the source line shown under each, elisions (`[...]`, `...<3 lines>...`), the exception line
(`torch.OutOfMemoryError: CUDA out of memory...`) with a few continuation lines, and the sentences
that chain one exception to the next. Errors printed without a Python type (C++ aborts, Triton,
NCCL, CUDA driver errors) are read by `pseudo_exception`.

- `parse_tracebacks(lines)` reads cleaned lines (prefixes already removed, ranks merged) into typed
  `Traceback` records, including cut ones (no header, `[...]` joins, paths wrapped by GitHub) and
  error lines with no traceback at all. The analyzer picks the root cause among them.
- `TracebackFollower` decides, one raw line at a time, where a traceback in a streamed log ends,
  so the collector can copy each one out of a log too large to keep whole.

Exceptions that printed no Python type get a descriptive exc_type: "Triton Error [CUDA]",
"CUDA_ERROR_<NAME>", "NCCL error", "c10::Error", "Failed" (C++ checks) and "CUDA error".
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import accumulate

from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.logline import starts_record, starts_record_raw

HEADER = "Traceback (most recent call last):"
MAX_FRAMES = 300
MAX_TRACEBACKS = 200
MAX_CONTINUATION = 6  # message lines read after an exception line
MAX_CODE_LINES = 8  # lines after a frame read as its source before the traceback is given up
MAX_LINE_CHARS = 8192  # longer lines are not exception lines

_MODULE_ROOT = lazy_compile(r"(?:^|/)((?:vllm|torch|triton|transformers|ray)/.*)$")


@dataclass
class Frame:
    path: str  # as printed ("/usr/lib/python3.12/site-packages/vllm/v1/worker/gpu_model_runner.py")
    line: int | None
    function: str | None
    code: str | None = None  # the source line shown under the frame, if any

    @property
    def module(self) -> str:
        """Dotted module guessed from the path: '.../site-packages/vllm/v1/x.py' -> 'vllm.v1.x'."""
        p = self.path.replace("\\", "/")
        for marker in ("site-packages/", "dist-packages/"):
            if marker in p:
                p = p.rsplit(marker, 1)[1]
                break
        else:
            m = _MODULE_ROOT.search(p)
            if m:
                p = m.group(1)
        p = p.removesuffix(".py")
        return p.strip("/").replace("/", ".")


@dataclass
class Traceback:
    """One exception as printed: frames (outermost first), then 'ExcType: message'."""

    exc_type: str  # as printed: "torch.OutOfMemoryError", "RuntimeError", "torch.AcceleratorError"
    message: str  # first line(s) of the message
    frames: list[Frame] = field(default_factory=list)
    text: str = ""  # the cleaned traceback text, for quoting
    start_line: int | None = None  # index into the lines it was read from
    chained_from: Traceback | None = None  # the exception this one was raised from / during
    # the wrapper whose text carried this error (NCCL's "Last error: Cuda failure ...", vLLM's "Worker failed with
    # error '...'"): the error is known only through it
    carried_by: Traceback | None = None

    @property
    def short_type(self) -> str:
        return self.exc_type.rsplit(".", 1)[-1]


@dataclass
class ExceptionLine:
    exc_type: str  # 'torch.OutOfMemoryError', 'RayTaskError(RuntimeError)', 'NCCL error', ...
    message: str  # the rest of the line ('' for a bare 'KeyboardInterrupt')


_HEADER = lazy_compile(r"Traceback \(most recent call last\):?\s*$")
_FRAME = lazy_compile(r'^\s*File "(?P<path>[^"]{1,2000})", line (?P<line>\d{1,9})(?:, in (?P<func>.+?))?\s*$')
_FRAME_START = lazy_compile(r'^\s*File "[^"]*$')  # a frame line wrapped before its closing quote
# IPython's (Jupyter, Colab) frames: 'PATH in FUNC(ARGS)' (IPython 7) or 'File PATH:LINE, in FUNC(ARGS)' (IPython 8),
# the line of an IPython 7 frame given by its '--> LINE code' marker below it, among lines of context
_IPYTHON_FRAME = lazy_compile(
    r"^\s*(?:File\s+)?(?P<path>(?:/|[A-Za-z]:\\)[^\s:]{0,2000}\.py)(?::(?P<line>\d{1,9}),)?"
    r" in (?P<func>[^()\n]{1,200})\(.{0,2000}\)\s*$"
)
_IPYTHON_MARKER = lazy_compile(r"^-+>\s*(?P<line>\d{1,9})\s(?P<code>.*)$")
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
# a class whose name does not say it is an exception, printed with the module of errors that defines it
# (triton.runtime.errors.OutOfResources, triton.compiler.errors.CompilationError)
_IN_ERRORS_MODULE = lazy_compile(r"\.(?:errors|exceptions|exc)\.[A-Z]\w*$")

# error lines without a Python exception type, searched anywhere in a line
_PSEUDO = (
    (lazy_compile(r"terminate called after throwing an instance of '(?P<type>[^']{1,200})'"), None),
    (lazy_compile(r"Triton Error \[CUDA\]:\s*(?P<msg>.+)"), "Triton Error [CUDA]"),
    (lazy_compile(r"\bwith (?P<type>[A-Z]\w*Error)\(\s*['\"](?P<msg>.+?)['\"]?\)?\s*$"), None),
    (lazy_compile(r"(?<![\w.])(?P<type>CUDA_ERROR_[A-Z_]{2,60})\b(?::\s*(?P<msg>.*))?"), None),
    (lazy_compile(r"\bNCCL error(?: in:? [^:]{0,300})?:\s*(?P<msg>.+)"), "NCCL error"),
    (lazy_compile(r"(?:^|\s)Failed:\s*(?P<msg>(?:Cuda|CUDA|NCCL)?\s*(?:error\s+)?\S+:\d+ '[^']{1,200}')"), "Failed"),
    (lazy_compile(r"(?<![\w.:])(?P<msg>CUDA error: .+)"), "CUDA error"),
    # argparse's exit: 'PROG: error: MESSAGE', for its own messages (Lib/argparse.py); the rejected
    # arguments alone are telling enough to count without the 'error:' prefix
    (
        lazy_compile(
            r"\berror: (?P<msg>(?:the following arguments are required: |one of the arguments \S|ambiguous option: "
            r"|argument -{0,2}[\w.-]{1,100}(?:/-{1,2}[\w.-]{1,100})*: ).+)"
        ),
        "argparse error",
    ),
    (lazy_compile(r"(?<![\w-])(?P<msg>unrecognized arguments: \S.*)"), "argparse error"),
)
_PSEUDO_HINT_WORDS = (
    r"terminate called|Triton Error|Error\(|CUDA_ERROR_|NCCL error|Failed:|CUDA error:|unrecognized arguments: "
    r"|error: (?:the following|one of the|argument |ambiguous option)"
)
_PSEUDO_HINT = lazy_compile(_PSEUDO_HINT_WORDS)
_WHAT = lazy_compile(r"^\s*what\(\):\s*(?P<msg>.+)")
# What a line must contain for parse_tracebacks to read it as anything: a header, a frame, a chain
# sentence, a word that ends an exception's type (see _EXC_NAME, _BARE_EXC_NAMES) or a _PSEUDO_HINT.
_WORTH_READING = lazy_compile(
    r"Traceback|File \"|\.py(?::\d+,)? in |above exception|Error|Exception|Exit|Interrupt|Warning|Failure|Fault"
    r"|Timeout|Abort|Cancelled|Exhausted|Died|StopIteration|" + _PSEUDO_HINT_WORDS
)


# -- single lines ------------------------------------------------------------------------------
def is_chain_line(line: str) -> bool:
    """'The above exception was the direct cause...' or 'During handling of the above exception...'."""
    return bool(_CAUSE.match(line) or _DURING.match(line))


def parse_frame_line(line: str) -> Frame | None:
    """A frame line ('  File "/a/b.py", line 12, in f', or IPython's '/a/b.py in f(x)') as a Frame, else None."""
    m = _FRAME.match(line) or _IPYTHON_FRAME.match(line)
    if not m:
        return None
    func, number = m.group("func"), m.group("line")
    return Frame(m.group("path"), int(number) if number else None, func.strip() if func else None)


def parse_exception_line(line: str) -> ExceptionLine | None:
    """A line that is an exception ('torch.OutOfMemoryError: CUDA out of memory...'), else None."""
    if len(line) > MAX_LINE_CHARS or ":" not in line and line.strip() not in _BARE_EXC_NAMES:
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
    if not (_EXC_NAME.search(short) or short in _BARE_EXC_NAMES or _IN_ERRORS_MODULE.search(exc_type)):
        return None
    if short[:1].islower() and "Error" not in short:
        return None
    if m.group("inner"):
        exc_type += m.group("inner")
    return ExceptionLine(exc_type, message)


_EXCEPTION_IN_PROSE = lazy_compile(
    r"(?:^|[\s(`'\"])((?:[A-Za-z_]\w*\.){0,6}[A-Z]\w*(?:Error|Exception)\w*(?:\([\w.]+\))?:\s*.+)"
)


def exception_in_prose(text: str) -> ExceptionLine | None:
    """The first 'SomeError: message' named inside a sentence or title ('vllm serve fails with ValueError: x')."""
    m = _EXCEPTION_IN_PROSE.search(text)
    return parse_exception_line(m.group(1)) if m else None


def pseudo_exception(line: str, next_line: str = "") -> ExceptionLine | None:
    """An error printed without a Python traceback ('terminate called after throwing...'), else None.

    next_line: the line after, where a C++ exception prints its 'what(): ...' message.
    """
    if len(line) > MAX_LINE_CHARS:
        line = line[:MAX_LINE_CHARS]
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
        return ExceptionLine(exc_type, message)
    return None


# -- whole tracebacks from cleaned lines -------------------------------------------------------
def parse_tracebacks(lines: list[str], skip_lines: frozenset[int] = frozenset()) -> list[Traceback]:
    """Every exception printed in lines, in order; chained ones link to the exception they came from.

    skip_lines: indexes not to read (an issue title that names an error is not one in the log).
    """
    found: list[Traceback] = []
    n = len(lines)
    worth_reading = _lines_worth_reading(lines)
    i = 0
    pending_chain: Traceback | None = None
    while i < n and len(found) < MAX_TRACEBACKS:
        k = bisect_left(worth_reading, i)
        if k == len(worth_reading):
            break
        i = worth_reading[k]  # the lines skipped would each have been passed over
        line = lines[i]
        if i in skip_lines or not line:
            i += 1
            continue
        if is_chain_line(line):
            if found and (found[-1].start_line or 0) < i:
                pending_chain = found[-1]
            i += 1
            continue
        header = _HEADER.search(line)
        if header or _FRAME.match(line) or _FRAME_START.match(line) or _IPYTHON_FRAME.match(line):
            tb, end = _parse_one(lines, i, has_header=bool(header))
            if header and header.start() > 0:
                _pseudo_from_line(line[: header.start()], i, found)
            if tb is not None:
                tb.chained_from = pending_chain
                pending_chain = None
                found.append(tb)
            i = max(end, i + 1)
            continue
        exc = parse_exception_line(line)
        if exc is not None:
            tb, end = _with_continuation(lines, i, exc, frames=[], start=i)
            tb.chained_from = pending_chain
            pending_chain = None
            found.append(tb)
            i = end
            continue
        if _PSEUDO_HINT.search(line):
            _pseudo_from_line(line, i, found, lines)
        i += 1
    return found


def _lines_worth_reading(lines: list[str]) -> list[int]:
    """The indexes of the lines that hold a _WORTH_READING word, found in one search over the joined lines."""
    text = "\n".join(lines)
    ends = [total + k for k, total in enumerate(accumulate(map(len, lines)))]  # where each line's text ends
    found: list[int] = []
    pos = 0
    while (m := _WORTH_READING.search(text, pos)) is not None:
        k = bisect_left(ends, m.start())
        found.append(k)
        pos = ends[k] + 1
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
        frame = parse_frame_line(line)
        if frame is not None:
            since_frame = 0
            if len(frames) < MAX_FRAMES:
                frames.append(frame)
            i += 1
            continue
        if not line.strip() or _ELISION.match(line):
            i += 1
            continue
        exc = parse_exception_line(line)
        if exc is not None:
            return _with_continuation(lines, i, exc, frames, start)
        if _HEADER.search(line) or is_chain_line(line):
            break
        marker = _IPYTHON_MARKER.match(line) if frames and frames[-1].line is None else None
        if marker:
            frames[-1].line, frames[-1].code = int(marker.group("line")), marker.group("code").strip()
            since_frame += 1
            i += 1
            continue
        if frames and since_frame < MAX_CODE_LINES:
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
    lines: list[str], exc_index: int, exc: ExceptionLine, frames: list[Frame], start: int
) -> tuple[Traceback, int]:
    end = exc_index + 1
    n = len(lines)
    while end < n and end - exc_index <= MAX_CONTINUATION:
        line = lines[end]
        if not line.strip() or _is_structural(line) or starts_record(line) or parse_exception_line(line) is not None:
            break
        end += 1
    message = exc.message
    if not message.strip() and end > exc_index + 1:
        message = lines[exc_index + 1].strip()
    elif _is_validation_error(exc.exc_type, message):
        message = "\n".join([message.strip(), *_validation_error_lines(lines[exc_index + 1 : end])])
    text = "\n".join(lines[start:end])
    tb = Traceback(exc_type=exc.exc_type, message=message.strip(), frames=frames, text=text, start_line=start)
    return tb, end


# pydantic's ValidationError prints a count header, then each error below it (a field name, the error
# with a '[type=..., input_value=...]' tail, a help link): the errors are the message; vLLM's config
# classes are pydantic dataclasses, so their ValueErrors reach the log this way.
_VALIDATION_HEADER = lazy_compile(r"\d{1,6} validation errors? for \S")
_VALIDATION_HELP = lazy_compile(r"\s*For further information visit \S+\s*$")


def _is_validation_error(exc_type: str, message: str) -> bool:
    return exc_type.rsplit(".", 1)[-1] == "ValidationError" and bool(_VALIDATION_HEADER.match(message.strip()))


_VALIDATED_CLASS = lazy_compile(r"validation errors? for (?P<cls>\S{1,200})")


def first_validation_error(exc_type: str, message: str) -> str | None:
    """'ParallelConfig: Value error, World size (2) is larger ...': the class a pydantic ValidationError is about and
    its first error (a field's name is joined to the error under it), from a message read by parse_tracebacks;
    None for other exceptions and for a header with no error below it."""
    if not _is_validation_error(exc_type, message):
        return None
    header, *errors = [line.strip() for line in message.strip().splitlines() if line.strip()]
    m = _VALIDATED_CLASS.search(header)
    first: list[str] = []
    for line in errors:
        first.append(line)
        if " " in line:  # a location ('gpu_memory_utilization') is one word; the error under it is a sentence
            break
    if m is None or not first:
        return None
    return f"{m.group('cls')}: {' '.join(first)}"


def _validation_error_lines(continuation: list[str]) -> list[str]:
    """The error lines under a ValidationError's header, without help links and '[type=...]' tails."""
    out = []
    for line in continuation:
        if _VALIDATION_HELP.match(line):
            continue
        tail = line.find(" [type=")
        if tail >= 0 and line.rstrip().endswith("]"):
            line = line[:tail]
        if line.strip():
            out.append(line.strip())
    return out


def _is_structural(line: str) -> bool:
    return bool(_HEADER.search(line) or _FRAME.match(line) or is_chain_line(line) or _ELISION.match(line))


def _pseudo_from_line(line: str, index: int, found: list[Traceback], lines: list[str] | None = None) -> None:
    exc = pseudo_exception(line, lines[index + 1] if lines is not None and index + 1 < len(lines) else "")
    if exc is not None:
        found.append(Traceback(exc_type=exc.exc_type, message=exc.message, text=line.strip(), start_line=index))


# -- where a traceback ends in a raw, streamed log ---------------------------------------------
class TracebackFollower:
    """Follows one traceback through a raw log, a line at a time, and says where it ends.

    Feed it each line after the header with its writer's prefix removed. Frames run until the first
    line that is not indented (the exception line); then up to `max_message_lines` lines of message
    follow, unless a blank line, a new log record or a chain sentence comes first. After a chain
    sentence and at most two blank lines, only the next header (`restart`) continues the traceback.
    """

    def __init__(self, max_message_lines: int = 12) -> None:
        self.max_message_lines = max_message_lines
        self.state = "frames"  # "frames" | "message" | "chain"
        self.pending_blank = 0
        self.continuation = 0

    @property
    def awaits_chained_header(self) -> bool:
        return self.state == "chain"

    def restart(self) -> None:
        """The header of a chained exception arrived: follow its frames."""
        self.state, self.pending_blank, self.continuation = "frames", 0, 0

    def feed(self, rest: str) -> tuple[str, ...] | None:
        """The lines to keep for REST (none for a tolerated blank line), or None: the traceback ended before it."""
        blank = not rest.strip()
        if self.state == "frames":
            if blank:
                return None
            if not rest[0].isspace():
                self.state = "message"
            return (rest,)
        if is_chain_line(rest):
            self.state, self.pending_blank = "chain", 0
            return ("", rest.strip(), "")
        if blank:
            self.pending_blank += 1
            return () if self.pending_blank <= 2 else None
        if self.state == "chain" or self.pending_blank or starts_record_raw(rest):
            return None
        if self.continuation >= self.max_message_lines:
            return None
        self.continuation += 1
        return (rest,)
