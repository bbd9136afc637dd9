"""The Python API: `vllm_bug.analyze()` and `vllm_bug.collect()`, the library face of the commands.

They do what `vllm-bug analyze --format json` and `vllm-bug collect` do, through the same code
(vllm_bug.commands), and never print or exit: a problem raises a VllmBugError subclass from
vllm_bug.errors whose `exit_code` is the one the command line would exit with, and what the command
line prints as a warning is issued as a VllmBugWarning (see the `warnings` module).
Messages name the command line's options (`--log`, `--python`, ...) that the keyword arguments mirror.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vllm_bug.errors import UsageProblem, VllmBugWarning

if TYPE_CHECKING:
    from vllm_bug.commands.report_files import BundleFiles


def analyze(source: str | os.PathLike[str] | bytes | None = None, *, text: str | None = None) -> dict[str, Any]:
    """Diagnose one input offline, as `vllm-bug analyze INPUT --format json` does.

    Give either SOURCE or TEXT:
      - source: a path (str or os.PathLike; "-" reads standard input) of a bundle (.zst), collect's .zip or
        .md, or any text file; or the input's bytes. Either way it is recognised by its content.
      - text: the text itself: a log, a pasted GitHub issue, collect_env output.

    Returns the document of DESIGN.md "Contracts": {"schema_version", "input": {"kind", "sha256"},
    "signature", "diagnoses": [{"rule", "category", "confidence", "title", "evidence", "fixes"}, ...],
    "facts"}; diagnoses are ordered most likely first, and none means no known problem was found.

    Raises UnreadableInput (exit_code 3) for an input that is not a readable bundle or text,
    UnsafeInput (4) for one refused as unsafe (over 32 MiB, a decompression bomb, nested too deep),
    and UsageProblem (2) when both or neither of SOURCE and TEXT are given.
    """
    from vllm_bug.commands.analyze import contract, load

    if (source is None) == (text is None):
        raise UsageProblem("analyze(): give either source (a path or bytes) or text=, not both or neither")
    if text is not None:
        if not isinstance(text, str):
            raise UsageProblem(f"analyze(): text must be a str, not {type(text).__name__}")
        loaded = load(text.encode("utf-8", "replace"), "<text>")
    elif isinstance(source, (bytes, bytearray, memoryview)):
        loaded = load(bytes(source), "<bytes>")
    elif isinstance(source, (str, os.PathLike)):
        loaded = load(source)
    else:
        raise UsageProblem(f"analyze(): source must be a path or bytes, not {type(source).__name__}")
    _warn(loaded.warnings)
    return contract(loaded)


@dataclass(frozen=True)
class Collected:
    """What `collect()` made.

    document: the bundle document (the envelope, with the redacted payload), as validated and written.
    files: where it was written, or None with write=False. Its attributes are Paths: bundle (.zst),
      report (.md, the whole issue body), archive (.zip, to attach), environment and describe (the two
      .md parts, one for each text field of vLLM's bug form).
    next_steps: what to do with the report (the bug form's link, a `gh issue create` command), as
      `vllm-bug collect` prints them.
    warnings: everything also issued as a VllmBugWarning (a name taken meanwhile, a report that could not
      be made, torch or vLLM missing from the inspected interpreter, ...).
    """

    document: dict[str, Any]
    files: BundleFiles | None = None
    next_steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def payload(self) -> dict[str, Any]:
        """The bundle's facts about this machine and the failed run (document["payload"])."""
        payload: dict[str, Any] = self.document["payload"]
        return payload


def collect(
    *,
    log: str | os.PathLike[str] | None = None,
    log_text: str | None = None,
    python: str | os.PathLike[str] | None = None,
    model: str | None = None,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    timeout: float = 60.0,
    write: bool = True,
) -> Collected:
    """Collect a redacted, schema-validated bundle about this machine, as `vllm-bug collect` does.

    Keyword arguments mirror collect's options:
      - log: the failed run's log file (--log; "-" reads standard input), or log_text: the log itself.
      - python: the interpreter, or environment folder, whose torch and vLLM to inspect (--python);
        by default the one `vllm-bug collect` would choose.
      - model: the model whose config.json to summarise (--model; by default found in the log).
      - output: the bundle's path (-o; default vllm-bug-<time>.zst in the current folder); the report
        files and the .zip are written beside it. force: overwrite them if they exist (--force).
      - timeout: bound in seconds on the whole collection, 1 to 3600 (--timeout).
      - write: False collects without writing any file (Collected.files is then None).

    Nothing is printed. Raises UsageProblem (exit_code 2) for a bad argument or interpreter,
    UnreadableInput (3) for an unusable log, VllmBugError (1) when the files cannot be written (one
    exists without force, the folder is missing, ...); KeyboardInterrupt leaves no file half-written.
    """
    from vllm_bug.commands.collect import collect_document, collect_options
    from vllm_bug.commands.report_files import plan_names, write_bundle_files
    from vllm_bug.commands.summary import python_warnings

    if log is not None and log_text is not None:
        raise UsageProblem("collect(): give log (a path) or log_text, not both")
    if log_text is not None and not isinstance(log_text, str):
        raise UsageProblem(f"collect(): log_text must be a str, not {type(log_text).__name__}")
    names = plan_names(_path_or_none(output, "output"), force) if write else None
    options = collect_options(
        log_path=_path_or_none(log, "log"),
        log_text=log_text,
        timeout_s=_seconds(timeout),
        python_exe=_path_or_none(python, "python"),
        model=model,
    )
    document = collect_document(options)
    notes: list[str] = []
    files: BundleFiles | None = None
    steps: list[str] = []
    if names is not None:
        written = write_bundle_files(document, names, force, take_another=False)
        files, steps, notes = written.files, written.steps, written.notes
    found = notes + python_warnings(document["payload"])
    _warn(found)
    return Collected(document=document, files=files, next_steps=steps, warnings=found)


def _path_or_none(value: str | os.PathLike[str] | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise UsageProblem(f"collect(): {what} must be a path, not {type(value).__name__}")
    return os.fspath(value)


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageProblem(f"collect(): timeout must be a number of seconds, not {type(value).__name__}")
    return float(value)


def _warn(messages: Iterable[str]) -> None:
    for message in messages:
        warnings.warn(message, VllmBugWarning, stacklevel=3)


__all__ = ["Collected", "analyze", "collect"]
