"""The bundle block a report carries: found whatever GitHub did to the pasted text."""

import base64

from vllm_bug.formats.embedded import END, EmbeddedBlock, block_lines, find_embedded_block


def test_block_round_trip_through_quoting_and_crlf():
    data = bytes(range(256)) * 3
    lines = block_lines(data)
    assert lines[-1] == END and all(len(line) <= 76 for line in lines[1:-1])
    quoted = "\r\n".join("> " + line for line in ["reply", *lines, "thanks"])
    block = find_embedded_block(quoted)
    assert base64.b64decode(block.payload) == data and block.declared_bytes == len(data)
    assert block.declared_sha256 is not None and len(block.declared_sha256) == 64


def test_missing_markers():
    assert find_embedded_block("no bundle here") is None
    assert find_embedded_block("-----BEGIN VLLM-BUG BUNDLE v1-----\nKLUv\n") == EmbeddedBlock(None, None, None)
    # a size too long to be one is no header at all
    assert find_embedded_block("-----BEGIN VLLM-BUG BUNDLE v1 bytes=" + "9" * 5000 + "-----\nx\n" + END) is None
