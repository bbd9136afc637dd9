"""Engine arguments from launch commands, vLLM's startup lines and LLM(...) calls."""

import time
from pathlib import Path

import pytest

from vllm_bug.formats.engine_args import (
    EngineArgs,
    find_launch_command,
    launch_start,
    parse_command_args,
    parse_engine_config,
    parse_llm_call,
    parse_namespace_args,
    parse_non_default_args,
)

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "excerpts"
NON_DEFAULT = (
    "INFO 06-01 10:00:00 [utils.py:328] non-default args: {'model': 'meta-llama/Llama-3.1-70B-Instruct', "
    "'tensor_parallel_size': 2, 'max_model_len': 32768, 'gpu_memory_utilization': 0.95}"
)


@pytest.mark.parametrize(
    "command, expected",
    [
        (
            "vllm serve Qwen/Qwen3-8B --max-model-len 4096 -tp 2 --enforce-eager --dtype=half",
            {
                "model": "Qwen/Qwen3-8B",
                "max_model_len": 4096,
                "tensor_parallel_size": 2,
                "enforce_eager": True,
                "dtype": "half",
            },
        ),
        (
            (
                "python -m vllm.entrypoints.openai.api_server --model m --trust-remote-code --swap-space 0 "
                "--gpu-memory-utilization 0.9"
            ),
            {"model": "m", "trust_remote_code": True, "swap_space": 0, "gpu_memory_utilization": 0.9},
        ),
        (
            (
                "docker run --gpus all -e VLLM_USE_V1=0 -p 8000:8000 --ipc=host vllm/vllm-openai:v0.8.5 --model m "
                "--kv-cache-dtype fp8 --no-enable-prefix-caching"
            ),
            {"model": "m", "kv_cache_dtype": "fp8", "enable_prefix_caching": False},
        ),
        ("docker run --rm vllm/vllm-openai:latest vllm serve m --max-num-seqs 8", {"model": "m", "max_num_seqs": 8}),
        ("docker run img python3 -m vllm.entrypoints.openai.api_server --port 8000", {"port": 8000}),
    ],
)
def test_launch_command_flags(command, expected):
    assert parse_command_args(command) == expected


def test_non_default_args_line():
    parsed = parse_non_default_args(NON_DEFAULT)
    assert parsed.args == {
        "model": "meta-llama/Llama-3.1-70B-Instruct",
        "tensor_parallel_size": 2,
        "max_model_len": 32768,
        "gpu_memory_utilization": 0.95,
    }
    assert parse_non_default_args("INFO nothing here") is None


def test_non_default_args_keep_the_literal_pairs_of_a_dict_with_reprs():
    line = (
        "non-default args: {'model': 'Qwen/Qwen3-8B', 'max_model_len': 32768, "
        "'compilation_config': CompilationConfig(level=3), 'enforce_eager': True}"
    )
    assert parse_non_default_args(line).args == {
        "model": "Qwen/Qwen3-8B",
        "max_model_len": 32768,
        "enforce_eager": True,
    }


def test_non_default_args_never_evaluate_code():
    assert (
        "model" not in parse_non_default_args("non-default args: {'model': __import__('os').system('echo pwned')}").args
    )


def test_namespace_line_keeps_arguments_that_are_set():
    line = (
        "INFO 01-02 03:04:05 api_server.py:1] args: Namespace(host=None, port=8000, model='m', enforce_eager=False, "
        "tensor_parallel_size=2)"
    )
    assert parse_namespace_args(line).args == {"port": 8000, "model": "m", "tensor_parallel_size": 2}


def test_engine_config_line_from_a_real_report():
    line = (
        "Initializing an LLM engine with config: model='/workspace/Qwen-7B/weights/Qwen-7B-Chat/', "
        "tokenizer='/workspace/Qwen-7B/weights/Qwen-7B-Chat/', tokenizer_mode=auto, trust_remote_code=True, "
        "dtype=torch.float16, download_dir=None, load_format=auto, tensor_parallel_size=4, seed=0)"
    )
    assert parse_engine_config(line).args == {
        "model": "/workspace/Qwen-7B/weights/Qwen-7B-Chat/",
        "dtype": "float16",
        "tensor_parallel_size": 4,
        "trust_remote_code": True,
    }


def test_llm_call_from_a_real_report():
    call = parse_llm_call((FIXTURES / "llm_call.txt").read_text())
    assert call.args == {
        "model": "/.../Baichuan-7b",
        "trust_remote_code": True,
        "dtype": "float16",
        "gpu_memory_utilization": 0.85,
        "tokenizer_mode": "slow",
    }
    assert call.text.startswith("LLM(") and call.text.endswith(")")


def test_launch_command_over_continuation_lines():
    lines = (FIXTURES / "docker_run_kv.txt").read_text().splitlines()
    launch = find_launch_command(lines)
    assert isinstance(launch, EngineArgs) and launch.text.startswith("docker run -d")
    assert "\\" not in launch.text


@pytest.mark.parametrize(
    "line, start",
    [
        ("$ VLLM_USE_V1=0 CUDA_VISIBLE_DEVICES=0 vllm serve m", 2),
        ("run it: vllm serve m", 8),
        ("x;A=1 vllm serve m", 2),
        ("see File vllm.py", None),
        ("A=1 B=2", None),
    ],
)
def test_launch_start_includes_variable_prefixes(line, start):
    assert launch_start(line) == start


def test_a_line_full_of_assignments_is_searched_in_linear_time():
    # the old pattern retried its run of VAR=value words from every word: 50 such lines took 15 s
    lines = ["vllm " + "A=1 " * 2040] * 50
    began = time.perf_counter()
    assert find_launch_command(lines) is None
    assert time.perf_counter() - began < 2


def test_nested_launchers_cost_linear_time_and_no_recursion_error():
    # 'vllm run img' nested 18 deep took 1.6 s (the nested command was read twice at each level, 2**n);
    # a few thousand deep raised RecursionError out of analyze
    began = time.perf_counter()
    assert parse_command_args("docker run img " + "vllm run img " * 30 + "--x 1") == {}
    assert parse_command_args("docker run img " + "vllm run img " * 3000) == {}
    assert time.perf_counter() - began < 2
    assert parse_command_args("docker run img vllm run img --x 1") == {"x": 1}
