"""File types by their first bytes."""

import gzip
from pathlib import Path

from vllm_bug.formats.magic import MAGICS, ZSTD_MAGIC, sniff

BUNDLES = Path(__file__).parent / "fixtures" / "bundles"


def test_a_real_bundle_is_zstd():
    data = next(BUNDLES.glob("*.zst")).read_bytes()
    assert data.startswith(ZSTD_MAGIC) and sniff(data).kind == "zstd" and sniff(data).compressed


def test_other_kinds():
    assert sniff(gzip.compress(b"log")).what == "gzip-compressed data"
    assert sniff(b"PK\x05\x06" + b"\0" * 18).kind == "zip"
    assert sniff(b"\x89PNG\r\n").what == "a PNG image" and not sniff(b"\x89PNG").compressed
    assert sniff(b"INFO 06-01 10:00:00 plain text") is None and sniff(b"") is None


def test_no_magic_is_a_prefix_of_another():
    magics = [magic for magic, _ in MAGICS]
    assert not any(a != b and b.startswith(a) for a in magics for b in magics)
