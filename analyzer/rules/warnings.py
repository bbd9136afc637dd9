"""vLLM's own WARNING and INFO lines as evidence: the rows of analyzer/data/catalogue/vllm_warnings.json (mined from
vLLM's logger calls by tools/mine_catalogue.py), each with the category of failure it bears on and a role.

- Any such line seen supports a finding of its category: the finding gains "vLLM warned earlier: <line>".
- A warning whose role is "explains" is also a finding of its own, the inferred cause, when the run failed: less
  confident than any finding on an error message, and it says that it rests on vLLM's log, so it decides the
  category only when the error line is missing, no rule knows it, or it is of no category (ahead_of_generic).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis, Finding
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import cc_text, evidence, min_cc, vllm_version
from vllm_bug.analyzer.rules.indirect import VLLM_LOG, error_line_missing, indirect
from vllm_bug.analyzer.signals import read_table_file

WARNED = "vLLM warned earlier: "
LOGGED = "vLLM logged earlier: "  # an INFO line
MAX_SUPPORT_LINES = 2
MAX_ERROR_LINES = 5
# with no error line: below the stack frames and vLLM's progress lines (rules/indirect.py), above the reporter's
# words; with an error line that no rule recognised, below the facts' hints (helpers.HINT) and the reporter's words
CAUSE_CONFIDENCE = 0.52
CAUSE_WITH_ERROR_LINE = 0.45


class Warned(NamedTuple):
    row_id: str
    category: str
    topic: str
    role: str
    lines: tuple[str, ...]
    level: str = "warning"

    def quoted(self) -> list[str]:
        """The lines as evidence, saying they are vLLM's own."""
        return [(WARNED if self.level == "warning" else LOGGED) + line for line in self.lines]


class WarningRow(NamedTuple):
    category: str
    topic: str
    role: str
    level: str
    # the end of a one-line message whose regex (its first 160 literal characters) stops before it: a line that a
    # message vLLM raises also matched is that message unless it ends so (vLLM warns 'User-specified max_model_len
    # ... Make sure the value is correct' where it otherwise raises the same words ending 'To allow overriding')
    ending: str | None


MIN_ENDING = 16
ROW_PREFIXES = ("VLLM_WARN_", "VLLM_INFO_")  # the ids tools/mine_catalogue.py gives the rows of vllm_warnings.json


@lru_cache(maxsize=1)
def warning_rows() -> dict[str, WarningRow]:
    """Every mined vLLM log line, by row id."""
    rows = read_table_file("catalogue", "vllm_warnings", "rows")
    return {
        row_id: WarningRow(row["category"], row["topic"], row["role"], row["level"], _ending(row["template"]))
        for row_id, row in rows.items()
    }


def _ending(template: str) -> str | None:
    if "\n" in template:
        return None  # only the first line is matched
    ending = template.rsplit("{}", 1)[-1].strip()[-60:].strip()
    return ending if len(ending) >= MIN_ENDING else None


def warnings_seen(facts: Facts) -> list[Warned]:
    """The mined vLLM log lines the input holds, in the table's order."""
    if facts.signals is None or not any(
        i.startswith(ROW_PREFIXES) for i in (*facts.signals.hits, *facts.signals.in_root)
    ):
        return []  # no mined log line in the input: the table is not even read
    raised = _raised_lines(facts)
    out = []
    for row_id, row in warning_rows().items():
        if facts.signals.seen(row_id):
            said = facts.signals.lines(row_id, limit=MAX_SUPPORT_LINES)
            lines = tuple(line for line in said if line not in raised or _ends_as(line, row.ending))
            if lines:
                out.append(Warned(row_id, row.category, row.topic, row.role, lines, row.level))
    return out


RAISED_ROWS = ("VLLM_CFG_", "VLLM_CAP_")  # the catalogue's rows of messages vLLM raises (vllm_messages.json)


def _raised_lines(facts: Facts) -> set[str]:
    """The input lines that a message vLLM raises matched."""
    assert facts.signals is not None
    ids = [signal_id for signal_id in facts.signals.hits if signal_id.startswith(RAISED_ROWS)]
    return set(facts.signals.lines(*ids, limit=len(ids) * MAX_SUPPORT_LINES)) if ids else set()


def _ends_as(line: str, ending: str | None) -> bool:
    """Whether the line can be the whole message: it holds the message's ending, or was clipped before it."""
    return ending is None or ending.lower() in line.lower() or line.endswith("...")


def with_warnings(findings: list[Finding], facts: Facts) -> list[Finding]:
    """Each finding with the vLLM log lines of its category added to its evidence (the finding made from those
    lines already quotes them)."""
    seen = warnings_seen(facts)
    if not seen:
        return findings
    for finding in findings:
        if finding.rule in RULE_KEYS:
            continue
        extra = [
            (said, line)
            for warned in seen
            if warned.category == finding.category
            for said, line in zip(warned.quoted(), warned.lines, strict=True)
        ]
        added = [said for said, line in dict(extra).items() if not _quoted(line, finding.evidence)]
        finding.evidence.extend(added[:MAX_SUPPORT_LINES])
    return findings


def ahead_of_generic(findings: list[Finding]) -> list[Finding]:
    """Ranked findings, with the cause a warning explains first when the first one is of no category ('other': a
    generic error such as an unspecified launch failure, or only a wrapper): the error line is then generic, and
    the warning says more."""
    if not findings or findings[0].category != "other":
        return findings
    inferred = next((f for f in findings if f.rule in RULE_KEYS), None)
    if inferred is None:
        return findings
    return [inferred, *(f for f in findings if f is not inferred)]


