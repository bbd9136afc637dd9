"""The signals table as detection reads it: kept in the user cache by the tables' content, equal to the tables."""

import json

import pytest

from vllm_bug.analyzer import signals
from vllm_bug.analyzer.signals import MAX_HITS, SignalRow, read_tables, table


def rows_from_the_tables() -> dict[str, SignalRow]:
    rows = {}
    for signal_id, row in read_tables("signals", "signals").items():
        words = tuple(w.lower() for w in row["words"])
        rows[signal_id] = SignalRow(
            signal_id,
            row["pattern"],
            words,
            row.get("scope", "text"),
            row.get("case_sensitive", False),
            row.get("max_hits", MAX_HITS),
        )
    for signal_id, row in read_tables("catalogue", "rows").items():
        tokens = tuple(tuple(form) for form in row["tokens"])
        rows[signal_id] = SignalRow(signal_id, row["pattern"], (), tokens=tokens, catalogue=True)
    return rows


@pytest.fixture
def cold(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    table.cache_clear()
    yield tmp_path / "vllm-bug" / "data" / "signal-rows.marshal"
    table.cache_clear()


def test_cold_and_warm_tables_equal_the_json_tables(cold):
    expected = rows_from_the_tables()
    assert list(table().items()) == list(expected.items())  # same rows in the same order
    assert cold.is_file()
    table.cache_clear()
    assert list(table().items()) == list(expected.items())


def test_a_changed_table_is_read_again(cold, monkeypatch):
    table()
    real = signals._data_files

    def edited(folder):
        files = real(folder)
        if folder != "signals":
            return files
        name, content = files[0]
        doc = json.loads(content)
        first = next(iter(doc["signals"]))
        doc["signals"][first]["words"] = ["a-word-nobody-writes"]
        return [(name, json.dumps(doc).encode())] + files[1:]

    monkeypatch.setattr(signals, "_data_files", edited)
    table.cache_clear()
    assert "a-word-nobody-writes" in [w for row in table().values() for w in row.words]
    monkeypatch.setattr(signals, "_data_files", real)
    table.cache_clear()
    assert "a-word-nobody-writes" not in [w for row in table().values() for w in row.words]
