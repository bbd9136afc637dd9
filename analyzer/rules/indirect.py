"""Evidence beyond the error line: the layer a traceback stopped in, what vLLM's own log says it was doing, and what
the reporter says works. Each finding says that its evidence is indirect and is less confident than any finding
built on an error message, so it decides the category only when no message was recognised.

When several layers show in the frames, the innermost one is the likelier cause: a Triton kernel compiled during
graph capture failed to compile, and a collective run during capture failed in NCCL. The confidences keep that
order: compiler, then collective, then graph capture.
"""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.knowledge import TORCH_COMPILE_OFF_ADVICE, compile_off_advice
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.cuda_graph import graph_fixes
from vllm_bug.analyzer.rules.helpers import (
    evidence,
    has,
    lines_naming,
    root_frames_match,
    vllm_only,
    vllm_or_not,
    vllm_version,
)
from vllm_bug.analyzer.rules.nccl import NCCL_DEBUG_ADVICE

# an error line that only an issue title or prose gave (tracebacks.pseudo_root_cause), or none at all
UNTYPED_ROOTS = ("", "Error")
FROM_FRAMES = "inferred from the stack frames"
MISSING_LINE = "; the traceback's final error line is not in the input"
ASK_FOR_THE_ERROR = (
    "include the traceback's last lines (the exception type and message under the frames): the error itself "
    "names what failed"
)
COMPILER_FRAMES_CONFIDENCE = 0.62
COLLECTIVE_FRAMES_CONFIDENCE = 0.6
CAPTURE_FRAMES_CONFIDENCE = 0.58
TYPED_ROOT_DISCOUNT = 0.07  # a typed error raised inside the layer: the message may say more than the frames
PROGRESS_CONFIDENCE = 0.55
# the reporter's words: below any other evidence; torch.compile named or turned off is more specific than
# --enforce-eager, which turns off CUDA graphs (and, on V1, compilation too)
COMPILE_OFF_WORKS_CONFIDENCE = 0.49
COMPILE_NAMED_CONFIDENCE = 0.48
GRAPH_NAMED_CONFIDENCE = 0.47
EAGER_WORKS_CONFIDENCE = 0.46


FRAMES, VLLM_LOG, REPORTER = "stack frames", "vLLM's log", "the reporter's words"


def indirect(evidence_kind: str, confidence: float, title: str, evidence: list[str], fixes: list[str]) -> Diagnosis:
    """A Diagnosis that says what indirect evidence it rests on (details["indirect"]; rules.rank_findings reads it)."""
    return Diagnosis(confidence, title, evidence=evidence, fixes=fixes, details={"indirect": evidence_kind})


def error_line_missing(facts: Facts) -> bool:
    """Whether no error line was found: no root cause, or one made from a title or prose (not an error a wrapper
    quoted)."""
    root = facts.root_cause
    return root is None or (root.exc_type in UNTYPED_ROOTS and root.carried_by is None)


def _layer(facts: Facts, signal_id: str, confidence: float) -> tuple[float, str, list[str]] | None:
    """(confidence, title note, evidence) when a traceback stopped in the layer the frames signal names and no
    error line says more; None otherwise."""
    assert facts.signals is not None
    missing = error_line_missing(facts)
    if not (missing or root_frames_match(facts, signal_id)):
        return None
    path = facts.signals.frame_path(signal_id)
    quoted = lines_naming(facts, path, limit=1) if path else []
    if missing:
        return confidence, f" ({FROM_FRAMES}{MISSING_LINE})", quoted
    return confidence - TYPED_ROOT_DISCOUNT, f" ({FROM_FRAMES}: the error was raised there)", quoted


def compile_fixes(facts: Facts) -> list[str]:
    """How to confirm and get around a Triton or torch.compile failure."""
    triton = facts.package("triton")
    torch = facts.torch_version or facts.package("torch")
    return [
        vllm_or_not(
            facts,
            f"confirm by turning compilation off: {compile_off_advice(vllm_version(facts))}",
            TORCH_COMPILE_OFF_ADVICE,
        ),
        vllm_or_not(
            facts,
            "clear the compile caches (~/.triton/cache and ~/.cache/vllm/torch_compile_cache): caches left by "
            "another vLLM, torch or Triton version fail like this",
            "clear Triton's cache (~/.triton/cache): caches left by another torch or Triton version fail like this",
        ),
        "install the triton version torch pins"
        + (f" (you have triton {triton} with torch {torch})" if triton and torch else ""),
    ]


def _graph_fixes(facts: Facts) -> list[str]:
    return graph_fixes(facts)


@rule("STOPPED_IN_COMPILER", category="triton_compile", signals=("TRITON_COMPILER_FRAMES",))
def stopped_in_compiler(facts: Facts) -> Diagnosis | None:
    found = _layer(facts, "TRITON_COMPILER_FRAMES", COMPILER_FRAMES_CONFIDENCE)
    if found is None:
        return None
    confidence, note, quoted = found
    fixes = compile_fixes(facts)
    return indirect(
        FRAMES,
        confidence,
        "The failure happened while Triton or torch.compile compiled a kernel or graph" + note + ".",
        quoted,
        [ASK_FOR_THE_ERROR, *fixes] if error_line_missing(facts) else fixes,
    )


