"""The catalogue mined from upstream sources (analyzer/data/catalogue/, tools/mine_catalogue.py): every row
checked against the source text it was read from, offline; the pin and flag tables; the signals loader."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from rule_helpers import facts
from vllm_bug.analyzer import knowledge
from vllm_bug.analyzer.findings import CATEGORIES
from vllm_bug.analyzer.prefilter import fold
from vllm_bug.analyzer.signals import table, text_tokens

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "analyzer" / "data"
CATALOGUE = DATA / "catalogue"
MESSAGE_FILES = sorted(p for p in CATALOGUE.glob("*.json") if "rows" in json.loads(p.read_text("utf-8")))
TABLES = {p.name: json.loads(p.read_text("utf-8")) for p in MESSAGE_FILES}
ROWS = {(name, row_id): row for name, doc in TABLES.items() for row_id, row in doc["rows"].items()}
VALID_CATEGORIES = set(CATEGORIES) | {"generic"}  # generic: an error with many causes, none of its own

sys.path.insert(0, str(ROOT / "tools"))
from catalogue_mining import messages, nccl, vllm, vllm_logs  # noqa: E402
from catalogue_mining.sources import GitRef  # noqa: E402


# -- rebuilding a message from its excerpt, independently of the miner ----------------------------------------
def python_message(excerpt: str, value: str = "7") -> str:
    """The message a Python excerpt prints, each placeholder filled with `value`: the excerpt's last line
    is the message expression, the statements before it assign the variables it shows."""
    module = ast.parse(excerpt)
    env: dict[str, str] = {}
    for statement in module.body[:-1]:
        if isinstance(statement, ast.Assign):
            env[statement.targets[0].id] = _python_value(statement.value, value, env)
        elif isinstance(statement, ast.AugAssign):
            env[statement.target.id] += _python_value(statement.value, value, env)
    return _python_value(module.body[-1].value, value, env)


def _python_value(node: ast.expr, value: str, env: dict[str, str]) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return env.get(node.id, value)
    if isinstance(node, ast.JoinedStr):
        return "".join(
            _python_value(v, value, env)
            if isinstance(v, ast.Constant)
            else env.get(v.value.id, value)
            if isinstance(v.value, ast.Name) and v.conversion == -1 and v.format_spec is None
            else value
            for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _python_value(node.left, value, env) + _python_value(node.right, value, env)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return re.sub(r"%(\(\w+\))?[-+ #0]*\d*(\.\d+)?[sdrifgxXe]", value, _python_value(node.left, value, env))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return re.sub(r"\{[^{}]*\}", value, _python_value(node.func.value, value, env))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS:
        return _logged(node, value, env)
    return value


LOG_METHODS = ("warning", "warning_once", "warn", "info", "info_once")


def _logged(call: ast.Call, value: str, env: dict[str, str]) -> str:
    """What logging prints for `logger.warning(msg, *args)`: msg %-formatted with the arguments when there are
    any (a variable assigned in the excerpt gives its text, anything else `value`)."""
    message = _python_value(call.args[0], value, env)
    if len(call.args) == 1:
        return message
    arguments = iter(call.args[1:])

    def fill(match: re.Match[str]) -> str:
        if match.group() == "%%":
            return "%"
        argument = next(arguments, None)
        return env.get(argument.id, value) if isinstance(argument, ast.Name) else value

    return re.sub(r"%%|%(\(\w+\))?[-+ #0]*\d*(\.\d+)?[sdrifgxXe]", fill, message)


def c_message(excerpt: str, value: str = "7") -> str:
    """The message a C excerpt prints: its string literals (and macro parameters between them), joined,
    each printf conversion filled with `value`."""
    literals = list(re.finditer(r'"((?:[^"\\\n]|\\.)*)"', excerpt))
    inside = excerpt[literals[0].start() : literals[-1].end()]
    pieces = re.findall(r'"((?:[^"\\\n]|\\.)*)"|([A-Za-z_]\w*)', inside)
    text = "".join(lit if not ident else "\0" for lit, ident in pieces)
    text = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)
    text = re.sub(r"%[-+ #0]*\d*(?:\.\d+)?(?:ll|l|z|h)?[diouxXfgscp]", value, text.replace("%%", "\1"))
    return text.replace("\0", value).replace("\1", "%")


def rebuilt(row: dict) -> list[str]:
    """The messages the row's excerpt stands for."""
    kind, excerpt = row["excerpt_kind"], row["excerpt"]
    if kind == "python":
        return [python_message(excerpt)]
    if kind == "c":
        return [c_message(excerpt)]
    if kind == "text":
        return [excerpt]
    return [row["name"]]  # enum: the name is what the excerpt says; wrapped texts are checked below


