from pathlib import Path

from vllm_bug.analyzer.collect_env_parse import parse_bool, parse_collect_env
from vllm_bug.analyzer.textfacts import facts_from_text

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "excerpts"
H200 = Path(__file__).parent / "fixtures" / "device" / "h200"

SECTIONED = """\
INFO 06-12 17:10:51 [__init__.py:244] Automatically detected platform cuda.
Collecting environment information...
==============================
        System Info
==============================
OS                           : Ubuntu 22.04.4 LTS (x86_64)
Libc version                 : glibc-2.35

==============================
       PyTorch Info
==============================
PyTorch version              : 2.8.0+cu128
CUDA used to build PyTorch   : 12.8

==============================
      Python Environment
==============================
Python version               : 3.12.11 (main, Jun  4 2025, 08:56:18) [GCC 11.4.0] (64-bit runtime)
Python platform              : Linux-6.8.0-1021-aws-x86_64-with-glibc2.35

==============================
       CUDA / GPU Info
==============================
Is CUDA available            : True
CUDA runtime version         : 12.8.93
GPU models and configuration :
GPU 0: NVIDIA L40S
GPU 1: NVIDIA L40S

Nvidia driver version        : 570.133.20

==============================
Versions of relevant libraries
==============================
[pip3] torch==2.8.0+cu128
[pip3] transformers==4.56.1
[conda] numpy                     2.2.6                    pypi_0    pypi

==============================
         vLLM Info
==============================
vLLM Version                 : 0.11.0
GPU Topology:
  \tGPU0\tGPU1
GPU0\t X \tPHB

==============================
     Environment Variables
==============================
VLLM_USE_V1=0
CUDA_VISIBLE_DEVICES=0,1
HF_TOKEN=hf_abc
"""


def test_sectioned_vllm_format():
    env = parse_collect_env(SECTIONED.splitlines())
    assert env.get("torch_version") == "2.8.0+cu128"
    assert env.get("nvcc_version") == "12.8.93"
    assert env.gpus == [(0, "NVIDIA L40S"), (1, "NVIDIA L40S")]
    assert env.packages["torch"] == "2.8.0+cu128" and env.packages["numpy"] == "2.2.6"
    assert env.env["VLLM_USE_V1"] == "0"


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


def test_unknown_values_are_none():
    env = parse_collect_env(["PyTorch version: N/A", "CUDA used to build PyTorch: Could not collect", "Is CUDA available: False"])
    assert env.get("torch_version") is None and env.get("torch_cuda") is None
    assert parse_bool(env.get("torch_cuda_available")) is False


def test_labels_inside_a_log_are_not_mistaken():
    env = parse_collect_env(["ValueError: something: else", "  File \"x.py\", line 1, in f"])
    assert not env.found
