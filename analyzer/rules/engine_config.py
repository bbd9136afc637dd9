"""vLLM refusing its engine arguments (category engine_config): argparse rejecting a flag or a value, and
vLLM's config validation rejecting a value or its fit with the model and the machine.

Findings say what would be accepted: the replacement of a removed flag and the release that removed it,
the parallel sizes the model's heads allow on the GPUs at hand, the limits the message itself names.
Messages that need no numbers to explain are rows of analyzer/data/diagnoses/engine_config.json.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.knowledge import Removal, at_least, flag_removal, release_text, removed_flags
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    ROOT,
    SECONDARY,
    engine_arg_number,
    env_value,
    evidence,
    flag_in_text,
    gpu_count,
    has,
    level,
    lines_naming,
    vllm_not_involved,
    vllm_version,
)
from vllm_bug.formats.units import parse_count

if TYPE_CHECKING:
    from vllm_bug.analyzer.memory.shape import ModelShape

MAX_ARGUMENTS_READ = 12  # rejected arguments taken from argparse's message
MAX_CHOICES_SHOWN = 24


def _groups(facts: Facts, signal_id: str) -> dict[str, str]:
    """The named groups of the signal's first match: in the input's lines, else in the root cause."""
    assert facts.signals is not None
    hit = facts.signals.first(signal_id)
    return dict(hit.groups) if hit else dict(facts.signals.root_groups.get(signal_id, {}))


def _count(groups: dict[str, str], name: str) -> int | None:
    return parse_count(groups[name]) if name in groups else None


def _or_list(values: list) -> str:
    """[1, 2, 3] -> '1, 2 or 3'."""
    words = [str(v) for v in values]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _where(facts: Facts) -> str:
    version = vllm_version(facts)
    return f"vLLM {version}" if version else "this vLLM"


def _subject(phrase: str) -> str:
    """A phrase from _where as the first words of a sentence ('this vLLM' -> 'This vLLM'; 'vLLM' stays)."""
    return phrase[:1].upper() + phrase[1:] if phrase.startswith(("this ", "the ")) else phrase


def refusal_fixes(facts: Facts) -> list[str]:
    """What to do when vLLM's configuration check refused a value and no rule knows the check's numbers."""
    return [
        "change the option or value the message names: vLLM checks the configuration before it loads the model, "
        "so the run stops the same way until that value changes",
        f"`vllm serve --help` lists the options {_where(facts)} accepts with their defaults; the documentation "
        "of another release may describe other checks and options",
    ]


# -- argparse ---------------------------------------------------------------------------------------
def _flag_key(token: str) -> str:
    """'--enable_reasoning=True' -> '--enable-reasoning': argparse's token as vLLM's parser would name it."""
    name = token.split("=", 1)[0]
    return "--" + name.lstrip("-").replace("_", "-") if name.startswith("--") else name


def _rejected_arguments(facts: Facts) -> list[str]:
    """The arguments argparse did not recognise, in order, each once, without quoting around them."""
    assert facts.signals is not None
    out: list[str] = []
    for hit in facts.signals.all("UNRECOGNIZED_ARGUMENTS")[:3]:
        for token in hit.groups.get("args", "").split()[:MAX_ARGUMENTS_READ]:
            token = token.strip("`'\"“”‘’,;")
            if token and token not in out:
                out.append(token)
    return out


def _removal(token: str) -> Removal | None:
    return flag_removal(_flag_key(token))


def _flag_given(facts: Facts, flag: str) -> str | None:
    line = flag_in_text(facts, flag)
    if line:
        return line
    snake = flag.lstrip("-").replace("-", "_")
    if snake in facts.engine_args or flag.lstrip("-") in facts.engine_args:
        return (
            facts.launch_command or f"{snake}={facts.engine_args.get(snake, facts.engine_args.get(flag.lstrip('-')))}"
        )
    return None


def _removal_title(facts: Facts, entry: Removal) -> str:
    release = release_text(entry.gone_since)
    if at_least(vllm_version(facts), entry.gone_since) is False:  # refused by a release from before the removal
        return f"{_subject(_where(facts))} does not accept {entry.name}, and vLLM removed it for good in {release}."
    since = f" (deprecated since {release_text(entry.deprecated_since)})" if entry.deprecated_since else ""
    return f"{entry.name} is not an option of {_where(facts)} any more: vLLM removed it in {release}{since}."


@rule("REMOVED_FLAG", category="engine_config")
def removed_flag(facts: Facts) -> list[Diagnosis] | None:
    """A flag vLLM removed: decisive when argparse rejected it, a warning when only the version says so."""
    version = vllm_version(facts)
    rejected = set() if vllm_not_involved(facts) else {_flag_key(token) for token in _rejected_arguments(facts)}
    out = []
    for entry in removed_flags():
        said_by_vllm = entry.name in rejected
        line = _flag_given(facts, entry.name)
        if not line and not said_by_vllm:
            continue
        if not said_by_vllm and not at_least(version, entry.gone_since):
            continue
        quoted = evidence(facts, "UNRECOGNIZED_ARGUMENTS", limit=1) if said_by_vllm else []
        out.append(
            Diagnosis(
                ROOT if said_by_vllm else SECONDARY,
                _removal_title(facts, entry),
                evidence=quoted + ([line] if line and line not in quoted else []),
                fixes=[f"remove {entry.name}; instead: {entry.replacement}"],
            )
        )
    return out or None


def _unknown_flags_and_extras(tokens: list[str], skip_removed: bool) -> tuple[list[str], list[str]]:
    """(flags, extra positional arguments) among the rejected tokens, leaving out removed flags when asked. A
    bare token right after a flag is taken as that flag's value; other bare tokens are extra positionals."""
    flags: list[str] = []
    extras: list[str] = []
    previous_was_flag = False
    for token in tokens:
        if token.startswith("-") and len(token) > 1 and not token.lstrip("-").replace(".", "").isdigit():
            previous_was_flag = "=" not in token  # '--flag=value' carries its value
            if not (skip_removed and _removal(token)):  # a removed flag (and its value) is REMOVED_FLAG's
                flags.append(token.split("=", 1)[0])
            continue
        if not previous_was_flag:
            extras.append(token)
        previous_was_flag = False
    return flags, extras


