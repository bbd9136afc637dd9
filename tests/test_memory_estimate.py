"""Memory arithmetic (analyzer/memory/estimate.py and the modules it uses): numbers checked against hand
computation, not against the code's own output."""

from __future__ import annotations

import pytest

from vllm_bug.analyzer.memory.catalogue import builtin_models, lookup_model
from vllm_bug.analyzer.memory.estimate import estimate
from vllm_bug.analyzer.memory.layout import kv_bytes_per_token, tp_problem, valid_tp_sizes
from vllm_bug.analyzer.memory.shape import ShapeError, shape_from_config
from vllm_bug.analyzer.memory.units import GIB
from vllm_bug.analyzer.memory.weights import param_breakdown, weights_estimate

A100_80GB = 81920 * 2**20  # nvidia-smi: 81920 MiB = 80 GiB exactly
H100_80GB = 81559 * 2**20  # nvidia-smi: 81559 MiB = 79.65 GiB


def llama70b_on_two_a100(**overrides):
    args = dict(
        gpu_memory_bytes=A100_80GB,
        num_gpus=2,
        tp=2,
        max_model_len=16384,
        max_num_seqs=64,
        gpu_memory_utilization=0.92,
        weight_dtype="float16",
        kv_cache_dtype="auto",
        compute_capability=(8, 0),
    )
    args.update(overrides)
    return estimate(lookup_model("meta-llama/Llama-3.1-70B-Instruct"), **args)


class TestLlama70BOnTwoA100:
    """The issue's case: Llama-3.1-70B, fp16, 2 x A100-80GB, 16K context, 64 concurrent sequences.

    By hand:
      parameters  = 80 layers x (attention 8192*8192*2 + 2*8192*1024 = 150,994,944
                                 + MLP 3*8192*28672 = 704,643,072 + norms 2*8192)
                    + embeddings 128,256*8192 * 2 (not tied) + final norm 8192 = 70,553,706,496 (70.6B)
      weights     = 70,553,706,496 x 2 bytes = 141,107,412,992 bytes = 141.1 GB = 131.42 GiB
      per GPU     = / 2 (TP 2) = 70,553,706,496 bytes = 65.71 GiB
      KV / token  = 2 (K,V) x 80 layers x 8 kv heads x 128 head_dim x 2 bytes = 327,680 bytes = 320 KiB
      per GPU     = 4 kv heads at TP 2 -> 163,840 bytes = 160 KiB
      needed      = 16,384 x 64 = 1,048,576 tokens x 160 KiB = 171,798,691,840 bytes = 160 GiB per GPU
      usable      = 80 GiB x 0.92 = 79,027,398,246 bytes (73.6 GiB)
      overhead    = 1.5 GiB fixed + 0.5 GiB NCCL
                    + activations 8192 tokens x (4*8192 + 2*28672/2) x 2 bytes = 1,006,632,960
                    + sampler 64 x 128,256 x 4 bytes = 32,833,536
                    = 3,186,950,144 bytes (2.97 GiB)
      budget      = 79,027,398,246 - 70,553,706,496 - 3,186,950,144 = 5,286,741,606 bytes (4.92 GiB)
      tokens      = 5,286,741,606 // 163,840 = 32,267 -> whole 16-token blocks: 32,256
      -> 160 GiB needed vs 4.92 GiB available: does NOT fit (32.5x).
    The cuda-errors-guide says "KV cache @ 16K ctx, batch=64: ~8GB per GPU ... fits": it is off by 20x.
    """

    def test_weights(self):
        r = llama70b_on_two_a100()
        assert r.parameters == 70_553_706_496
        assert r.weights_bytes == 141_107_412_992
        assert r.weights_per_gpu_bytes == 70_553_706_496
        assert round(r.weights_bytes / GIB, 2) == 131.42
        assert round(r.weights_per_gpu_bytes / GIB, 2) == 65.71

    def test_kv_cache_per_token(self):
        r = llama70b_on_two_a100()
        assert r.kv_bytes_per_token_model == 327_680
        assert r.kv_heads_per_gpu == 4
        assert r.kv_bytes_per_token_per_gpu == 163_840

    def test_does_not_fit(self):
        r = llama70b_on_two_a100()
        assert r.kv_tokens_needed == 1_048_576
        assert r.kv_bytes_needed_per_gpu == 171_798_691_840 == 160 * GIB
        assert r.usable_bytes_per_gpu == 79_027_398_246
        assert r.overhead_bytes_per_gpu == 3_186_950_144
        assert r.kv_budget_bytes_per_gpu == 5_286_741_606
        assert r.kv_tokens_fit == 32_256
        assert not r.fits and not r.memory_fits
        assert r.one_sequence_fits  # vLLM itself starts: one 16K sequence fits
        # the guide's "~8GB per GPU" is wrong by about 20x
        assert r.kv_bytes_needed_per_gpu / 8e9 > 20

    def test_alternatives(self):
        alt = llama70b_on_two_a100().alternatives
        assert alt.max_num_seqs_at_max_model_len == 1  # 32,256 // 16,384
        assert alt.max_model_len_for_max_num_seqs == 496  # 32,256 // 64 = 504 -> 496 in 16-token blocks
        # TP 4: 80 GiB of KV cache alone exceeds 73.6 GiB usable. TP 8: 16.43 GiB weights + 40 GiB KV
        # + 2.64 GiB overhead (activations 8192 x (32768 + 7168) x 2) = 59.07 GiB <= 73.6 GiB.
        assert alt.smallest_tp_that_fits == 8
        assert alt.smallest_tp_needs_more_gpus
        # (65.71 + 2.97 + 160) GiB / 80 GiB = 2.86: no utilization value fits
        assert alt.gpu_memory_utilization_needed == pytest.approx(2.86)
        assert alt.fp8_kv_supported is False  # A100 is compute capability 8.0
        assert not alt.fp8_kv_fits  # fp8 halves 160 GiB to 80 GiB: still far too much

    def test_suggestions_and_lines(self):
        r = llama70b_on_two_a100()
        text = "\n".join(r.suggestions)
        assert "--max-model-len 496" in text
        assert "--max-num-seqs 1" in text
        assert "--tensor-parallel-size 8" in text and "needs 8 GPUs" in text
        assert "--gpu-memory-utilization" not in text
        assert "--kv-cache-dtype fp8" not in text
        assert any("8.0 < 8.9" in n for n in r.notes)
        lines = "\n".join(r.lines)
        assert "327,680 bytes (320.0 KiB)" in lines
        assert "163,840 bytes (160.0 KiB)" in lines
        assert "160.00 GiB per GPU -> does NOT fit" in lines
        assert "131.42 GiB" in lines and "65.71 GiB" in lines

    def test_fits_at_tp8_on_eight_gpus(self):
        r = llama70b_on_two_a100(num_gpus=8, tp=8)
        assert r.fits
        assert r.kv_bytes_per_token_per_gpu == 40_960  # one kv head per GPU
        assert r.suggestions == []