def search(row: dict, text: str) -> re.Match[str] | None:
    return re.search(row["pattern"], text, re.IGNORECASE | re.MULTILINE)


# -- every row -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TABLES))
def test_catalogue_files_follow_the_schema(name):
    jsonschema.validate(TABLES[name], json.loads((DATA / "catalogue.schema.json").read_text("utf-8")))


@pytest.mark.parametrize("key", sorted(ROWS), ids=lambda key: key[1])
def test_row_matches_the_message_rebuilt_from_its_excerpt(key):
    row = ROWS[key]
    assert row["category"] in VALID_CATEGORIES
    for message in rebuilt(row):
        assert search(row, message), (row["pattern"], message)
        words = text_tokens(fold(message.split("\n")[0] if row["excerpt_kind"] != "enum" else message))
        assert any(all(t in words for t in form) for form in row["tokens"]), (row["tokens"], message)


@pytest.mark.parametrize("key", sorted(k for k in ROWS if ROWS[k]["excerpt_kind"] == "enum"), ids=lambda k: k[1])
def test_enum_rows_name_number_and_wrapped_text(key):
    row = ROWS[key]
    assert re.fullmatch(rf"{row['name']}\s*=\s*{row['number']}", row["excerpt"])
    for wrapper in TABLES[key[0]].get("wrappers", []) if "description" in row else []:
        text = re.sub(r"\{\w*\}", "7", wrapper["template"].replace("{cuda_error}", row["description"]))
        assert search(row, text), (text, row["pattern"])
        assert any(all(t in text_tokens(fold(text)) for t in form) for form in row["tokens"])


@pytest.mark.parametrize("key", sorted(ROWS), ids=lambda key: key[1])
def test_provenance_names_releases_of_the_file(key):
    order = TABLES[key[0]]["source"]["releases"]
    spans = ROWS[key]["provenance"]["present"]
    positions = [order.index(ref) for span in spans for ref in span]
    assert positions == sorted(positions)
    assert ROWS[key]["provenance"]["ref"] == spans[-1][1]


def test_wrappers_come_from_their_sources():
    cuda = TABLES["cuda_errors.json"]
    by_layer = {w["layer"]: w for w in cuda["wrappers"]}
    assert by_layer["torch"]["template"] == "CUDA error: {cuda_error}"
    assert by_layer["torch"]["exception"] == "torch.AcceleratorError"
    assert '"CUDA error: "' in by_layer["torch"]["excerpt"]
    nccl = next(w for w in cuda["wrappers"] if w["template"] == "Cuda failure '{cuda_error}'")
    assert c_message(nccl["excerpt"]) == "Cuda failure '7'" and nccl["repository"] == "NVIDIA/nccl"


