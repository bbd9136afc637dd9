"""The model's shape, from its config.json on this machine (a local directory or the HF cache).

Only config.json is ever read (size-capped); weights, tokenizer files and anything else are never
opened. The model's name comes from --model, from the command line of `vllm-bug run`, or from the
log (`vllm serve MODEL`, `--model MODEL`, the `non-default args: {...}` line, the engine's
`with config: model='...'` line, `LLM(model=...)`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CONFIG_BYTES_CAP = 4 << 20
NAME_CHARS_CAP = 512

SHAPE_FIELDS = (
    "architectures",
    "model_type",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_size",
    "intermediate_size",
    "vocab_size",
    "torch_dtype",
    "dtype",
    "max_position_embeddings",
    "sliding_window",
    "tie_word_embeddings",
    # mixture of experts
    "num_experts",
    "num_local_experts",
    "n_routed_experts",
    "n_shared_experts",
    "num_experts_per_tok",
    "moe_intermediate_size",
    "shared_expert_intermediate_size",
    # multi-head latent attention (DeepSeek-style)
    "kv_lora_rank",
    "q_lora_rank",
    "qk_rope_head_dim",
    "qk_nope_head_dim",
    "v_head_dim",
)
ALIASES = {
    "num_hidden_layers": ("n_layer", "num_layers", "n_layers"),
    "num_attention_heads": ("n_head", "num_heads", "n_heads"),
    "num_key_value_heads": ("num_kv_heads", "n_kv_heads", "multi_query_group_num"),
    "hidden_size": ("n_embd", "d_model", "dim"),
    "max_position_embeddings": ("n_positions", "max_seq_len", "seq_length", "max_sequence_length"),
    "intermediate_size": ("ffn_dim", "ffn_hidden_size", "n_inner"),
}
NESTED_CONFIGS = ("text_config", "llm_config", "language_config")
QUANT_FIELDS = ("quant_method", "bits", "group_size", "fmt", "activation_scheme", "weight_block_size")

_NAME_PATTERNS = (
    re.compile(r"non-default args:.*?'model(?:_tag)?':\s*'([^']+)'"),
    re.compile(r"with config:\s*model='([^']+)'"),
    re.compile(r"\bvllm\s+serve\s+(?!-)([^\s'\"]+)"),
    re.compile(r"--model[= ]+['\"]?([^\s'\"]+)"),
    re.compile(r"\bLLM\(\s*(?:model\s*=\s*)?['\"]([^'\"]+)['\"]"),
)


def model_from_argv(argv: Iterable[str]) -> str | None:
    """`vllm serve MODEL ...`, `--model MODEL` or `--model=MODEL` in a command line."""
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--model" and i + 1 < len(args):
            return _plausible(args[i + 1])
        if arg.startswith("--model="):
            return _plausible(arg.split("=", 1)[1])
    for i, arg in enumerate(args[:-1]):
        if (
            arg == "serve"
            and (i == 0 or os.path.basename(args[i - 1]) in ("vllm", "vllm.exe"))
            and not args[i + 1].startswith("-")
        ):
            return _plausible(args[i + 1])
    return None


def model_from_log(text: str) -> str | None:
    for pattern in _NAME_PATTERNS:
        match = pattern.search(text)
        if match and _plausible(match.group(1)):
            return _plausible(match.group(1))
    return None


def _plausible(name: str) -> str | None:
    name = name.strip().strip("'\",")
    if not name or len(name) > NAME_CHARS_CAP or any(c.isspace() for c in name):
        return None
    return name


def hf_cache_dirs(environ: Mapping[str, str]) -> list[Path]:
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    candidates = [environ.get("HF_HUB_CACHE"), environ.get("HUGGINGFACE_HUB_CACHE")]
    if environ.get("HF_HOME"):
        candidates.append(os.path.join(environ["HF_HOME"], "hub"))
    xdg = environ.get("XDG_CACHE_HOME") or str(home / ".cache")
    candidates.append(os.path.join(xdg, "huggingface", "hub"))
    seen: list[Path] = []
    for candidate in candidates:
        if candidate and Path(candidate) not in seen:
            seen.append(Path(candidate))
    return seen


def resolve_config(name: str, environ: Mapping[str, str]) -> Path | None:
    """config.json for a local path, or for org/name in a Hugging Face cache; None if not here."""
    local = Path(os.path.expanduser(name))
    if local.is_file() and local.name == "config.json":
        return local
    if (local / "config.json").is_file():
        return local / "config.json"
    if name.count("/") != 1 or name.startswith(("/", ".", "~")):
        return None
    repo_dir_name = "models--" + name.replace("/", "--")
    for cache in hf_cache_dirs(environ):
        found = _config_in_cached_repo(cache / repo_dir_name)
        if found:
            return found
    return None


def _config_in_cached_repo(repo: Path) -> Path | None:
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    try:
        ref = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        ref = ""
    if ref and (snapshots / ref / "config.json").is_file():
        return snapshots / ref / "config.json"
    candidates = [p / "config.json" for p in snapshots.iterdir() if (p / "config.json").is_file()]
    if not candidates:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime)


def read_config(path: Path) -> dict[str, Any]:
    """config.json as a dict; raises ValueError with a short reason when it is unusable."""
    size = path.stat().st_size
    if size > CONFIG_BYTES_CAP:
        raise ValueError(f"config.json is {size} bytes, over the {CONFIG_BYTES_CAP}-byte cap")
    with open(path, "rb") as fh:
        raw = fh.read(CONFIG_BYTES_CAP + 1)
    try:
        config = json.loads(raw.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"config.json is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(config, dict):
        raise ValueError("config.json is not a JSON object")
    return config


def summarise_shape(config: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that decide memory and kernel choices; nested text configs summarised too."""
    shape: dict[str, Any] = {}
    for key in SHAPE_FIELDS:
        value = _field(config, key)
        if value is not None:
            shape[key] = value
    if (
        "head_dim" not in shape
        and _is_int(shape.get("hidden_size"))
        and _is_int(shape.get("num_attention_heads"))
        and shape["num_attention_heads"] > 0
    ):
        shape["head_dim"] = shape["hidden_size"] // shape["num_attention_heads"]
        shape["head_dim_derived"] = True
    quant = config.get("quantization_config")
    if isinstance(quant, Mapping):
        shape["quantization"] = {
            k: _scalar(quant[k]) for k in QUANT_FIELDS if k in quant and _scalar(quant[k]) is not None
        }
    for nested in NESTED_CONFIGS:
        sub = config.get(nested)
        if isinstance(sub, Mapping):
            shape[nested] = summarise_shape(sub)
    vision = config.get("vision_config")
    if isinstance(vision, Mapping) and isinstance(vision.get("model_type"), str):
        shape["vision_model_type"] = vision["model_type"][:200]
    return shape