def warned_lines(facts: Facts, topic: str) -> set[str]:
    """The lines of the input that the mined vLLM log lines of a topic matched."""
    return {line for warned in warnings_seen(facts) if warned.topic == topic for line in warned.lines}


def _quoted(line: str, evidence_lines: list[str]) -> bool:
    """Whether the finding already quotes the line (or the line is an evidence line with more around it, such as
    an issue title repeating the message)."""
    return any(quoted and (line in quoted or quoted in line) for quoted in evidence_lines)


# -- the inferred cause ------------------------------------------------------------------------------------------
Cause = tuple[str, list[str]]  # what the warning says went wrong, and the fixes


def _compiled_ops_not_loaded(facts: Facts) -> Cause:
    version = vllm_version(facts)
    return (
        "vLLM's compiled operations (vllm._C) failed to load: the vLLM build does not match the installed torch or "
        "CUDA, and calls into its kernels fail",
        [
            "the ImportError in the warning names the library or symbol that is missing",
            "install the vLLM wheel built for your torch and CUDA: `pip install vllm"
            + (f"=={version}" if version else "")
            + "` in a fresh environment installs the torch it was built against",
        ],
    )


def _no_gpu_platform(facts: Facts) -> Cause:
    return (
        "vLLM found no usable CUDA platform, so it ran without a GPU",
        [
            "check that `nvidia-smi` lists the GPU and that CUDA_VISIBLE_DEVICES names it",
            "check that torch is a CUDA build: `python -c 'import torch; print(torch.cuda.is_available())'`",
        ],
    )


def _long_max_model_len(facts: Facts) -> Cause:
    return (
        "max_model_len was set above the model's own limit (VLLM_ALLOW_LONG_MAX_MODEL_LEN allowed it), and "
        "positions past that limit index outside the model's tables on the GPU",
        [
            "set --max-model-len at or below the model's max_position_embeddings",
            "for a longer context configure the model's rope scaling (--hf-overrides) rather than "
            "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1",
        ],
    )


def _memory_headroom(facts: Facts) -> Cause:
    return (
        "part of the GPU memory vLLM uses was left out of its budget, as vLLM warned",
        [
            "lower --gpu-memory-utilization (e.g. by 0.05) or add --enforce-eager",
            "leave CUDA graph memory profiling on (unset VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS)",
        ],
    )


def _oom_risk(facts: Facts) -> Cause:
    return (
        "vLLM had warned that this configuration might run out of GPU memory (a long context, or a kernel "
        "autotuner's first run)",
        [
            "follow the warning's advice: a smaller --max-model-len, or lower --gpu-memory-utilization so that what "
            "vLLM does not budget for still fits",
        ],
    )


def _gpu_capability(facts: Facts) -> Cause:
    lowest = min_cc(facts)
    gpu = f" ({lowest[0]}, compute capability {cc_text(lowest[1])})" if lowest else ""
    return (
        f"the GPU{gpu} lacks a capability that the model's kernels use, as vLLM warned",
        [
            "choose a dtype, quantization or attention backend that the GPU's compute capability supports, or run "
            "on a newer GPU"
        ],
    )


# topic -> (rule key, category, cause); the category is the one the mined rows of the topic carry
CAUSES: dict[str, tuple[str, str, Callable[[Facts], Cause]]] = {
    "compiled_ops_not_loaded": ("WARNED_COMPILED_OPS_NOT_LOADED", "cuda_version_mismatch", _compiled_ops_not_loaded),
    "no_gpu_platform": ("WARNED_NO_GPU_PLATFORM", "cuda_not_available", _no_gpu_platform),
    "long_max_model_len_allowed": ("WARNED_LONG_MAX_MODEL_LEN", "device_side_assert", _long_max_model_len),
    "memory_headroom": ("WARNED_MEMORY_HEADROOM", "cuda_oom", _memory_headroom),
    "oom_risk": ("WARNED_OOM_RISK", "cuda_oom", _oom_risk),
    "gpu_capability": ("WARNED_GPU_CAPABILITY", "no_kernel_image", _gpu_capability),
}
RULE_KEYS = frozenset(key for key, _, _ in CAUSES.values())


def _failed(facts: Facts, warned_lines: list[str]) -> bool:
    """Whether something other than the warning itself says the run failed (a warning that quotes an exception,
    as 'Failed to import from vllm._C with OSError(...)' does, can be read as an error line)."""

    def other(line: str) -> bool:
        return not any(line in warned or warned in line for warned in warned_lines)

    root = facts.root_cause
    if root is not None and other(root.text.strip().splitlines()[-1] if root.text.strip() else root.message):
        return True
    return any(other(line) for line in evidence(facts, "ANY_ERROR_WORD", limit=MAX_ERROR_LINES))


def inferred_cause(topic: str, facts: Facts) -> Diagnosis | None:
    """The finding a warning of the topic makes when the run failed after it (None when it was not seen)."""
    warned = [w for w in warnings_seen(facts) if w.topic == topic and w.role == "explains"]
    lines = [line for w in warned for line in w.lines]
    if not warned or not _failed(facts, lines):
        return None
    says, fixes = CAUSES[topic][2](facts)
    return indirect(
        VLLM_LOG,
        CAUSE_CONFIDENCE if error_line_missing(facts) else CAUSE_WITH_ERROR_LINE,
        f"The run most likely failed because {says} (inferred from vLLM's own log before the failure; no "
        "recognised error message says so).",
        [said for w in warned for said in w.quoted()][:MAX_SUPPORT_LINES],
        fixes,
    )


def _register(topic: str, key: str, category: str) -> None:
    rule(key, category=category)(lambda facts: inferred_cause(topic, facts))


for _topic, (_key, _category, _) in CAUSES.items():
    _register(_topic, _key, _category)