def test_cuda_errors_are_categorised_as_the_design_says():
    rows = {row["name"]: row for (name, _), row in ROWS.items() if name == "cuda_errors.json"}
    assert rows["cudaErrorMemoryAllocation"]["category"] == "cuda_oom"
    assert rows["cudaErrorIllegalAddress"]["description"] == "an illegal memory access was encountered"
    assert rows["cudaErrorIllegalAddress"]["category"] == "illegal_memory_access"
    assert rows["cudaErrorAssert"]["category"] == "device_side_assert"
    assert rows["cudaErrorNoKernelImageForDevice"]["category"] == "no_kernel_image"
    assert rows["cudaErrorInsufficientDriver"]["category"] == "driver_insufficient"
    assert rows["cudaErrorNoDevice"]["category"] == "cuda_not_available"
    assert rows["cudaErrorStreamCaptureUnsupported"]["category"] == "cuda_graph"
    assert rows["cudaErrorInvalidConfiguration"]["category"] == "invalid_config_arg"
    assert rows["cudaErrorECCUncorrectable"]["category"] == "generic"


# -- the signals loader ----------------------------------------------------------------------------------------
def test_catalogue_rows_are_signals_with_tokens():
    for _, row_id in ROWS:
        assert table()[row_id].tokens and not table()[row_id].words


def test_torch_wrapped_cuda_error_is_seen_with_its_row():
    found = facts(
        "torch.AcceleratorError: CUDA error: an illegal memory access was encountered\n"
        "CUDA kernel errors might be asynchronously reported at some other API call"
    ).signals
    assert found.seen("CUDA_ERR_ILLEGAL_ADDRESS") and not found.seen("CUDA_ERR_MEMORY_ALLOCATION")


def test_nccl_cuda_failure_carries_the_cuda_error():
    found = facts(
        "host:1:2 [0] NCCL INFO transport/p2p.cc:275 -> 1\n"
        "host:1:2 [0] enqueue.cc:1 NCCL WARN Cuda failure 'out of memory'"
    ).signals
    carrier = next(
        row_id
        for (name, row_id), row in ROWS.items()
        if name == "nccl.json" and row.get("carries") and row["template"] == "Cuda failure '{}'"
    )
    assert found.first(carrier).groups["cuda_error"] == "out of memory"
    assert found.seen("CUDA_ERR_MEMORY_ALLOCATION", "NCCL_WARN")


def test_pydantic_wrapped_vllm_config_error_is_seen_with_its_values():
    text = (
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for ParallelConfig\n"
        "  Value error, World size (2) is larger than the number of available GPUs (1) in this node. "
        "If this is intentional and you are using:\n"
    )
    found = facts(text).signals
    hits = [row_id for (name, row_id) in ROWS if name == "vllm_messages.json" and found.seen(row_id)]
    assert hits, "no vLLM config row matched"
    assert any(found.first(h).groups.get("world_size") == "2" for h in hits)


def test_json_facts_list_catalogue_signals_seen():
    from vllm_bug.analyzer.jsonout import facts_to_json

    out = facts_to_json(
        facts(
            "triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: 81920, "
            "Hardware limit: 65536. Reducing block sizes or `num_stages` may help."
        )
    )
    assert any(s.startswith("TRITON_OUT_OF_RESOURCE") for s in out["signals_seen"])


@pytest.mark.parametrize("first_line", ["plain ascii", "h\u00e9llo, \u2603", "\u1e9e changes its UTF-8 length"])
def test_searching_only_the_lines_with_the_tokens_finds_what_searching_all_does(first_line):
    from vllm_bug.analyzer.signals import Lines, _scan, _scan_lines_with

    text = (
        f"{first_line}\nValueError: CUDA error: out of memory\nmemory out, cuda error: none\n"
        "host [0] NCCL WARN Cuda failure 'out of memory'\ncudaErrorMemoryAllocation"
    )
    row = table()["CUDA_ERR_MEMORY_ALLOCATION"]
    hits = _scan_lines_with(row, Lines(text, fold(text)))
    assert hits == _scan(row, text) and len(hits) == 3


def test_a_message_split_over_other_words_is_not_tried():
    """A row is compiled only when every token of one of its forms is in the text."""
    from vllm_bug.analyzer.signals import _may_match

    row = table()["CUDA_ERR_MEMORY_ALLOCATION"]
    assert not _may_match(row, "", text_tokens("cuda memory"))
    assert _may_match(row, "", text_tokens("cuda error: out of memory"))


