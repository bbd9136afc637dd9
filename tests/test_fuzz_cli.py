"""The CLI on hostile input: `memory --config` with hostile config.json files (property tests), `-o` into
odd places, validate/show/analyze on things that are not bundles.

Every run must end in exit 0, or a VllmBugError (one line, exit 1-4) that cli.main() prints: never
another exception, which main() would report as an "internal error". Few examples here; set
VLLM_BUG_FUZZ_EXAMPLES for a long local exploration.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vllm_bug.errors import VllmBugError

EXAMPLES = int(os.environ.get("VLLM_BUG_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

BASE_CONFIGS = (
    {
        "architectures": ["LlamaForCausalLM"],
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "torch_dtype": "bfloat16",
        "max_position_embeddings": 131072,
        "tie_word_embeddings": False,
    },
    {
        "architectures": ["MixtralForCausalLM"],
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "vocab_size": 32000,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "sliding_window": 4096,
        "torch_dtype": "bfloat16",
    },
    {
        "architectures": ["DeepseekV3ForCausalLM"],
        "num_hidden_layers": 61,
        "num_attention_heads": 128,
        "hidden_size": 7168,
        "kv_lora_rank": 512,
        "qk_rope_head_dim": 64,
        "q_lora_rank": 1536,
        "qk_nope_head_dim": 128,
        "v_head_dim": 128,
        "n_routed_experts": 256,
        "n_shared_experts": 1,
        "moe_intermediate_size": 2048,
        "first_k_dense_replace": 3,
        "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]},
        "vocab_size": 129280,
    },
    {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "text_config": {
            "num_hidden_layers": 62,
            "num_attention_heads": 32,
            "num_key_value_heads": 16,
            "head_dim": 128,
            "hidden_size": 5376,
            "sliding_window": 1024,
            "layer_types": ["sliding_attention"] * 5 + ["full_attention"],
        },
        "vision_config": {"model_type": "siglip"},
    },
)

ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from((0, -1, -(2**63), 2**63, 10**30, 10**400, 3, 7)),
    st.integers(),
    st.floats(),
    st.sampled_from(("", "32", "many", "1e999", "NaN", "\u0000", "bfloat16", "fp8", "int4")),
    st.lists(st.integers(-3, 10**6), max_size=4),
    st.dictionaries(st.sampled_from(("quant_method", "bits", "a")), st.none() | st.text(max_size=5), max_size=2),
)
KEYS = (
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_size",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "torch_dtype",
    "max_position_embeddings",
    "num_local_experts",
    "num_experts",
    "n_routed_experts",
    "num_experts_per_tok",
    "moe_intermediate_size",
    "n_shared_experts",
    "first_k_dense_replace",
    "kv_lora_rank",
    "qk_rope_head_dim",
    "sliding_window",
    "layer_types",
    "quantization_config",
    "num_parameters",
    "architectures",
    "tie_word_embeddings",
    "text_config",
    "llm_config",
    "language_config",
    "shared_expert_intermediate_size",
)


@st.composite
def hostile_config(draw):
    config = json.loads(json.dumps(draw(st.sampled_from(BASE_CONFIGS))))
    target = (
        config.get("text_config") if isinstance(config.get("text_config"), dict) and draw(st.booleans()) else config
    )
    for _ in range(draw(st.integers(1, 6))):
        key = draw(st.sampled_from(KEYS))
        if draw(st.integers(0, 5)) == 0:
            target.pop(key, None)
        elif key in ("text_config", "llm_config", "language_config") and draw(st.booleans()):
            nested = {}
            for _ in range(draw(st.integers(0, 6))):  # text_config inside text_config inside ...
                nested = {"text_config": nested, "num_hidden_layers": draw(ODD)}
            target[key] = nested
        else:
            target[key] = draw(ODD)
    return config


OPTIONS = st.lists(
    st.sampled_from(
        (
            ("--gpu", "H100"),
            ("--gpu", "80"),
            ("--gpu", "T4"),
            ("--gpu", "A100-40GB"),
            ("--num-gpus", "8"),
            ("-tp", "3"),
            ("--max-model-len", "1"),
            ("--max-model-len", "99999999999999999999"),
            ("--max-num-seqs", "100000"),
            ("--dtype", "fp8"),
            ("--dtype", "int4"),
            ("--dtype", "float32"),
            ("--kv-cache-dtype", "fp8"),
            ("--format", "json"),
            ("--gpu-memory-utilization", "0.0001"),
        )
    ),
    max_size=4,
)


def _memory(args):
    """Run `memory` as main() would, minus the printing: return the exit code; let bugs raise."""
    from click.testing import CliRunner

    from vllm_bug.cli import cli

    result = CliRunner().invoke(cli, ["memory", *args], catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, (SystemExit, VllmBugError)):
        raise result.exception
    if isinstance(result.exception, VllmBugError):
        message = str(result.exception)
        assert message and "\n" not in message
        return result.exception.exit_code
    return result.exit_code


@FUZZ
@given(hostile_config(), OPTIONS)
def test_memory_with_hostile_config(tmp_path_factory, config, options):
    path = tmp_path_factory.mktemp("model") / "config.json"
    path.write_text(json.dumps(config, allow_nan=True))
    args = ["--config", str(path)] + [item for pair in options for item in pair]
    if "--gpu" not in args:
        args += ["--gpu", "H100"]
    assert _memory(args) in (0, 1, 2, 3, 4)


@FUZZ
@given(st.binary(max_size=256) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_memory_with_junk_config_file(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("model") / "config.json"
    path.write_bytes(raw)
    assert _memory(["--config", str(path), "--gpu", "H100"]) in (0, 1, 2, 3, 4)


# -- odd places for -o, non-bundles for validate/show: one line, a documented exit code ------------------
def _main(capsys, *args):
    from vllm_bug.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    code = exc.value.code or 0
    assert code in (0, 1, 2, 3, 4), (code, err)
    assert "internal error" not in err and "Traceback" not in err
    if code:
        assert err.count("\n") == 1 and err.startswith("vllm-bug: error: "), err
    return code, out, err


@pytest.fixture
def odd_places(tmp_path):
    (tmp_path / "in.log").write_text("RuntimeError: CUDA error: an illegal memory access was encountered\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("keep")
    (tmp_path / "link").symlink_to(tmp_path / "afile")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    return tmp_path


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
@pytest.mark.parametrize(
    "target,expected",
    [
        ("adir", 1),
        ("afile/child", 1),
        ("nonexistent/x", 1),
        ("in.log", 1),
        ("afile", 1),
        ("link", 1),
        ("loop1", 1),
        ("x" * 300, 1),
        ("new.out", 0),
    ],
)
def test_analyze_output_in_odd_places(odd_places, capsys, fmt, target, expected):
    code, out, err = _main(
        capsys, "analyze", str(odd_places / "in.log"), "--format", fmt, "-o", str(odd_places / target)
    )
    assert code == expected, err
    assert (odd_places / "afile").read_text() == "keep" and (odd_places / "in.log").read_text().startswith(
        "RuntimeError"
    )


@pytest.mark.parametrize("command", ["validate", "show", "analyze"])
@pytest.mark.parametrize(
    "name,content",
    [
        ("empty.zst", b""),
        ("text.zst", b"RuntimeError: x\n"),
        ("nul.txt", b"\x00" * 64),
        ("magic.zst", b"\x28\xb5\x2f\xfd"),
        ("zip.zip", b"PK\x03\x04" + b"\x00" * 40),
        ("json.json", b'{"format": "vllm-bug-bundle", "schema_version": 1}'),
        ("deep.json", b'{"format": "vllm-bug-bundle", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ],
)
def test_non_bundles(tmp_path, capsys, command, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    code, _, _ = _main(capsys, command, str(path))
    assert code in (3, 4) or (command == "analyze" and code == 0)


@pytest.mark.parametrize("command", ["validate", "show", "analyze"])
def test_directories_and_symlink_loops(odd_places, capsys, command):
    assert _main(capsys, command, str(odd_places / "adir"))[0] == 3
    assert _main(capsys, command, str(odd_places / "loop1"))[0] == 3
