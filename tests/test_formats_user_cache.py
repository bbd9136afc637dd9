"""The user cache folder and values kept there by the digest of what they were derived from."""

import marshal
import os

from vllm_bug.formats.user_cache import cache_folder, remember


def test_folder_is_made_private_under_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = cache_folder("data")
    assert folder == str(tmp_path / "vllm-bug" / "data")
    assert os.stat(folder).st_mode & 0o077 == 0


def test_no_folder_when_it_cannot_be_made(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert cache_folder("data") is None
    assert remember("rows", b"k", lambda: ("computed",)) == ("computed",)


def test_remember_computes_once_per_key(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []

    def compute(value):
        def run():
            calls.append(value)
            return [("row", value, (1, 2))]

        return run

    assert remember("rows", b"key-1", compute("a")) == [("row", "a", (1, 2))]
    assert remember("rows", b"key-1", compute("b")) == [("row", "a", (1, 2))]  # kept: not computed again
    assert remember("rows", b"key-2", compute("c")) == [("row", "c", (1, 2))]  # the sources changed
    assert calls == ["a", "c"]


def test_a_damaged_file_is_computed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    remember("rows", b"k", lambda: [1])
    path = tmp_path / "vllm-bug" / "data" / "rows.marshal"
    for damage in (b"", b"\x00garbage", marshal.dumps(7), marshal.dumps((b"k", [1], "extra"))):
        path.write_bytes(damage)
        assert remember("rows", b"k", lambda: [2]) == [2]
    assert marshal.loads(path.read_bytes()) == (b"k", [2])


def test_no_folder_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG spec says
    assert cache_folder("data") == str(tmp_path / "home" / ".cache" / "vllm-bug" / "data")
    (tmp_path / "home").rename(tmp_path / "moved")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # no HOME and no password entry: "~" stays
    assert cache_folder("data") is None
    assert [p.name for p in tmp_path.iterdir()] == ["moved"]
