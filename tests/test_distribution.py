"""What the wheel carries besides code: the licence, the metadata, the typing marker, a README that reads
well on the package index (no links into this checkout), and shell completion as the README shows it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from markdown_it import MarkdownIt

from conftest import REPO

tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
README = (REPO / "README.md").read_text()


def test_licence_file_is_the_apache_2_text_and_is_shipped():
    text = (REPO / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


def test_typing_marker_is_package_data():
    assert (REPO / "vllm_bug" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["vllm_bug"]
    assert "Typing :: Typed" in PYPROJECT["project"]["classifiers"]


def test_project_urls_are_absolute():
    assert PYPROJECT["project"]["urls"]
    assert all(url.startswith("https://") for url in PYPROJECT["project"]["urls"].values())


def test_readme_links_work_outside_the_checkout():
    tokens = MarkdownIt("commonmark").parse(README)
    links = [
        child.attrGet("href") or child.attrGet("src")
        for token in tokens
        for child in (token.children or [])
        if child.type in ("link_open", "image")
    ]
    assert all(str(link).startswith("https://") for link in links), links
    assert "../" not in README


def completion(**env: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "vllm_bug"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout


@pytest.mark.parametrize("shell", re.findall(r"_VLLM_BUG_COMPLETE=(\w+_source) vllm-bug", README))
def test_shell_completion_scripts_the_readme_shows_exist(shell):
    assert "_VLLM_BUG_COMPLETE" in completion(_VLLM_BUG_COMPLETE=shell)


def test_bash_completion_completes_commands_and_options():
    assert "plain,analyze" in completion(_VLLM_BUG_COMPLETE="bash_complete", COMP_WORDS="vllm-bug an", COMP_CWORD="1")
    assert "plain,--python" in completion(
        _VLLM_BUG_COMPLETE="bash_complete", COMP_WORDS="vllm-bug run --py", COMP_CWORD="2"
    )
