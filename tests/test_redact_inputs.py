"""Every input is redacted again before anything is shown: bundles from older or modified writers
(argv as separate items, raw secrets in env) through analyze in every format and through show."""

from __future__ import annotations

import pytest

from conftest import minimal_payload
from vllm_bug.cli import main
from vllm_bug.schema.bundle import encode, make_envelope

SECRET = "cnryQ7w2e9r4t6y8u1i3"
TOKEN = "hf_" + "Zq" * 17


def written_by_an_old_writer(tmp_path):
    payload = minimal_payload()
    payload["command"] = {
        "argv": ["vllm", "serve", "m", "--api-key", SECRET, "--hf-token", TOKEN, "--port", "8000"],
        "exit_code": 1,
        "duration_s": 1.0,
    }
    payload["manifest"]["collector"] = {"argv": ["vllm-bug", "run", "--", "vllm", "serve", "--api-key", SECRET]}
    payload["env"] = {"HF_TOKEN": TOKEN, "VLLM_API_KEY": SECRET}
    payload["log"] = {
        "source": "command",
        "name": "vllm",
        "text": f"starting with --api-key {SECRET}\nboom\n",
        "original_bytes": 40,
        "original_lines": 2,
        "truncated": False,
        "tracebacks": [],
        "traceback_copies": [],
        "tracebacks_found": 0,
    }
    path = tmp_path / "old.zst"
    path.write_bytes(encode(make_envelope(payload)))
    return path


def run(capsys, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out + err


@pytest.mark.parametrize("fmt", ["json", "markdown", "text"])
def test_analyze_redacts_argv_given_as_separate_items(tmp_path, capsys, fmt):
    code, out = run(capsys, "analyze", str(written_by_an_old_writer(tmp_path)), "--format", fmt)
    assert code == 0
    assert SECRET not in out and TOKEN[3:] not in out


def test_show_prints_the_bundle_redacted(tmp_path, capsys):
    code, out = run(capsys, "show", str(written_by_an_old_writer(tmp_path)))
    assert code == 0
    assert SECRET not in out and TOKEN[3:] not in out
    assert '"--api-key",\n' in out and "<redacted:secret_arg>" in out and "<redacted:hf_token>" in out
