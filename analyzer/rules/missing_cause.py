"""The input holds only a wrapper error: the real cause was printed elsewhere and not captured (category other)."""

from __future__ import annotations

from vllm_bug.analyzer.describe import wrapper_only, wrapper_quotes_cause
from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import HINT, clip, vllm_or_not

# below the hints that name a cause, above advice that is not why the run failed
CONFIDENCE = HINT - 0.05


@rule("ROOT_CAUSE_NOT_CAPTURED", category="other", needs=("tracebacks",))
def root_cause_not_captured(facts: Facts) -> Diagnosis | None:
    wrapper = wrapper_only(facts)
    if wrapper is None or wrapper_quotes_cause(facts):
        return None
    return Diagnosis(
        CONFIDENCE,
        f"The real cause is missing from the input: only the wrapper error '{wrapper}' was captured, and it "
        "reports a failure that was printed earlier or by another process.",
        evidence=[clip(wrapper)],
        fixes=[
            (
                "attach the full log from the start of the run: the real error (the first Traceback or ERROR) is "
                "printed above this line"
            ),
            vllm_or_not(
                facts,
                "the engine core and the GPU workers are separate processes: capture the output of all of them "
                "(e.g. `vllm serve ... 2>&1 | tee vllm.log`; with Ray also the worker logs under "
                "/tmp/ray/session_latest/logs)",
                "each worker process prints its own error: capture the output of all of them (e.g. `... 2>&1 | tee "
                "run.log`; torchrun's --log-dir keeps each rank's output)",
            ),
            "`vllm-bug run -- "
            + vllm_or_not(facts, "vllm serve ...", "<your command>")
            + "` keeps the whole output and collects a bundle when the run fails",
        ],
    )
