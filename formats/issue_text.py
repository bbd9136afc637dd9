"""GitHub issue text: the title line and its bracketed tags ('[Bug]: ...', '[Usage]: ...').

vLLM's issue templates start a title with one of `ISSUE_TAGS` in brackets; people add their own
words ('[Bug report]', '[Feature request]') or stack several tags ('[Bug] [V1]: ...').
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vllm_bug.formats.lazyre import lazy_compile

ISSUE_TAGS = ("Bug", "Usage", "Installation", "Performance", "Feature", "Doc", "Misc", "RFC", "New Model", "Hardware")
MAX_TITLE_CHARS = 400  # a longer line is a paragraph, not a title

_TAG_WORDS = "|".join(ISSUE_TAGS)
# a template tag, perhaps with a few words of the reporter's own inside the brackets, or a Markdown heading
_TITLE_LINE = lazy_compile(rf"^\s*(?:\[(?P<tag>(?:{_TAG_WORDS})[^\]]{{0,20}})\]|#\s)", re.IGNORECASE)
_TEMPLATE_TAG = lazy_compile(rf"^\s*\[(?:{_TAG_WORDS})\]\s*:?\s*", re.IGNORECASE)
_ANY_TAGS = lazy_compile(r"^\s*(?:\[[^\]]{1,40}\]\s*:?\s*)+")


@dataclass
class IssueTitle:
    tag: str | None  # what stood in the brackets ('Bug', 'Feature request'), None for a '# ' heading
    text: str  # the line as given, stripped


def parse_title(line: str) -> IssueTitle | None:
    """LINE as an issue title when it starts like one (a template tag or a Markdown heading), else None."""
    if len(line) >= MAX_TITLE_CHARS:
        return None
    m = _TITLE_LINE.match(line)
    if not m:
        return None
    return IssueTitle(tag=m.group("tag"), text=line.strip())


def strip_template_tag(text: str) -> str:
    """TEXT without one leading template tag and its colon ('[Bug]: x' -> 'x'); other brackets stay."""
    return _TEMPLATE_TAG.sub("", text)


def strip_tags(text: str) -> str:
    """TEXT without any leading bracketed tags ('[Bug] [V1]: x' -> 'x', '[rank0]: x' -> 'x')."""
    return _ANY_TAGS.sub("", text)
