import time

import pytest

from vllm_bug.analyzer.logclean import clean_lines, strip_prefixes


@pytest.mark.parametrize(
    "raw, text",
    [
        ("(EngineCore_DP0 pid=123) ERROR 03-19 07:27:53 [core.py:375] ValueError: boom", "ValueError: boom"),
        ("(VllmWorker rank=1 pid=456) INFO 03-19 07:27:53 [gpu_worker.py:9]   File \"x.py\", line 1, in f", '  File "x.py", line 1, in f'),
        ("(RayWorkerWrapper pid=67451, ip=10.1.0.7) ERROR 06-25 15:28:30 worker_base.py:148] RuntimeError: x", "RuntimeError: x"),
        ("(APIServer pid=1) (EngineCore_DP0 pid=68) ERROR 02-06 16:34:06 [core.py:936] torch.cuda.set_device(device)", "torch.cuda.set_device(device)"),
        ("[rank0]: RuntimeError: NCCL error", "RuntimeError: NCCL error"),
        ("\x1b[1;36m(VllmWorkerProcess pid=90)\x1b[0m INFO 12-20 20:25:49 model_runner.py:1413] Capturing cudagraphs", "Capturing cudagraphs"),
        ("[1;36m(Worker_TP0 pid=7)[0m WARNING 01-02 03:04:05 [x.py:1] hi", "hi"),
        ("INFO 2025-11-19T20:16:36.096674521Z [resource.labels.containerName: vllm] (EngineCore_DP0 pid=270) ERROR 11-19 12:16:36 [v1/engine/core.py:842] File \"/a.py\", line 5, in f", 'File "/a.py", line 5, in f'),
        ("vllm-1  | ERROR 11-18 18:07:28 engine.py:366] ValueError: No available memory", "ValueError: No available memory"),
        ("backend-vllm-openai-1  |     _lazy_init()", "    _lazy_init()"),
        ("6月 10 16:45:05 ma-MS-TZZ-Z690M bash[107468]: RuntimeError: CUDA error: x", "RuntimeError: CUDA error: x"),
        ("Jun 10 16:45:05 host python[12]: hello", "hello"),
        ("│ ERROR 09-27 06:46:46 engine.py:157] RuntimeError: CUDA error: x          │", "RuntimeError: CUDA error: x"),
        ("> RuntimeError: quoted", "RuntimeError: quoted"),
        ("(EngineCore pid=198) ERROR 08-03 09:26:14 [dump_input.py:79] Dumping scheduler output", "Dumping scheduler output"),
        ("INFO  [gpu_worker.py:642]  Available KV cache memory: 2.97 GiB", "Available KV cache memory: 2.97 GiB"),
        ("2025-01-01 12:00:00,123 - INFO - started", "INFO - started"),
        ("    return func(*args)", "    return func(*args)"),
        ("(most recent call last) stays", "(most recent call last) stays"),
        ("| NVIDIA-SMI 560.35.03     Driver Version: 560.35.03  |", "| NVIDIA-SMI 560.35.03     Driver Version: 560.35.03  |"),
    ],
)
def test_prefixes_are_stripped(raw, text):
    assert clean_lines(raw) == [text]


def test_process_tags_are_reported_as_source():
    source, rest = strip_prefixes("(VllmWorker rank=1 pid=456) ERROR 03-19 07:27:53 [x.py:1] boom")
    assert "rank=1" in source and rest == "boom"
    assert strip_prefixes("plain line")[0] == ""


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
    block = ["Traceback (most recent call last):", '  File "/a.py", line 3, in f', "RuntimeError: NCCL error: unhandled system error"]
    raw = [f"[rank0]: {x}" for x in block] + ["INFO main says something"] + [f"[rank1]: {x}" for x in block]
    assert clean_lines("\n".join(raw)) == block + ["INFO main says something"]


def test_same_process_repeating_itself_is_kept():
    raw = ["(EngineCore pid=1) RuntimeError: x", "(EngineCore pid=1) RuntimeError: x"]
    assert clean_lines("\n".join(raw)) == ["RuntimeError: x", "RuntimeError: x"]


def test_carriage_returns_and_literal_caret_m_split_lines():
    assert clean_lines("a 10%\rb 20%^Mc 30%") == ["a 10%", "b 20%", "c 30%"]


def test_json_escaped_log_on_one_line_is_split():
    raw = "x" * 400 + "\\nTraceback (most recent call last):\\n  File \"a.py\", line 1, in f\\nValueError: v\\nend"
    assert "ValueError: v" in clean_lines(raw)


@pytest.mark.parametrize("line", ["a" * (1 << 20), "(" * (1 << 20), "[" * (1 << 20), "(x pid=1 " * 100000, "ERROR " * 150000])
def test_pathological_long_line_has_no_catastrophic_backtracking(line):
    # a super-linear regex takes minutes on a 1 MiB line; linear work takes well under a second
    start = time.perf_counter()
    clean_lines(line)
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("tag", ["(VllmWorker PP0_TP1 pid=4797)", "(VllmWorker TP0 pid=12)", "(Worker_PP1_TP0 pid=9)"])
def test_worker_tags_with_rank_labels_are_stripped(tag):
    line = f"{tag} ERROR 09-29 05:54:49 [multiproc_executor.py:596]   File \"/x/vllm/compilation/cuda_graph.py\", line 168, in __call__"
    source, rest = strip_prefixes(line)
    assert source == tag
    assert rest == '  File "/x/vllm/compilation/cuda_graph.py", line 168, in __call__'


def test_parenthesised_prose_is_not_a_tag():
    assert strip_prefixes("(see the log below) pid=3 was killed") == ("", "(see the log below) pid=3 was killed")
