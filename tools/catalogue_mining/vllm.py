"""vLLM, release by release: its config and platform error messages, its command-line flags, its torch pin
and a few defaults.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .messages import PyMessage, python_messages
from .sources import Source

REPOSITORY = "vllm-project/vllm"
# Config and engine-argument validation, and platform detection: every message raised there is mined.
CONFIG_FILES = ("vllm/config.py", "vllm/engine/arg_utils.py")
CONFIG_FOLDERS = ("vllm/config/", "vllm/platforms/")
# Elsewhere in vLLM only messages about the GPU's compute capability are mined (custom ops, kernels).
CAPABILITY = re.compile(r"capabilit|\bsm_?\d{2,3}\b|\bSM ?\d{2,3}\b", re.IGNORECASE)
ENGINE_ARGS = "vllm/engine/arg_utils.py"
PARSER_FILES = ("vllm/utils/argparse_utils.py", "vllm/utils/__init__.py", "vllm/utils.py")  # FlexibleArgumentParser
PIN_FILES = ("requirements/cuda.txt", "requirements-cuda.txt", "requirements/common.txt", "requirements-common.txt")


@dataclass
class ReleaseMessage:
    path: str
    message: PyMessage
    family: str  # "config" or "capability"


def release_messages(source: Source) -> Iterable[ReleaseMessage]:
    for path in source.files("vllm/"):
        if not path.endswith(".py"):
            continue
        family = "config" if path in CONFIG_FILES or path.startswith(CONFIG_FOLDERS) else "capability"
        text = source.read(path)
        if text is None or (family == "capability" and not CAPABILITY.search(text)):
            continue
        for message in parse_messages(text, path):
            if family == "config" or CAPABILITY.search(message.template.text()):
                yield ReleaseMessage(path, message, family)


SKIPPED: list[str] = []  # files that could not be parsed (newer Python syntax than the miner's)


def parse_messages(text: str, path: str) -> list[PyMessage]:
    try:
        return python_messages(text)
    except SyntaxError as exc:
        SKIPPED.append(f"{path}: {exc.msg} (line {exc.lineno})")
        return []


# -- flags ---------------------------------------------------------------------------------------------------
@dataclass
class FlagInfo:
    path: str
    deprecated: bool = False
    mentions: list[str] = field(default_factory=list)  # literal texts near the flag that name other flags


def flag_files(source: Source) -> list[str]:
    """The engine arguments, every server-side cli_args.py (the OpenAI server's options moved between
    entrypoints/openai/, entrypoints/launchers/ and entrypoints/common/), and the argument parser itself."""
    files = [ENGINE_ARGS] + [p for p in source.files("vllm/entrypoints/") if p.endswith("/cli_args.py")]
    return files + [p for p in PARSER_FILES if source.read(p) is not None]


def release_flags(source: Source) -> dict[str, FlagInfo]:
    """Every option string the release's engine and server parsers accept, with whether its declaration
    marks it deprecated, and the deprecation texts that name it."""
    trees: dict[str, ast.Module] = {}
    for path in flag_files(source):
        text = source.read(path)
        if text is None:
            continue
        try:
            trees[path] = ast.parse(text)
        except SyntaxError as exc:
            SKIPPED.append(f"{path}: {exc.msg} (line {exc.lineno})")
    fields = _frontend_fields(trees.values())
    flags: dict[str, FlagInfo] = {}
    for path, tree in trees.items():
        found = _parser_options(tree) if path in PARSER_FILES else _declared_options(tree, fields)
        for name, deprecated in found:
            info = flags.setdefault(name, FlagInfo(path))
            info.deprecated = info.deprecated or deprecated
    for tree in trees.values():
        for text_constant in _string_constants(tree):
            if not re.search(r"deprecat|instead|replaced|renamed|removed", text_constant, re.I):
                continue
            for name in set(re.findall(r"--[a-z0-9][a-z0-9-]+", text_constant)):
                if name in flags:
                    flags[name].mentions.append(" ".join(text_constant.split()))
    return flags


def _declared_options(tree: ast.Module, frontend_fields: list[str]) -> Iterable[tuple[str, bool]]:
    """The option strings of add_argument calls; a call adding one option per dataclass field (the
    server's f"--{key}" loop) stands for every field of the *FrontendArgs classes. Options argparse derives
    itself (the --no- twin of a BooleanOptionalAction) are left out: their base option stands for them."""
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"
        ):
            continue
        deprecated = any(
            k.arg == "deprecated" and isinstance(k.value, ast.Constant) and k.value.value is True for k in node.keywords
        )
        for arg in node.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("-"):
                yield arg.value, deprecated
            elif isinstance(arg, ast.JoinedStr) and _is_dashed_key(arg):
                for name in frontend_fields:
                    yield "--" + name.replace("_", "-"), False


def _parser_options(tree: ast.Module) -> Iterable[tuple[str, bool]]:
    """Options vLLM's own parser class handles before argparse sees them (-O3, -O.mode): the option strings
    its code compares arguments with."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq) for op in node.ops):
            values = [node.left, *node.comparators]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "startswith":
            values = list(node.args)
        else:
            continue
        for value in values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and _OPTION.fullmatch(value.value):
                yield value.value, False


_OPTION = re.compile(r"--?[A-Za-z][A-Za-z0-9-]*")


def _is_dashed_key(arg: ast.JoinedStr) -> bool:
    """f"--{key.replace('_', '-')}": the loop adding one option per dataclass field."""
    first = arg.values[0] if arg.values else None
    return isinstance(first, ast.Constant) and first.value == "--" and len(arg.values) == 2


def _frontend_fields(trees: Iterable[ast.Module]) -> list[str]:
    """Fields of the *FrontendArgs dataclasses and their bases (across the given files): the server's options."""
    classes = {node.name: node for tree in trees for node in tree.body if isinstance(node, ast.ClassDef)}
    names: list[str] = []
    todo = [name for name in classes if name.endswith("FrontendArgs")]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in classes:
            continue
        seen.add(name)
        for statement in classes[name].body:
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and not statement.target.id.startswith("_")
                and "ClassVar" not in ast.unparse(statement.annotation)
            ):
                names.append(statement.target.id)
        todo += [_dotted(base) for base in classes[name].bases]
    return sorted(set(names))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _string_constants(tree: ast.Module) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value
        elif isinstance(node, ast.JoinedStr):
            yield "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