@rule("UNRECOGNIZED_ARGUMENT", category="engine_config", signals=("UNRECOGNIZED_ARGUMENTS",))
def unrecognized_argument(facts: Facts) -> Diagnosis | None:
    """argparse rejected flags (or extra positional arguments) that no table knows as removed."""
    not_vllm = vllm_not_involved(facts)
    flags, extras = _unknown_flags_and_extras(_rejected_arguments(facts), skip_removed=not not_vllm)
    if not flags and not extras:
        return None
    program = "the program" if not_vllm else _where(facts)
    fixes = []
    if flags:
        title = f"{_subject(program)} does not accept {', '.join(flags[:4])}."
        fixes.append(
            "check the spelling against `--help` of the same command: it lists every option this version accepts"
        )
        if program != "the program":
            fixes.append(
                "an option from the documentation of a newer vLLM needs that release: upgrade vLLM, or "
                f"follow the documentation for {_where(facts)}"
            )
    else:
        title = f"{_subject(program)} was given arguments it does not take: {', '.join(extras[:4])}."
    if extras:
        fixes.append(
            "a value with spaces needs quotes, or the shell splits it into extra arguments"
            if not_vllm
            else "`vllm serve` takes the model as its one positional argument (`vllm serve MODEL --flag ...`); "
            "`python -m vllm.entrypoints.openai.api_server` takes it as --model MODEL; a value with spaces "
            "needs quotes"
        )
    return Diagnosis(
        level(facts, "UNRECOGNIZED_ARGUMENTS"),
        title,
        evidence=evidence(facts, "UNRECOGNIZED_ARGUMENTS", limit=1),
        fixes=fixes,
    )


# the reporter's words, ranked with those of rules/indirect.py (below any finding on an error message)
ARGPARSE_NAMED_CONFIDENCE = 0.47
OPENAI_IMAGE = "vllm/vllm-openai"


