"""The plain-text summary `vllm-bug analyze` prints by default: what went wrong, why, what to do."""

from __future__ import annotations

import textwrap

from vllm_bug.analyzer.findings import Analysis, Finding

WIDTH = 100
MAX_SECONDARY = 6


def render_text(analysis: Analysis, name: str = "", explain: bool = False) -> str:
    out: list[str] = []
    facts = analysis.facts
    source = f"{name} " if name else ""
    out.append(f"vllm-bug analysis of {source}({analysis.input_kind}, sha256 {analysis.sha256[:12]})")
    env = environment_line(facts)
    if env:
        out.append(f"Environment: {env}")
    out.append("")
    if not analysis.diagnoses:
        out.append("No known problem recognised (category: other).")
        if facts.root_cause is not None:
            out.append(f"Root-cause error: {_one_line(facts.root_cause.exc_type + ': ' + facts.root_cause.message)}")
        out.append("Attach the full log (or a `vllm-bug collect` bundle) so that a maintainer can look further.")
    else:
        top, rest = analysis.diagnoses[0], analysis.diagnoses[1:]
        out += _finding_block(top, heading="Most likely")
        if facts.root_cause is not None:
            out.append(f"  Root-cause error: {_one_line(facts.root_cause.exc_type + ': ' + facts.root_cause.message)}")
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


def _finding_block(finding: Finding, heading: str, brief: bool = False) -> list[str]:
    head = f"{heading} {finding.title}" if heading == "-" else f"{heading}: {finding.title}"
    lines = _wrap(head, indent="" if heading != "-" else "  ", hanging="    " if heading == "-" else "  ")
    lines.append(("    " if heading == "-" else "  ")
                 + f"[{finding.category}, {finding.rule}, confidence {finding.confidence:.2f}]")
    pad = "    " if heading == "-" else "  "
    evidence = finding.evidence[:1] if brief else finding.evidence
    if evidence:
        lines.append(f"{pad}Evidence:")
        lines += [f"{pad}  > {_one_line(e)}" for e in evidence]
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


def environment_line(facts) -> str:
    parts = []
    names = [g.name for g in facts.gpus if g.name]
    if names:
        counts: dict[str, int] = {}
        for n in names:
            counts[n] = counts.get(n, 0) + 1
        parts.append(", ".join(f"{c} x {n}" if c > 1 else n for n, c in counts.items()))
    if facts.driver_version:
        parts.append(f"driver {facts.driver_version}" + (f" (CUDA {facts.driver_cuda})" if facts.driver_cuda else ""))
    if facts.torch_version:
        parts.append(f"torch {facts.torch_version}" + (f" (CUDA {facts.torch_cuda})" if facts.torch_cuda else ""))
    if facts.vllm_version:
        parts.append(f"vLLM {facts.vllm_version}")
    return "; ".join(parts)


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _wrap(text: str, indent: str, hanging: str) -> list[str]:
    return textwrap.wrap(text, width=WIDTH, initial_indent=indent, subsequent_indent=hanging,
                         break_long_words=False, break_on_hyphens=False) or [indent]
