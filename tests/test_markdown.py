import re

import pytest
from markdown_it import MarkdownIt

from vllm_bug.analyzer.markdown import (
    MdSafe,
    advice,
    cut_middle,
    details,
    escape_prose,
    escape_text,
    fence,
    inline_code,
    md_finalize,
    one_line,
)

MD = MarkdownIt("commonmark").enable("table")


def tokens(text):
    out = []
    for t in MD.parse(text):
        out.append(t)
        out.extend(t.children or [])
    return out


def visible_text(text: str) -> str:
    """The rendered HTML with code removed: where GitHub would link mentions and references."""
    html = MD.render(text)
    html = re.sub(r"<pre>.*?</pre>", "", html, flags=re.S)
    return re.sub(r"<code>.*?</code>", "", html, flags=re.S)


@pytest.mark.parametrize("payload", ["a ``` b", "````` x", "```\n```` \n`", "no ticks", "`", "x" * 10 + "`" * 40])
def test_fence_cannot_be_closed_by_its_content(payload):
    doc = fence(payload + "\n# heading after") + "\n\nafter"
    fences = [t for t in tokens(doc) if t.type == "fence"]
    assert len(fences) == 1
    assert fences[0].content.rstrip("\n") == payload + "\n# heading after"
    assert not any(t.type == "heading_open" for t in tokens(doc))


def test_fence_language_is_sanitised():
    assert fence("x", "py thon\n<b>").startswith("```\n")
    assert fence("x", "python").startswith("```python\n")


@pytest.mark.parametrize("payload", ["a`b", "``x``", "`start", "end`", "pipe | inside", "two\nlines"])
def test_inline_code_round_trips(payload):
    rendered = MD.render(inline_code(payload))
    code = re.search(r"<code>(.*)</code>", rendered, re.S).group(1)
    import html

    assert html.unescape(code).strip() == payload.replace("\n", " ").strip()


def test_inline_code_in_a_table_cell_keeps_the_row():
    table = "| a | b |\n|---|---|\n| " + inline_code("x|y", table=True) + " | 2 |\n"
    cells = [t for t in tokens(table) if t.type == "td_open"]
    assert len(cells) == 2


HOSTILE = "<script>alert(1)</script> </details> <!-- hide --> @someone #123 GH-45 owner/repo#45 &#64;x **b** [l](http://x) ![i](y) | ~~s~~ $x$"


def test_escape_text_neutralises_html_markdown_and_references():
    doc = escape_text(HOSTILE)
    toks = tokens(doc)
    assert not [
        t for t in toks if t.type in ("html_inline", "html_block", "link_open", "image", "strong_open", "s_open")
    ]
    shown = visible_text(doc)
    assert not re.search(r"@[A-Za-z0-9]", shown)
    assert not re.search(r"#\d|GH-\d", shown)
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert "&amp;#" in shown and "&#64;" not in shown  # the entity cannot resurrect an @


def test_escape_text_blocks_line_start_syntax():
    for line in ["# h", "- item", "+ item", "1. item", "2) item", "> quote", "    indented", "===", "---"]:
        for doc in (escape_text(line), escape_text("para\n" + line)):
            toks = {t.type for t in tokens(doc)}
            assert not toks & {
                "heading_open",
                "bullet_list_open",
                "ordered_list_open",
                "blockquote_open",
                "hr",
                "code_block",
            }, (line, toks)


def test_one_line_collapses_and_shortens():
    out = one_line("a\nb |c\r\n" + "x" * 1000, max_chars=50)
    assert "\n" not in out and "\\|" in out and len(out) < 80


def test_escape_prose_keeps_code_spans_as_code():
    doc = escape_prose("Add `--enforce-eager` and <b>@bob</b> `<img src=x>`")
    toks = tokens(doc)
    assert [t.content for t in toks if t.type == "code_inline"] == ["--enforce-eager", "<img src=x>"]
    assert not [t for t in toks if t.type.startswith("html")]


def test_details_structure_and_body_cannot_escape():
    body = fence("</details>\n<!-- x\n<script>")
    doc = details("Summary <b>@x</b>", body) + "\nafter **bold**\n"
    html_tokens = [t for t in tokens(doc) if t.type in ("html_block", "html_inline")]
    joined = "".join(t.content for t in html_tokens)
    assert joined.count("<details>") == 1 and joined.count("</details>") == 1
    assert "<b>" not in joined and "@x" not in joined
    assert "\n<summary>" in doc and "</summary>\n\n" in doc  # blank line after </summary>
    # an unmarked body is escaped as prose
    raw = details("s", "</details><script>")
    assert raw.count("</details>") == 1 and "<script>" not in raw


