"""A bundle carried inside a Markdown report: base64 between two marker lines.

    -----BEGIN VLLM-BUG BUNDLE v1 bytes=1234 sha256=<64 hex>-----
    KLUv/WQ...                                   (76 characters a line)
    -----END VLLM-BUG BUNDLE v1-----

Reading tolerates what happens to pasted text on GitHub: CRLF line ends, indentation, trailing
spaces, '> ' quoting (a quoted reply) and a copy of the rendered page instead of the source.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from vllm_bug.formats.lazyre import lazy_compile

BEGIN = "-----BEGIN VLLM-BUG BUNDLE v1"
END = "-----END VLLM-BUG BUNDLE v1-----"
LINE_WIDTH = 76

_BEGIN_LINE = lazy_compile(
    r"^[ \t>]*-----BEGIN VLLM-BUG BUNDLE v1(?: bytes=(\d{1,20}))?(?: sha256=([0-9a-f]{64}))?-----[ \t]*$", re.MULTILINE
)
_END_LINE = lazy_compile(r"^[ \t>]*-----END VLLM-BUG BUNDLE v1-----[ \t]*$", re.MULTILINE)
_QUOTE_PREFIX = lazy_compile(r"^[ \t>]*", re.MULTILINE)


@dataclass
class EmbeddedBlock:
    payload: str | None  # the base64 text, quoting and whitespace removed; None when the END marker is missing
    declared_bytes: int | None  # the size the BEGIN line states
    declared_sha256: str | None  # the sha256 (hex) the BEGIN line states


def find_embedded_block(text: str) -> EmbeddedBlock | None:
    """The first embedded bundle block in TEXT, or None when there is no BEGIN marker."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    begin = _BEGIN_LINE.search(text)
    if begin is None:
        return None
    size = int(begin.group(1)) if begin.group(1) else None
    end = _END_LINE.search(text, begin.end())
    if end is None:
        return EmbeddedBlock(None, size, begin.group(2))
    body = _QUOTE_PREFIX.sub("", text[begin.end() : end.start()])
    return EmbeddedBlock("".join(body.split()), size, begin.group(2))


def block_lines(data: bytes) -> list[str]:
    """DATA as the lines of an embedded block, markers included."""
    encoded = base64.b64encode(data).decode("ascii")
    header = f"{BEGIN} bytes={len(data)} sha256={hashlib.sha256(data).hexdigest()}-----"
    return [header, *(encoded[i : i + LINE_WIDTH] for i in range(0, len(encoded), LINE_WIDTH)), END]
