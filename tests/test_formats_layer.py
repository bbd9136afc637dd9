"""formats is the leaf layer: it imports only the standard library and its own modules."""

import ast
import sys
from pathlib import Path

FORMATS = Path(__file__).resolve().parent.parent / "formats"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_formats_imports_nothing_of_ours_and_no_third_party_package():
    modules = sorted(FORMATS.glob("*.py"))
    assert len(modules) > 10
    for path in modules:
        for name in _imports(path):
            top = name.split(".")[0]
            if name.startswith("vllm_bug."):
                assert name.startswith("vllm_bug.formats."), f"{path.name} imports {name}"
            else:
                assert top in sys.stdlib_module_names or top == "__future__", f"{path.name} imports {name}"
