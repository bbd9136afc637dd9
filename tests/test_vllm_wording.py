"""A program that is known not to be vLLM never gets vLLM's wording: no vLLM flags, variables, releases or
'the engine' in a finding's title or fixes.

Every example line of every signal row is put at the end of a plain torch traceback (a training script,
torch's own frames, no vLLM anywhere), and every finding on it is checked. The rows whose message only vLLM
prints are left out: a finding about vLLM's own message may name vLLM.
"""

from __future__ import annotations

import re

import pytest

from vllm_bug.analyzer.analyze import analyze_facts
from vllm_bug.analyzer.rules.helpers import vllm_not_involved
from vllm_bug.analyzer.signals import read_tables
from vllm_bug.analyzer.textfacts import facts_from_text

PLAIN_TORCH = """\
Traceback (most recent call last):
  File "/home/user/train.py", line 12, in <module>
    out = model(x)
  File "/opt/venv/lib/python3.12/site-packages/torch/nn/modules/module.py", line 1775, in _call_impl
    return forward_call(*args, **kwargs)
"""
VLLM_WORDING = re.compile(
    r"vllm(?!-bug)|\bengine\b|(?<![\w-])-O0\b|--(?:enforce-eager|tensor-parallel-size|pipeline-parallel-size|"
    r"max-num-seqs|max-num-batched-tokens|gpu-memory-utilization|dtype|attention-backend|compilation-config|"
    r"max-cudagraph-capture-size|disable-custom-all-reduce|max-model-len|kv-cache-dtype|cpu-offload-gb|quantization)\b",
    re.IGNORECASE,
)
# Saying that vLLM's settings do not apply is no vLLM advice, and a line of the input quoted in 'quotes' is the
# reporter's text, not ours.
NOT_VLLM = re.compile(r"in a program that is not vLLM \([^)]*\), so vLLM's settings do not apply\.|'[^']*'")
# Findings about messages that only vLLM prints (the rows' sources name vLLM's files).
VLLM_MESSAGES = {
    "BF16_ON_OLD_GPU",
    "CUDAGRAPH_MODE_UNSUPPORTED",
    "CUSTOM_ALLREDUCE_INVALID_ARGUMENT",
    "CUSTOM_OP_NOT_COMPILED_FOR_CAPABILITY",
    "FAILED_TO_INFER_DEVICE",
    "FREE_MEMORY_BELOW_UTILIZATION",
    "KV_CACHE_CONCURRENCY_BELOW_ONE",
    "KV_CACHE_NO_BLOCKS",
    "KV_CACHE_TOO_SMALL_FOR_MAX_LEN",
    "MAX_MODEL_LEN_ABOVE_DERIVED",
    "NCCL_LIBRARY_LOAD_FAILED",
    "QUANTIZATION_NEEDS_NEWER_GPU",
    "FAILED_WHILE_COMPILING",
}
# engine_config findings are about vLLM refusing its own engine arguments, except argparse's refusals, which any
# program's command line can get.
ARGPARSE = {"UNRECOGNIZED_ARGUMENT", "REQUIRED_ARGUMENT_MISSING", "INVALID_ARGUMENT_VALUE"}
EXAMPLES = sorted(
    {
        (signal_id, example)
        for signal_id, row in read_tables("signals", "signals").items()
        for example in row.get("examples", [])
    }
)


@pytest.mark.parametrize("signal_id, example", EXAMPLES, ids=[f"{s}-{i}" for i, (s, _) in enumerate(EXAMPLES)])
def test_no_vllm_wording_outside_vllm(signal_id, example):
    facts = facts_from_text(PLAIN_TORCH + example + "\n")
    if not vllm_not_involved(facts):
        pytest.skip("the example itself names vLLM")
    for finding in analyze_facts(facts).diagnoses:
        if finding.rule in VLLM_MESSAGES or (finding.category == "engine_config" and finding.rule not in ARGPARSE):
            continue
        for text in [finding.title, *finding.fixes]:
            assert not VLLM_WORDING.search(NOT_VLLM.sub("", text)), (finding.rule, text)


def test_the_same_findings_keep_vllms_wording_in_a_vllm_run():
    graph = "torch.AcceleratorError: CUDA error: operation not permitted when stream is capturing"
    plain = analyze_facts(facts_from_text(PLAIN_TORCH + graph + "\n")).diagnoses[0]
    vllm_run = PLAIN_TORCH.replace(
        "/home/user/train.py", "/opt/venv/lib/python3.12/site-packages/vllm/v1/worker/gpu_model_runner.py"
    )
    served = analyze_facts(facts_from_text(vllm_run + graph + "\n")).diagnoses[0]
    assert plain.rule == served.rule == "CUDA_GRAPH_CAPTURE_FAILED"
    assert plain.title.endswith("while the program captured a CUDA graph.")
    assert served.title.endswith("while vLLM captured the model's graphs.")
    assert any("--enforce-eager" in fix for fix in served.fixes)
    assert not any("--enforce-eager" in fix for fix in plain.fixes)


