"""vLLM refusing its engine arguments (category engine_config).

The messages are vLLM's and argparse's own texts (the signal rows name the source files); the vLLM 0.22 logs
below are what its API server prints when a config class refuses a value: vLLM's configs are pydantic
dataclasses, so the ValueError reaches the log inside a ValidationError, formatted by pydantic 2 (the header,
then the error with a '[type=...]' tail and a help link), each line behind the '(APIServer pid=N)' prefix.
"""

from __future__ import annotations

from pathlib import Path

from rule_helpers import facts, fire, fire_all, gpu, root, text_of
from vllm_bug.analyzer.analyze import analyze_text
from vllm_bug.analyzer.findings import CATEGORIES
from vllm_bug.analyzer.rules import REGISTRY

BUNDLES = Path(__file__).parent / "fixtures" / "bundles"
SITE = "/opt/venv/lib/python3.12/site-packages"


def _vllm_022_log(config_class: str, error_lines: str, args: str) -> str:
    """`vllm serve` on vLLM 0.22 failing in create_engine_config with a pydantic ValidationError."""
    body = f"""\
INFO 11-29 14:02:11 [utils.py:278] non-default args: {args}
Traceback (most recent call last):
  File "/opt/venv/bin/vllm", line 10, in <module>
    sys.exit(main())
  File "{SITE}/vllm/entrypoints/cli/main.py", line 92, in main
    args.dispatch_function(args)
  File "{SITE}/vllm/entrypoints/cli/serve.py", line 148, in cmd
    uvloop.run(run_server(args))
  File "{SITE}/vllm/entrypoints/openai/api_server.py", line 678, in run_server
    await run_server_worker(listen_address, sock, args, **uvicorn_kwargs)
  File "{SITE}/vllm/entrypoints/openai/api_server.py", line 124, in build_async_engine_client_from_engine_args
    vllm_config = engine_args.create_engine_config(usage_context=usage_context)
  File "{SITE}/vllm/engine/arg_utils.py", line 1957, in create_engine_config
    parallel_config = ParallelConfig(
  File "{SITE}/pydantic/_internal/_dataclasses.py", line 121, in __init__
    s.__pydantic_validator__.validate_python(ArgsKwargs(args, kwargs), self_instance=s)
pydantic_core._pydantic_core.ValidationError: 1 validation error for {config_class}
{error_lines}
"""
    return "\n".join(f"(APIServer pid=2877) {line}" for line in body.splitlines())


