"""Getting a report into vLLM's bug form, which allows no blank issues.

The form (vllm-project/vllm, .github/ISSUE_TEMPLATE/400-bug-report.yml, read at commit 9f77d7f7e439)
has a title prefilled with "[Bug]: ", two required text fields, "Your current environment" and
"🐛 Describe the bug", and a required checkbox. Its text fields have no `id`, and GitHub fills a
form field from the new-issue URL only by id: the URL can carry the template and the title, and
the two parts are written as files to paste. The GitHub CLI path skips the form: `gh issue create
--body-file` takes the whole report, whose headings are the form's own.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from urllib.parse import quote, urlencode

REPOSITORY = "vllm-project/vllm"
BUG_FORM = "400-bug-report.yml"
ENVIRONMENT_FIELD = "Your current environment"
DESCRIBE_FIELD = "🐛 Describe the bug"
NEW_ISSUE_URL = f"https://github.com/{REPOSITORY}/issues/new"
TITLE_LIMIT = 256  # GitHub refuses longer issue titles
URL_LIMIT = 8000  # well below the lengths at which GitHub answers 414 URI Too Long


def part_paths(report_path: Path) -> tuple[Path, Path]:
    """Where the two form parts go beside `<stem>.md`: `<stem>.environment.md` and `<stem>.describe.md`."""
    report_path = Path(report_path)
    stem = report_path.name.removesuffix(".md")
    return report_path.with_name(f"{stem}.environment.md"), report_path.with_name(f"{stem}.describe.md")


def new_issue_url(title: str, limit: int = URL_LIMIT) -> str:
    """The bug form's URL with the title filled in, URL-encoded; the title is shortened to fit, the form never."""
    title = " ".join(title.split())[:TITLE_LIMIT]
    while True:
        url = f"{NEW_ISSUE_URL}?{urlencode({'template': BUG_FORM, 'title': title}, quote_via=quote)}"
        if len(url) <= limit or not title:
            return url
        title = title[: max(0, len(title) - max(1, (len(url) - limit) // 9))].rstrip()


def gh_command(title: str, report_path: Path) -> str:
    """A shell command that files the whole report through GitHub's API (quoted for any title or path)."""
    title = " ".join(title.split())[:TITLE_LIMIT]
    return (
        f"gh issue create --repo {REPOSITORY} --title {shlex.quote(title)} --body-file {shlex.quote(str(report_path))}"
    )


def next_steps(title: str, report_path: Path, zip_path: Path, environment_path: Path, describe_path: Path) -> list[str]:
    """What collect prints after writing the report: the form, its two parts, the attachment, or the CLI."""
    return [
        f"open {new_issue_url(title)} (vLLM's bug form, title filled in)",
        (
            f"paste {environment_path} into '{ENVIRONMENT_FIELD}' and {describe_path} into '{DESCRIBE_FIELD}' "
            f"({report_path} holds both, for reading)"
        ),
        f"attach {zip_path} to the issue (the bundle, zipped: GitHub accepts .zip, not .zst)",
        f"or file the whole report with GitHub's CLI, then attach the zip:\n    {gh_command(title, report_path)}",
    ]