# -- the vLLM tables -------------------------------------------------------------------------------------------
RELEASES = json.loads((CATALOGUE / "vllm_releases.json").read_text("utf-8"))
FLAGS = json.loads((CATALOGUE / "vllm_flags.json").read_text("utf-8"))


def test_pin_table_is_consistent():
    pins = RELEASES["torch_pins"]
    versions = sorted(pins, key=lambda v: knowledge.vt(v) or ())
    assert all(pins[v]["torch"] is None or re.fullmatch(r"\d+\.\d+(\.\d+)?", pins[v]["torch"]) for v in versions)
    pinned = [knowledge.vt(pins[v]["torch"]) for v in versions if pins[v]["torch"]]
    assert pinned == sorted(pinned), "a newer vLLM release pins an older torch"
    for ref in RELEASES["source"]["releases"]:
        assert ref.lstrip("v") in pins
    for version, entry in pins.items():
        assert knowledge.torch_required_by_vllm(version) == entry["torch"], version


def test_torch_pins_fill_the_releases_once_untabulated():
    for minor in list(range(13, 20)) + list(range(21, 33)):
        assert knowledge.torch_required_by_vllm(f"0.{minor}.0") is not None, minor
    assert knowledge.torch_required_by_vllm("0.33.0") == "2.14.0"
    assert knowledge.torch_required_by_vllm("0.99.0") is None  # newer than what was mined
    assert knowledge.torch_required_by_vllm("0.9.0rc1") is None


def test_defaults_follow_the_mined_releases():
    assert knowledge.default_gpu_memory_utilization("0.6.4") == 0.90
    assert knowledge.default_gpu_memory_utilization("0.33.0") == 0.92
    assert knowledge.default_gpu_memory_utilization("0.1.0") is None  # older than every mined release
    assert knowledge.release_default("no_such_field", "0.20.0") is None


def test_flag_history_is_ordered_and_names_existing_replacements():
    order = FLAGS["source"]["releases"]
    for name, entry in FLAGS["flags"].items():
        assert name.startswith("-")
        spans = [order.index(ref) for span in entry["present"] for ref in span]
        assert spans == sorted(spans)
        if "removed_in" in entry:
            assert order.index(entry["removed_in"]) == order.index(entry["present"][-1][1]) + 1
        for replacement in entry.get("replaced_by", []):
            assert replacement in FLAGS["flags"] and "removed_in" not in FLAGS["flags"][replacement]


def test_flag_history_names_the_release_that_removed_a_flag_and_its_replacement():
    reasoning = knowledge.flag_history("--enable-reasoning")
    assert reasoning is not None and reasoning.removed_in == "v0.10.0" and reasoning.deprecated_in == "v0.9.0"
    assert reasoning.replaced_by == ("--reasoning-parser",)
    model = knowledge.flag_history("--model")
    assert model is not None and model.removed_in is None and model.first_seen == "v0.2.0"
    assert knowledge.flag_history("--no-such-flag") is None


def test_hand_written_removed_flags_agree_with_the_release_history():
    order = FLAGS["source"]["releases"]
    for removal in knowledge.removed_flags():
        entry = FLAGS["flags"].get(removal.name)
        if removal.never_existed or entry is None:
            continue
        assert "removed_in" in entry, f"{removal.name} is still in {order[-1]}"
        first_without = pad(knowledge.vt(entry["removed_in"]))
        last_with = pad(knowledge.vt(entry["present"][-1][1]))
        assert last_with < pad(removal.gone_since) <= first_without, (removal.name, entry)


def test_every_flag_given_our_words_is_one_the_history_shows_removed():
    for name in knowledge.FLAG_REPLACEMENT_WORDS:
        assert "removed_in" in FLAGS["flags"].get(name, {}), name
        assert knowledge.flag_removal(name) is not None