WORLD_SIZE = _vllm_022_log(
    "ParallelConfig",
    """\
  Value error, World size (2) is larger than the number of available GPUs (1) in this node. If this is intentional \
and you are using:
- ray, set '--distributed-executor-backend ray'.
- multiprocessing, set '--nnodes' appropriately. [type=value_error, input_value=ArgsKwargs((), {'pipeline_parallel_\
size': 1, 'tensor_parallel_size': 2}), input_type=ArgsKwargs]
    For further information visit https://errors.pydantic.dev/2.13/v/value_error""",
    "{'model_tag': 'Qwen/Qwen3-0.6B', 'model': 'Qwen/Qwen3-0.6B', 'tensor_parallel_size': 2}",
)
HEADS = _vllm_022_log(
    "VllmConfig",
    """\
  Value error, Total number of attention heads (12) must be divisible by tensor parallel size (8). [type=value_error, \
input_value=ArgsKwargs(()), input_type=ArgsKwargs]
    For further information visit https://errors.pydantic.dev/2.13/v/value_error""",
    "{'model_tag': 'org/tiny-12-heads', 'model': 'org/tiny-12-heads', 'tensor_parallel_size': 8}",
)
MAX_LEN = _vllm_022_log(
    "ModelConfig",
    """\
  Value error, User-specified max_model_len (65536) is greater than the derived max_model_len (max_position_\
embeddings=40960 or model_max_length=None in model's config.json). To allow overriding this maximum, set the env var \
VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution. [type=value_error, \
input_value=ArgsKwargs(()), input_type=ArgsKwargs]
    For further information visit https://errors.pydantic.dev/2.13/v/value_error""",
    "{'model_tag': 'Qwen/Qwen3-8B', 'model': 'Qwen/Qwen3-8B', 'max_model_len': 65536}",
)
UTILIZATION = _vllm_022_log(
    "CacheConfig",
    """\
gpu_memory_utilization
  Input should be less than or equal to 1 [type=less_than_equal, input_value=90.0, input_type=float]
    For further information visit https://errors.pydantic.dev/2.13/v/less_than_equal""",
    "{'model_tag': 'Qwen/Qwen3-8B', 'model': 'Qwen/Qwen3-8B'}",
)
QUANT = _vllm_022_log(
    "ModelConfig",
    """\
  Value error, Quantization method specified in the model config (fp8) does not match the quantization method \
specified in the `quantization` argument (awq). [type=value_error, input_value=ArgsKwargs(()), input_type=ArgsKwargs]
    For further information visit https://errors.pydantic.dev/2.13/v/value_error""",
    "{'model_tag': 'org/model-FP8', 'model': 'org/model-FP8', 'quantization': 'awq'}",
)
ARGPARSE_REMOVED = """\
INFO 11-29 14:02:05 [__init__.py:216] Automatically detected platform cuda.
usage: main.py [-h] [--model MODEL] [--reasoning-parser {deepseek_r1,qwen3}]
main.py: error: unrecognized arguments: --enable-reasoning
"""


# -- the category and the root cause ------------------------------------------------------------------
def test_engine_config_is_a_category_its_rules_use():
    assert "engine_config" in CATEGORIES
    moved = {"REMOVED_FLAG", "MAX_MODEL_LEN_ABOVE_DERIVED", "GPU_MEMORY_UTILIZATION_OUT_OF_RANGE"}
    assert {key for key, r in REGISTRY.items() if r.category == "engine_config"} >= moved | {
        "WORLD_SIZE_ABOVE_GPUS",
        "ATTENTION_HEADS_NOT_DIVISIBLE",
        "QUANTIZATION_MISMATCH",
        "UNRECOGNIZED_ARGUMENT",
    }


def test_the_validation_errors_of_a_pydantic_config_are_the_root_cause_message():
    analysis = analyze_text(WORLD_SIZE)
    rc = analysis.facts.root_cause
    assert rc.short_type == "ValidationError"
    assert rc.message.splitlines() == [
        "1 validation error for ParallelConfig",
        "Value error, World size (2) is larger than the number of available GPUs (1) in this node. If this is "
        "intentional and you are using:",
        "- ray, set '--distributed-executor-backend ray'.",
        "- multiprocessing, set '--nnodes' appropriately.",
    ]
    assert analysis.facts.signals.root("WORLD_SIZE_ABOVE_GPUS")


def test_an_issue_title_quoting_argparse_names_the_root_cause():
    analysis = analyze_text(
        "[Usage]: unrecognized arguments: --enable-reasoning --reasoning-parser deepseek_r1\n\n"
        "How do I turn reasoning on in vllm 0.10.0?"
    )
    assert analysis.facts.root_cause.exc_type == "argparse error"
    assert analysis.diagnoses[0].rule == "REMOVED_FLAG" and analysis.category == "engine_config"


def test_world_size_above_the_gpus_of_the_node():
    top = analyze_text(WORLD_SIZE).diagnoses[0]
    assert (top.rule, top.category, top.confidence) == ("WORLD_SIZE_ABOVE_GPUS", "engine_config", 0.95)
    assert top.title == "The parallel sizes ask for 2 GPUs, but vLLM found 1 on this node."
    assert top.fixes[0].startswith("--tensor-parallel-size 1 ")
    assert any("--distributed-executor-backend ray" in fix for fix in top.fixes)


