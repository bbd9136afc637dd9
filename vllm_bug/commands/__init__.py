"""The commands layer: one module per CLI command, each returning a Result that cli.py renders.

This is the only package that imports both halves (bundler and analyzer). Modules here keep their
heavy imports inside functions, so that `vllm-bug --help` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vllm_bug.commands.output import Destination
from vllm_bug.errors import EXIT_OK


@dataclass
class Result:
    """What a command has to show. cli.py renders it; nothing here prints the final output itself.

    text, or else document (rendered as JSON), goes to destination (standard output unless -o) or, with
    to_stderr, to standard error (`run` keeps the command's own stdout clean). warnings are printed on
    stderr as 'vllm-bug: warning: ...'; error, if set, as 'vllm-bug: error: ...' after the output.
    """

    text: str | None = None
    document: Any = None
    exit_code: int = EXIT_OK
    destination: Destination = field(default_factory=Destination)
    to_stderr: bool = False
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
