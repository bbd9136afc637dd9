"""Failures while capturing or replaying CUDA graphs (category cuda_graph)."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.knowledge import TORCH_GRAPH_ADVICE, cudagraph_workarounds
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import (
    HINT,
    evidence,
    has,
    level,
    root_frames_match,
    vllm_not_involved,
    vllm_or_not,
    vllm_version,
)

NO_CPU_SYNC_ADVICE = (
    "the model's forward must not synchronise with the CPU (e.g. .item(), max() over a tensor, "
    "printing tensors) while a graph is captured; with --enforce-eager working, report the frame "
    "shown above"
)
NO_CPU_SYNC_ADVICE_WITHOUT_VLLM = (
    "the captured code must not synchronise with the CPU (e.g. .item(), max() over a tensor, printing "
    "tensors) while a graph is captured: the frame shown above is where it did"
)


def no_cpu_sync_advice(facts: Facts) -> str:
    return vllm_or_not(facts, NO_CPU_SYNC_ADVICE, NO_CPU_SYNC_ADVICE_WITHOUT_VLLM)


def graph_fixes(facts: Facts) -> list[str]:
    """Ways around CUDA graphs for this run: vLLM's flags for its version, or torch's own for other programs."""
    if vllm_not_involved(facts):
        return [TORCH_GRAPH_ADVICE, NO_CPU_SYNC_ADVICE_WITHOUT_VLLM]
    return [*cudagraph_workarounds(vllm_version(facts)), NO_CPU_SYNC_ADVICE]


@rule("CUDAGRAPH_MODE_UNSUPPORTED", category="cuda_graph", signals=("CUDAGRAPH_MODE_UNSUPPORTED",))
def cudagraph_mode_unsupported(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "CUDAGRAPH_MODE_UNSUPPORTED", limit=1)
    if not lines:
        return None
    return Diagnosis(
        level(facts, "CUDAGRAPH_MODE_UNSUPPORTED"),
        "The requested CUDA graph mode is not supported by the attention backend in use.",
        evidence=lines,
        fixes=graph_fixes(facts)[:2],
    )


@rule("CRASH_DURING_GRAPH_CAPTURE", category="cuda_graph", signals=("CUDA_GRAPH_FRAMES", "CUDA_GRAPH_CAPTURING"))
def crash_during_graph_capture(facts: Facts) -> Diagnosis | None:
    """The failure happened inside graph capture/replay, with no more specific error recognised."""
    if has(facts, "CUDA_GRAPH_CAPTURE_ERROR", "SPECIFIC_GPU_ERROR"):
        return None
    in_frames = root_frames_match(facts, "CUDA_GRAPH_FRAMES")
    inner_layer = root_frames_match(facts, "TRITON_COMPILER_FRAMES") or root_frames_match(facts, "COLLECTIVE_FRAMES")
    if in_frames and inner_layer:
        return None  # compiled or communicating during capture: the inner layer's finding (rules/indirect.py) names it
    progress = has(facts, "CUDA_GRAPH_CAPTURING") and not has(facts, "CUDA_GRAPH_CAPTURE_FINISHED")
    # an input line must say it: a root cause guessed from a bare line is typed 'Error' by the parser
    said_error = bool(evidence(facts, "ANY_ERROR_WORD", limit=1))
    if not in_frames and not (progress and said_error):
        return None
    return Diagnosis(
        HINT + (0.2 if in_frames else 0.1),
        vllm_or_not(
            facts,
            "The engine failed while capturing (or replaying) CUDA graphs.",
            "The program failed while capturing (or replaying) CUDA graphs.",
        ),
        evidence=evidence(facts, "CUDA_GRAPH_CAPTURING", "CAPTURE_WORD", limit=2),
        fixes=graph_fixes(facts),
    )
