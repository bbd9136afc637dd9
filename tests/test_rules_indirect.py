"""Evidence beyond the error line (analyzer/rules/indirect.py): the layer a traceback stopped in, vLLM's progress
lines, and the reporter's words. Each finding says its evidence is indirect and gives way to any finding on an
error message of the same category.

Frame names are those of the sources: triton/compiler/compiler.py compile, triton/backends/nvidia/compiler.py
make_llir, torch/_inductor/compile_fx.py, vllm/v1/worker/gpu_model_runner.py capture_model and _capture_cudagraphs,
torch/cuda/graphs.py, torch/distributed/distributed_c10d.py, vllm/distributed/device_communicators/pynccl.py;
progress lines are vllm/compilation/backends.py's and monitor.py's.
"""

from __future__ import annotations

import pytest

from rule_helpers import facts, fire, root
from vllm_bug.analyzer.analyze import analyze_text
from vllm_bug.analyzer.facts import Frame, Traceback
from vllm_bug.analyzer.rules import is_indirect

SITE = "/usr/local/lib/python3.12/dist-packages"


def frame_lines(*frames: tuple[str, str]) -> str:
    return "".join(f'  File "{SITE}/{path}", line 100, in {function}\n    call()\n' for path, function in frames)


def cut_traceback(*frames: tuple[str, str]) -> str:
    """A traceback as pasted with its last lines missing: no exception line after the frames."""
    return "Traceback (most recent call last):\n" + frame_lines(*frames)


TRITON_COMPILE = (
    ("vllm/v1/attention/backends/triton_attn.py", "forward"),
    ("vllm/attention/ops/triton_unified_attention.py", "unified_attention"),
    ("triton/runtime/jit.py", "run"),
    ("triton/compiler/compiler.py", "compile"),
    ("triton/backends/nvidia/compiler.py", "<lambda>"),
    ("triton/backends/nvidia/compiler.py", "make_llir"),
)
GRAPH_CAPTURE = (
    ("vllm/v1/engine/core.py", "_initialize_kv_caches"),
    ("vllm/v1/worker/gpu_worker.py", "compile_or_warm_up_model"),
    ("vllm/v1/worker/gpu_model_runner.py", "capture_model"),
    ("vllm/v1/worker/gpu_model_runner.py", "_capture_cudagraphs"),
    ("vllm/v1/worker/gpu_model_runner.py", "_dummy_run"),
)
ALL_REDUCE = (
    ("vllm/model_executor/layers/linear.py", "forward"),
    ("vllm/distributed/communication_op.py", "tensor_model_parallel_all_reduce"),
    ("vllm/distributed/parallel_state.py", "all_reduce"),
    ("vllm/distributed/device_communicators/cuda_communicator.py", "all_reduce"),
    ("vllm/distributed/device_communicators/pynccl.py", "all_reduce"),
)


def top(text: str):
    analysis = analyze_text(text)
    return analysis.diagnoses[0] if analysis.diagnoses else None


# -- stack frames ---------------------------------------------------------------------------------
def test_a_cut_traceback_inside_triton_compiler_is_a_compile_failure():
    finding = top(cut_traceback(*TRITON_COMPILE))
    assert (finding.rule, finding.category) == ("STOPPED_IN_COMPILER", "triton_compile")
    assert "inferred from the stack frames" in finding.title and "not in the input" in finding.title
    assert finding.details["indirect"] == "stack frames" and finding.confidence < 0.7
    assert any("triton/compiler/compiler.py" in line for line in finding.evidence)
    assert "last lines" in finding.fixes[0]


def test_with_a_prose_title_the_cut_traceback_still_decides():
    finding = top("[Bug]: Error when starting Qwen3 on RTX 3090\n" + cut_traceback(*TRITON_COMPILE))
    assert finding.rule == "STOPPED_IN_COMPILER"


def test_a_cut_traceback_inside_graph_capture_is_a_graph_failure():
    finding = top(cut_traceback(*GRAPH_CAPTURE))
    assert (finding.rule, finding.category) == ("STOPPED_IN_GRAPH_CAPTURE", "cuda_graph")
    assert "inferred from the stack frames" in finding.title


def test_a_triton_compile_during_graph_capture_is_the_compile_failure():
    """The innermost layer is the likelier cause, with or without a title (the root-cause frames rule steps aside)."""
    frames = (*GRAPH_CAPTURE, *TRITON_COMPILE[2:])
    assert top(cut_traceback(*frames)).category == "triton_compile"
    assert top("[Bug]: vLLM fails to start\n" + cut_traceback(*frames)).category == "triton_compile"