def test_removals_come_from_the_history_with_its_releases():
    removal = knowledge.flag_removal("--disable-log-requests")
    assert removal is not None and removal.gone_since == (0, 17) and removal.deprecated_since == (0, 11)
    assert knowledge.flag_removal("--model") is None  # in every mined release
    removed = {name for name, entry in FLAGS["flags"].items() if "removed_in" in entry and "_" not in name}
    assert removed == {entry.name for entry in knowledge.removed_flags()}


def pad(version: tuple[int, ...] | None) -> tuple[int, ...]:
    return (version or ()) + (0,) * (4 - len(version or ()))


# -- the miner's own pieces ------------------------------------------------------------------------------------
def test_fstring_becomes_an_escaped_regex_with_named_bounded_groups():
    found = messages.python_messages(
        'def f(self):\n    raise ValueError(f"tp ({self.tensor_parallel_size}) * pp [{pp}] > {n}. Try again")\n'
    )
    pattern = messages.regex(found[0].template)
    assert pattern == (
        r"tp \((?P<tensor_parallel_size>[^\n]{0,200}?)\) \* pp \[(?P<pp>[^\n]{0,200}?)\] > "
        r"(?P<n>[^\n]{0,200}?)\. Try again"
    )
    assert re.search(pattern, "ValueError: tp (8) * pp [2] > 8. Try again").group("pp") == "2"


def test_a_backtick_in_a_message_is_optional_in_its_regex():
    # vllm#3331: pasted outside a code block, GitHub shows `quantization` as code and the text loses the backticks
    found = messages.python_messages(
        'def f(m, q):\n    raise ValueError(f"Quantization method specified in the model config ({m}) does not '
        'match the quantization method specified in the `quantization` argument ({q}).")\n'
    )
    pattern = re.compile(messages.regex(found[0].template))
    printed = "specified in the `quantization` argument (gptq)."
    pasted = (
        "ValueError: Quantization method specified in the model config (marlin) does not match the quantization "
        "method specified in the quantization argument (gptq)."
    )
    assert pattern.search(
        "Quantization method specified in the model config (marlin) does not match the quantization method " + printed
    )
    assert pattern.search(pasted).group("q") == "gptq"


def test_mined_vllm_rows_match_their_message_without_backticks():
    rows = json.loads((CATALOGUE / "vllm_messages.json").read_text())["rows"]
    quoted = [row for row in rows.values() if "`" in row["template"] and "{}" not in row["template"]]
    assert quoted
    for row in quoted:
        assert re.search(row["pattern"], row["template"].replace("`", "")), row["template"]


def test_message_in_a_variable_is_followed_through_its_assignments():
    source = (
        'def f(locs):\n    msg = "libcuda.so cannot be found anywhere!\\n"\n'
        '    msg += "Possible files are located at %s." % str(locs)\n    assert locs, msg\n'
    )
    found = messages.python_messages(source)[0]
    assert found.exception == "AssertionError"
    assert found.template.head().text() == "libcuda.so cannot be found anywhere!"
    assert python_message(found.excerpt).startswith("libcuda.so cannot be found anywhere!\nPossible files")


def test_too_generic_or_computed_messages_are_skipped():
    source = 'def f(x):\n    raise ValueError(f"bad {x}")\n    raise RuntimeError(make_message(x))\n'
    assert messages.python_messages(source) == []


def test_tokens_are_only_words_whitespace_or_punctuation_surround():
    template = messages.Template.of(
        ["Expected tp", messages.Hole("n"), " but the model has heads=", messages.Hole("h")]
    )
    assert messages.tokens(template) == ["expected", "heads", "model"]  # not "tp": a value follows it


def test_nccl_warning_format_names_the_cuda_error_hole():
    template = nccl.macro_format("\"Cuda failure %d '%s'\"", ", err, errStr")
    assert messages.regex(template) == r"Cuda failure (?P<code>[^\n]{0,200}?) '(?P<cuda_error>[^\n]{0,200}?)'"