@rule("ARGPARSE_ERROR_NAMED", category="engine_config", signals=("ARGPARSE_ERROR_NAMED",))
def argparse_error_named(facts: Facts) -> Diagnosis | None:
    """The report names argparse's 'unrecognized arguments' error, but the line listing what it rejected is not in
    the input."""
    from vllm_bug.analyzer.rules.indirect import REPORTER, indirect

    lines = evidence(facts, "ARGPARSE_ERROR_NAMED", limit=2)
    if not lines or has(facts, "UNRECOGNIZED_ARGUMENTS") or vllm_not_involved(facts):
        return None
    return indirect(
        REPORTER,
        ARGPARSE_NAMED_CONFIDENCE,
        "The report names argparse's 'unrecognized arguments' error: vLLM's argument parser rejected part of the "
        "command (from the report's words; the error line listing the rejected arguments is not in the input).",
        lines,
        [
            "the error line ('error: unrecognized arguments: ...') lists what was rejected: an option this vLLM "
            "release does not have, or a value parted from its flag",
            "in a container's exec-form command (a YAML or JSON list), each item is one argument: give a flag and its "
            "value as two items ('--dtype', 'auto') or as one '--dtype=auto'",
            *(
                [
                    "the vllm/vllm-openai image's entrypoint already starts the server: pass only the model and the "
                    "flags, with no 'serve' or 'vllm serve' in front"
                ]
                if any(OPENAI_IMAGE in line for line in facts.lines)
                else []
            ),
        ],
    )


def _long_flag(flags: str) -> str:
    """'-q/--quantization' or '--quantization/-q' -> '--quantization'."""
    names = flags.split("/")
    return max(names, key=lambda name: (name.startswith("--"), len(name)))


def _choices(text: str) -> list[str]:
    return [part.strip().strip("'\"") for part in text.split(",") if part.strip()]


@rule("INVALID_ARGUMENT_VALUE", category="engine_config", signals=("ARGPARSE_INVALID_CHOICE", "ARGPARSE_INVALID_VALUE"))
def invalid_argument_value(facts: Facts) -> Diagnosis | None:
    """argparse refused a flag's value: a choice it does not list, a value of the wrong type, a missing value."""
    choice = _groups(facts, "ARGPARSE_INVALID_CHOICE")
    if choice:
        flag, value, options = _long_flag(choice["flags"]), choice["value"], _choices(choice.get("choices", ""))
        shown = ", ".join(options[:MAX_CHOICES_SHOWN]) + (", ..." if len(options) > MAX_CHOICES_SHOWN else "")
        fixes = [f"{flag} takes one of: {shown}" if options else f"run with --help to see what {flag} takes"]
        if flag == "--quantization":
            fixes.append("or leave --quantization out: vLLM reads the method from the checkpoint's quantization_config")
        elif flag.endswith("-parser") and not vllm_not_involved(facts):
            fixes.append(
                f"parsers are added release by release: one missing from {_where(facts)} may need a newer vLLM"
            )
        return Diagnosis(
            level(facts, "ARGPARSE_INVALID_CHOICE"),
            f"{flag} does not accept {value}.",
            evidence=evidence(facts, "ARGPARSE_INVALID_CHOICE", limit=1),
            fixes=fixes,
        )
    bad = _groups(facts, "ARGPARSE_INVALID_VALUE")
    if not bad:
        return None
    flag = _long_flag(bad["flags"])
    if "type" in bad:
        title = f"{flag} takes a value of type {bad['type']}; {bad.get('value', 'the one given')} is not one."
        fixes = [f"give {flag} a plain {bad['type']} value (run with --help to see its form)"]
    else:
        title = f"{flag} was given without the value it needs."
        fixes = [f"put the value right after {flag} (an empty shell variable leaves it out)"]
    return Diagnosis(
        level(facts, "ARGPARSE_INVALID_VALUE"),
        title,
        evidence=evidence(facts, "ARGPARSE_INVALID_VALUE", limit=1),
        fixes=fixes,
    )


# -- parallel sizes ---------------------------------------------------------------------------------
def _model_shape(facts: Facts) -> ModelShape | None:
    from vllm_bug.analyzer.memory.from_facts import shape_for_facts

    return shape_for_facts(facts)


