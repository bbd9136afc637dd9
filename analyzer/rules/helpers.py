"""Small helpers the rule modules share: evidence quoting, root-cause tests, engine args, env, GPUs."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.lazyre import lazy_compile
from vllm_bug.analyzer.prefilter import fold
from vllm_bug.analyzer.search import searchable
from vllm_bug.analyzer.signals import clip
from vllm_bug.formats.issue_text import strip_tags

if TYPE_CHECKING:
    from vllm_bug.analyzer.mentions import Mentions
    from vllm_bug.analyzer.signals import SignalSet

# Confidence levels, so that rules agree on what a number means.
ROOT = 0.95  # the root-cause exception itself says so
DIRECT = 0.88  # the input states the error, outside the root-cause traceback
STRONG_HINT = 0.7  # the facts make the failure near certain, no message seen
HINT = 0.5  # the facts point this way
SECONDARY = 0.3  # worth fixing, not why it failed


def has(facts: Facts, *signal_ids: str) -> bool:
    """Whether any of the signals was seen (in the input's lines or the root cause)."""
    return _signals(facts).seen(*signal_ids)


def evidence(facts: Facts, *signal_ids: str, limit: int = 3) -> list[str]:
    """The input lines of the signals, signal by signal, each line once."""
    return _signals(facts).lines(*signal_ids, limit=limit)


def _signals(facts: Facts) -> SignalSet:
    from vllm_bug.analyzer.complete import ensure_complete

    ensure_complete(facts)
    assert facts.signals is not None
    return facts.signals


def lines_naming(facts: Facts, value: str, limit: int = 3) -> list[str]:
    """Input lines that contain a value the facts hold (a GPU's name), ignoring case: the evidence for a fact
    that no signal can carry, because the words come from the facts rather than from a known message."""
    entry = searchable(facts)
    wanted = fold(value)
    found: list[str] = []
    if not wanted or wanted not in entry.folded:
        return found
    for line in entry.text.split("\n"):
        if wanted in fold(line) and line.strip():
            found.append(clip(line))
            if len(found) >= limit:
                break
    return found


MIN_TITLE_KEY = 12  # a shorter title ('OOM') names no particular error line
MIN_BODY_KEY = 20  # a body line this long that the title repeats makes the title redundant


def error_key(line: str) -> str:
    """A line as an error, for comparing: issue-title tags, case and runs of whitespace removed."""
    return " ".join(strip_tags(line).split()).lower().rstrip(" .:")


def dedupe_evidence(facts: Facts, lines: list[str]) -> list[str]:
    """Evidence without lines that state the same error twice; an issue title that only repeats a line
    of the body gives way to that line (the body's is the one the program printed)."""
    title = (facts.title or "").strip()
    title_keys = [key for key in _title_error_keys(title) if len(key) >= MIN_TITLE_KEY] if title else []
    out: list[str] = []
    seen: set[str] = set()
    for line in lines:
        if title_keys and line.strip() == title:
            line = next(filter(None, (_body_line_with(facts, key, lines) for key in title_keys)), line)
        key = error_key(line)
        if key in seen:
            continue
        seen.add(key)
        out.append(line)
    if title_keys and title in out:  # a title that quotes a body line with some words around it
        keys = [error_key(line) for line in out if line != title]
        if any(len(key) >= MIN_BODY_KEY and key in title_keys[0] for key in keys):
            out.remove(title)
    return out


_ERROR_IN_TITLE = lazy_compile(r"(?:[A-Za-z_][\w.]*(?:Error|Exception)\w*|CUDA error|NCCL error)\s*[:：]\s*[^`\"“”]+")
_QUOTED_IN_TITLE = lazy_compile(r"[`\"“]([^`\"“”]{12,300})[`\"”]|(?<!\w)'([^']{12,300})'(?!\w)")


def _title_error_keys(title: str) -> list[str]:
    """The whole title, then the error it quotes ('RTX 5080 got CUDA error: X' -> 'cuda error: x')."""
    keys = [error_key(title)]
    parts = [m.group(1) or m.group(2) for m in _QUOTED_IN_TITLE.finditer(title)] + [
        m.group(0) for m in _ERROR_IN_TITLE.finditer(title)
    ]
    for part in parts:
        key = error_key(part)
        if key not in keys:
            keys.append(key)
    return keys


def _body_line_with(facts: Facts, title_key: str, evidence_lines: list[str]) -> str | None:
    """An evidence line, or else an input line after the title, that states the title's error."""
    for line in evidence_lines:
        if line.strip() != (facts.title or "").strip() and title_key in error_key(line):
            return line
    entry = searchable(facts)
    text, folded = entry.text, entry.folded
    title_at = text.find((facts.title or "").strip())
    if len(text) != len(folded) or title_at < 0:
        return None
    start = text.find("\n", title_at) + 1
    while start > 0:
        pos = folded.find(title_key[:40], start)
        if pos < 0:
            return None
        begin = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        line = text[begin : end if end >= 0 else len(text)]
        if title_key in error_key(line):
            return clip(line)
        start = end + 1 if end >= 0 else 0
    return None


def root_text(facts: Facts) -> str:
    rc = facts.root_cause
    if rc is None:
        return ""
    return f"{rc.exc_type}: {rc.message}"


def root_matches(facts: Facts, signal_id: str) -> bool:
    """Whether the root-cause exception's own type and message carry the signal."""
    return _signals(facts).root(signal_id)


def root_frames_match(facts: Facts, signal_id: str) -> bool:
    """Whether a frame of the root cause (path or function) matches a frames-scope signal."""
    return _signals(facts).root(signal_id)


def root_traceback_says(facts: Facts, *signal_ids: str) -> bool:
    """Whether the root cause's whole traceback text carries one of the signals, the lines that continue its
    message included (NCCL's 'Last error:' line); `root()` and `level()` look at 'ExcType: message' only."""
    return _signals(facts).in_root_traceback(*signal_ids)


def level(facts: Facts, *signal_ids: str, root: float = ROOT, seen: float = DIRECT) -> float:
    """ROOT when the root cause carries one of the signals, else the 'seen in the input' level."""
    return root if _signals(facts).root(*signal_ids) else seen


def vllm_version(facts: Facts) -> str | None:
    return facts.vllm_version or facts.package("vllm")


def vllm_not_involved(facts: Facts) -> bool:
    """Whether the facts show that the program that failed was not vLLM: no vLLM log line or process tag, no vLLM
    command, no frame in the vllm package and no mention of vLLM by name; then either the recorded command ran
    something else and its traceback passes through no vLLM code (vLLM may be installed beside it), or no vLLM
    version is known and either no vllm package or a traceback without vllm. A folder or file that merely has
    "vllm" in its name is no sign."""
    if facts.vllm_process_tags or facts.vllm_log_lines:
        return False
    if facts.launch_command and _VLLM_WORD.search(facts.launch_command):
        return False
    frames = [frame for tb in facts.tracebacks for frame in tb.frames]
    if facts.root_cause is not None:
        frames += facts.root_cause.frames
    if any(frame.module == "vllm" or frame.module.startswith("vllm.") for frame in frames):
        return False
    if has(facts, "VLLM_MENTIONED"):
        return False
    if facts.command_recorded and frames:
        return True
    if vllm_version(facts):
        return False
    return facts.vllm_installed is False or bool(frames)


# vLLM named as itself ('vllm serve', 'vllm/vllm-openai', 'python -m vllm.entrypoints...'), not inside another
# name ('vllm-test', 'vllm_bug', 'myvllm')
_VLLM_WORD = lazy_compile(r"(?<![\w.-])vllm(?![\w-])", re.IGNORECASE)


def vllm_only(facts: Facts, *advice: str) -> list[str]:
    """The advice (vLLM's flags, variables, releases) unless the program that failed is known not to be vLLM."""
    return [] if vllm_not_involved(facts) else list(advice)


def vllm_or_not(facts: Facts, with_vllm: str, without_vllm: str) -> str:
    """The wording for a vLLM run, or the one for a program that is known not to be vLLM."""
    return without_vllm if vllm_not_involved(facts) else with_vllm


# -- engine args, from the parsed facts or from a command pasted into the text ---------------------
def _flag_names(name: str) -> tuple[str, str]:
    snake = name.lstrip("-").replace("-", "_")
    return snake, "--" + snake.replace("_", "-")


def flag_in_text(facts: Facts, name: str) -> str | None:
    """The line of a pasted command that passes --name (dashes or underscores, any case)."""
    return _mentions_of(facts).flag_lines.get(_flag_names(name)[0].lower())


def engine_arg(facts: Facts, name: str) -> Any:
    """An engine argument's value: `non-default args` / argv facts first, then a pasted command line."""
    snake, dashed = _flag_names(name)
    for key in (snake, dashed, dashed.lstrip("-")):
        if key in facts.engine_args:
            return facts.engine_args[key]
    return _mentions_of(facts).args.get(snake)


def _mentions_of(facts: Facts) -> Mentions:
    from vllm_bug.analyzer.complete import ensure_complete

    ensure_complete(facts)
    assert facts.mentions is not None
    return facts.mentions


def engine_arg_number(facts: Facts, name: str) -> float | None:
    value = engine_arg(facts, name)
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int too large for a float
        return None
    return number if math.isfinite(number) else None


def parallel_size(facts: Facts) -> int | None:
    """Tensor x pipeline parallel size, the GPUs one engine needs; None when not given or when the product
    is no finite number."""
    tp = engine_arg_number(facts, "tensor_parallel_size") or engine_arg_number(facts, "tp")
    pp = engine_arg_number(facts, "pipeline_parallel_size") or 1
    size = tp * pp if tp else None
    return int(size) if size is not None and math.isfinite(size) else None


def env_value(facts: Facts, name: str) -> str | None:
    """An environment variable's value from the facts, or from `NAME=value` in a pasted command."""
    if name in facts.env:
        return facts.env[name]
    return _mentions_of(facts).env.get(name)


# -- GPUs -------------------------------------------------------------------------------------------
def gpu_caps(facts: Facts) -> list[tuple[str, tuple[int, int]]]:
    """(name, compute capability) for every GPU whose capability is known or follows from its name."""
    from vllm_bug.analyzer.gpus import lookup_gpu

    out = []
    for gpu in facts.gpus:
        cc = gpu.compute_capability
        if cc is None:
            spec = lookup_gpu(gpu.name)
            cc = spec.compute_capability if spec else None
        if cc:
            out.append((gpu.name or "GPU", cc))
    return out


def min_cc(facts: Facts) -> tuple[str, tuple[int, int]] | None:
    caps = gpu_caps(facts)
    return min(caps, key=lambda item: item[1]) if caps else None


def cc_text(cc: tuple[int, int]) -> str:
    return f"{cc[0]}.{cc[1]}"


def gpu_count(facts: Facts) -> int | None:
    return len(facts.gpus) if facts.gpus else None


# -- memory arithmetic (worked out once per Facts: facts.memory, analyzer/complete.py) -------------
def memory_report(facts: Facts) -> dict | None:
    """The memory estimate as a JSON-ready dict (a fresh copy for each finding), or None."""
    from vllm_bug.analyzer.complete import ensure_complete

    estimate = ensure_complete(facts).memory
    return estimate.to_dict() if estimate is not None else None


def memory_fixes(report: dict | None) -> list[str]:
    """Concrete values from the memory arithmetic, when it suggests any."""
    if not report:
        return []
    out = []
    suggestions = report.get("suggestions") or report.get("suggested") or {}
    if isinstance(suggestions, dict):
        for key, flag in (
            ("tensor_parallel_size", "--tensor-parallel-size"),
            ("max_model_len", "--max-model-len"),
            ("gpu_memory_utilization", "--gpu-memory-utilization"),
            ("kv_cache_dtype", "--kv-cache-dtype"),
        ):
            value = suggestions.get(key)
            if value not in (None, "", []):
                out.append(f"{flag} {value} (from the memory arithmetic above)")
    elif isinstance(suggestions, list):
        out.extend(str(s) for s in suggestions if s)
    return out


GIB = 1024**3


def parse_size(number: str, unit: str) -> float:
    """'23.57', 'GiB' -> bytes."""
    scale = {"b": 1, "kib": 1024, "kb": 1000, "mib": 1024**2, "mb": 1000**2, "gib": GIB, "gb": 1000**3, "tib": 1024**4}
    return float(number) * scale.get(unit.lower(), 1)


def fmt_gib(nbytes: float) -> str:
    return f"{nbytes / GIB:.2f} GiB"
