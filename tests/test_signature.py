import re

import pytest

from report_helpers import corpus_cases, facts_from_text
from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.signature import compute_signature, parameterise, signature_prefix

SIG_RX = re.compile(r"^vllm-sig/1:[\w-]+:[^:#]+:[^:#]+:[^:#]+#[0-9a-f]{8}$")

# vllm-project/vllm#10416 as posted (mllama forward during CUDA graph capture).
STREAM_CAPTURE = """\
Traceback (most recent call last):
  File "{root}/vllm/worker/model_runner.py", line {l1}, in capture
    output_hidden_or_intermediate_states = self.model(
  File "{root}/torch/nn/modules/module.py", line 1553, in _wrapped_call_impl
    return self._call_impl(*args, **kwargs)
  File "{root}/torch/nn/modules/module.py", line 1562, in _call_impl
    return forward_call(*args, **kwargs)
  File "{root}/vllm/model_executor/models/mllama.py", line {l2}, in forward
    skip_cross_attention = max(attn_metadata.encoder_seq_lens) == 0
RuntimeError: CUDA error: operation not permitted when stream is capturing
CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.
"""

OOM_LOAD = """\
{p}Traceback (most recent call last):
{p}  File "{root}/vllm/v1/executor/multiproc_executor.py", line 244, in __init__
{p}    self.worker.load_model()
{p}  File "{root}/vllm/v1/worker/gpu_worker.py", line {l1}, in load_model
{p}    self.model_runner.load_model()
{p}  File "{root}/vllm/v1/worker/gpu_model_runner.py", line {l2}, in load_model
{p}    self.model = get_model(vllm_config=self.vllm_config)
{p}  File "{root}/torch/utils/_device.py", line 104, in __torch_function__
{p}    return func(*args, **kwargs)
{p}torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {alloc}. GPU {gpu} has a total capacity of {cap} of which 605.88 MiB is free. Process {pid} has 22.97 GiB memory in use.
"""

OOM_SAMPLER = """\
Traceback (most recent call last):
  File "/usr/lib/python3.12/site-packages/vllm/v1/worker/gpu_worker.py", line 290, in compile_or_warm_up_model
    self.model_runner._dummy_sampler_run(hidden_states=last_hidden_states)
  File "/usr/lib/python3.12/site-packages/vllm/v1/worker/gpu_model_runner.py", line 2101, in _dummy_sampler_run
    raise RuntimeError(
torch.OutOfMemoryError: CUDA out of memory occurred when warming up sampler with 1024 dummy requests. Please try lowering `max_num_seqs` or `gpu_memory_utilization` when initializing the engine.
"""


def sig(text: str, **extra) -> str:
    return compute_signature(facts_from_text(text, **extra))[0]


def test_layout_is_readable_and_versioned():
    s = sig(STREAM_CAPTURE.format(root="/usr/lib/python3.10/site-packages", l1=1795, l2=1233))
    assert SIG_RX.match(s), s
    assert s.startswith("vllm-sig/1:cuda-error:RuntimeError:operation not permitted when stream is capturing:")
    assert "mllama.forward,model_runner.capture" in s


def test_same_bug_on_other_machines_and_versions_gets_the_same_signature():
    a = sig(STREAM_CAPTURE.format(root="/root/miniconda3/envs/kv/lib/python3.9/site-packages", l1=1795, l2=1233))
    b = sig(STREAM_CAPTURE.format(root="/usr/local/lib/python3.12/dist-packages", l1=1801, l2=1240))
    c = sig(STREAM_CAPTURE.format(root="/home/me/src", l1=10, l2=20))  # a source checkout
    assert a == b == c


def test_oom_ignores_sizes_gpu_index_pids_ranks_and_log_prefixes():
    a = sig(
        OOM_LOAD.format(
            p="(VllmWorker rank=5 pid=3073) ERROR 03-19 07:27:53 [multiproc_executor.py:375] ",
            root="/opt/venv/lib/python3.12/site-packages",
            l1=136,
            l2=1167,
            alloc="1.74 GiB",
            gpu=1,
            cap="23.57 GiB",
            pid=133288,
        )
    )
    b = sig(
        OOM_LOAD.format(
            p="\x1b[36m(VllmWorker rank=0 pid=2961)\x1b[0m ",
            root="/usr/local/lib/python3.10/dist-packages",
            l1=140,
            l2=1201,
            alloc="512.00 MiB",
            gpu=0,
            cap="79.10 GiB",
            pid=42,
        )
    )
    assert a == b
    assert ":oom:OutOfMemoryError:CUDA out of memory:" in a


