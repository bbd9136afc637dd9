"""Facts from pasted text: a log, a GitHub issue body, collect_env / nvidia-smi / pip output.

`facts_from_text` cleans the text into lines, then the extractors of `facts_text` each read one
kind of fact, in an order that matters: what an earlier one found is not overwritten by a later,
vaguer one (collect_env's GPU list beats a GPU named in prose). `fill_from_lines` only fills what
is still unknown, so a bundle's measured facts always win over what its log text says.
"""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.facts_text import engine, environment, gpus, host, software
from vllm_bug.analyzer.involvement import has_vllm_log_header, has_vllm_process_tags
from vllm_bug.analyzer.logclean import clean_lines
from vllm_bug.analyzer.tracebacks import pick_root_cause
from vllm_bug.formats.collect_env import parse_collect_env
from vllm_bug.formats.issue_text import parse_title
from vllm_bug.formats.traceback import parse_tracebacks
from vllm_bug.schema.redact import Redactor, redacted_ends

MAX_TEXT_CHARS = 8 << 20  # beyond this, only the head and the tail are read
_HEAD_CHARS = 1 << 20
_CUT_NOTE = "[... cut by vllm-bug ...]"
_LONG_REPORT_LINES = 600  # beyond this, GPU names are looked for near the head, the tail and GPU talk only
_TITLE_SEARCH_LINES = 5


def facts_from_text(text: str) -> Facts:
    facts = Facts(input_kind="text")
    if len(text) > MAX_TEXT_CHARS:
        text = f"{text[:_HEAD_CHARS]}\n{_CUT_NOTE}\n{text[-(MAX_TEXT_CHARS - _HEAD_CHARS) :]}"
    lines = clean_lines(text)
    facts.lines = lines
    facts.vllm_process_tags = has_vllm_process_tags(text)
    facts.vllm_log_lines = has_vllm_log_header(text)
    title_index = _title_index(lines)
    if title_index is not None:
        facts.title = lines[title_index].strip()
    fill_from_lines(facts, lines, title_index)
    return facts


def redacted_part_read(text: str, redactor: Redactor) -> str:
    """The part of `text` that facts_from_text reads (past MAX_TEXT_CHARS, its head and tail), redacted:
    only that part is redacted, so a huge input costs what the part read costs. The parts and the note
    between them fit in MAX_TEXT_CHARS, so facts_from_text cuts nothing more (unless markers made them longer)."""
    tail = MAX_TEXT_CHARS - _HEAD_CHARS - len(_CUT_NOTE) - 2
    return redacted_ends(text, _HEAD_CHARS, tail, redactor, _CUT_NOTE)


def fill_from_lines(facts: Facts, lines: list[str], title_index: int | None = None) -> Facts:
    """Fill every still-unknown fact that the lines state."""
    blob = "\n".join(lines)
    software.apply_collect_env(facts, parse_collect_env(lines))
    software.packages_from_text(facts, blob)
    gpus.apply_nvidia_smi(facts, blob)
    software.versions_from_text(facts, blob)
    software.driver_from_text(facts, blob)
    gpus.gpus_from_prose(facts, gpus.gpu_window(lines) if len(lines) > _LONG_REPORT_LINES else blob)
    gpus.memory_totals(facts, blob)
    gpus.compute_capability(facts, blob)
    gpus.fill_gpu_specs(facts)
    environment.env_from_text(facts, blob)
    engine.engine_args_from_text(facts, lines, blob)
    engine.memory_numbers(facts, blob)
    host.xid_lines(facts, blob)
    host.host_hints(facts, blob)
    skip = frozenset([title_index]) if title_index is not None else frozenset()
    if not facts.tracebacks:
        facts.tracebacks = parse_tracebacks(lines, skip)
    if facts.root_cause is None:
        facts.root_cause = pick_root_cause(lines, facts.tracebacks, facts.title, title_index)
    return facts


def _title_index(lines: list[str]) -> int | None:
    """The index of an issue title among the first lines, when the first non-blank line is one."""
    for i, line in enumerate(lines[:_TITLE_SEARCH_LINES]):
        if not line.strip():
            continue
        return i if parse_title(line) is not None else None
    return None
