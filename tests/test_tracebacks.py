from pathlib import Path

import pytest

from vllm_bug.analyzer.logclean import clean_lines
from vllm_bug.analyzer.tracebacks import is_wrapper, pick_root_cause, pseudo_root_cause
from vllm_bug.formats.traceback import parse_tracebacks

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "excerpts"


def _root(text: str, title_line=None):
    lines = clean_lines(text)
    skip = frozenset([title_line]) if title_line is not None else frozenset()
    tbs = parse_tracebacks(lines, skip)
    title = lines[title_line] if title_line is not None else None
    return pick_root_cause(lines, tbs, title, title_line), tbs


CHAINED = """\
Traceback (most recent call last):
  File "/usr/lib/python3.12/site-packages/vllm/v1/worker/gpu_model_runner.py", line 3221, in _dummy_sampler_run
    sampler_output = self.sampler(logits=logits)
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/usr/lib/python3.12/site-packages/vllm/v1/engine/core.py", line 700, in run_engine_core
    engine_core = EngineCoreProc(*args, **kwargs)
RuntimeError: CUDA out of memory occurred when warming up sampler with 1024 dummy requests.
Traceback (most recent call last):
  File "/usr/lib/python3.12/site-packages/vllm/entrypoints/cli/main.py", line 54, in main
    args.dispatch_function(args)
RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
"""


def test_chained_exception_gives_innermost_cause_and_skips_wrapper():
    root, tbs = _root(CHAINED)
    assert [tb.short_type for tb in tbs] == ["OutOfMemoryError", "RuntimeError", "RuntimeError"]
    assert tbs[1].chained_from is tbs[0]
    assert is_wrapper(tbs[2]) and not is_wrapper(tbs[0])
    assert root is tbs[0]
    assert root.frames[0].function == "_dummy_sampler_run"
    assert root.frames[0].module == "vllm.v1.worker.gpu_model_runner"
    assert root.frames[0].code == "sampler_output = self.sampler(logits=logits)"


# Wrappers the signature skipped and the root-cause picker did not (one list now serves both): vLLM V0
# (vllm/engine/async_llm_engine.py) once its loop failed; Ray (python/ray/exceptions.py): a worker process gone, a
# compiled graph's channel torn down after it.
LATE_WRAPPERS = [
    "vllm.engine.async_llm_engine.AsyncEngineDeadError: Background loop has errored already.",
    "ray.exceptions.WorkerCrashedError: The worker died unexpectedly while executing this task. Check "
    "python-core-worker-*.log files for more information.",
    "ray.exceptions.RayChannelError: System error: NCCL group has been destroyed.",
]


@pytest.mark.parametrize("wrapper", LATE_WRAPPERS)
def test_a_wrapper_alone_leaves_the_root_cause_missing(wrapper):
    root, _ = _root(wrapper + "\n")
    assert root is None


@pytest.mark.parametrize(
    "wrapper",
    [
        "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.",
        "RuntimeError: Worker proc VllmWorker-0 died unexpectedly (exit code: -9)",
        "TimeoutError: RPC call to sample_tokens timed out.",
        "RuntimeError: Worker failed with error 'CUDA error: an illegal memory access', please check the stack trace above for the root cause",
        "asyncio.exceptions.CancelledError: ",
        "KeyboardInterrupt",
        "ray.exceptions.RayTaskError(RuntimeError): ray::RayWorkerWrapper.execute_method() (pid=1, ip=10.0.0.1)",
    ]
    + LATE_WRAPPERS,
)
def test_wrappers_are_never_root_cause(wrapper):
    text = "ValueError: No available memory for the cache blocks.\n" + wrapper + "\n"
    root, _ = _root(text)
    assert root.exc_type == "ValueError"


@pytest.mark.parametrize(
    "line, exc_type, message_part",
    [
        ("RuntimeError: CUDA error: an illegal memory access was encountered", "RuntimeError", "illegal memory access"),
        (
            "torch.AcceleratorError: CUDA error: device-side assert triggered",
            "torch.AcceleratorError",
            "device-side assert",
        ),
        (
            "RuntimeError: Triton Error [CUDA]: an illegal memory access was encountered",
            "RuntimeError",
            "Triton Error [CUDA]",
        ),
        ("Triton Error [CUDA]: invalid argument", "Triton Error [CUDA]", "invalid argument"),
        (
            "cupy_backends.cuda.api.driver.CUDADriverError: CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access",
            "cupy_backends.cuda.api.driver.CUDADriverError",
            "CUDA_ERROR_ILLEGAL_ADDRESS",
        ),
        ("got CUDA_ERROR_NO_BINARY_FOR_GPU from the driver", "CUDA_ERROR_NO_BINARY_FOR_GPU", ""),
        (
            "ERROR 08-23 08:25:25 multiproc_worker_utils.py:226] Exception in worker VllmWorkerProcess while processing method init_device: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details), Traceback (most recent call last):",
            "NCCL error",
            "unhandled system error",
        ),
        (
            "Failed: Cuda error /workspace/csrc/custom_all_reduce.cuh:455 'invalid argument'",
            "Failed",
            "invalid argument",
        ),
        ("pynvml.NVMLError_InvalidArgument: Invalid Argument", "pynvml.NVMLError_InvalidArgument", "Invalid Argument"),
        (
            'WARNING 07-19 14:45:53 _custom_ops.py:14] Failed to import from vllm._C with ImportError("/lib64/libc.so.6: version `GLIBC_2.32\' not found")',
            "ImportError",
            "GLIBC_2.32",
        ),
    ],
)
def test_error_lines_without_traceback(line, exc_type, message_part):
    root, _ = _root(line)
    assert root.exc_type == exc_type
    assert message_part in root.message


