"""Diagnosis rules: each a small function that names the facts it needs and returns a Diagnosis or None.

    @rule("BF16_ON_OLD_GPU", category="no_kernel_image", needs=("gpus",), signals=("BF16_UNSUPPORTED",))
    def bf16_on_old_gpu(facts: Facts) -> Diagnosis | None: ...

`needs` lists Facts attributes that must be known (non-empty) for the rule to run at all; `signals`
lists signal ids (analyzer/data/signals.json) of which at least one must have been seen. The engine
skips the rule otherwise, and stamps the rule's key and category on what it returns. Rules read
facts (signals included), never the raw text. Rules live in the modules listed in RULE_MODULES.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import NamedTuple

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import CATEGORIES, Diagnosis, Finding

RuleFunc = Callable[[Facts], "Diagnosis | list[Diagnosis] | None"]

RULE_MODULES: tuple[str, ...] = (
    "memory",
    "processes",
    "kv_cache",
    "versions",
    "driver",
    "runtime_errors",
    "arch",
    "compile",
    "cuda_graph",
    "nccl",
    "cluster",
    "availability",
    "engine_config",
    "config_hygiene",
    "indirect",
    "warnings",
    "requirements",
    "catalogue",
    "missing_cause",
)


class Rule(NamedTuple):
    key: str
    category: str
    needs: tuple[str, ...]
    func: RuleFunc
    signals: tuple[str, ...] = ()

    def applicable(self, facts: Facts) -> bool:
        for name in self.needs:
            value = getattr(facts, name)
            if value is None or value == [] or value == {} or value == "":
                return False
        if self.signals:
            return facts.signals is not None and facts.signals.seen(*self.signals)
        return True

    def run(self, facts: Facts) -> list[Finding]:
        """The rule's findings on complete facts, stamped with its key and category."""
        if not self.applicable(facts):
            return []
        result = self.func(facts)
        if result is None:
            return []
        return [item.stamp(self.key, self.category) for item in (result if isinstance(result, list) else [result])]


REGISTRY: dict[str, Rule] = {}


def rule(
    key: str, category: str, needs: tuple[str, ...] = (), signals: tuple[str, ...] = ()
) -> Callable[[RuleFunc], RuleFunc]:
    from vllm_bug.analyzer.signals import table

    if category not in CATEGORIES:
        raise ValueError(f"rule {key}: unknown category {category!r}")
    for name in needs:
        if name not in Facts.__dataclass_fields__:
            raise ValueError(f"rule {key}: needs unknown fact {name!r}")
    for signal_id in signals:
        if signal_id not in table():
            raise ValueError(f"rule {key}: unknown signal {signal_id!r}")

    def register(func: RuleFunc) -> RuleFunc:
        if key in REGISTRY and REGISTRY[key].func is not func:
            raise ValueError(f"rule key {key} registered twice")
        REGISTRY[key] = Rule(key, category, tuple(needs), func, tuple(signals))
        return func

    return register


def dedupe_evidence(facts: Facts, lines: list[str]) -> list[str]:
    from vllm_bug.analyzer.rules.helpers import dedupe_evidence as dedupe

    return dedupe(facts, lines)


_LOADED: list[bool] = []


def load_all() -> dict[str, Rule]:
    """Every rule: per family, the rows of analyzer/data/diagnoses/<family>.json, then its Python module."""
    if not _LOADED:
        from vllm_bug.analyzer.rules.table import register_family

        for name in RULE_MODULES:
            register_family(name)
            importlib.import_module(f"{__name__}.{name}")
        _LOADED.append(True)
    return REGISTRY


def run_rules(facts: Facts) -> list[Finding]:
    """Every applicable rule's findings, most confident first."""
    from vllm_bug.analyzer.complete import ensure_complete

    ensure_complete(facts)
    findings: list[Finding] = []
    for r in load_all().values():
        for f in r.run(facts):
            f.evidence = dedupe_evidence(facts, f.evidence)
            findings.append(f)
    from vllm_bug.analyzer.rules.warnings import ahead_of_generic, with_warnings

    kept = without_redundant_indirect(without_explained_catalogue(findings, facts))
    return ahead_of_generic(rank_findings(with_warnings(kept, facts), facts))


def is_catalogue(finding: Finding) -> bool:
    """Whether the finding only matched a message of the mined catalogue (rules/catalogue.py)."""
    return "catalogue" in finding.details


def without_explained_catalogue(findings: list[Finding], facts: Facts) -> list[Finding]:
    """The findings less the catalogue's where a hand-written finding on an error message explains the root cause,
    names the same category or quotes the same line: the hand-written rules reason about what they know."""
    from vllm_bug.analyzer.rules.helpers import SECONDARY

    hand = [f for f in findings if not is_catalogue(f) and not is_indirect(f) and f.confidence > SECONDARY]
    if not hand or len(hand) == len(findings):
        return findings
    if any(explains_root_cause(f, facts) for f in hand):
        return [f for f in findings if not is_catalogue(f)]
    categories = {f.category for f in hand}
    quoted = {line for f in hand for line in f.evidence}
    return [
        f
        for f in findings
        if not (is_catalogue(f) and (f.category in categories or any(line in quoted for line in f.evidence)))
    ]


def without_redundant_indirect(findings: list[Finding]) -> list[Finding]:
    """The findings less those on indirect evidence whose category a finding on an error message already names."""
    direct = {f.category for f in findings if not is_indirect(f)}
    return [f for f in findings if not (is_indirect(f) and f.category in direct)]


def explains_root_cause(finding: Finding, facts: Facts) -> bool:
    """Whether the finding quotes the root-cause exception's own message."""
    rc = facts.root_cause
    if rc is None or not rc.message.strip():
        return False
    head = rc.message.strip().splitlines()[0].strip()[:80]
    return any(head and (head in line or line in rc.text) for line in finding.evidence if len(line) > 8)


def is_indirect(finding: Finding) -> bool:
    """Whether the finding rests on indirect evidence (stack frames, progress lines, the reporter's words), which
    the finding says in details["indirect"]."""
    return bool(finding.details.get("indirect"))


def rank_findings(findings: list[Finding], facts: Facts) -> list[Finding]:
    """The root cause's own error first, then by confidence; secondary findings follow. A finding on indirect
    evidence never counts as explaining the root cause, even when it quotes the issue title the root cause was
    made from."""
    return sorted(findings, key=lambda f: (is_indirect(f) or not explains_root_cause(f, facts), -f.confidence))
