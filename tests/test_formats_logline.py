"""One log line: who wrote it (process tags) and its text without prefixes; where a new record starts."""

import pytest

from vllm_bug.formats.logline import LogLine, parse_log_line, starts_record, starts_record_raw, strip_error_line_prefix


@pytest.mark.parametrize(
    "raw, text",
    [
        ("(EngineCore_DP0 pid=123) ERROR 03-19 07:27:53 [core.py:375] ValueError: boom", "ValueError: boom"),
        (
            '(VllmWorker rank=1 pid=456) INFO 03-19 07:27:53 [gpu_worker.py:9]   File "x.py", line 1, in f',
            '  File "x.py", line 1, in f',
        ),
        (
            "(RayWorkerWrapper pid=67451, ip=10.1.0.7) ERROR 06-25 15:28:30 worker_base.py:148] RuntimeError: x",
            "RuntimeError: x",
        ),
        (
            (
                "(APIServer pid=1) (EngineCore_DP0 pid=68) ERROR 02-06 16:34:06 [core.py:936] "
                "torch.cuda.set_device(device)"
            ),
            "torch.cuda.set_device(device)",
        ),
        ("[rank0]: RuntimeError: NCCL error", "RuntimeError: NCCL error"),
        (
            (
                "INFO 2025-11-19T20:16:36.096674521Z [resource.labels.containerName: vllm] (EngineCore_DP0 pid=270) "
                'ERROR 11-19 12:16:36 [v1/engine/core.py:842] File "/a.py", line 5, in f'
            ),
            'File "/a.py", line 5, in f',
        ),
        (
            "vllm-1  | ERROR 11-18 18:07:28 engine.py:366] ValueError: No available memory",
            "ValueError: No available memory",
        ),
        ("backend-vllm-openai-1  |     _lazy_init()", "    _lazy_init()"),
        ("6月 10 16:45:05 ma-MS-TZZ-Z690M bash[107468]: RuntimeError: CUDA error: x", "RuntimeError: CUDA error: x"),
        ("Jun 10 16:45:05 host python[12]: hello", "hello"),
        ("│ ERROR 09-27 06:46:46 engine.py:157] RuntimeError: CUDA error: x          │", "RuntimeError: CUDA error: x"),
        ("> RuntimeError: quoted", "RuntimeError: quoted"),
        (
            "(EngineCore pid=198) ERROR 08-03 09:26:14 [dump_input.py:79] Dumping scheduler output",
            "Dumping scheduler output",
        ),
        ("INFO  [gpu_worker.py:642]  Available KV cache memory: 2.97 GiB", "Available KV cache memory: 2.97 GiB"),
        ("2025-01-01 12:00:00,123 - INFO - started", "INFO - started"),
        ("    return func(*args)", "    return func(*args)"),
        ("(most recent call last) stays", "(most recent call last) stays"),
        (
            "| NVIDIA-SMI 560.35.03     Driver Version: 560.35.03  |",
            "| NVIDIA-SMI 560.35.03     Driver Version: 560.35.03  |",
        ),
    ],
)
def test_prefixes_are_stripped(raw, text):
    assert parse_log_line(raw).text == text


def test_process_tags_are_reported_as_source():
    line = parse_log_line("(VllmWorker rank=1 pid=456) ERROR 03-19 07:27:53 [x.py:1] boom")
    assert "rank=1" in line.source and line.text == "boom"
    assert parse_log_line("plain line") == LogLine("plain line", "")


@pytest.mark.parametrize("tag", ["(VllmWorker PP0_TP1 pid=4797)", "(VllmWorker TP0 pid=12)", "(Worker_PP1_TP0 pid=9)"])
def test_worker_tags_with_rank_labels_are_stripped(tag):
    line = (
        f'{tag} ERROR 09-29 05:54:49 [multiproc_executor.py:596]   File "/x/vllm/compilation/cuda_graph.py", line '
        f"168, in __call__"
    )
    assert parse_log_line(line) == LogLine('  File "/x/vllm/compilation/cuda_graph.py", line 168, in __call__', tag)


def test_parenthesised_prose_is_not_a_tag():
    assert parse_log_line("(see the log below) pid=3 was killed") == LogLine("(see the log below) pid=3 was killed", "")


@pytest.mark.parametrize(
    "line",
    [
        (
            "W1126 22:56:40.131000 722 torch/distributed/elastic/multiprocessing/api.py:1012] Sending process 765 "
            "closing signal SIGTERM"
        ),
        (
            "[rank1]:[W1126 22:56:39.208609034 ProcessGroupNCCL.cpp:1575] Warning: WARNING: destroy_process_group() "
            "was not called"
        ),
        "INFO 06-01 10:00:05 [launcher.py:80] Shutting down FastAPI HTTP server.",
        "2025-11-26 22:56:40,131 - INFO - shutting down",
        "vm:765:765 [1] NCCL INFO comm 0x55 rank 1 nranks 2 - Abort COMPLETE",
    ],
)
def test_new_records(line):
    assert starts_record(line)


@pytest.mark.parametrize(
    "line",
    [
        "ncclInvalidUsage: This usually reflects invalid usage of NCCL library.",
        "Last error:",
        "    self.model_runner.profile_run()",
        "INFO is a word too",
    ],
)
def test_not_new_records(line):
    assert not starts_record(line)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("(APIServer pid=7) INFO 03-16 08:31:24 [launcher.py:99] Shutting down FastAPI HTTP server.", True),
        ("INFO something", True),
        ("03-16 08:31:24 something", True),
        ("[rank1]: Traceback (most recent call last):", True),
        ("For debugging consider passing CUDA_LAUNCH_BLOCKING=1", False),
        ("W1126 22:56:40.131000 722 api.py:1012] Sending process 765", False),
    ],
)
def test_new_records_as_the_collector_sees_raw_lines(line, expected):
    assert starts_record_raw(line) is expected


def test_error_line_prefix():
    line = "(VllmWorker rank=0 pid=12) [rank0]: ERROR 03-19 07:27:53 [core.py:375] ValueError: boom"
    assert strip_error_line_prefix(line) == "ValueError: boom"
    assert strip_error_line_prefix("RuntimeError: x") == "RuntimeError: x"
