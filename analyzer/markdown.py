"""Escaping helpers: the only way text from a report reaches GitHub Markdown.

Untrusted text goes either into code (fences, inline code), where GitHub neither renders HTML nor
links @mentions and #refs, or through `escape_text`, which neutralises HTML, Markdown syntax,
mentions and issue references. Helpers return `MdSafe`, a str marking already-rendered Markdown
that the template layer passes through untouched; anything else is escaped.
"""

from __future__ import annotations

import re

from vllm_bug.formats.ansi import MARKDOWN, strip_ansi, strip_control
from vllm_bug.formats.lazyre import lazy_compile

ZWSP = "\u200b"

_BACKTICK_RUN = lazy_compile(r"`+")
_TILDE_RUN = lazy_compile(r"~+")
_MD_SPECIAL = lazy_compile(r"[\\`*_\[\]#|~$]")
_LINE_START_SPECIAL = lazy_compile(r"^(\s*)([-+=>])", re.MULTILINE)
_INNER_LINE_START_SPECIAL = lazy_compile(r"(?<=\n)(\s*)([-+=>])")
_INNER_LEADING_SPACE = lazy_compile(r"(?<=\n)[ \t]+")
_INNER_ORDERED_LIST = lazy_compile(r"(?<=\n)(\s*\d+)([.)])")
_MENTION = lazy_compile(r"@(?=[A-Za-z0-9_\-])")
_HASH_REF = lazy_compile(r"#(?=\d)")
_GH_REF = lazy_compile(r"\b(GH-)(?=\d)", re.IGNORECASE)
_LEADING_SPACE = lazy_compile(r"^[ \t]+", re.MULTILINE)
_ORDERED_LIST = lazy_compile(r"^(\s*\d+)([.)])", re.MULTILINE)
_LANG_OK = lazy_compile(r"[A-Za-z0-9_+\-]{1,30}")


class MdSafe(str):
    """Markdown that the helpers here produced; rendered as is."""

    __slots__ = ()


def clean(text: object) -> str:
    """Text as a plain str: CRLF normalised, ANSI colour codes, control and bidi characters removed."""
    s = "" if text is None else str(text)
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = strip_ansi(s, MARKDOWN)
    return strip_control(s, bidi=True)


def longest_run(text: str, char: str = "`") -> int:
    rx = _BACKTICK_RUN if char == "`" else _TILDE_RUN
    return max((len(m.group(0)) for m in rx.finditer(text)), default=0)


def break_references(text: str) -> str:
    """Insert a zero-width space so GitHub links no @mention, #123, GH-123 or owner/repo#123."""
    text = _MENTION.sub("@" + ZWSP, text)
    text = _HASH_REF.sub("#" + ZWSP, text)
    return _GH_REF.sub(lambda m: m.group(1) + ZWSP, text)


def escape_html(text: object) -> str:
    """For text inside raw HTML (a <summary>): entities only, plus broken references."""
    s = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return break_references(s)


def escape_text(text: object, line_start: bool = True) -> MdSafe:
    """Prose: no raw HTML, no Markdown syntax, no live mentions or references; newlines kept.

    `line_start=False` is for a fragment placed mid-line (after a code span): its first character
    does not start a Markdown line, so leading spaces and "1." stay as they are.
    """
    s = clean(text).replace("&", "&amp;").replace("<", "&lt;")  # with no "<", a ">" opens nothing mid-line
    leading, ordered, line_special = (
        (_LEADING_SPACE, _ORDERED_LIST, _LINE_START_SPECIAL)
        if line_start
        else (_INNER_LEADING_SPACE, _INNER_ORDERED_LIST, _INNER_LINE_START_SPECIAL)
    )
    s = leading.sub("", s)  # four spaces would start an indented code block
    s = _MD_SPECIAL.sub(_escape_special, s)
    s = ordered.sub(r"\1\\\2", s)
    s = line_special.sub(r"\1\\\2", s)
    return MdSafe(break_references(s))


def _escape_special(m: re.Match[str]) -> str:
    """A backslash before Markdown punctuation, except an underscore inside a word (CUDA_HOME):
    CommonMark never opens or closes emphasis on an underscore with a letter or digit on both sides."""
    char, at, s = m.group(0), m.start(), m.string
    if char == "_" and 0 < at < len(s) - 1 and s[at - 1].isalnum() and s[at + 1].isalnum():
        return char
    return "\\" + char


def one_line(text: object, max_chars: int = 300) -> MdSafe:
    """A title or table cell: whitespace collapsed, shortened, escaped (pipes included)."""
    s = " ".join(clean(text).split())
    if len(s) > max_chars:
        s = s[: max_chars - 1].rstrip() + "…"
    return escape_text(s)


def inline_code(text: object, table: bool = False) -> MdSafe:
    """A code span that no backtick in the text can close; `table=True` also escapes pipes."""
    s = " ".join(clean(text).split("\n")).strip("\n")
    if not s:
        return MdSafe("")
    ticks = "`" * (longest_run(s) + 1)
    if s[0] in "` " or s[-1] in "` ":
        s = f" {s} "
    if table:
        s = s.replace("|", "\\|")
    return MdSafe(f"{ticks}{s}{ticks}")


_CODE_SPAN = lazy_compile(r"(`+)([^`\n]+?)\1(?!`)")


def escape_prose(text: object) -> MdSafe:
    """Prose that may quote code in backticks (advice such as "add `--enforce-eager`"): the backtick
    spans become real code spans, everything else is escaped as in escape_text."""
    return _with_code_spans(clean(text), escape_text)


