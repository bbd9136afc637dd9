"""Issue titles and their template tags."""

import pytest

from vllm_bug.formats.issue_text import IssueTitle, parse_title, strip_tags, strip_template_tag


@pytest.mark.parametrize(
    "line, tag",
    [
        ("[Bug]: CUDA error: an illegal memory access was encountered", "Bug"),
        ("[Bug report] vllm serve fails on H100", "Bug report"),
        ("[New Model]: support for X", "New Model"),
        ("# vLLM fails to start", None),
    ],
)
def test_titles(line, tag):
    assert parse_title(line) == IssueTitle(tag, line.strip())


@pytest.mark.parametrize("line", ["RuntimeError: x", "[rank0]: RuntimeError: x", "[Bug] " + "x" * 400])
def test_not_titles(line):
    assert parse_title(line) is None


def test_stripping_tags():
    assert strip_template_tag("[Bug]: CUDA error: x") == "CUDA error: x"
    assert strip_template_tag("[Doc]: Steps to run vLLM") == "Steps to run vLLM"
    assert strip_template_tag("[rank0]: RuntimeError: x") == "[rank0]: RuntimeError: x"
    assert strip_tags("[Bug] [V1]: RuntimeError: x") == "RuntimeError: x"
