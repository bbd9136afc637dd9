"""Log capture: head/tail caps, traceback extraction over the whole stream, and refusals."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest

from vllm_bug.bundler import logcapture as lc
from vllm_bug.errors import UnreadableInput, UsageProblem
from vllm_bug.formats.traceback import HEADER

FIXTURES = Path(__file__).parent / "fixtures" / "device" / "h200" / "cuda-errors"

ENGINE_CORE_LOG = """\
(APIServer pid=7) INFO 03-16 08:31:01 [api_server.py:1] vLLM API server version 0.11.0
(EngineCore pid=128) ERROR 03-16 08:31:22 [core.py:1090] EngineCore encountered a fatal error.
(EngineCore pid=128) ERROR 03-16 08:31:22 [core.py:1090] Traceback (most recent call last):
(EngineCore pid=128) ERROR 03-16 08:31:22 [core.py:1090]   File "/usr/lib/vllm/v1/engine/core.py", line 1080, in run_engine_core
(APIServer pid=7) ERROR 03-16 08:31:23 [async_llm.py:708] AsyncLLM output_handler failed.
(APIServer pid=7) ERROR 03-16 08:31:23 [async_llm.py:708] Traceback (most recent call last):
(EngineCore pid=128) ERROR 03-16 08:31:22 [core.py:1090]     engine_core.run_busy_loop()
(APIServer pid=7) ERROR 03-16 08:31:23 [async_llm.py:708]   File "/usr/lib/vllm/v1/engine/async_llm.py", line 664, in output_handler
(EngineCore pid=128) ERROR 03-16 08:31:23 [core.py:1090] torch.AcceleratorError: CUDA error: an illegal memory access was encountered
(APIServer pid=7) ERROR 03-16 08:31:23 [async_llm.py:708]     outputs = await engine_core.get_output_async()
(EngineCore pid=128) ERROR 03-16 08:31:23 [core.py:1090] For debugging consider passing CUDA_LAUNCH_BLOCKING=1
(EngineCore pid=128) ERROR 03-16 08:31:23 [core.py:1090]
(APIServer pid=7) ERROR 03-16 08:31:23 [async_llm.py:708] vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue.
(APIServer pid=7) INFO 03-16 08:31:24 [launcher.py:99] Shutting down FastAPI HTTP server.
"""


def capture(data: bytes, chunk: int = 4096, **caps) -> lc.LogCapture:
    acc = lc.LogAccumulator(**caps)
    for i in range(0, len(data), chunk):
        acc.feed(data[i : i + chunk])
    return acc.finish("file", "test.log")


def test_interleaved_process_tracebacks_are_kept_apart():
    cap = capture(ENGINE_CORE_LOG.encode(), chunk=37)
    assert len(cap.tracebacks) == 2
    engine, api = cap.tracebacks
    assert engine.splitlines()[0] == HEADER
    assert "run_busy_loop" in engine and "illegal memory access" in engine
    assert "CUDA_LAUNCH_BLOCKING=1" in engine  # the exception message's continuation line
    assert "output_handler" not in engine
    assert api.endswith("EngineDeadError: EngineCore encountered an issue.")
    assert "Shutting down" not in api
    assert "(EngineCore" not in engine  # the per-line prefix is removed


def test_rank_copies_are_deduplicated_with_a_count():
    lines = []
    for rank in range(4):
        lines += [
            f"[rank{rank}]: Traceback (most recent call last):",
            f'[rank{rank}]:   File "/w/worker.py", line 10, in run',
            f"[rank{rank}]:     self.model_runner.profile_run()",
            f"[rank{rank}]: torch.OutOfMemoryError: CUDA out of memory. GPU {rank} has a total capacity of 79 GiB",
        ]
    cap = capture("\n".join(lines).encode() + b"\n")
    assert len(cap.tracebacks) == 1
    assert cap.traceback_copies == [4]
    assert cap.tracebacks_found == 4
    assert "GPU 0 has" in cap.tracebacks[0]


def test_chained_exceptions_stay_one_block():
    text = (FIXTURES / "device_side_assert.log").read_text()
    text = text[text.index(HEADER) :]
    chained = (
        "Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nKeyError: 'x'\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
    ) + text
    cap = capture(chained.encode())
    assert len(cap.tracebacks) == 1
    block = cap.tracebacks[0]
    assert block.count(HEADER) == 2
    assert "KeyError: 'x'" in block and "device-side assert triggered" in block
    assert "Compile with `TORCH_USE_CUDA_DSA`" in block


def test_huge_log_keeps_head_and_tail_and_every_traceback(tmp_path):
    middle_tb = b'Traceback (most recent call last):\n  File "m.py", line 7, in f\nRuntimeError: in the middle\n'
    filler = b"INFO 01-01 00:00:00 [x.py:1] a perfectly ordinary line of a long vLLM log\n"
    body = b"FIRST LINE\n" + filler * 40000 + middle_tb + filler * 40000 + b"LAST LINE\n"
    path = tmp_path / "big.log"
    path.write_bytes(body)
    cap = lc.read_log(str(path))
    assert cap.truncated
    assert cap.original_bytes == len(body)
    assert cap.original_lines == body.count(b"\n")
    assert cap.text.startswith("FIRST LINE\n") and cap.text.endswith("LAST LINE\n")
    assert "RuntimeError: in the middle" not in cap.text
    assert any("RuntimeError: in the middle" in tb for tb in cap.tracebacks)
    kept = len(cap.text.encode())
    assert kept <= lc.HEAD_BYTES + lc.TAIL_BYTES + 300
    assert cap.omitted_bytes > len(body) - lc.HEAD_BYTES - lc.TAIL_BYTES - 200
    assert f"{cap.omitted_bytes:,} bytes" in cap.text
    assert cap.omitted_lines + cap.text.count("\n") - 1 == cap.original_lines
    json_doc = cap.to_json()
    assert json_doc["omitted_bytes"] == cap.omitted_bytes and json_doc["truncated"] is True


def test_memory_stays_bounded_while_streaming():
    acc = lc.LogAccumulator(head_bytes=1000, tail_bytes=2000)
    for _ in range(500):
        acc.feed(b"x" * 999 + b"\n")
        assert len(acc.tail) <= 2 * 2000 + 1000 and len(acc.whole) <= 3000 + 1000


def test_ansi_codes_and_progress_redraws_are_cleaned():
    raw = b"\x1b[1;31mERROR\x1b[0m boom\nLoading: 10%\rLoading: 50%\rLoading: 100%\nend\r\n"
    cap = capture(raw)
    assert cap.text == "ERROR boom\nLoading: 100%\nend\n"


def test_stray_nul_bytes_are_removed_and_counted():
    raw = b"line one\n" * 50 + b"\x00" * 4096 + b'Traceback (most recent call last):\n  File "x"\nValueError: v\n'
    cap = capture(raw)
    assert "\x00" not in cap.text
    assert cap.removed_nul_bytes == 4096
    assert cap.tracebacks == ['Traceback (most recent call last):\n  File "x"\nValueError: v']


def test_utf8_errors_are_replaced():
    cap = capture("café \u2713\n".encode() + b"bad \xff\xfe byte\n")
    assert "café \u2713" in cap.text and "bad \ufffd\ufffd byte" in cap.text


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "core.bin"
    path.write_bytes(os.urandom(200_000))
    with pytest.raises(UnreadableInput, match="binary"):
        lc.read_log(str(path))


def test_compressed_log_is_refused_with_advice(tmp_path):
    path = tmp_path / "vllm.log.gz"
    path.write_bytes(gzip.compress(b"INFO hello\n" * 100))
    with pytest.raises(UnreadableInput, match="gzip-compressed; decompress it first"):
        lc.read_log(str(path))


@pytest.mark.parametrize("kind", ["missing", "directory", "unreadable", "empty"])
def test_unusable_log_paths(tmp_path, monkeypatch, kind):
    path = tmp_path / "vllm.log"
    if kind == "directory":
        path.mkdir()
    elif kind == "unreadable":
        path.write_text("secret log")
        path.chmod(0)
        if os.access(path, os.R_OK):  # root ignores permissions: make open() refuse instead

            def refuse(*_args, **_kwargs):
                raise PermissionError(13, "Permission denied")

            monkeypatch.setattr(lc, "open", refuse, raising=False)
    elif kind == "empty":
        path.write_bytes(b"")
    with pytest.raises(UnreadableInput) as info:
        lc.read_log(str(path))
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert info.value.exit_code == 3


def test_stdin_log(monkeypatch):
    fake_stdin = io.TextIOWrapper(
        io.BytesIO(b'INFO from a pipe\nTraceback (most recent call last):\n  File "p"\nOSError: x\n')
    )
    monkeypatch.setattr("sys.stdin", fake_stdin)
    cap = lc.read_log("-")
    assert cap.source == "stdin" and cap.name is None
    assert cap.text.startswith("INFO from a pipe")
    assert len(cap.tracebacks) == 1


def test_stdin_terminal_is_a_usage_error(monkeypatch):
    class Tty(io.BytesIO):
        def isatty(self):
            return True

    class Wrapper:
        buffer = Tty()

    monkeypatch.setattr("sys.stdin", Wrapper())
    with pytest.raises(UsageProblem, match="terminal"):
        lc.read_log("-")


def test_traceback_caps():
    frames = "".join(f'  File "f{i}.py", line {i}, in g\n    g()\n' for i in range(5000))
    tb = f"Traceback (most recent call last):\n{frames}RecursionError: maximum recursion depth exceeded\n"
    cap = capture(tb.encode())
    (block,) = cap.tracebacks
    assert len(block) <= lc.TRACEBACK_CHAR_CAP + 200
    assert block.startswith(HEADER) and block.endswith("RecursionError: maximum recursion depth exceeded")
    assert "traceback lines omitted" in block


def test_number_of_unique_tracebacks_is_capped():
    blocks = "".join(
        f'Traceback (most recent call last):\n  File "x"\nError{chr(65 + i % 26)}{chr(65 + i // 26)}: v\n'
        for i in range(100)
    )
    cap = capture(blocks.encode())
    assert len(cap.tracebacks) == lc.MAX_TRACEBACKS
    assert cap.tracebacks_dropped == 100 - lc.MAX_TRACEBACKS
    assert "ErrorAA" in cap.tracebacks[0] and "ErrorVD" in cap.tracebacks[-1]  # first and last kept


def test_log_without_newline_at_end():
    cap = capture(b"one\ntwo")
    assert cap.original_lines == 2 and cap.text == "one\ntwo"


def test_each_stream_keeps_its_own_traceback():
    acc = lc.LogAccumulator()
    acc.feed(b'Traceback (most recent call last):\n  File "serve.py", line 3, in main\n', "stderr")
    acc.feed(b"INFO 01-01 00:00:00 [x.py:1] a log line on stdout\n", "stdout")
    acc.feed(b"ValueError: boom\n", "stderr")
    cap = acc.finish("command", "serve")
    assert cap.tracebacks == [
        'Traceback (most recent call last):\n  File "serve.py", line 3, in main\nValueError: boom'
    ]
    assert cap.text.splitlines()[2].startswith("INFO")  # the merged text keeps arrival order


class EndlessNoise(io.RawIOBase):
    """/dev/urandom as a stream that counts what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = os.urandom(len(buffer))
        buffer[: len(data)] = data
        self.read_bytes += len(data)
        return len(data)


