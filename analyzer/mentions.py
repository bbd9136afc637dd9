"""Engine arguments and environment assignments that pasted text mentions, read once per input.

A report often carries the command that failed (`vllm serve M --max-model-len 8192`, `LLM(model=...,
max_model_len=8192)`, `CUDA_VISIBLE_DEVICES=1 python ...`) without vLLM's own `non-default args`
line. These maps hold the first value each name is given: the launch command is read before the
input's lines, and within one text a `--flag value` before a `name=value` keyword. Rules look names
up (rules.helpers.engine_arg / env_value / flag_in_text); they never search the text themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vllm_bug.formats.lazyre import lazy_compile

if TYPE_CHECKING:
    from vllm_bug.analyzer.facts import Facts

MAX_NAMES = 4096  # beyond this many distinct names, a text is not a command line: later ones are ignored
_VALUE = r"""([^\s\\'"]+|'[^']*'|"[^"]*")"""
# lookaheads keep the value unconsumed, so "--a --b 1" still yields --b
_FLAG = lazy_compile(r"(?<![\w-])--([A-Za-z0-9][\w-]{0,80})(?=(?:\s*=\s*|\s+)" + _VALUE + ")")
_FLAG_NAME = lazy_compile(r"(?<![\w-])--([A-Za-z0-9][\w-]{0,80})(?![\w-])")
# `name = value` (a name starting a word, whatever the value); its value as an environment variable, and
# as a keyword argument where it starts with a word character, a dot or a dash (_KEYWORD_VALUE)
_ASSIGNMENT = lazy_compile(r"""(?<![\w])([A-Za-z_]\w{0,80})(?=\s*=\s*("[^"]*"|'[^']*'|[^\s"']*))""")
_KEYWORD_VALUE = lazy_compile(r"[\w.\-]+")


@dataclass
class Mentions:
    args: dict[str, str] = field(default_factory=dict)  # snake_case name -> first value given
    flag_lines: dict[str, str] = field(default_factory=dict)  # lower snake_case name -> first line passing --name
    env: dict[str, str] = field(default_factory=dict)  # NAME -> first value assigned in a line


def snake(name: str) -> str:
    return name.lstrip("-").replace("-", "_")


def read_mentions(facts: Facts) -> Mentions:
    """Every `--flag value`, `name=value` and `NAME=value` of the launch command and the input's lines."""
    from vllm_bug.analyzer.search import searchable

    found = Mentions()
    if facts.launch_command:
        _read_args(found, facts.launch_command, with_env=False)
    for line in facts.lines:
        if "=" in line or "--" in line:
            _read_args(found, line, with_env=True)
    for line in searchable(facts).text.split("\n"):
        if "--" in line:
            _read_flag_lines(found, line)
    return found


def _read_args(found: Mentions, text: str, with_env: bool) -> None:
    """The text's `--flag value`s, then its `name=value`s, as arguments; `with_env`: its `NAME=value`s
    as variables too."""
    given: dict[str, str] = {}
    if "--" in text:
        for match in _FLAG.finditer(text):
            given.setdefault(snake(match.group(1)), match.group(2).strip("'\""))
    if "=" in text:
        for match in _ASSIGNMENT.finditer(text):  # one pass for both readings of `name=value`
            name = match.group(1)
            if with_env and name not in found.env and len(found.env) < MAX_NAMES:
                found.env[name] = match.group(2).strip("'\"")
            keyword = _KEYWORD_VALUE.match(text, match.start(2))
            if keyword is not None:
                given.setdefault(name, keyword.group(0))
    for name, value in given.items():
        if name not in found.args and len(found.args) < MAX_NAMES:
            found.args[name] = value


def _read_flag_lines(found: Mentions, line: str) -> None:
    for match in _FLAG_NAME.finditer(line):
        name = snake(match.group(1)).lower()
        if name not in found.flag_lines and len(found.flag_lines) < MAX_NAMES:
            found.flag_lines[name] = line.strip()
