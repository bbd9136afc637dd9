"""tools/package_tree.py: the installed layout as symlinks, so mypy and import-linter see every module."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tree_tool():
    spec = importlib.util.spec_from_file_location("package_tree", ROOT / "tools" / "package_tree.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(top: Path) -> set[str]:
    return {str(p.relative_to(top)) for p in top.rglob("*.py") if "__pycache__" not in p.parts}


def test_every_module_of_the_package_is_linked_at_its_installed_path(tree_tool, tmp_path):
    mapping = tree_tool.package_dirs(ROOT / "pyproject.toml")
    assert mapping["vllm_bug.analyzer"] == ROOT / "analyzer"
    count = tree_tool.build(tmp_path / "tree", mapping)
    expected = {str(Path(*name.split(".")) / f) for name, folder in mapping.items() for f in _files(folder)}
    assert _files(tmp_path / "tree") == expected and count == len(expected)
    link = tmp_path / "tree" / "vllm_bug" / "analyzer" / "rules" / "__init__.py"
    assert link.is_symlink() and link.resolve() == ROOT / "analyzer" / "rules" / "__init__.py"


def test_a_folder_mapped_inside_another_is_linked_once_under_its_own_name(tree_tool, tmp_path):
    src = tmp_path / "src"
    (src / "extra_dir").mkdir(parents=True)
    for path in (src / "__init__.py", src / "extra_dir" / "__init__.py", src / "extra_dir" / "a.py"):
        path.write_text("")
    (src / "notes.txt").write_text("not a module")
    tree_tool.build(tmp_path / "tree", {"pkg": src, "pkg.extra": src / "extra_dir"})
    assert _files(tmp_path / "tree") == {"pkg/__init__.py", "pkg/extra/__init__.py", "pkg/extra/a.py"}
    assert not (tmp_path / "tree" / "pkg" / "notes.txt").exists()


def test_a_rebuild_drops_files_that_are_gone(tree_tool, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "old.py").write_text("")
    tree_tool.build(tmp_path / "tree", {"pkg": src})
    (src / "old.py").unlink()
    (src / "new.py").write_text("")
    tree_tool.build(tmp_path / "tree", {"pkg": src})
    assert _files(tmp_path / "tree") == {"pkg/new.py"}


def test_tool_output_names_the_real_files(tree_tool, tmp_path, monkeypatch):
    tree_tool.build(tmp_path / "tree", tree_tool.package_dirs(ROOT / "pyproject.toml"))
    monkeypatch.chdir(tmp_path)
    message = ":12: error: Unsupported operand  [operator]\n"
    line = "tree/vllm_bug/analyzer/rules/nccl.py" + message
    assert tree_tool.source_path_line(line, Path("tree"), ROOT) == "analyzer/rules/nccl.py" + message
    for other in ("Found 3 errors in 2 files (checked 67 source files)\n", "tree/missing.py:1: note\n", "no colon\n"):
        assert tree_tool.source_path_line(other, Path("tree"), ROOT) == other
