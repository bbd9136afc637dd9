"""Environment collection: an allow-list first, then redaction of what it keeps."""

from __future__ import annotations

import json

import pytest

from vllm_bug.bundler.envvars import (
    DEBUG_VARIABLES,
    MAX_VALUE_CHARS,
    PRESENT,
    RELEVANT_PREFIXES,
    cap,
    collect_env,
    is_relevant,
)
from vllm_bug.schema.redact import Redactor

HOME = "/home/alice"
HF = "hf_" + "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUi"  # a fake token of the real shape
AWS_SECRET = "wJalrXUtnFEMIxK7MDENGxbPxRfiCYzz9EXAMPLE"


def realistic_environ() -> dict[str, str]:
    """What `env` prints in a vLLM container on a shared cluster node, plus a few stale settings."""
    return {
        # debugging-relevant
        "CUDA_VISIBLE_DEVICES": "0,1",
        "CUDA_HOME": "/usr/local/cuda",
        "CUDA_VERSION": "12.8.1",
        "CUDA_LAUNCH_BLOCKING": "1",
        "NCCL_DEBUG": "INFO",
        "NCCL_SOCKET_IFNAME": "eth0",
        "NCCL_IB_PKEY": "0",
        "TORCH_CUDA_ARCH_LIST": "8.0 9.0",
        "TORCHINDUCTOR_CACHE_DIR": f"{HOME}/.cache/inductor",
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
        "TRITON_CACHE_DIR": "/tmp/triton",
        "NVIDIA_VISIBLE_DEVICES": "all",
        "NVIDIA_REQUIRE_CUDA": "cuda>=12.8 brand=tesla,driver>=535,driver<536",
        "NV_LIBNCCL_PACKAGE_VERSION": "2.25.1-1",
        "HF_HOME": f"{HOME}/.cache/huggingface",
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
        "TRANSFORMERS_OFFLINE": "0",
        "OMP_NUM_THREADS": "8",
        "RAY_ADDRESS": "10.0.0.4:6379",
        "RAY_AUTH_MODE": "token",
        "GLOO_SOCKET_IFNAME": "eth0",
        "LD_LIBRARY_PATH": f"/usr/local/cuda/lib64:{HOME}/miniconda3/lib",
        "PATH": f"{HOME}/.local/bin:/usr/local/cuda/bin:/usr/bin",
        "CC": "gcc-12",
        "CONDA_PREFIX": f"{HOME}/miniconda3/envs/vllm",
        "VIRTUAL_ENV": f"{HOME}/venvs/vllm",
        "MASTER_ADDR": "10.0.0.4",
        "MASTER_PORT": "29500",
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "https_proxy": "http://bob:hunter2@proxy.corp:3128",
        "NO_PROXY": "localhost,127.0.0.1",
        # vLLM, including stale and invented names a maintainer wants to see
        "VLLM_USE_V1": "1",
        "VLLM_ATTENTION_BACKEND": "FLASHINFER",
        "VLLM_INSTALL_PUNICA_KERNELS": "1",
        "VLLM_DISABLE_CUDA_GRAPH": "1",
        "VLLM_HOST_IP": "10.0.0.5",
        "VLLM_PORT": "tcp://10.96.12.7:8000",
        "VLLM_LOGGING_LEVEL": "DEBUG",
        # secrets inside the allow-list: kept, value hidden
        "HF_TOKEN": HF,
        "HUGGING_FACE_HUB_TOKEN": "hf_placeholder",
        "VLLM_API_KEY": "team-shared-key-123",
        "RAY_AUTH_TOKEN": "ray-3f9a7c",
        "S3_SECRET_ACCESS_KEY": AWS_SECRET,
        "S3_ENDPOINT_URL": "https://minio:minio-pass-77@minio.internal:9000",
        # everything else: dropped
        "AWS_ACCESS_KEY_ID": "AKIAZZZZZZZZZZZZZZZZ",
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "OPENAI_API_KEY": "sk-proj-abc123abc123abc123abc123",
        "WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_TOKEN": "ghp_" + "A1" * 18,
        "HOME": HOME,
        "USER": "alice",
        "LOGNAME": "alice",
        "SSH_AUTH_SOCK": "/tmp/ssh-XXXX/agent.123",
        "SSH_CONNECTION": "192.168.1.20 53211 10.0.0.5 22",
        "PWD": f"{HOME}/work",
        "OLDPWD": HOME,
        "HISTFILE": f"{HOME}/.bash_history",
        "DATABASE_URL": "postgres://app:db-pass-9@db:5432/prod",
        "PS1": r"\u@\h:\w\$ ",
    }


