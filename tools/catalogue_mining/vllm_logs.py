"""vLLM's own log lines, release by release: the warnings (and the few INFO lines) that say a feature is
unsupported, disabled or falling back, or that a setting was overridden. Each kept message gets the category
of failure it bears on, a topic, and a role: "explains" when the line, logged before a failure of that
category, is a likely cause of it; "context" when it only supports a finding made from the error itself.
Messages no topic claims are left out, so the analyzer's table stays small.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .messages import PyMessage, log_calls
from .sources import Source

METHODS = ("warning", "warning_once", "warn", "info", "info_once")


@dataclass(frozen=True)
class Topic:
    id: str
    category: str
    role: str  # "explains" or "context"
    pattern: re.Pattern[str]  # searched in the message's text (placeholders shown as {})
    info_too: bool = False  # INFO lines count as well as warnings
    info_explains: bool = False  # vLLM logs it at INFO only when something is wrong, so an INFO line explains too
    unless: re.Pattern[str] | None = None  # a message this also matches is not of the topic

    def role_of(self, level: str, text: str) -> str:
        """The role of one of the topic's messages: a topic's INFO lines only support a finding (vLLM prints them on
        runs that work) unless the topic says otherwise, and so does a message saying vLLM worked around the
        problem (it fell back to, or used, something else)."""
        if level != "warning" and not self.info_explains:
            return "context"
        return "context" if HANDLED.search(text) else self.role


def _rx(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


FALL_BACK = r"fall(?:s|ing)? ?back"
HANDLED = re.compile(FALL_BACK + r"|\binstead\b|\bwill be used\b|\busing (?:the )?\S+ (?:backend|implementation)", re.I)
# First match wins: the more specific topics come first.
TOPICS = (
    Topic("compiled_ops_not_loaded", "cuda_version_mismatch", "explains", _rx(r"failed to import from vllm\._C\b")),
    Topic(
        "no_gpu_platform",
        "cuda_not_available",
        "explains",
        _rx(
            r"no platform detected|no cuda runtime is found|cuda is not available"
            r"|no gpus? (?:were |are )?(?:found|detected)"
        ),
        info_too=True,
        info_explains=True,
    ),
    Topic(
        "long_max_model_len_allowed",
        "device_side_assert",
        "explains",
        _rx(r"max_model_len.{0,200}(?:greater|larger) than.{0,400}(?:incorrect model outputs|cuda errors)"),
    ),
    Topic(
        "memory_headroom",
        "cuda_oom",
        "explains",
        _rx(
            r"(?:lower(?:ing)?|decreas\w*|reduc\w*) (?:the )?[`'-]*gpu[-_]memory[-_]utilization"
            r"|gpu[-_]memory[-_]utilization.{0,200}(?:too (?:high|large)|exceed|out of memory|\boom\b)"
            r"|(?:not accounted|out of memory|\boom\b).{0,200}gpu[-_]memory[-_]utilization"
        ),
    ),
    Topic(
        "oom_risk",
        "cuda_oom",
        "explains",
        _rx(r"\b(?:may|might|can|could|will) (?:\w+ ){0,4}(?:cause ?)?(?:oom|out[- ]of[- ]memory)\b"),
        unless=_rx(r"\bram\b|(?:system|host|cpu) memory"),  # the host's memory, not the GPU's
    ),
    Topic(
        "gpu_capability",
        "no_kernel_image",
        "explains",
        _rx(
            r"(?:compute capability|\bsm ?\d{2,3}\b|\bsm_\d{2,3}\b|your gpu|this gpu|gpus? before|volta|turing"
            r"|pascal)[^.]{0,120}(?:not supported|unsupported|does not (?:have|support)|doesn't support|not in\b"
            r"|only supported)"
            r"|(?:not supported|unsupported|cannot use|only supported)[^.]{0,120}(?:compute capability|volta|turing"
            r"|pascal|\bsm ?\d{2,3}\b|your gpu|this gpu)"
            r"|does not have native support for fp\d"
        ),
        info_too=True,
    ),
    Topic(
        "cuda_graphs_off",
        "cuda_graph",
        "context",
        _rx(
            r"disabl\w* (?:the )?(?:cuda ?graphs?|cudagraphs?)"
            r"|(?:cuda ?graphs?|cudagraphs?|cudagraphmode\.\S*) (?:is|are) (?:not supported|disabled)"
            r"|skipping (?:\w+ )*cuda graph capture|overriding cudagraph_mode"
            r"|setting cudagraph_mode ?= ?|forcing enforce[_ -]eager|enforce[_ -]eager set"
            rf"|{FALL_BACK} to (?:the )?eager|does not support full cuda ?graphs"
        ),
        info_too=True,
    ),
    Topic(
        "custom_all_reduce_off",
        "nccl",
        "context",
        _rx(r"custom (?:all ?reduce|allreduce) is disabled|p2p (?:access|capability|test)"),
    ),
    Topic(
        "compilation_off",
        "triton_compile",
        "context",
        _rx(
            r"disabling [`']?(?:torch\.compile|triton)\b|triton is (?:not installed|installed, but)"
            r"|inductor compilation was disabled|requires triton"
        ),
    ),
    Topic(
        "attention_backend_for_gpu",
        "no_kernel_image",
        "context",
        _rx(r"cannot use (?:flashattention\S*|fa version \d)[^.]{0,60}(?:gpus|platform)"),
        info_too=True,
    ),
    Topic(
        "attention_package_missing",
        "cuda_version_mismatch",
        "context",
        _rx(r"(?:flash_attn\w*|flash-attn\w*|xformers)[^.]{0,40}(?:package )?is not (?:found|available|installed)"),
        info_too=True,
    ),
    Topic(
        "quantization_kernel_unsupported",
        "no_kernel_image",
        "context",
        _rx(
            r"(?:fp8|fp4|nvfp4|mxfp4|int8|int4|w8a8|marlin|cutlass\w*|deepgemm|quantiz\w*)[^.]{0,120}"
            r"not supported on (?:the current|this) (?:platform|gpu)|current platform does not support"
        ),
    ),
    Topic(
        "chunked_prefill_or_prefix_caching_off",
        "engine_config",
        "context",
        _rx(
            r"(?:chunked prefill|prefix caching)[^.]{0,120}(?:disabl|not supported|turn\w* off)"
            r"|disabl\w*[^.]{0,60}(?:chunked prefill|prefix caching)"
        ),
        info_too=True,
    ),
    Topic(
        "kv_cache_pressure",
        "kv_cache_insufficient",
        "context",
        _rx(r"not enough (?:kv cache|kv ?cache blocks|kv cache space)"),
    ),
    Topic(
        "limits_lowered",
        "kv_cache_insufficient",
        "context",
        _rx(
            r"(?:max_model_len|max-model-len|max_num_seqs|max_num_batched_tokens)\b[^=]{0,120}"
            r"(?:reduc|lower|too large|exceeds|clamp|truncat)"
            r"|(?:reduc|lower|clamp|truncat)\w* (?:the )?(?:max_model_len|max_num_seqs|max_num_batched_tokens)"
        ),
        info_too=True,
    ),
)
# Other platforms warn about their own limits; a failure on an NVIDIA GPU is not explained by them.
OTHER_PLATFORMS = _rx(r"\b(?:rocm|xpu|tpu|hpu|cpus?|openvino|neuron|navi|gaudi|amd|aiter|arm|risc-v|s390x)\b")


@dataclass
class LogMessage:
    path: str
    level: str  # "warning" or "info" (a *_once call prints the same)
    message: PyMessage
    topic: Topic


def topic_of(level: str, text: str) -> Topic | None:
    if OTHER_PLATFORMS.search(text):
        return None
    for topic in TOPICS:
        if (level == "warning" or topic.info_too) and topic.pattern.search(text):
            return None if topic.unless and topic.unless.search(text) else topic
    return None


def release_log_messages(source: Source) -> Iterable[LogMessage]:
    """The release's log messages that some topic claims."""
    for path in source.files("vllm/"):
        if not path.endswith(".py") or not _on_gpu_path(path):
            continue
        text = source.read(path)
        if text is None or "logger" not in text:
            continue
        try:
            found = log_calls(text, METHODS)
        except SyntaxError:
            continue
        for method, message in found:
            level = "warning" if method.startswith("warn") else "info"
            topic = topic_of(level, message.template.text())
            if topic is not None:
                yield LogMessage(path, level, message, topic)


# Other platforms' code (CPU, ROCm, XPU, TPU, ...) warns about its own limits; a CUDA failure is not explained
# by them.
_OTHER_PLATFORMS = re.compile(
    r"(?:^|/)(?:cpu|rocm|xpu|tpu|hpu|neuron|openvino|amd|aiter|intel)[_/.]|_(?:cpu|tpu|xpu|hpu)\.py$"
)


def _on_gpu_path(path: str) -> bool:
    return not _OTHER_PLATFORMS.search(path.removeprefix("vllm/")) and "/benchmarks/" not in path


def message_key(found: LogMessage) -> tuple[str, str]:
    return found.level, found.message.template.head().text()