def test_earliest_gpu_error_beats_a_later_generic_one():
    text = "RuntimeError: CUDA error: no kernel image is available for execution on the device\nEOFError: \nAttributeError: 'NoneType' object has no attribute 'x'\n"
    root, _ = _root(text)
    assert "no kernel image" in root.message


def test_title_is_a_fallback_only():
    root, _ = _root("[Bug]: RuntimeError: CUDA error: invalid argument\nValueError: real one\n", title_line=0)
    assert root.exc_type == "ValueError"
    root, _ = _root("[Bug]: Qwen3.5. `illegal memory access`\n", title_line=0)
    assert root.exc_type == "Error" and "illegal memory access" in root.message


def test_pseudo_root_cause_parses_types_in_titles():
    assert (
        pseudo_root_cause("[Bug]: ImportError: libcudart.so.12: cannot open shared object file").exc_type
        == "ImportError"
    )
    assert pseudo_root_cause("0.4.3 error CUDA error: an illegal memory access was encountered").message.startswith(
        "CUDA error: an illegal"
    )
    assert pseudo_root_cause("") is None


@pytest.mark.parametrize(
    "prose",
    [
        "hello",
        "[Usage]: How do I serve two models on one GPU?",
        "vllm serve is slower than expected on my machine",
        "[Bug]: Qwen3 output differs from HF",
    ],
)
def test_prose_is_never_a_root_cause(prose):
    assert pseudo_root_cause(prose) is None
    root, _ = _root(prose + "\n", title_line=0 if prose.startswith("[") else None)
    assert root is None


@pytest.mark.parametrize(
    "report",
    [
        "[Bug]: vLLM hangs after loading with TP=2",
        "server killed by OOM on 4090",
        "[Bug]: Cannot start Qwen3 on H20",
        "segmentation fault in flash attention",
        "[Bug]: FP8 not supported on my GPU",
        "请求超时 timeout 报错",
    ],
)
def test_error_reports_in_free_text_are_kept_as_pseudo_root_causes(report):
    root = pseudo_root_cause(report)
    assert root is not None and root.exc_type == "Error"


def test_a_plain_title_still_names_a_cut_traceback():
    text = (
        "[Bug]: Llama 3.2 Vision on 8 x H200\n"
        '  File "/usr/local/lib/python3.12/dist-packages/vllm/worker/model_runner.py", line 1724, in capture\n'
        "    output = self.model(\n"
    )
    root, _ = _root(text, title_line=0)
    assert root is not None and root.message == "Llama 3.2 Vision on 8 x H200"
    assert [f.function for f in root.frames] == ["capture"]


def test_title_fallback_keeps_frames_of_a_cut_traceback():
    text = (FIXTURES / "gcp_cut_traceback.txt").read_text()
    root, _ = _root(text, title_line=0)
    assert "OOM" in root.message
    assert any(f.function == "_dummy_sampler_run" or f.function == "decorate_context" for f in root.frames)


def test_worker_prefixed_nccl_traceback():
    root, _ = _root((FIXTURES / "nccl_worker_prefix.txt").read_text(), title_line=0)
    assert "NCCL" in root.message or "NCCL" in root.exc_type


def test_two_rank_oom_gives_one_root_cause():
    lines = clean_lines((FIXTURES / "oom_two_ranks.txt").read_text())
    tbs = parse_tracebacks(lines, frozenset([0]))
    assert len(tbs) == 1 and tbs[0].short_type == "OutOfMemoryError"


def test_root_cause_text_of_the_real_nccl_bundle_stops_before_the_next_log_records():
    from vllm_bug.analyzer.build import build_facts
    from vllm_bug.analyzer.load import load_input

    bundle = Path(__file__).parent / "fixtures" / "bundles" / "h200-2gpu-run-nccl-fail.zst"
    root = build_facts(load_input(str(bundle))).root_cause
    tail = root.text.splitlines()[-4:]
    assert tail[0].startswith("torch.distributed.DistBackendError: NCCL error in:")
    assert tail[1:] == [
        "ncclInvalidUsage: This usually reflects invalid usage of NCCL library.",
        "Last error:",
        "Bootstrap : no socket interface found",
    ]
    assert "destroy_process_group" not in root.text and "SIGTERM" not in root.text


