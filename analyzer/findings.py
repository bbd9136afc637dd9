"""What rules return and what an analysis is. Rendered as text, JSON (DESIGN.md contract) or Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CATEGORIES = (
    "cuda_oom",
    "kv_cache_insufficient",
    "cuda_version_mismatch",
    "driver_insufficient",
    "illegal_memory_access",
    "device_side_assert",
    "no_kernel_image",
    "triton_compile",
    "cuda_graph",
    "nccl",
    "invalid_config_arg",
    "engine_config",
    "cuda_not_available",
    "other",
)


@dataclass
class Finding:
    rule: str  # UPPER_SNAKE, stable
    category: str  # one of CATEGORIES
    confidence: float  # 0..1
    title: str
    evidence: list[str] = field(default_factory=list)  # lines quoted from the input
    fixes: list[str] = field(default_factory=list)  # advice right for the reporter's versions
    details: dict[str, Any] = field(default_factory=dict)  # e.g. memory arithmetic

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError("confidence must be within 0..1")

    def to_json(self) -> dict[str, Any]:
        out = {
            "rule": self.rule,
            "category": self.category,
            "confidence": round(self.confidence, 3),
            "title": self.title,
            "evidence": list(self.evidence),
            "fixes": list(self.fixes),
        }
        if self.details:
            out["details"] = self.details
        return out

    def source_note(self) -> str | None:
        """Where the matched message is raised, for a finding made from the mined catalogue (rules/catalogue.py)."""
        source = self.details.get("catalogue")
        if not isinstance(source, dict):
            return None
        line = f", line {source['line']}" if source.get("line") else ""
        return (
            f"the message is raised in {source.get('repository')} {source.get('path')}{line} (releases "
            f"{source.get('releases')}); known from the catalogue mined from the sources, not from a hand-written rule"
        )


@dataclass
class Diagnosis:
    """What a rule returns: the engine stamps the rule's key and category on it (rules.Rule.run)."""

    confidence: float
    title: str
    evidence: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def stamp(self, rule: str, category: str) -> Finding:
        return Finding(
            rule, category, self.confidence, self.title, list(self.evidence), list(self.fixes), dict(self.details)
        )


@dataclass
class Analysis:
    input_kind: str  # "bundle" | "text"
    sha256: str
    diagnoses: list[Finding]  # most likely first
    facts: Any  # analyzer.facts.Facts
    signature: str = ""
    signature_explanation: list[str] = field(default_factory=list)
    known_issue: dict[str, Any] | None = None

    @property
    def category(self) -> str:
        return self.diagnoses[0].category if self.diagnoses else "other"
