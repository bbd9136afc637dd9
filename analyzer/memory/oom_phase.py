"""Which start-up phase a failure happened in, as the out-of-memory rules need it: loading the weights,
the profiling run, warming up the sampler, or capturing CUDA graphs.

Worked out for every input, not only those with an out-of-memory line: the sampler rule also reads it
when the log only says the warm-up failed.
"""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.rules.helpers import has, root_frames_match, vllm_not_involved

PHASE_ORDER_IN_FRAMES = ("sampler", "cuda_graph", "weights", "profiling")


def oom_phase(facts: Facts) -> str | None:
    """What vLLM was doing when memory ran out: the root cause's frames first, then the log.

    None when vLLM was not the program that failed, or nothing points to a phase.
    """
    if vllm_not_involved(facts):
        return None
    for phase in PHASE_ORDER_IN_FRAMES:
        if root_frames_match(facts, f"PHASE_{phase.upper()}_FRAMES"):
            return phase
    if facts.root_cause is None or not facts.root_cause.frames:
        for phase in ("sampler", "weights"):
            if has(facts, f"PHASE_{phase.upper()}"):
                return phase
        if has(facts, "GRAPH_CAPTURE_STARTED") and not has(facts, "GRAPH_CAPTURE_FINISHED"):
            return "cuda_graph"
        if has(facts, "PHASE_PROFILING"):
            return "profiling"
    return None
