"""Environment variable settings in pasted shell text: `export VLLM_USE_V1=0`, `docker run -e HF_TOKEN=...`,
`VLLM_ATTENTION_BACKEND=XFORMERS vllm serve ...`, an `env` listing.

Only the families vLLM, CUDA, NCCL, torch, Hugging Face and their neighbours use are read, and only
where a line sets them: 'For debugging consider passing CUDA_LAUNCH_BLOCKING=1' is advice, not a setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from vllm_bug.formats.lazyre import lazy_compile

_NAMES = (
    r"(?:VLLM|CUDA|NCCL|TORCH|PYTORCH|NVIDIA|HF|HUGGING_FACE|TRANSFORMERS|TRITON|OMP|LD|RAY|GLOO|UCX|TOKENIZERS"
    r"|FLASHINFER|MAX_JOBS|CC|CXX|NVCC)"
)
_ASSIGN = lazy_compile(
    r"(?<![\w-])(" + _NAMES + r"(?:_[A-Z0-9]+)*)=(\"[^\"\n]{0,1000}\"|'[^'\n]{0,1000}'|[^\s\"'`]{0,1000})"
)
# what may stand before NAME=value on its line when it is a setting: a prompt, export/set/ENV/-e/sudo,
# other assignments, an opening quote
_SETTING_LEAD = lazy_compile(
    r"^[\s>$#!:*`-]*(?:[\w@~:/.-]{1,80}[$#][ \t]*)?"
    r"(?:(?:export|set|ENV|env|-e|--env|sudo|RUN)[ \t]+|[A-Z_][A-Z0-9_]*=\S*[ \t]+)*[\"']?$"
)
_DOCKER_ENV_LEAD = lazy_compile(r"(?:\s-e|--env)[ \t=]+[\"']?$")
MAX_LEAD_CHARS = 300


@dataclass
class EnvSetting:
    name: str
    value: str  # quotes and a trailing backslash, comma or semicolon removed


def find_env_settings(text: str) -> list[EnvSetting]:
    """Every NAME=value that TEXT sets, in order (a name may come more than once)."""
    if "=" not in text:
        return []
    settings = []
    for m in _ASSIGN.finditer(text):
        if not _is_setting(text, m.start()):
            continue
        value = m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        settings.append(EnvSetting(m.group(1), value.rstrip("\\,;")))
    return settings


def _is_setting(text: str, start: int) -> bool:
    """Whether NAME=value at start is a setting (shell, docker -e, env listing), not advice in a message."""
    window = max(0, start - MAX_LEAD_CHARS)
    lead = text[text.rfind("\n", window, start) + 1 or window : start]
    return _SETTING_LEAD.match(lead) is not None or _DOCKER_ENV_LEAD.search(lead) is not None
