"""The fixtures hold one copy of each real output: a second, byte-identical copy drifts or misleads."""

import hashlib
from collections import defaultdict
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def identical_groups(root: Path) -> list[list[str]]:
    """Paths (relative to ROOT) of files that share their bytes with another file, grouped."""
    by_digest: dict[str, list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            by_digest[hashlib.sha256(path.read_bytes()).hexdigest()].append(str(path.relative_to(root)))
    return [names for names in by_digest.values() if len(names) > 1]


def test_identical_files_are_found_in_any_folder(tmp_path):
    (tmp_path / "device" / "h200").mkdir(parents=True)
    (tmp_path / "device" / "h200" / "topo.txt").write_text("GPU0 X\n")
    (tmp_path / "copy-topo.txt").write_text("GPU0 X\n")
    (tmp_path / "other.txt").write_text("GPU0 NV18\n")
    assert identical_groups(tmp_path) == [["copy-topo.txt", "device/h200/topo.txt"]]


def test_no_two_fixture_files_are_byte_identical():
    assert sum(1 for p in FIXTURES.rglob("*") if p.is_file()) > 50  # the walk really sees the fixtures
    assert identical_groups(FIXTURES) == [], (
        "keep one copy per source (tests/fixtures/README.md) and point every test at it"
    )
