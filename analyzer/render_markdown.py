"""The GitHub-ready Markdown report: vLLM's bug form, filled in, plus the diagnosis and the signature.

Python prepares a view (plain values, texts already cut to size); the templates in
report_templates/ lay it out. Every {{ expression }} is escaped by the environment's finalize hook
unless a helper in analyzer/markdown.py produced it (MdSafe). The result never exceeds GitHub's
65,536-character body limit: long logs, tracebacks and the environment are cut in the middle,
level by level, and the report says what was cut; the diagnosis and the exception itself are kept.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Any

from vllm_bug.analyzer import markdown as md
from vllm_bug.analyzer.findings import Analysis

GITHUB_BODY_LIMIT = 65_536
MAX_FINDINGS = 5
MAX_EVIDENCE_LINES = 6
MAX_FIXES = 8
MAX_FIX_CHARS = 1_000
MAX_ENV_VARS = 80
KEY_PACKAGES = (
    "vllm", "torch", "transformers", "triton", "xformers", "flashinfer-python", "flash-attn", "vllm-flash-attn",
    "nvidia-nccl-cu12", "nvidia-nccl-cu13", "nvidia-cuda-runtime-cu12", "nvidia-cudnn-cu12", "ray", "numpy",
    "nvidia-ml-py", "pynvml", "bitsandbytes", "compressed-tensors", "accelerate", "tokenizers", "safetensors",
)

# Budgets tried in order until the report fits.
LEVELS = (
    {"log_lines": 300, "log_chars": 20_000, "tb_chars": 20_000, "env_chars": 10_000, "evidence_chars": 500, "embed": True},
    {"log_lines": 120, "log_chars": 8_000, "tb_chars": 12_000, "env_chars": 6_000, "evidence_chars": 400, "embed": True},
    {"log_lines": 40, "log_chars": 3_000, "tb_chars": 8_000, "env_chars": 4_000, "evidence_chars": 300, "embed": False},
    {"log_lines": 0, "log_chars": 0, "tb_chars": 4_000, "env_chars": 2_500, "evidence_chars": 200, "embed": False},
)


@lru_cache(maxsize=1)
def template_environment():
    """One sandboxed jinja2 environment per process (templates compiled once)."""
    from jinja2 import PackageLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=PackageLoader("vllm_bug.report_templates", "."),
        autoescape=False,  # HTML escaping is wrong inside Markdown code; finalize escapes instead
        undefined=StrictUndefined,
        finalize=md.md_finalize,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        code=md.inline_code, fence=md.fence, line=md.one_line, text=md.escape_text, prose=md.escape_prose,
        details=md.details,
    )
    return env


def render_markdown(analysis: Analysis, bundle_bytes: bytes | None = None, redactions: list | None = None) -> str:
    """The report for `analysis`; when bundle_bytes are given and small enough, the bundle rides along."""
    template = template_environment().get_template("report.md.j2")
    text = ""
    for level in LEVELS:
        view = build_view(analysis, bundle_bytes, redactions, level)
        text = template.render(**view)
        if len(text) <= GITHUB_BODY_LIMIT:
            return text
    return _minimal_report(analysis, text)


def _minimal_report(analysis: Analysis, full: str) -> str:
    """Last resort when even the tightest level is too long: title, diagnosis titles, signature."""
    lines = [f"# {md.one_line(suggested_title(analysis), 200)}", "", "### Diagnosis", ""]
    for f in analysis.diagnoses[:MAX_FINDINGS]:
        lines.append(f"- {md.one_line(f.title, 300)} ({md.escape_text(f.category)}, confidence {f.confidence:.2f})")
    lines += ["", f"Signature: {md.inline_code(analysis.signature)}", "",
              f"_The full report ({len(full):,} characters) did not fit GitHub's {GITHUB_BODY_LIMIT:,}-character "
              "limit; attach the bundle's .zip instead._", ""]
    return "\n".join(lines)[:GITHUB_BODY_LIMIT]


# -- the view ------------------------------------------------------------------------------

def build_view(analysis: Analysis, bundle_bytes: bytes | None, redactions: list | None, level: dict) -> dict[str, Any]:
    facts = analysis.facts
    return {
        "title": suggested_title(analysis),
        "environment": md.fence(_cut(environment_summary(facts), level["env_chars"])),
        "environment_summary": f"Environment summary (vllm-bug, from {analysis.input_kind})",
        "launch_command": facts.launch_command,
        "root_cause": _root_cause_view(facts, level),
        "log_excerpt": _log_excerpt(facts, level),
        "diagnoses": [_finding_view(f, level) for f in analysis.diagnoses[:MAX_FINDINGS]],
        "more_diagnoses": max(0, len(analysis.diagnoses) - MAX_FINDINGS),
        "signature": analysis.signature,
        "signature_explanation": md.fence("\n".join(analysis.signature_explanation[:60])),
        "known_issue": _known_issue_view(analysis.known_issue),
        "redactions": _redaction_rows(redactions if redactions is not None else getattr(facts, "redactions", [])),
        "input_sha256": analysis.sha256,
        "bundle": _bundle_view(bundle_bytes, level["embed"]),
    }


def suggested_title(analysis: Analysis) -> str:
    facts = analysis.facts
    root = facts.root_cause
    if root is not None and root.exc_type not in ("", "Error") and root.message.strip():
        core = f"{root.exc_type}: {root.message.strip().splitlines()[0]}"  # searchable, like most vLLM issue titles
    elif analysis.diagnoses:
        core = analysis.diagnoses[0].title
    elif facts.title:
        core = re.sub(r"^\s*\[\w+\]\s*:?\s*", "", facts.title)
    else:
        core = "vLLM failure (no error found in the input)"
    where = [f"vLLM {facts.vllm_version}"] if facts.vllm_version else []
    gpus = _gpu_names(facts)
    if gpus:
        where.append(gpus[0])
    suffix = f" ({', '.join(where)})" if where else ""
    core = " ".join(str(core).split())
    if len(core) > 110:
        core = core[:109] + "…"
    return f"[Bug]: {core}{suffix}"


def _gpu_names(facts) -> list[str]:
    names: dict[str, int] = {}
    for g in facts.gpus:
        label = g.name or "unknown GPU"
        if g.compute_capability:
            label += f" (compute capability {g.compute_capability[0]}.{g.compute_capability[1]})"
        names[label] = names.get(label, 0) + 1
    return [f"{n} x {label}" if n > 1 else label for label, n in names.items()]


def environment_summary(facts) -> str:
    """Plain text lines for the environment block (it goes into a fence, so no escaping needed)."""
    def known(v) -> str:
        return "unknown" if v in (None, "", []) else str(v)

    lines = []
    gpus = _gpu_names(facts)
    lines.append(f"GPU:                {'; '.join(gpus) if gpus else 'unknown'}")
    mem = [g.memory_total_bytes for g in facts.gpus if g.memory_total_bytes]
    if mem:
        lines.append(f"GPU memory:         {mem[0] / 2**30:.1f} GiB each")
    lines.append(f"Driver:             {known(facts.driver_version)} (driver supports CUDA up to {known(facts.driver_cuda)})")
    lines.append(f"nvcc (toolkit):     {known(facts.nvcc_version)}" + (f"  CUDA_HOME={facts.cuda_home}" if facts.cuda_home else ""))
    lines.append(f"torch:              {known(facts.torch_version)} (built with CUDA {known(facts.torch_cuda)})")
    if facts.torch_arch_list:
        lines.append(f"torch arch list:    {' '.join(facts.torch_arch_list)}")
    if facts.torch_cuda_available is not None:
        lines.append(f"torch sees CUDA:    {facts.torch_cuda_available} ({known(facts.torch_device_count)} devices)")
    lines.append(f"vLLM:               {known(facts.vllm_version)}")
    if facts.vllm_import_ok is False:
        lines.append(f"vLLM import:        FAILED: {known(facts.vllm_import_error)}")
    lines.append(f"Python:             {known(facts.python_version)}")
    lines.append(f"OS:                 {known(facts.os)}" + (f" kernel {facts.kernel}" if facts.kernel else ""))
    if facts.glibc:
        lines.append(f"glibc:              {facts.glibc}" + (f" (GLIBCXX up to {facts.glibcxx_max})" if facts.glibcxx_max else ""))
    container = [k for k, v in (facts.container or {}).items() if v]
    if container:
        lines.append(f"Container:          {', '.join(container)}")
    if facts.shm_total_bytes:
        lines.append(f"/dev/shm:           {facts.shm_total_bytes / 2**30:.1f} GiB")
    packages = [(name, facts.packages[name]) for name in KEY_PACKAGES if name in facts.packages]
    if packages:
        lines.append("")
        lines.append("Key packages:")
        lines.extend(f"  {name}=={version}" for name, version in packages)
    if facts.env:
        lines.append("")
        lines.append("Environment variables (allow-listed, secrets redacted):")
        for name in sorted(facts.env)[:MAX_ENV_VARS]:
            lines.append(f"  {name}={str(facts.env[name])[:300]}")
        if len(facts.env) > MAX_ENV_VARS:
            lines.append(f"  ... {len(facts.env) - MAX_ENV_VARS} more in the bundle")
    if facts.engine_args:
        lines.append("")
        lines.append("Engine arguments (non-default):")
        for key in sorted(facts.engine_args)[:60]:
            lines.append(f"  {key}={str(facts.engine_args[key])[:300]}")
    return "\n".join(lines)


def _cut(text: str, max_chars: int) -> str:
    return md.cut_middle(text, max_chars)[0]


def _root_cause_view(facts, level: dict) -> dict[str, Any] | None:
    root = facts.root_cause
    if root is None:
        return None
    exception_line = f"{root.exc_type}: {root.message}"
    body = root.text or "\n".join(
        [f'  File "{f.path}", line {f.line}, in {f.function}' for f in root.frames] + [exception_line]
    )
    # The exception line is the root cause itself: the cut may only take frames from the middle.
    if len(body) > level["tb_chars"]:
        head, _, tail = body.rpartition(exception_line[:200])
        if head:
            body = md.cut_middle(head, max(500, level["tb_chars"] - len(exception_line) - len(tail)))[0] + exception_line[:200] + tail
        else:
            body = md.cut_middle(body, level["tb_chars"])[0]
        if exception_line[:200] not in body:
            body += "\n" + exception_line[:4000]
    return {"exception": exception_line, "traceback": md.fence(body, "python")}


def _log_excerpt(facts, level: dict) -> dict[str, Any] | None:
    if not facts.lines or level["log_lines"] == 0:
        if facts.lines:
            return {"block": None, "total": len(facts.lines), "cut": len(facts.lines)}
        return None
    text, dropped = md.cut_middle("\n".join(facts.lines), level["log_chars"], level["log_lines"])
    summary = f"Log excerpt ({len(facts.lines):,} lines" + (f", {dropped:,} cut from the middle)" if dropped else ")")
    return {"block": md.fence(text), "total": len(facts.lines), "cut": dropped, "summary": summary}


def _finding_view(finding, level: dict) -> dict[str, Any]:
    evidence = [str(e)[: level["evidence_chars"]] for e in finding.evidence[:MAX_EVIDENCE_LINES]]
    return {
        "title": finding.title,
        "rule": finding.rule,
        "category": finding.category,
        "confidence": f"{finding.confidence:.2f}",
        "evidence": md.fence("\n".join(evidence)) if evidence else None,
        "fixes": [md.escape_prose(str(fix)[:MAX_FIX_CHARS]) for fix in finding.fixes[:MAX_FIXES]],
    }


_ISSUE_REF = re.compile(r"([\w.-]+/[\w.-]+)#(\d+)")


def _known_issue_view(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    if not entry:
        return None

    def link(ref: str) -> md.MdSafe | str:
        m = _ISSUE_REF.fullmatch(ref or "")
        if not m:
            return ref
        return md.MdSafe(f"[{m.group(1)}#{m.group(2)}](https://github.com/{m.group(1)}/issues/{m.group(2)})")

    return {
        "id": entry.get("id", ""),
        "issue": link(entry["vllm_issue"]) if entry.get("vllm_issue") else None,
        "related": md.MdSafe(", ".join(link(r) if isinstance(link(r), md.MdSafe) else md.escape_text(r)
                                       for r in entry.get("related", [])[:8])),
        "fixed_in": entry.get("fixed_in"),
        "note": entry.get("note", ""),
        "benign": bool(entry.get("benign")),
    }


def _redaction_rows(redactions) -> list[dict[str, Any]]:
    totals: dict[str, int] = {}
    for item in redactions or []:
        if isinstance(item, dict) and "kind" in item:
            totals[str(item["kind"])] = totals.get(str(item["kind"]), 0) + int(item.get("count", 1) or 1)
    return [{"kind": k, "count": n} for k, n in sorted(totals.items())]


def _bundle_view(bundle_bytes: bytes | None, embed_allowed: bool) -> dict[str, Any] | None:
    if bundle_bytes is None:
        return None
    from vllm_bug.analyzer.embed import EMBED_MAX_BYTES, embed_block

    fits = len(bundle_bytes) <= EMBED_MAX_BYTES
    return {
        "sha256": hashlib.sha256(bundle_bytes).hexdigest(),
        "size": len(bundle_bytes),
        "embedded": md.details(
            f"vllm-bug bundle, embedded ({len(bundle_bytes):,} bytes compressed, base64): maintainers can run "
            "vllm-bug analyze on this report's text",
            embed_block(bundle_bytes),
        ) if (fits and embed_allowed) else None,
        "too_big_to_embed": not fits,
    }
