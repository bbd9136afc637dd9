"""Log capture: a bounded copy of a (possibly huge) log, plus every Python traceback in all of it.

The log is streamed, never held whole: the first HEAD_BYTES and the last TAIL_BYTES are kept
(cut at line boundaries, with a marker saying how much was left out), while every line of the
whole stream is scanned for tracebacks, so a traceback in the cut middle still reaches the bundle.

Text is decoded as UTF-8 with replacement; ANSI colour codes are removed; a line redrawn with
carriage returns (progress bars) keeps only its last drawing; NUL and other control bytes are
removed and counted. A log that is mostly control bytes (a compressed or binary file) is refused
(exit 3), as is an empty one, a missing or unreadable file, a directory, and a terminal on stdin.
"""

from __future__ import annotations

import io
import os
import re
import stat
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from vllm_bug.errors import UnreadableInput, UsageProblem
from vllm_bug.formats.ansi import TERMINAL, has_control, strip_ansi, strip_control
from vllm_bug.formats.magic import MAX_MAGIC_BYTES, sniff
from vllm_bug.formats.traceback import HEADER, TracebackFollower

HEAD_BYTES = 64 << 10
TAIL_BYTES = 448 << 10
CUT_MARGIN = 8 << 10  # kept beyond each cut of the log, so that a line cut in half is redacted before the cut
CHUNK_BYTES = 1 << 20
MAX_SCAN_BYTES = 1 << 30
FIRST_BLOCK_BYTES = 64 << 10  # enough of a log to tell text from binary data
MAX_CARRY_BYTES = 1 << 20
BINARY_CONTROL_RATIO = 0.05

MAX_TRACEBACKS = 64
MAX_TRACEBACKS_HEAD = 48
TRACEBACK_CHAR_CAP = 32 << 10
TRACEBACK_HEAD_LINES = 300
TRACEBACK_TAIL_LINES = 200
LINE_CHAR_CAP = 2000
MESSAGE_CONTINUATION_LINES = 12
IDLE_LINES_BEFORE_CLOSE = 200

HEADER_BYTES = HEADER.encode()

_TIME_LIKE = re.compile(r"(?<!\d)\d+(?:[:\-/.]\d+)+(?:[ T]\d+(?:[:.]\d+)+)?")
_DIGIT = re.compile(r"\d")
# bytes that plain text may contain: printable, UTF-8 lead/continuation bytes, \t \n \r \f \b ESC
_TEXT_BYTES = bytes(range(0x20, 0x100)) + b"\t\n\r\x0c\x08\x1b"


# ------------------------------------------------------------------ text cleaning


def clean_text(raw: bytes | str) -> str:
    """Decode, drop ANSI codes and control characters, keep only the last drawing of \\r-redrawn lines."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = text.replace("\r\n", "\n")
    text = strip_ansi(text, TERMINAL)
    if "\r" in text:
        text = "\n".join(_last_drawing(line) for line in text.split("\n"))
    return strip_control(text)


def _last_drawing(line: str) -> str:
    if "\r" not in line:
        return line
    parts = [p for p in line.split("\r") if p.strip()]
    return parts[-1] if parts else ""


# ------------------------------------------------------------------ traceback extraction


def _prefix_key(prefix: str) -> str:
    """Mask timestamps (keeping the length) so lines of one log record share one prefix key."""
    return _TIME_LIKE.sub(lambda m: _DIGIT.sub("0", m.group()), prefix)


@dataclass
class _Block:
    """One traceback being copied out of the stream: where it ends is the follower's call, what is kept here."""

    prefix: str
    key: str
    head: list[str] = field(default_factory=list)
    tail: deque = field(default_factory=lambda: deque(maxlen=TRACEBACK_TAIL_LINES))
    dropped: int = 0
    follower: TracebackFollower = field(default_factory=lambda: TracebackFollower(MESSAGE_CONTINUATION_LINES))
    last_seen: int = 0

    def add(self, line: str) -> None:
        line = _cut_line(line)
        if len(self.head) < TRACEBACK_HEAD_LINES:
            self.head.append(line)
            return
        if len(self.tail) == self.tail.maxlen:
            self.dropped += 1
        self.tail.append(line)

    def accept(self, rest: str) -> bool:
        """Feed the line (prefix removed); False means the traceback ended before this line."""
        kept = self.follower.feed(rest)
        if kept is None:
            return False
        for line in kept:
            self.add(line)
        return True

    def text(self) -> str:
        lines = list(self.head)
        if self.dropped:
            lines.append(f"  [... vllm-bug: {self.dropped} traceback lines omitted ...]")
        lines.extend(self.tail)
        text = "\n".join(lines).rstrip()
        if len(text) > TRACEBACK_CHAR_CAP:  # cut at line ends (each line is at most LINE_CHAR_CAP)
            from vllm_bug.schema.redact import cut_text

            text = cut_text(text, TRACEBACK_CHAR_CAP, note="  [... vllm-bug: {n} characters omitted ...]")
        return text


