"""Build Facts in code and run one rule on them (rule tests never parse text)."""

from __future__ import annotations

from vllm_bug.analyzer.complete import complete_facts, ensure_complete
from vllm_bug.analyzer.facts import Facts, Frame, Gpu, Traceback
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.rules import REGISTRY, load_all

load_all()


def facts(*lines: str, **fields) -> Facts:
    """Facts as a rule sees them: complete, signals found in the given lines and root cause."""
    return complete_facts(Facts(lines=list(lines), **fields))


def root(exc_type: str, message: str, frames: tuple[tuple[str, str], ...] = ()) -> Traceback:
    return Traceback(
        exc_type, message, frames=[Frame(path, 1, fn) for path, fn in frames], text=f"{exc_type}: {message}"
    )


def gpu(name: str, cc: tuple[int, int] | None = None, **kw) -> Gpu:
    return Gpu(name=name, compute_capability=cc, **kw)


def fire(key: str, f: Facts) -> Finding | None:
    found = fire_all(key, f)
    return found[0] if found else None


def fire_all(key: str, f: Facts) -> list[Finding]:
    return REGISTRY[key].run(ensure_complete(f))


def text_of(finding: Finding) -> str:
    return " ".join([finding.title, *finding.fixes])
