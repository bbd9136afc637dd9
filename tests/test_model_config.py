"""Model config: finding the model's name, its config.json on this machine, and its shape."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vllm_bug.bundler import model_config as mc

LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "torch_dtype": "bfloat16",
    "max_position_embeddings": 131072,
    "rope_scaling": {"factor": 8.0},
    "quantization_config": {
        "quant_method": "fp8",
        "activation_scheme": "dynamic",
        "modules_to_not_convert": ["lm_head"],
    },
}


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "(APIServer pid=1) INFO 01-01 [utils.py:1] non-default args: {'model_tag': 'Qwen/Qwen3-8B', 'api_key': '***'}",
            "Qwen/Qwen3-8B",
        ),
        ("INFO non-default args: {'model': '/models/llama', 'max_model_len': 4096}", "/models/llama"),
        (
            "Initializing a V1 LLM engine (v0.11.0) with config: model='meta-llama/Llama-3.1-8B', speculative_config=None",
            "meta-llama/Llama-3.1-8B",
        ),
        ("$ vllm serve mistralai/Mistral-7B-v0.1 --tensor-parallel-size 2", "mistralai/Mistral-7B-v0.1"),
        ("python -m vllm.entrypoints.openai.api_server --model=facebook/opt-125m", "facebook/opt-125m"),
        ('llm = LLM(model="google/gemma-3-4b-it", dtype="half")', "google/gemma-3-4b-it"),
        ("llm = LLM('Qwen/Qwen2.5-0.5B')", "Qwen/Qwen2.5-0.5B"),
        ("nothing about any model here", None),
    ],
)
def test_model_from_log(text, expected):
    assert mc.model_from_log(text) == expected


def test_model_from_argv():
    assert mc.model_from_argv(["vllm", "serve", "org/m", "--port", "8000"]) == "org/m"
    assert mc.model_from_argv(["/venv/bin/vllm", "serve", "--help"]) is None
    assert mc.model_from_argv(["python", "-m", "x", "--model", "org/m2"]) == "org/m2"
    assert mc.model_from_argv(["python", "x.py", "--model=org/m3"]) == "org/m3"
    assert mc.model_from_argv(["python", "server.py"]) is None


def test_local_directory(tmp_path):
    model = tmp_path / "llama"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    (model / "model.safetensors").write_bytes(b"\0" * 10)
    section = mc.collect_model(str(model), None, None, {})
    assert section["found"] is True and section["source"] == "option"
    shape = section["shape"]
    assert shape["architectures"] == ["LlamaForCausalLM"]
    assert (shape["num_hidden_layers"], shape["num_attention_heads"], shape["num_key_value_heads"]) == (32, 32, 8)
    assert shape["head_dim"] == 128 and shape["head_dim_derived"] is True
    assert shape["torch_dtype"] == "bfloat16" and shape["max_position_embeddings"] == 131072
    assert shape["quantization"] == {"quant_method": "fp8", "activation_scheme": "dynamic"}
    assert "rope_scaling" not in shape


def hf_cache_with(cache: Path, repo: str, config: dict, ref: str = "abc123") -> Path:
    base = cache / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / ref
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(config))
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(ref)
    return snap / "config.json"


@pytest.mark.parametrize("variable, suffix", [("HF_HUB_CACHE", ""), ("HF_HOME", "hub")])
def test_hugging_face_cache(tmp_path, variable, suffix):
    root = tmp_path / "hf"
    config = hf_cache_with(root / suffix if suffix else root, "meta-llama/Llama-3.1-8B", LLAMA_CONFIG)
    log = "non-default args: {'model': 'meta-llama/Llama-3.1-8B'}"
    section = mc.collect_model(None, log, None, {variable: str(root), "HOME": str(tmp_path / "nohome")})
    assert section["found"] is True and section["source"] == "log"
    assert section["config_path"] == str(config)


def test_default_cache_under_home(tmp_path):
    hf_cache_with(
        tmp_path / ".cache" / "huggingface" / "hub",
        "org/tiny",
        {"model_type": "gpt2", "n_layer": 2, "n_head": 4, "n_embd": 64},
    )
    section = mc.collect_model(None, None, ["vllm", "serve", "org/tiny"], {"HOME": str(tmp_path)})
    assert section["source"] == "command"
    shape = section["shape"]
    assert (shape["num_hidden_layers"], shape["num_attention_heads"], shape["hidden_size"]) == (2, 4, 64)
    assert shape["head_dim"] == 16


def test_multimodal_and_moe_fields(tmp_path):
    config = {
        "architectures": ["Qwen3VLMoeForConditionalGeneration"],
        "model_type": "qwen3_vl_moe",
        "text_config": {
            "num_hidden_layers": 48,
            "num_attention_heads": 32,
            "num_key_value_heads": 4,
            "head_dim": 128,
            "hidden_size": 2048,
            "num_experts": 128,
            "num_experts_per_tok": 8,
            "moe_intermediate_size": 768,
            "dtype": "bfloat16",
        },
        "vision_config": {"model_type": "qwen3_vl_moe", "depth": 27},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    shape = mc.collect_model(str(tmp_path), None, None, {})["shape"]
    text = shape["text_config"]
    assert text["num_experts"] == 128 and text["num_experts_per_tok"] == 8 and text["head_dim"] == 128
    assert "head_dim_derived" not in text
    assert shape["vision_model_type"] == "qwen3_vl_moe"
    assert "num_hidden_layers" not in shape


def test_not_on_this_machine(tmp_path):
    section = mc.collect_model("org/absent", None, None, {"HOME": str(tmp_path)})
    assert section == {
        "name": "org/absent",
        "source": "option",
        "found": False,
        "error": "no config.json for this model on this machine (local path or Hugging Face cache)",
    }


def test_no_model_named_anywhere():
    assert mc.collect_model(None, "INFO nothing", ["python", "x.py"], {}) is None


@pytest.mark.parametrize(
    "content, error",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_bad_config(tmp_path, content, error):
    (tmp_path / "config.json").write_text(content)
    section = mc.collect_model(str(tmp_path), None, None, {})
    assert section["found"] is False and error in section["error"]


def test_oversized_config_is_not_read(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(json.dumps({"pad": "x" * 2000}))
    monkeypatch.setattr(mc, "CONFIG_BYTES_CAP", 1000)
    section = mc.collect_model(str(tmp_path), None, None, {})
    assert section["found"] is False and "over the 1000-byte cap" in section["error"]


def test_only_config_json_is_opened(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    (tmp_path / "tokenizer.json").write_text("{}")
    opened = []
    real_open = open

    def spy(path, *args, **kwargs):
        opened.append(os.path.basename(str(path)))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    mc.collect_model(str(tmp_path), None, None, {})
    assert opened == ["config.json"]
