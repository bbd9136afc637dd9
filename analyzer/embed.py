"""Carry a small bundle inside the Markdown report, so pasting the report alone is enough.

The compressed bundle is base64-encoded between two marker lines inside a code block. Reading it
back tolerates what happens to pasted text on GitHub: CRLF line ends, indentation, trailing spaces,
"> " quoting (a quoted reply) and a copy of the rendered page instead of the source.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from vllm_bug.analyzer.markdown import MdSafe, fence
from vllm_bug.errors import UnreadableInput, UnsafeInput

EMBED_MAX_BYTES = 24 * 1024  # compressed bundles up to this size are embedded by collect
EXTRACT_MAX_BYTES = 4 << 20  # the most an embedded bundle may decode to when reading a report
EXTRACT_MAX_TEXT = 64 << 20  # reports larger than this are not searched
LINE_WIDTH = 76

BEGIN = "-----BEGIN VLLM-BUG BUNDLE v1"
END = "-----END VLLM-BUG BUNDLE v1-----"
_BEGIN_LINE = re.compile(
    r"^[ \t>]*-----BEGIN VLLM-BUG BUNDLE v1(?: bytes=(\d+))?(?: sha256=([0-9a-f]{64}))?-----[ \t]*$", re.MULTILINE
)
_END_LINE = re.compile(r"^[ \t>]*-----END VLLM-BUG BUNDLE v1-----[ \t]*$", re.MULTILINE)
_QUOTE_PREFIX = re.compile(r"^[ \t>]*", re.MULTILINE)
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=]*")


def embed_block(bundle_bytes: bytes) -> MdSafe:
    """The bundle as marker-delimited base64 in a code block (base64 has no backticks or HTML)."""
    encoded = base64.b64encode(bundle_bytes).decode("ascii")
    lines = [encoded[i : i + LINE_WIDTH] for i in range(0, len(encoded), LINE_WIDTH)]
    digest = hashlib.sha256(bundle_bytes).hexdigest()
    header = f"{BEGIN} bytes={len(bundle_bytes)} sha256={digest}-----"
    return fence("\n".join([header, *lines, END]))


def extract_embedded_bundle(text: str) -> bytes | None:
    """The compressed bundle embedded in a pasted report, or None when there is none.

    Raises UnsafeInput when the embedded data is larger than allowed, UnreadableInput when it is
    damaged (bad base64, wrong length or checksum).
    """
    if len(text) > EXTRACT_MAX_TEXT:
        raise UnsafeInput(f"report is over {EXTRACT_MAX_TEXT} characters: refused")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    begin = _BEGIN_LINE.search(text)
    if begin is None:
        return None
    end = _END_LINE.search(text, begin.end())
    if end is None:
        raise UnreadableInput("the embedded bundle in this report is cut off (no END marker)")
    body = _QUOTE_PREFIX.sub("", text[begin.end() : end.start()])
    payload = "".join(body.split())
    if len(payload) > (EXTRACT_MAX_BYTES * 4) // 3 + 4:
        raise UnsafeInput(f"the embedded bundle is larger than {EXTRACT_MAX_BYTES} bytes: refused")
    if not _BASE64_TEXT.fullmatch(payload):
        raise UnreadableInput("the embedded bundle in this report is damaged (characters outside base64)")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise UnreadableInput("the embedded bundle in this report is damaged (invalid base64)") from None
    declared_size, declared_sha = begin.group(1), begin.group(2)
    if declared_size is not None and int(declared_size) != len(data):
        raise UnreadableInput(f"the embedded bundle is {len(data)} bytes, its header says {declared_size}: damaged or cut")
    if declared_sha is not None and hashlib.sha256(data).hexdigest() != declared_sha:
        raise UnreadableInput("the embedded bundle does not match its sha256: damaged")
    return data