def _cut_line(line: str) -> str:
    """A traceback line within LINE_CHAR_CAP: a longer one is redacted before it is cut."""
    if len(line) <= LINE_CHAR_CAP:
        return line
    from vllm_bug.schema.redact import cut_text

    return cut_text(line, LINE_CHAR_CAP, keep="head")


class TracebackExtractor:
    """Line-fed state machine that finds Python tracebacks, even interleaved across ranks/processes.

    A traceback's log prefix (``[rank0]: ``, ``(VllmWorker rank=1 pid=7) ERROR ... [x.py:12] ``) is
    taken from its first line; later lines carrying the same prefix belong to it, so per-process
    blocks interleaved in one log are kept apart. Copies that differ only in numbers (ranks, pids,
    line numbers) are stored once, with a count.
    """

    def __init__(self) -> None:
        self.open: dict[str, _Block] = {}
        self.unique: dict[str, list[Any]] = {}
        self.late: deque = deque(maxlen=MAX_TRACEBACKS - MAX_TRACEBACKS_HEAD)
        self.found = 0
        self.dropped_unique = 0
        self.lines_seen = 0

    @property
    def busy(self) -> bool:
        return bool(self.open)

    def feed(self, line: str) -> None:
        self.lines_seen += 1
        if "\x1b" in line or "\r" in line or has_control(line):
            line = clean_text(line)
        start = line.find(HEADER)
        if start >= 0:
            prefix = line[:start]
            key = _prefix_key(prefix)
            block = self.open.get(key)
            if block is not None and block.follower.awaits_chained_header:
                block.last_seen = self.lines_seen
                block.add(HEADER)
                block.follower.restart()
                return
            if block is not None:
                self._close(key)
            block = _Block(prefix=prefix, key=key, last_seen=self.lines_seen)
            block.add(HEADER)
            self.open[key] = block
            return
        if not self.open:
            return
        block = self._owner(line)
        if block is not None:
            block.last_seen = self.lines_seen
            if not block.accept(line[len(block.prefix) :]):
                self._close(block.key)
        for key in [k for k, b in self.open.items() if self.lines_seen - b.last_seen > IDLE_LINES_BEFORE_CLOSE]:
            self._close(key)

    def _owner(self, line: str) -> _Block | None:
        masked = None
        for key in sorted(self.open, key=len, reverse=True):
            if not key:
                return self.open[key]
            if line.startswith(self.open[key].prefix):
                return self.open[key]
            if masked is None:
                masked = _prefix_key(line[: len(key) + 8])
            if masked.startswith(key):
                return self.open[key]
        return None

    def _close(self, key: str) -> None:
        block = self.open.pop(key)
        text = block.text()
        if text.strip() == HEADER:
            return
        self.found += 1
        dedupe = _DIGIT.sub("0", text)
        if dedupe in self.unique:
            self.unique[dedupe][1] += 1
            return
        for entry in self.late:
            if entry[2] == dedupe:
                entry[1] += 1
                return
        if len(self.unique) < MAX_TRACEBACKS_HEAD:
            self.unique[dedupe] = [text, 1]
            return
        if len(self.late) == self.late.maxlen:
            self.dropped_unique += 1
        self.late.append([text, 1, dedupe])

    def finish(self) -> list[tuple[str, int]]:
        for key in list(self.open):
            self._close(key)
        entries = [(text, count) for text, count in self.unique.values()]
        entries.extend((text, count) for text, count, _ in self.late)
        return entries


