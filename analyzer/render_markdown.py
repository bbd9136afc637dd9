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
from typing import Any, NamedTuple

from vllm_bug.analyzer import describe
from vllm_bug.analyzer import markdown as md
from vllm_bug.analyzer.findings import Analysis
from vllm_bug.formats.lazyre import lazy_compile

GITHUB_BODY_LIMIT = 65_536
MAX_FINDINGS = 5
MAX_EVIDENCE_LINES = 6
MAX_FIXES = 8
MAX_FIX_CHARS = 1_000
MAX_ENV_VARS = 60
MAX_XID_LINES = 8
TITLE_CORE_CHARS = 100
LABEL_WIDTH = 20
ENV_VALUE_CHARS = 200
HIDDEN_ENV_PREFIX = "NV_"  # package pins of NVIDIA's CUDA base images; bundles before 2026-11 carry them
KEPT_NV_NAMES = ("NV_CUDA_COMPAT_PACKAGE",)
KEY_PACKAGES = (
    "vllm",
    "torch",
    "transformers",
    "triton",
    "xformers",
    "flashinfer-python",
    "flash-attn",
    "vllm-flash-attn",
    "nvidia-nccl-cu12",
    "nvidia-nccl-cu13",
    "nvidia-cuda-runtime-cu12",
    "nvidia-cuda-runtime",
    "nvidia-cudnn-cu12",
    "nvidia-cudnn-cu13",
    "ray",
    "numpy",
    "nvidia-ml-py",
    "pynvml",
    "bitsandbytes",
    "compressed-tensors",
    "accelerate",
    "tokenizers",
    "safetensors",
)

# Budgets tried in order until the report fits.
LEVELS = (
    {
        "log_lines": 300,
        "log_chars": 20_000,
        "tb_chars": 20_000,
        "env_chars": 10_000,
        "evidence_chars": 500,
        "embed": True,
    },
    {
        "log_lines": 120,
        "log_chars": 8_000,
        "tb_chars": 12_000,
        "env_chars": 6_000,
        "evidence_chars": 400,
        "embed": True,
    },
    {"log_lines": 40, "log_chars": 3_000, "tb_chars": 8_000, "env_chars": 4_000, "evidence_chars": 300, "embed": False},
    {"log_lines": 0, "log_chars": 0, "tb_chars": 4_000, "env_chars": 2_500, "evidence_chars": 200, "embed": False},
)


def _bytecode_cache() -> Any:
    """Compiled templates kept between runs in the user's cache folder (jinja2 checks each against its
    template's source), so a report does not pay for compiling them every time; none where that folder
    cannot be made."""
    from jinja2 import FileSystemBytecodeCache

    from vllm_bug.formats.user_cache import cache_folder

    folder = cache_folder("templates")
    return FileSystemBytecodeCache(folder) if folder else None


@lru_cache(maxsize=1)
def template_environment():
    """One sandboxed jinja2 environment per process (templates compiled once)."""
    from vllm_bug.formats.regex_cache import kept_compiles

    with kept_compiles():  # jinja2 compiles about twenty regexes when imported
        from jinja2 import PackageLoader, StrictUndefined
        from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=PackageLoader("vllm_bug.report_templates", "."),
        bytecode_cache=_bytecode_cache(),
        autoescape=False,  # HTML escaping is wrong inside Markdown code; finalize escapes instead
        undefined=StrictUndefined,
        finalize=md.md_finalize,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        code=md.inline_code,
        fence=md.fence,
        line=md.one_line,
        text=md.escape_text,
        prose=md.escape_prose,
        advice=md.advice,
        details=md.details,
    )
    return env


class RenderedReport(NamedTuple):
    """The whole report, and its two parts as they go into the two text fields of vLLM's bug form."""

    title: str
    text: str
    environment: str  # "Your current environment"
    describe: str  # "🐛 Describe the bug"


