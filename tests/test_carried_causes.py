"""Root causes inside wrappers: an error that carries or follows a real one is diagnosed as that one.

Message forms come from the sources: NCCL src/include/checks.h (CUDACHECK: "Cuda failure '%s'") and cudawrap.h
(CUCHECK: "Cuda failure %d '%s'"), both returning ncclUnhandledCudaError, which ncclGetErrorString (src/init.cc)
words "unhandled cuda error (run with NCCL_DEBUG=INFO for details)"; PyTorch c10d NCCLUtils getNcclErrorDetailStr
("ncclUnhandledCudaError: Call to CUDA function failed." + "\\nLast error:\\n" + ncclGetLastError); vLLM
vllm/v1/executor/multiproc_executor.py ("Worker failed with error '{result}', please check the stack trace above
for the root cause").
"""

from __future__ import annotations

from vllm_bug.analyzer.analyze import analyze_text
from vllm_bug.analyzer.logclean import clean_lines
from vllm_bug.analyzer.render_text import render_text
from vllm_bug.analyzer.tracebacks import parse_tracebacks, pick_root_cause

TORCH_NCCL_OOM = (
    "[rank1]: Traceback (most recent call last):\n"
    "[rank1]:   File "
    '"/usr/local/lib/python3.12/dist-packages/vllm/distributed/parallel_state.py", line '
    "1010, in init_distributed_environment\n"
    "[rank1]:     torch.distributed.all_reduce(data, group=_WORLD.device_group)\n"
    "[rank1]: torch.distributed.DistBackendError: NCCL error in: "
    "../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, unhandled cuda error (run "
    "with NCCL_DEBUG=INFO for details), NCCL version 2.20.5\n"
    "[rank1]: ncclUnhandledCudaError: Call to CUDA function failed.\n"
    "[rank1]: Last error:\n"
    "[rank1]: Cuda failure 'out of memory'\n"
)

TORCH_NCCL_ILLEGAL = (
    "[rank0]: torch.distributed.DistBackendError: NCCL error in: "
    "/pytorch/torch/csrc/distributed/c10d/NCCLUtils.hpp:268, unhandled cuda error (run with "
    "NCCL_DEBUG=INFO for details), NCCL version 2.21.5\n"
    "[rank0]: ncclUnhandledCudaError: Call to CUDA function failed.\n"
    "[rank0]: Last error:\n"
    "[rank0]: Cuda failure 'an illegal memory access was encountered'\n"
)

PYNCCL_WITH_WARN = (
    "gpu-node:2231:2231 [0] NCCL INFO Bootstrap : Using eth0:10.0.0.2<0>\n"
    "gpu-node:2231:2290 [0] NCCL INFO Cuda failure 'peer access is not supported between "
    "these two devices'\n"
    "gpu-node:2231:2290 [0] include/alloc.h:125 NCCL WARN Cuda failure 2 'out of memory'\n"
    "gpu-node:2231:2290 [0] NCCL INFO init.cc:1100 -> 1\n"
    "RuntimeError: NCCL error: unhandled cuda error (run with NCCL_DEBUG=INFO for details)\n"
)

WORKER_QUOTE = (
    "(EngineCore_DP0 pid=413) ERROR 11-10 12:30:57 [core.py:710] EngineCore encountered a "
    "fatal error.\n"
    "(EngineCore_DP0 pid=413) ERROR 11-10 12:30:57 [core.py:710] Traceback (most recent call "
    "last):\n"
    "(EngineCore_DP0 pid=413) ERROR 11-10 12:30:57 [core.py:710]   File "
    '"/usr/local/lib/python3.12/dist-packages/vllm/v1/executor/multiproc_executor.py", line '
    "248, in get_response\n"
    "(EngineCore_DP0 pid=413) ERROR 11-10 12:30:57 [core.py:710]     raise RuntimeError(\n"
    "(EngineCore_DP0 pid=413) ERROR 11-10 12:30:57 [core.py:710] RuntimeError: Worker failed "
    "with error 'CUDA error: an illegal memory access was encountered', please check the "
    "stack trace above for the root cause\n"
    "(APIServer pid=1) ERROR 11-10 12:30:58 [async_llm.py:480] AsyncLLM output_handler "
    "failed.\n"
    "(APIServer pid=1) vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an "
    "issue. See stack trace (above) for the root cause.\n"
)


def _root(text: str):
    lines = clean_lines(text)
    return pick_root_cause(lines, parse_tracebacks(lines))


