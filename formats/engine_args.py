"""Engine arguments as vLLM's users and logs print them.

- a launch command line: `vllm serve MODEL --max-model-len 4096 -tp 2`, `python -m
  vllm.entrypoints.openai.api_server --model M`, `docker run ... vllm/vllm-openai:v0.9 --model M`;
- vLLM's startup lines: `non-default args: {'model': ..., ...}` (a Python dict repr), the older
  `args: Namespace(model=..., ...)` and `Initializing a V1 LLM engine (v0.11.0) with config: model=...`;
- a Python call: `LLM(model="m", max_model_len=4096)`, `EngineArgs(...)`.

Values are read with `ast.literal_eval` or not at all: nothing pasted is ever executed.
"""

from __future__ import annotations

import ast
import contextlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.units import MAX_COUNT_DIGITS

MAX_LITERAL_CHARS = 64 << 10  # `non-default args: {...}` longer than this is not parsed
MAX_CALL_CHARS = 8192  # an `LLM(...)` call longer than this is not parsed
MAX_COMMAND_LINE_CHARS = 8192  # a longer line is not searched for a launch command
MAX_COMMAND_LINES = 60  # lines one launch command may continue over
MAX_COMMAND_CHARS = 4096  # the launch command kept as text
MAX_NESTED_LAUNCHERS = 8  # 'docker run IMAGE vllm serve ...' nests one launcher in another


@dataclass
class EngineArgs:
    args: dict[str, Any]  # snake_case engine argument -> value ('max_model_len': 4096)
    text: str  # what they were read from: the command, the call, or the logged line's argument text


# -- vLLM's startup lines ------------------------------------------------------------------------
_NON_DEFAULT = lazy_compile(r"non-default args:\s*(\{)")
_NAMESPACE = lazy_compile(r"\bargs: Namespace\(")
_ENGINE_CONFIG = lazy_compile(r"Initializing an? (?:V1 )?LLM engine(?: \(v[^)]{1,40}\))? with config:\s*")
_REPR_PAIR = lazy_compile(
    r"'(\w{1,80})':\s*('(?:[^'\\\n]|\\.){0,2000}'|\"(?:[^\"\\\n]|\\.){0,2000}\"|-?\d+(?:\.\d+)?(?:e-?\d+)?|True|False|None)"
)
_KWARG_PAIR = lazy_compile(
    r"(?:^|[\s,(])(\w{1,80})=('(?:[^'\\\n]|\\.){0,2000}'|\"(?:[^\"\\\n]|\\.){0,2000}\"|[^,\s)]{1,200})"
)
# engine config line key -> engine argument
_CONFIG_KEYS = {
    "model": "model",
    "dtype": "dtype",
    "max_seq_len": "max_model_len",
    "tensor_parallel_size": "tensor_parallel_size",
    "pipeline_parallel_size": "pipeline_parallel_size",
    "quantization": "quantization",
    "enforce_eager": "enforce_eager",
    "kv_cache_dtype": "kv_cache_dtype",
    "trust_remote_code": "trust_remote_code",
    "enable_prefix_caching": "enable_prefix_caching",
    "served_model_name": "served_model_name",
}


def parse_non_default_args(text: str) -> EngineArgs | None:
    """The dict of vLLM's `non-default args: {...}` line (its first one), or None when TEXT has none.

    A dict cut short or holding reprs that are not literals ('CompilationConfig(...)') still gives
    the pairs that are plain literals.
    """
    if "non-default args" not in text or not (m := _NON_DEFAULT.search(text)):
        return None
    open_pos = m.start(1)
    span = _balanced_span(text, open_pos)
    body = span if span is not None else text[open_pos : open_pos + 8192].split("\n", 1)[0]
    if span is not None:
        try:
            value = ast.literal_eval(span)
            if isinstance(value, dict):
                return EngineArgs({str(k): v for k, v in value.items()}, span)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return EngineArgs({m.group(1): _literal(m.group(2)) for m in _REPR_PAIR.finditer(body)}, body)


def parse_namespace_args(text: str) -> EngineArgs | None:
    """The arguments of an older vLLM's `args: Namespace(...)` line that are set (not None or False)."""
    if "Namespace(" not in text or not (m := _NAMESPACE.search(text)):
        return None
    body = text[m.end() : m.end() + MAX_LITERAL_CHARS].split("\n", 1)[0]
    args = {k: v for k, v in _kwargs(body).items() if v is not None and v is not False}
    return EngineArgs(args, body)


