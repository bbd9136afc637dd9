"""Messages of the catalogue mined from the upstream sources (analyzer/data/catalogue/) that no hand-written rule
explains: the root cause says a message that vLLM, PyTorch or Triton raises, or a CUDA error, and the finding is the
category the catalogue gives it, with where the message is raised and which releases hold it.

Only the root cause counts: its own exception text, the lines of its traceback that continue the message (pydantic's
'Value error, ...' under 'ValidationError', NCCL's 'Last error:'), and the CUDA error a wrapper carried
(tracebacks.carried_by_nccl). A catalogue line elsewhere in the input is not a cause. The NCCL rows are left to the
NCCL rules: their result strings ('invalid argument', 'timeout') say nothing without NCCL's own context, and the CUDA
failure NCCL carries is diagnosed as that CUDA error. Generic CUDA errors (no category of their own) get a finding of
category other that names the error and how to find the failing kernel.

These findings are less confident than the hand-written ones, and rules.without_explained_catalogue drops them
when a hand-written finding explains the root cause, names the same category or quotes the same line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import CATEGORIES, Diagnosis
from vllm_bug.analyzer.knowledge import vt
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import clip, root_text, vllm_version
from vllm_bug.analyzer.signals import CatalogueRow, catalogue_row, cuda_error_by_message, is_catalogue_row, matched_text

IN_EXCEPTION = 0.8  # the root-cause exception's own text is the message
IN_TRACEBACK = 0.75  # a line continuing the root cause's message, or the CUDA error a wrapper carried
CONFIDENCE_NOTE = (
    "the root cause matches a message mined from the upstream sources; no hand-written rule reasons about it, so "
    "this finding ranks below theirs"
)
GENERIC = "generic"
NCCL_REPOSITORY = "NVIDIA/nccl"
TITLE_QUOTE_CHARS = 240
# A message with fewer fixed characters than this ('Unsupported type {}', 'Invalid device id') could come from any
# library: it counts only when a frame of the root cause lies in the package of the row's source.
SPECIFIC_CHARS = 40
PACKAGE_DIRS = {"vllm-project/vllm": "/vllm/", "triton-lang/triton": "/triton/", "pytorch/pytorch": "/torch/"}
COMPUTE_SANITIZER_ADVICE = (
    "run the failing step under compute-sanitizer (compute-sanitizer --tool memcheck python ...) to have the "
    "kernel and the access named; it is slow, so reproduce with one small request"
)

# What each category's message means, before the quoted message.
MEANING = {
    "engine_config": "vLLM refused its configuration",
    "no_kernel_image": "The GPU lacks the compute capability this needs",
    "kv_cache_insufficient": "Too little GPU memory is left for the KV cache",
    "cuda_not_available": "No GPU is usable through CUDA in this process",
    "cuda_version_mismatch": "The CUDA, torch and vLLM builds do not fit together",
    "driver_insufficient": "The NVIDIA driver is unusable or too old for this CUDA runtime",
    "triton_compile": "Triton could not compile or load a kernel",
    "cuda_graph": "CUDA graph capture or replay failed",
    "illegal_memory_access": "A GPU kernel accessed memory it may not",
    "device_side_assert": "A check inside a GPU kernel failed",
    "cuda_oom": "The GPU ran out of memory",
    "invalid_config_arg": "A CUDA call or kernel launch was given an invalid argument",
    "nccl": "Communication between GPUs failed",
}


def _engine_config_fixes(facts: Facts) -> list[str]:
    from vllm_bug.analyzer.rules.engine_config import refusal_fixes

    return refusal_fixes(facts)


def _capability_fixes(facts: Facts) -> list[str]:
    from vllm_bug.analyzer.rules.arch import feature_fixes

    return feature_fixes(facts)


def _kv_cache_fixes(facts: Facts) -> list[str]:
    from vllm_bug.analyzer.rules.helpers import memory_report
    from vllm_bug.analyzer.rules.kv_cache import kv_budget_fixes

    return kv_budget_fixes(facts, memory_report(facts))


def _availability_fixes(facts: Facts) -> list[str]:
    from vllm_bug.analyzer.rules.availability import container_fixes
    from vllm_bug.analyzer.rules.helpers import vllm_or_not

    return [
        "check that nvidia-smi lists the GPU in the same environment that runs "
        + vllm_or_not(facts, "vLLM", "the program"),
        *container_fixes(facts),
    ]


def _driver_fixes(facts: Facts) -> list[str]:
    from vllm_bug.analyzer.rules.driver import driver_upgrade_fix

    return [driver_upgrade_fix(facts)]


def _compile_fixes(facts: Facts) -> list[str]:
    from vllm_bug.analyzer.rules.indirect import compile_fixes

    return compile_fixes(facts)


def _graph_fixes(facts: Facts) -> list[str]:
    from vllm_bug.analyzer.rules.cuda_graph import graph_fixes

    return graph_fixes(facts)


def _kernel_fixes(facts: Facts) -> list[str]:
    from vllm_bug.analyzer.rules.runtime_errors import debug_fixes

    return [*debug_fixes(facts), COMPUTE_SANITIZER_ADVICE]


def _cuda_error_fixes(facts: Facts) -> list[str]:
    from vllm_bug.analyzer.rules.runtime_errors import XID_ADVICE

    return [*_kernel_fixes(facts), XID_ADVICE]


def _oom_fixes(facts: Facts) -> list[str]:
    from vllm_bug.analyzer.rules.memory import context_fixes

    return context_fixes(facts)


def _nccl_fixes(facts: Facts) -> list[str]:
    from vllm_bug.analyzer.rules.nccl import NCCL_DEBUG_ADVICE

    return [NCCL_DEBUG_ADVICE]


def _versions_fixes(facts: Facts) -> list[str]:
    from vllm_bug.analyzer.rules.helpers import vllm_or_not
    from vllm_bug.analyzer.rules.versions import torch_reinstall_fix

    return [
        vllm_or_not(
            facts,
            torch_reinstall_fix(facts),
            "install torch and its CUDA libraries from one index (pytorch.org's command for your CUDA version)",
        )
    ]


# Category-level advice, each from the family that owns it.
ADVICE: dict[str, Callable[[Facts], list[str]]] = {
    "engine_config": _engine_config_fixes,
    "no_kernel_image": _capability_fixes,
    "kv_cache_insufficient": _kv_cache_fixes,
    "cuda_not_available": _availability_fixes,
    "cuda_version_mismatch": _versions_fixes,
    "driver_insufficient": _driver_fixes,
    "triton_compile": _compile_fixes,
    "cuda_graph": _graph_fixes,
    "illegal_memory_access": _kernel_fixes,
    "device_side_assert": _kernel_fixes,
    "invalid_config_arg": _kernel_fixes,
    "cuda_oom": _oom_fixes,
    "nccl": _nccl_fixes,
}

# The version the facts state for the layer whose sources a row was read from.
LAYERS: dict[str, tuple[str, Callable[[Facts], str | None]]] = {
    "vllm-project/vllm": ("vLLM", vllm_version),
    "pytorch/pytorch": ("torch", lambda facts: facts.torch_version or facts.package("torch")),
    "triton-lang/triton": ("Triton", lambda facts: facts.package("triton")),
}


class RootMessage(NamedTuple):
    """A catalogue row the root cause says, the line that says it, and how directly."""

    row: CatalogueRow
    line: str
    confidence: float


def _serves(row: CatalogueRow) -> bool:
    """Whether a row may be a finding: a category of its own, or a CUDA error (NCCL's rows are the NCCL rules', and
    messages vLLM only logs are the warnings rules')."""
    if row.repository == NCCL_REPOSITORY or row.level is not None:
        return False
    if row.category == GENERIC:
        return bool(row.name and row.name.startswith("cudaError"))
    return row.category in CATEGORIES


def _specific(row: CatalogueRow) -> bool:
    """Whether the message's fixed text is long enough to name its source alone (a CUDA error's wrapper does)."""
    return row.name is not None or len(row.template.replace("{}", "").strip()) >= SPECIFIC_CHARS


def _raised_in_package(facts: Facts, row: CatalogueRow) -> bool:
    """Whether a frame of the root cause lies in the package the row was read from."""
    package = PACKAGE_DIRS.get(row.repository)
    rc = facts.root_cause
    if package is None or rc is None:
        return False
    return any(package in "/" + frame.path.replace("\\", "/") for frame in rc.frames)


def root_messages(facts: Facts) -> list[RootMessage]:
    """The catalogue rows the root cause says, most direct first, then the longest (most specific) message."""
    found = facts.signals
    rc = facts.root_cause
    if found is None or rc is None:
        return []
    ids = {signal_id for signal_id in found.in_root | found.in_root_text if is_catalogue_row(signal_id)}
    out: list[RootMessage] = []
    for signal_id in sorted(ids):
        row = catalogue_row(signal_id)
        if not _serves(row) or not (_specific(row) or _raised_in_package(facts, row)):
            continue
        direct = signal_id in found.in_root
        out.append(RootMessage(row, _quoted_line(facts, signal_id, direct), IN_EXCEPTION if direct else IN_TRACEBACK))
    carried = _carried_cuda_error(facts)
    if carried is not None and all(seen.row.id != carried.row.id for seen in out):
        out.append(carried)
    return sorted(_without_prefixes(out), key=lambda seen: (-seen.confidence, -len(_quoted(seen))))


def _quoted_line(facts: Facts, signal_id: str, direct: bool) -> str:
    """The input line to quote: for the exception's own text, an input line holding the line of that text that
    says the message (not the source line that raised it, which the traceback shows too); else the first input
    line that matched."""
    assert facts.signals is not None
    hits = facts.signals.all(signal_id)
    if not direct:
        return hits[0].line if hits else clip(root_text(facts))
    said = [line.strip() for line in root_text(facts).splitlines() if matched_text(signal_id, line)]
    for line in said:
        found = next((hit.line for hit in hits if line in hit.line), None)
        if found is not None:
            return found
    return clip(said[0] if said else root_text(facts).split("\n", 1)[0])


def _quoted(seen: RootMessage) -> str:
    return matched_text(seen.row.id, seen.line) or ""


def _without_prefixes(found: list[RootMessage]) -> list[RootMessage]:
    """Less the rows whose match is part of a longer row's match on the same line: 'CUDA error: operation not
    permitted' (cudaErrorNotPermitted) inside '... operation not permitted when stream is capturing'."""
    quoted = [(seen, _quoted(seen)) for seen in found]
    return [
        seen
        for seen, text in quoted
        if not any(
            other is not seen and other.line == seen.line and len(longer) > len(text) and text in longer
            for other, longer in quoted
        )
    ]


def _carried_cuda_error(facts: Facts) -> RootMessage | None:
    """The CUDA error a wrapper carried ('Cuda failure' from NCCL), which the root cause names by its message."""
    rc = facts.root_cause
    if rc is None or rc.carried_by is None:
        return None
    row_id = cuda_error_by_message().get(rc.message.strip().lower())
    row = catalogue_row(row_id) if row_id else None
    if row is None or not _serves(row):
        return None
    assert facts.signals is not None
    hit = facts.signals.first(row.id)
    return RootMessage(row, hit.line if hit else clip(root_text(facts)), IN_TRACEBACK)


def releases_text(row: CatalogueRow) -> str:
    """'v0.8.0 to v0.33.0' (spans joined by commas) for the releases whose sources hold the row."""
    return ", ".join(first if first == last else f"{first} to {last}" for first, last in row.present)


def outside_releases(row: CatalogueRow, stated: str | None) -> bool:
    """Whether a stated version lies outside every span of releases holding the row, as far as the mined releases
    tell: a version older than the oldest mined release, or one no mined release bounds, is not called outside."""
    version = vt(stated)
    order = [vt(release) for release in row.releases]
    if version is None or not order or any(v is None for v in order):
        return False
    oldest = order[0]
    assert oldest is not None
    if version < oldest:
        return False
    for first, last in row.present:
        start, end = vt(first), row.releases.index(last) if last in row.releases else None
        if start is None or end is None:
            return False
        after = order[end + 1] if end + 1 < len(order) else None
        if start <= version and (after is None or version < after):
            return False
    return True


def version_note(facts: Facts, row: CatalogueRow) -> str | None:
    """Advice when the report states a version of the row's layer that the row's releases do not include."""
    layer = LAYERS.get(row.repository)
    if layer is None:
        return None
    name, stated_by = layer
    stated = stated_by(facts)
    if not stated or not outside_releases(row, stated):
        return None
    return (
        f"the report states {name} {stated}, but of the releases mined only {releases_text(row)} raise this "
        f"message: check which {name} the failing process really imports (several installs, or a patch release "
        "that changed the message)"
    )


def _title(row: CatalogueRow, line: str) -> str:
    if row.category == GENERIC:
        number = f"error {row.number}: " if row.number is not None else ""
        return f"CUDA reported {row.name} ({number}'{row.description}'), an error with many possible causes."
    quoted = matched_text(row.id, line) or row.template
    if len(quoted) > TITLE_QUOTE_CHARS:
        quoted = quoted[: TITLE_QUOTE_CHARS - 3] + "..."
    return f"{MEANING[row.category]}: '{quoted}'" + ("" if quoted.endswith((".", "!", "?")) else ".")


def _details(row: CatalogueRow, facts: Facts, note: str | None) -> dict:
    source: dict[str, str | int] = {
        "row": row.id,
        "repository": row.repository,
        "path": row.path,
        "releases": releases_text(row),
    }
    if row.line is not None:
        source["line"] = row.line
    if row.exception:
        source["exception"] = row.exception
    if row.name:
        source["name"] = row.name
    if note:
        source["version_note"] = note
    return {"catalogue": source, "confidence_basis": CONFIDENCE_NOTE}


def diagnose(facts: Facts, category: str) -> Diagnosis | None:
    """The finding for the most direct root-cause message of the category (generic CUDA errors for 'other')."""
    wanted = GENERIC if category == "other" else category
    seen = next((m for m in root_messages(facts) if m.row.category == wanted), None)
    if seen is None:
        return None
    row = seen.row
    note = version_note(facts, row)
    fixes = _cuda_error_fixes(facts) if row.category == GENERIC else ADVICE[row.category](facts)
    return Diagnosis(
        seen.confidence,
        _title(row, seen.line),
        evidence=[seen.line],
        fixes=([note] if note else []) + fixes,
        details=_details(row, facts, note),
    )


def _register(category: str) -> None:
    key = "CATALOGUE_CUDA_ERROR" if category == "other" else f"CATALOGUE_{category.upper()}"

    def catalogue_rule(facts: Facts) -> Diagnosis | None:
        return diagnose(facts, category)

    catalogue_rule.__name__ = key.lower()
    catalogue_rule.__doc__ = f"A root-cause message the catalogue files under {category}."
    rule(key, category=category)(catalogue_rule)


for _category in (*ADVICE, "other"):
    _register(_category)