def test_heads_not_divisible_lists_the_sizes_that_are():
    top = analyze_text(HEADS).diagnoses[0]
    assert top.rule == "ATTENTION_HEADS_NOT_DIVISIBLE" and top.category == "engine_config"
    assert top.fixes[0].startswith("--tensor-parallel-size 1, 2, 3, 4 or 6 (")
    assert top.details["accepted_tensor_parallel_sizes"] == [1, 2, 3, 4, 6]
    assert "--tensor-parallel-size 4 --pipeline-parallel-size 2" in top.fixes[1]


def test_max_model_len_above_what_the_model_config_allows():
    top = analyze_text(MAX_LEN).diagnoses[0]
    assert top.rule == "MAX_MODEL_LEN_ABOVE_DERIVED" and top.category == "engine_config"
    assert "(65536 > 40960)" in top.title and top.fixes[0].startswith(
        "set --max-model-len at most 40960 (the max_position_embeddings"
    )


def test_utilization_refused_by_the_pydantic_field_bounds():
    top = analyze_text(UTILIZATION).diagnoses[0]
    assert top.rule == "GPU_MEMORY_UTILIZATION_OUT_OF_RANGE" and top.category == "engine_config"
    assert top.confidence == 0.95 and top.fixes == ["--gpu-memory-utilization 0.90"]
    assert "Input should be less than or equal to 1 [type=less_than_equal, input_value=90.0, input_type=float]" in (
        top.evidence
    )


def test_quantization_that_does_not_match_the_checkpoint():
    top = analyze_text(QUANT).diagnoses[0]
    assert top.rule == "QUANTIZATION_MISMATCH" and top.category == "engine_config"
    assert top.title == "The checkpoint is quantized with fp8, but --quantization awq was given."
    assert top.fixes[1] == "or --quantization fp8"


def test_quantization_mismatch_pasted_without_its_backticks():
    # vllm#3331 (vLLM 0.3): pasted outside a code block, the message lost the backticks around `quantization`
    pasted = (
        'File "/usr/local/lib/python3.10/dist-packages/vllm/config.py", line 204, in _verify_quantization\n'
        "raise ValueError(\n"
        "ValueError: Quantization method specified in the model config (marlin) does not match the quantization "
        "method specified in the quantization argument (gptq).\n"
    )
    top = analyze_text(pasted).diagnoses[0]
    assert top.rule == "QUANTIZATION_MISMATCH" and top.category == "engine_config"
    assert top.title == "The checkpoint is quantized with marlin, but --quantization gptq was given."


def test_a_removed_flag_rejected_by_argparse_names_its_replacement_and_release():
    top = analyze_text(ARGPARSE_REMOVED).diagnoses[0]
    assert top.rule == "REMOVED_FLAG" and top.category == "engine_config" and top.confidence == 0.95
    assert (
        top.title
        == "--enable-reasoning is not an option of this vLLM any more: vLLM removed it in 0.10 (deprecated since 0.9)."
    )
    assert top.fixes == [
        "remove --enable-reasoning; instead: --reasoning-parser NAME alone (naming a parser turns reasoning output on)"
    ]


def test_on_the_real_h200_vllm_bundle_the_versions_and_gpu_count_are_the_bundles():
    """The bundle vllm-bug collected on one H200 with vLLM 0.22.0, given the log of a failed tp=2 start."""
    from vllm_bug.analyzer.build import facts_from_bundle
    from vllm_bug.analyzer.rules import run_rules
    from vllm_bug.schema.bundle import make_envelope, read_bundle

    payload = read_bundle(BUNDLES / "h200-1gpu-vllm-collect.zst")["payload"]
    payload["log"] = {"source": "command", "text": WORLD_SIZE + "\n" + ARGPARSE_REMOVED, "truncated": False}
    payload["command"] = {"argv": ["vllm", "serve", "Qwen/Qwen3-0.6B", "--tensor-parallel-size", "2"], "exit_code": 1}
    f = facts_from_bundle(make_envelope(payload))
    ranked = run_rules(f)
    assert ranked[0].rule == "WORLD_SIZE_ABOVE_GPUS" and len(f.gpus) == 1
    assert "CUDA_VISIBLE_DEVICES" not in text_of(ranked[0])  # one GPU on the machine: nothing is hidden
    removed = next(x for x in ranked if x.rule == "REMOVED_FLAG")
    assert removed.title.startswith("--enable-reasoning is not an option of vLLM 0.22.0 any more")


