"""Escaping helpers: the only way text from a report reaches GitHub Markdown.

Untrusted text goes either into code (fences, inline code), where GitHub neither renders HTML nor
links @mentions and #refs, or through `escape_text`, which neutralises HTML, Markdown syntax,
mentions and issue references. Helpers return `MdSafe`, a str marking already-rendered Markdown
that the template layer passes through untouched; anything else is escaped.
"""

from __future__ import annotations

import re

ZWSP = "\u200b"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|ESC\[[0-9;]*m")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_BACKTICK_RUN = re.compile(r"`+")
_TILDE_RUN = re.compile(r"~+")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|~$])")
_LINE_START_SPECIAL = re.compile(r"^(\s*)([-+=])", re.MULTILINE)
_MENTION = re.compile(r"@(?=[A-Za-z0-9_\-])")
_HASH_REF = re.compile(r"#(?=\d)")
_GH_REF = re.compile(r"\b(GH-)(?=\d)", re.IGNORECASE)
_ORDERED_LIST = re.compile(r"^(\s*\d+)([.)])", re.MULTILINE)
_LANG_OK = re.compile(r"[A-Za-z0-9_+\-]{1,30}")


class MdSafe(str):
    """Markdown that the helpers here produced; rendered as is."""

    __slots__ = ()


def clean(text: object) -> str:
    """Text as a plain str: CRLF normalised, ANSI colour codes, control and bidi characters removed."""
    s = "" if text is None else str(text)
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = _ANSI.sub("", s)
    return _CONTROL.sub("", s)


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


def escape_text(text: object) -> MdSafe:
    """Prose: no raw HTML, no Markdown syntax, no live mentions or references; newlines kept."""
    s = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    s = _ORDERED_LIST.sub(r"\1\\\2", s)
    s = _LINE_START_SPECIAL.sub(r"\1\\\2", s)
    return MdSafe(break_references(s))


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