# -- torch pin and defaults ----------------------------------------------------------------------------------
# 'torch==2.9.0', 'torch == 2.9.0 ; markers', and old metadata's 'torch (==2.3.1)'
_TORCH_PIN = re.compile(r"^torch\s*\(?\s*==\s*([0-9][0-9A-Za-z.+]*)\s*\)?\s*(?:;\s*(.*))?$")


def torch_pin(requirement_lines: Iterable[str]) -> str | None:
    """The torch release pinned with == (for Linux x86_64 when markers differ), else None."""
    for raw in requirement_lines:
        line = raw.split("#", 1)[0].strip()
        match = _TORCH_PIN.match(line)
        if not match:
            continue
        marker = (match.group(2) or "").replace('"', "'")
        if "platform_machine" in marker and "x86_64" not in marker and "!=" not in marker:
            continue
        if "sys_platform" in marker and "linux" not in marker:
            continue
        return match.group(1)
    return None


def requires_dist(metadata: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]


def release_pin(source: Source) -> tuple[str | None, str]:
    """(torch pin, where it was read): the wheel's metadata, else the requirement files at the tag."""
    metadata = getattr(source, "metadata", lambda: None)()
    if metadata:
        return torch_pin(requires_dist(metadata)), "wheel METADATA Requires-Dist"
    for path in PIN_FILES:
        text = source.read(path)
        pin = torch_pin(text.splitlines()) if text else None
        if pin:
            return pin, path
    setup = source.read("setup.py") or ""
    pin = torch_pin(re.findall(r"""['"](torch\s*==\s*[0-9.]+)['"]""", setup))
    return pin, "setup.py"


