"""Property tests: every parser in vllm_bug.formats returns its record type (or None) on any text, never raises.

Inputs are arbitrary text, and text built from real log and issue lines dressed up as the analyzer's
fuzz tests do (prefixes, huge numbers, deep tracebacks, broken dicts, cuts, CRLF, NULs), plus
fragments that start each format. Few examples here; set VLLM_BUG_FUZZ_EXAMPLES for a long run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_fuzz_analyzer import log_text
from vllm_bug.formats import (
    ansi,
    collect_env,
    embedded,
    engine_args,
    env_vars,
    issue_text,
    logline,
    magic,
    nvidia_smi,
    pip_list,
    traceback,
    units,
    vllm_log,
)

EXAMPLES = int(os.environ.get("VLLM_BUG_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# how each format starts: glued to random text, they walk the parsers past their first checks
STARTS = (
    "\x1b[",
    "\x1b]",
    "ESC[",
    "[1;36m",
    "(VllmWorker rank=1 pid=2) ",
    "[rank0]: ",
    "ERROR 01-02 03:04:05 [a.py:1] ",
    "W1126 22:56:40.1 7 a.py:1] ",
    "Traceback (most recent call last):",
    '  File "a.py", line 1, in f',
    "RuntimeError: ",
    "terminate called after throwing an instance of '",
    "NCCL error: ",
    "CUDA error: ",
    "During handling of the above exception, another exception occurred:",
    "| NVIDIA-SMI 580.95.05  Driver Version: ",
    "CUDA Version: ",
    "|   0  NVIDIA H200   On  |",
    "MiB / ",
    "Processes",
    "GPU models and configuration:",
    "GPU 0: ",
    "[pip3] ",
    "[conda] ",
    "==",
    "Package    Version\n---------- -------\n",
    "vllm serve ",
    "docker run ",
    "A=1 ",
    "non-default args: {",
    "args: Namespace(",
    "with config: ",
    "LLM(",
    "GPU KV cache size: ",
    "max seq len (",
    "Maximum concurrency for ",
    "Available KV cache memory: ",
    "[Bug]: ",
    "-----BEGIN VLLM-BUG BUNDLE v1",
    "export VLLM_X=",
    "9" * 40,
    " " * 300,
    "(" * 50,
    "{" * 50,
)


@st.composite
def format_text(draw) -> str:
    parts = draw(st.lists(st.one_of(st.sampled_from(STARTS), st.text(max_size=40)), max_size=12))
    return "".join(parts)


TEXT = st.one_of(st.text(max_size=400), format_text(), log_text())


def _none_or(kind: type) -> Callable[[Any], bool]:
    return lambda value: value is None or isinstance(value, kind)


def _list_of(kind: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, list) and all(isinstance(item, kind) for item in value)


def _is(kind: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, kind)


def _collect_env(text: str) -> Any:
    env = collect_env.parse_collect_env(text.splitlines())
    if env is not None:  # the typed fields must hold up too
        assert _none_or(bool)(env.torch_cuda_available)
        for value in (
            env.nvcc_version,
            env.driver_version,
            env.vllm_version,
            env.glibc,
            env.python_version,
            env.kernel,
        ):
            assert _none_or(str)(value)
    return env


def _follow(text: str) -> Any:
    follower = traceback.TracebackFollower()
    for line in text.splitlines():
        kept = follower.feed(line)
        if kept is None:
            return None
        assert all(isinstance(item, str) for item in kept)
    return follower


# parser, expected result
PARSERS: dict[str, tuple[Callable[[str], Any], Callable[[Any], bool]]] = {
    **{
        f"strip_ansi[{name}]": ((lambda text, style=style: ansi.strip_ansi(text, style)), _is(str))
        for name, style in (
            ("terminal", ansi.TERMINAL),
            ("pasted", ansi.PASTED),
            ("markdown", ansi.MARKDOWN),
            ("signature", ansi.SIGNATURE),
        )
    },
    "strip_control": (ansi.strip_control, _is(str)),
    "parse_log_line": (logline.parse_log_line, _is(logline.LogLine)),
    "starts_record": (logline.starts_record, _is(bool)),
    "starts_record_raw": (logline.starts_record_raw, _is(bool)),
    "strip_error_line_prefix": (logline.strip_error_line_prefix, _is(str)),
    "parse_tracebacks": (lambda text: traceback.parse_tracebacks(text.splitlines()), _list_of(traceback.Traceback)),
    "parse_frame_line": (traceback.parse_frame_line, _none_or(traceback.Frame)),
    "parse_exception_line": (traceback.parse_exception_line, _none_or(traceback.ExceptionLine)),
    "pseudo_exception": (traceback.pseudo_exception, _none_or(traceback.ExceptionLine)),
    "exception_in_prose": (traceback.exception_in_prose, _none_or(traceback.ExceptionLine)),
    "TracebackFollower": (_follow, _none_or(traceback.TracebackFollower)),
    "smi.parse_header": (nvidia_smi.parse_header, _none_or(nvidia_smi.SmiHeader)),
    "smi.parse_table": (nvidia_smi.parse_table, _none_or(nvidia_smi.SmiTable)),
    "smi.parse_query_csv": (nvidia_smi.parse_query_csv, _list_of(dict)),
    "smi.driver_failure_line": (nvidia_smi.driver_failure_line, _none_or(str)),
    "smi.parse_number": (nvidia_smi.parse_number, _none_or(float)),
    "smi.parse_enabled": (nvidia_smi.parse_enabled, _none_or(bool)),
    "parse_collect_env": (_collect_env, _none_or(collect_env.CollectEnv)),
    "parse_gpu_item": (collect_env.parse_gpu_item, _none_or(tuple)),
    "first_version": (collect_env.first_version, _none_or(str)),
    "parse_packages": (pip_list.parse_packages, _list_of(pip_list.Package)),
    "parse_entry": (lambda text: pip_list.parse_entry(text, conda=True), _none_or(pip_list.Package)),
    "parse_command_args": (engine_args.parse_command_args, _is(dict)),
    "find_launch_command": (
        lambda text: engine_args.find_launch_command(text.splitlines()),
        _none_or(engine_args.EngineArgs),
    ),
    "launch_start": (engine_args.launch_start, _none_or(int)),
    "parse_non_default_args": (engine_args.parse_non_default_args, _none_or(engine_args.EngineArgs)),
    "parse_namespace_args": (engine_args.parse_namespace_args, _none_or(engine_args.EngineArgs)),
    "parse_engine_config": (engine_args.parse_engine_config, _none_or(engine_args.EngineArgs)),
    "parse_llm_call": (engine_args.parse_llm_call, _none_or(engine_args.EngineArgs)),
    "parse_memory_log": (vllm_log.parse_memory_log, _none_or(vllm_log.MemoryLog)),
    "parse_version_line": (vllm_log.parse_version_line, _none_or(str)),
    "parse_title": (issue_text.parse_title, _none_or(issue_text.IssueTitle)),
    "strip_tags": (issue_text.strip_tags, _is(str)),
    "strip_template_tag": (issue_text.strip_template_tag, _is(str)),
    "sniff": (lambda text: magic.sniff(text.encode("utf-8", "surrogatepass")), _none_or(magic.FileType)),
    "find_embedded_block": (embedded.find_embedded_block, _none_or(embedded.EmbeddedBlock)),
    "find_env_settings": (env_vars.find_env_settings, _list_of(env_vars.EnvSetting)),
    "parse_count": (units.parse_count, _none_or(int)),
    "to_bytes": (lambda text: units.to_bytes(text, units.GIB), _none_or(int)),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(text=TEXT)
def test_parser_returns_its_record_or_none_and_never_raises(name, text):
    parse, expected = PARSERS[name]
    assert expected(parse(text)), name


@FUZZ
@given(data=st.binary(max_size=64))
def test_sniff_any_bytes(data):
    found = magic.sniff(data)
    assert found is None or data.startswith(next(m for m, t in magic.MAGICS if t is found))
