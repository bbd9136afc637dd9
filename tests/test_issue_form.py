"""vLLM's bug form: the two pasteable parts, the new-issue URL and the `gh issue create` command."""

from __future__ import annotations

import shlex
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from markdown_it import MarkdownIt

from conftest import FIXTURES
from vllm_bug.analyzer import issue_form
from vllm_bug.analyzer.analyze import analyze_loaded
from vllm_bug.analyzer.load import load_input
from vllm_bug.analyzer.render_markdown import render_report

FORM_HEADINGS = ("### Your current environment", "### 🐛 Describe the bug")


def report_of(name: str):
    return render_report(analyze_loaded(load_input(str(FIXTURES / "bundles" / name))))


@pytest.mark.parametrize("name", ["h200-2gpu-run-nccl-fail.zst", "h200-1gpu-run-oom.zst", "h100-1gpu-no-torch.zst"])
def test_the_two_parts_are_the_report_without_the_forms_own_headings(name):
    report = report_of(name)
    head = f"**Suggested title:** `{report.title}`\n\n{FORM_HEADINGS[0]}\n\n"
    assert report.text == f"{head}{report.environment}\n{FORM_HEADINGS[1]}\n\n{report.describe}"
    for part in (report.environment, report.describe):
        assert not any(heading in part for heading in FORM_HEADINGS)  # GitHub adds them from the field labels
        assert part.endswith("\n") and not part.endswith("\n\n")
    assert report.environment.startswith("<details>\n<summary>")
    assert report.describe.startswith("_Replace this line with what you ran")


def test_every_details_block_of_a_part_is_closed_inside_it():
    report = report_of("h200-2gpu-run-nccl-fail.zst")
    for part in (report.environment, report.describe):
        html = [t.content for t in MarkdownIt("commonmark").parse(part) if t.type == "html_block"]
        opened = sum(block.count("<details>") for block in html)
        assert opened == sum(block.count("</details>") for block in html) and opened >= 1


def test_new_issue_url_names_the_bug_form_and_the_title():
    url = issue_form.new_issue_url("[Bug]: CUDA error: out of memory (vLLM 0.11.0, NVIDIA H200)")
    assert url == (
        "https://github.com/vllm-project/vllm/issues/new?template=400-bug-report.yml&title="
        "%5BBug%5D%3A%20CUDA%20error%3A%20out%20of%20memory%20%28vLLM%200.11.0%2C%20NVIDIA%20H200%29"
    )


@pytest.mark.parametrize("title", ["[Bug]: " + "é∑🐛 & ?#=+" * 40, "[Bug]: " + "x" * 5000, "[Bug]: a\nb\tc"])
def test_new_issue_url_is_encoded_and_shortens_only_the_title(title):
    for limit in (issue_form.URL_LIMIT, 300):
        url = issue_form.new_issue_url(title, limit=limit)
        assert len(url) <= limit
        query = parse_qs(urlsplit(url).query, strict_parsing=True)
        assert query["template"] == ["400-bug-report.yml"]
        kept = query["title"][0]
        assert " ".join(title.split()).startswith(kept) and 0 < len(kept) <= issue_form.TITLE_LIMIT


def test_gh_command_survives_any_title_and_path_in_a_shell():
    title = '[Bug]: it\'s `$(rm -rf ~)` "quoted"; echo pwned'
    path = Path("/tmp/my reports/vllm-bug-1.md")
    argv = shlex.split(issue_form.gh_command(title, path))
    assert argv == ["gh", "issue", "create", "--repo", "vllm-project/vllm", "--title", title, "--body-file", str(path)]


def test_part_paths_sit_beside_the_report():
    assert issue_form.part_paths(Path("/x/vllm-bug-20260101-120000.md")) == (
        Path("/x/vllm-bug-20260101-120000.environment.md"),
        Path("/x/vllm-bug-20260101-120000.describe.md"),
    )


def test_next_steps_give_the_form_the_parts_the_zip_and_the_cli():
    steps = issue_form.next_steps(
        "[Bug]: boom", Path("b.md"), Path("b.zip"), Path("b.environment.md"), Path("b.describe.md")
    )
    assert steps[0] == (
        "open https://github.com/vllm-project/vllm/issues/new?template=400-bug-report.yml"
        "&title=%5BBug%5D%3A%20boom (vLLM's bug form, title filled in)"
    )
    assert steps[1] == (
        "paste b.environment.md into 'Your current environment' and b.describe.md into "
        "'🐛 Describe the bug' (b.md holds both, for reading)"
    )
    assert steps[2].startswith("attach b.zip to the issue")
    assert (
        steps[3].splitlines()[1]
        == "    gh issue create --repo vllm-project/vllm --title '[Bug]: boom' --body-file b.md"
    )