def _kv_heads(shape: ModelShape | None, attention_heads: int) -> int | None:
    """The model's KV heads, when its known shape is the one the message speaks of."""
    if shape is None or shape.num_attention_heads != attention_heads or shape.is_mla:
        return None
    return shape.num_kv_heads


def _accepted_tp(attention_heads: int, kv_heads: int | None, gpus: int) -> list[int]:
    from vllm_bug.analyzer.memory.layout import accepted_tp_sizes

    return accepted_tp_sizes(attention_heads, kv_heads, gpus)


def _pipeline_fix(facts: Facts, choices: list[int], gpus: int) -> list[str]:
    """Tensor x pipeline parallel that uses every GPU when no tensor-parallel size alone can."""
    if not choices or gpus in choices or at_least(vllm_version(facts), (0, 7)) is False:
        return []
    best = max((tp for tp in choices if gpus % tp == 0 and tp > 1), default=None)
    if best is None:
        return []
    return [
        f"to use all {gpus} GPUs: --tensor-parallel-size {best} --pipeline-parallel-size {gpus // best} "
        "(for a model that supports pipeline parallelism)"
    ]


def _parallel_args(facts: Facts) -> tuple[int | None, int]:
    tp = engine_arg_number(facts, "tensor_parallel_size")
    pp = engine_arg_number(facts, "pipeline_parallel_size")
    return (int(tp) if tp and tp >= 1 else None), (int(pp) if pp and pp >= 1 else 1)


def _visibility_fixes(facts: Facts, wanted: int, seen: int) -> list[str]:
    machine = gpu_count(facts)
    visible = env_value(facts, "CUDA_VISIBLE_DEVICES")
    if machine and machine > seen:
        where = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
        return [f"the machine has {machine} GPUs but vLLM saw {seen}{where}: let the process see {wanted} of them"]
    if visible is not None:
        return [
            f"CUDA_VISIBLE_DEVICES={visible} limits what vLLM sees: list {wanted} GPUs there if the machine has them"
        ]
    return ["in a container, expose the GPUs to it (docker run --gpus, the pod's nvidia.com/gpu request)"]


