"""The signals table as detection reads it: kept in the user cache by the tables' content, equal to the tables."""

import json

import pytest

from vllm_bug.analyzer import signals
from vllm_bug.analyzer.signals import MAX_HITS, CatalogueRow, SignalRow, read_tables, table


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


def forget():
    """What a new process would not know yet."""
    for cached in (table, signals._tables, signals._catalogue_facts, signals.catalogue_row):
        cached.cache_clear()


@pytest.fixture
def cold(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    forget()
    yield tmp_path / "vllm-bug" / "data" / "signal-rows.marshal"
    forget()


def test_cold_and_warm_tables_equal_the_json_tables(cold):
    expected = rows_from_the_tables()
    assert list(table().items()) == list(expected.items())  # same rows in the same order
    assert cold.is_file()
    forget()
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
    forget()
    assert "a-word-nobody-writes" in [w for row in table().values() for w in row.words]
    monkeypatch.setattr(signals, "_data_files", real)
    forget()
    assert "a-word-nobody-writes" not in [w for row in table().values() for w in row.words]


def catalogue_row_from_the_json(signal_id: str) -> CatalogueRow:
    row = signals.catalogue_rows()[signal_id]
    where = row["provenance"]
    return CatalogueRow(
        id=signal_id,
        category=row["category"],
        template=row["template"],
        repository=where["repository"],
        path=where["path"],
        present=tuple((first, last) for first, last in where["present"]),
        releases=signals._mined_releases().get(where["repository"], ()),
        exception=row.get("exception"),
        name=row.get("name"),
        number=row.get("number"),
        description=row.get("description"),
        carries=row.get("carries"),
        line=where.get("line"),
        level=row.get("level"),
    )


def test_catalogue_provenance_cold_and_warm_equals_the_json(cold, monkeypatch):
    ids = list(signals.catalogue_rows())
    expected = [catalogue_row_from_the_json(row_id) for row_id in ids]
    assert [signals.catalogue_row(row_id) for row_id in ids] == expected
    assert (cold.parent / "catalogue-rows.marshal").is_file()
    forget()
    monkeypatch.setattr(signals, "catalogue_rows", lambda: pytest.fail("the catalogue was parsed again"))
    assert [signals.catalogue_row(row_id) for row_id in ids] == expected
    assert signals.cuda_error_by_message()["an illegal memory access was encountered"] == "CUDA_ERR_ILLEGAL_ADDRESS"


def test_an_index_made_by_other_code_is_made_again(cold, monkeypatch):
    """The key holds the deriving code too: a kept index with fewer fields (an older signals.py) is not read."""
    table()
    monkeypatch.setattr(signals, "_deriving_code", lambda: b"another version of signals.py")
    forget()
    calls = []
    real = signals._row_fields
    monkeypatch.setattr(signals, "_row_fields", lambda sources: calls.append(1) or real(sources))
    assert all(row.catalogue == bool(row.tokens) for row in table().values())
    assert calls == [1]
