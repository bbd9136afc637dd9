"""triage over lists of reports: `gh issue list --json number,title,body,url` output (a JSON array) and JSON
Lines, one input per report, with issue numbers and URLs kept in the table, the CSV and the JSON.

The reports are real: tests/fixtures/reports/real-issues-dev.jsonl mapped to the shape gh gives (its
alphabetically ordered compact objects, the body laid out as vLLM's bug form lays it out)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from click.testing import CliRunner

from report_helpers import corpus_cases
from vllm_bug.analyzer.reports import ARRAY, LINES, list_kind, read_reports, report_text
from vllm_bug.cli import cli
from vllm_bug.commands.triage import triage

CASES = list(corpus_cases().values())


def form_body(case: dict) -> str:
    """An issue body as vLLM's bug form makes it: the environment, the description, the checkbox."""
    env = case["env_text"] or "Your output of `python collect_env.py` here"
    return (
        "### Your current environment\n\n<details>\n<summary>The output of <code>python collect_env.py</code>"
        f"</summary>\n\n```text\n{env}\n```\n\n</details>\n\n\n### 🐛 Describe the bug\n\n{case['error_text']}\n\n"
        "### Before submitting a new issue...\n\n- [X] Make sure you already searched for relevant issues."
    )


def gh_issue(case: dict) -> dict:
    number = int(case["id"].rsplit("#", 1)[1])
    return {"body": form_body(case), "number": number, "title": case["title"], "url": case["url"]}