def _merge_tracebacks(extractors: list[TracebackExtractor]) -> tuple[list[tuple[str, int]], int, int]:
    """Entries of several streams' extractors, copies across streams counted once; (entries, found, dropped)."""
    merged: dict[str, list[Any]] = {}
    finished = [extractor.finish() for extractor in extractors]
    dropped = sum(e.dropped_unique for e in extractors)
    for entries in finished:
        for text, count in entries:
            key = _DIGIT.sub("0", text)
            if key in merged:
                merged[key][1] += count
            elif len(merged) < MAX_TRACEBACKS:
                merged[key] = [text, count]
            else:
                dropped += 1
    entries = [(text, count) for text, count in merged.values()]
    return entries, sum(e.found for e in extractors), dropped


# ------------------------------------------------------------------ streaming capture


def _last_key_marker(data: bytes) -> str | None:
    """ "BEGIN" or "END": the last private key marker line in `data`, or None when it holds none."""
    at = data.rfind(b"PRIVATE KEY")
    while at >= 0:
        line_start = data.rfind(b"\n", 0, at) + 1
        before = data[line_start:at]
        if b"-----BEGIN" in before:
            return "BEGIN"
        if b"-----END" in before:
            return "END"
        at = data.rfind(b"PRIVATE KEY", 0, line_start)
    return None


