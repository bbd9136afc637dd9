"""vllm-bug: collect complete, redacted bug bundles from failed vLLM runs and diagnose them offline.

The Python API (vllm_bug.api), loaded on first use so that `import vllm_bug` stays instant:

    import vllm_bug

    result = vllm_bug.analyze(text=pasted_issue)        # or analyze("bundle.zst"), analyze(bundle_bytes)
    for diagnosis in result["diagnoses"]:
        print(diagnosis["category"], diagnosis["title"])

    collected = vllm_bug.collect(log="vllm.log")         # writes the bundle and its report, returns paths
    print(collected.files.bundle)

Errors are the classes of vllm_bug.errors (VllmBugError and its subclasses, each with an exit_code).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vllm_bug._version import __version__
from vllm_bug.errors import UnreadableInput, UnsafeInput, UsageProblem, VllmBugError, VllmBugWarning

if TYPE_CHECKING:
    from vllm_bug.api import Collected, analyze, collect

__all__ = [
    "Collected",
    "UnreadableInput",
    "UnsafeInput",
    "UsageProblem",
    "VllmBugError",
    "VllmBugWarning",
    "__version__",
    "analyze",
    "collect",
]

_LAZY = {"analyze", "collect", "Collected"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from vllm_bug import api

        return getattr(api, name)
    raise AttributeError(f"module 'vllm_bug' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
