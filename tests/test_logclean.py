import time

import pytest

from vllm_bug.analyzer.logclean import clean_lines


@pytest.mark.parametrize(
    "raw, text",
    [
        (
            "\x1b[1;36m(VllmWorkerProcess pid=90)\x1b[0m INFO 12-20 20:25:49 model_runner.py:1413] Capturing cudagraphs",
            "Capturing cudagraphs",
        ),
        ("[1;36m(Worker_TP0 pid=7)[0m WARNING 01-02 03:04:05 [x.py:1] hi", "hi"),
    ],
)
def test_colours_and_prefixes_are_stripped(raw, text):
    assert clean_lines(raw) == [text]


def test_interleaved_ranks_are_deinterleaved_and_merged():
    a = "(VllmWorker rank=0 pid=10) ERROR 03-19 07:27:53 [multiproc_executor.py:375] "
    b = "(VllmWorker rank=1 pid=11) ERROR 03-19 07:27:53 [multiproc_executor.py:375] "
    body = [
        "Traceback (most recent call last):",
        '  File "/v/vllm/worker.py", line 10, in run',
        "    self.step()",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.74 GiB. GPU {r} has a total capacity of 23.57 GiB",
    ]
    raw = []
    for line in body:  # the two ranks print line by line, interleaved
        raw.append(a + line.format(r=0))
        raw.append(b + line.format(r=1))
    lines = clean_lines("\n".join(raw))
    assert lines == [line.format(r=0) for line in body]


def test_copies_from_other_ranks_later_in_the_log_are_dropped():
    block = [
        "Traceback (most recent call last):",
        '  File "/a.py", line 3, in f',
        "RuntimeError: NCCL error: unhandled system error",
    ]
    raw = [f"[rank0]: {x}" for x in block] + ["INFO main says something"] + [f"[rank1]: {x}" for x in block]
    assert clean_lines("\n".join(raw)) == block + ["INFO main says something"]


def test_same_process_repeating_itself_is_kept():
    raw = ["(EngineCore pid=1) RuntimeError: x", "(EngineCore pid=1) RuntimeError: x"]
    assert clean_lines("\n".join(raw)) == ["RuntimeError: x", "RuntimeError: x"]


def test_carriage_returns_and_literal_caret_m_split_lines():
    assert clean_lines("a 10%\rb 20%^Mc 30%") == ["a 10%", "b 20%", "c 30%"]


def test_json_escaped_log_on_one_line_is_split():
    raw = "x" * 400 + '\\nTraceback (most recent call last):\\n  File "a.py", line 1, in f\\nValueError: v\\nend'
    assert "ValueError: v" in clean_lines(raw)


@pytest.mark.parametrize(
    "line", ["a" * (1 << 20), "(" * (1 << 20), "[" * (1 << 20), "(x pid=1 " * 100000, "ERROR " * 150000]
)
def test_pathological_long_line_has_no_catastrophic_backtracking(line):
    # a super-linear regex takes minutes on a 1 MiB line; linear work takes well under a second
    start = time.perf_counter()
    clean_lines(line)
    assert time.perf_counter() - start < 10