def test_nccl_unhandled_cuda_error_with_a_cuda_oom_is_an_oom():
    root = _root(TORCH_NCCL_OOM)
    assert (root.exc_type, root.message) == ("Cuda failure", "out of memory")
    assert root.carried_by is not None and "unhandled cuda error" in root.carried_by.message
    assert root.frames and root.frames[-1].function == "init_distributed_environment"
    analysis = analyze_text(TORCH_NCCL_OOM)
    assert analysis.category == "cuda_oom"
    assert "NCCL_CUDA_ERROR" in [f.rule for f in analysis.diagnoses[1:]]
    assert "carried inside the DistBackendError" in render_text(analysis)


def test_nccl_unhandled_cuda_error_with_an_illegal_access_is_an_illegal_access():
    analysis = analyze_text(TORCH_NCCL_ILLEGAL)
    assert analysis.facts.root_cause.message == "an illegal memory access was encountered"
    assert analysis.category == "illegal_memory_access"
    assert analysis.diagnoses[0].confidence > analysis.diagnoses[1].confidence


def test_nccl_warning_lines_name_the_failure_and_info_lines_do_not():
    """CUCHECK's form has the CUresult number; CUDACHECKIGNORE's INFO line is a failure NCCL recovered from."""
    root = _root(PYNCCL_WITH_WARN)
    assert (root.exc_type, root.message) == ("Cuda failure", "out of memory")
    assert analyze_text(PYNCCL_WITH_WARN).category == "cuda_oom"


def test_nccl_unhandled_cuda_error_without_the_cuda_failure_stays_nccl():
    text = "RuntimeError: NCCL error: unhandled cuda error (run with NCCL_DEBUG=INFO for details)\n"
    root = _root(text)
    assert root.exc_type == "RuntimeError" and root.carried_by is None
    assert analyze_text(text).category == "nccl"


def test_a_cuda_failure_nccl_reports_with_no_category_of_its_own_stays_nccl():
    text = TORCH_NCCL_OOM.replace("'out of memory'", "'peer access is not supported between these two devices'")
    analysis = analyze_text(text)
    assert analysis.facts.root_cause.exc_type == "Cuda failure"
    assert analysis.category == "nccl"


def test_other_nccl_errors_are_not_unwrapped():
    text = TORCH_NCCL_OOM.replace("unhandled cuda error", "unhandled system error")
    assert _root(text).carried_by is None


def test_a_worker_failure_quoting_its_error_is_that_error():
    root = _root(WORKER_QUOTE)
    assert (root.exc_type, root.message) == ("CUDA error", "CUDA error: an illegal memory access was encountered")
    assert root.carried_by.short_type == "RuntimeError"
    analysis = analyze_text(WORKER_QUOTE)
    assert analysis.category == "illegal_memory_access"
    assert analysis.diagnoses[0].confidence == 0.95
    assert "ROOT_CAUSE_NOT_CAPTURED" not in [f.rule for f in analysis.diagnoses]


def test_the_worker_traceback_itself_wins_over_the_quote():
    worker = (
        "(VllmWorker TP0 pid=225) ERROR 11-10 12:30:56 [multiproc_executor.py:602] torch.OutOfMemoryError: CUDA out "
        "of memory. Tried to allocate 2.00 GiB.\n"
    )
    text = worker + WORKER_QUOTE.replace("CUDA error: an illegal memory access was encountered", "CUDA out of memory.")
    root = _root(text)
    assert root.exc_type == "torch.OutOfMemoryError" and root.carried_by is None


def test_a_quote_that_names_no_gpu_failure_is_left_to_the_wrapper_rules():
    text = WORKER_QUOTE.replace("CUDA error: an illegal memory access was encountered", "list index out of range")
    assert _root(text) is None


def test_a_peer_disconnect_printed_first_gives_way_to_the_error_that_caused_it():
    text = (
        "[rank0]: RuntimeError: NCCL error: remote process exited or there was a network error, NCCL version 2.21.5\n"
        "[rank0]:[E ProcessGroupNCCL.cpp:563] [Rank 0] Watchdog caught collective operation timeout\n"
        "[rank1]: Traceback (most recent call last):\n"
        '[rank1]:   File "/usr/local/lib/python3.12/dist-packages/vllm/worker/model_runner.py", line 1724, '
        "in execute_model\n"
        "[rank1]:     hidden_states = model_executable(input_ids)\n"
        "[rank1]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.74 GiB.\n"
    )
    root = _root(text)
    assert root.exc_type == "torch.OutOfMemoryError"
    assert analyze_text(text).category == "cuda_oom"


def test_a_peer_disconnect_alone_is_still_the_root_cause():
    text = (
        "[rank0]: RuntimeError: NCCL error: remote process exited or there was a network error, NCCL version 2.21.5\n"
    )
    assert "remote process exited" in _root(text).message
