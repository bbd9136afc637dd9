import json

import pytest
import zstandard

from vllm_bug.errors import UnreadableInput, UnsafeInput
from vllm_bug.schema import bundle as B


def test_roundtrip_keeps_the_document(tmp_path, payload):
    payload["env"] = {"CUDA_VISIBLE_DEVICES": "0,1"}
    doc = B.make_envelope(payload)
    path = tmp_path / "b.zst"
    path.write_bytes(B.encode(doc))
    assert B.read_bundle(path) == doc


def test_written_bundle_is_one_frame_with_checksum(tmp_path, payload):
    data = B.encode(B.make_envelope(payload))
    params = zstandard.get_frame_parameters(data)
    assert params.has_checksum
    assert B.is_zstd(data)


def test_invalid_bundle_is_never_encoded(payload):
    del payload["gpus"]
    with pytest.raises(B.BundleInvalid, match="gpus"):
        B.encode(B.make_envelope(payload))


def _compress(obj_bytes: bytes, **kw) -> bytes:
    return zstandard.ZstdCompressor(**kw).compress(obj_bytes)


def test_newer_schema_version_says_upgrade(payload):
    doc = B.make_envelope(payload)
    doc["schema_version"] = max(B.SUPPORTED_SCHEMA_VERSIONS) + 1
    with pytest.raises(UnreadableInput, match="upgrade vllm-bug"):
        B.decode(_compress(json.dumps(doc).encode()))


def test_decompression_bomb_is_refused_even_with_honest_header():
    bomb = _compress(b"0" * (B.MAX_DECOMPRESSED_BYTES + (1 << 20)), write_content_size=True)
    assert len(bomb) < 100_000
    with pytest.raises(UnsafeInput, match="bomb"):
        B.decompress_capped(bomb)


def test_header_lying_about_size_does_not_matter():
    # a frame that declares 10 bytes of content but holds more is still capped by counting
    payload = b"x" * (2 << 20)
    frame = _compress(payload, write_content_size=False)
    with pytest.raises(UnsafeInput):
        B.decompress_capped(frame, max_bytes=1 << 20)


def test_large_window_is_refused():
    params = zstandard.ZstdCompressionParameters.from_level(1, window_log=27)
    streaming = zstandard.ZstdCompressor(compression_params=params).compressobj()
    data = streaming.compress(b"a" * (1 << 20)) + streaming.flush()
    assert zstandard.get_frame_parameters(data).window_size == 1 << 27
    with pytest.raises(UnsafeInput, match="window"):
        B.decompress_capped(data)


def test_trailing_data_is_refused(payload):
    data = B.encode(B.make_envelope(payload)) + b"junk"
    with pytest.raises(UnreadableInput, match="trailing"):
        B.decode(data)


def test_second_frame_is_trailing_data(payload):
    data = B.encode(B.make_envelope(payload))
    with pytest.raises(UnreadableInput, match="trailing"):
        B.decode(data + data)


def test_truncated_frame_is_refused(payload):
    data = B.encode(B.make_envelope(payload))
    with pytest.raises(UnreadableInput):
        B.decode(data[: len(data) // 2])


def test_corrupt_frame_is_refused(payload):
    data = bytearray(B.encode(B.make_envelope(payload)))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(UnreadableInput):
        B.decode(bytes(data))


def test_deep_nesting_is_refused_as_unsafe():
    deep = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(UnsafeInput, match="deep"):
        B.decode(_compress(deep))


def test_invalid_utf8_is_unreadable():
    with pytest.raises(UnreadableInput, match="UTF-8"):
        B.decode(_compress(b'{"a": "\xff"}'))


def test_not_zstd_is_unreadable():
    with pytest.raises(UnreadableInput, match="magic"):
        B.decode(b"hello world")


def test_oversized_file_is_refused_before_reading_it_all(tmp_path):
    big = tmp_path / "big.zst"
    with open(big, "wb") as fh:
        fh.truncate(B.MAX_COMPRESSED_BYTES + 10)
    with pytest.raises(UnsafeInput):
        B.read_bundle(big)


def test_schema_rejects_non_object_and_wrong_format():
    with pytest.raises(UnreadableInput):
        B.validate([])
    with pytest.raises(UnreadableInput, match="format"):
        B.validate({"format": "something-else"})


def test_nesting_the_analyzer_could_not_walk_is_refused_as_unsafe(payload):
    # 500 levels parse, but redaction and rendering recurse: found by tests/test_fuzz_analyzer.py
    doc = B.make_envelope(payload)
    doc["payload"]["host"]["extra"] = json.loads("[" * 500 + "]" * 500)
    with pytest.raises(UnsafeInput, match=f"more than {B.MAX_NESTING} levels"):
        B.decode(_compress(json.dumps(doc).encode()))
    doc["payload"]["host"]["extra"] = json.loads("[" * 20 + "]" * 20)
    assert B.decode(_compress(json.dumps(doc).encode()))["payload"]["host"]["extra"]


def test_lone_surrogate_escapes_become_replacement_characters(payload):
    # json.loads turns "\ud800" into a str that no UTF-8 output can carry; a pair stays one character
    doc = B.make_envelope(payload)
    doc["payload"]["host"]["os"] = "Ubuntu \ud83d"
    doc["payload"]["env"]["\udc00KEY"] = "ok \ud83d\ude00"
    decoded = B.decode(_compress(json.dumps(doc, ensure_ascii=True).encode()))
    assert decoded["payload"]["host"]["os"] == "Ubuntu \ufffd"
    assert decoded["payload"]["env"] == {"\ufffdKEY": "ok \U0001f600"}
    json.dumps(decoded, ensure_ascii=False).encode("utf-8")