@rule("WORLD_SIZE_ABOVE_GPUS", category="engine_config", signals=("WORLD_SIZE_ABOVE_GPUS",))
def world_size_above_gpus(facts: Facts) -> Diagnosis | None:
    """The parallel sizes ask for more GPUs than vLLM found on the node (at least one was found)."""
    groups = _groups(facts, "WORLD_SIZE_ABOVE_GPUS")
    world, seen = _count(groups, "world"), _count(groups, "gpus")
    if world is None or not seen:
        return None
    _, pp = _parallel_args(facts)
    shape = _model_shape(facts)
    fixes = []
    choices = (
        _accepted_tp(shape.num_attention_heads, None if shape.is_mla else shape.num_kv_heads, seen // pp)
        if shape and seen >= pp
        else []
    )
    with_pp = f" with --pipeline-parallel-size {pp}" if pp > 1 else ""
    if choices:
        gpus = f"{seen} GPU" + ("s" if seen > 1 else "")
        fixes.append(f"--tensor-parallel-size {_or_list(choices)}{with_pp} (the sizes this model accepts on {gpus})")
    elif seen == 1:
        fixes.append("--tensor-parallel-size 1 and no --pipeline-parallel-size (one GPU runs the model unsplit)")
    else:
        fixes.append(f"lower --tensor-parallel-size x --pipeline-parallel-size to at most {seen}")
    fixes += _visibility_fixes(facts, world, seen)
    fixes.append(
        "to span several nodes: --distributed-executor-backend ray on a Ray cluster, or --nnodes with "
        "the multiprocessing backend"
    )
    return Diagnosis(
        level(facts, "WORLD_SIZE_ABOVE_GPUS"),
        f"The parallel sizes ask for {world} GPUs, but vLLM found {seen} on this node.",
        evidence=evidence(facts, "WORLD_SIZE_ABOVE_GPUS", limit=1),
        fixes=fixes,
        details={"world_size": world, "gpus_seen": seen, "accepted_tensor_parallel_sizes": choices},
    )


@rule("WORLD_SIZE_WITHOUT_GPUS", category="cuda_not_available", signals=("WORLD_SIZE_ABOVE_GPUS",))
def world_size_without_gpus(facts: Facts) -> Diagnosis | None:
    """vLLM's parallel-size check found no GPU at all: a visibility problem, not a size to lower."""
    if _count(_groups(facts, "WORLD_SIZE_ABOVE_GPUS"), "gpus") != 0:
        return None
    return Diagnosis(
        level(facts, "WORLD_SIZE_ABOVE_GPUS"),
        "vLLM found no GPU on this node, so no parallel size can fit.",
        evidence=evidence(facts, "WORLD_SIZE_ABOVE_GPUS", limit=1),
        fixes=["check that nvidia-smi lists the GPUs in the same environment", *_visibility_fixes(facts, 1, 0)],
    )


@rule("ATTENTION_HEADS_NOT_DIVISIBLE", category="engine_config", signals=("ATTENTION_HEADS_NOT_DIVISIBLE",))
def attention_heads_not_divisible(facts: Facts) -> Diagnosis | None:
    groups = _groups(facts, "ATTENTION_HEADS_NOT_DIVISIBLE")
    heads, tp = _count(groups, "heads"), _count(groups, "tp")
    if not heads or not tp:
        return None
    gpus = gpu_count(facts) or tp
    kv = _kv_heads(_model_shape(facts), heads)
    choices = _accepted_tp(heads, kv, gpus)
    heads_text = f"{heads} attention heads" + (f" and {kv} KV heads" if kv else "")
    fixes = [f"--tensor-parallel-size {_or_list(choices)} (the sizes up to {gpus} that split {heads_text} evenly)"]
    fixes += _pipeline_fix(facts, choices, gpus)
    return Diagnosis(
        level(facts, "ATTENTION_HEADS_NOT_DIVISIBLE"),
        f"The model's {heads} attention heads cannot be split evenly over --tensor-parallel-size {tp}.",
        evidence=evidence(facts, "ATTENTION_HEADS_NOT_DIVISIBLE", limit=1),
        fixes=fixes,
        details={"attention_heads": heads, "kv_heads": kv, "accepted_tensor_parallel_sizes": choices},
    )


@rule("LAYERS_NOT_DIVISIBLE_BY_PP", category="engine_config", signals=("LAYERS_NOT_DIVISIBLE_BY_PP",))
def layers_not_divisible_by_pp(facts: Facts) -> Diagnosis | None:
    groups = _groups(facts, "LAYERS_NOT_DIVISIBLE_BY_PP")
    layers, pp = _count(groups, "layers"), _count(groups, "pp")
    if not layers or not pp:
        return None
    limit = min(gpu_count(facts) or pp, 64)
    choices = [size for size in range(1, limit + 1) if layers % size == 0]
    return Diagnosis(
        level(facts, "LAYERS_NOT_DIVISIBLE_BY_PP"),
        f"The model's {layers} layers cannot be split evenly over --pipeline-parallel-size {pp}.",
        evidence=evidence(facts, "LAYERS_NOT_DIVISIBLE_BY_PP", limit=1),
        fixes=[
            f"--pipeline-parallel-size {_or_list(choices)} (the sizes up to {limit} that divide {layers} layers)",
            "or upgrade: vLLM 0.6 and later give pipeline stages unequal numbers of layers",
        ],
    )


@rule("TENSOR_SPLIT_NOT_DIVISIBLE", category="engine_config", signals=("SPLIT_NOT_DIVISIBLE",))
def tensor_split_not_divisible(facts: Facts) -> Diagnosis | None:
    """vLLM's ensure_divisibility assertion: a layer (most often the KV heads) does not split over the GPUs."""
    assert facts.signals is not None
    if not facts.signals.root("SPLIT_NOT_DIVISIBLE_FRAMES"):
        return None
    groups = _groups(facts, "SPLIT_NOT_DIVISIBLE")
    num, den = _count(groups, "num"), _count(groups, "den")
    tp, _ = _parallel_args(facts)
    shape = _model_shape(facts)
    fixes = []
    if shape is not None:
        gpus = gpu_count(facts) or tp or shape.num_attention_heads
        choices = _accepted_tp(shape.num_attention_heads, None if shape.is_mla else shape.num_kv_heads, gpus)
        fixes.append(
            f"--tensor-parallel-size {_or_list(choices)} (the sizes up to {gpus} that split this model's "
            f"{shape.num_attention_heads} attention heads and {shape.num_kv_heads} KV heads evenly)"
        )
    else:
        fixes.append(
            "choose a --tensor-parallel-size that divides num_attention_heads and num_key_value_heads of the "
            "model's config.json (or, above num_key_value_heads, is a multiple of it)"
        )
    quoted = f" ({num} is not divisible by {den})" if num is not None and den is not None else ""
    return Diagnosis(
        level(facts, "SPLIT_NOT_DIVISIBLE"),
        f"A layer of the model cannot be split evenly over the tensor-parallel GPUs{quoted}.",
        evidence=evidence(facts, "SPLIT_NOT_DIVISIBLE", limit=1),
        fixes=fixes,
    )


# -- quantization -----------------------------------------------------------------------------------
@rule("QUANTIZATION_MISMATCH", category="engine_config", signals=("QUANTIZATION_MISMATCH",))
def quantization_mismatch(facts: Facts) -> Diagnosis | None:
    groups = _groups(facts, "QUANTIZATION_MISMATCH")
    checkpoint, given = groups.get("checkpoint"), groups.get("given")
    if not checkpoint or not given:
        return None
    return Diagnosis(
        level(facts, "QUANTIZATION_MISMATCH"),
        f"The checkpoint is quantized with {checkpoint}, but --quantization {given} was given.",
        evidence=evidence(facts, "QUANTIZATION_MISMATCH", limit=1),
        fixes=[
            "leave --quantization out: vLLM reads the method from the checkpoint's quantization_config",
            f"or --quantization {checkpoint}",
        ],
    )


@rule("QUANTIZATION_DTYPE_UNSUPPORTED", category="engine_config", signals=("QUANTIZATION_DTYPE_UNSUPPORTED",))
def quantization_dtype_unsupported(facts: Facts) -> Diagnosis | None:
    groups = _groups(facts, "QUANTIZATION_DTYPE_UNSUPPORTED")
    method, dtype = groups.get("method"), groups.get("dtype")
    supported = [part.strip().rsplit(".", 1)[-1] for part in groups.get("supported", "").strip("[]").split(",")]
    supported = [name for name in supported if name]
    if not method or not dtype or not supported:
        return None
    return Diagnosis(
        level(facts, "QUANTIZATION_DTYPE_UNSUPPORTED"),
        f"{method} quantization computes in {_or_list(supported)}, not in {dtype}.",
        evidence=evidence(facts, "QUANTIZATION_DTYPE_UNSUPPORTED", limit=1),
        fixes=[f"--dtype {supported[0]}"],
    )


# -- lengths and budgets ----------------------------------------------------------------------------
@rule("MAX_MODEL_LEN_ABOVE_DERIVED", category="engine_config", signals=("MAX_MODEL_LEN_ABOVE_DERIVED",))
def max_model_len_above_derived(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "MAX_MODEL_LEN_ABOVE_DERIVED", limit=1)
    groups = _groups(facts, "MAX_MODEL_LEN_ABOVE_DERIVED")
    if not lines and not groups:
        return None
    if _only_warned(facts):
        return None  # vLLM accepted the length (VLLM_ALLOW_LONG_MAX_MODEL_LEN) and warned: rules/warnings.py
    given, derived, key = _count(groups, "given"), _count(groups, "derived"), groups.get("key")
    if derived is not None:
        first = f"set --max-model-len at most {derived}" + (f" (the {key} of the model's config.json)" if key else "")
    else:
        first = "set --max-model-len no higher than the model's max_position_embeddings"
    fixes = [
        first,
        "only if you know the model handles longer inputs (RoPE scaling configured): VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, "
        "accepting wrong outputs or crashes beyond the trained length",
    ]
    numbers = f" ({given} > {derived})" if given is not None and derived is not None else ""
    return Diagnosis(
        level(facts, "MAX_MODEL_LEN_ABOVE_DERIVED"),
        f"--max-model-len is longer than the model's configuration allows{numbers}.",
        evidence=lines,
        fixes=fixes,
    )


def _only_warned(facts: Facts) -> bool:
    """Whether every line saying max_model_len is above the model's is vLLM's warning that it accepted it anyway."""
    from vllm_bug.analyzer.rules.warnings import warned_lines

    accepted = warned_lines(facts, "long_max_model_len_allowed")
    said = evidence(facts, "MAX_MODEL_LEN_ABOVE_DERIVED", limit=5)
    return bool(accepted) and all(line in accepted for line in said)


@rule("MAX_NUM_BATCHED_TOKENS_TOO_SMALL", category="engine_config", signals=("MAX_NUM_BATCHED_TOKENS_TOO_SMALL",))
def max_num_batched_tokens_too_small(facts: Facts) -> Diagnosis | None:
    groups = _groups(facts, "MAX_NUM_BATCHED_TOKENS_TOO_SMALL")
    budget, length, seqs = _count(groups, "mnbt"), _count(groups, "mml"), _count(groups, "seqs")
    if budget is None or (length is None and seqs is None):
        return None
    if length is not None:
        title = f"--max-num-batched-tokens {budget} is smaller than max_model_len {length}."
        fixes = [f"--max-num-batched-tokens {length} (at least max_model_len)"]
        if at_least(vllm_version(facts), (0, 4)) is not False:
            fixes.append("or --enable-chunked-prefill, which lets a long prompt take several steps")
        fixes.append(f"or --max-model-len {budget}")
    else:
        title = f"--max-num-batched-tokens {budget} is smaller than --max-num-seqs {seqs}."
        fixes = [f"--max-num-batched-tokens {seqs} or more", f"or --max-num-seqs {budget} or fewer"]
    return Diagnosis(
        level(facts, "MAX_NUM_BATCHED_TOKENS_TOO_SMALL"),
        title,
        evidence=evidence(facts, "MAX_NUM_BATCHED_TOKENS_TOO_SMALL", limit=1),
        fixes=fixes,
    )


def _utilization(facts: Facts) -> float | None:
    value = engine_arg_number(facts, "gpu_memory_utilization")
    if value is not None:
        return value
    groups = _groups(facts, "GPU_MEMORY_UTILIZATION_REJECTED")
    text = groups.get("value") or groups.get("input")
    try:
        return float(text) if text else None
    except ValueError:
        return None


@rule("GPU_MEMORY_UTILIZATION_OUT_OF_RANGE", category="engine_config")
def gpu_memory_utilization_out_of_range(facts: Facts) -> Diagnosis | None:
    """--gpu-memory-utilization outside (0, 1]: vLLM refuses it (every release), often given as a percentage."""
    util = _utilization(facts)
    rejected = has(facts, "GPU_MEMORY_UTILIZATION_REJECTED")
    if util is None or (0 < util <= 1 and not rejected):
        return None
    bound = _groups(facts, "GPU_MEMORY_UTILIZATION_REJECTED").get("bound")
    lines = evidence(facts, "GPU_MEMORY_UTILIZATION_REJECTED", limit=1)
    lines += lines_naming(facts, f"Input should be {bound}", 1) if bound else []
    if util > 1:
        title = f"--gpu-memory-utilization {util:g} is outside (0, 1]: it is a fraction of the GPU, not a percentage."
        fix = f"--gpu-memory-utilization {min(util / 100, 0.9):.2f}"
    else:
        title = f"--gpu-memory-utilization {util:g} is outside (0, 1]: vLLM needs a fraction of the GPU above 0."
        fix = "--gpu-memory-utilization 0.9"
    return Diagnosis(
        level(facts, "GPU_MEMORY_UTILIZATION_REJECTED") if rejected else 0.8,
        title,
        evidence=(lines if rejected else []) + evidence(facts, "GPU_MEMORY_UTILIZATION_MENTIONED", limit=1),
        fixes=[fix],
    )