def render_markdown(analysis: Analysis, bundle_bytes: bytes | None = None, redactions: list | None = None) -> str:
    """The report for `analysis`; when bundle_bytes are given and small enough, the bundle rides along."""
    return render_report(analysis, bundle_bytes, redactions).text


def render_report(
    analysis: Analysis, bundle_bytes: bytes | None = None, redactions: list | None = None
) -> RenderedReport:
    """render_markdown's report and its form parts, all cut to the same level so the parts fit together."""
    env = template_environment()
    text, view = "", {}
    for level in LEVELS:
        view = build_view(analysis, bundle_bytes, redactions, level)
        text = env.get_template("report.md.j2").render(**view)
        if len(text) <= GITHUB_BODY_LIMIT:
            break
    else:
        text = _minimal_report(analysis, text)
    environment = env.get_template("_environment.md.j2").render(**view).rstrip("\n") + "\n"
    describe = env.get_template("_describe.md.j2").render(**view).rstrip("\n") + "\n"
    if len(describe) > GITHUB_BODY_LIMIT:
        describe = text  # only when even the tightest level was too long: text is then the minimal report
    if len(environment) > GITHUB_BODY_LIMIT:
        environment = "_The environment did not fit in an issue: it is in the attached bundle._\n"
    return RenderedReport(view["title"], text, environment, describe)


def _minimal_report(analysis: Analysis, full: str) -> str:
    """Last resort when even the tightest level is too long: title, diagnosis titles, signature."""
    lines = [f"**Suggested title:** {md.inline_code(suggested_title(analysis))}", "", "### Diagnosis", ""]
    for f in analysis.diagnoses[:MAX_FINDINGS]:
        lines.append(f"- {md.one_line(f.title, 300)} ({md.escape_text(f.category)}, confidence {f.confidence:.2f})")
    lines += [
        "",
        f"Signature: {md.inline_code(analysis.signature)}",
        "",
        f"_The full report ({len(full):,} characters) did not fit GitHub's {GITHUB_BODY_LIMIT:,}-character "
        "limit; attach the bundle's .zip instead._",
        "",
    ]
    return "\n".join(lines)[:GITHUB_BODY_LIMIT]


# -- the view ------------------------------------------------------------------------------


def build_view(analysis: Analysis, bundle_bytes: bytes | None, redactions: list | None, level: dict) -> dict[str, Any]:
    facts = analysis.facts
    redacted_by_collector = analysis.input_kind == "bundle" or redactions is not None
    if redactions is None:
        redactions = getattr(facts, "redactions", None)
    return {
        "title": suggested_title(analysis),
        "environment": md.fence(_cut(environment_summary(facts), level["env_chars"])),
        "environment_headline": environment_headline(facts),
        "topology": _topology_view(facts, level),
        "nodes": _nodes_view(facts),
        "collection_problems": facts.collection_problems[:6],
        "launch_command": wrap_command(facts.launch_command) if facts.launch_command else None,
        "root_cause": _root_cause_view(facts, level),
        "xid": _xid_view(facts),
        "log_excerpt": _log_excerpt(facts, level),
        "diagnoses": [_finding_view(f, level) for f in analysis.diagnoses[:MAX_FINDINGS]],
        "more_diagnoses": max(0, len(analysis.diagnoses) - MAX_FINDINGS),
        "missing": describe.missing_for_diagnosis(facts) if not analysis.diagnoses else [],
        "signature": analysis.signature,
        "signature_explanation": md.fence("\n".join(analysis.signature_explanation[:60])),
        "known_issue": _known_issue_view(analysis.known_issue),
        "redactions": _redaction_rows(redactions) if redacted_by_collector else [],
        "redacted_here": _redaction_rows(facts.redacted_here),
        "redacted_by_collector": redacted_by_collector,
        "input_sha256": analysis.sha256,
        "bundle": _bundle_view(bundle_bytes, level["embed"]),
    }