def test_different_causes_get_different_signatures():
    load = sig(OOM_LOAD.format(p="", root="/x/site-packages", l1=1, l2=2, alloc="1 GiB", gpu=0, cap="1 GiB", pid=1))
    sampler = sig(OOM_SAMPLER)
    capture = sig(STREAM_CAPTURE.format(root="/x/site-packages", l1=1, l2=2))
    assert len({load, sampler, capture}) == 3
    # same place, different CUDA error -> different
    other_error = sig(
        STREAM_CAPTURE.format(root="/x/site-packages", l1=1, l2=2).replace(
            "operation not permitted when stream is capturing", "an illegal memory access was encountered"
        )
    )
    assert other_error != capture
    assert signature_prefix(other_error).endswith("an illegal memory access was encountered")


def test_accelerator_error_and_runtime_error_are_the_same_cuda_error():
    base = STREAM_CAPTURE.format(root="/x/site-packages", l1=1, l2=2)
    newer_torch = base.replace("RuntimeError: CUDA error", "torch.AcceleratorError: CUDA error")
    assert sig(base) == sig(newer_torch)
    explanation = compute_signature(facts_from_text(newer_torch))[1]
    assert any("AcceleratorError counted as RuntimeError" in line for line in explanation)


def test_explanation_lists_contributing_and_dropped_frames():
    _, why = compute_signature(facts_from_text(STREAM_CAPTURE.format(root="/x/site-packages", l1=1, l2=2)))
    text = "\n".join(why)
    assert "torch.nn.modules.module:_call_impl: dropped, not in-app" in text
    assert "vllm.model_executor.models.mllama:forward: contributes as mllama.forward" in text
    assert why[0] == "algorithm vllm-sig/1"


def test_wrapper_exception_is_skipped_for_its_cause():
    text = STREAM_CAPTURE.format(root="/x/site-packages", l1=1, l2=2) + (
        "\nThe above exception was the direct cause of the following exception:\n\n"
        "Traceback (most recent call last):\n"
        '  File "/x/site-packages/vllm/v1/engine/core_client.py", line 10, in __init__\n'
        "    raise RuntimeError('x')\n"
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}\n"
    )
    facts = facts_from_text(text)
    assert "stream is capturing" in facts.root_cause.message  # the text pipeline skips the wrapper
    # and the signature skips it on its own too, whatever root cause it is handed
    facts.root_cause = next(tb for tb in facts.tracebacks if tb.message.startswith("Engine core"))
    s, why = compute_signature(facts)
    assert s == sig(STREAM_CAPTURE.format(root="/x/site-packages", l1=1, l2=2))
    assert any("skipped wrapper" in w for w in why)


def test_custom_all_reduce_failures_match_across_paths_and_lines():
    # vllm-project/vllm#49101 and #5613: same failing call, different build paths and line numbers.
    a = sig("Failed: Cuda error /workspace/csrc/custom_all_reduce.cuh:455 'invalid argument'")
    b = sig("[rank3]: Failed: /home/runner/work/vllm/vllm/csrc/custom_all_reduce.cuh:310 'invalid argument'")
    assert a == b
    assert ":cuda-error:" in a and "custom_all_reduce.cuh 'invalid argument'" in a


@pytest.mark.parametrize(
    "first, second",
    [
        (
            "RuntimeError: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details)",
            "torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp:219, "
            "unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.20.5",
        ),
    ],
)
def test_nccl_error_text_is_the_qualifier(first, second):
    a, b = sig(first), sig(second)
    assert ":nccl:" in a and "unhandled system error" in a
    assert signature_prefix(a).split(":")[3] == signature_prefix(b).split(":")[3]


def test_without_traceback_falls_back_to_the_normalised_error_line():
    a = sig(
        "INFO 01-01 starting\nERROR 05-02 10:11:12 [engine.py:157] ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."
    )
    b = sig(
        "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."
    )
    assert a == b and ":kv-cache:ValueError:" in a
    assert sig("all good\nnothing failed").startswith("vllm-sig/1:none:")