# -- rules on facts --------------------------------------------------------------------------------------
WORLD = "Value error, World size (4) is larger than the number of available GPUs (2) in this node."


def test_world_size_with_a_known_model_lists_its_sizes_and_sees_hidden_gpus():
    f = facts(
        WORLD,
        gpus=[gpu("NVIDIA H100 80GB HBM3")] * 4,
        env={"CUDA_VISIBLE_DEVICES": "0,1"},
        engine_args={"model": "meta-llama/Llama-3.1-8B", "tensor_parallel_size": 4},
    )
    finding = fire("WORLD_SIZE_ABOVE_GPUS", f)
    assert finding.fixes[0].startswith("--tensor-parallel-size 1 or 2 (")
    assert (
        finding.fixes[1] == "the machine has 4 GPUs but vLLM saw 2 (CUDA_VISIBLE_DEVICES=0,1): let the process "
        "see 4 of them"
    )


def test_world_size_with_no_gpu_found_is_a_visibility_problem():
    f = facts("Value error, World size (2) is larger than the number of available GPUs (0) in this node.")
    assert fire("WORLD_SIZE_ABOVE_GPUS", f) is None
    assert fire("WORLD_SIZE_WITHOUT_GPUS", f).category == "cuda_not_available"


def test_heads_use_the_kv_heads_of_the_known_model():
    line = "ValueError: Total number of attention heads (14) must be divisible by tensor parallel size (4)."
    finding = fire("ATTENTION_HEADS_NOT_DIVISIBLE", facts(line, engine_args={"model": "Qwen/Qwen2.5-0.5B"}))
    assert finding.details["kv_heads"] == 2 and finding.fixes[0].startswith("--tensor-parallel-size 1 or 2 (")


def test_layers_not_divisible_by_pipeline_size():
    line = "ValueError: Total number of hidden layers (28) must be divisible by pipeline parallel size (3)."
    finding = fire("LAYERS_NOT_DIVISIBLE_BY_PP", facts(line, gpus=[gpu("NVIDIA A100-SXM4-80GB")] * 8))
    assert finding.fixes[0].startswith("--pipeline-parallel-size 1, 2, 4 or 7 (")


def test_the_divisibility_assertion_counts_only_inside_vllms_splitting_helper():
    line = "AssertionError: 8 is not divisible by 3"
    frames = (
        (f"{SITE}/vllm/model_executor/layers/linear.py", "__init__"),
        (f"{SITE}/vllm/distributed/utils.py", "ensure_divisibility"),
    )
    # 24 attention heads pass vLLM's check at tp 3; the 8 KV heads then fail to split
    inside = facts(
        line,
        engine_args={"model": "meta-llama/Llama-3.2-3B", "tensor_parallel_size": 3},
        gpus=[gpu("NVIDIA A100-SXM4-80GB")] * 8,
        root_cause=root("AssertionError", "8 is not divisible by 3", frames),
    )
    finding = fire("TENSOR_SPLIT_NOT_DIVISIBLE", inside)
    assert finding.title.endswith("(8 is not divisible by 3).")
    assert (
        finding.fixes[0].startswith("--tensor-parallel-size 1, 2, 4 or 8 (")
        and "24 attention heads and 8 KV" in (finding.fixes[0])
    )
    elsewhere = facts(line, root_cause=root("AssertionError", "8 is not divisible by 3", (("/app/train.py", "f"),)))
    assert fire("TENSOR_SPLIT_NOT_DIVISIBLE", elsewhere) is None