def suggested_title(analysis: Analysis) -> str:
    """Plain text for GitHub's title field: one line, '[Bug]: ' + the error + (vLLM version, GPU)."""
    facts = analysis.facts
    root = facts.root_cause
    if root is not None and root.exc_type not in ("", "Error") and root.message.strip():
        core = describe.root_cause_line(facts, limit=1000)  # searchable, like most vLLM issue titles
    elif describe.wrapper_only(facts, limit=1000):
        core = describe.wrapper_only(facts, limit=1000)  # what the reporter saw; its cause is missing
    elif analysis.diagnoses:
        core = analysis.diagnoses[0].title
    elif facts.title:
        core = re.sub(r"^\s*\[\w+\]\s*:?\s*", "", facts.title)
    else:
        core = "vLLM failure, no error message found"
    core = _shorten_title(" ".join(_SOURCE_LOCATION.sub(r"\1", md.clean(core)).split()))
    where = [f"vLLM {facts.vllm_version}"] if facts.vllm_version else []
    gpus = describe.gpu_names(facts)
    if gpus:
        where.append(gpus[0])
    suffix = " ".join(md.clean(", ".join(where)).split())[:80]
    return f"[Bug]: {core}" + (f" ({suffix})" if suffix else "")


_SOURCE_LOCATION = lazy_compile(r"/(?:[\w.+-]+/)+([\w.+-]+\.\w+):\d+")  # "/pytorch/.../ProcessGroupNCCL.cpp:3135"
_ERROR_CODE = lazy_compile(r"\b[Ee]rror \d+\b.*$")
_SENTENCE_END = lazy_compile(r"[.?!](?= )")


def _shorten_title(core: str) -> str:
    """At most TITLE_CORE_CHARS, cut after a whole sentence where one ends late enough, else at a
    word; a later 'Error 803: ...', which is what people search for, is kept after the first sentence."""
    core = core.rstrip(" .")
    if len(core) <= TITLE_CORE_CHARS:
        return core
    ends = [m.start() for m in _SENTENCE_END.finditer(core, 0, TITLE_CORE_CHARS)]
    code = _ERROR_CODE.search(core, 40)
    if code and code.start() > TITLE_CORE_CHARS - 20 and ends and ends[0] >= 30:
        core = core[: ends[0]] + " … " + code.group(0)
        if len(core) <= TITLE_CORE_CHARS:
            return core
        ends = []
    late = [e for e in ends if e >= 45]
    if late:
        return core[: late[-1]]
    cut = core[: TITLE_CORE_CHARS - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut[40:] else cut).rstrip(" ,.:;") + "…"


def wrap_command(command: str, width: int = 100) -> str:
    """A long one-line command as shell continuation lines, one option per line; a break never
    falls inside quotes, so the command pastes back into a shell unchanged in meaning."""
    if len(command) <= width or "\n" in command:
        return command
    pieces, start, quote = [], 0, ""
    for i, char in enumerate(command):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif command.startswith(" --", i) and i > start:
            pieces.append(command[start:i])
            start = i + 1
    pieces.append(command[start:])
    return " \\\n    ".join(pieces)


def environment_headline(facts) -> str:
    """The collapsed block's one visible line: GPU, driver, torch and vLLM at a glance."""
    parts = []
    gpus = describe.gpu_names(facts)
    if gpus or facts.input_kind == "bundle":
        parts.append(", ".join(gpus) or "no GPU found")
    if facts.driver_version:
        parts.append(f"driver {facts.driver_version}" + (f" (CUDA {facts.driver_cuda})" if facts.driver_cuda else ""))
    torch = describe.torch_state(facts)
    if torch:
        parts.append(f"torch {torch}")
    vllm = describe.vllm_state(facts)
    if vllm:
        parts.append("vLLM " + (vllm.split(":")[0].replace(", ", " ") if ":" in vllm else vllm))
    summary = " · ".join(parts) if parts else "nothing about the environment in the input"
    return f"{summary[:240]} (vllm-bug summary of the {facts.input_kind})"


