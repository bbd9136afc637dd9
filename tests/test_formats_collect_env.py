"""collect_env output: vLLM's sectioned format and torch's flat one, read into a CollectEnv."""

import time
from pathlib import Path

from vllm_bug.formats.collect_env import parse_bool, parse_collect_env, parse_gpu_item

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


def test_unknown_values_are_none():
    env = parse_collect_env(
        ["PyTorch version: N/A", "CUDA used to build PyTorch: Could not collect", "Is CUDA available: False"]
    )
    assert env.get("torch_version") is None and env.get("torch_cuda") is None
    assert parse_bool(env.get("torch_cuda_available")) is False


def test_labels_inside_a_log_are_not_mistaken():
    assert parse_collect_env(["ValueError: something: else", '  File "x.py", line 1, in f']) is None


def test_typed_fields_of_the_sectioned_format():
    env = parse_collect_env(SECTIONED.splitlines())
    assert env.torch_cuda_available is True and env.nvcc_version == "12.8.93" and env.driver_version == "570.133.20"
    assert env.vllm_version == "0.11.0" and env.glibc == "2.35" and env.python_version == "3.12.11"
    assert env.kernel == "6.8.0-1021-aws" and env.get("os") == "Ubuntu 22.04.4 LTS (x86_64)"
    assert env.topology == ""


def test_real_flat_output_from_an_h200_machine():
    env = parse_collect_env((H200 / "torch-collect-env.txt").read_text().splitlines())
    assert env.get("torch_version") == "2.11.0+cu130" and env.driver_version == "580.159.04"
    assert env.gpus == [(0, "NVIDIA H200")]
    assert env.packages["torch"] == "2.11.0"


def test_vllm_version_of_a_source_build():
    env = parse_collect_env(["vLLM Version                 : 0.9.2.dev364+gb6553be1b (git sha: b6553be1b)"])
    assert env.vllm_version == "0.9.2.dev364+gb6553be1b"


def test_gpu_list_items():
    assert parse_gpu_item("GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-0f3c)") == (1, "NVIDIA H100 80GB HBM3")
    assert parse_gpu_item("  GPU 0 : Tesla T4   ") == (0, "Tesla T4")
    assert parse_gpu_item("GPU 0: NVIDIA A100 (80GB)") is None  # the name stops before '('
    assert parse_gpu_item("GPU 0:") is None and parse_gpu_item("GPUs: 2") is None


def test_a_gpu_list_line_with_a_long_run_of_spaces_is_read_in_linear_time():
    # the old pattern (name, spaces, optional UUID, spaces) took cubic time: 1.6 s at 1,000 spaces, hours at 16,000
    start = time.perf_counter()
    env = parse_collect_env(["GPU models and configuration:", "GPU 0: x" + " " * 16000 + "y"])
    assert time.perf_counter() - start < 2
    assert env.gpus == [(0, "x" + " " * 16000 + "y")]


def test_a_gpu_index_too_long_for_int_is_no_gpu():
    # int() refuses more than 4300 digits: this used to raise ValueError out of analyze
    assert parse_collect_env(["GPU models and configuration:", "GPU " + "1" * 5000 + ": NVIDIA A100"]).gpus == []


def test_a_package_line_with_a_long_run_of_spaces_is_read_in_linear_time():
    # '[pip3] name<spaces>' was matched with a lazy name before optional spaces: quadratic, 1.5 s per 16 KB line
    start = time.perf_counter()
    assert parse_collect_env(["[pip3] a" + " " * 16000 + "b"] * 20) is None
    assert time.perf_counter() - start < 2
