"""`vllm-bug memory`: output, and one line plus a documented exit code for every bad input."""

from __future__ import annotations

import json
import os

import pytest

from vllm_bug.cli import main

LLAMA2_7B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "vocab_size": 32000,
    "torch_dtype": "float16",
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
}


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["memory", *args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, expected_code: int, fragment: str) -> None:
    assert code == expected_code
    assert err.count("\n") == 1 and err.startswith("vllm-bug: error: ")
    assert fragment in err
    assert "Traceback" not in err


def test_issue_case_text(capsys):
    code, out, err = run(
        capsys,
        "--model",
        "meta-llama/Llama-3.1-70B-Instruct",
        "--gpu",
        "A100-80GB",
        "--num-gpus",
        "2",
        "--max-model-len",
        "16384",
        "--max-num-seqs",
        "64",
        "--dtype",
        "float16",
    )
    assert code == 0, err
    assert "2 x 80.00 GiB" in out
    assert "= 141.1 GB = 131.42 GiB; per GPU: / 2 = 65.71 GiB" in out
    assert "= 327,680 bytes (320.0 KiB) for the whole model" in out
    assert "160.00 GiB per GPU -> does NOT fit" in out
    assert "--max-model-len 496" in out
    assert "--tensor-parallel-size 8" in out


def test_issue_case_json(capsys):
    code, out, _ = run(
        capsys,
        "--model",
        "Llama-3.1-70B",
        "--gpu",
        "80",
        "--num-gpus",
        "2",
        "--max-model-len",
        "16384",
        "--max-num-seqs",
        "64",
        "--gpu-memory-utilization",
        "0.9",
        "--format",
        "json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["tp"] == 2 and data["fits"] is False
    assert data["gpu_memory_bytes"] == 80 * 2**30
    assert data["kv_bytes_needed_per_gpu"] == 160 * 2**30
    # 80 GiB x 0.90 = 77,309,411,328 usable - 70,553,706,496 weights - 3,186,950,144 overhead
    # = 3,568,754,688 bytes -> // 163,840 = 21,781 tokens -> 21,776 in 16-token blocks
    assert data["kv_budget_bytes_per_gpu"] == 3_568_754_688
    assert data["kv_tokens_fit"] == 21_776
    assert data["alternatives"]["max_model_len_for_max_num_seqs"] == 336  # 21,776 // 64 = 340 -> 336
    assert data["compute_capability"] is None  # a bare size says nothing about the GPU's generation


def test_defaults_tp_from_num_gpus_and_context_from_config(capsys, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA2_7B_CONFIG))
    code, out, _ = run(capsys, "--config", str(tmp_path), "--gpu", "24", "--num-gpus", "2", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["tp"] == 2
    assert data["max_model_len"] == 4096
    assert data["kv_bytes_per_token_model"] == 2 * 32 * 32 * 128 * 2
    assert data["model"] == tmp_path.name


def test_config_file_is_read_not_written(capsys, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA2_7B_CONFIG))
    before = path.read_bytes(), os.stat(path).st_mtime_ns
    code, out, _ = run(capsys, "--config", str(path), "--gpu", "L4", "--max-model-len", "2048")
    assert code == 0 and "Weights: 6,738,415,616 params x 2 bytes (float16)" in out
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before


def test_list_models(capsys):
    code, out, _ = run(capsys, "--list-models")
    assert code == 0
    assert "meta-llama/Llama-3.1-70B" in out and "deepseek-ai/DeepSeek-V3" in out
    row = next(line for line in out.splitlines() if line.startswith("meta-llama/Llama-3.1-70B "))
    assert "320 KiB" in row and "70.6B" in row
    code, out, _ = run(capsys, "--list-models", "--format", "json")
    rows = json.loads(out)
    assert {"name": "Qwen/Qwen3-30B-A3B", "experts": 128}.items() <= next(
        r for r in rows if r["name"] == "Qwen/Qwen3-30B-A3B"
    ).items()


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "args,fragment",
    [
        ((), "give a model"),
        (("--gpu", "80"), "give a model"),
        (("--model", "Llama-3.1-8B"), "give --gpu"),
        (("--model", "Llama-3.1-8B", "--config", "x.json", "--gpu", "80"), "not both"),
        (("--model", "no-such-model", "--gpu", "80"), "unknown model 'no-such-model'"),
        (("--model", "Llama-3.1-8B", "--gpu", "Radeon 9000"), "unknown GPU; examples: A100-80GB"),
        (("--model", "Llama-3.1-8B", "--gpu", "RTX 3080"), "does not say how much memory"),
        (("--model", "Llama-3.1-8B", "--gpu", "80GB"), "give GiB"),
        (("--model", "Llama-3.1-8B", "--gpu", "0"), "between 1 and 4096"),
        (("--model", "Llama-3.1-8B", "--gpu", "80", "--dtype", "int3"), "unknown weight dtype 'int3'"),
        (("--model", "Llama-3.1-8B", "--gpu", "80", "--kv-cache-dtype", "fp4x"), "unknown KV cache dtype"),
    ],
)
def test_usage_errors_exit_2(capsys, args, fragment):
    code, out, err = run(capsys, *args)
    assert_one_line_error(code, err, 2, fragment)
    assert out == ""


