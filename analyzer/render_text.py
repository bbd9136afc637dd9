"""The plain-text summary `vllm-bug analyze` prints by default: what went wrong, why, what to do."""

from __future__ import annotations

import textwrap

from vllm_bug.analyzer import describe
from vllm_bug.analyzer.findings import Analysis, Finding

WIDTH = 100
MAX_SECONDARY = 6
LABEL_WIDTH = 10
EVIDENCE_CHARS = 200


def render_text(analysis: Analysis, name: str = "", explain: bool = False) -> str:
    facts = analysis.facts
    source = f"{name} " if name else ""
    out = [f"vllm-bug analysis of {source}({analysis.input_kind}, sha256 {analysis.sha256[:12]})"]
    facts_block = fact_lines(facts)
    if facts_block:
        out += [""] + facts_block
    out.append("")
    if not analysis.diagnoses:
        out += _no_diagnosis(facts)
    else:
        top, rest = analysis.diagnoses[0], analysis.diagnoses[1:]
        out += _finding_block(top, heading="Most likely")
        if rest:
            out.append("")
            out.append("Also found:")
            for finding in rest[:MAX_SECONDARY]:
                out += _finding_block(finding, heading="-", brief=True)
            if len(rest) > MAX_SECONDARY:
                out.append(f"  ... and {len(rest) - MAX_SECONDARY} more (see --format json)")
    if analysis.known_issue:
        issue = analysis.known_issue
        ref = issue.get("vllm_issue") or ""
        out += ["", f"Known issue: {issue.get('id', 'known issue')}" + (f" ({ref})" if ref else "")]
        if issue.get("note"):
            out += _wrap(str(issue["note"]), indent="  ", hanging="  ")
        if issue.get("fixed_in"):
            out.append(f"  Fixed in: {issue['fixed_in']}")
    if analysis.signature:
        out += ["", f"Signature: {analysis.signature}"]
        if explain:
            out += [f"  {line}" for line in analysis.signature_explanation]
    return "\n".join(out).rstrip() + "\n"


def fact_lines(facts) -> list[str]:
    """The error and the environment as aligned 'label: value' lines; unknown facts are left out."""
    rows: list[tuple[str, str]] = []
    error = describe.root_cause_line(facts, limit=300)
    carried = describe.carried_note(facts)
    if error and carried:
        rows.append(("Error", f"{error} ({carried})"))
    elif error:
        rows.append(("Error" if describe.has_exception_type(facts) else "Reported", error))
    elif missing := describe.no_root_cause_line(facts):
        rows.append(("Error", missing))
    gpus = describe.gpu_groups(facts)
    if gpus or facts.input_kind == "bundle":
        rows.append(("GPU", "; ".join(gpus) or "none found"))
    in_use = describe.gpu_memory_in_use(facts)
    if in_use:
        rows.append(("In use", "; ".join(in_use)))
    for process in describe.gpu_processes(facts, limit=4):
        rows.append(("Process", process))
    if facts.driver_version or facts.driver_cuda:
        rows.append(
            (
                "Driver",
                (facts.driver_version or "version unknown")
                + (f", supports CUDA up to {facts.driver_cuda}" if facts.driver_cuda else ""),
            )
        )
    torch = describe.torch_state(facts)
    if torch:
        rows.append(("torch", torch + (f", built for CUDA {facts.torch_cuda}" if facts.torch_cuda else "")))
    if facts.nvcc_version:
        rows.append(("nvcc", f"CUDA {facts.nvcc_version} toolkit"))
    vllm = describe.vllm_state(facts)
    if vllm:
        rows.append(("vLLM", vllm))
    codes = describe.xid_codes(facts)
    if facts.xid:
        rows.append(("Xid", (", ".join(codes) + " " if codes else "") + f"({len(facts.xid)} kernel-log lines)"))
    for problem in facts.collection_problems[:4]:
        rows.append(("Probe", problem))
    if facts.nodes:
        rows.append(("Nodes", describe.nodes_line(facts)))
    lines: list[str] = []
    for label, value in rows:
        lines += _wrap(value, indent=f"  {label + ':':<{LABEL_WIDTH}}", hanging=" " * (LABEL_WIDTH + 2), max_lines=3)
    return lines


def environment_line(facts) -> str:
    """One line: GPUs, driver, torch, vLLM (for callers that want the environment in brief)."""
    parts = []
    names = describe.gpu_names(facts)
    if names:
        parts.append(", ".join(names))
    if facts.driver_version:
        parts.append(f"driver {facts.driver_version}" + (f" (CUDA {facts.driver_cuda})" if facts.driver_cuda else ""))
    if facts.torch_version:
        parts.append(f"torch {facts.torch_version}" + (f" (CUDA {facts.torch_cuda})" if facts.torch_cuda else ""))
    vllm = describe.vllm_state(facts)
    if vllm:
        parts.append(f"vLLM {vllm}")
    return "; ".join(parts)


def _no_diagnosis(facts) -> list[str]:
    out = ["No known problem recognised (category: other)."]
    missing = describe.missing_for_diagnosis(facts)
    if missing:
        out.append("Missing from the input, and needed for a diagnosis:")
        out += [f"  - {item}" for item in missing]
        out.append("On the machine where vLLM failed, `vllm-bug collect --log LOGFILE` gathers all of it.")
    else:
        out.append("vllm-bug has no rule for this error yet: attach the full log (or a `vllm-bug collect` bundle)")
        out.append("to the issue so that a maintainer can look further.")
    return out


def _finding_block(finding: Finding, heading: str, brief: bool = False) -> list[str]:
    nested = heading == "-"
    pad = "    " if nested else "  "
    head = f"{heading} {finding.title}" if nested else f"{heading}: {finding.title}"
    lines = _wrap(head, indent="  " if nested else "", hanging=pad)
    lines.append(f"{pad}[{finding.category}, rule {finding.rule}, confidence {finding.confidence:.2f}]")
    source = finding.source_note()
    if source and not brief:
        lines += _wrap(f"Source: {source}", indent=pad, hanging=pad + "  ")
    evidence = finding.evidence[:1] if brief else finding.evidence
    if evidence:
        lines.append(f"{pad}Evidence:")
        lines += [f"{pad}  > {_one_line(e, EVIDENCE_CHARS)}" for e in evidence]
    fixes = finding.fixes[:1] if brief else finding.fixes
    if fixes:
        lines.append(f"{pad}What to do:")
        for fix in fixes:
            lines += _wrap(f"- {fix}", indent=pad + "  ", hanging=pad + "    ")
    memory = finding.details.get("memory") if not brief else None
    if isinstance(memory, dict) and memory.get("lines"):
        lines.append(f"{pad}Memory arithmetic:")
        lines += [f"{pad}  {line}" for line in memory["lines"]]
    return lines


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _wrap(text: str, indent: str, hanging: str, max_lines: int | None = None) -> list[str]:
    lines = textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=indent,
        subsequent_indent=hanging,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [indent]
    if max_lines and len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: WIDTH - 3].rstrip() + "..."
    return lines
