"""Diagnosis rules: each a small function that names the facts it needs and returns a Finding or None.

    @rule("BF16_ON_OLD_GPU", category="no_kernel_image", needs=("gpus",))
    def bf16_on_old_gpu(facts: Facts) -> Finding | None: ...

`needs` lists Facts attributes that must be known (non-empty) for the rule to run at all; the engine
skips the rule otherwise. Rules live in the modules listed in RULE_MODULES, grouped by category.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import CATEGORIES, Finding

RuleFunc = Callable[[Facts], "Finding | list[Finding] | None"]

RULE_MODULES: tuple[str, ...] = ()  # filled in as rule modules land, e.g. ("memory", "versions", ...)


@dataclass(frozen=True)
class Rule:
    key: str
    category: str
    needs: tuple[str, ...]
    func: RuleFunc

    def applicable(self, facts: Facts) -> bool:
        for name in self.needs:
            value = getattr(facts, name)
            if value is None or value == [] or value == {} or value == "":
                return False
        return True


REGISTRY: dict[str, Rule] = {}


def rule(key: str, category: str, needs: tuple[str, ...] = ()) -> Callable[[RuleFunc], RuleFunc]:
    if category not in CATEGORIES:
        raise ValueError(f"rule {key}: unknown category {category!r}")
    for name in needs:
        if name not in Facts.__dataclass_fields__:
            raise ValueError(f"rule {key}: needs unknown fact {name!r}")

    def register(func: RuleFunc) -> RuleFunc:
        if key in REGISTRY and REGISTRY[key].func is not func:
            raise ValueError(f"rule key {key} registered twice")
        REGISTRY[key] = Rule(key, category, tuple(needs), func)
        return func

    return register


def load_all() -> dict[str, Rule]:
    for name in RULE_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return REGISTRY


def run_rules(facts: Facts) -> list[Finding]:
    """Every applicable rule's findings, most confident first."""
    findings: list[Finding] = []
    for r in load_all().values():
        if not r.applicable(facts):
            continue
        result = r.func(facts)
        if result is None:
            continue
        for f in result if isinstance(result, list) else [result]:
            findings.append(f)
    findings.sort(key=lambda f: -f.confidence)
    return findings