@pytest.mark.parametrize(
    "args,fragment",
    [
        (("--model", "Llama-3.1-8B", "--gpu", "80", "--gpu-memory-utilization", "0"), "gpu-memory-utilization"),
        (("--model", "Llama-3.1-8B", "--gpu", "80", "--gpu-memory-utilization", "1.2"), "gpu-memory-utilization"),
        (("--model", "Llama-3.1-8B", "--gpu", "80", "--num-gpus", "0"), "num-gpus"),
        (("--model", "Llama-3.1-8B", "--gpu", "80", "--max-num-seqs", "-3"), "max-num-seqs"),
    ],
)
def test_click_range_errors_exit_2(capsys, args, fragment):
    code, _, err = run(capsys, *args)
    assert code == 2 and fragment in err and "Traceback" not in err


def _config_file(tmp_path, content: bytes, name: str = "config.json"):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    "content,fragment",
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"[1, 2, 3]", "not a JSON object"),
        (json.dumps({"num_attention_heads": 32, "hidden_size": 4096}).encode(), "no num_hidden_layers"),
        (json.dumps(dict(LLAMA2_7B_CONFIG, num_hidden_layers=-4)).encode(), "num_hidden_layers"),
        (json.dumps(dict(LLAMA2_7B_CONFIG, num_hidden_layers="many")).encode(), "num_hidden_layers"),
    ],
)
def test_unreadable_configs_exit_3(capsys, tmp_path, content, fragment):
    code, out, err = run(capsys, "--config", _config_file(tmp_path, content), "--gpu", "80")
    assert_one_line_error(code, err, 3, fragment)
    assert out == ""


def test_missing_paths_exit_3(capsys, tmp_path):
    code, _, err = run(capsys, "--config", str(tmp_path / "nope.json"), "--gpu", "80")
    assert_one_line_error(code, err, 3, "no such file")
    code, _, err = run(capsys, "--config", str(tmp_path), "--gpu", "80")  # a folder without config.json
    assert_one_line_error(code, err, 3, "config.json: no such file")


def test_not_a_regular_file_exit_3(capsys):
    code, _, err = run(capsys, "--config", os.devnull, "--gpu", "80")
    assert_one_line_error(code, err, 3, "not a regular file")


def test_config_without_context_length_is_a_usage_error(capsys, tmp_path):
    config = {k: v for k, v in LLAMA2_7B_CONFIG.items() if k != "max_position_embeddings"}
    path = _config_file(tmp_path, json.dumps(config).encode())
    code, _, err = run(capsys, "--config", path, "--gpu", "80")
    assert_one_line_error(code, err, 2, "no max_model_len given")
    code, out, _ = run(capsys, "--config", path, "--gpu", "80", "--max-model-len", "4096")
    assert code == 0 and "4,096 tokens" in out


def test_oversized_config_exit_4(capsys, tmp_path):
    big = b'{"pad": "' + b"x" * (4 << 20) + b'"}'
    code, out, err = run(capsys, "--config", _config_file(tmp_path, big), "--gpu", "80")
    assert_one_line_error(code, err, 4, "over the 4 MiB limit")
    assert out == ""


def test_deeply_nested_config_exit_4(capsys, tmp_path):
    deep = b"[" * 200_000 + b"]" * 200_000
    code, _, err = run(capsys, "--config", _config_file(tmp_path, deep), "--gpu", "80")
    assert_one_line_error(code, err, 4, "nested too deeply")
