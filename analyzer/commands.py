"""`vllm-bug analyze`: load the input, analyse it, render it, write it where asked."""

from __future__ import annotations

import json
import os
import sys

from vllm_bug.errors import EXIT_OK, VllmBugError


def analyze_command(input_path: str, fmt: str = "text", output: str | None = None, force: bool = False,
                    explain: bool = False) -> int:
    from vllm_bug.analyzer.analyze import analyze_loaded
    from vllm_bug.analyzer.load import load_input

    if output:
        _check_output(output, input_path, force)
    loaded = load_input(input_path)
    analysis = analyze_loaded(loaded)
    rendered = render(analysis, fmt, name=loaded.name, explain=explain)
    if output:
        write_output(output, rendered, force)
    else:
        sys.stdout.write(rendered)
        sys.stdout.flush()
    return EXIT_OK


def render(analysis, fmt: str, name: str = "", explain: bool = False) -> str:
    if fmt == "json":
        from vllm_bug.analyzer.jsonout import analysis_to_json

        return json.dumps(analysis_to_json(analysis), indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        try:
            from vllm_bug.analyzer.render_markdown import render_markdown
        except ImportError as exc:
            raise VllmBugError(f"Markdown reports are not available in this build ({exc}); use --format text or json")
        text = render_markdown(analysis, redactions=getattr(analysis.facts, "redactions", None) or None)
        return text if text.endswith("\n") else text + "\n"
    from vllm_bug.analyzer.render_text import render_text

    return render_text(analysis, name=name, explain=explain)


def _check_output(output: str, input_path: str, force: bool) -> None:
    if input_path != "-" and os.path.exists(output) and os.path.exists(input_path) \
            and os.path.samefile(output, input_path):
        raise VllmBugError(f"refusing to write the result over the input {input_path}")
    if os.path.isdir(output):
        raise VllmBugError(f"{output} is a directory; give a file name")
    if os.path.lexists(output) and not force:
        raise VllmBugError(f"{output} already exists; pass --force to overwrite it")


def write_output(output: str, text: str, force: bool) -> None:
    """Write atomically and never over an existing file without --force (the same writer as bundles)."""
    from vllm_bug.schema.bundle import write_bytes_exclusive

    write_bytes_exclusive(text.encode("utf-8"), output, force=force)