def parse_engine_config(text: str) -> EngineArgs | None:
    """Engine arguments from `Initializing a V1 LLM engine (vX) with config: model='m', dtype=torch.bfloat16, ...`."""
    if "with config:" not in text or not (m := _ENGINE_CONFIG.search(text)):
        return None
    end = text.find("\n", m.end())
    body = text[m.end() : end if end != -1 else m.end() + MAX_LITERAL_CHARS]
    config = _kwargs(body)
    args: dict[str, Any] = {}
    for key, target in _CONFIG_KEYS.items():
        value = config.get(key)
        if value is not None and value != "None":
            if key == "dtype" and isinstance(value, str):
                value = value.replace("torch.", "")
            args.setdefault(target, value)
    return EngineArgs(args, body)


def _kwargs(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in _KWARG_PAIR.finditer(text):
        out.setdefault(m.group(1), _literal(m.group(2)))
    return out


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _balanced_span(text: str, open_pos: int, limit: int = MAX_LITERAL_CHARS) -> str | None:
    """The text from an opening bracket at open_pos to its match, quotes respected; None if too long.

    A blank line inside the brackets ends the search too (the literal was cut).
    """
    pairs = {"{": "}", "(": ")", "[": "]"}
    depth = 0
    quote = ""
    end = min(len(text), open_pos + limit)
    i = open_pos
    while i < end:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in pairs:
            depth += 1
        elif ch in "})]":
            depth -= 1
            if depth == 0:
                return text[open_pos : i + 1]
        elif ch == "\n" and depth > 0 and i + 1 < end and text[i + 1] == "\n":
            return None
        i += 1
    return None


# -- LLM(...) and EngineArgs(...) calls ------------------------------------------------------------
_LLM_CALL = lazy_compile(r"(?<![\w.])(?:LLM|AsyncEngineArgs|EngineArgs)\(")


def parse_llm_call(text: str) -> EngineArgs | None:
    """The literal arguments of the first `LLM(...)`/`EngineArgs(...)` call in TEXT (a positional first
    argument is the model), or None when TEXT has no such call. Arguments that are not literals are left out.
    """
    if ("LLM(" not in text and "EngineArgs(" not in text) or not (m := _LLM_CALL.search(text)):
        return None
    close = text.find(")", m.end())
    call_text = text[m.start() : (close + 1 if 0 < close < m.start() + 2000 else m.start() + 200)].strip()
    return EngineArgs(_call_kwargs(text, m.end() - 1), call_text)


def _call_kwargs(text: str, open_pos: int) -> dict[str, Any]:
    span = _balanced_span(text, open_pos, limit=MAX_CALL_CHARS)
    if span is None:
        return {}
    try:
        tree = ast.parse("f" + span, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return {}
    call = tree.body
    out: dict[str, Any] = {}
    if not isinstance(call, ast.Call):
        return out
    if call.args:
        with contextlib.suppress(ValueError, TypeError, SyntaxError, RecursionError):
            out["model"] = ast.literal_eval(call.args[0])
    for kw in call.keywords:
        if kw.arg is None:
            continue
        try:
            out[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            continue
    return out


# -- launch command lines --------------------------------------------------------------------------
_BOUNDARY = frozenset(";&|!$#>`:：")  # besides whitespace, what may stand right before a command
_LAUNCHER = lazy_compile(
    r"(?:^|(?<=[\s;&|!$#>`:：]))"
    r"(?:vllm[ \t]+serve\b|python[\d.]*[ \t]+(?:-u[ \t]+)?(?:-m[ \t]+vllm\.entrypoints\.[\w.]+|\S*api_server\.py)"
    r"|docker[ \t]+run\b|podman[ \t]+run\b)",
    re.MULTILINE,
)
_WORD = lazy_compile(r"\S+")
_ASSIGNMENT_NAME = lazy_compile(r"[A-Z_][A-Z0-9_]*=")
_CONTINUED_IMAGE_LINE = lazy_compile(r"[\w.:/@-]+")
_SHORT_FLAGS = {
    "tp": "tensor_parallel_size",
    "pp": "pipeline_parallel_size",
    "dp": "data_parallel_size",
    "q": "quantization",
    "O": "optimization_level",
    "cc": "compilation_config",
    "ep": "enable_expert_parallel",
}
_BOOLEAN_FLAGS = {
    "trust_remote_code",
    "enforce_eager",
    "enable_prefix_caching",
    "disable_log_requests",
    "disable_log_stats",
    "enable_chunked_prefill",
    "disable_custom_all_reduce",
    "enable_lora",
    "enable_auto_tool_choice",
    "enable_expert_parallel",
    "disable_frontend_multiprocessing",
    "enable_sleep_mode",
    "skip_tokenizer_init",
    "disable_sliding_window",
    "use_v2_block_manager",
    "worker_use_ray",
    "enable_reasoning",
    "headless",
    "no_enable_prefix_caching",
    "no_enable_chunked_prefill",
    "async_scheduling",
    "enable_eplb",
    "uvicorn_log_level_debug",
}
_DOCKER_OPTIONS_WITH_VALUE = {
    "-e",
    "--env",
    "-v",
    "--volume",
    "-p",
    "--publish",
    "--name",
    "--gpus",
    "--runtime",
    "--shm-size",
    "--ipc",
    "--network",
    "--entrypoint",
    "-u",
    "--user",
    "-w",
    "--workdir",
    "--mount",
    "--device",
    "--env-file",
    "--ulimit",
    "--cpus",
    "--memory",
    "-m",
    "--platform",
    "--pull",
    "--label",
    "--log-driver",
    "--restart",
    "--cap-add",
    "--security-opt",
    "--hostname",
    "--add-host",
}
_NUMBER = lazy_compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")
_INTEGER = lazy_compile(rf"-?\d{{1,{MAX_COUNT_DIGITS}}}")  # a longer one is garbage, not an argument
_FLOAT = lazy_compile(r"-?\d+\.\d*(?:e-?\d+)?|-?\d+e-?\d+")
_MODEL_WORD = lazy_compile(r"[\w./@:~-]+")


def find_launch_command(lines: Sequence[str]) -> EngineArgs | None:
    """The first command in LINES that starts vLLM (with `VAR=value` prefixes and continuation lines), or None.

    The command continues over lines that end in a backslash, lines that start with a flag, and, for
    docker or podman, lines holding only an image name.
    """
    for i, line in enumerate(lines):
        if len(line) > MAX_COMMAND_LINE_CHARS or not ("vllm" in line or "api_server" in line or " run" in line):
            continue
        start = launch_start(line)
        if start is None or 'File "' in line:
            continue
        parts = [line[start:].rstrip()]
        j = i + 1
        while j < len(lines) and j < i + MAX_COMMAND_LINES:
            nxt = lines[j].strip()
            image_line = parts[0].lstrip().startswith(("docker", "podman")) and _CONTINUED_IMAGE_LINE.fullmatch(nxt)
            continues = parts[-1].endswith("\\") or (nxt.startswith("-") and not nxt.startswith("---")) or image_line
            if not nxt or not continues:
                break
            parts.append(nxt)
            j += 1
        command = " ".join(p.rstrip("\\").strip() for p in parts)
        return EngineArgs(parse_command_args(command), command[:MAX_COMMAND_CHARS])
    return None


def launch_start(line: str) -> int | None:
    """Where in LINE a command that starts vLLM begins, `VAR=value ` prefixes included, or None.

    The leftmost start wins: a position after a boundary (line start, whitespace, ';', '&&', '$ ', ...)
    from which zero or more `VAR=value` words, each followed by spaces or tabs, lead to a launcher
    (`vllm serve`, `python -m vllm.entrypoints...`, `... api_server.py`, `docker run`, `podman run`).
    Computed word by word from the right, so a line full of assignments costs no more than its length.
    """
    launchers = {m.start() for m in _LAUNCHER.finditer(line)}
    if not launchers:
        return None
    words = [(m.start(), m.end()) for m in _WORD.finditer(line)]
    # leads[k]: from the start of word k, zero or more assignments lead to a launcher
    leads = [False] * (len(words) + 1)
    for k in range(len(words) - 1, -1, -1):
        start, end = words[k]
        leads[k] = start in launchers or (leads[k + 1] and _assignment_then_blanks(line, start, end, words, k))
    for k, (start, end) in enumerate(words):
        if leads[k]:
            return start
        for pos in range(start + 1, end):  # inside a word, right after ';', '&&', '$', ...
            if line[pos - 1] in _BOUNDARY and (
                pos in launchers or (leads[k + 1] and _assignment_then_blanks(line, pos, end, words, k))
            ):
                return pos
    return None  # unreachable: a launcher's own position always qualifies


def _assignment_then_blanks(line: str, start: int, end: int, words: list[tuple[int, int]], k: int) -> bool:
    """Whether line[start:end] (the rest of word k) is VAR=value and only spaces or tabs follow it up to word k+1."""
    if k + 1 >= len(words) or not _only_blanks(line, end, words[k + 1][0]):
        return False
    return _ASSIGNMENT_NAME.match(line, start, end) is not None


def _only_blanks(line: str, start: int, end: int) -> bool:
    """Whether line[start:end] is one or more spaces and tabs (what separates a VAR=value from the next word)."""
    return end > start and not line[start:end].strip(" \t")


def parse_command_args(command: str) -> dict[str, Any]:
    """Engine flags of a launch command as snake_case keys ('--max-model-len 4096' -> max_model_len=4096)."""
    try:
        tokens = shlex.split(command, comments=False, posix=True)
    except ValueError:
        tokens = command.split()
    tokens = [t for t in tokens if t not in ("\\", "")]
    args: dict[str, Any] = {}
    i = _engine_args_start(tokens)
    if i is None:
        return args
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-") and len(token) > 1 and not _is_number(token):
            name, eq, value = token.lstrip("-").partition("=")
            key = _SHORT_FLAGS.get(name) if not token.startswith("--") else None
            key = key or name.replace("-", "_")
            if not key or key.startswith("_"):
                i += 1
                continue
            if eq:
                args[key] = _coerce(value)
            elif key in _BOOLEAN_FLAGS and not (i + 1 < len(tokens) and tokens[i + 1].lower() in ("true", "false")):
                if key.startswith("no_"):
                    args[key[3:]] = False
                else:
                    args[key] = True
            elif i + 1 < len(tokens) and (not tokens[i + 1].startswith("-") or _is_number(tokens[i + 1])):
                args[key] = _coerce(tokens[i + 1])
                i += 1
            elif key.startswith("no_"):
                args[key[3:]] = False
            else:
                args[key] = True
        elif "model" not in args and _MODEL_WORD.fullmatch(token) and not token.startswith(("<", "$")):
            args["model"] = token
        i += 1
    return args


def _engine_args_start(tokens: list[str]) -> int | None:
    """Index of the first engine argument, after 'vllm serve', 'python -m ...', or the docker image.

    'docker run IMAGE vllm serve ...' nests one launcher in another; the nested one is read the
    same way, at most MAX_NESTED_LAUNCHERS deep.
    """
    offset = 0
    for i, token in enumerate(tokens):
        if token == "serve" and i and tokens[i - 1].endswith("vllm"):
            return i + 1
        if token.startswith("vllm.entrypoints.") or token.endswith("api_server.py"):
            return i + 1
    # no 'vllm serve' or entry point anywhere, so none in a nested launcher's tokens either
    for _ in range(MAX_NESTED_LAUNCHERS):
        rest = _after_container_image(tokens, offset)
        if rest is None:
            return None
        if rest < len(tokens) and tokens[rest] in ("vllm", "python", "python3", "-m"):
            offset = rest  # the command the container runs: read it the same way
            continue
        return rest if "vllm" in tokens[rest - 1] or rest < len(tokens) else None
    return None


def _after_container_image(tokens: list[str], offset: int) -> int | None:
    """For tokens[offset:] that run a container ('docker run OPTIONS IMAGE ...'): the index after IMAGE."""
    if not (offset < len(tokens) and tokens[offset] in ("docker", "podman") or "run" in tokens[offset : offset + 3]):
        return None
    run = _index(tokens, "run", offset)
    i = run + 1 if run is not None else offset
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("-"):
            return i + 1
        name = token.split("=", 1)[0]
        i += 2 if ("=" not in token and name in _DOCKER_OPTIONS_WITH_VALUE) else 1
    return None


def _index(tokens: list[str], value: str, start: int) -> int | None:
    try:
        return tokens.index(value, start)
    except ValueError:
        return None


def _is_number(token: str) -> bool:
    return _NUMBER.fullmatch(token) is not None


def _coerce(value: str) -> Any:
    lower = value.lower()
    if lower in ("true", "false"):
        return lower == "true"
    if _INTEGER.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    return value