@rule("STOPPED_IN_COLLECTIVE", category="nccl", signals=("COLLECTIVE_FRAMES",))
def stopped_in_collective(facts: Facts) -> Diagnosis | None:
    if root_frames_match(facts, "TRITON_COMPILER_FRAMES"):
        return None  # the compiler is the inner layer
    found = _layer(facts, "COLLECTIVE_FRAMES", COLLECTIVE_FRAMES_CONFIDENCE)
    if found is None:
        return None
    confidence, note, quoted = found
    fixes = [
        NCCL_DEBUG_ADVICE,
        "with several GPUs or nodes, the first error in the other ranks' logs is often the cause of this one",
        "NCCL_P2P_DISABLE=1 as a test" + "".join(vllm_only(facts, ", and --disable-custom-all-reduce")),
    ]
    return indirect(
        FRAMES,
        confidence,
        "The failure happened inside communication between GPUs (a torch.distributed or vLLM collective, or "
        "setting up its process group)" + note + ".",
        quoted,
        [ASK_FOR_THE_ERROR, *fixes] if error_line_missing(facts) else fixes,
    )


@rule("STOPPED_IN_GRAPH_CAPTURE", category="cuda_graph", signals=("GRAPH_CAPTURE_FRAMES",))
def stopped_in_graph_capture(facts: Facts) -> Diagnosis | None:
    """A traceback other than the root cause's stopped inside CUDA graph capture (CRASH_DURING_GRAPH_CAPTURE reads
    the root cause's own frames)."""
    assert facts.signals is not None
    if not error_line_missing(facts) or root_frames_match(facts, "CUDA_GRAPH_FRAMES"):
        return None
    if facts.signals.in_any_frames("TRITON_COMPILER_FRAMES", "COLLECTIVE_FRAMES"):
        return None  # an inner layer has its own finding
    path = facts.signals.frame_path("GRAPH_CAPTURE_FRAMES")
    return indirect(
        FRAMES,
        CAPTURE_FRAMES_CONFIDENCE,
        f"The failure happened while {vllm_or_not(facts, 'vLLM', 'the program')} captured CUDA graphs "
        f"({FROM_FRAMES}{MISSING_LINE}).",
        lines_naming(facts, path, limit=1) if path else [],
        [ASK_FOR_THE_ERROR, *_graph_fixes(facts)],
    )


@rule("FAILED_WHILE_COMPILING", category="triton_compile", signals=("COMPILE_STARTED",))
def failed_while_compiling(facts: Facts) -> Diagnosis | None:
    """vLLM logged that torch.compile started and never that it finished, and the run failed."""
    if has(facts, "COMPILE_FINISHED") or not evidence(facts, "ANY_ERROR_WORD", limit=1):
        return None
    return indirect(
        VLLM_LOG,
        PROGRESS_CONFIDENCE,
        "The run failed while vLLM compiled the model with torch.compile (inferred from vLLM's log: compilation "
        "started and never finished).",
        evidence(facts, "COMPILE_STARTED", limit=2),
        compile_fixes(facts),
    )


@rule("WORKS_WITHOUT_COMPILE", category="triton_compile", signals=("WORKS_WITHOUT_COMPILE",))
def works_without_compile(facts: Facts) -> Diagnosis | None:
    return indirect(
        REPORTER,
        COMPILE_OFF_WORKS_CONFIDENCE,
        "The reporter says the run works with torch.compile turned off, so the failure is most likely in "
        "torch.compile or Triton compilation (inferred from the report's words, not from an error message).",
        evidence(facts, "WORKS_WITHOUT_COMPILE", limit=2),
        compile_fixes(facts)[1:],
    )


@rule(
    "WORKS_WITHOUT_CUDA_GRAPHS",
    category="cuda_graph",
    signals=("WORKS_WITH_ENFORCE_EAGER", "WORKS_WITHOUT_CUDA_GRAPHS"),
)
def works_without_cuda_graphs(facts: Facts) -> Diagnosis | None:
    return indirect(
        REPORTER,
        EAGER_WORKS_CONFIDENCE,
        "The reporter says the run works with CUDA graphs turned off"
        + vllm_or_not(facts, " (--enforce-eager)", "")
        + ", so the failure is most likely in CUDA graph capture or replay (inferred from the report's words, not "
        "from an error message).",
        evidence(facts, "WORKS_WITH_ENFORCE_EAGER", "WORKS_WITHOUT_CUDA_GRAPHS", limit=2),
        _graph_fixes(facts),
    )


@rule("COMPILE_FAILURE_NAMED", category="triton_compile", signals=("COMPILE_FAILURE_NAMED",))
def compile_failure_named(facts: Facts) -> Diagnosis | None:
    return indirect(
        REPORTER,
        COMPILE_NAMED_CONFIDENCE,
        "The report names torch.compile or Triton compilation as what fails (from the report's words; no "
        "recognised error message says so).",
        evidence(facts, "COMPILE_FAILURE_NAMED", limit=2),
        [ASK_FOR_THE_ERROR, *compile_fixes(facts)],
    )


@rule("GRAPH_FAILURE_NAMED", category="cuda_graph", signals=("GRAPH_FAILURE_NAMED",))
def graph_failure_named(facts: Facts) -> Diagnosis | None:
    return indirect(
        REPORTER,
        GRAPH_NAMED_CONFIDENCE,
        "The report names CUDA graph capture or replay as what fails (from the report's words; no recognised "
        "error message says so).",
        evidence(facts, "GRAPH_FAILURE_NAMED", limit=2),
        [ASK_FOR_THE_ERROR, *_graph_fixes(facts)],
    )