def environment_summary(facts) -> str:
    """Plain text lines for the environment block (it goes into a fence, so no escaping needed)."""
    rows: list[tuple[str, str]] = []
    unknown: list[str] = []

    def row(label: str, value: str | None, name: str | None = None) -> None:
        """A labelled line; a fact named `name` that is missing is said once: per line for a bundle
        (the collector looked and found nothing), in one list for text (the input did not say)."""
        if value:
            rows.append((label, value))
        elif name and facts.input_kind == "bundle":
            rows.append((label, "not found"))
        elif name:
            unknown.append(name)

    row("GPU", "; ".join(describe.gpu_groups(facts)), "GPU")
    row("GPU memory in use", "; ".join(describe.gpu_memory_in_use(facts)))
    for line in describe.gpu_processes(facts):
        row("GPU process", line)
    row("NVIDIA driver", facts.driver_version, "driver")
    for label, value in describe.cuda_versions(facts):
        row(label, value)
    if not facts.nvcc_version:
        row("CUDA, nvcc toolkit", None, "nvcc")
    torch = describe.torch_state(facts)
    if torch and facts.torch_version and facts.torch_cuda_available is not None:
        devices = f", {facts.torch_device_count} device(s)" if facts.torch_device_count is not None else ""
        torch += f"; sees CUDA: {'yes' if facts.torch_cuda_available else 'NO'}{devices}"
    row("torch", torch, "torch")
    if facts.torch_arch_list:
        row("torch arch list", " ".join(facts.torch_arch_list))
    row("vLLM", describe.vllm_state(facts), "vLLM")
    row("Python", _python_line(facts), "Python")
    if facts.python_executable:
        because = f" ({facts.python_chosen_because})" if facts.python_chosen_because else ""
        row("Python inspected", facts.python_executable + because)
    for warning in facts.python_warnings[:4]:
        row("Collector warning", warning)
    row("OS", ", ".join(x for x in (facts.os, f"kernel {facts.kernel}" if facts.kernel else None) if x), "OS")
    row("Platform", facts.python_platform)
    if facts.glibc:
        row("glibc", facts.glibc + (f" (GLIBCXX up to {facts.glibcxx_max})" if facts.glibcxx_max else ""))
    row("CPU", describe.cpu_line(facts))
    row("CPU flags", " ".join(facts.cpu_flags))
    if len(facts.gpus) >= 2:
        row("NUMA", describe.numa_line(facts))
    row("Container", ", ".join(k for k, v in (facts.container or {}).items() if v))
    if facts.shm_total_bytes:
        row("/dev/shm", f"{facts.shm_total_bytes / 2**30:.1f} GiB")
    if unknown:
        row("Not in the input", ", ".join(unknown))
    lines = [f"{label + ':':<{LABEL_WIDTH}}{value}" for label, value in rows]
    lines += _package_lines(facts)
    lines += _conda_lines(facts.conda_packages)
    if facts.cudnn_libraries:
        lines += ["", "cuDNN libraries the dynamic linker finds:"] + [f"  {p}" for p in facts.cudnn_libraries[:16]]
    lines += _env_lines(facts.env)
    if facts.engine_args:
        lines += ["", "Engine arguments (non-default):"]
        lines += [f"  {key}={_short(facts.engine_args[key])}" for key in sorted(facts.engine_args)[:60]]
    return "\n".join(lines)


def _package_lines(facts) -> list[str]:
    """Key package versions, several to a line; torch and vLLM only when not already shown above."""
    shown = {"torch": facts.torch_version, "vllm": facts.vllm_version}
    packages = [
        f"{name}=={facts.packages[name]}" for name in KEY_PACKAGES if name in facts.packages and not shown.get(name)
    ]
    if not packages:
        return []
    lines, current = ["", "Key packages:"], " "
    for item in packages:
        if len(current) + len(item) > 100:
            lines.append(current.rstrip())
            current = " "
        current += " " + item
    lines.append(current.rstrip())
    return lines