def gh_json(cases: list[dict]) -> str:
    """What `gh issue list --json number,title,body,url` writes to a pipe: one compact array."""
    return json.dumps([gh_issue(c) for c in cases], sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def gh_jsonl(cases: list[dict]) -> str:
    """The same with `--jq '.[]'`: one object per line."""
    return "".join(json.dumps(gh_issue(c), sort_keys=True, separators=(",", ":")) + "\n" for c in cases)


def groups_of(result) -> list[tuple[str, str, int]]:
    return sorted((g.signature, g.category, len(g.files)) for g in result.groups)


@pytest.fixture(scope="module")
def gh_dump(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gh")
    (folder / "issues.json").write_text(gh_json(CASES), encoding="utf-8")
    return folder / "issues.json"


@pytest.fixture(scope="module")
def gh_result(gh_dump):
    return triage([str(gh_dump)], jobs=2)


def test_every_gh_issue_is_an_input_analysed_as_its_pasted_text(gh_result, tmp_path):
    for i, case in enumerate(CASES):
        (tmp_path / f"{i:03d}.md").write_text(report_text(case["title"], form_body(case)), encoding="utf-8")
    as_files = triage([str(tmp_path)], jobs=2)
    assert gh_result.analyzed == len(CASES) and gh_result.bad == []
    assert groups_of(gh_result) == groups_of(as_files)


def test_each_group_keeps_its_issue_numbers_and_urls(gh_result, gh_dump):
    numbers = {int(c["id"].rsplit("#", 1)[1]): c for c in CASES}
    seen = []
    for group in gh_result.groups:
        refs = [gh_result.issues[name] for name in group.files]
        seen += [ref.number for ref in refs]
        assert all(ref.url == numbers[ref.number]["url"] for ref in refs)
    assert sorted(seen) == sorted(numbers)
    oom = next(g for g in gh_result.groups if any(gh_result.issues[n].number == 15105 for n in g.files))
    assert oom.category == "cuda_oom"
    assert all(re.fullmatch(re.escape(str(gh_dump)) + r"\[\d+\]", name) for g in gh_result.groups for name in g.files)


def test_table_csv_and_json_show_the_issues(gh_dump):
    runner = CliRunner()
    table = runner.invoke(cli, ["triage", str(gh_dump), "-j", "2"])
    assert table.exit_code == 0, table.output
    assert f"{len(CASES)} analysed, 0 bad" in table.stdout
    assert re.search(r"example: \S+\[\d+\] #\d+ https://github\.com/vllm-project/vllm/issues/\d+", table.stdout)
    listed = re.findall(r"#(\d+)", " ".join(re.findall(r"^\s+issues: (.*(?:\n {30,}.*)*)", table.stdout, re.M)))
    assert sorted(map(int, listed)) == sorted({int(c["id"].rsplit("#", 1)[1]) for c in CASES})

    rows = list(csv.DictReader(io.StringIO(runner.invoke(cli, ["triage", str(gh_dump), "--format", "csv"]).stdout)))
    assert sum(len(r["issues"].split()) for r in rows) == len({c["id"] for c in CASES})
    row = next(r for r in rows if "15105" in r["issues"].split())
    assert "https://github.com/vllm-project/vllm/issues/15105" in row["urls"].split()

    doc = json.loads(runner.invoke(cli, ["triage", str(gh_dump), "--format", "json"]).stdout)
    issues = [i for g in doc["groups"] for i in g["issues"]]
    assert len(issues) == len(CASES) == doc["analyzed"]
    assert {"input", "number", "url"} == set(issues[0])
    assert all(i["input"] in g["files"] for g in doc["groups"] for i in g["issues"])


def test_json_lines_give_the_same_groups_as_the_array(gh_result, tmp_path):
    (tmp_path / "issues.jsonl").write_text(gh_jsonl(CASES), encoding="utf-8")
    result = triage([str(tmp_path / "issues.jsonl")], jobs=2)
    assert groups_of(result) == groups_of(gh_result)
    assert {ref.number for ref in result.issues.values()} == {ref.number for ref in gh_result.issues.values()}


def test_standard_input_takes_a_pipe_from_gh():
    piped = CliRunner().invoke(cli, ["triage", "-", "--format", "json", "-j", "1"], input=gh_json(CASES[:3]))
    assert piped.exit_code == 0, piped.output
    doc = json.loads(piped.stdout)
    assert doc["analyzed"] == 3
    assert {i["input"] for g in doc["groups"] for i in g["issues"]} == {"<stdin>[0]", "<stdin>[1]", "<stdin>[2]"}


def test_a_bad_line_is_a_row_not_a_crash(tmp_path):
    good = gh_jsonl(CASES[:2]).splitlines()
    lines = [
        good[0],
        "this is not json",
        '["an", "array"]',
        '{"number": 7, "title": "", "body": "   "}',
        "[" * 100_000 + "]" * 100_000,
        "",
        good[1],
    ]
    (tmp_path / "issues.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["triage", str(tmp_path / "issues.jsonl"), "-j", "1"])
    assert result.exit_code == 0, result.output
    assert "2 analysed, 4 bad" in result.stdout
    name = str(tmp_path / "issues.jsonl")
    assert f"  {name}:2: not a JSON object (Expecting value: column 1)" in result.stdout
    assert f"  {name}:3: not a report object (a JSON array)" in result.stdout
    assert f"  {name}:4 #7: no title or body text" in result.stdout
    assert f"  {name}:5: refused: nested too deeply" in result.stdout
    assert f"example: {name}:1 #15105 https://github.com/vllm-project/vllm/issues/15105" in result.stdout
    assert "issues: #15105 #1949\n" in result.stdout
    (group,) = triage([name], jobs=1).groups
    assert group.files == [f"{name}:1", f"{name}:7"]  # line numbers count the blank line


def test_a_list_that_holds_nothing_usable_is_one_bad_row(tmp_path):
    (tmp_path / "empty.json").write_text("[]\n")
    (tmp_path / "blank.jsonl").write_text("\n\n")
    (tmp_path / "latin1.jsonl").write_bytes(b'{"title": "caf\xe9"}\n')
    (tmp_path / "cut.json").write_text(gh_json(CASES[:2])[:-100])
    result = triage([str(tmp_path)], jobs=1)
    reasons = {name.rsplit("/", 1)[-1]: reason for name, reason in result.bad}
    assert reasons == {
        "blank.jsonl": "holds no reports",
        "cut.json": "not a JSON array of reports (Unterminated string starting at: line 1 column 2359 (char 2358))",
        "empty.json": "holds no reports",
        "latin1.jsonl": "not valid UTF-8 text (bad byte at offset 14)",
    }


def test_members_of_a_list_are_listed_in_line_order(tmp_path):
    same = gh_issue(CASES[0])
    lines = [json.dumps({**same, "number": n}) for n in range(1, 13)]
    (tmp_path / "issues.jsonl").write_text("\n".join(lines) + "\n")
    (group,) = triage([str(tmp_path / "issues.jsonl")], jobs=1).groups
    assert group.example.endswith(":1")
    assert [int(name.rsplit(":", 1)[1]) for name in group.files] == list(range(1, 13))


# -- recognising a list --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "head", "kind"),
    [
        ("issues.json", gh_json(CASES[:1]), ARRAY),
        ("issues.txt", gh_json(CASES[:1]), ARRAY),  # by content, whatever the name
        ("issues.json", json.dumps([gh_issue(CASES[0])], indent=2), ARRAY),  # gh to a terminal, or jq
        ("issues.json", "[]", ARRAY),
        ("issues", "\ufeff" + gh_jsonl(CASES[:2]), LINES),
        ("issues.jsonl", "not json at all\n", LINES),  # by name, whatever the content
        ("issues.ndjson", "[1, 2]", ARRAY),
        ("vllm.log", "[rank0]: Traceback (most recent call last):\n", None),
        ("vllm.log", '{"level": "ERROR", "message": "CUDA error"}\n', None),  # a JSON log line is not a report
        ("show.json", '{\n  "format": "vllm-bug-bundle",\n  "title": "x"\n}\n', None),  # a bundle's own JSON
        ("one.json", '{"format":"vllm-bug-bundle","body":"x"}', None),
        ("report.md", '## [Bug]: CUDA OOM\n\n```\n{"title": 1}\n```\n', None),
    ],
)
def test_list_kind(name, head, kind):
    assert list_kind(name, head.encode("utf-8")[:4096]) == kind


def test_reports_carry_number_and_url_only_when_they_are_sound():
    lines = [
        {"number": 12, "title": "a", "url": "https://github.com/vllm-project/vllm/issues/12"},
        {"number": "34", "title": "b", "html_url": "https://github.com/vllm-project/vllm/issues/34"},
        {"number": True, "title": "c", "url": "javascript:alert(1)"},
        {"number": -5, "body": "d", "url": 7},
    ]
    reports = read_reports("x.jsonl", "\n".join(json.dumps(line) for line in lines).encode(), LINES)
    assert [(r.name, r.number, r.url) for r in reports] == [
        ("x.jsonl:1", 12, "https://github.com/vllm-project/vllm/issues/12"),
        ("x.jsonl:2", 34, "https://github.com/vllm-project/vllm/issues/34"),
        ("x.jsonl:3", None, None),
        ("x.jsonl:4", None, None),
    ]
    assert reports[0].data == b"a" and reports[3].data == b"d"


def test_a_json_string_may_hold_a_line_separator():
    line = json.dumps({"title": "a\u2028b", "body": "c"}, ensure_ascii=False)
    (report,) = read_reports("x.jsonl", line.encode(), LINES)
    assert report.data == "a\u2028b\nc".encode()


def test_standard_input_on_a_terminal_is_a_usage_error(monkeypatch):
    from vllm_bug.commands import triage as triage_command
    from vllm_bug.errors import UsageProblem

    class Terminal(io.BytesIO):
        def isatty(self):
            return True

    monkeypatch.setattr(triage_command.sys, "stdin", io.TextIOWrapper(Terminal()))
    with pytest.raises(UsageProblem, match="standard input is a terminal"):
        triage_command.execute(["-"])


def test_workers_bound_what_they_add_not_what_they_inherit(tmp_path):
    # a parent that reserved a lot of address space (Ray does, on import) made a forked worker start over its
    # 1 GiB RLIMIT_AS: the deep-nesting line then needed stack the worker could not map (SIGSEGV, seen in CI)
    import mmap

    reserved = mmap.mmap(-1, 1536 << 20)  # address space only: no page is touched
    try:
        (tmp_path / "issues.jsonl").write_text(gh_jsonl(CASES[:1]) + "[" * 100_000 + "]" * 100_000 + "\n")
        result = CliRunner().invoke(cli, ["triage", str(tmp_path / "issues.jsonl"), "-j", "1"])
    finally:
        reserved.close()
    assert result.exit_code == 0, result.output
    assert "nested too deeply" in result.output and "SIGSEGV" not in result.output