def test_quantized_weights_split_too_thin():
    line = (
        "ValueError: Weight output_size_per_partition = 7168 is not divisible by  min_thread_n = 64. Consider "
        "reducing tensor_parallel_size or running with --quantization gptq."
    )
    finding = fire("QUANTIZED_WEIGHTS_SPLIT_UNEVENLY", facts(line))
    assert finding.category == "engine_config" and "lower --tensor-parallel-size" in finding.fixes[0]


def test_quantization_dtype_and_unknown_method():
    dtype = fire(
        "QUANTIZATION_DTYPE_UNSUPPORTED",
        facts(
            "ValueError: torch.bfloat16 is not supported for quantization method awq. Supported dtypes: [torch.float16]"
        ),
    )
    assert dtype.title == "awq quantization computes in float16, not in bfloat16." and dtype.fixes == [
        "--dtype float16"
    ]
    unknown = fire(
        "UNKNOWN_QUANTIZATION_METHOD",
        facts("ValueError: Unknown quantization method: awq4. Must be one of ['awq', 'gptq', 'fp8']."),
    )
    assert unknown.category == "engine_config"


def test_batched_token_budget_below_the_length_or_the_sequences():
    length = fire(
        "MAX_NUM_BATCHED_TOKENS_TOO_SMALL",
        facts(
            "ValueError: max_num_batched_tokens (2048) is smaller than max_model_len (8192). This effectively limits "
            "the maximum sequence length to max_num_batched_tokens and makes vLLM reject longer sequences.",
            vllm_version="0.3.3",
        ),
    )
    assert length.fixes == ["--max-num-batched-tokens 8192 (at least max_model_len)", "or --max-model-len 2048"]
    seqs = fire(
        "MAX_NUM_BATCHED_TOKENS_TOO_SMALL",
        facts("ValueError: max_num_batched_tokens (128) must be greater than or equal to max_num_seqs (256)."),
    )
    assert seqs.fixes == ["--max-num-batched-tokens 256 or more", "or --max-num-seqs 128 or fewer"]


def test_pipeline_and_expert_parallel_refusals_are_table_rows():
    pp = fire(
        "PIPELINE_PARALLEL_UNSUPPORTED",
        facts(
            "NotImplementedError: Pipeline parallelism is not supported for this model. Supported models implement the "
            "`SupportsPP` interface."
        ),
    )
    assert pp.category == "engine_config"
    ep = fire(
        "EXPERT_PARALLEL_ON_DENSE_MODEL",
        facts("Value error, Number of experts in the model must be greater than 0 when expert parallelism is enabled."),
    )
    assert "--enable-expert-parallel" in ep.fixes[0]


def test_invalid_choice_and_invalid_value():
    choice = fire(
        "INVALID_ARGUMENT_VALUE",
        facts(
            "vllm serve: error: argument --quantization/-q: invalid choice: 'awq4' (choose from 'aqlm', 'awq', 'fp8')"
        ),
    )
    assert choice.title == "--quantization does not accept 'awq4'." and choice.fixes[0] == (
        "--quantization takes one of: aqlm, awq, fp8"
    )
    value = fire(
        "INVALID_ARGUMENT_VALUE", facts("vllm serve: error: argument --max-model-len: invalid int value: '32k'")
    )
    assert value.title == "--max-model-len takes a value of type int; '32k' is not one."
    missing = fire(
        "INVALID_ARGUMENT_VALUE", facts("vllm serve: error: argument --tensor-parallel-size/-tp: expected one argument")
    )
    assert missing.title == "--tensor-parallel-size was given without the value it needs."


def test_required_argument_missing():
    finding = fire(
        "REQUIRED_ARGUMENT_MISSING", facts("api_server.py: error: the following arguments are required: --model")
    )
    assert finding.category == "engine_config"


