import io
import os
import sys
import types
import zipfile

import pytest

from conftest import minimal_payload
from vllm_bug.analyzer.load import MAX_INPUT_BYTES, load_input
from vllm_bug.errors import UnreadableInput, UnsafeInput
from vllm_bug.schema.bundle import encode, make_envelope


def _bundle_bytes() -> bytes:
    payload = minimal_payload()
    payload["driver"] = {"version": "550.54.15"}
    return encode(make_envelope(payload))


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _write(tmp_path, name, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_zstd_bundle_is_detected_by_content_not_name(tmp_path):
    loaded = load_input(_write(tmp_path, "report.txt", _bundle_bytes()))
    assert loaded.kind == "bundle"
    assert loaded.doc["payload"]["driver"]["version"] == "550.54.15"
    assert len(loaded.sha256) == 64


def test_sha256_is_of_the_raw_bytes(tmp_path):
    import hashlib

    data = b"RuntimeError: CUDA error: invalid argument\n"
    assert load_input(_write(tmp_path, "a.log", data)).sha256 == hashlib.sha256(data).hexdigest()


def test_bundle_inside_zip_is_read_in_memory(tmp_path):
    path = _write(tmp_path, "b.zip", _zip({"notes/report.md": b"# hi", "vllm-bug-1.zst": _bundle_bytes()}))
    loaded = load_input(path)
    assert loaded.kind == "bundle"
    assert sorted(os.listdir(tmp_path)) == ["b.zip"]  # nothing extracted


@pytest.mark.parametrize(
    "members, error",
    [
        ({"readme.txt": b"hello"}, UnreadableInput),
        ({"a.zst": b"x", "b.zst": b"y"}, UnreadableInput),
        ({"../evil.zst": b"x"}, UnsafeInput),
        ({"/abs.zst": b"x"}, UnsafeInput),
    ],
)
def test_zip_without_exactly_one_safe_bundle_is_refused(tmp_path, members, error):
    with pytest.raises(error):
        load_input(_write(tmp_path, "x.zip", _zip(members)))


def test_zip_member_that_is_not_a_bundle_is_refused(tmp_path):
    with pytest.raises(UnreadableInput):
        load_input(_write(tmp_path, "x.zip", _zip({"vllm-bug.zst": b"not zstd at all"})))


def test_zip_bomb_is_refused(tmp_path):
    data = _zip({"bundle.zst": b"\0" * (4 << 20)}, zipfile.ZIP_DEFLATED)
    with pytest.raises(UnsafeInput):
        load_input(_write(tmp_path, "bomb.zip", data))


def test_encrypted_zip_member_is_refused(tmp_path):
    data = bytearray(_zip({"bundle.zst": _bundle_bytes()}))
    # set the 'encrypted' general-purpose flag in the local and central headers
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        at = data.find(sig)
        flag_at = at + (6 if sig == b"PK\x03\x04" else 8)
        data[flag_at] |= 1
    with pytest.raises(UnsafeInput, match="encrypted"):
        load_input(_write(tmp_path, "enc.zip", bytes(data)))


def test_too_many_zip_members_is_refused(tmp_path):
    with pytest.raises(UnsafeInput):
        load_input(_write(tmp_path, "many.zip", _zip({f"f{i}.txt": b"x" for i in range(100)})))


def test_file_named_zst_that_is_not_zstd_is_refused(tmp_path):
    with pytest.raises(UnreadableInput, match="zstd"):
        load_input(_write(tmp_path, "fake.zst", b"hello world\n"))


def test_corrupt_zstd_is_refused(tmp_path):
    data = _bundle_bytes()
    with pytest.raises(UnreadableInput):
        load_input(_write(tmp_path, "cut.zst", data[: len(data) // 2]))


@pytest.mark.parametrize("data", [b"", b"   \n\n"])
def test_empty_input_is_refused(tmp_path, data):
    with pytest.raises(UnreadableInput, match="empty"):
        load_input(_write(tmp_path, "e.log", data))


def test_invalid_utf8_names_the_offset(tmp_path):
    with pytest.raises(UnreadableInput, match="offset 6"):
        load_input(_write(tmp_path, "bad.log", b"hello \xff\xfe world"))


def test_binary_garbage_is_refused(tmp_path):
    with pytest.raises(UnreadableInput, match="binary"):
        load_input(_write(tmp_path, "g.bin", bytes(range(256)) * 4))


def test_gzip_is_named(tmp_path):
    with pytest.raises(UnreadableInput, match="gzip"):
        load_input(_write(tmp_path, "log.gz", b"\x1f\x8b\x08\x00rest"))


def test_utf16_with_bom_is_text(tmp_path):
    text = "RuntimeError: CUDA error: invalid argument\n"
    loaded = load_input(_write(tmp_path, "win.log", text.encode("utf-16")))
    assert loaded.kind == "text" and loaded.text == text


def test_utf8_bom_is_dropped(tmp_path):
    loaded = load_input(_write(tmp_path, "b.log", b"\xef\xbb\xbfhello\n"))
    assert loaded.text == "hello\n"


def test_oversized_file_is_refused_without_reading_it(tmp_path):
    p = tmp_path / "huge.log"
    with open(p, "wb") as fh:
        fh.truncate(MAX_INPUT_BYTES + 1)
    with pytest.raises(UnsafeInput):
        load_input(str(p))


def test_oversized_stdin_is_refused():
    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            b[: len(b)] = b"a" * len(b)
            return len(b)

    with pytest.raises(UnsafeInput):
        load_input("-", stdin=io.BufferedReader(Endless()))


def test_directory_and_missing_file_are_refused(tmp_path):
    with pytest.raises(UnreadableInput, match="directory"):
        load_input(str(tmp_path))
    with pytest.raises(UnreadableInput, match="no such file"):
        load_input(str(tmp_path / "nope.log"))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read anything")
def test_permission_denied_is_refused(tmp_path):
    p = tmp_path / "secret.log"
    p.write_text("x")
    p.chmod(0)
    with pytest.raises(UnreadableInput, match="permission"):
        load_input(str(p))


def test_stdin_dash_reads_binary_stream():
    loaded = load_input("-", stdin=io.BytesIO(b"torch.OutOfMemoryError: CUDA out of memory.\n"))
    assert loaded.kind == "text" and loaded.name == "<stdin>"


def test_uncompressed_json_bundle_is_accepted_and_validated(tmp_path):
    import json

    doc = make_envelope(minimal_payload())
    assert load_input(_write(tmp_path, "b.json", json.dumps(doc).encode())).kind == "bundle"
    doc["payload"]["gpus"] = "not a list"
    with pytest.raises(UnreadableInput):
        load_input(_write(tmp_path, "bad.json", json.dumps(doc).encode()))


def test_embedded_bundle_is_preferred_when_the_embed_module_finds_one(tmp_path, monkeypatch):
    bundle = _bundle_bytes()
    fake = types.ModuleType("vllm_bug.analyzer.embed")
    fake.extract_embedded_bundle = lambda text: bundle if "EMBED" in text else None
    monkeypatch.setitem(sys.modules, "vllm_bug.analyzer.embed", fake)
    loaded = load_input(_write(tmp_path, "report.md", b"# report\nEMBED\n"))
    assert loaded.kind == "bundle" and loaded.text.startswith("# report")
    assert load_input(_write(tmp_path, "plain.md", b"# report\n")).kind == "text"


def test_broken_embedded_bundle_falls_back_to_text(tmp_path, monkeypatch):
    fake = types.ModuleType("vllm_bug.analyzer.embed")
    fake.extract_embedded_bundle = lambda text: b"\x28\xb5\x2f\xfdgarbage"
    monkeypatch.setitem(sys.modules, "vllm_bug.analyzer.embed", fake)
    assert load_input(_write(tmp_path, "report.md", b"# report\n")).kind == "text"


def test_cli_refusal_is_one_line_with_exit_code(tmp_path):
    import subprocess

    path = _write(tmp_path, "fake.zst", b"hello")
    code = (
        "import sys\nfrom vllm_bug.analyzer.load import load_input\nfrom vllm_bug.errors import VllmBugError\n"
        "try:\n    load_input(sys.argv[1])\nexcept VllmBugError as e:\n    print(e, file=sys.stderr); sys.exit(e.exit_code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True)
    assert proc.returncode == 3
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
