"""Environment variables a pasted shell session sets, not those a message merely mentions."""

from pathlib import Path

from vllm_bug.formats.env_vars import EnvSetting, find_env_settings

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "excerpts"


def test_settings_and_advice():
    text = (
        "RuntimeError: CUDA error: an illegal memory access was encountered\n"
        "For debugging consider passing CUDA_LAUNCH_BLOCKING=1\n"
        "export VLLM_USE_V1=0\n"
        "VLLM_ATTENTION_BACKEND=XFORMERS vllm serve m\n"
        "docker run -e HF_TOKEN='hf_abc' --env=\"NCCL_DEBUG=INFO\" img\n"
    )
    assert find_env_settings(text) == [
        EnvSetting("VLLM_USE_V1", "0"),
        EnvSetting("VLLM_ATTENTION_BACKEND", "XFORMERS"),
        EnvSetting("HF_TOKEN", "hf_abc"),
        EnvSetting("NCCL_DEBUG", "INFO"),
    ]


def test_a_real_journald_launch():
    names = [s.name for s in find_env_settings((FIXTURES / "multiline_launch_journald.txt").read_text())]
    assert names == ["VLLM_ATTENTION_BACKEND", "CUDA_VISIBLE_DEVICES"]


def test_no_settings():
    assert find_env_settings("plain text without assignments") == []
    assert find_env_settings("x = 1") == []
