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


# --------------------------------------------------------------------------- what parsing may build


def _padded(payload, padding) -> bytes:
    doc = B.make_envelope(payload)
    doc["payload"]["host"]["padding"] = padding
    return json.dumps(doc, separators=(",", ":")).encode()


def test_too_many_values_are_refused_before_parsing(payload):
    # the reproducer held 25 million zeros in host (13 KB compressed, 2 GB parsed); schema-valid, as host is open
    data = _compress(_padded(payload, [0] * (B.MAX_JSON_VALUES + 10)), level=19)
    assert len(data) < 64 << 10
    with pytest.raises(UnsafeInput, match="more values than the limit"):
        B.decode(data)
    assert B.decode(_compress(_padded(payload, [0] * 1000)))["payload"]["host"]["padding"] == [0] * 1000


def test_many_empty_objects_are_refused_without_walking_them():
    # 20 million {} took 45 s in the old nesting walk; the count refuses them before parsing
    with pytest.raises(UnsafeInput, match="values"):
        B.check_json_size(b"[" + b",".join([b"{}"] * (B.MAX_JSON_VALUES + 1)) + b"]")


def test_the_size_check_builds_little_whatever_the_text(monkeypatch):
    # a million short strings: removing them in one regex pass built a list of 2 million pieces (280 MB)
    import tracemalloc

    text = b"[" + b",".join([b'"ab"'] * 1_000_000) + b"]"
    tracemalloc.start()
    try:
        B.check_json_size(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(text) + (32 << 20)


def test_strings_and_nesting_across_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(B, "_SCAN_CHUNK", 7)
    B.check_json_size(json.dumps({"a": ["[[[[" * 5, "x" * 50, {"b": [1, 2, {"c": "]]]]"}]}]}).encode())
    monkeypatch.setattr(B, "MAX_JSON_STRING_BYTES", 49)
    with pytest.raises(UnsafeInput, match="string of 50 bytes"):
        B.check_json_size(json.dumps({"a": ["x" * 50]}).encode())
    monkeypatch.setattr(B, "MAX_JSON_STRING_BYTES", 50)
    deep = "[" * (B.MAX_NESTING + 1) + "]" * (B.MAX_NESTING + 1)
    with pytest.raises(UnsafeInput, match="deep"):
        B.check_json_size(deep.encode())


def test_a_string_over_the_limit_is_refused(payload, monkeypatch):
    monkeypatch.setattr(B, "MAX_JSON_STRING_BYTES", 1000)
    with pytest.raises(UnsafeInput, match="string of 1,001 bytes"):
        B.decode(_compress(_padded(payload, "x" * 1001)))
    assert B.decode(_compress(_padded(payload, "x" * 1000)))


def test_the_size_check_reads_strings_and_escapes_as_the_parser_does():
    # brackets, commas and colons inside strings are not structure; escaped quotes do not end a string
    inside = '"[[[[,,,,::::{{{{\\"]]]]\\\\"'
    B.check_json_size(('{"a": [' + ",".join([inside] * 1000) + "]}").encode())
    deep = "[" * (B.MAX_NESTING + 1) + "]" * (B.MAX_NESTING + 1)
    B.check_json_size(json.dumps({"s": deep}).encode())  # only a string
    with pytest.raises(UnsafeInput, match="deep"):
        B.check_json_size(deep.encode())


def test_nesting_is_measured_exactly_when_brackets_are_mixed():
    def nested(depth: int) -> bytes:
        opening = "".join("[" if i % 2 else '{"k":' for i in range(depth))
        closing = "".join("]" if i % 2 else "}" for i in reversed(range(depth)))
        return (opening + "0" + closing).encode()

    B.check_json_size(nested(B.MAX_NESTING))
    json.loads(nested(B.MAX_NESTING))
    with pytest.raises(UnsafeInput, match="deep"):
        B.check_json_size(nested(B.MAX_NESTING + 1))


def test_text_that_is_not_json_is_left_for_the_parser():
    for text in (b'{"a": [1, 2', b"[[[[", b'"unterminated', b"]]]]{", b'\\\\\\"x'):
        B.check_json_size(text)
    with pytest.raises(UnreadableInput, match="not valid JSON"):
        B.decode(_compress(b'{"a": [1, 2'))


_PEAK_RSS = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_maxrss // 1024, proc.stderr.read().decode()]))
"""


def test_the_reproducer_is_refused_in_little_memory(tmp_path, payload):
    """A small bundle whose host holds millions of zeros: exit 4 from validate, show and analyze, in
    memory that grows only with the decompressed text (25 million zeros took 2 GB; now about 215 MB),
    also inside a zip, a report's embedded bundle and as plain JSON."""
    import subprocess
    import sys
    import zipfile

    from vllm_bug.analyzer.embed import embed_block

    data = _compress(_padded(payload, [0] * 5_000_000))
    (tmp_path / "b.zst").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as archive:
        archive.writestr("bundle.zst", data)
    (tmp_path / "b.md").write_text("# report\n\n" + str(embed_block(data)) + "\n")
    (tmp_path / "b.json").write_bytes(_padded(payload, [0] * 5_000_000))
    runs = [("validate", "b.zst"), ("show", "b.zst"), ("analyze", "b.zip"), ("analyze", "b.md"), ("analyze", "b.json")]
    for command, name in runs:
        argv = [sys.executable, "-m", "vllm_bug", command, str(tmp_path / name)]
        out = subprocess.run([sys.executable, "-c", _PEAK_RSS, *argv], capture_output=True, text=True, check=True)
        code, peak_mib, stderr = json.loads(out.stdout)
        assert code == 4 and "more values than the limit" in stderr, (command, name, stderr)
        assert peak_mib < 150, (command, name, peak_mib)  # 10 MB of JSON text