def test_binary_data_is_refused_from_its_first_block():
    # `collect --log /dev/urandom` read 1 GiB (the scan limit) before refusing it as binary
    noise = EndlessNoise()
    with pytest.raises(UnreadableInput, match="looks binary"):
        lc.read_stream(io.BufferedReader(noise), "file", "/dev/urandom", "--log /dev/urandom")
    assert noise.read_bytes <= 2 * lc.CHUNK_BYTES


def test_a_text_log_with_binary_data_later_is_still_judged_as_a_whole(tmp_path):
    text = b"INFO a normal line of a log\n" * 40000  # about 1.1 MiB of text first
    path = tmp_path / "mixed.log"
    path.write_bytes(text + os.urandom(4 << 20))
    with pytest.raises(UnreadableInput, match="looks binary"):
        lc.read_log(str(path))


def test_a_long_digit_prefix_before_a_traceback_costs_linear_time():
    # masking timestamps in the prefix retried a run of digits from each digit: 1.2 s per such line
    import time

    line = b"1" * 7900 + HEADER.encode() + b"\n"
    start = time.perf_counter()
    capture(line * 20)
    assert time.perf_counter() - start < 3


def test_a_partial_line_before_the_jump_to_the_tail_is_not_joined_to_the_tail(tmp_path, monkeypatch):
    # Past MAX_SCAN_BYTES a regular file's reading jumps to its last TAIL_BYTES. The scan's partial line from
    # before the jump (here a traceback header cut by the chunk's end) must not join the first line after it:
    # once it did (the jump cleared a misspelt attribute), and a traceback that never was got recorded.
    scan = 1 << 20  # past HEAD_BYTES + TAIL_BYTES, so that the head is already kept apart when the jump comes
    monkeypatch.setattr(lc, "MAX_SCAN_BYTES", scan)
    monkeypatch.setattr(lc, "CHUNK_BYTES", 1 << 16)
    line = b"INFO 01-01 00:00:00 [x.py:1] an ordinary line of a long vLLM log\n"
    first = line * (scan // len(line) - 2)
    first += b"#" * (scan - len(first) - len(HEADER) - 1) + b"\n" + HEADER.encode()  # the chunk ends in the header
    tail = b'  File "tail.py", line 3, in g\nRuntimeError: only in the tail\n'
    tail += line * ((lc.TAIL_BYTES - len(tail)) // len(line) - 1)
    tail += b"#" * (lc.TAIL_BYTES - len(tail) - len(b"TAIL-END\n")) + b"TAIL-END\n"  # the jump lands on its start
    log = tmp_path / "big.log"
    log.write_bytes(first + b"\n" + line * 40_000 + tail)
    cap = lc.read_log(str(log))
    assert cap.scan_stopped_at == scan and cap.truncated
    assert cap.text.endswith("TAIL-END\n") and "only in the tail" in cap.text
    skipped = log.stat().st_size - lc.HEAD_BYTES - lc.TAIL_BYTES
    assert skipped <= cap.omitted_bytes < skipped + len(line)  # the head ends at its last whole line
    assert not any("only in the tail" in tb for tb in cap.tracebacks)
