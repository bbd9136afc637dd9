import time
from pathlib import Path

import pytest

from test_formats_collect_env import SECTIONED
from vllm_bug.analyzer.textfacts import facts_from_text

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "excerpts"
H200 = Path(__file__).parent / "fixtures" / "device" / "h200"
GIB = 1 << 30


def _fixture(name):
    return facts_from_text((FIXTURES / name).read_text())


# -- collect_env ---------------------------------------------------------------------------


def test_sectioned_format_into_facts():
    facts = facts_from_text(SECTIONED)
    assert facts.torch_cuda == "12.8" and facts.nvcc_version == "12.8.93"
    assert facts.driver_version == "570.133.20" and facts.vllm_version == "0.11.0"
    assert facts.glibc == "2.35" and facts.python_version == "3.12.11" and facts.kernel == "6.8.0-1021-aws"
    assert [g.compute_capability for g in facts.gpus] == [(8, 9), (8, 9)]
    assert facts.torch_cuda_available is True
    assert facts.env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert facts.env["HF_TOKEN"] == "<redacted>"
    assert facts.package("transformers") == "4.56.1"


def test_real_sectioned_output_from_an_issue():
    facts = facts_from_text((FIXTURES / "vllm_sectioned_collect_env.txt").read_text())
    assert facts.torch_version == "2.7.0+cu126" and facts.torch_cuda == "12.6"
    assert facts.nvcc_version == "12.8.61" and facts.vllm_version == "0.9.1"
    assert facts.gpus and facts.gpus[0].compute_capability == (6, 1)  # GTX 1080 Ti, stated in the title


def test_flat_torch_format_from_a_real_machine():
    facts = facts_from_text((H200 / "torch-collect-env.txt").read_text())
    assert facts.torch_version == "2.11.0+cu130" and facts.torch_cuda == "13.0"
    assert facts.nvcc_version == "13.0.88" and facts.driver_version == "580.159.04"
    assert [g.name for g in facts.gpus] == ["NVIDIA H200"] and facts.gpus[0].compute_capability == (9, 0)
    assert facts.glibc == "2.39" and facts.torch_cuda_available is True
    assert facts.package("torch") == "2.11.0" and "botorch" in facts.packages


def test_flat_format_with_gpu_list_on_following_lines():
    facts = facts_from_text((FIXTURES / "flat_collect_env_glibc.txt").read_text())
    assert facts.torch_version == "2.3.1+cu121" and facts.torch_cuda == "12.1"
    assert facts.driver_version == "530.30.02"
    assert len(facts.gpus) == 2 and facts.gpus[0].memory_total_bytes == 32 << 30


def test_nvidia_smi_table():
    f = facts_from_text((H200 / "nvidia-smi.txt").read_text())
    assert f.driver_version == "580.159.04" and f.driver_cuda == "13.0"
    assert f.gpus[0].name == "NVIDIA H200" and f.gpus[0].memory_total_bytes == 143771 << 20
    assert f.gpus[0].compute_capability == (9, 0)


def test_nvidia_smi_processes_and_old_layout():
    smi = """\
+-----------------------------------------------------------------------------+
| NVIDIA-SMI 470.82.01    Driver Version: 470.82.01    CUDA Version: 11.4     |
|-------------------------------+----------------------+----------------------+
| GPU  Name        Persistence-M| Bus-Id        Disp.A | Volatile Uncorr. ECC |
|===============================+======================+======================|
|   0  Tesla V100-SXM2...  On   | 00000000:00:1E.0 Off |                    0 |
| N/A   34C    P0    41W / 300W |  15890MiB / 16160MiB |      0%      Default |
+-------------------------------+----------------------+----------------------+
| Processes:                                                                  |
|  GPU   GI   CI        PID   Type   Process name                  GPU Memory |
|=============================================================================|
|    0   N/A  N/A     12345      C   python3                         15887MiB |
+-----------------------------------------------------------------------------+
"""
    f = facts_from_text(smi)
    assert f.driver_cuda == "11.4"
    gpu = f.gpus[0]
    assert gpu.memory_used_bytes == 15890 << 20 and gpu.compute_capability == (7, 0)
    assert gpu.processes == [{"pid": 12345, "name": "python3", "type": "C", "used_memory_bytes": 15887 << 20}]


def test_oom_message_gives_memory_total():
    f = _fixture("oom_two_ranks.txt")
    assert f.gpus and abs(f.gpus[0].memory_total_bytes - 23.57 * GIB) < GIB / 100
    assert f.root_cause.short_type == "OutOfMemoryError"