def test_kv_heads_replicated_when_fewer_than_tp():
    shape = lookup_model("Qwen3-30B-A3B")  # 32 heads, 4 kv heads, 48 layers, head_dim 128
    # TP 4: one kv head each = 2 x 48 x 1 x 128 x 2 = 24,576 bytes; TP 8 cannot split 4 heads further,
    # so each GPU keeps a replica of one head: still 24,576 bytes per token per GPU.
    assert kv_bytes_per_token(shape, "bfloat16", tp=4) == 24_576
    assert kv_bytes_per_token(shape, "bfloat16", tp=8) == 24_576
    assert kv_bytes_per_token(shape, "bfloat16", tp=1) == 98_304
    r = estimate(shape, H100_80GB, num_gpus=8, tp=8, max_model_len=32768, max_num_seqs=8)
    assert r.kv_heads_per_gpu == 1
    assert any("replica" in line for line in r.lines)


def test_tp_validity():
    qwen7b = lookup_model("Qwen2.5-7B")  # 28 heads, 4 kv heads
    assert tp_problem(qwen7b, 8) is not None  # 28 % 8 != 0
    assert tp_problem(qwen7b, 4) is None
    assert valid_tp_sizes(qwen7b) == [1, 2, 4]
    r = estimate(qwen7b, H100_80GB, num_gpus=8, tp=8, max_model_len=4096)
    assert not r.fits and r.memory_fits
    assert any("not divisible" in p for p in r.problems)
    assert r.suggestions and "--tensor-parallel-size 1" in r.suggestions[0]
    too_many = estimate(qwen7b, H100_80GB, num_gpus=2, tp=4, max_model_len=4096)
    assert any("only 2 given" in p for p in too_many.problems)


def test_moe_weights_from_shape():
    mixtral = lookup_model("Mixtral-8x7B-Instruct-v0.1")
    # per layer: 8 experts x 3 x 4096 x 14336 = 1,409,286,144 + router 4096 x 8 = 32,768
    # attention 2 x 4096 x 4096 + 2 x 4096 x 1024 = 41,943,040; 32 layers; embeddings 32000 x 4096 x 2
    b = param_breakdown(mixtral)
    assert b.experts == 32 * (1_409_286_144 + 32_768)
    assert b.attention == 32 * 41_943_040
    assert b.embedding == b.lm_head == 131_072_000
    assert b.total == 46_702_792_704  # the published count
    config = {k: v for k, v in builtin_models()[9].items() if k != "num_parameters"}
    assert config["name"].endswith("Mixtral-8x7B-v0.1")
    assert weights_estimate(shape_from_config(config)).total_bytes == 2 * 46_702_792_704


def test_moe_activation_uses_active_experts():
    shape = lookup_model("Qwen3-30B-A3B")
    r = estimate(shape, 80 * GIB, num_gpus=1, max_model_len=4096)
    # activations: 8192 x (4 x 2048 + 2 x (8 active x 768)) x 2 bytes = 335,544,320
    assert r.overhead_bytes_per_gpu == int(1.5 * GIB) + 335_544_320 + 151_936 * 4


