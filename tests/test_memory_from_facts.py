"""The memory estimate for analysed facts (analyzer/memory/from_facts.py), worked out once when the facts are
complete (analyzer/complete.py) and read by the rules through facts.memory."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from vllm_bug.analyzer.analyze import analyze_text
from vllm_bug.analyzer.complete import complete_facts
from vllm_bug.analyzer.facts import Facts, Gpu
from vllm_bug.analyzer.jsonout import analysis_to_json
from vllm_bug.analyzer.memory import from_facts
from vllm_bug.analyzer.memory.catalogue import builtin_models, lookup_model
from vllm_bug.analyzer.memory.from_facts import estimate_for_facts
from vllm_bug.analyzer.memory.weights import param_breakdown
from vllm_bug.analyzer.rules.helpers import memory_report

A100_80GB = 81920 * 2**20  # nvidia-smi: 81920 MiB = 80 GiB exactly
H100_80GB = 81559 * 2**20  # nvidia-smi: 81559 MiB = 79.65 GiB
LLAMA70B_CONFIG = {k: v for k, v in builtin_models()[1].items() if k not in ("name", "aliases", "num_parameters")}


def test_estimate_for_facts_with_config_and_gpus():
    facts = Facts(
        gpus=[Gpu(name="NVIDIA A100-SXM4-80GB", memory_total_bytes=A100_80GB, compute_capability=(8, 0))] * 2,
        engine_args={
            "model": "meta-llama/Llama-3.1-70B-Instruct",
            "tensor_parallel_size": 2,
            "max_model_len": "16384",
            "max_num_seqs": 64,
            "dtype": "float16",
            "gpu_memory_utilization": 0.92,
        },
        model=copy.deepcopy(LLAMA70B_CONFIG),
    )
    result = estimate_for_facts(facts)
    assert result is not None
    # no num_parameters in a real config: the shape gives the same 70,553,706,496
    assert result.weights_bytes == 141_107_412_992
    assert result.kv_bytes_per_token_per_gpu == 163_840
    assert result.kv_tokens_fit == 32_256
    assert result.fits is False
    assert result.to_dict()["compute_capability"] == "8.0"
    assert any("--max-model-len 496" in s for s in result.suggestions)
    assert result.lines and result.notes
    assert not any("not given" in n for n in result.notes)  # every setting was given


def test_estimate_for_facts_from_model_name_and_gpu_name():
    facts = Facts(
        gpus=[Gpu(name="NVIDIA H100 80GB HBM3")],
        engine_args={"model": "Qwen/Qwen2.5-7B-Instruct", "max_model_len": 32768},
    )
    result = estimate_for_facts(facts)
    assert result is not None
    assert result.gpu_memory_bytes == H100_80GB  # nvidia-smi's 81559 MiB, not a nominal 80 GiB
    assert result.max_num_seqs == 1
    assert result.gpu_memory_utilization == 0.92
    assert any("max_num_seqs not given" in n for n in result.notes)
    assert any("gpu_memory_utilization not given" in n for n in result.notes)
    assert result.fits is True


@pytest.mark.parametrize(
    "facts",
    [
        Facts(gpus=[], engine_args={"model": "Llama-3.1-8B"}),
        Facts(gpus=[Gpu(name="NVIDIA A10G")], engine_args={"model": "someone/unknown-model"}),
        Facts(gpus=[Gpu(name="mystery accelerator")], engine_args={"model": "Llama-3.1-8B"}),
        Facts(gpus=[Gpu(memory_total_bytes=A100_80GB)], model={"architectures": ["X"]}),
    ],
)
def test_estimate_for_facts_none_when_too_little_is_known(facts):
    assert estimate_for_facts(facts) is None


def test_estimate_for_facts_tolerates_junk_engine_args():
    facts = Facts(
        gpus=[Gpu(name="NVIDIA L4", memory_total_bytes=23034 * 2**20)],
        engine_args={
            "model": "Llama-3.2-1B",
            "max_model_len": "lots",
            "tensor_parallel_size": None,
            "gpu_memory_utilization": "1.5",
            "kv_cache_dtype": "weird",
            "dtype": "auto",
        },
    )
    result = estimate_for_facts(facts)
    assert result is not None
    assert result.max_model_len == 131072  # junk ignored: the model's own context length
    assert result.gpu_memory_utilization == 0.92
    assert result.kv_cache_dtype == "bfloat16"


def test_estimate_for_facts_quantization_flag_without_quant_config():
    gpus = [Gpu(name="NVIDIA A10G", memory_total_bytes=23028 * 2**20)]
    plain = estimate_for_facts(Facts(gpus=gpus, engine_args={"model": "Qwen2.5-7B", "max_model_len": 8192}))
    awq = estimate_for_facts(
        Facts(gpus=gpus, engine_args={"model": "Qwen2.5-7B", "max_model_len": 8192, "quantization": "awq"})
    )
    assert plain is not None and awq is not None
    b = param_breakdown(lookup_model("Qwen2.5-7B"))
    linear = b.attention + b.dense_mlp
    assert plain.weights_bytes == 7_615_616_512 * 2
    # int4 weights in linear layers, the rest (embeddings, lm_head, norms, biases) in bf16
    assert awq.weights_bytes == int(linear * 0.5 + (7_615_616_512 - linear) * 2)


def test_smallest_gpu_decides_and_capability_comes_from_the_name():
    facts = Facts(
        gpus=[Gpu(name="NVIDIA H100 80GB HBM3"), Gpu(name="NVIDIA L4")],
        engine_args={"model": "Llama-3.2-1B", "max_model_len": 4096},
    )
    gpus = from_facts.gpus_for_facts(facts)
    assert gpus.memory_bytes == 23034 * 2**20  # the L4, by what nvidia-smi reports for it
    assert gpus.compute_capability == (8, 9)  # the L4's, the lower of the two
    assert gpus.label == "NVIDIA H100 80GB HBM3"


# -- worked out once, when the facts are complete ------------------------------------------------

OOM_WITH_MODEL_AND_GPUS = "\n".join(
    [
        "vLLM Version: 0.10.1",
        "GPU 0: NVIDIA A100-SXM4-40GB",
        "INFO non-default args: {'model': 'meta-llama/Llama-3.1-70B-Instruct', 'max_model_len': 131072}",
        "ValueError: To serve at least one request with the models's max seq len (131072), (16.00 GiB KV cache is "
        "needed, which is larger than the available KV cache memory (5.23 GiB). Based on the available memory, the "
        "estimated maximum model length is 42816.",
        "Traceback (most recent call last):",
        '  File "/usr/lib/python3/site-packages/vllm/v1/worker/gpu_worker.py", line 1, in profile_run',
        "    x",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
    ]
)


def test_analysis_computes_the_estimate_once_for_every_rule_that_shows_it(monkeypatch):
    calls = []
    real = from_facts.estimate_for_facts
    monkeypatch.setattr(from_facts, "estimate_for_facts", lambda facts: calls.append(1) or real(facts))
    analysis = analyze_text(OOM_WITH_MODEL_AND_GPUS)
    with_memory = [f.rule for f in analysis.diagnoses if "memory" in f.details]
    assert len(with_memory) >= 2, with_memory  # several rules quote the arithmetic ...
    assert len(calls) == 1  # ... which was done once
    assert analysis.facts.memory is not None and analysis.facts.memory.model == "meta-llama/Llama-3.1-70B"
    assert analysis.facts.oom_phase == "profiling"


def test_memory_report_reads_the_derived_field_as_a_fresh_dict():
    facts = complete_facts(Facts(gpus=[Gpu(name="NVIDIA H100 80GB HBM3")], engine_args={"model": "Llama-3.1-8B"}))
    assert facts.memory is not None
    first, second = memory_report(facts), memory_report(facts)
    assert first == second == facts.memory.to_dict()
    first["lines"].append("changed by one finding")
    assert memory_report(facts) == second  # one finding's copy cannot change another's


def test_hand_built_facts_get_the_derived_values_on_first_use():
    facts = Facts(gpus=[Gpu(name="NVIDIA H100 80GB HBM3")], engine_args={"model": "Llama-3.1-8B"})
    assert facts.memory is None and facts.signals is None
    report = memory_report(facts)
    assert report is not None and report["model"] == "meta-llama/Llama-3.1-8B"
    assert facts.memory is not None


def test_derived_values_stay_out_of_the_json_facts():
    out = analysis_to_json(analyze_text(OOM_WITH_MODEL_AND_GPUS))
    assert "memory" not in out["facts"] and "oom_phase" not in out["facts"]
    assert any("memory" in d.get("details", {}) for d in out["diagnoses"])  # where the arithmetic is shown


def test_sampler_phase_is_worked_out_without_an_out_of_memory_line():
    facts = analyze_text(
        "vLLM Version: 0.10.1\nERROR Engine failed while warming up sampler with 256 dummy requests\n"
    ).facts
    assert facts.oom_phase == "sampler"


def test_arithmetic_is_not_imported_without_a_gpu_and_a_model():
    code = (
        "import sys; from vllm_bug.analyzer.analyze import analyze_text; "
        "a = analyze_text('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.'); "
        "print(a.facts.memory, sorted(m for m in sys.modules if m.startswith('vllm_bug.analyzer.memory.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    memory, modules = result.stdout.split(" ", 1)
    assert memory == "None"
    assert json.loads(modules.replace("'", '"')) == ["vllm_bug.analyzer.memory.oom_phase"]