def test_non_default_args_are_parsed_safely():
    log = "INFO 10-01 [utils.py:1] non-default args: {'model': 'Qwen/Qwen3-8B', 'max_model_len': 32768, 'gpu_memory_utilization': 0.95, 'enforce_eager': True, 'compilation_config': CompilationConfig(level=3)}\n"
    f = facts_from_text(log)
    assert f.engine_args["model"] == "Qwen/Qwen3-8B"
    assert f.engine_args["max_model_len"] == 32768 and f.engine_args["gpu_memory_utilization"] == 0.95
    assert f.engine_args["enforce_eager"] is True


def test_non_default_args_never_evaluates_code():
    f = facts_from_text("non-default args: {'model': __import__('os').system('echo pwned')}\n")
    assert "model" not in f.engine_args


def test_v1_engine_config_line():
    line = (
        "INFO 10-01 12:00:00 [core.py:1] Initializing a V1 LLM engine (v0.11.0) with config: model='meta-llama/Llama-3.1-8B', "
        "speculative_config=None, tokenizer='meta-llama/Llama-3.1-8B', dtype=torch.bfloat16, max_seq_len=131072, "
        "tensor_parallel_size=2, quantization=None, enforce_eager=False, kv_cache_dtype=auto\n"
    )
    f = facts_from_text(line)
    assert f.vllm_version == "0.11.0"
    assert f.engine_args["dtype"] == "bfloat16" and f.engine_args["max_model_len"] == 131072
    assert f.engine_args["tensor_parallel_size"] == 2 and "quantization" not in f.engine_args


def test_multiline_launch_without_backslashes_and_env_prefix():
    f = _fixture("multiline_launch_journald.txt")
    assert f.launch_command.startswith("python -m vllm.entrypoints.openai.api_server")
    assert f.engine_args["max_model_len"] == 32768 and f.engine_args["tensor_parallel_size"] == 1
    assert f.engine_args["quantization"] == "gptq" and f.engine_args["enable_prefix_caching"] is True
    assert f.env == {"VLLM_ATTENTION_BACKEND": "FLASH_ATTN", "CUDA_VISIBLE_DEVICES": "0"}
    assert f.vllm_version == "0.4.3" and f.driver_version == "555.42.02"
    assert len(f.gpus) == 2 and f.gpus[0].compute_capability == (8, 9)  # "4060Ti Super * 2"
    assert "illegal memory access" in f.root_cause.message


def test_docker_run_command_and_container_hint():
    f = _fixture("docker_vision_cuda_graph.txt")
    assert f.container.get("docker") is True
    assert f.engine_args["tensor_parallel_size"] == 8
    assert f.env["HUGGING_FACE_HUB_TOKEN"] == "<redacted>"
    assert f.vllm_version == "0.6.2"
    assert len(f.gpus) == 8 and f.gpus[0].compute_capability == (9, 0)


def test_llm_python_call():
    f = _fixture("llm_call.txt")
    assert f.engine_args == {
        "model": "/.../Baichuan-7b",
        "trust_remote_code": True,
        "dtype": "float16",
        "gpu_memory_utilization": 0.85,
        "tokenizer_mode": "slow",
    }
    assert f.launch_command.startswith("LLM(")


def test_advice_in_messages_is_not_an_env_setting():
    text = (
        "RuntimeError: CUDA error: an illegal memory access was encountered\n"
        "For debugging consider passing CUDA_LAUNCH_BLOCKING=1\n"
        "If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid\n"
        "export VLLM_USE_V1=0\n"
        "VLLM_ATTENTION_BACKEND=XFORMERS vllm serve m\n"
    )
    f = facts_from_text(text)
    assert f.env == {"VLLM_USE_V1": "0", "VLLM_ATTENTION_BACKEND": "XFORMERS"}


def test_kv_cache_numbers_v1():
    text = (
        "INFO [kv_cache_utils.py:1] GPU KV cache size: 150,745 tokens\n"
        "INFO [kv_cache_utils.py:1] Maximum concurrency for 124,000 tokens per request: 1.22x\n"
        "ValueError: To serve at least one request with the models's max seq len (131072), (16.0 GiB KV cache is needed, "
        "which is larger than the available KV cache memory (12.5 GiB). Based on the available memory, the estimated maximum model length is 102400.\n"
    )
    f = facts_from_text(text)
    assert f.kv_cache_tokens == 150745 and f.max_concurrency == 1.22
    assert f.estimated_max_model_len == 102400
    assert f.kv_cache_memory_bytes == int(12.5 * GIB)


