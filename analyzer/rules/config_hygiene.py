"""Stale, removed or made-up environment variables, judged against the reporter's vLLM version (flags vLLM
refuses are analyzer/rules/engine_config.py's)."""

from __future__ import annotations

from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.knowledge import REMOVED_ENV, deprecated_in, removed_in
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import SECONDARY, env_value, evidence, vllm_version


@rule("STALE_ENV_VAR", category="other")
def stale_env_var(facts: Facts) -> list[Diagnosis] | None:
    version = vllm_version(facts)
    assert facts.signals is not None
    first_line: dict[str, str] = {}  # each removed variable's first naming line
    for hit in facts.signals.all("REMOVED_ENV_VAR_NAMED"):
        first_line.setdefault(hit.groups["name"].upper(), hit.line)
    out = []
    for entry in REMOVED_ENV:
        value = env_value(facts, entry.name)
        if value is None:
            continue
        ev = [first_line[entry.name]] if entry.name in first_line else [f"{entry.name}={value}"]
        gone = removed_in(REMOVED_ENV, entry.name, version)
        if gone:
            what = "has never been a vLLM variable" if entry.never_existed else f"is ignored by vLLM {version}"
            out.append(
                Diagnosis(
                    SECONDARY,
                    f"{entry.name} {what}.",
                    evidence=ev,
                    fixes=[f"unset {entry.name}; instead: {entry.replacement}"],
                )
            )
            continue
        old = deprecated_in(REMOVED_ENV, entry.name, version)
        if old:
            out.append(
                Diagnosis(
                    SECONDARY - 0.1,
                    f"{entry.name} is deprecated in vLLM {version} and removed in later releases.",
                    evidence=ev,
                    fixes=[f"switch to {entry.replacement.replace('NAME', value or 'NAME')}"],
                )
            )
    return out or None


@rule("UNKNOWN_VLLM_ENV_VAR", category="other", signals=("UNKNOWN_VLLM_ENV_VAR",))
def unknown_vllm_env_var(facts: Facts) -> Diagnosis | None:
    lines = evidence(facts, "UNKNOWN_VLLM_ENV_VAR", limit=3)
    if not lines:
        return None
    assert facts.signals is not None
    names = sorted({hit.groups["name"] for hit in facts.signals.all("UNKNOWN_VLLM_ENV_VAR")[:3]})
    return Diagnosis(
        SECONDARY,
        f"vLLM does not know {', '.join(names)}: a stale or misspelt variable has no effect.",
        evidence=lines,
        fixes=[f"unset {name}" for name in names],
    )


@rule("VLLM_PORT_IS_URI", category="other")
def vllm_port_is_uri(facts: Facts) -> Diagnosis | None:
    value = env_value(facts, "VLLM_PORT")
    lines = evidence(facts, "VLLM_PORT_IS_URI", limit=1)
    if not lines and not (value and "://" in value):
        return None
    return Diagnosis(
        0.9 if lines else 0.6,
        "VLLM_PORT holds a URI (tcp://...): Kubernetes injected it for a Service named 'vllm'.",
        evidence=lines or evidence(facts, "VLLM_PORT_MENTIONED", limit=1),
        fixes=[
            "rename the Kubernetes Service to something other than 'vllm', or set VLLM_PORT to a plain "
            "port number in the pod spec"
        ],
    )
