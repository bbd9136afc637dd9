"""How the engine was started and what it logged about memory: engine arguments, the launch command,
the KV cache, concurrency and weight numbers."""

from __future__ import annotations

from typing import Any

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.facts_text.common import set_unknown
from vllm_bug.formats.engine_args import (
    find_launch_command,
    parse_engine_config,
    parse_llm_call,
    parse_namespace_args,
    parse_non_default_args,
)
from vllm_bug.formats.vllm_log import parse_memory_log


def engine_args_from_text(facts: Facts, lines: list[str], text: str) -> None:
    """Engine arguments, first source first: `non-default args` (else `Namespace(...)`), the launch
    command, an `LLM(...)` call, the engine's config line. A later source adds only arguments not yet set."""
    explicit: dict[str, Any] = {}
    logged = parse_non_default_args(text)
    if logged is not None:
        explicit.update(logged.args)
    if not explicit and (namespace := parse_namespace_args(text)) is not None:
        explicit.update(namespace.args)
    launch = find_launch_command(lines)
    if launch is not None:
        set_unknown(facts, "launch_command", launch.text)
        for key, value in launch.args.items():
            explicit.setdefault(key, value)
    call = parse_llm_call(text)
    if call is not None:
        for key, value in call.args.items():
            explicit.setdefault(key, value)
        if facts.launch_command is None:
            facts.launch_command = call.text
    config = parse_engine_config(text)
    if config is not None:
        for key, value in config.args.items():
            explicit.setdefault(key, value)
    for key, value in explicit.items():
        facts.engine_args.setdefault(key, value)


def memory_numbers(facts: Facts, text: str) -> None:
    """The KV cache, concurrency and weights numbers the engine logged (the max_model_len they imply too)."""
    log = parse_memory_log(text)
    if log is None:
        return
    if facts.kv_cache_tokens is None:
        facts.kv_cache_tokens = log.kv_cache_tokens
    if log.max_concurrency is not None and facts.max_concurrency is None:
        facts.max_concurrency = log.max_concurrency
        _default_max_model_len(facts, log.concurrency_request_tokens)
    if facts.estimated_max_model_len is None:
        facts.estimated_max_model_len = log.estimated_max_model_len
    _default_max_model_len(facts, log.too_small_max_seq_len)
    if facts.kv_cache_tokens is None:
        facts.kv_cache_tokens = log.too_small_kv_tokens
    _default_max_model_len(facts, log.needed_max_seq_len)
    if facts.kv_cache_memory_bytes is None:
        facts.kv_cache_memory_bytes = log.needed_available_bytes
    if facts.kv_cache_memory_bytes is None:
        facts.kv_cache_memory_bytes = log.available_kv_cache_bytes
    if facts.gpu_blocks is None:
        facts.gpu_blocks = log.gpu_blocks
    if facts.model_weights_bytes is None:
        facts.model_weights_bytes = log.model_weights_bytes


def _default_max_model_len(facts: Facts, value: int | None) -> None:
    if value is not None:
        facts.engine_args.setdefault("max_model_len", value)
