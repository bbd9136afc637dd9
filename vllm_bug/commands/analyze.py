"""`vllm-bug analyze`: load the input, analyse it, render it in the asked format."""

from __future__ import annotations

from typing import Any

from vllm_bug.commands import Result
from vllm_bug.commands.output import destination, json_text, terminal_safe


def execute(
    input_path: str, fmt: str = "text", output: str | None = None, force: bool = False, explain: bool = False
) -> Result:
    from vllm_bug.analyzer.analyze import analyze_loaded
    from vllm_bug.analyzer.load import load_input

    target = destination(output, force, inputs=[] if input_path == "-" else [input_path])
    loaded = load_input(input_path)
    analysis = analyze_loaded(loaded)
    text = render(analysis, fmt, name=terminal_safe(loaded.name), explain=explain)
    return Result(text=text, destination=target, warnings=list(loaded.warnings))


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
