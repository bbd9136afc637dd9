"""The Python API: `import vllm_bug` stays light; analyze() gives the JSON contract of `analyze --format json`
for a path, bytes or text; collect() collects like `vllm-bug collect`; problems raise the project's
exceptions with their exit codes, and warnings are Python warnings."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import vllm_bug
from conftest import minimal_payload
from report_helpers import corpus_cases
from vllm_bug.cli import cli
from vllm_bug.errors import UnreadableInput, UnsafeInput, UsageProblem, VllmBugError, VllmBugWarning
from vllm_bug.schema.bundle import encode, make_envelope, read_bundle

BUNDLE = Path(__file__).parent / "fixtures" / "bundles" / "h200-1gpu-illegal-memory-access.zst"
HEAVY = ("jsonschema", "zstandard", "jinja2", "pynvml")
OOM = corpus_cases()["vllm-project/vllm#15105"]
OOM_TEXT = OOM["title"] + "\n" + OOM["error_text"]


def cli_json(*args: str, data: bytes | None = None) -> dict:
    result = CliRunner().invoke(cli, ["analyze", *args, "--format", "json"], input=data)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_import_stays_light():
    probe = (
        "import sys, vllm_bug\n"
        "assert callable(vllm_bug.analyze) and callable(vllm_bug.collect) and vllm_bug.Collected\n"
        f"print(sorted(m for m in {HEAVY!r} + ('click', 'vllm_bug.analyzer', 'vllm_bug.bundler') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_package_lists_its_api():
    assert {"analyze", "collect", "Collected", "VllmBugError", "__version__"} <= set(vllm_bug.__all__)
    assert {"analyze", "collect"} <= set(dir(vllm_bug))
    assert vllm_bug.VllmBugError is VllmBugError
    with pytest.raises(AttributeError):
        vllm_bug.no_such_thing  # noqa: B018


def test_analyze_text_is_the_json_contract_of_the_cli():
    doc = vllm_bug.analyze(text=OOM_TEXT)
    assert doc == cli_json("-", data=OOM_TEXT.encode())
    assert doc["input"] == {"kind": "text", "sha256": hashlib.sha256(OOM_TEXT.encode()).hexdigest()}
    assert doc["diagnoses"][0]["category"] == "cuda_oom"


def test_analyze_a_path_or_the_same_bytes():
    by_path = vllm_bug.analyze(str(BUNDLE))
    assert by_path == cli_json(str(BUNDLE))
    assert vllm_bug.analyze(BUNDLE) == by_path  # os.PathLike
    assert vllm_bug.analyze(BUNDLE.read_bytes()) == by_path
    assert by_path["input"]["kind"] == "bundle"
    assert by_path["diagnoses"][0]["category"] == "illegal_memory_access"


@pytest.mark.parametrize(
    ("call", "error", "code", "message"),
    [
        (lambda tmp: vllm_bug.analyze(str(tmp / "missing.zst")), UnreadableInput, 3, "no such file"),
        (lambda tmp: vllm_bug.analyze(b"\x28\xb5\x2f\xfd" + b"x" * 40), UnreadableInput, 3, "zstd"),
        (lambda tmp: vllm_bug.analyze(b"\x1f\x8b\x08\x00"), UnreadableInput, 3, "gzip"),
        (lambda tmp: vllm_bug.analyze(text="   \n"), UnreadableInput, 3, "<text>: input is empty"),
        (lambda tmp: vllm_bug.analyze(b"x" * ((32 << 20) + 1)), UnsafeInput, 4, "over the 32 MiB limit"),
        (lambda tmp: vllm_bug.analyze(), UsageProblem, 2, "either source"),
        (lambda tmp: vllm_bug.analyze(b"log", text="log"), UsageProblem, 2, "not both"),
        (lambda tmp: vllm_bug.analyze(42), UsageProblem, 2, "not int"),
        (lambda tmp: vllm_bug.analyze(text=b"bytes"), UsageProblem, 2, "text must be a str"),
    ],
)
def test_analyze_raises_the_project_errors_with_their_exit_codes(tmp_path, call, error, code, message):
    with pytest.raises(error, match=message) as info:
        call(tmp_path)
    assert info.value.exit_code == code


def test_analyze_warns_as_the_cli_does(tmp_path):
    from vllm_bug.analyzer.embed import embed_block

    payload = minimal_payload()
    payload["log"] = {"source": "file", "truncated": False, "text": "RuntimeError: device-side assert triggered\n"}
    block = embed_block(encode(make_envelope(payload)))
    damaged = block.replace(block.split("sha256=")[1][:64], hashlib.sha256(b"other").hexdigest())
    with pytest.warns(VllmBugWarning, match="the embedded bundle does not match its sha256") as caught:
        doc = vllm_bug.analyze(text="# report\n\n" + damaged + "\n")
    assert doc["input"]["kind"] == "text"
    assert caught[0].filename == __file__  # the warning points at the caller


# -- collect -------------------------------------------------------------------------------------------


def test_collect_in_memory_with_log_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = 'INFO start\nTraceback (most recent call last):\n  File "x", line 1\nValueError: boom\n'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collected = vllm_bug.collect(log_text=log, timeout=20, write=False)
    assert [str(w.message) for w in caught if w.category is VllmBugWarning] == collected.warnings
    assert collected.files is None and collected.next_steps == []
    assert collected.document["format"] == "vllm-bug-bundle"
    assert collected.payload["log"]["source"] == "stdin"
    assert "ValueError: boom" in collected.payload["log"]["tracebacks"][0]
    encode(collected.document)  # a valid bundle
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.filterwarnings("ignore::vllm_bug.errors.VllmBugWarning")
def test_collect_writes_the_files_and_never_over_them(tmp_path):
    log = tmp_path / "vllm.log"
    log.write_text('Traceback (most recent call last):\n  File "x", line 1\nValueError: boom\n')
    out = tmp_path / "b.zst"
    collected = vllm_bug.collect(log=log, output=out, timeout=20)
    files = collected.files
    assert files is not None and files.bundle == out
    assert read_bundle(out) == collected.document
    assert all(path.exists() for path in (files.report, files.archive, files.environment, files.describe))
    assert any("gh issue create" in step for step in collected.next_steps)

    before = out.read_bytes()
    with pytest.raises(VllmBugError, match="already exists; use --force") as info:
        vllm_bug.collect(output=str(out), timeout=20)
    assert info.value.exit_code == 1 and out.read_bytes() == before


@pytest.mark.parametrize(
    ("kwargs", "error", "code", "message"),
    [
        ({"log": "missing.log"}, UnreadableInput, 3, "--log missing.log: no such file"),
        ({"log_text": ""}, UnreadableInput, 3, "empty"),
        ({"python": "/nonexistent/python"}, UsageProblem, 2, "no such interpreter"),
        ({"timeout": 0}, UsageProblem, 2, "from 1 to 3600"),
        ({"timeout": "60"}, UsageProblem, 2, "number of seconds"),
        ({"log": "a.log", "log_text": "x"}, UsageProblem, 2, "not both"),
        ({"output": "-"}, UsageProblem, 2, "give a file name"),
        ({"output": "report.md"}, UsageProblem, 2, "beside the bundle"),
    ],
)
def test_collect_refuses_before_collecting(tmp_path, monkeypatch, kwargs, error, code, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("vllm_bug.commands.collect.collect_document", lambda options: pytest.fail("collected"))
    with pytest.raises(error, match=message) as info:
        vllm_bug.collect(**kwargs)
    assert info.value.exit_code == code
    assert list(tmp_path.iterdir()) == []