@pytest.fixture
def collected():
    redactor = Redactor(home=HOME)
    return collect_env(realistic_environ(), redactor), redactor


def test_only_allow_listed_names_are_kept(collected):
    env, _ = collected
    dropped = {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "OPENAI_API_KEY",
        "WANDB_API_KEY",
        "GITHUB_TOKEN",
        "HOME",
        "USER",
        "LOGNAME",
        "SSH_AUTH_SOCK",
        "SSH_CONNECTION",
        "PWD",
        "OLDPWD",
        "HISTFILE",
        "DATABASE_URL",
        "PS1",
        "NV_LIBNCCL_PACKAGE_VERSION",
    }
    assert set(env) == set(realistic_environ()) - dropped
    assert list(env) == sorted(env)


def test_stale_and_unknown_vllm_names_are_kept_verbatim(collected):
    env, _ = collected
    for name, value in [
        ("VLLM_USE_V1", "1"),
        ("VLLM_ATTENTION_BACKEND", "FLASHINFER"),
        ("VLLM_INSTALL_PUNICA_KERNELS", "1"),
        ("VLLM_DISABLE_CUDA_GRAPH", "1"),
        ("VLLM_PORT", "tcp://10.96.12.7:8000"),
        ("VLLM_HOST_IP", "10.0.0.5"),
        ("MASTER_ADDR", "10.0.0.4"),
    ]:
        assert env[name] == value


def test_secret_names_in_the_allow_list_show_that_they_are_set(collected):
    env, redactor = collected
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY", "RAY_AUTH_TOKEN", "S3_SECRET_ACCESS_KEY"):
        assert env[name] == "<redacted:secret_env>"
    assert env["S3_ENDPOINT_URL"] == "https://minio:<redacted:url_password>@minio.internal:9000"
    assert env["https_proxy"] == "http://bob:<redacted:url_password>@proxy.corp:3128"
    counts = {item["kind"]: item["count"] for item in redactor.summary()}
    assert counts["secret_env"] == 5 and counts["url_password"] == 2