def test_finalize_passes_mdsafe_and_escapes_the_rest():
    assert md_finalize(MdSafe("<details>")) == "<details>"
    assert md_finalize("<b>") == "&lt;b>"  # with "<" escaped, no tag can open
    assert md_finalize(None) == ""
    assert md_finalize(3) == "3"


def test_control_ansi_and_bidi_characters_are_removed():
    assert escape_text("\x1b[31mred\x1b[0m\u202eevil\x00") == "redevil"


def test_cut_middle_keeps_both_ends_and_says_what_was_cut():
    text = "\n".join(f"line {i}" for i in range(10_000))
    cut, dropped = cut_middle(text, 2_000)
    assert cut.startswith("line 0\n") and cut.endswith("line 9999")
    assert len(cut) < 2_200 and dropped > 9_000
    assert re.search(r"\[\.\.\. [\d,]+ characters \([\d,]+ lines\) cut here by vllm-bug \.\.\.\]", cut)
    by_lines, dropped = cut_middle(text, 10**9, max_lines=30)
    assert len(by_lines.split("\n")) == 31 and dropped == 9_970
    assert cut_middle("short", 100) == ("short", 0)


def code_spans(doc: str) -> list[str]:
    return [t.content for t in tokens(doc) if t.type == "code_inline"]


def test_advice_shows_flags_variables_commands_and_paths_as_code():
    doc = advice(
        "rerun with CUDA_LAUNCH_BLOCKING=1 and --enforce-eager, lower --max-model-len 8192, "
        "set --kv-cache-dtype fp8, check nvidia-smi topo -m, mount /dev/shm, "
        "run pip install -U vllm, or -O0 (no torch.compile); unset VLLM_ATTENTION_BACKEND"
    )
    assert code_spans(doc) == [
        "CUDA_LAUNCH_BLOCKING=1",
        "--enforce-eager",
        "--max-model-len 8192",
        "--kv-cache-dtype fp8",
        "nvidia-smi topo -m",
        "/dev/shm",
        "pip install -U vllm",
        "-O0",
        "torch.compile",
        "VLLM_ATTENTION_BACKEND",
    ]
    assert "\\" not in doc  # nothing in our own words needed a backslash


def test_advice_keeps_quoted_code_and_the_space_after_it():
    doc = advice("check `ldconfig -p | grep libcuda` inside the container")
    assert doc == "check `ldconfig -p | grep libcuda` inside the container"
    assert escape_prose("add `--enforce-eager` now") == "add `--enforce-eager` now"


def test_advice_still_escapes_what_it_quotes_from_the_reporter():
    doc = advice("lower --gpu-memory-utilization (now 0.9 <img src=x onerror=1> @alice #12 **b** _e_)")
    toks = tokens(doc)
    assert code_spans(doc) == ["--gpu-memory-utilization"]
    assert not [t for t in toks if t.type in ("html_inline", "html_block", "strong_open", "em_open", "image")]
    shown = visible_text(doc)
    assert not re.search(r"@[A-Za-z0-9]", shown) and not re.search(r"#\d", shown)


def test_underscores_inside_words_need_no_backslash_but_emphasis_is_still_blocked():
    assert escape_text("CUDA_HOME and max_model_len") == "CUDA_HOME and max_model_len"
    doc = escape_text("_emph_ and __strong__ and a_ _b")
    assert not {t.type for t in tokens(doc)} & {"em_open", "strong_open"}
    assert MD.render(doc).strip() == "<p>_emph_ and __strong__ and a_ _b</p>"


def test_a_mid_line_fragment_keeps_its_leading_space_and_number():
    assert escape_text(" 1. next", line_start=False) == " 1. next"
    assert escape_text(" 1. next") == "1\\. next"
    assert escape_text("a\n1. b", line_start=False) == "a\n1\\. b"


def test_advice_does_not_take_a_hyphenated_alternative_for_a_path():
    # "8-/4-bit" rendered "/4-bit" as code: a slash right after a hyphen joins two words, it starts no path
    doc = advice("lower precision (bf16/fp16, or 8-/4-bit quantization); mount /dev/shm")
    assert code_spans(doc) == ["/dev/shm"]
    assert "8-/4-bit quantization" in MD.render(doc)
