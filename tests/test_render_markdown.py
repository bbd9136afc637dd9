import html
import re

import pytest
from markdown_it import MarkdownIt

from report_helpers import analysis_for, corpus_cases, facts_from_text
from vllm_bug.analyzer.facts import Facts, Frame, Gpu, Traceback
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.known_issues import match_known_issue
from vllm_bug.analyzer.render_markdown import GITHUB_BODY_LIMIT, render_markdown
from vllm_bug.analyzer.signature import compute_signature

MD = MarkdownIt("commonmark").enable("table")
OUR_TAGS = re.compile(r"</?details(?: open)?>|</?summary>|</?sub>")

HOSTILE_LINES = [
    "``` end of fence?",
    "````` longer",
    "</details>",
    "<!-- hide the rest",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "@someone please look",
    "see #123 and GH-77 and owner/repo#45",
    "</summary><details open>",
    "# not a heading",
    "~~~",
    "&#64;entity",
]


def hostile_facts(extra_log_lines: int = 0) -> Facts:
    frames = [
        Frame(
            path="/usr/lib/python3.12/site-packages/vllm/v1/worker/gpu_model_runner.py",
            line=10,
            function="execute_model",
        ),
        Frame(
            path="/usr/lib/python3.12/site-packages/vllm/model_executor/models/llama.py", line=99, function="forward"
        ),
    ]
    tb_text = (
        "Traceback (most recent call last):\n"
        + "\n".join(HOSTILE_LINES)
        + "\nRuntimeError: CUDA error: ``` @evil </details>"
    )
    root = Traceback(exc_type="RuntimeError", message="CUDA error: ``` @evil </details>", frames=frames, text=tb_text)
    lines = HOSTILE_LINES * 3 + [
        f"INFO 01-01 12:00:{i % 60:02d} noise line {i} @user{i} #{i}" for i in range(extra_log_lines)
    ]
    return Facts(
        lines=lines,
        tracebacks=[root],
        root_cause=root,
        vllm_version="0.11.0 <b>@x</b>",
        gpus=[Gpu(name="NVIDIA H100 </details> @gpu", compute_capability=(9, 0), memory_total_bytes=80 << 30)],
        driver_version="570.1",
        driver_cuda="12.8",
        torch_version="2.8.0+cu128",
        torch_cuda="12.8",
        env={"VLLM_X": "</details><!--", "CUDA_VISIBLE_DEVICES": "0,1 @someone #9"},
        packages={"torch": "2.8.0", "transformers": "4.56 ```"},
        launch_command="vllm serve m ``` </details> @a",
        title="[Bug]: hostile #1 @title",
    )


def hostile_finding(evidence_repeat: int = 1) -> Finding:
    return Finding(
        rule="ILLEGAL_MEMORY_ACCESS",
        category="illegal_memory_access",
        confidence=0.9,
        title="Illegal memory access </details> @title #5",
        evidence=["</details> <!-- ``` @ev #1"] * evidence_repeat,
        fixes=["Try `--enforce-eager` </details> <script>", "Mention @someone and #12 and `a``b`"],
    )


def check_safe(report: str) -> None:
    """The report parses as intended: only our own HTML, balanced <details>, no live mentions/refs."""
    assert len(report) <= GITHUB_BODY_LIMIT
    tokens = MD.parse(report)
    inline = [c for t in tokens for c in (t.children or [])]
    html_parts = [t.content for t in tokens + inline if t.type in ("html_block", "html_inline")]
    for part in html_parts:
        leftover = OUR_TAGS.sub("", part)
        assert "<" not in leftover, part
    joined = "".join(html_parts)
    opened = len(re.findall(r"<details(?: open)?>", joined))
    assert opened == joined.count("</details>")
    assert "<!--" not in joined
    # each details block opens and closes in order (no nesting we didn't make)
    depth = 0
    for m in re.finditer(r"<details(?: open)?>|</details>", joined):
        depth += 1 if m.group(0) != "</details>" else -1
        assert 0 <= depth <= 1
    rendered = MD.render(report)
    visible = re.sub(r"<pre>.*?</pre>|<code>.*?</code>", "", rendered, flags=re.S)
    visible = re.sub(r'<a href="https://github.com/vllm-project/vllm/issues/\d+">[^<]*</a>', "", visible)
    text = html.unescape(re.sub(r"<[^>]+>", "", visible))
    assert not re.search(r"@[A-Za-z0-9]", text), re.findall(r".{20}@[A-Za-z0-9].{10}", text)[:3]
    assert not re.search(r"(?:#|GH-)\d", text), re.findall(r".{20}#\d.{5}", text)[:3]