def test_torch_pin_reads_requirement_lines_with_markers():
    assert vllm.torch_pin(["numpy", "torch==2.9.0; platform_machine == 'x86_64'"]) == "2.9.0"
    assert vllm.torch_pin(["torch==2.9.0+cpu; platform_machine == 'aarch64'", "torch == 2.8.0"]) == "2.8.0"
    assert vllm.torch_pin(["torch (==2.3.1)", "torchvision (==0.18.1)"]) == "2.3.1"  # old metadata style
    assert vllm.torch_pin(["torch>=2.1"]) is None


def test_flags_are_read_from_add_argument_and_frontend_dataclasses():
    source = """
class BaseFrontendArgs:
    lora_modules: list | None = None
class FrontendArgs(BaseFrontendArgs):
    host: str | None = None
    _private: int = 0
def make(parser, kwargs):
    parser.add_argument("--model", "-m", type=str)
    parser.add_argument("--swap-space", deprecated=True)
    parser.add_argument("--enforce-eager", action=argparse.BooleanOptionalAction)
    for key, value in kwargs.items():
        parser.add_argument(f"--{key.replace('_', '-')}", **value)
"""
    tree = ast.parse(source)
    declared = dict(vllm._declared_options(tree, vllm._frontend_fields([tree])))
    assert declared == {
        "--model": False,
        "-m": False,
        "--swap-space": True,
        "--enforce-eager": False,
        "--host": False,
        "--lora-modules": False,
    }


def test_options_vllms_parser_handles_itself_are_flags():
    source = (
        'def parse(args):\n    for arg in args:\n        if arg.startswith("-O") and arg != "-O":\n            pass\n'
    )
    assert set(vllm._parser_options(ast.parse(source))) == {("-O", False)}


