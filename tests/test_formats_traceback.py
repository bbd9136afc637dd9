"""Tracebacks and error lines read into typed records; where a traceback ends in a raw stream."""

import time
from pathlib import Path

import pytest

from vllm_bug.formats.traceback import (
    HEADER,
    ExceptionLine,
    Frame,
    TracebackFollower,
    exception_in_prose,
    is_chain_line,
    parse_exception_line,
    parse_frame_line,
    parse_tracebacks,
    pseudo_exception,
)

LOGS = Path(__file__).parent / "fixtures" / "device" / "h200" / "cuda-errors"


def test_a_whole_traceback_from_a_real_log():
    text = (LOGS / "device_side_assert.log").read_text()
    lines = text[text.index(HEADER) :].splitlines()
    tb = parse_tracebacks(lines)[0]
    assert tb.short_type == "AcceleratorError" and "device-side assert triggered" in tb.message
    assert tb.start_line == 0 and tb.frames and tb.frames[-1].line is not None


def test_chained_exceptions_link_to_the_one_before():
    lines = [
        "Traceback (most recent call last):",
        '  File "a.py", line 1, in <module>',
        "KeyError: 'x'",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "b.py", line 2, in f',
        "    g()",
        "ValueError: y",
    ]
    first, second = parse_tracebacks(lines)
    assert second.chained_from is first and first.chained_from is None
    assert second.frames == [Frame("b.py", 2, "f", "g()")]


def test_ipython_frames_are_frames():
    # unsloth#2947: a Colab traceback, cut above its first frame, of a Triton MLIR pass failure
    lines = [
        "/usr/local/lib/python3.11/dist-packages/triton/compiler/compiler.py in compile(src, target, options)",
        "    283     for ext, compile_ir in list(stages.items())[first_stage:]:",
        "--> 284         next_module = compile_ir(module, metadata)",
        '    285         ir_filename = f"{file_name}.{ext}"',
        "",
        "/usr/local/lib/python3.11/dist-packages/triton/backends/nvidia/compiler.py in make_llir(self, src, metadata)",
        "    340             passes.llvmir.add_di_scope(pm)",
        "--> 341         pm.run(mod)",
        "",
        "RuntimeError: PassManager::run failed",
    ]
    (tb,) = parse_tracebacks(lines)
    assert (tb.exc_type, tb.message) == ("RuntimeError", "PassManager::run failed")
    assert [(f.module, f.line, f.function, f.code) for f in tb.frames] == [
        ("triton.compiler.compiler", 284, "compile", "next_module = compile_ir(module, metadata)"),
        ("triton.backends.nvidia.compiler", 341, "make_llir", "pm.run(mod)"),
    ]
    newer = parse_frame_line("File /opt/venv/lib/python3.12/site-packages/vllm/config.py:204, in _verify(self)")
    assert newer == Frame("/opt/venv/lib/python3.12/site-packages/vllm/config.py", 204, "_verify")
    assert parse_frame_line("see model.py in the docs (section 2)") is None


def test_single_lines():
    assert parse_frame_line(
        '  File "/v/vllm/v1/worker/gpu_worker.py", line 240, in determine_available_memory'
    ) == Frame("/v/vllm/v1/worker/gpu_worker.py", 240, "determine_available_memory")
    assert parse_frame_line("File without quotes") is None
    assert parse_exception_line("torch.OutOfMemoryError: CUDA out of memory.") == ExceptionLine(
        "torch.OutOfMemoryError", "CUDA out of memory."
    )
    assert parse_exception_line("ray.exceptions.RayTaskError(RuntimeError): ray::W.m()") == ExceptionLine(
        "ray.exceptions.RayTaskError(RuntimeError)", "ray::W.m()"
    )
    assert parse_exception_line("KeyboardInterrupt") == ExceptionLine("KeyboardInterrupt", "")
    assert parse_exception_line("Note: this is prose") is None
    assert is_chain_line("The above exception was the direct cause of the following exception:")
    assert exception_in_prose("vllm serve fails with ValueError: bad max_model_len") == ExceptionLine(
        "ValueError", "bad max_model_len"
    )
    assert pseudo_exception(
        "RuntimeError: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details)"
    ) == ExceptionLine("NCCL error", "unhandled system error (run with NCCL_DEBUG=INFO for details)")


def test_frame_module_names():
    assert Frame("/usr/lib/python3.12/site-packages/vllm/v1/x.py", 1, "f").module == "vllm.v1.x"
    assert Frame("/workspace/vllm/worker/w.py", 1, "f").module == "vllm.worker.w"


def _follow(lines):
    follower, kept = TracebackFollower(), []
    for line in lines:
        out = follower.feed(line)
        if out is None:
            return kept, line
        kept.extend(out)
    return kept, None


def test_follower_keeps_frames_exception_and_message_lines():
    kept, stopped_at = _follow(
        [
            '  File "a.py", line 1, in f',
            "    g()",
            "RuntimeError: CUDA error: boom",
            "For debugging consider passing CUDA_LAUNCH_BLOCKING=1",
            "INFO 03-16 08:31:24 [launcher.py:99] Shutting down",
        ]
    )
    assert kept[-1] == "For debugging consider passing CUDA_LAUNCH_BLOCKING=1"
    assert stopped_at.startswith("INFO")