@pytest.mark.parametrize(
    "text",
    [
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
        "[Bug]: RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
        "[Bug]: vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.",
    ],
)
def test_a_wrapper_is_never_made_a_pseudo_root_cause(text):
    assert pseudo_root_cause(text) is None
    root, _ = _root(text + "\n", title_line=0 if text.startswith("[") else None)
    assert root is None


# pydantic 2's rendering of a ValueError raised in a pydantic dataclass (vLLM's config classes), as printed
VALIDATION_ERROR = """\
pydantic_core._pydantic_core.ValidationError: 1 validation error for ParallelConfig
  Value error, World size (2) is larger than the number of available GPUs (1) in this node. If this is intentional \
and you are using:
- ray, set '--distributed-executor-backend ray'.
- multiprocessing, set '--nnodes' appropriately. [type=value_error, input_value=ArgsKwargs((), \
{'tensor_parallel_size': 2}), input_type=ArgsKwargs]
    For further information visit https://errors.pydantic.dev/2.13/v/value_error
"""


def test_a_pydantic_validation_error_message_holds_its_errors_without_tails_and_links():
    root, _ = _root(VALIDATION_ERROR)
    assert root.message.splitlines() == [
        "1 validation error for ParallelConfig",
        "Value error, World size (2) is larger than the number of available GPUs (1) in this node. If this is "
        "intentional and you are using:",
        "- ray, set '--distributed-executor-backend ray'.",
        "- multiprocessing, set '--nnodes' appropriately.",
    ]


def test_a_pydantic_field_error_keeps_the_field_name_and_several_errors_stay_in_order():
    text = """\
pydantic_core._pydantic_core.ValidationError: 2 validation errors for CacheConfig
gpu_memory_utilization
  Input should be less than or equal to 1 [type=less_than_equal, input_value=90, input_type=int]
    For further information visit https://errors.pydantic.dev/2.13/v/less_than_equal
block_size
  Input should be a valid integer, unable to parse string as an integer [type=int_parsing, input_value='x', \
input_type=str]
"""
    root, _ = _root(text)
    assert root.message.splitlines()[1:] == [
        "gpu_memory_utilization",
        "Input should be less than or equal to 1",
        "block_size",
        "Input should be a valid integer, unable to parse string as an integer",
    ]


def test_a_validation_error_without_pydantics_header_keeps_its_one_line_message():
    root, _ = _root("jsonschema.exceptions.ValidationError: 'name' is a required property\nFailed validating it\n")
    assert root.message == "'name' is a required property"


@pytest.mark.parametrize(
    "line, message",
    [
        ("main.py: error: unrecognized arguments: --enable-reasoning", "unrecognized arguments: --enable-reasoning"),
        (
            "vllm serve: error: argument --quantization/-q: invalid choice: 'awq4' (choose from 'awq', 'fp8')",
            "argument --quantization/-q: invalid choice: 'awq4' (choose from 'awq', 'fp8')",
        ),
        (
            "api_server.py: error: the following arguments are required: --model",
            "the following arguments are required: --model",
        ),
        (
            "vllm serve: error: argument -tp/--tensor-parallel-size: expected one argument",
            "argument -tp/--tensor-parallel-size: expected one argument",
        ),
    ],
)
def test_argparse_errors_are_root_causes(line, message):
    root, _ = _root(f"usage: prog [-h] [--model MODEL]\n{line}\n")
    assert (root.exc_type, root.message) == ("argparse error", message)


def test_an_argparse_error_quoted_in_a_title_is_the_root_cause():
    assert pseudo_root_cause("[Usage]: unrecognized arguments: --enable-reasoning").exc_type == "argparse error"


def test_error_lines_that_are_not_argparses_stay_what_they_were():
    root, _ = _root("RuntimeError: CUDA error: invalid argument\nCUDA kernel errors might be asynchronously reported\n")
    assert root.exc_type == "RuntimeError"


def test_lines_saying_error_colon_in_passing_are_not_searched_for_pseudo_errors(monkeypatch):
    """The argparse hint was 'error: ' at first: every such log line then ran all pseudo-error regexes
    (25x slower on a 2,000-line log); only argparse's own message shapes may reach them now."""
    import vllm_bug.formats.traceback as tracebacks

    searched = []
    monkeypatch.setattr(tracebacks, "_pseudo_from_line", lambda line, *rest: searched.append(line))
    lines = [f"INFO [loader.py:{i}] shard {i}: error: none" for i in range(100)]
    parse_tracebacks(lines + ["vllm: error: argument --dtype: invalid choice: 'x' (choose from 'auto', 'half')"])
    assert searched == ["vllm: error: argument --dtype: invalid choice: 'x' (choose from 'auto', 'half')"]