# -- flags: the removed-flag table and argparse's unknown ones (knowledge.removed_flags()) ---------------
def test_swap_space_removed_since_018_only():
    new = fire("REMOVED_FLAG", facts("vllm serve m --swap-space 4", vllm_version="0.19.1"))
    assert (
        new is not None and new.confidence < 0.5 and "--swap-space" in new.title and "removed it in 0.18" in new.title
    )
    assert fire("REMOVED_FLAG", facts("vllm serve m --swap-space 4", vllm_version="0.6.3")) is None
    assert fire("REMOVED_FLAG", facts("vllm serve m --swap-space 4")) is None  # version unknown: no claim


def test_unrecognized_argument_is_decisive_even_without_version():
    f = facts(
        "vllm serve: error: unrecognized arguments: --max-seq-len-to-capture 8192",
        "vllm serve m --max-seq-len-to-capture 8192",
    )
    finding = fire("REMOVED_FLAG", f)
    assert finding.confidence >= 0.9 and "--max-cudagraph-capture-size" in text_of(finding)
    assert fire("UNRECOGNIZED_ARGUMENT", f) is None  # the flag and its value are REMOVED_FLAG's


def test_only_the_arguments_argparse_rejected_count_as_said_by_vllm():
    pasted = "vllm serve m --swap-space 4 fails with: vllm serve: error: unrecognized arguments: --foo 1"
    assert fire("REMOVED_FLAG", facts(pasted, vllm_version="0.6.3")) is None
    assert fire("UNRECOGNIZED_ARGUMENT", facts(pasted, vllm_version="0.6.3")).title == (
        "vLLM 0.6.3 does not accept --foo."
    )


def test_a_rejected_flag_is_matched_whole_not_as_a_prefix():
    """'--task' is a removed flag; argparse rejecting '--task-type' says nothing about it."""
    f = facts("vllm serve: error: unrecognized arguments: --task-type embed", vllm_version="0.8.0")
    assert fire("REMOVED_FLAG", f) is None
    assert fire("UNRECOGNIZED_ARGUMENT", f).title == "vLLM 0.8.0 does not accept --task-type."


def test_a_program_that_is_not_vllm_is_not_told_about_vllm_releases():
    f = facts(
        "train.py: error: unrecognized arguments: --enable-reasoning",
        root_cause=root(
            "argparse error", "unrecognized arguments: --enable-reasoning", (("/app/train.py", "<module>"),)
        ),
        vllm_installed=False,
    )
    assert fire("REMOVED_FLAG", f) is None
    assert fire("UNRECOGNIZED_ARGUMENT", f).title == "The program does not accept --enable-reasoning."


def test_an_extra_positional_argument_points_at_the_model_argument():
    finding = fire(
        "UNRECOGNIZED_ARGUMENT", facts("api_server.py: error: unrecognized arguments: /root/models/Qwen3-8B")
    )
    assert "/root/models/Qwen3-8B" in finding.title and "--model MODEL" in finding.fixes[-1]


def test_every_removed_flag_names_its_release_and_the_fix_starts_with_remove():
    from vllm_bug.analyzer.knowledge import removed_flags

    for entry in removed_flags():
        found = fire_all("REMOVED_FLAG", facts(f"vllm serve: error: unrecognized arguments: {entry.name}"))
        assert [x.fixes for x in found] == [[f"remove {entry.name}; instead: {entry.replacement}"]]


