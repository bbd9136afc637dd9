"""Carry a small bundle inside the Markdown report, so pasting the report alone is enough.

The block's text format is vllm_bug.formats.embedded's; here it is put in a code block, and read back
with limits on its size and checks of its length and checksum.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from vllm_bug.analyzer.markdown import MdSafe, fence
from vllm_bug.errors import UnreadableInput, UnsafeInput
from vllm_bug.formats.embedded import block_lines, find_embedded_block

EMBED_MAX_BYTES = 24 * 1024  # compressed bundles up to this size are embedded by collect
EXTRACT_MAX_BYTES = 4 << 20  # the most an embedded bundle may decode to when reading a report
EXTRACT_MAX_TEXT = 64 << 20  # reports larger than this are not searched
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=]*")


def embed_block(bundle_bytes: bytes) -> MdSafe:
    """The bundle as marker-delimited base64 in a code block (base64 has no backticks or HTML)."""
    return fence("\n".join(block_lines(bundle_bytes)))


def extract_embedded_bundle(text: str) -> bytes | None:
    """The compressed bundle embedded in a pasted report, or None when there is none.

    Raises UnsafeInput when the embedded data is larger than allowed, UnreadableInput when it is
    damaged (bad base64, wrong length or checksum).
    """
    if len(text) > EXTRACT_MAX_TEXT:
        raise UnsafeInput(f"report is over {EXTRACT_MAX_TEXT} characters: refused")
    block = find_embedded_block(text)
    if block is None:
        return None
    payload = block.payload
    if payload is None:
        raise UnreadableInput("the embedded bundle in this report is cut off (no END marker)")
    if len(payload) > (EXTRACT_MAX_BYTES * 4) // 3 + 4:
        raise UnsafeInput(f"the embedded bundle is larger than {EXTRACT_MAX_BYTES} bytes: refused")
    if not _BASE64_TEXT.fullmatch(payload):
        raise UnreadableInput("the embedded bundle in this report is damaged (characters outside base64)")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise UnreadableInput("the embedded bundle in this report is damaged (invalid base64)") from None
    if block.declared_bytes is not None and block.declared_bytes != len(data):
        raise UnreadableInput(
            f"the embedded bundle is {len(data)} bytes, its header says {block.declared_bytes}: damaged or cut"
        )
    if block.declared_sha256 is not None and hashlib.sha256(data).hexdigest() != block.declared_sha256:
        raise UnreadableInput("the embedded bundle does not match its sha256: damaged")
    return data