@dataclass
class LogCapture:
    source: str
    name: str | None
    text: str
    original_bytes: int
    original_lines: int
    truncated: bool
    omitted_bytes: int = 0
    omitted_lines: int = 0
    tracebacks: list[str] = field(default_factory=list)
    traceback_copies: list[int] = field(default_factory=list)
    tracebacks_found: int = 0
    tracebacks_dropped: int = 0
    removed_nul_bytes: int = 0
    removed_control_bytes: int = 0
    scan_stopped_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "name": self.name,
            "original_bytes": self.original_bytes,
            "original_lines": self.original_lines,
            "truncated": self.truncated,
            "text": self.text,
            "tracebacks": self.tracebacks,
            "traceback_copies": self.traceback_copies,
            "tracebacks_found": self.tracebacks_found,
        }
        if self.truncated:
            out["omitted_bytes"] = self.omitted_bytes
            out["omitted_lines"] = self.omitted_lines
        for key in ("tracebacks_dropped", "removed_nul_bytes", "removed_control_bytes"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.scan_stopped_at is not None:
            out["scan_stopped_at"] = self.scan_stopped_at
        return out


class LogAccumulator:
    """Feed bytes in any chunking; keeps head and tail, counts lines and scans for tracebacks."""

    def __init__(self, head_bytes: int = HEAD_BYTES, tail_bytes: int = TAIL_BYTES) -> None:
        self.head_bytes, self.tail_bytes = head_bytes, tail_bytes
        self.whole = bytearray()
        self.head: bytes | None = None
        self.tail = bytearray()
        self.total = 0
        self.newlines = 0
        self.last_byte = b""
        self.nul = 0
        self.control = 0
        self.carries: dict[str, bytes] = {}
        self.extractors: dict[str, TracebackExtractor] = {}
        self.magic = b""
        self.head_margin = b""  # the bytes right after the head
        self.key_open = False  # whether a private key block is open at the end of what was cut away
        self._key_carry = b""

    @property
    def truncated(self) -> bool:
        return self.head is not None

    def feed(self, data: bytes, stream: str = "") -> None:
        """Add bytes; stream names the pipe they came from (each keeps its own traceback scan)."""
        if not data:
            return
        if len(self.magic) < MAX_MAGIC_BYTES:
            self.magic += data[: MAX_MAGIC_BYTES - len(self.magic)]
        self.total += len(data)
        self.newlines += data.count(b"\n")
        self.last_byte = data[-1:]
        odd = data.translate(None, _TEXT_BYTES)
        if odd:
            nul = odd.count(0)
            self.nul += nul
            self.control += len(odd) - nul
        self._keep(data)
        self._scan(data, stream)

    def _keep(self, data: bytes) -> None:
        if self.head is None:
            self.whole += data
            if len(self.whole) > self.head_bytes + self.tail_bytes:
                self.head = bytes(self.whole[: self.head_bytes])
                self.head_margin = bytes(self.whole[self.head_bytes : self.head_bytes + CUT_MARGIN])
                self._note_key_markers(self.head)
                self.tail = bytearray(self.whole[self.head_bytes :])
                self.whole = bytearray()
        else:
            self.tail += data
        if self.head is not None and len(self.tail) > 2 * self.tail_bytes:
            dropped = len(self.tail) - self.tail_bytes - CUT_MARGIN
            self._note_key_markers(bytes(self.tail[:dropped]))
            del self.tail[:dropped]

    def _note_key_markers(self, data: bytes) -> None:
        """Follow whether the bytes cut away so far end inside a private key block."""
        chunk = self._key_carry + data
        self._key_carry = chunk[-128:]
        last = _last_key_marker(chunk)
        if last is not None:
            self.key_open = last == "BEGIN"

    def _scan(self, data: bytes, stream: str) -> None:
        segment = self.carries.get(stream, b"") + data
        cut = segment.rfind(b"\n") + 1
        if cut == 0:
            if len(segment) <= MAX_CARRY_BYTES:
                self.carries[stream] = segment
                return
            cut = len(segment)
        self.carries[stream] = segment[cut:]
        self._scan_lines(segment[:cut], stream)

    def _scan_lines(self, segment: bytes, stream: str) -> None:
        extractor = self.extractors.get(stream)
        if extractor is None:
            extractor = self.extractors[stream] = TracebackExtractor()
        pos, end = 0, len(segment)
        while pos < end:
            if not extractor.busy:
                hit = segment.find(HEADER_BYTES, pos)
                if hit < 0:
                    return
                pos = segment.rfind(b"\n", pos, hit) + 1 or pos
            stop = segment.find(b"\n", pos)
            stop = end if stop < 0 else stop
            line = segment[pos : min(stop, pos + 4 * LINE_CHAR_CAP)]
            extractor.feed(line.decode("utf-8", errors="replace").rstrip("\r"))
            pos = stop + 1

    def finish(self, source: str, name: str | None, scan_stopped_at: int | None = None) -> LogCapture:
        for stream, carry in list(self.carries.items()):
            if carry:
                self._scan_lines(carry, stream)
        self.carries = {}
        entries, found, dropped = _merge_tracebacks(list(self.extractors.values()))
        lines = self.newlines + (1 if self.total and self.last_byte != b"\n" else 0)
        capture = LogCapture(
            source=source,
            name=name,
            text="",
            original_bytes=self.total,
            original_lines=lines,
            truncated=self.truncated,
            tracebacks=[text for text, _ in entries],
            traceback_copies=[count for _, count in entries],
            tracebacks_found=found,
            tracebacks_dropped=dropped,
            removed_nul_bytes=self.nul,
            removed_control_bytes=self.control,
            scan_stopped_at=scan_stopped_at,
        )
        if not self.truncated:
            capture.text = clean_text(bytes(self.whole))
            return capture
        head, head_text = self._head_part()
        tail, tail_text = self._tail_part()
        capture.omitted_bytes = self.total - len(head) - len(tail)
        tail_lines = tail.count(b"\n") + (1 if tail and not tail.endswith(b"\n") else 0)
        capture.omitted_lines = max(0, lines - head.count(b"\n") - tail_lines)
        marker = (
            f"[... vllm-bug: {capture.omitted_bytes:,} bytes ({capture.omitted_lines:,} lines) of the log "
            f"omitted here; tracebacks from them are kept in log.tracebacks ...]\n"
        )
        capture.text = head_text + ("" if head_text.endswith("\n") or not head_text else "\n") + marker + tail_text
        return capture

    def _head_part(self) -> tuple[bytes, str]:
        """The head up to its last line end, and its text; a head that is one long line is redacted before it is cut."""
        head = self.head or b""
        cut = head.rfind(b"\n") + 1
        if cut:
            return head[:cut], clean_text(head[:cut])
        from vllm_bug.schema.redact import cut_text

        margin = self.head_margin
        line_end = margin.find(b"\n")
        window = head + (margin[:line_end] if line_end >= 0 else margin)
        return head, cut_text(clean_text(window), len(clean_text(head)), keep="head", ends_cut=line_end < 0)

    def _tail_part(self) -> tuple[bytes, str]:
        """The tail from its first whole line, and its text. Lines of a key block that was open where the
        log was cut go with the cut; a tail that is one long line is redacted before it is cut."""
        tail = bytes(self.tail[-self.tail_bytes :])
        before = bytes(self.tail[: -self.tail_bytes]) if len(self.tail) > self.tail_bytes else b""
        nl = tail.find(b"\n")
        if not 0 <= nl < len(tail) - 1:
            from vllm_bug.schema.redact import cut_text

            line_start = before.rfind(b"\n") + 1
            window = before[line_start:] + tail
            return tail, cut_text(clean_text(window), len(clean_text(tail)), keep="tail", starts_cut=line_start == 0)
        self._note_key_markers(before + tail[: nl + 1])
        tail = tail[nl + 1 :]
        if self.key_open:
            from vllm_bug.schema.redact import key_block_end

            line_end = tail.find(b"\n", key_block_end(tail.decode("latin-1")))
            tail = tail[line_end + 1 :] if line_end >= 0 else b""
        return tail, clean_text(tail)

    def binary_problem(self) -> str | None:
        """Why this stream cannot be used as a text log, or None."""
        file_type = sniff(self.magic)
        if file_type is not None and file_type.compressed:
            return f"is {file_type.kind}-compressed; decompress it first"
        if self.total == 0:
            return "is empty"
        text_bytes = self.total - self.nul
        if text_bytes == 0:
            return "holds nothing but NUL bytes"
        if self.control / text_bytes > BINARY_CONTROL_RATIO:
            share = 100.0 * self.control / text_bytes
            return f"looks binary ({share:.0f}% control bytes), not a text log"
        return None


# ------------------------------------------------------------------ reading --log


def open_log(spec: str) -> tuple[BinaryIO, str, str | None]:
    """Open --log FILE or '-' for reading: (stream, source, name). Raises a one-line error."""
    if spec == "-":
        stream = sys.stdin.buffer
        if stream.isatty():
            raise UsageProblem(
                "--log -: standard input is a terminal; pipe the log in, e.g. "
                "vllm serve ... 2>&1 | vllm-bug collect --log -"
            )
        return stream, "stdin", None
    path = Path(spec)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UnreadableInput(f"--log {spec}: no such file") from None
    except OSError as exc:
        raise UnreadableInput(f"--log {spec}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise UnreadableInput(f"--log {spec} is a directory; give the log file")
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by read_log
    except PermissionError:
        raise UnreadableInput(f"--log {spec}: permission denied") from None
    except OSError as exc:
        raise UnreadableInput(f"--log {spec}: cannot read ({exc.strerror or exc})") from None
    return stream, "file", str(path)


def read_stream(stream: BinaryIO, source: str, name: str | None, label: str) -> LogCapture:
    """Stream the log through a LogAccumulator; refuse (exit 3) when nothing usable is in it."""
    acc = LogAccumulator()
    stopped_at = None
    judged = False
    try:
        while True:
            chunk = stream.read(CHUNK_BYTES)
            if not chunk:
                break
            acc.feed(chunk)
            if not judged and acc.total >= FIRST_BLOCK_BYTES:  # binary data is refused from its start, not its end
                judged = True
                _refuse_binary(acc, label)
            if acc.total >= MAX_SCAN_BYTES:
                stopped_at = acc.total
                _read_last_part(stream, acc)
                break
    except OSError as exc:
        raise UnreadableInput(f"{label}: read failed ({exc.strerror or exc})") from None
    _refuse_binary(acc, label)
    return acc.finish(source, name, scan_stopped_at=stopped_at)


def _refuse_binary(acc: LogAccumulator, label: str) -> None:
    problem = acc.binary_problem()
    if problem:
        raise UnreadableInput(f"{label} {problem}")


def _read_last_part(stream: BinaryIO, acc: LogAccumulator) -> None:
    """Past the scan limit: for a regular file, jump to its end for the tail; otherwise stop."""
    try:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            return
        size = os.fstat(stream.fileno()).st_size
        if size - acc.total <= 0:
            return
        start = max(acc.total, size - acc.tail_bytes)
        skipped = start - acc.total
        stream.seek(start)
        data = stream.read(acc.tail_bytes)
    except (OSError, ValueError, AttributeError):
        return
    acc.tail += b"\n"
    acc.total += skipped
    acc.carries.clear()  # a partial line from before the jump must not join the first line read after it
    acc.feed(data)


def read_log(spec: str) -> LogCapture:
    """Read --log FILE or '-' into a LogCapture (exit 3 for anything unusable)."""
    stream, source, name = open_log(spec)
    label = "--log -" if spec == "-" else f"--log {spec}"
    try:
        return read_stream(stream, source, name, label)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def read_log_text(text: str, label: str = "log text") -> LogCapture:
    """A log handed over as a string (the Python API) into a LogCapture, with --log's checks (exit 3 when unusable).

    It is recorded with source "stdin": the log came as a stream of text, not from a file."""
    return read_stream(io.BytesIO(text.encode("utf-8", "replace")), "stdin", None, label)
