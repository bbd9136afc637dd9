"""Property tests: hostile input to the analyzer ends in an Analysis or a VllmBugError, never a crash.

Every input goes the way `vllm-bug analyze` takes it: bytes -> load.classify_bytes -> analyze_loaded
-> each renderer. The text inputs are built from fragments of real logs and issues (the fixtures),
shuffled, cut, duplicated and dressed in worker prefixes, ANSI codes, huge numbers, deep and nested
tracebacks, broken `non-default args` dicts, CRLF and NULs; the bundle inputs are real bundles whose
payload is changed in ways the schema still accepts. Examples are few here so the suite stays fast;
set VLLM_BUG_FUZZ_EXAMPLES for a long local exploration.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import zipfile
from functools import lru_cache
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vllm_bug.analyzer.analyze import analyze_loaded
from vllm_bug.analyzer.findings import Analysis
from vllm_bug.analyzer.load import LoadedInput, classify_bytes
from vllm_bug.commands.analyze import render
from vllm_bug.errors import VllmBugError
from vllm_bug.schema import bundle as bundle_format

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLES = int(os.environ.get("VLLM_BUG_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


# -- what every input must survive -------------------------------------------------------------
def survives(data: bytes, name: str = "input") -> Analysis | None:
    """Load, analyse and render DATA as `analyze` does; only a VllmBugError may stop it."""
    try:
        loaded = classify_bytes(data, name)
    except VllmBugError as exc:
        assert str(exc) and "\n" not in str(exc), repr(exc)
        return None
    return analyzed_and_rendered(loaded)


def analyzed_and_rendered(loaded: LoadedInput) -> Analysis:
    analysis = analyze_loaded(loaded)
    assert isinstance(analysis, Analysis)
    for fmt in ("text", "markdown", "json"):
        out = render(analysis, fmt, name=loaded.name, explain=fmt == "text")
        assert isinstance(out, str) and out.endswith("\n")
        out.encode("utf-8")  # what analyze writes to stdout or -o: must be encodable
        if fmt == "json":
            json.loads(out)
    return analysis


# -- fragments of real text --------------------------------------------------------------------
@lru_cache(maxsize=1)
def real_lines() -> tuple[str, ...]:
    texts: list[str] = []
    for folder in ("reports/excerpts", "device/h200", "device/h200/cuda-errors"):
        for path in sorted((FIXTURES / folder).glob("*")):
            if path.suffix in (".txt", ".log"):
                texts.append(path.read_text("utf-8", "replace"))
    for jsonl in ("heldout/cases.jsonl", "reports/real-issues-dev.jsonl"):
        for row in (FIXTURES / jsonl).read_text("utf-8").splitlines():
            case = json.loads(row)
            texts += [case.get("error_text") or "", case.get("env_text") or "", case.get("title") or ""]
    return tuple(line for text in texts for line in text.splitlines() if line.strip())


HUGE_NUMBERS = ("9" * 400, "1" + "0" * 5000, "-" + "9" * 30, "1e999", "0", "-1", "18446744073709551617", "nan", "inf")
PREFIXES = (
    "(VllmWorker rank={n} pid={n}) ",
    "[rank{n}]: ",
    "(EngineCore_DP{n} pid={n}) ",
    "(RayWorkerWrapper pid={n}, ip=10.0.0.{n}) ",
    "\x1b[1;36m(VllmWorker TP{n} pid={n})\x1b[0;0m ",
    "\x1b[31m",
    "\x1b[",
    "> ",
    "    ",
    "ERROR 03-27 10:29:13 [core.py:{n}] ",
)


def _prefixed(draw, line: str) -> str:
    prefix = draw(st.sampled_from(PREFIXES))
    n = draw(st.sampled_from(("0", "1", "7", "-3", "9" * 40)))
    return prefix.replace("{n}", n) + line


def _with_huge_numbers(draw, line: str) -> str:
    import re

    big = draw(st.sampled_from(HUGE_NUMBERS))
    return re.sub(r"\d+(?:\.\d+)?", big, line, count=draw(st.integers(0, 3)))


def _cut(draw, line: str) -> str:
    if not line:
        return line
    at = draw(st.integers(0, len(line)))
    return line[:at] if draw(st.booleans()) else line[at:]


@st.composite
def deep_traceback(draw) -> str:
    depth = draw(st.sampled_from((0, 1, 50, 1200)))
    frames = "".join(
        f'  File "/usr/lib/python3.12/site-packages/vllm/m{i % 7}.py", line {i}, in f{i}\n    x = f{i + 1}()\n'
        for i in range(depth)
    )
    error = (
        draw(st.sampled_from(real_lines()))
        if draw(st.booleans())
        else "RuntimeError: CUDA error: an illegal memory access was encountered"
    )
    block = "Traceback (most recent call last):\n" + frames + error + "\n"
    chain = draw(
        st.sampled_from(
            (
                "\nDuring handling of the above exception, another exception occurred:\n\n",
                "\nThe above exception was the direct cause of the following exception:\n\n",
                "Traceback (most recent call last):\n",
                "",
            )
        )
    )
    return (block + chain) * draw(st.integers(1, 4))


@st.composite
def broken_engine_args(draw) -> str:
    pairs = [
        "'model': 'meta-llama/Llama-3.1-8B'",
        "'max_model_len': " + draw(st.sampled_from(HUGE_NUMBERS)),
        "'tensor_parallel_size': " + draw(st.sampled_from(("0", "-2", "'two'", "None", "[1, 2]", "{'a': {"))),
        "'gpu_memory_utilization': " + draw(st.sampled_from(("1e999", "-0.5", "'high'", "True", "0.9"))),
        "'dtype': " + draw(st.sampled_from(("'bfloat16'", "None", "b'x'", "'\\x00'", "{1, 2}"))),
        "'kv_cache_dtype': 'fp8'",
        "'max_num_seqs': " + draw(st.sampled_from(HUGE_NUMBERS)),
        "'enforce_eager': True",
        "'quantization': " + draw(st.sampled_from(("'awq'", "1", "()"))),
    ]
    body = ", ".join(draw(st.permutations(pairs))[: draw(st.integers(0, len(pairs)))])
    opening = draw(st.sampled_from(("{", "{{", "{" * 200, "({", "{'a': [")))
    closing = draw(st.sampled_from(("}", "", "}}", "]", "}" * 200, "\n\n}")))
    return f"INFO 01-01 00:00:00 [utils.py:1] non-default args: {opening}{body}{closing}"


@st.composite
def log_text(draw) -> str:
    lines = list(draw(st.lists(st.sampled_from(real_lines()), min_size=1, max_size=60)))
    extras = st.one_of(deep_traceback(), broken_engine_args(), st.text(max_size=80))
    for _ in range(draw(st.integers(0, 4))):
        lines.insert(draw(st.integers(0, len(lines))), draw(extras))
    out: list[str] = []
    for line in lines:
        how = draw(
            st.sampled_from(("keep", "keep", "keep", "prefix", "huge", "cut", "twice", "crlf", "upper", "lower", "pad"))
        )
        if how == "prefix":
            line = _prefixed(draw, line)
        elif how == "huge":
            line = _with_huge_numbers(draw, line)
        elif how == "cut":
            line = _cut(draw, line)
        elif how == "twice":
            out.append(line)
        elif how == "crlf":
            line += "\r"
        elif how == "upper":  # rules grep case-insensitively; their own searches must agree
            line = line.upper()
        elif how == "lower":
            line = line.lower()
        elif how == "pad":  # pushes the line's match past what evidence keeps of it
            line = "x" * draw(st.sampled_from((380, 420, 5000))) + " " + line
        out.append(line)
    if draw(st.booleans()):
        out = draw(st.permutations(out))
    return "\n".join(out) + draw(st.sampled_from(("", "\n", "\r\n", "\x00", "\n" * 3)))


# -- bundles the schema still accepts ----------------------------------------------------------
BUNDLE_FILES = sorted((FIXTURES / "bundles").glob("*.zst"))


@lru_cache(maxsize=1)
def real_bundles() -> tuple[dict, ...]:
    return tuple(bundle_format.decode(p.read_bytes()) for p in BUNDLE_FILES)


ODD_VALUES = st.one_of(
    st.none(),
    st.just(""),
    st.booleans(),
    st.sampled_from((10**30, -(10**30), 2**63, -1, 0, 10**400)),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        ("\u202e\u0000\U0001f600", "\ud800", "x" * 5000, "9" * 400, "1e999", "@everyone #1 <script>", "```", "\\x00")
    ),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.none(), max_size=2),
)


ENGINE_FLAGS = (
    "--tensor-parallel-size",
    "--pipeline-parallel-size",
    "--max-model-len",
    "--max-num-seqs",
    "--dtype",
    "--gpu-memory-utilization",
    "--kv-cache-dtype",
    "--quantization",
    "--model",
)
SHAPE_KEYS = (
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_size",
    "head_dim",
    "vocab_size",
    "intermediate_size",
    "num_local_experts",
    "num_experts_per_tok",
    "kv_lora_rank",
    "sliding_window",
    "num_parameters",
    "torch_dtype",
    "quantization",
    "text_config",
    "max_position_embeddings",
)


@st.composite
def odd_sections(draw) -> dict:
    """Sections collect fills from what it found: the model's shape, the command line, vLLM's pins."""
    shape = {
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "hidden_size": 4096,
        "vocab_size": 128256,
        "intermediate_size": 14336,
        "torch_dtype": "bfloat16",
    }
    for key in draw(st.lists(st.sampled_from(SHAPE_KEYS), max_size=4)):
        shape[key] = draw(ODD_VALUES)
    argv = ["vllm", "serve", draw(st.sampled_from(("meta-llama/Llama-3.1-8B-Instruct", "", "-", "x" * 300)))]
    for flag in draw(st.lists(st.sampled_from(ENGINE_FLAGS), max_size=5)):
        argv += [
            flag,
            draw(st.sampled_from(("0", "-1", "1e999", "9" * 400, "", "auto", "fp8", "nan", "2", "0.95", "\u00b2"))),
        ]
    return {
        "model": {
            "name": draw(st.sampled_from(("meta-llama/Llama-3.1-8B-Instruct", "", "x"))),
            "found": True,
            "shape": shape,
        }
        if draw(st.booleans())
        else shape,
        "command": {"argv": argv, "exit_code": draw(st.sampled_from((1, -9, 0, None, 2**40)))},
        "vllm": {
            "installed": True,
            "version": draw(st.sampled_from(("0.11.0", "", "9" * 60, "v0.6.4.post1", "dev"))),
            "requirements": [
                {
                    "requirement": "torch==" + draw(st.sampled_from(("2.8.0", ".", "", "9" * 100))),
                    "name": "torch",
                    "specifier": draw(st.sampled_from(("==2.8.0", "==.", "", ">=2"))),
                }
            ],
        },
    }


def _nodes(value, path=()):
    """Every (path, container) in a JSON document, where container is a dict or a list."""
    if isinstance(value, dict):
        yield path, value
        for key, child in value.items():
            yield from _nodes(child, path + (key,))
    elif isinstance(value, list):
        yield path, value
        for i, child in enumerate(value):
            yield from _nodes(child, path + (i,))


@st.composite
def mutated_bundle_doc(draw) -> dict:
    doc = copy.deepcopy(draw(st.sampled_from(real_bundles())))
    payload = doc["payload"]
    if draw(st.booleans()):
        payload["gpus"] = [
            {"index": i, "name": draw(st.sampled_from(("NVIDIA H100 80GB HBM3", "", None, "Tesla T4", "\u00e9\u4e2d")))}
            for i in range(draw(st.integers(0, 9)))
        ]
    if draw(st.booleans()):
        payload.update(draw(odd_sections()))
    for _ in range(draw(st.integers(1, 12))):
        nodes = [(p, c) for p, c in _nodes(payload)]
        path, node = draw(st.sampled_from(nodes))
        if isinstance(node, dict):
            keys = sorted(node, key=str)
            action = draw(st.sampled_from(("set", "set", "add", "delete")))
            if action == "add" or not keys:
                node[draw(st.text(min_size=1, max_size=12))] = draw(ODD_VALUES)
            elif action == "set":
                node[draw(st.sampled_from(keys))] = draw(ODD_VALUES)
            else:
                del node[draw(st.sampled_from(keys))]
        elif node:
            i = draw(st.integers(0, len(node) - 1))
            if draw(st.booleans()):
                node[i] = draw(ODD_VALUES)
            else:
                del node[i]
        else:
            node.append(draw(ODD_VALUES))
    return doc


def _valid(doc: dict) -> bool:
    try:
        bundle_format.validate(doc)
    except VllmBugError:
        return False
    return True


def _encode_unchecked(doc: dict) -> bytes:
    """encode() without a second validation, for documents already checked."""
    import zstandard

    raw = json.dumps(doc, ensure_ascii=True).encode("ascii")
    return zstandard.ZstdCompressor(level=1, write_checksum=True).compress(raw)


# -- the properties ----------------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    survives(data)


@FUZZ
@given(
    st.sampled_from(
        (b"\x28\xb5\x2f\xfd", b"PK\x03\x04", b"PK\x05\x06", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf", b"{")
    ),
    st.binary(max_size=1024),
)
def test_random_bytes_behind_magic(magic, data):
    survives(magic + data)


@FUZZ
@given(log_text())
def test_log_fragments(text):
    survives(text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(
    log_text(),
    st.sampled_from(("\x00", "\x00" * 9, "\x1b[0m\x00", "\x00Traceback (most recent call last):\x00")),
    st.integers(0, 10**6),
)
def test_log_fragments_with_nuls_reach_the_analyzer(text, odd, where):
    at = where % (len(text) + 1)  # NULs past the first 64 KiB get through load; the analyzer must cope
    analyzed_and_rendered(LoadedInput("text", "0" * 64, None, text[:at] + odd + text[at:], "<text>"))


@FUZZ
@given(
    st.sampled_from(range(len(BUNDLE_FILES))),
    log_text(),
    st.sampled_from(("\ud800", "\udfff\ud83d", "\x00", "\u2028\x85")),
    st.integers(0, 10**6),
)
def test_bundle_log_with_lone_surrogates_and_nuls(which, text, odd, where):
    doc = copy.deepcopy(real_bundles()[which])
    at = where % (len(text) + 1)
    doc["payload"]["log"] = {"source": "file", "truncated": False, "text": text[:at] + odd + text[at:]}
    survives(_encode_unchecked(doc), "bundle.zst")


@FUZZ
@given(mutated_bundle_doc())
def test_mutated_bundles(doc):
    assume(_valid(doc))
    survives(_encode_unchecked(doc), "bundle.zst")


@FUZZ
@given(
    mutated_bundle_doc(),
    st.sampled_from(("vllm-bug-x.zst", "a/b.json", "x.ZSTD")),
    st.lists(
        st.tuples(st.sampled_from(("notes.txt", "x/", "c.md", "d.zst", "..", "a\\b.txt")), st.binary(max_size=64)),
        max_size=3,
    ),
    st.sampled_from((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)),
    st.booleans(),
)
def test_zipped_bundles_and_odd_members(doc, member, others, method, as_json):
    assume(_valid(doc))
    body = json.dumps(doc).encode("utf-8") if as_json else _encode_unchecked(doc)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as archive:
        archive.writestr(member, body)
        for name, data in others:
            archive.writestr(name, data)
    survives(buf.getvalue(), "report.zip")


@FUZZ
@given(
    mutated_bundle_doc(),
    log_text(),
    st.sampled_from(("none", "flip", "cut", "drop_end", "crlf_quote", "bad_header", "junk")),
    st.integers(0, 10**6),
)
def test_markdown_report_with_damaged_embedded_bundle(doc, text, damage, where):
    from vllm_bug.analyzer.embed import embed_block

    assume(_valid(doc))
    block = str(embed_block(_encode_unchecked(doc)))
    lines = block.split("\n")
    body = [i for i, line in enumerate(lines) if line and not line.startswith(("`", "-----"))]
    if damage == "flip" and body:
        i = body[where % len(body)]
        chars = list(lines[i])
        chars[where % len(chars)] = "A" if chars[where % len(chars)] != "A" else "B"
        lines[i] = "".join(chars)
    elif damage == "cut" and body:
        del lines[body[where % len(body)]]
    elif damage == "drop_end":
        lines = [line for line in lines if "-----END" not in line]
    elif damage == "crlf_quote":
        lines = ["> " + line + "\r" for line in lines]
    elif damage == "bad_header":
        lines[1] = "-----BEGIN VLLM-BUG BUNDLE v1 bytes=" + "9" * 5000 + "-----"
    elif damage == "junk" and body:
        lines[body[0]] = base64.b64encode(b"\x28\xb5\x2f\xfd" + bytes(range(256))).decode()
    report = "## Report\n\n" + text + "\n\n<details>\n\n" + "\n".join(lines) + "\n\n</details>\n"
    survives(report.encode("utf-8", "surrogatepass"), "report.md")