def test_a_flag_only_the_release_history_knows_is_named_with_its_removal_and_replacement():
    """--cuda-graph-sizes: deprecated in 0.12 for --cudagraph-capture-sizes, gone from 0.13 (mined, no words of ours)."""
    finding = fire(
        "REMOVED_FLAG",
        facts("vllm serve: error: unrecognized arguments: --cuda-graph-sizes 8 16", vllm_version="0.14.0"),
    )
    assert finding.title == (
        "--cuda-graph-sizes is not an option of vLLM 0.14.0 any more: vLLM removed it in 0.13 (deprecated since 0.12)."
    )
    assert finding.fixes == [
        "remove --cuda-graph-sizes; instead: --cudagraph-capture-sizes, which its deprecation message named"
    ]
    assert (
        fire("UNRECOGNIZED_ARGUMENT", facts("vllm serve: error: unrecognized arguments: --cuda-graph-sizes 8")) is None
    )


def test_a_removed_flag_the_history_names_no_replacement_for_says_so():
    finding = fire(
        "REMOVED_FLAG", facts("vllm: error: unrecognized arguments: --rope-theta 1e6", vllm_version="0.12.0")
    )
    assert finding.title == "--rope-theta is not an option of vLLM 0.12.0 any more: vLLM removed it in 0.12."
    assert finding.fixes[0].startswith("remove --rope-theta; instead: nothing that the release history names")


def test_an_underscored_spelling_is_left_to_the_dashed_option_argparse_declares():
    from vllm_bug.analyzer.knowledge import flag_removal

    assert flag_removal("--preemption_mode") is None
    removal = flag_removal("--preemption-mode")
    assert removal is not None and removal.gone_since == (0, 11)


def test_utilization_as_percentage():
    assert "0.90" in text_of(fire("GPU_MEMORY_UTILIZATION_OUT_OF_RANGE", facts("--gpu-memory-utilization 90")))
    old = fire(
        "GPU_MEMORY_UTILIZATION_OUT_OF_RANGE",
        facts("ValueError: GPU memory utilization must be less than 1.0. Got 95.0."),
    )
    assert old.confidence == 0.88 and old.fixes == ["--gpu-memory-utilization 0.90"]


def test_a_removed_flag_refused_by_a_release_older_than_its_removal_is_not_called_removed_from_it():
    finding = fire(
        "REMOVED_FLAG", facts("vllm: error: unrecognized arguments: --enable-reasoning", vllm_version="0.7.0")
    )
    assert finding.title == "vLLM 0.7.0 does not accept --enable-reasoning, and vLLM removed it for good in 0.10."


def test_a_flag_given_with_its_value_after_an_equals_sign_leaves_the_next_argument_positional():
    finding = fire("UNRECOGNIZED_ARGUMENT", facts("api_server.py: error: unrecognized arguments: --foo=1 model-x"))
    assert finding.title == "This vLLM does not accept --foo." and "--model MODEL" in finding.fixes[-1]


COMPOSE_REPORT = (
    '[Bug]: "unrecognized arguments" error when attempting to "serve" a model',
    'I am getting the "unrecognized arguments" error on the `api_server.py` script when I try to run this container.',
    "    image: vllm/vllm-openai:latest",
    "    command:",
    "    - serve",
    "    - --dtype auto",
)


def test_the_argparse_error_named_without_its_line():
    # vllm#22072: the report names the error; the line listing the rejected arguments was not pasted
    finding = fire("ARGPARSE_ERROR_NAMED", facts(*COMPOSE_REPORT))
    assert finding.category == "engine_config" and finding.confidence < 0.5
    assert any("'--dtype=auto'" in fix for fix in finding.fixes)
    assert any("entrypoint already starts the server" in fix for fix in finding.fixes)
    assert not any("entrypoint" in fix for fix in fire("ARGPARSE_ERROR_NAMED", facts(*COMPOSE_REPORT[:2])).fixes)


def test_the_argparse_line_itself_leaves_the_named_form_alone():
    line = "api_server.py: error: unrecognized arguments: --dtype auto"
    assert fire("ARGPARSE_ERROR_NAMED", facts(line, "vllm serve fails with unrecognized arguments")) is None
    assert fire("ARGPARSE_ERROR_NAMED", facts("vllm serve fails with unrecognized arguments")) is not None