def test_a_collective_during_graph_capture_is_the_collective_failure():
    assert top("[Bug]: crash at start-up\n" + cut_traceback(*GRAPH_CAPTURE, *ALL_REDUCE[1:])).category == "nccl"


def test_a_cut_traceback_inside_a_collective_is_a_communication_failure():
    finding = top(cut_traceback(*ALL_REDUCE))
    assert (finding.rule, finding.category) == ("STOPPED_IN_COLLECTIVE", "nccl")


def test_an_unknown_error_raised_inside_the_compiler_is_a_compile_failure_with_less_confidence():
    text = "Traceback (most recent call last):\n" + frame_lines(*TRITON_COMPILE) + "IndexError: map::at\n"
    finding = top(text)
    assert finding.rule == "STOPPED_IN_COMPILER" and "the error was raised there" in finding.title
    assert finding.confidence < top(cut_traceback(*TRITON_COMPILE)).confidence


def test_a_known_error_inside_the_compiler_is_that_error():
    text = (
        "Traceback (most recent call last):\n"
        + frame_lines(*TRITON_COMPILE)
        + "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB.\n"
    )
    assert top(text).category == "cuda_oom"


@pytest.mark.parametrize(
    "frames",
    [
        (("triton/runtime/jit.py", "run"), ("triton/backends/nvidia/driver.py", "__call__")),
        (("torch/_inductor/output_code.py", "__call__"), ("torch/_inductor/utils.py", "run")),
        (("torch/_inductor/codecache.py", "__call__"),),
        (("torch/_dynamo/eval_frame.py", "_fn"),),
        (("vllm/compilation/cuda_graph.py", "__call__"),),
        (("vllm/distributed/device_communicators/shm_broadcast.py", "dequeue"),),
        (("torch/distributed/elastic/multiprocessing/errors/__init__.py", "wrapper"),),
    ],
)
def test_frames_that_only_run_compiled_code_replay_graphs_or_wait_on_a_queue_say_nothing(frames):
    """A launch, a replay or an RPC wait is not where compilation, capture or a collective failed."""
    analysis = analyze_text(cut_traceback(("vllm/v1/worker/gpu_worker.py", "execute_model"), *frames))
    assert not [f for f in analysis.diagnoses if is_indirect(f)]


def test_frames_of_a_traceback_that_is_not_the_root_cause_are_read():
    """The root cause is the quoted title; the frames come from a cut traceback before an unrelated one."""
    f = facts(
        tracebacks=[
            Traceback("", "", frames=[Frame(f"{SITE}/{p}", 1, fn) for p, fn in TRITON_COMPILE]),
            Traceback("", "", frames=[Frame(f"{SITE}/vllm/entrypoints/cli/main.py", 1, "main")]),
        ]
    )
    assert f.signals.in_any_frames("TRITON_COMPILER_FRAMES")
    assert f.signals.frame_path("TRITON_COMPILER_FRAMES") == f"{SITE}/triton/compiler/compiler.py"
    assert fire("STOPPED_IN_COMPILER", f) is not None


def test_the_root_causes_own_frames_count_for_all_frames_signals():
    f = facts(
        root_cause=root(
            "RuntimeError", "PassManager::run failed", frames=((f"{SITE}/triton/compiler/compiler.py", "compile"),)
        )
    )
    assert f.signals.root("TRITON_COMPILER_FRAMES") and f.signals.in_any_frames("TRITON_COMPILER_FRAMES")


# -- vLLM's progress lines -------------------------------------------------------------------------
COMPILE_STARTED = (
    "(EngineCore_DP0 pid=191) INFO 03-18 13:41:09 [backends.py:643] Using cache directory: "
    "/root/.cache/vllm/torch_compile_cache/4aae4d336d/rank_0_0/backbone for vLLM's torch.compile\n"
    "(EngineCore_DP0 pid=191) INFO 03-18 13:41:09 [backends.py:703] Dynamo bytecode transform time: 5.73 s\n"
)
DIED = (
    "(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}\n"
)


def test_a_failure_after_compilation_started_and_before_it_finished_is_a_compile_failure():
    finding = top(COMPILE_STARTED + DIED)
    assert (finding.rule, finding.category) == ("FAILED_WHILE_COMPILING", "triton_compile")
    assert finding.details["indirect"] == "vLLM's log" and "Dynamo bytecode transform time" in " ".join(
        finding.evidence
    )


def test_a_finished_compilation_is_not_blamed():
    finished = "(EngineCore_DP0 pid=191) INFO 03-18 13:41:26 [monitor.py:34] torch.compile takes 17.02 s in total\n"
    assert "FAILED_WHILE_COMPILING" not in [f.rule for f in analyze_text(COMPILE_STARTED + finished + DIED).diagnoses]


