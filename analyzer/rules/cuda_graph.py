"""Failures while capturing or replaying CUDA graphs (category cuda_graph)."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.knowledge import cudagraph_workarounds
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import has, HINT, evidence, level, root_frames_match, vllm_version

CAPTURE_ERRORS = (r"operation not permitted when stream is capturing|cudaErrorStreamCapture\w+|"
                  r"CUDA_ERROR_STREAM_CAPTURE_\w+|operation failed due to a previous error during capture|"
                  r"capture(d)? (was )?invalidated|Cannot (call|use) .* during CUDA graph capture|"
                  r"CUDA graphs? (capture )?failed|failed to capture CUDA graph|Error while capturing CUDA graph|"
                  r"offending operation .* capture")
MODE_UNSUPPORTED = r"CUDAGraphMode\.\w+ is not supported with"
CAPTURE_FRAMES = r"capture_model|cuda_graph|cudagraph|\bcapture\b|graph\.replay|CUDAGraphWrapper|_capture_cudagraphs"
CAPTURE_PROGRESS = r"Capturing CUDA graph|Capturing cudagraphs|graph capturing"
OTHER_CAUSE = (r"out of memory|OutOfMemoryError|illegal memory access|device-side assert|invalid argument|"
               r"custom_all_reduce|NCCL error|no kernel image")


def _fixes(facts: Facts) -> list[str]:
    return cudagraph_workarounds(vllm_version(facts)) + [
        "the model's forward must not synchronise with the CPU (e.g. .item(), max() over a tensor, printing "
        "tensors) while a graph is captured; with --enforce-eager working, report the frame shown above"]


@rule("CUDA_GRAPH_CAPTURE_FAILED", category="cuda_graph")
def cuda_graph_capture_failed(facts: Facts) -> Finding | None:
    lines = evidence(facts, CAPTURE_ERRORS, limit=2)
    if not lines:
        return None
    return Finding("CUDA_GRAPH_CAPTURE_FAILED", "cuda_graph", level(facts, CAPTURE_ERRORS),
                   "An operation that is not allowed during CUDA graph capture ran while vLLM captured the model's "
                   "graphs.", evidence=lines, fixes=_fixes(facts))


@rule("CUDAGRAPH_MODE_UNSUPPORTED", category="cuda_graph")
def cudagraph_mode_unsupported(facts: Facts) -> Finding | None:
    lines = evidence(facts, MODE_UNSUPPORTED, limit=1)
    if not lines:
        return None
    return Finding("CUDAGRAPH_MODE_UNSUPPORTED", "cuda_graph", level(facts, MODE_UNSUPPORTED),
                   "The requested CUDA graph mode is not supported by the attention backend in use.", evidence=lines,
                   fixes=_fixes(facts)[:2])


@rule("CRASH_DURING_GRAPH_CAPTURE", category="cuda_graph")
def crash_during_graph_capture(facts: Facts) -> Finding | None:
    """The failure happened inside graph capture/replay, with no more specific error recognised."""
    if has(facts, CAPTURE_ERRORS) or has(facts, OTHER_CAUSE):
        return None
    in_frames = root_frames_match(facts, CAPTURE_FRAMES)
    progress = has(facts, CAPTURE_PROGRESS) and not has(facts, r"Graph capturing finished|capturing finished")
    if not in_frames and not (progress and has(facts, r"Traceback|Error|error|failed|crash")):
        return None
    return Finding("CRASH_DURING_GRAPH_CAPTURE", "cuda_graph", HINT + (0.2 if in_frames else 0.1),
                   "The engine failed while capturing (or replaying) CUDA graphs.",
                   evidence=evidence(facts, CAPTURE_PROGRESS, r"capture|graph\.replay", limit=2), fixes=_fixes(facts))