def test_hostile_report_is_safe_and_keeps_its_parts():
    facts = hostile_facts()
    sig, why = compute_signature(facts)
    analysis = analysis_for(facts, [hostile_finding()], signature=sig)
    analysis.signature_explanation = why
    report = render_markdown(analysis, redactions=[{"kind": "hf_token </details>", "count": 2}])
    check_safe(report)
    assert "### Your current environment" in report and "### 🐛 Describe the bug" in report
    fences = [t for t in MD.parse(report) if t.type == "fence"]
    # the root-cause traceback survives whole inside one fence
    assert any(
        "RuntimeError: CUDA error: ``` @evil </details>" in f.content and "````` longer" in f.content for f in fences
    )
    assert any("NVIDIA H100 </details> @gpu (compute capability 9.0, 80.0 GiB)" in f.content for f in fences)
    assert "Illegal memory access" in report and "--enforce-eager" in report
    assert sig in report


def test_huge_inputs_are_cut_in_the_middle_but_keep_diagnosis_and_root_cause():
    facts = hostile_facts(extra_log_lines=200_000)
    facts.root_cause.text = (
        "Traceback (most recent call last):\n"
        + "\n".join(f'  File "/x/site-packages/vllm/m{i}.py", line {i}, in f{i}\n    call()' for i in range(50_000))
        + "\nRuntimeError: CUDA error: ``` @evil </details>"
    )
    facts.env = {f"VLLM_VAR_{i}": "v" * 5000 for i in range(1000)}
    findings = [hostile_finding(evidence_repeat=10_000) for _ in range(50)]
    report = render_markdown(analysis_for(facts, findings), bundle_bytes=b"\x28\xb5\x2f\xfd" + b"z" * 20_000)
    check_safe(report)
    assert "Illegal memory access" in report  # the diagnosis
    assert "RuntimeError: CUDA error: ``` @evil </details>" in report  # the root cause
    assert re.search(r"cut here by vllm-bug", report)
    assert "45 less likely diagnoses left out" in report


def test_report_always_fits_even_with_absurd_fields():
    facts = hostile_facts()
    facts.root_cause.message = "x" * 300_000
    facts.root_cause.text = "y" * 300_000
    finding = Finding(
        rule="R",
        category="other",
        confidence=0.5,
        title="t" * 100_000,
        evidence=["e" * 100_000] * 6,
        fixes=["f" * 100_000] * 8,
    )
    report = render_markdown(analysis_for(facts, [finding] * 5))
    check_safe(report)


def test_small_bundle_is_embedded_and_large_one_is_not():
    facts = hostile_facts()
    small = render_markdown(analysis_for(facts), bundle_bytes=b"\x28\xb5\x2f\xfd" + b"a" * 1000)
    assert "BEGIN VLLM-BUG BUNDLE v1" in small and ".zip" in small
    big = render_markdown(analysis_for(facts), bundle_bytes=b"\x28\xb5\x2f\xfd" + b"a" * 100_000)
    assert "BEGIN VLLM-BUG BUNDLE" not in big and "too large to embed" in big
    check_safe(small)
    check_safe(big)


def test_known_issue_is_linked_and_rendered_safely():
    case = corpus_cases()["vllm-project/vllm#49101"]
    facts = facts_from_text(case["title"] + "\n" + case["error_text"])
    sig, why = compute_signature(facts)
    analysis = analysis_for(facts, signature=sig)
    analysis.known_issue = match_known_issue(sig, facts)
    report = render_markdown(analysis)
    check_safe(report)
    assert "[vllm-project/vllm#5613](https://github.com/vllm-project/vllm/issues/5613)" in report
    assert "Likely the same as" in report


def test_no_error_and_empty_facts_still_render():
    report = render_markdown(analysis_for(Facts()))
    check_safe(report)
    assert "No error message or Python traceback that explains the failure was found in the input." in report
    assert "No known problem was recognised" in report
    assert "`[Bug]: vLLM failure, no error message found`" in report


@pytest.mark.parametrize("case_id", sorted(corpus_cases()))
def test_every_corpus_case_renders_safely(case_id):
    case = corpus_cases()[case_id]
    facts = facts_from_text(case["title"] + "\n" + case["error_text"] + "\n" + case["env_text"], title=case["title"])
    sig, why = compute_signature(facts)
    analysis = analysis_for(facts, signature=sig)
    analysis.signature_explanation = why
    analysis.known_issue = match_known_issue(sig, facts)
    check_safe(render_markdown(analysis))


def test_redactions_table_lists_kinds_and_counts():
    report = render_markdown(
        analysis_for(Facts()),
        redactions=[
            {"kind": "hf_token", "count": 2},
            {"kind": "hf_token", "count": 1},
            {"kind": "url_credentials", "count": 4},
        ],
    )
    assert "| hf_token | 3 |" in report and "| url_credentials | 4 |" in report
    assert "Nothing needed redacting" in render_markdown(analysis_for(Facts()), redactions=[])


def test_compiled_templates_are_kept_in_the_user_cache_and_a_closed_cache_is_no_error(tmp_path, monkeypatch):
    from vllm_bug.analyzer.render_markdown import _bytecode_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = _bytecode_cache()
    assert cache is not None and (tmp_path / "cache" / "vllm-bug" / "templates").is_dir()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert _bytecode_cache() is None