def test_settings_that_only_sound_secret_are_shown(collected):
    env, _ = collected
    assert env["HF_HUB_DISABLE_IMPLICIT_TOKEN"] == "1"
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["NCCL_IB_PKEY"] == "0"
    assert env["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    assert env["NVIDIA_REQUIRE_CUDA"] == "cuda>=12.8 brand=tesla,driver>=535,driver<536"


def test_paths_keep_their_shape_without_the_home_directory(collected):
    env, _ = collected
    assert env["PATH"] == "~/.local/bin:/usr/local/cuda/bin:/usr/bin"
    assert env["LD_LIBRARY_PATH"] == "/usr/local/cuda/lib64:~/miniconda3/lib"
    assert env["HF_HOME"] == "~/.cache/huggingface"
    assert env["CUDA_HOME"] == "/usr/local/cuda"


def test_kubernetes_host_is_recorded_as_present_only(collected):
    env, _ = collected
    assert env["KUBERNETES_SERVICE_HOST"] == PRESENT


def test_no_secret_value_survives_anywhere(collected):
    env, redactor = collected
    dumped = json.dumps({"env": env, "redactions": redactor.summary()})
    for secret in (
        HF,
        AWS_SECRET,
        "team-shared-key-123",
        "ray-3f9a7c",
        "hunter2",
        "minio-pass-77",
        "hf_placeholder",
        "sk-proj-abc123",
        "AKIAZZZZ",
        "0123456789abcdef0123",
        "db-pass-9",
        "alice",
    ):
        assert secret not in dumped


def test_proxy_names_in_any_case():
    assert all(is_relevant(n) for n in ("HTTP_PROXY", "http_proxy", "Https_Proxy", "NO_PROXY", "all_proxy"))
    assert not is_relevant("PROXY_PASSWORD")


@pytest.mark.parametrize("name", DEBUG_VARIABLES)
def test_every_debug_variable_is_collected(name):
    assert is_relevant(name)
    assert collect_env({name: "1"}, Redactor(home=None)) == {name: "1"}


def test_cuda_image_package_pins_are_dropped_but_its_cuda_facts_kept():
    environ = {
        "NV_LIBNPP_VERSION": "13.0.1.2-1",
        "NV_CUDNN_PACKAGE": "libcudnn9-cuda-13=9.14.0.64-1",
        "NV_LIBNCCL_PACKAGE_VERSION": "2.28.3-1",
        "NV_CUDA_COMPAT_PACKAGE": "cuda-compat-12-4",
        "CUDA_VERSION": "13.0.2",
        "NVIDIA_REQUIRE_CUDA": "cuda>=13.0 brand=tesla,driver>=535,driver<536",
        "NVIDIA_VISIBLE_DEVICES": "0",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }
    env = collect_env(environ, Redactor(home=None))
    assert sorted(env) == [
        "CUDA_VERSION",
        "NVIDIA_DRIVER_CAPABILITIES",
        "NVIDIA_REQUIRE_CUDA",
        "NVIDIA_VISIBLE_DEVICES",
        "NV_CUDA_COMPAT_PACKAGE",
    ]


def test_prefixes_cover_the_families_maintainers_ask_for():
    for name in (
        "VLLM_X",
        "CUDA_X",
        "NCCL_X",
        "TORCH_X",
        "TORCHINDUCTOR_X",
        "TORCHDYNAMO_X",
        "PYTORCH_X",
        "TRITON_X",
        "CUBLAS_WORKSPACE_CONFIG",
        "CUDNN_X",
        "NVIDIA_X",
        "HF_X",
        "HUGGING_FACE_X",
        "TRANSFORMERS_X",
        "OMP_X",
        "MKL_X",
        "RAY_X",
        "GLOO_X",
        "UCX_X",
        "NVTE_X",
    ):
        assert name.startswith(RELEVANT_PREFIXES), name
    for name in (
        "AWS_REGION",
        "OPENAI_BASE_URL",
        "SSH_TTY",
        "EDITOR",
        "LANG",
        "XDG_SESSION_ID",
        "VLLMX",
        "NV_LIBCUBLAS_VERSION",
    ):
        assert not is_relevant(name), name


def test_long_values_are_capped_after_redaction_and_never_cut_a_marker():
    long_path = ":".join(f"/opt/lib{i}" for i in range(2000))
    env = collect_env({"LD_LIBRARY_PATH": long_path}, Redactor(home=None))
    assert len(env["LD_LIBRARY_PATH"]) <= MAX_VALUE_CHARS
    assert env["LD_LIBRARY_PATH"].endswith("...<truncated>")

    value = "x" * (MAX_VALUE_CHARS - 20) + "<redacted:url_password>" + "y" * 50
    capped = cap(value)
    assert len(capped) <= MAX_VALUE_CHARS
    assert capped == "x" * (MAX_VALUE_CHARS - 20) + "...<truncated>"


def test_a_secret_at_the_end_of_a_long_value_is_hidden_not_cut_in_half():
    token = "ghp_" + "Z9" * 18
    value = "a" * (MAX_VALUE_CHARS - 10) + ":" + token
    env = collect_env({"VLLM_PLUGINS": value}, Redactor(home=None))
    assert token[:8] not in env["VLLM_PLUGINS"]


def test_empty_environment():
    assert collect_env({}, Redactor(home=None)) == {}


def test_gpu_uuids_in_device_lists_are_hashed_and_indices_kept():
    uuid = "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6"
    env = collect_env(
        {
            "CUDA_VISIBLE_DEVICES": f"1,{uuid}",
            "NVIDIA_VISIBLE_DEVICES": f"MIG-{uuid}/1/0",
            "CUDA_HOME": "/usr/local/cuda",
        },
        Redactor(),
    )
    assert "8932f937" not in json.dumps(env)
    assert env["CUDA_VISIBLE_DEVICES"].startswith("1,<hashed:") and env["NVIDIA_VISIBLE_DEVICES"].startswith("<hashed:")
    assert env["CUDA_HOME"] == "/usr/local/cuda"
