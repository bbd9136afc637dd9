"""Where upstream files are read from: one release of one repository, as a git ref, a wheel or a plain tree.

Every source answers the same three questions: the text of a file (None when the release lacks it), the
files under a folder, and where it came from (repository, release tag, commit when known).
"""

from __future__ import annotations

import re
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class Source(Protocol):
    repository: str
    ref: str  # the release tag (or the ref given)

    @property
    def commit(self) -> str | None: ...

    def read(self, path: str) -> str | None: ...

    def read_bytes(self, path: str) -> bytes | None: ...

    def files(self, prefix: str = "") -> list[str]: ...


def git(mirror: Path, *args: str) -> str:
    proc = subprocess.run(["git", "--git-dir", str(mirror), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise FileNotFoundError(proc.stderr.strip() or f"git {' '.join(args)} failed")
    return proc.stdout


def git_dir(path: Path) -> Path:
    """A bare mirror is its own git directory; a checkout keeps it in .git."""
    return path / ".git" if (path / ".git").is_dir() else path


def git_tags(mirror: Path) -> list[str]:
    return git(git_dir(mirror), "tag", "--list").split()


@dataclass
class GitRef:
    mirror: Path
    ref: str
    repository: str
    _names: list[str] | None = field(default=None, repr=False)

    @property
    def commit(self) -> str | None:
        return git(git_dir(self.mirror), "rev-parse", f"{self.ref}^{{commit}}").strip()

    def read_bytes(self, path: str) -> bytes | None:
        proc = subprocess.run(
            ["git", "--git-dir", str(git_dir(self.mirror)), "show", f"{self.ref}:{path}"],
            capture_output=True,
            check=False,
        )
        return proc.stdout if proc.returncode == 0 else None

    def read(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8", "replace")

    def files(self, prefix: str = "") -> list[str]:
        if self._names is None:
            self._names = git(git_dir(self.mirror), "ls-tree", "-r", "--name-only", self.ref).splitlines()
        return [name for name in self._names if name.startswith(prefix)]


@dataclass
class ZipRelease:
    """A wheel of one release (or a copy keeping only some of its files): the installed package's sources."""

    path: Path
    repository: str
    ref: str = ""
    _commit: str | None = None

    def __post_init__(self) -> None:
        self._archive = zipfile.ZipFile(self.path)  # kept open: reopening re-reads the whole index
        self._names = self._archive.namelist()
        self._known = set(self._names)
        if not self.ref:
            self.ref = "v" + (self.version or "unknown")
        self._commit = self._commit or _commit_in(self)

    @property
    def commit(self) -> str | None:
        return self._commit

    @property
    def version(self) -> str | None:
        metadata = self.metadata()
        match = re.search(r"^Version: *(\S+)", metadata or "", re.MULTILINE)
        return match.group(1) if match else None

    def metadata(self) -> str | None:
        names = [n for n in self._names if n.endswith(".dist-info/METADATA")]
        return self.read(names[0]) if names else None

    def read_bytes(self, path: str) -> bytes | None:
        return self._archive.read(path) if path in self._known else None

    def read(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8", "replace")

    def files(self, prefix: str = "") -> list[str]:
        return [name for name in self._names if name.startswith(prefix) and not name.endswith("/")]


@dataclass
class Tree:
    """A plain folder laid out as the repository (a checkout, or only the files needed). A SOURCES.json at
    its root may name the commit each file was taken at ({"path": "commit"}); `commit` is the tree's own."""

    root: Path
    repository: str
    ref: str
    tree_commit: str | None = None

    @property
    def commit(self) -> str | None:
        return self.tree_commit

    def commit_of(self, path: str) -> str | None:
        import json

        manifest = self.root / "SOURCES.json"
        if manifest.is_file():
            return json.loads(manifest.read_text("utf-8")).get(path, self.tree_commit)
        return self.tree_commit

    def read_bytes(self, path: str) -> bytes | None:
        file = self.root / path
        return file.read_bytes() if file.is_file() else None

    def read(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8", "replace")

    def files(self, prefix: str = "") -> list[str]:
        return sorted(
            str(p.relative_to(self.root))
            for p in self.root.rglob("*")
            if p.is_file() and str(p.relative_to(self.root)).startswith(prefix)
        )


def _commit_in(release: ZipRelease) -> str | None:
    """vLLM wheels carry the commit they were built from (vllm/commit_id.py or vllm/_version.py)."""
    for name in release.files():
        if name.endswith(("/commit_id.py", "/_version.py")) and name.count("/") == 1:
            match = re.search(
                r"""(?:__commit__|commit_id|__commit_id__)\s*(?::\s*\w+\s*)?=\s*['"]([0-9a-f]{40})['"]""",
                release.read(name) or "",
            )
            if match:
                return match.group(1)
    return None


def version_key(text: str) -> tuple[int, ...]:
    """'v0.10.1.1' -> (0, 10, 1, 1); 'v2.18.5-1' -> (2, 18, 5, 1); suffixes such as .post1 sort after."""
    return tuple(int(n) for n in re.findall(r"\d+", text))