def _python_line(facts) -> str | None:
    """'3.12.3 (main, Aug 31 2026, 10:18:26) [GCC 13.3.0], 64-bit' where the bundle has the build, else the version."""
    line = facts.python_build or facts.python_version
    if line and facts.python_bits:
        line += f", {facts.python_bits}-bit"
    return line


_CONDA_RELEVANT = lazy_compile(
    r"torch|numpy|cuda|cudnn|nccl|mkl|magma|triton|transformers|flash|vllm|xformers|nvidia|"
    r"^python$|^libstdcxx|^libgcc"
)
MAX_CONDA_PACKAGES = 40


def _conda_lines(conda: dict[str, str]) -> list[str]:
    """conda's packages that matter to a GPU bug (collect_env lists the same kind), several to a line."""
    relevant = [f"{name}={conda[name]}" for name in sorted(conda) if _CONDA_RELEVANT.search(name)]
    if not relevant:
        return []
    lines, current = ["", f"Conda packages ({len(relevant)} of {len(conda)}):"], " "
    for item in relevant[:MAX_CONDA_PACKAGES]:
        if len(current) + len(item) > 100:
            lines.append(current.rstrip())
            current = " "
        current += " " + item
    lines.append(current.rstrip())
    return lines


def _topology_view(facts, level: dict) -> dict[str, Any] | None:
    """For two or more GPUs: the `nvidia-smi topo -m` matrix, folded, with its links in the summary line."""
    if len(facts.gpus) < 2 or not facts.gpu_topology:
        return None
    from vllm_bug.analyzer.topology import interconnect_summary

    links = interconnect_summary(facts.gpu_topology)
    summary = "GPU interconnect (nvidia-smi topo -m)" + (f": {links}" if links else "")
    return {"summary": summary[:300], "block": md.fence(_cut(facts.gpu_topology, level["env_chars"]))}


MAX_NODE_COLUMNS = 16
MAX_NODE_ROWS = 40
NODE_CELL_CHARS = 80


