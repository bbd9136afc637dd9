"""Model shapes from config.json and the built-in catalogue (analyzer/memory/shape.py, catalogue.py)."""

from __future__ import annotations

import pytest

from vllm_bug.analyzer.memory.catalogue import builtin_models, lookup_model
from vllm_bug.analyzer.memory.layout import kv_bytes_per_token
from vllm_bug.analyzer.memory.shape import ShapeError, shape_from_config
from vllm_bug.analyzer.memory.weights import param_breakdown


def test_text_config_nesting():
    config = {
        "architectures": ["Mistral3ForConditionalGeneration"],
        "torch_dtype": "bfloat16",
        "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16},
        "text_config": {
            "num_hidden_layers": 40,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "hidden_size": 5120,
            "intermediate_size": 32768,
            "vocab_size": 131072,
            "max_position_embeddings": 131072,
        },
    }
    shape = shape_from_config(config)
    assert (shape.num_layers, shape.num_kv_heads, shape.head_dim, shape.hidden_size) == (40, 8, 128, 5120)
    assert shape.dtype == "bfloat16"
    assert shape.architecture == "Mistral3ForConditionalGeneration"
    assert kv_bytes_per_token(shape, "bfloat16") == 2 * 40 * 8 * 128 * 2


def test_head_dim_derived_when_absent():
    config = {
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "vocab_size": 32000,
        "torch_dtype": "float16",
        "max_position_embeddings": 4096,
    }
    shape = shape_from_config(config)
    assert shape.head_dim == 128 and shape.num_kv_heads == 32  # MHA when num_key_value_heads is absent
    assert kv_bytes_per_token(shape, "float16") == 2 * 32 * 32 * 128 * 2  # 512 KiB


@pytest.mark.parametrize(
    "name,expected",
    [
        ("meta-llama/Meta-Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-70B"),
        ("LLAMA-3.1-70B", "meta-llama/Llama-3.1-70B"),
        ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B"),
        ("meta-llama/Llama-2-7b-chat-hf", "meta-llama/Llama-2-7b"),
        ("google/gemma-2-9b-it", "google/gemma-2-9b"),
        ("Qwen/Qwen3-30B-A3B-Instruct-2507", "Qwen/Qwen3-30B-A3B"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "mistralai/Mistral-7B-v0.3"),
        ("phi-3-mini", "microsoft/Phi-3-mini-4k-instruct"),
    ],
)
def test_lookup_model_names(name, expected):
    shape = lookup_model(name)
    assert shape is not None and shape.name == expected


@pytest.mark.parametrize("name", ["", "Qwen2.5-7B-Instruct-AWQ", "llama-3.1-7b", "my-org/custom-model"])
def test_lookup_model_unknown(name):
    assert lookup_model(name) is None


def test_builtin_table_counts_agree_with_shapes():
    """Each published parameter count matches the count derived from the shape (catches typos in the table)."""
    for entry in builtin_models():
        shape = shape_from_config(entry, name=entry["name"])
        derived = param_breakdown(shape).total
        assert abs(derived / entry["num_parameters"] - 1) < 0.001, entry["name"]


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda c: c.pop("num_hidden_layers"), "num_hidden_layers"),
        (lambda c: c.update(num_attention_heads=True), "num_attention_heads"),
        (lambda c: c.update(hidden_size=-1), "hidden_size"),
        (lambda c: c.update(num_hidden_layers="80"), "num_hidden_layers"),
        (lambda c: c.update(hidden_size=4097, head_dim=None), "not a multiple"),
    ],
)
def test_shape_errors(mutate, message):
    config = {"num_hidden_layers": 32, "num_attention_heads": 32, "hidden_size": 4096}
    mutate(config)
    with pytest.raises(ShapeError, match=message):
        shape_from_config(config)