def test_mxfp4_checkpoint_quantizes_only_experts():
    shape = lookup_model("openai/gpt-oss-120b")
    b = param_breakdown(shape)
    w = weights_estimate(shape)
    expected = b.experts * 4.25 / 8 + (shape.num_parameters - b.experts) * 2
    assert w.total_bytes == int(expected)
    assert 55 * GIB < w.total_bytes < 65 * GIB  # the checkpoint is about 65 GB
    r = estimate(shape, H100_80GB, max_model_len=8192)
    assert r.fits
    assert any("sliding window of 128" in n for n in r.notes)


def test_fp8_kv_halves_and_is_suggested_only_where_supported():
    shape = lookup_model("meta-llama/Llama-3.1-8B-Instruct")
    assert kv_bytes_per_token(shape, "fp8") * 2 == kv_bytes_per_token(shape, "bfloat16") == 131_072
    bf16 = estimate(shape, H100_80GB, max_model_len=131072, max_num_seqs=4, compute_capability=(9, 0))
    fp8 = estimate(
        shape, H100_80GB, max_model_len=131072, max_num_seqs=4, compute_capability=(9, 0), kv_cache_dtype="fp8"
    )
    assert fp8.kv_bytes_per_token_per_gpu == 65_536
    # same budget, half the bytes per token: twice the tokens (to within one 16-token block)
    assert abs(fp8.kv_tokens_fit - 2 * bf16.kv_tokens_fit) <= 16
    # bf16 needs 4 x 128K x 128 KiB = 64 GiB, more than the ~56 GiB budget; fp8 needs 32 GiB
    assert not bf16.fits and fp8.fits
    assert any("--kv-cache-dtype fp8" in s and "fits the request" in s for s in bf16.suggestions)
    on_a100 = estimate(shape, A100_80GB, max_model_len=131072, max_num_seqs=4, compute_capability=(8, 0))
    assert on_a100.alternatives.fp8_kv_fits and on_a100.alternatives.fp8_kv_supported is False
    assert not any("fp8" in s for s in on_a100.suggestions)
    assert any("It would fit the request" in n for n in on_a100.notes)


def test_mla_kv_cache_is_latent_and_not_split_by_tp():
    shape = lookup_model("deepseek-ai/DeepSeek-V3")
    # 61 layers x (kv_lora_rank 512 + rope 64) x 2 bytes, the same on every TP rank
    assert kv_bytes_per_token(shape, "bfloat16", tp=1) == kv_bytes_per_token(shape, "bfloat16", tp=8) == 70_272
    r = estimate(shape, 143771 * 2**20, num_gpus=8, max_model_len=32768, max_num_seqs=8)
    assert r.kv_heads_per_gpu is None
    assert any("does not hold" in n for n in r.notes)
    # fp8 checkpoint: linear layers at 1 byte, embeddings in bf16 -> about 0.63 TiB
    assert 600 * GIB < r.weights_bytes < 650 * GIB


def test_quantized_checkpoints():
    base = {
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "torch_dtype": "float16",
    }
    awq = dict(base, quantization_config={"quant_method": "awq", "bits": 4, "group_size": 128})
    ct = dict(
        base,
        quantization_config={
            "quant_method": "compressed-tensors",
            "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float"}}},
        },
    )
    full = weights_estimate(shape_from_config(base)).total_bytes
    assert full == 8_030_261_248 * 2
    b = param_breakdown(shape_from_config(base))
    linear = b.attention + b.dense_mlp
    assert weights_estimate(shape_from_config(ct)).total_bytes == linear * 1 + (b.total - linear) * 2
    # AWQ 4-bit, group 128: 0.5 byte + (16-bit scale + 4-bit zero) / 128 per weight
    awq_bytes = int(linear * (0.5 + 20 / 8 / 128) + (b.total - linear) * 2)
    assert weights_estimate(shape_from_config(awq)).total_bytes == awq_bytes


def test_online_fp8_weights_keep_embeddings_in_16_bits():
    shape = lookup_model("Llama-3.1-70B")
    b = param_breakdown(shape)
    fp8 = weights_estimate(shape, "fp8").total_bytes
    assert fp8 == (b.attention + b.dense_mlp) + (b.embedding + b.lm_head + b.norms) * 2


def test_estimate_rejects_unusable_inputs():
    shape = lookup_model("Llama-3.1-8B")
    with pytest.raises(ShapeError, match="weight dtype"):
        estimate(shape, H100_80GB, weight_dtype="int3")
    with pytest.raises(ShapeError, match="KV cache dtype"):
        estimate(shape, H100_80GB, kv_cache_dtype="fp4x")
    no_context = shape_from_config(
        {
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "vocab_size": 100,
        }
    )
    with pytest.raises(ShapeError, match="max_model_len"):
        estimate(no_context, H100_80GB)