def _nodes_view(facts) -> dict[str, Any] | None:
    """A cluster bundle's per-node table, folded: one column per node, the rows that differ first (marked)."""
    if not facts.nodes:
        return None
    shown = facts.nodes[:MAX_NODE_COLUMNS]
    header = "| | " + " | ".join(md.one_line(node.label, 40) for node in shown) + " |"
    lines = [header, "|---" * (len(shown) + 1) + "|"]
    rows = describe.node_rows(facts)
    for label, values, differs in rows[:MAX_NODE_ROWS]:
        name = f"**{md.one_line(label, 60)}** (differs)" if differs else md.one_line(label, 60)
        cells = [md.inline_code(_short_cell(v), table=True) for v in values[: len(shown)]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    notes = []
    if len(facts.nodes) > MAX_NODE_COLUMNS:
        notes.append(f"{len(facts.nodes) - MAX_NODE_COLUMNS} more nodes are in the bundle.")
    if len(rows) > MAX_NODE_ROWS:
        notes.append(f"{len(rows) - MAX_NODE_ROWS} more rows are in the bundle.")
    table = "\n".join(lines) + ("\n\n" + md.escape_text(" ".join(notes)) if notes else "")
    return {"summary": f"Nodes: {describe.nodes_line(facts)}"[:300], "table": md.MdSafe(table)}


def _short_cell(value: str) -> str:
    text = " ".join(value.split())
    return text if len(text) <= NODE_CELL_CHARS else text[: NODE_CELL_CHARS - 1] + "…"


def _env_lines(env: dict[str, str]) -> list[str]:
    if not env:
        return []
    hidden = [n for n in env if n.startswith(HIDDEN_ENV_PREFIX) and n not in KEPT_NV_NAMES]
    names = sorted(n for n in env if n not in hidden)
    lines = ["", "Environment variables (allow-listed, secrets redacted):"]
    lines += [f"  {name}={_short(env[name])}" for name in names[:MAX_ENV_VARS]]
    if len(names) > MAX_ENV_VARS:
        lines.append(f"  ... {len(names) - MAX_ENV_VARS} more in the bundle")
    if hidden:
        lines.append(f"  ({len(hidden)} NV_* package pins of the CUDA base image not shown)")
    return lines


def _short(value: object) -> str:
    """A value as one line; one longer than ENV_VALUE_CHARS is cut well short of it, with a marker."""
    text = " ".join(str(value).split())
    keep = ENV_VALUE_CHARS * 3 // 5
    return text if len(text) <= ENV_VALUE_CHARS else f"{text[:keep]}…[+{len(text) - keep} chars]"


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
            body = (
                md.cut_middle(head, max(500, level["tb_chars"] - len(exception_line) - len(tail)))[0]
                + exception_line[:200]
                + tail
            )
        else:
            body = md.cut_middle(body, level["tb_chars"])[0]
        if exception_line[:200] not in body:
            body += "\n" + exception_line[:4000]
    return {"exception": exception_line, "traceback": md.fence(body, "python")}


def _xid_view(facts) -> dict[str, Any] | None:
    if not facts.xid:
        return None
    lines = [str(x)[:300] for x in facts.xid[-MAX_XID_LINES:]]
    codes = describe.xid_codes(facts)
    return {
        "count": len(facts.xid),
        "codes": ", ".join(codes[:10]),
        "plural": "s" if len(facts.xid) > 1 else "",
        "shown": len(lines),
        "block": md.fence("\n".join(lines)),
    }


def _log_excerpt(facts, level: dict) -> dict[str, Any] | None:
    if not facts.lines or _log_adds_nothing(facts):
        return None
    if level["log_lines"] == 0:
        return {"block": None, "total": len(facts.lines), "cut": len(facts.lines)}
    text, dropped = md.cut_middle("\n".join(facts.lines), level["log_chars"], level["log_lines"])
    summary = f"Log excerpt ({len(facts.lines):,} lines" + (f", {dropped:,} cut from the middle)" if dropped else ")")
    return {"block": md.fence(text), "total": len(facts.lines), "cut": dropped, "summary": summary}


def _log_adds_nothing(facts, allowance: int = 3) -> bool:
    """True when the log holds little beyond the traceback already shown (a script's own output)."""
    root = facts.root_cause
    if root is None or not root.text or len(facts.lines) > 200:
        return False
    shown = {line.strip() for line in root.text.splitlines()}
    extra = [line for line in facts.lines if line.strip() and line.strip() not in shown]
    return len(extra) <= allowance


def _finding_view(finding, level: dict) -> dict[str, Any]:
    evidence = [str(e)[: level["evidence_chars"]] for e in finding.evidence[:MAX_EVIDENCE_LINES]]
    memory = finding.details.get("memory") if isinstance(finding.details, dict) else None
    memory_lines = [str(x)[:300] for x in memory.get("lines", [])[:30]] if isinstance(memory, dict) else []
    return {
        "title": md.advice(str(finding.title)[:300]),
        "rule": finding.rule,
        "category": finding.category,
        "confidence": md.MdSafe(f"{finding.confidence:.2f}"),
        "evidence": md.fence("\n".join(evidence)) if evidence else None,
        "fixes": [md.advice(str(fix)[:MAX_FIX_CHARS]) for fix in finding.fixes[:MAX_FIXES]],
        "memory": md.fence("\n".join(memory_lines)) if memory_lines else None,
        "source": md.escape_text(finding.source_note()) if finding.source_note() else None,
    }


_ISSUE_REF = lazy_compile(r"([\w.-]+/[\w.-]+)#(\d+)")


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
        "related": md.MdSafe(
            ", ".join(
                link(r) if isinstance(link(r), md.MdSafe) else md.escape_text(r) for r in entry.get("related", [])[:8]
            )
        ),
        "fixed_in": entry.get("fixed_in"),
        "note": md.advice(entry.get("note", "")),
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
        )
        if (fits and embed_allowed)
        else None,
        "too_big_to_embed": not fits,
    }
