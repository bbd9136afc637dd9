"""Lay out the package as it is installed (vllm_bug/analyzer/..., per pyproject's package-dir) as a tree of
symlinks, for static tools that cannot follow setuptools' mapping (mypy, import-linter's grimp).

    python tools/package_tree.py DIR                   # empty DIR and rebuild the tree there
    TOOL ... | python tools/package_tree.py --source-paths DIR
                                                       # name the real files in TOOL's "path:line: ..." lines

Every .py/.pyi file of a mapped folder gets its own link, so a file added since the last build is seen on the next.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SOURCE_SUFFIXES = {".py", ".pyi"}


def package_dirs(pyproject: Path) -> dict[str, Path]:
    """Installed package name -> source folder, from [tool.setuptools.package-dir]."""
    mapping = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["setuptools"]["package-dir"]
    return {name: (pyproject.parent / folder).resolve() for name, folder in mapping.items()}


def build(tree: Path, mapping: dict[str, Path]) -> int:
    """Link every source file of each mapped folder under TREE at its installed path; return how many."""
    if tree.exists():
        shutil.rmtree(tree)
    mapped_folders = set(mapping.values())
    count = 0
    for name, folder in mapping.items():
        target = tree.joinpath(*name.split("."))
        for source in sorted(folder.rglob("*")):
            if source.suffix not in SOURCE_SUFFIXES or "__pycache__" in source.parts:
                continue
            relative = source.relative_to(folder)
            # a folder mapped as a package of its own is linked under that package's name instead
            if any(folder / parent in mapped_folders for parent in relative.parents if parent != Path(".")):
                continue
            link = target / relative
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source)
            count += 1
    return count


def source_path_line(line: str, tree: Path, root: Path) -> str:
    """LINE with a leading path inside TREE replaced by the real file's path relative to ROOT."""
    path, sep, rest = line.partition(":")
    if not sep or not Path(path).is_symlink() or not Path(os.path.abspath(path)).is_relative_to(tree.absolute()):
        return line
    real = Path(os.path.realpath(path))
    return f"{real.relative_to(root) if real.is_relative_to(root) else real}{sep}{rest}"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--source-paths":
        tree = Path(argv[1])
        for line in sys.stdin:
            sys.stdout.write(source_path_line(line, tree, ROOT))
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    count = build(Path(argv[0]), package_dirs(ROOT / "pyproject.toml"))
    print(f"{count} source files linked under {argv[0]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
