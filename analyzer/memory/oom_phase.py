"""Which start-up phase a failure happened in, as the out-of-memory rules need it: loading the weights,
the profiling run, warming up the sampler, or capturing CUDA graphs.

Worked out for every input, not only those with an out-of-memory line: the sampler rule also reads it
when the log only says the warm-up failed.
"""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.rules.helpers import has, root_frames_match, vllm_not_involved

PHASES = {
    "weights": r"load_model|load_weights|weight_loader|Failed to load model - not enough GPU memory|model_loader",
    "sampler": r"_dummy_sampler_run|warming up sampler|_dummy_pooler_run|warming up pooler",
    "cuda_graph": r"capture_model|\bcapture\b|cudagraph|cuda_graph|graph\.replay|Capturing CUDA graph|CUDA Graphs",
    "profiling": r"profile_run|determine_num_available_blocks|determine_available_memory|_dummy_run|profile\(\)",
}
GRAPH_CAPTURE_STARTED = r"Capturing CUDA graph|capture_model|graph capturing|cudagraph capture"
GRAPH_CAPTURE_FINISHED = r"Graph capturing finished|CUDA graph capture.*took|capturing finished"


def oom_phase(facts: Facts) -> str | None:
    """What vLLM was doing when memory ran out: the root cause's frames first, then the log.

    None when vLLM was not the program that failed, or nothing points to a phase.
    """
    if vllm_not_involved(facts):
        return None
    for phase in ("sampler", "cuda_graph", "weights", "profiling"):
        if root_frames_match(facts, PHASES[phase]):
            return phase
    if facts.root_cause is None or not facts.root_cause.frames:
        for phase in ("sampler", "weights"):
            if has(facts, PHASES[phase]):
                return phase
        if has(facts, GRAPH_CAPTURE_STARTED) and not has(facts, GRAPH_CAPTURE_FINISHED):
            return "cuda_graph"
        if has(facts, PHASES["profiling"]):
            return "profiling"
    return None
