"""Too little memory left for the KV cache (category kv_cache_insufficient)."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.knowledge import kv_cache_dtype_advice
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    HINT,
    engine_arg,
    engine_arg_number,
    evidence,
    has,
    level,
    memory_fixes,
    memory_report,
    min_cc,
)
from vllm_bug.analyzer.rules.memory import utilization_text
from vllm_bug.formats.units import parse_count

MESSAGE_LINES_READ = 3  # lines of the too-small message whose numbers are read (it may be wrapped or repeated)


def _kv_dtype_fix(facts: Facts) -> list[str]:
    gpu = min_cc(facts)
    advice = kv_cache_dtype_advice(gpu[1] if gpu else None)
    return [advice] if advice and str(engine_arg(facts, "kv_cache_dtype") or "auto").startswith("auto") else []


def kv_budget_fixes(facts: Facts, report: dict | None) -> list[str]:
    """How to leave the KV cache more of the GPU: the budget, other processes, the profiling peak, the weights."""
    util = engine_arg_number(facts, "gpu_memory_utilization")
    fixes = []
    if util is not None and util < 0.8:
        fixes.append(
            f"raise --gpu-memory-utilization (now {util:g}): it is the share of the whole GPU this instance "
            "may use for weights, activations AND the KV cache, not what it leaves to others; lowering it "
            "makes this error worse"
        )
    else:
        fixes.append(
            f"raise {utilization_text(facts)} if the GPU is otherwise idle: "
            "weights and the profiling peak used up the whole budget"
        )
    fixes += [
        "check nvidia-smi for other processes (or a second vLLM instance) on the same GPU: their memory "
        "comes out of this instance's budget",
        "lower --max-num-batched-tokens / --max-model-len to shrink the profiling peak",
        "use --tensor-parallel-size > 1 or a quantized checkpoint so the weights take less of each GPU",
    ]
    return memory_fixes(report) + fixes + _kv_dtype_fix(facts)


@rule("KV_CACHE_NO_BLOCKS", category="kv_cache_insufficient", signals=("KV_CACHE_NO_BLOCKS",))
def kv_cache_no_blocks(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "KV_CACHE_NO_BLOCKS", limit=2)
    if not lines:
        return None
    report = memory_report(facts)
    return Diagnosis(
        level(facts, "KV_CACHE_NO_BLOCKS"),
        "No memory was left for the KV cache after the weights and the profiling run.",
        evidence=lines,
        fixes=kv_budget_fixes(facts, report),
        details={"memory": report} if report else {},
    )


def _numbers(facts: Facts) -> dict:
    """The configured length the message names, what the engine estimates fits, and the memory it needed."""
    assert facts.signals is not None
    hits = facts.signals.all("KV_CACHE_BELOW_MAX_MODEL_LEN")[:MESSAGE_LINES_READ]
    out: dict = {}
    max_seq_len = next((parse_count(hit.groups["max_seq_len"]) for hit in hits if "max_seq_len" in hit.groups), None)
    if max_seq_len is not None:
        out["max_model_len"] = max_seq_len
    if facts.estimated_max_model_len is not None:
        out["estimated_max_model_len"] = facts.estimated_max_model_len
    if facts.kv_cache_tokens is not None:
        out["kv_cache_tokens"] = facts.kv_cache_tokens
    needed = next((hit.groups for hit in hits if "needed_gib" in hit.groups), None)
    if needed:
        out["needed_gib"], out["available_gib"] = float(needed["needed_gib"]), float(needed["available_gib"])
    return out


def _round_down(tokens: int) -> int:
    step = 1024 if tokens >= 4096 else 256
    return max(step, tokens // step * step) if tokens >= step else tokens


@rule("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", category="kv_cache_insufficient", signals=("KV_CACHE_BELOW_MAX_MODEL_LEN",))
def kv_cache_too_small_for_max_len(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "KV_CACHE_BELOW_MAX_MODEL_LEN", limit=2)
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
    return Diagnosis(
        level(facts, "KV_CACHE_BELOW_MAX_MODEL_LEN"),
        title,
        evidence=lines,
        fixes=memory_fixes(report) + fixes,
        details=details,
    )


@rule("KV_CACHE_CONCURRENCY_BELOW_ONE", category="kv_cache_insufficient", signals=("KV_CACHE_CONCURRENCY_BELOW_ONE",))
def kv_cache_concurrency_below_one(facts: Facts) -> Diagnosis | None:
    """The engine logged that not even one full-length request fits (V0 only warned about it)."""
    assert facts.signals is not None
    hit = facts.signals.first("KV_CACHE_CONCURRENCY_BELOW_ONE")
    if hit is None or has(facts, "KV_CACHE_BELOW_MAX_MODEL_LEN"):
        return None
    length, ratio = parse_count(hit.groups["tokens"]), float(hit.groups["ratio"])
    if length is None:
        return None
    fits = _round_down(int(length * ratio))
    return Diagnosis(
        HINT + 0.15,
        f"The KV cache holds only {ratio:g} of one {length}-token request.",
        evidence=[hit.line],
        fixes=[f"--max-model-len {fits} (about what the cache holds)", f"or raise {utilization_text(facts)}"]
        + _kv_dtype_fix(facts),
    )


@rule("KV_CACHE_SHORT_BY_ARITHMETIC", category="kv_cache_insufficient")
def kv_cache_short_by_arithmetic(facts: Facts) -> Diagnosis | None:
    """The memory arithmetic (model shape x GPUs x engine args) says the configured length cannot fit."""
    report = memory_report(facts)
    if not report:
        return None
    tokens = report.get("kv_tokens_fit") or report.get("tokens_fit")
    need = report.get("max_model_len") or engine_arg_number(facts, "max_model_len")
    if not tokens or not need or tokens >= need:
        return None
    return Diagnosis(
        HINT,
        f"By the memory arithmetic about {int(tokens)} tokens of KV cache fit, fewer than max_model_len ({int(need)}).",
        evidence=[],
        fixes=memory_fixes(report) or [f"--max-model-len {_round_down(int(tokens))}"],
        details={"memory": report},
    )