def test_kv_cache_numbers_v0():
    f = _fixture("kv_cache_v0.txt")
    assert f.kv_cache_tokens == 23648 and f.gpu_blocks == 1478 and f.max_concurrency == 0.82
    assert f.engine_args["max_model_len"] == 29000
    assert f.model_weights_bytes == int(14.9888 * GIB)


def test_versions_from_prose_and_pip():
    f = facts_from_text("vllm==0.2.2 torch2.1.0+cuda118\n")
    assert f.vllm_version == "0.2.2" and f.torch_version == "2.1.0+cuda118" and f.torch_cuda == "11.8"
    f = facts_from_text("Package    Version\n---------- -------\nvllm       0.6.3.post1\ntorch      2.4.0\n")
    assert f.vllm_version == "0.6.3.post1" and f.torch_version == "2.4.0"
    f = facts_from_text("nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 12.4, V12.4.131\n")
    assert f.nvcc_version == "12.4.131"


def test_compute_capability_statements():
    f = facts_from_text(
        "ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Tesla T4 GPU has compute capability 7.5.\n"
    )
    assert f.gpus[0].compute_capability == (7, 5)
    f = facts_from_text(
        "NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the current PyTorch installation.\n"
        "The current PyTorch install supports CUDA capabilities sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90.\n"
    )
    assert f.gpus[0].compute_capability == (12, 0)
    assert f.torch_arch_list == ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]


def test_xid_lines():
    f = facts_from_text("[ 1234.5] NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus.\nother\n")
    assert f.xid == ["[ 1234.5] NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus."]


def test_gpu_count_in_prose():
    f = facts_from_text("[Bug]: 8xV100 gpus: Failed to infer device type\n")
    assert len(f.gpus) == 8 and f.gpus[0].compute_capability == (7, 0)
    assert f.root_cause.message.endswith("Failed to infer device type")


def test_wsl_nvidia_smi_with_modded_memory():
    f = _fixture("wsl_smi_48gb.txt")
    assert f.driver_version == "576.02" and f.driver_cuda == "12.9" and f.vllm_version == "0.15.1"
    assert len(f.gpus) == 2 and f.gpus[0].memory_total_bytes == 49140 << 20


def test_gcp_logging_prefixes_and_title_version():
    f = _fixture("gcp_cut_traceback.txt")
    assert f.vllm_version == "0.11.1"
    assert all("resource.labels" not in line for line in f.lines)


def test_corpus_facts_match_what_reports_state():
    """Every fixture's stated versions come out; a sample of the real reports in the dev corpus."""
    expectations = {
        "err803_new_driver.txt": {"driver_version": "560.35.03", "driver_cuda": "12.6"},
        "t4_triton_env.txt": {"driver_version": "535.161.07", "driver_cuda": "12.2"},
        "kv_cache_size_tokens.txt": {
            "driver_version": "610.57.04",
            "torch_version": "2.13.0+cu130",
            "torch_cuda": "13.0",
        },
    }
    for name, expected in expectations.items():
        f = _fixture(name)
        for field, value in expected.items():
            assert getattr(f, field) == value, (name, field)


@pytest.mark.parametrize(
    "junk",
    [
        "x=1 " * 250000,
        "RTX " * 250000,
        "'a': " * 200000,
        "non-default args: {" + "'a': 1, " * 100000,
        "vllm serve m " + "--x 1 " * 150000,
        "LLM(" * 250000,
        "GPU 0: " * 150000,
        "| 0 NVIDIA " * 100000,
    ],
)
def test_pathological_inputs_have_no_catastrophic_backtracking(junk):
    # a super-linear regex takes minutes on these; linear work takes well under a second
    start = time.perf_counter()
    facts_from_text(junk)
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("word", ["torch", "vllm", "driver"])
def test_a_version_word_before_a_long_run_of_blanks_costs_linear_time(word):
    # '[ \t]*[:=]?[ \t]*' after the word split a run of blanks two ways: 5-7 s for one 16 KB line
    start = time.perf_counter()
    facts = facts_from_text((word + " " * 16000 + "x\n") * 5 + f"{word} 2.7.0 and driver 550.54.15\n")
    assert time.perf_counter() - start < 3
    assert facts.driver_version == "550.54.15"


def test_versions_stated_with_blanks_and_a_colon():
    facts = facts_from_text("torch :  2.7.1+cu126\nvllm =0.10.1\nDriver Version :\t570.86.15\n")
    assert (
        facts.torch_version == "2.7.1+cu126" and facts.vllm_version == "0.10.1" and facts.driver_version == "570.86.15"
    )
