"""Too little memory left for the KV cache (category kv_cache_insufficient)."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.knowledge import kv_cache_dtype_advice
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.memory import utilization_text
from vllm_bug.analyzer.rules.helpers import (
    grep,
    has,
    HINT,
    engine_arg,
    engine_arg_number,
    evidence,
    level,
    memory_fixes,
    memory_report,
    min_cc,
)

NO_BLOCKS = r"No available memory for the cache blocks"
MAX_LEN_V1 = r"To serve at least one request with the models?'?s?'? max seq len|estimated maximum model length is"
MAX_LEN_V0 = r"max seq len \(\d+\) is larger than the maximum number of tokens that can be stored in KV cache"
MAX_LEN_ANY = f"{MAX_LEN_V1}|{MAX_LEN_V0}|KV cache is needed, which is larger than the available KV cache memory"


def _kv_dtype_fix(facts: Facts) -> list[str]:
    gpu = min_cc(facts)
    advice = kv_cache_dtype_advice(gpu[1] if gpu else None)
    return [advice] if advice and str(engine_arg(facts, "kv_cache_dtype") or "auto").startswith("auto") else []


@rule("KV_CACHE_NO_BLOCKS", category="kv_cache_insufficient")
def kv_cache_no_blocks(facts: Facts) -> Finding | None:
    lines = evidence(facts, NO_BLOCKS, limit=2)
    if not lines:
        return None
    util = engine_arg_number(facts, "gpu_memory_utilization")
    fixes = []
    if util is not None and util < 0.8:
        fixes.append(f"raise --gpu-memory-utilization (now {util:g}): it is the share of the whole GPU this instance "
                     "may use for weights, activations AND the KV cache, not what it leaves to others; lowering it "
                     "makes this error worse")
    else:
        fixes.append(f"raise {utilization_text(facts)} if the GPU is otherwise idle: "
                     "weights and the profiling peak used up the whole budget")
    fixes += ["check nvidia-smi for other processes (or a second vLLM instance) on the same GPU: their memory "
              "comes out of this instance's budget",
              "lower --max-num-batched-tokens / --max-model-len to shrink the profiling peak",
              "use --tensor-parallel-size > 1 or a quantized checkpoint so the weights take less of each GPU"]
    report = memory_report(facts)
    return Finding("KV_CACHE_NO_BLOCKS", "kv_cache_insufficient", level(facts, NO_BLOCKS),
                   "No memory was left for the KV cache after the weights and the profiling run.",
                   evidence=lines, fixes=memory_fixes(report) + fixes + _kv_dtype_fix(facts),
                   details={"memory": report} if report else {})


def _numbers(facts: Facts) -> dict:
    text = " ".join(grep(facts, MAX_LEN_ANY, limit=3))
    out: dict = {}
    m = re.search(r"max seq len \((\d{1,18})\)", text)
    if m:
        out["max_model_len"] = int(m.group(1))
    m = re.search(r"estimated maximum model length is (\d{1,18})\b", text)
    if m:
        out["estimated_max_model_len"] = int(m.group(1))
    m = re.search(r"stored in KV cache \((\d{1,18})\)", text)
    if m:
        out["kv_cache_tokens"] = int(m.group(1))
    m = re.search(r"\((\d{1,12}(?:\.\d+)?) GiB KV cache is needed.*available KV cache memory \((\d{1,12}(?:\.\d+)?) GiB\)", text)
    if m:
        out["needed_gib"], out["available_gib"] = float(m.group(1)), float(m.group(2))
    for name in ("estimated_max_model_len", "kv_cache_tokens"):
        value = getattr(facts, name, None)
        if value and name not in out:
            out[name] = value
    return out


def _round_down(tokens: int) -> int:
    step = 1024 if tokens >= 4096 else 256
    return max(step, tokens // step * step) if tokens >= step else tokens


@rule("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", category="kv_cache_insufficient")
def kv_cache_too_small_for_max_len(facts: Facts) -> Finding | None:
    lines = evidence(facts, MAX_LEN_ANY, limit=2)
    if not lines:
        return None
    nums = _numbers(facts)
    fits = nums.get("estimated_max_model_len") or nums.get("kv_cache_tokens")
    want = nums.get("max_model_len")
    title = "The KV cache cannot hold even one sequence of the configured max_model_len"
    title += f" ({want} tokens; about {fits} fit)." if want and fits else "."
    fixes = []
    if fits:
        fixes.append(f"--max-model-len {_round_down(int(fits))} (the engine's own estimate of what fits is {fits})")
    else:
        fixes.append("lower --max-model-len to the length you actually need")
    fixes.append(f"or raise {utilization_text(facts)} if nothing else uses the GPU")
    fixes += _kv_dtype_fix(facts)
    fixes.append("or spread the model over more GPUs with --tensor-parallel-size, which frees memory for the cache")
    report = memory_report(facts)
    details = dict(nums)
    if report:
        details["memory"] = report
    return Finding("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", "kv_cache_insufficient", level(facts, MAX_LEN_ANY), title,
                   evidence=lines, fixes=memory_fixes(report) + fixes, details=details)


@rule("KV_CACHE_CONCURRENCY_BELOW_ONE", category="kv_cache_insufficient")
def kv_cache_concurrency_below_one(facts: Facts) -> Finding | None:
    """The engine logged that not even one full-length request fits (V0 only warned about it)."""
    lines = grep(facts, r"Maximum concurrency for \d[\d,]{0,24} tokens per request: 0\.\d+x", limit=1)
    if not lines or has(facts, MAX_LEN_ANY):
        return None
    m = re.search(r"for (\d[\d,]{0,24}) tokens per request: (0\.\d+)x", lines[0], re.IGNORECASE)  # as grep matched it
    length, ratio = int(m.group(1).replace(",", "")), float(m.group(2))
    fits = _round_down(int(length * ratio))
    return Finding("KV_CACHE_CONCURRENCY_BELOW_ONE", "kv_cache_insufficient", HINT + 0.15,
                   f"The KV cache holds only {ratio:g} of one {length}-token request.",
                   evidence=lines,
                   fixes=[f"--max-model-len {fits} (about what the cache holds)",
                          f"or raise {utilization_text(facts)}"] + _kv_dtype_fix(facts))


@rule("KV_CACHE_SHORT_BY_ARITHMETIC", category="kv_cache_insufficient")
def kv_cache_short_by_arithmetic(facts: Facts) -> Finding | None:
    """The memory arithmetic (model shape x GPUs x engine args) says the configured length cannot fit."""
    report = memory_report(facts)
    if not report:
        return None
    tokens = report.get("kv_tokens_fit") or report.get("tokens_fit")
    need = report.get("max_model_len") or engine_arg_number(facts, "max_model_len")
    if not tokens or not need or tokens >= need:
        return None
    return Finding("KV_CACHE_SHORT_BY_ARITHMETIC", "kv_cache_insufficient", HINT,
                   f"By the memory arithmetic about {int(tokens)} tokens of KV cache fit, fewer than max_model_len "
                   f"({int(need)}).",
                   evidence=[], fixes=memory_fixes(report) or [f"--max-model-len {_round_down(int(tokens))}"],
                   details={"memory": report})


@rule("MAX_MODEL_LEN_ABOVE_DERIVED", category="other")
def max_model_len_above_derived(facts: Facts) -> Finding | None:
    rx = r"User-specified max_model_len \(\d+\) is greater than (?:the )?derived max_model_len"
    lines = evidence(facts, rx, limit=1)
    if not lines:
        return None
    m = re.search(r"derived max_model_len \((?:max_position_embeddings=)?(\d+)", lines[0])
    fixes = [f"set --max-model-len at most {m.group(1)}" if m else "set --max-model-len no higher than the model's "
             "max_position_embeddings",
             "only if you know the model handles longer inputs (RoPE scaling configured): VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, "
             "accepting wrong outputs or crashes beyond the trained length"]
    return Finding("MAX_MODEL_LEN_ABOVE_DERIVED", "other", level(facts, rx),
                   "--max-model-len is longer than the model's configuration allows.", evidence=lines, fixes=fixes)