def _with_code_spans(s: str, render_plain) -> MdSafe:
    out: list[str] = []
    pos = 0
    for m in _CODE_SPAN.finditer(s):
        out.append(render_plain(s[pos : m.start()], pos == 0))
        out.append(inline_code(m.group(2)))
        pos = m.end()
    out.append(render_plain(s[pos:], pos == 0))
    return MdSafe("".join(out))


# What advice mentions that reads best as code: flags with their value, NAME=value, env var names,
# shell commands, Python calls and modules, absolute paths.
_FLAG_VALUE = (
    r"""(?:'[^'\n]{1,200}'|\d[\w.:+-]*|[A-Z][A-Z0-9_]*\b|[a-z]+\d[\w.]*|half|float|auto|dummy|all|host|nvidia)"""
)
_ADVICE_TOKEN = lazy_compile(
    r"(?<![\w-])--[a-z][a-z0-9-]*(?:=[^\s,;)]+|\s" + _FLAG_VALUE + r"(?![\w-]))?"  # --max-model-len 8192
    r"|(?<![\w-])-O\d\b"  # -O0
    r"|\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+=[^\s,;]*[^\s,;.:)]"  # CUDA_LAUNCH_BLOCKING=1
    r"|\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?:\.\d+)*\b"  # CUDA_VISIBLE_DEVICES, GLIBC_2.32
    r"|\bnvidia-smi(?:\s(?:topo|-[-\w=]+(?:,[-\w=]+)*))*"
    r"|\b(?:uv\s)?pip\sinstall(?:\s(?:-[-\w=]+|\.(?!\w)|[a-z][\w.\[\]-]*(?:[=<>]=?[\w.*]+)?)){1,4}"
    r"|\b(?:ldconfig\s-p|lsmod|dmesg|ulimit\s-l|cuda-gdb|tlparse)\b"
    r"|(?<![\w/.])(?:[A-Za-z_]\w*)?(?:\.[A-Za-z_]\w*)*\.?[A-Za-z_]\w*\(\)"  # torch.cuda.get_arch_list(), .item()
    r"|\b(?:vllm|torch|triton)\.[A-Za-z_][\w.]*[A-Za-z_]"  # vllm._C, torch.compile
    r"|(?<![\w.~/-])~?/[\w.+%*-]+(?:/[\w.+%*-]+)*/?"  # /dev/shm, ~/.cache/vllm; not "/4-bit" in "8-/4-bit"
)


def advice(text: object) -> MdSafe:
    """Our own advice (a fix, a finding's title): flags, variables, commands and paths become inline
    code so the source reads cleanly; the rest is escaped, since advice may quote the reporter's
    values. Text already in backticks is code as written."""
    return _with_code_spans(" ".join(clean(text).split()), _advice_plain)


def _advice_plain(s: str, line_start: bool) -> str:
    out: list[str] = []
    pos = 0
    for m in _ADVICE_TOKEN.finditer(s):
        token = m.group(0)
        out.append(escape_text(s[pos : m.start()], line_start=line_start and pos == 0))
        out.append(inline_code(token))
        pos = m.end()
    out.append(escape_text(s[pos:], line_start=line_start and pos == 0))
    return "".join(out)


def cut_middle(text: str, max_chars: int, max_lines: int | None = None) -> tuple[str, int]:
    """Keep the head and the tail, drop the middle; returns (text, lines dropped). A line marks the cut."""
    lines = text.split("\n")
    if max_lines is not None and len(lines) > max_lines:
        head = max(1, max_lines // 3)
        tail = max(1, max_lines - head)
        dropped = len(lines) - head - tail
        lines = lines[:head] + [f"[... {dropped:,} lines cut here by vllm-bug ...]"] + lines[-tail:]
    else:
        dropped = 0
    joined = "\n".join(lines)
    if len(joined) <= max_chars:
        return joined, dropped
    head_chars = max_chars // 3
    tail_chars = max_chars - head_chars
    head_part = joined[:head_chars].rsplit("\n", 1)[0] if "\n" in joined[:head_chars] else joined[:head_chars]
    tail_part = joined[-tail_chars:].split("\n", 1)[-1] if "\n" in joined[-tail_chars:] else joined[-tail_chars:]
    cut = joined[len(head_part) : len(joined) - len(tail_part)]
    more = cut.count("\n")
    marker = f"\n[... {len(cut):,} characters ({more:,} lines) cut here by vllm-bug ...]\n"
    return head_part + marker + tail_part, dropped + more


def fence(text: object, lang: str = "text") -> MdSafe:
    """A fenced code block longer than any backtick run inside, so the text cannot end it."""
    s = clean(text).rstrip("\n")
    ticks = "`" * max(3, longest_run(s) + 1)
    lang = lang if lang and _LANG_OK.fullmatch(lang) else ""
    return MdSafe(f"{ticks}{lang}\n{s}\n{ticks}")


def details(summary: object, body_markdown: object, open_: bool = False) -> MdSafe:
    """A collapsed section. The body must be MdSafe (built by these helpers) or it is escaped as prose,
    so nothing from a report can close the block early or open a comment."""
    body = body_markdown if isinstance(body_markdown, MdSafe) else escape_text(body_markdown)
    summary_html = escape_html(" ".join(clean(summary).split()))
    tag = "<details open>" if open_ else "<details>"
    return MdSafe(f"{tag}\n<summary>{summary_html}</summary>\n\n{body.strip(chr(10))}\n\n</details>\n")


def md_finalize(value: object) -> object:
    """jinja2 finalize hook: every {{ expression }} is escaped unless it is MdSafe."""
    if isinstance(value, MdSafe):
        return value
    if value is None:
        return ""
    return escape_text(value)