def release_defaults(source: Source) -> dict[str, Any]:
    """Defaults of EngineArgs fields that are plain constants (followed into the config classes they name),
    and the CUDA the release's default wheel is built for (VLLM_MAIN_CUDA_VERSION) where it says."""
    config_classes = _config_classes(source)
    out: dict[str, Any] = {}
    engine = config_classes.get("EngineArgs")
    if engine is not None:
        for name, value in engine.items():
            resolved = _follow(value, config_classes)
            if resolved is not _UNKNOWN:
                out[name] = resolved
    envs = source.read("vllm/envs.py")
    if envs:
        match = re.search(r"""VLLM_MAIN_CUDA_VERSION\s*:\s*str\s*=\s*["']([0-9.]+)["']""", envs)
        if match:
            out["VLLM_MAIN_CUDA_VERSION"] = match.group(1)
    return out


_UNKNOWN = object()


def _config_classes(source: Source) -> dict[str, dict[str, Any]]:
    """class name -> {field: default expression} for the classes of arg_utils.py and the config modules."""
    paths = ["vllm/engine/arg_utils.py", "vllm/config.py"] + [
        p for p in source.files("vllm/config/") if p.endswith(".py")
    ]
    classes: dict[str, dict[str, Any]] = {}
    for path in paths:
        text = source.read(path)
        if not text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                classes[node.name] = {
                    s.target.id: s.value
                    for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is not None
                }
    return classes


def _follow(expr: ast.expr, classes: dict[str, dict[str, Any]], depth: int = 0) -> Any:
    if depth > 4:
        return _UNKNOWN
    if isinstance(expr, ast.Constant) and isinstance(expr.value, int | float | str | bool | type(None)):
        return expr.value
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub) and isinstance(expr.operand, ast.Constant):
        value = _follow(expr.operand, classes, depth + 1)
        return -value if isinstance(value, int | float) and not isinstance(value, bool) else _UNKNOWN
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
        owner = classes.get(expr.value.id, {})
        return _follow(owner[expr.attr], classes, depth + 1) if expr.attr in owner else _UNKNOWN
    if isinstance(expr, ast.Call) and _dotted(expr.func).rsplit(".", 1)[-1] in ("field", "Field"):
        default = next((k.value for k in expr.keywords if k.arg == "default"), None)
        if default is None and expr.args and _dotted(expr.func).endswith("Field"):
            default = expr.args[0]
        return _follow(default, classes, depth + 1) if default is not None else _UNKNOWN
    return _UNKNOWN


# -- rows ----------------------------------------------------------------------------------------------------
# A KV-cache message is a shortfall only when it says something is too small; one that merely mentions memory (a
# KV connector incompatible with expandable segments, a processor sharing the model's device) is a configuration
# refusal.
SHORTFALL = (
    r"too small|not enough|insufficient|exceeds? (?:the )?available|no available memory|larger than the available"
)


def category_of(text: str) -> str:
    """The category a vLLM message most likely belongs to (the analyzer's rules decide in the end)."""
    low = text.lower()
    if CAPABILITY.search(text) or "not supported on this gpu" in low or "gpu architecture" in low:
        return "no_kernel_image"
    if re.search(
        r"failed to infer device type|no (cuda )?gpus? (are )?available|cuda is not available"
        r"|no platform detected|could not detect (the )?platform",
        low,
    ):
        return "cuda_not_available"
    if re.search(r"kv cache|cache blocks", low) and re.search(SHORTFALL, low):
        return "kv_cache_insufficient"
    return "engine_config"


def message_key(message: PyMessage) -> tuple[str, str]:
    return message.exception, message.template.head().text()