def _field(config: Mapping[str, Any], key: str) -> Any:
    for name in (key, *ALIASES.get(key, ())):
        if name in config:
            value = _scalar(config[name])
            if value is not None:
                return value
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scalar(value: Any) -> Any:
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value[:200]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value) and len(value) <= 16:
        return [v[:200] if isinstance(v, str) else v for v in value]
    return None


def collect_model(
    option: str | None, log_text: str | None, argv: Iterable[str] | None, environ: Mapping[str, str]
) -> dict[str, Any] | None:
    """The model section: None when no model is named anywhere, else name, source and shape."""
    name, source = None, None
    for candidate, where in (
        (option, "option"),
        (model_from_argv(argv or ()), "command"),
        (model_from_log(log_text or ""), "log"),
    ):
        if candidate:
            name, source = candidate.strip(), where
            break
    if not name:
        return None
    section: dict[str, Any] = {"name": name[:NAME_CHARS_CAP], "source": source, "found": False}
    path = resolve_config(name, environ)
    if path is None:
        section["error"] = "no config.json for this model on this machine (local path or Hugging Face cache)"
        return section
    section["config_path"] = str(path)
    try:
        config = read_config(path)
    except (OSError, ValueError) as exc:
        section["error"] = (
            str(exc)[:500] if isinstance(exc, ValueError) else f"cannot read config.json: {exc.strerror or exc}"
        )
        return section
    section["found"] = True
    section["shape"] = summarise_shape(config)
    return section
