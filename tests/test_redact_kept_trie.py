"""The redaction tries are built once and read back from the user cache folder on later runs."""

import os

import pytest

from vllm_bug.formats import user_cache
from vllm_bug.schema import redact

ENTRIES = [("sk-ant-", "[a-z]{8}", 0), ("sk-", "[a-z]{20}", 0), ("token", "(?!s)", 1), ("hf_", "[A-Za-z]{30}", 2)]


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def test_kept_trie_is_the_trie_and_is_read_back_without_building(cache_home, monkeypatch):
    built = redact._trie(ENTRIES)
    assert redact._kept_trie("test", ENTRIES) == built
    assert os.listdir(cache_home / "vllm-bug" / "data") == ["redaction-trie-test.marshal"]
    monkeypatch.setattr(user_cache, "write_cached", lambda *args: pytest.fail("built and written again"))
    assert redact._kept_trie("test", ENTRIES) == built


def test_other_entries_under_the_same_purpose_are_built_again(cache_home):
    redact._kept_trie("test", ENTRIES)
    changed = [*ENTRIES, ("ghp_", "[A-Za-z0-9]{36}", 2)]
    assert redact._kept_trie("test", changed) == redact._trie(changed)
    assert redact._kept_trie("test", ENTRIES) == redact._trie(ENTRIES)


def test_a_damaged_kept_file_means_building_again(cache_home):
    redact._kept_trie("test", ENTRIES)
    (cache_home / "vllm-bug" / "data" / "redaction-trie-test.marshal").write_bytes(b"\x00garbage")
    assert redact._kept_trie("test", ENTRIES) == redact._trie(ENTRIES)


def test_redaction_is_the_same_with_a_cold_and_a_warm_cache(cache_home):
    text = "HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyzABCDEFGH and sk-ant-api03-" + "x" * 40 + " in /home/alice/run"
    results = []
    for _ in range(2):
        for cached in (redact._combined, redact._trigger, redact._quiet_line, redact._shape_only):
            cached.cache_clear()
        results.append(redact.Redactor().text(text))
    assert results[0] == results[1]
    assert "hf_abc" not in results[0]