def test_vllm_process_tags_count_as_vllm_though_cleaning_strips_them():
    # the shape of vllm-project/vllm#14404: every line tagged by a vLLM worker, no other trace of vLLM
    tag = "(VllmWorker rank=5 pid=33503) ERROR 03-06 06:49:30 [multiproc_executor.py:375] "
    text = "".join(tag + line + "\n" for line in PLAIN_TORCH.splitlines())
    text += tag + "RuntimeError: CUDA error: an illegal memory access was encountered\n"
    facts = facts_from_text(text)
    assert facts.vllm_process_tags and not vllm_not_involved(facts)
    top = analyze_facts(facts).diagnoses[0]
    assert top.rule == "ILLEGAL_MEMORY_ACCESS" and top.title.endswith("the engine must restart.")
    assert any("--enforce-eager" in fix for fix in top.fixes)
    untagged = facts_from_text(PLAIN_TORCH + "RuntimeError: CUDA error: an illegal memory access was encountered\n")
    assert vllm_not_involved(untagged)
    assert analyze_facts(untagged).diagnoses[0].title.endswith("the process must restart.")


OOM = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB\n"
)


def test_a_folder_named_like_vllm_does_not_make_a_vllm_run():
    text = PLAIN_TORCH.replace("/home/user/train.py", "/home/user/vllm-test/train.py") + OOM
    facts = facts_from_text(text)
    assert vllm_not_involved(facts)
    assert "in a program that is not vLLM" in analyze_facts(facts).diagnoses[0].title


def test_vllms_log_header_makes_a_vllm_run_without_the_word_vllm():
    # vllm/logger.py's format: 'LEVEL MM-DD hh:mm:ss [file.py:N] message' (older releases 'file.py:N]'), the date and
    # source greyed by ANSI codes when coloured; the last lines of such a log need not say "vllm" anywhere
    for header in (
        "INFO 03-19 07:27:53 [gpu_model_runner.py:1580] Model loading took 15.2 GiB\n",
        "INFO 03-19 07:27:53 model_runner.py:1580] Loading model weights took 15.2 GB\n",
        "INFO \x1b[90m03-19 07:27:53\x1b[0m \x1b[90m[gpu_model_runner.py:1580]\x1b[0m Model loading took 15.2 GiB\n",
    ):
        facts = facts_from_text(header + PLAIN_TORCH + OOM)
        assert facts.vllm_log_lines and not vllm_not_involved(facts), header
        assert "not vLLM" not in analyze_facts(facts).diagnoses[0].title
    plain_logging = "INFO:root:loading the model\n2026-03-19 07:27:53,120 - INFO - train.py:12 - step 1\n"
    assert vllm_not_involved(facts_from_text(plain_logging + PLAIN_TORCH + OOM))


def test_a_vllm_command_counts_and_a_file_named_like_vllm_does_not():
    assert not vllm_not_involved(facts_from_text("$ vllm serve Qwen/Qwen3-0.6B\n" + PLAIN_TORCH + OOM))
    assert not vllm_not_involved(facts_from_text("from vllm import LLM\n" + PLAIN_TORCH + OOM))
    assert vllm_not_involved(facts_from_text("$ python vllm_test_runner.py\n" + PLAIN_TORCH + OOM))


def recorded_run(command: str, text: str, **fields):
    """Facts as a bundle written by `vllm-bug run` gives them: the command it ran, its output, vLLM installed."""
    facts = facts_from_text(text)
    facts.launch_command, facts.command_recorded = command, True
    for name, value in fields.items():
        setattr(facts, name, value)
    return facts


def test_a_recorded_command_that_never_reaches_vllm_is_not_vllm_though_vllm_is_installed():
    facts = recorded_run("python3 train.py", PLAIN_TORCH + OOM, vllm_version="0.22.0", vllm_installed=True)
    assert vllm_not_involved(facts)
    assert not any("--gpu-memory-utilization" in fix for d in analyze_facts(facts).diagnoses for fix in d.fixes)


def test_a_recorded_command_is_vllm_when_its_traceback_or_log_is():
    through_vllm = PLAIN_TORCH.replace(
        "/home/user/train.py", "/opt/venv/lib/python3.12/site-packages/vllm/entrypoints/llm.py"
    )
    assert not vllm_not_involved(recorded_run("python3 run_llm.py", through_vllm + OOM, vllm_version="0.22.0"))
    logged = "INFO 03-19 07:27:53 [gpu_model_runner.py:1580] Model loading took 15.2 GiB\n" + PLAIN_TORCH + OOM
    assert not vllm_not_involved(recorded_run("python3 run_llm.py", logged, vllm_version="0.22.0"))
    assert not vllm_not_involved(recorded_run("vllm serve m", PLAIN_TORCH + OOM, vllm_version="0.22.0"))


def test_a_recorded_command_without_a_traceback_leaves_an_installed_vllm_involved():
    facts = recorded_run("python3 run_llm.py", "Segmentation fault (core dumped)\n", vllm_version="0.22.0")
    assert not vllm_not_involved(facts)
