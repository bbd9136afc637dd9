"""Sizes and counts as logs print them."""

from vllm_bug.formats.units import GIB, MIB, parse_count, to_bytes


def test_counts():
    assert parse_count("150,745") == 150745 and parse_count("0") == 0
    assert parse_count(",,,") is None and parse_count("9" * 19) is None and parse_count("²") is None


def test_sizes():
    assert to_bytes("2.97", GIB) == int(2.97 * GIB) and to_bytes("-1.5", GIB) == -(3 << 29)
    assert to_bytes("15890", MIB) == 15890 << 20
    assert to_bytes("9" * 400, GIB) is None and to_bytes("1e999", 1) is None and to_bytes(".", GIB) is None
