"""`vllm-bug analyze`: load the input, analyse it, render it in the asked format."""

from __future__ import annotations

import os
from typing import Any

from vllm_bug.commands import Result
from vllm_bug.commands.output import destination, json_text, terminal_safe


def execute(
    input_path: str, fmt: str = "text", output: str | None = None, force: bool = False, explain: bool = False
) -> Result:
    from vllm_bug.analyzer.analyze import analyze_loaded

    target = destination(output, force, inputs=[] if input_path == "-" else [input_path])
    loaded = load(input_path)
    analysis = analyze_loaded(loaded)
    text = render(analysis, fmt, name=terminal_safe(loaded.name), explain=explain)
    return Result(text=text, destination=target, warnings=list(loaded.warnings))


def load(source: str | os.PathLike[str] | bytes, name: str = "<bytes>") -> Any:
    """An analyzer.load.LoadedInput from a path ('-' is standard input) or from the input's bytes (called NAME
    in messages), recognised by its content and within the same size caps either way."""
    from vllm_bug.analyzer.load import load_data, load_input

    if isinstance(source, bytes):
        return load_data(source, name)
    return load_input(os.fspath(source))


def contract(loaded: Any) -> dict[str, Any]:
    """The `analyze --format json` document (DESIGN.md "Contracts") of a loaded input."""
    from vllm_bug.analyzer.analyze import analyze_loaded
    from vllm_bug.analyzer.jsonout import analysis_to_json

    return analysis_to_json(analyze_loaded(loaded))


def render(analysis: Any, fmt: str, name: str = "", explain: bool = False) -> str:
    """An Analysis as text, markdown or JSON (the contract in DESIGN.md)."""
    if fmt == "json":
        from vllm_bug.analyzer.jsonout import analysis_to_json

        return json_text(analysis_to_json(analysis))
    if fmt == "markdown":
        from vllm_bug.analyzer.render_markdown import render_markdown

        text = render_markdown(analysis, redactions=getattr(analysis.facts, "redactions", None) or None)
        return text if text.endswith("\n") else text + "\n"
    from vllm_bug.analyzer.render_text import render_text

    return render_text(analysis, name=name, explain=explain)