def test_git_source_reads_files_at_a_tag(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "cuda.txt").write_text("torch==2.9.0\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    git("tag", "v0.11.1")
    source = GitRef(tmp_path, "v0.11.1", "vllm-project/vllm")
    assert vllm.release_pin(source) == ("2.9.0", "requirements/cuda.txt")
    assert source.files("requirements/") == ["requirements/cuda.txt"] and len(source.commit or "") == 40
    assert source.read("missing.txt") is None


# -- vLLM's log lines ------------------------------------------------------------------------------------------
def test_logged_messages_are_percent_formatted_and_variables_followed():
    source = """
def check(self, n):
    msg = f"User-specified max_model_len ({n}) is greater than the derived max_model_len."
    logger.warning("%s Make sure the value is correct.", msg)
    logger.info("Using %d%% of the GPU for the KV cache of %s", n, self.model)
    logger.warning_once(f"Cannot use FlashAttention-2 backend for head size {n}.")
    logger.debug("Debug lines are not mined at all, however long they are %s", n)
"""
    found = messages.log_calls(source, vllm_logs.METHODS)
    assert [(method, m.template.text()) for method, m in found] == [
        (
            "warning",
            "User-specified max_model_len ({}) is greater than the derived max_model_len. Make sure the "
            "value is correct.",
        ),
        ("info", "Using {}% of the GPU for the KV cache of {}"),
        ("warning_once", "Cannot use FlashAttention-2 backend for head size {}."),
    ]
    assert python_message(found[0][1].excerpt) == (
        "User-specified max_model_len (7) is greater than the derived max_model_len. Make sure the value is correct."
    )
    assert python_message(found[1][1].excerpt) == "Using 7% of the GPU for the KV cache of 7"


def test_topics_claim_gpu_failures_and_leave_other_platforms_and_routine_lines_out():
    def topic(level: str, text: str) -> str | None:
        found = vllm_logs.topic_of(level, text)
        return found.id if found else None

    assert topic("warning", "Failed to import from vllm._C with {}") == "compiled_ops_not_loaded"
    assert (
        topic(
            "warning", "Your GPU does not have native support for FP8 computation but FP8 quantization is being used."
        )
        == "gpu_capability"
    )
    assert topic("info", "Cannot use FlashAttention-2 backend for Volta and Turing GPUs.") == "gpu_capability"
    assert topic("warning", "Enforce eager set, overriding optimization level to -O0") == "cuda_graphs_off"
    assert topic("warning", "Custom allreduce is disabled because this process group spans across nodes.") == (
        "custom_all_reduce_off"
    )
    assert topic("warning", "CUDA graph is not supported for {} on ROCm yet, fallback to eager mode.") is None
    assert (
        topic("warning", "Layer '{}' is not supported by AWQMarlin. Falling back to unoptimized AWQ kernels.") is None
    )
    assert topic("info", "Failed to import from vllm._C with {}") is None  # INFO only where a topic allows it
    assert topic("warning", "The model has a long context length ({}). This may causeOOM during profiling.") == (
        "oom_risk"
    )
    assert topic("warning", "Checkpoint size exceeds {}% of available RAM ({} GiB). This may cause OOM.") is None
    assert vllm_logs.topic_of("info", "Auto-fit max_model_len: reduced from {} to {} to fit").id == "limits_lowered"


def test_a_warning_that_vllm_worked_around_only_supports_a_finding():
    fp8 = (
        "Your GPU does not have native support for FP8 computation but FP8 quantization is being used. Weight-only "
        "FP8 compression will be used leveraging the Marlin kernel."
    )
    topic = vllm_logs.topic_of("warning", fp8)
    assert topic is not None and topic.id == "gpu_capability" and topic.role_of("warning", fp8) == "context"
    disabled = "HPC gated MLA disabled: compute capability {} not in {}."
    assert topic.role_of("warning", disabled) == "explains" and topic.role_of("info", disabled) == "context"


def test_warning_rows_are_matched_in_vllms_log_format():
    line = (
        "WARNING 05-09 22:20:41 [_custom_ops.py:21] Failed to import from vllm._C with "
        "ImportError('libcudart.so.12: cannot open shared object file')"
    )
    found = facts(line).signals
    seen = [row_id for (name, row_id) in ROWS if name == "vllm_warnings.json" and found.seen(row_id)]
    assert seen and all(ROWS["vllm_warnings.json", s]["topic"] == "compiled_ops_not_loaded" for s in seen)


@pytest.mark.parametrize(
    ("message", "category"),
    [
        # vllm/v1/worker/gpu_model_runner.py (Mamba): a shortfall of cache blocks
        (
            "max_num_seqs (512) exceeds available Mamba cache blocks (256). Each decode sequence requires one Mamba "
            "cache block, so CUDA graph capture cannot proceed",
            "kv_cache_insufficient",
        ),
        ("No available memory for the cache blocks. Try increasing `gpu_memory_utilization`.", "kv_cache_insufficient"),
        # KV cache words with no shortfall: configuration refusals
        (
            "KV connector Nixl is incompatible with PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True unless "
            "enable_sleep_mode is also enabled. PyTorch's CUDA VMM allocator and the KV cache memory ...",
            "engine_config",
        ),
        (
            "Cannot run the multi-modal processor on cuda:0: this instance also runs the language model. The processor "
            "would share the device with the model's forward pass and its KV cache memory.",
            "engine_config",
        ),
    ],
)
def test_a_vllm_kv_cache_message_is_a_shortfall_only_when_it_says_one(message, category):
    assert vllm.category_of(message) == category


def test_a_messages_first_sentence_is_a_form_of_its_own_when_it_names_the_message():
    whole = messages.Template.of(
        ["Pipeline parallelism is not supported for this model. Supported models implement the `SupportsPP` interface."]
    )
    assert whole.first_sentence() == messages.Template.of(["Pipeline parallelism is not supported for this model."])
    short = messages.Template.of(["Not supported. Use another model instead of this one, please."])
    assert short.first_sentence() is None  # too short to stand for the message
    single = messages.Template.of(["Total number of attention heads (", messages.Hole("a"), ") must be divisible."])
    assert single.first_sentence() is None  # nothing follows it