def test_parameterise_drops_what_varies():
    assert (
        parameterise("GPU 3 at 0x7f3a2b00 pid 1234 file /usr/lib/x/libfoo.so.1 at 2024-05-01 10:11:12")
        == "GPU <n> at <addr> pid <n> file libfoo.so.1 at <time>"
    )
    # meaningful tokens inside identifiers survive
    assert "GLIBC_2.34" in parameterise("version `GLIBC_2.34' not found")
    assert "_Z24silu_and_mul" in parameterise("undefined symbol: _Z24silu_and_mul")


def test_corpus_cases_of_one_category_share_the_coarse_signature():
    cases = corpus_cases()
    ima = [cases[i] for i in ("vllm-project/vllm#6976", "vllm-project/vllm#17295", "vllm-project/vllm#1518")]
    prefixes = {signature_prefix(sig(c["title"] + "\n" + c["error_text"])) for c in ima}
    assert prefixes == {"vllm-sig/1:cuda-error:RuntimeError:an illegal memory access was encountered"}


def test_corpus_signatures_are_well_formed_and_mostly_distinct_across_categories():
    cases = list(corpus_cases().values())
    by_category: dict[str, set[str]] = {}
    for case in cases:
        s = sig(case["title"] + "\n" + case["error_text"])
        assert SIG_RX.match(s), (case["id"], s)
        by_category.setdefault(case["category"], set()).add(signature_prefix(s))
    # no coarse signature is shared by two different categories
    seen: dict[str, str] = {}
    for category, prefixes in by_category.items():
        for p in prefixes - {"vllm-sig/1:none:-:-"}:  # title-only cases with no error text
            assert seen.setdefault(p, category) == category, (p, category, seen[p])


def test_empty_facts():
    s, why = compute_signature(Facts())
    assert s.startswith("vllm-sig/1:none:-:-:-#")
    assert why


def test_cuda_runtime_error_names_are_error_lines_when_there_is_no_traceback():
    # a C++/CUDA program's output (as recorded on an H200): the CUDA error line, not the first line
    from vllm_bug.analyzer.textfacts import facts_from_text as real_facts_from_text

    facts = real_facts_from_text("# exit 1\nlaunch: cudaErrorInvalidValue: invalid argument\n")
    signature, _ = compute_signature(facts)
    assert "cudaErrorInvalidValue invalid argument" in signature
    assert "exit" not in signature


# pydantic 2's rendering of vLLM's config refusals (vLLM 0.22: ParallelConfig and VllmConfig are pydantic dataclasses)
VALIDATION = """\
Traceback (most recent call last):
  File "/opt/venv/lib/python3.12/site-packages/vllm/engine/arg_utils.py", line 1957, in create_engine_config
    parallel_config = ParallelConfig(
pydantic_core._pydantic_core.ValidationError: 1 validation error for ParallelConfig
  Value error, {error} [type=value_error, input_value=ArgsKwargs((), {{'tensor_parallel_size': 2}}), \
input_type=ArgsKwargs]
    For further information visit https://errors.pydantic.dev/2.13/v/value_error
"""
WORLD_SIZE = "World size ({n}) is larger than the number of available GPUs ({m}) in this node."
HEADS = "Total number of attention heads ({n}) must be divisible by tensor parallel size ({m})."


def test_validation_errors_differ_by_their_first_error_not_by_its_numbers():
    world_2 = sig(VALIDATION.format(error=WORLD_SIZE.format(n=2, m=1)))
    world_8 = sig(VALIDATION.format(error=WORLD_SIZE.format(n=8, m=4)))
    heads = sig(VALIDATION.format(error=HEADS.format(n=12, m=8)))
    assert world_2 == world_8
    assert world_2 != heads
    assert ":ParallelConfig Value error World size (<n>) is larger than" in world_2


def test_a_validation_error_on_a_field_keeps_the_field_and_its_error():
    text = (
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for CacheConfig\n"
        "gpu_memory_utilization\n"
        "  Input should be less than or equal to 1 [type=less_than_equal, input_value=90, input_type=int]\n"
    )
    other = text.replace("gpu_memory_utilization", "swap_space")
    assert "CacheConfig gpu_memory_utilization Input should be" in sig(text)
    assert sig(text) != sig(other)
