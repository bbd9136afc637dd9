"""Whether the input was written by vLLM's own processes, judged from the raw text before log prefixes go.

vLLM's multi-process logs tag every line with the process that wrote it: `(EngineCore_DP0 pid=93)` (the
engine core, vllm/v1/engine/core.py), `(VllmWorker rank=0 pid=63590)` / `(Worker_TP1 pid=7)` (the workers of
vllm/v1/executor/multiproc_executor.py), `(APIServer pid=1)` (the OpenAI server) and `(RayWorkerWrapper pid=3)`
(Ray workers). Cleaning strips those tags from the lines, so a report whose only trace of vLLM is in them
would otherwise read like a program that is not vLLM. The same holds for vLLM's log header
(`INFO 03-19 07:27:53 [core.py:58] `), which cleaning removes too.
"""

from __future__ import annotations

from vllm_bug.analyzer.lazyre import lazy_compile
from vllm_bug.formats.logline import VLLM_LOG_HEADER

_VLLM_PROCESS_TAG = lazy_compile(
    r"\((?:VllmWorker|EngineCore|APIServer|RayWorkerWrapper|Worker_[TPD]P)\w*[^)\n]{0,120}?pid=\d"
)


def has_vllm_process_tags(text: str) -> bool:
    return _VLLM_PROCESS_TAG.search(text) is not None


def has_vllm_log_header(text: str) -> bool:
    """Whether the raw input has a line logged by vLLM's logger (formats.logline.VLLM_LOG_HEADER)."""
    return VLLM_LOG_HEADER.search(text) is not None
