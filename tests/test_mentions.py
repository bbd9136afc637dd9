"""Engine arguments and env assignments read from pasted text once (analyzer/mentions.py)."""

from __future__ import annotations

from rule_helpers import facts
from vllm_bug.analyzer.rules.helpers import engine_arg, env_value, flag_in_text


def test_flags_keywords_and_launch_command_in_priority_order():
    f = facts(
        "LLM(model='m', max_model_len=4096, max_num_seqs=4)",
        "vllm serve m --max-model-len 8192 --enforce-eager --tp 2",
        launch_command="vllm serve m --max_model_len=2048",
    )
    assert engine_arg(f, "max_model_len") == "2048"  # the launch command wins over the lines
    assert engine_arg(f, "--tp") == "2"  # a flag right after a flag without value is still read
    assert engine_arg(f, "max_num_seqs") == "4"  # keyword arguments of a Python call


def test_flag_before_keyword_within_one_line():
    assert engine_arg(facts("x max_model_len=1 --max-model-len 2"), "max_model_len") == "2"


def test_parsed_engine_args_win_over_mentions():
    assert engine_arg(facts("--dtype half", engine_args={"dtype": "bfloat16"}), "dtype") == "bfloat16"


def test_env_assignment_chain_and_quotes():
    f = facts("A=B=C python x.py", "CUDA_VISIBLE_DEVICES='1,2' vllm serve m")
    assert env_value(f, "A") == "B=C" and env_value(f, "B") == "C"
    assert env_value(f, "CUDA_VISIBLE_DEVICES") == "1,2"
    assert env_value(f, "MISSING") is None


def test_flag_line_ignores_case_and_dash_style():
    f = facts("INFO starting", "python -m vllm.entrypoints.openai.api_server --Enable-Prefix_Caching")
    assert flag_in_text(f, "enable_prefix_caching").endswith("--Enable-Prefix_Caching")
    assert flag_in_text(f, "prefix_caching") is None


def test_garbage_names_are_capped():
    f = facts(" ".join(f"--f{i} v" for i in range(10_000)))
    assert len(f.mentions.args) == 4096