def test_compilation_in_progress_without_a_failure_says_nothing():
    assert analyze_text(COMPILE_STARTED).diagnoses == []


# -- the reporter's words --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "said",
    [
        "The server starts and works fine with --enforce-eager.",
        "Adding `--enforce-eager` fixes the crash.",
        "It works in eager mode.",
        "Everything works without cuda graphs.",
        "Setting enforce_eager=True solves it",
    ],
)
def test_works_with_cuda_graphs_off_points_at_cuda_graphs(said):
    finding = top(f"[Bug]: Qwen3 crashes on start-up\n{said}\n")
    assert (finding.rule, finding.category) == ("WORKS_WITHOUT_CUDA_GRAPHS", "cuda_graph")
    assert finding.details["indirect"] == "the reporter's words" and "report's words" in finding.title


@pytest.mark.parametrize(
    "said",
    [
        "The same command works with -O0",
        "it works fine without torch.compile",
        "Disabling torch.compile resolves it",
        "works with --compilation-config 0",
    ],
)
def test_works_with_compilation_off_points_at_compilation(said):
    assert top(f"[Bug]: Qwen3 crashes on start-up\n{said}\n").rule == "WORKS_WITHOUT_COMPILE"


@pytest.mark.parametrize(
    "said",
    [
        "It doesn't work with --enforce-eager either.",
        "It does not work with --enforce-eager.",
        "I ran it with --enforce-eager and it still crashes.",
        "INFO 12-20 20:25:49 model_runner.py:1413] Capturing cudagraphs for decoding. This may lead to unexpected "
        "consequences if the model is not static. To run the model in eager mode, set 'enforce_eager=True' or use "
        "'--enforce-eager' in the CLI.",
        "It works with torch.compile on 0.8 but not on 0.9.",
        "--enforce-eager doesn't help",
    ],
)
def test_negations_tries_and_vllms_own_hint_are_not_a_workaround(said):
    analysis = analyze_text(f"[Bug]: Qwen3 crashes on start-up\n{said}\n")
    assert not {"WORKS_WITHOUT_CUDA_GRAPHS", "WORKS_WITHOUT_COMPILE"} & {f.rule for f in analysis.diagnoses}


def test_a_title_naming_graph_capture_or_compilation_as_the_failure():
    assert top("[Bug]: CUDA graph capture fails on 4x RTX 3090 with Qwen3-30B\n").rule == "GRAPH_FAILURE_NAMED"
    assert top("[Bug]: torch.compile fails for Gemma 3 on V100\n").rule == "COMPILE_FAILURE_NAMED"


def test_compilation_named_or_turned_off_outranks_enforce_eager_which_turns_off_both():
    text = "[Bug]: torch.compile fails for Gemma 3\nIt works with --enforce-eager.\n"
    assert top(text).category == "triton_compile"


# -- indirect findings give way to error messages ---------------------------------------------------
def test_an_error_message_of_the_same_category_makes_the_indirect_finding_redundant():
    text = (
        "[Bug]: CUDA graph capture fails on Kubernetes\n"
        "torch.AcceleratorError: CUDA error: operation not permitted when stream is capturing\n"
    )
    rules = [f.rule for f in analyze_text(text).diagnoses]
    assert rules[0] == "CUDA_GRAPH_CAPTURE_FAILED" and "GRAPH_FAILURE_NAMED" not in rules


def test_an_indirect_finding_quoting_the_title_does_not_outrank_an_error_message():
    """The root cause made from the title is 'explained' by any finding quoting it; indirect ones do not count."""
    text = (
        "[Bug]: torch.compile fails with an illegal memory access\n"
        "RuntimeError: CUDA error: an illegal memory access was encountered\n"
    )
    analysis = analyze_text(text)
    assert analysis.category == "illegal_memory_access"
    assert [f.rule for f in analysis.diagnoses][-1] == "COMPILE_FAILURE_NAMED"


def test_the_frames_of_many_ranks_are_searched_once():
    """Every rank prints the same traceback: the all-frames text holds each distinct frame once."""
    from vllm_bug.analyzer.signals import _all_frames_text

    same = [Traceback("", "", frames=[Frame(f"{SITE}/{p}", n, fn) for n, (p, fn) in enumerate(TRITON_COMPILE)])] * 200
    f = facts(tracebacks=same)
    assert _all_frames_text(f).splitlines() == [f"{SITE}/{p} {fn}" for p, fn in dict.fromkeys(TRITON_COMPILE)]