def test_follower_waits_for_a_chained_header():
    follower = TracebackFollower()
    assert follower.feed('  File "a.py", line 1, in f') == ('  File "a.py", line 1, in f',)
    assert follower.feed("KeyError: 'x'") == ("KeyError: 'x'",)
    assert follower.feed("") == ()
    assert follower.feed("The above exception was the direct cause of the following exception:") == (
        "",
        "The above exception was the direct cause of the following exception:",
        "",
    )
    assert follower.awaits_chained_header
    assert follower.feed("") == ()
    follower.restart()
    assert follower.feed('  File "b.py", line 2, in g') is not None


def test_follower_message_lines_are_capped():
    follower = TracebackFollower(max_message_lines=2)
    follower.feed('  File "a.py", line 1, in f')
    follower.feed("ValueError: a")
    assert follower.feed("b") == ("b",) and follower.feed("c") == ("c",) and follower.feed("d") is None


def test_cpp_terminate_takes_the_what_line():
    tb = parse_tracebacks(
        [
            "terminate called after throwing an instance of 'c10::Error'",
            "  what():  CUDA error: an illegal memory access was encountered",
        ]
    )[0]
    assert tb.exc_type == "c10::Error"
    assert tb.message.startswith("CUDA error: an illegal memory access")


def test_cut_traceback_without_header_and_with_github_wrapping():
    text = (
        '  File "/usr/local/lib/python3.10/dist-packages/vllm/worker/\n'
        'worker.py", line 162, in determine_num_available_blocks\n'
        "    self.model_runner.profile_run()\n"
        "[...]\n"
        '  File "/usr/local/lib/python3.10/dist-packages/torch/cuda/__init__.py", line 293, in _lazy_init\n'
        "    torch._C._cuda_init()\n"
        "RuntimeError: Unexpected error from cudaGetDeviceCount(). Error 804: forward compatibility was "
        "attempted on non supported HW\n"
    )
    (tb,) = parse_tracebacks(text.splitlines())
    assert [f.function for f in tb.frames] == ["determine_num_available_blocks", "_lazy_init"]
    assert tb.frames[0].path == "/usr/local/lib/python3.10/dist-packages/vllm/worker/worker.py"
    assert tb.frames[0].code == "self.model_runner.profile_run()"
    assert "Error 804" in tb.message


def test_message_continuation_is_kept_in_text_not_message():
    lines = [
        "RuntimeError: CUDA error: an illegal memory access was encountered",
        "CUDA kernel errors might be asynchronously reported at some other API call.",
        "For debugging consider passing CUDA_LAUNCH_BLOCKING=1",
    ]
    (tb,) = parse_tracebacks(lines)
    assert tb.message == "CUDA error: an illegal memory access was encountered"
    assert tb.text == "\n".join(lines)


def test_many_headers_do_not_blow_up():
    start = time.perf_counter()
    assert parse_tracebacks(["Traceback (most recent call last):"] * 30000) == []
    assert time.perf_counter() - start < 10  # catastrophic (quadratic) parsing would take minutes


@pytest.mark.parametrize(
    "record",
    [
        "[W1126 22:56:39.208609034 ProcessGroupNCCL.cpp:1575] Warning: WARNING: destroy_process_group() was not called",
        (
            "W1126 22:56:40.131000 722 torch/distributed/elastic/multiprocessing/api.py:1012] Sending process 765 "
            "closing signal SIGTERM"
        ),
        (
            "[rank1]:[W1126 22:56:39.208609034 ProcessGroupNCCL.cpp:1575] Warning: WARNING: destroy_process_group() "
            "was not called"
        ),
        "INFO 06-01 10:00:05 [launcher.py:80] Shutting down FastAPI HTTP server.",
        "WARNING: something else entirely",
        "2025-11-26 22:56:40,131 - INFO - shutting down",
        "vm:765:765 [1] NCCL INFO comm 0x55 rank 1 nranks 2 - Abort COMPLETE",
        "Traceback (most recent call last):",
    ],
)
def test_exception_continuation_stops_at_a_new_log_record(record):
    lines = [
        "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:3135, invalid usage",
        "ncclInvalidUsage: This usually reflects invalid usage of NCCL library.",
        "Last error:",
        "Bootstrap : no socket interface found",
        record,
        "more text of that record",
    ]
    tb = parse_tracebacks(lines)[0]
    assert tb.text.splitlines() == lines[:4]


@pytest.mark.parametrize(
    "line, exc_type",
    [
        (
            "triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: 327680, "
            "Hardware limit: 232448. Reducing block sizes or `num_stages` may help.",
            "triton.runtime.errors.OutOfResources",
        ),
        ("torch._dynamo.exc.Unsupported: call_function UserDefinedObjectVariable", "torch._dynamo.exc.Unsupported"),
    ],
)
def test_a_class_from_a_module_of_errors_is_an_exception_though_its_name_does_not_say_so(line, exc_type):
    parsed = parse_exception_line(line)
    assert parsed is not None and parsed.exc_type == exc_type


@pytest.mark.parametrize("line", ["my.module.Thing: value", "errors.Summary: none"])
def test_other_dotted_names_before_a_colon_are_not_exceptions(line):
    assert parse_exception_line(line) is None
