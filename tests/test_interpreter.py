"""Which interpreter a collect inspects, tested with real virtual environments (no network, no pip).

Three environments stand for a user's machine: `tool` (vllm-bug installed on its own, as pipx or
uv tool do), `serving` (torch and vLLM, with a `vllm` console script) and `torchonly`. The packages
are fake: a module folder and a dist-info with METADATA, which is all package metadata reads.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vllm_bug.bundler import interpreter as it
from vllm_bug.errors import EXIT_USAGE, UsageProblem
from vllm_bug.schema.bundle import read_bundle


def make_venv(root: Path, name: str, packages: dict[str, str]) -> Path:
    venv = root / name
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    for package, version in packages.items():
        (Path(site) / package).mkdir()
        (Path(site) / package / "__init__.py").write_text(f"__version__ = {version!r}\n")
        dist_info = Path(site) / f"{package}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    return venv


def write_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture(scope="module")
def envs(tmp_path_factory):
    root = tmp_path_factory.mktemp("envs")
    tool = make_venv(root, "tool", {})
    serving = make_venv(root, "serving", {"torch": "2.8.0", "vllm": "0.11.0"})
    torchonly = make_venv(root, "torchonly", {"torch": "2.9.1"})
    write_script(serving / "bin" / "vllm", f"#!{serving}/bin/python\nimport sys\nsys.exit(0)\n")
    empty = root / "empty-path"
    empty.mkdir()
    return {"tool": tool, "serving": serving, "torchonly": torchonly, "empty": empty}


def python_of(venv: Path) -> str:
    return str(venv / "bin" / "python")


def environ(envs, *path_dirs: Path, **variables: Path) -> dict[str, str]:
    """An environment with PATH made only of path_dirs (so the test machine's own tools never count)."""
    env = {"PATH": os.pathsep.join(str(p) for p in (*path_dirs, envs["empty"]))}
    env.update({k: str(v) for k, v in variables.items()})
    return env


# -- the order of candidates -------------------------------------------------------------------


def test_python_option_comes_first_and_says_so(envs):
    choice = it.choose(python_of(envs["serving"]), environ(envs, VIRTUAL_ENV=envs["tool"]), own=python_of(envs["tool"]))
    assert choice.chosen == it.Candidate(python_of(envs["serving"]), "option", "given with --python")
    assert [c.found_by for c in choice.others] == ["virtual_env"]


def test_python_option_may_name_an_environment_folder(envs):
    choice = it.choose(str(envs["serving"]), environ(envs))
    assert choice.chosen.executable == python_of(envs["serving"])


@pytest.mark.parametrize(
    "value, words",
    [
        ("/no/such/python", "no such interpreter"),
        ("no-such-python-name", "no such interpreter"),
        ("FOLDER", "no bin/python in it"),
        ("PLAIN_FILE", "not an executable file"),
    ],
)
def test_python_option_that_names_nothing_usable_is_a_usage_error(envs, tmp_path, value, words):
    (tmp_path / "plain").write_text("print(1)\n")
    value = {"FOLDER": str(tmp_path), "PLAIN_FILE": str(tmp_path / "plain")}.get(value, value)
    with pytest.raises(UsageProblem, match=words) as caught:
        it.choose(value, environ(envs))
    assert caught.value.exit_code == EXIT_USAGE


def test_virtual_env_then_conda_prefix_then_vllm_on_path(envs):
    path = envs["serving"] / "bin"
    both = it.choose(None, environ(envs, path, VIRTUAL_ENV=envs["tool"], CONDA_PREFIX=envs["torchonly"]))
    assert (both.chosen.executable, both.chosen.reason) == (python_of(envs["tool"]), f"VIRTUAL_ENV is {envs['tool']}")
    conda = it.choose(None, environ(envs, path, CONDA_PREFIX=envs["torchonly"]))
    assert (conda.chosen.found_by, conda.chosen.executable) == ("conda_prefix", python_of(envs["torchonly"]))
    on_path = it.choose(None, environ(envs, path))
    assert on_path.chosen.found_by == "vllm_on_path"
    assert on_path.chosen.executable == python_of(envs["serving"])
    assert on_path.chosen.reason == f"named by the #! line of {path / 'vllm'}"


def test_nothing_found_falls_back_to_our_own_interpreter(envs):
    choice = it.choose(None, environ(envs), own=python_of(envs["tool"]))
    assert choice.chosen.found_by == "self" and choice.chosen.executable == python_of(envs["tool"])


def test_python3_on_path_is_only_surveyed_never_preferred_to_our_own(envs):
    choice = it.choose(None, environ(envs, envs["torchonly"] / "bin"), own=python_of(envs["tool"]))
    assert choice.chosen.found_by == "self"
    assert [(c.found_by, c.executable) for c in choice.others] == [
        ("python3_on_path", str(envs["torchonly"] / "bin" / "python3"))
    ]


def test_a_missing_environment_folder_is_skipped(envs, tmp_path):
    choice = it.choose(None, environ(envs, VIRTUAL_ENV=tmp_path / "deleted-venv"), own=python_of(envs["tool"]))
    assert choice.chosen.found_by == "self"


# -- #! lines -------------------------------------------------------------------------------------


def test_shebang_through_env_finds_python_on_path(envs, tmp_path):
    script = write_script(tmp_path / "vllm", "#!/usr/bin/env python3\nprint(1)\n")
    found = it.shebang_interpreter(str(script), environ(envs, envs["serving"] / "bin"))
    assert found == str(envs["serving"] / "bin" / "python3")
    split = write_script(tmp_path / "vllm-s", "#!/usr/bin/env -S python3 -u\nprint(1)\n")
    assert it.shebang_interpreter(str(split), environ(envs, envs["serving"] / "bin")) == found


@pytest.mark.parametrize("quote", ['"', "'"])
def test_shebang_of_the_sh_launcher_pip_and_uv_write_for_long_paths(envs, tmp_path, quote):
    python = python_of(envs["serving"])
    script = write_script(
        tmp_path / "vllm", f"#!/bin/sh\n'''exec' {quote}{python}{quote} \"$0\" \"$@\"\n' '''\nimport sys\n"
    )
    assert it.shebang_interpreter(str(script), environ(envs)) == python


@pytest.mark.parametrize(
    "text",
    ["#!/bin/bash\necho hi\n", "\x7fELF\x02\x01", "#!/usr/bin/env node\n", "#!\n", "", "#!/usr/bin/env -S 'python3\n"],
)
def test_shebang_that_names_no_python_gives_nothing(envs, tmp_path, text):
    script = write_script(tmp_path / "tool", text)
    assert it.shebang_interpreter(str(script), environ(envs, envs["serving"] / "bin")) is None


# -- run: the command's own interpreter -----------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["python", "-m", "vllm.entrypoints.openai.api_server"],
        ["vllm", "serve", "m"],
        ["env", "CUDA_VISIBLE_DEVICES=0", "vllm", "serve", "m"],
        ["VENV/bin/python", "x.py"],
    ],
)
def test_run_inspects_the_commands_own_interpreter_first(envs, argv):
    argv = [a.replace("VENV", str(envs["serving"])) for a in argv]
    choice = it.choose(None, environ(envs, envs["serving"] / "bin", VIRTUAL_ENV=envs["tool"]), argv=argv)
    assert choice.chosen.found_by == "command"
    assert choice.chosen.executable == python_of(envs["serving"])
    assert "virtual_env" in [c.found_by for c in choice.others]


def test_run_of_a_command_that_is_not_python_uses_the_usual_order(envs, tmp_path):
    write_script(tmp_path / "serve.sh", "#!/bin/sh\nexit 1\n")
    choice = it.choose(None, environ(envs, tmp_path, VIRTUAL_ENV=envs["tool"]), argv=["serve.sh"])
    assert choice.chosen.found_by == "virtual_env"


# -- the survey and the warning ------------------------------------------------------------------


def test_survey_reads_versions_from_package_metadata_without_importing(envs):
    surveyed = it.survey(
        [
            it.Candidate(python_of(envs["serving"]), "vllm_on_path", "r"),
            it.Candidate(python_of(envs["torchonly"]), "python3_on_path", "r"),
            it.Candidate(str(envs["empty"] / "missing-python"), "self", "r"),
        ]
    )
    by_kind = {s["found_by"]: s for s in surveyed}
    assert by_kind["vllm_on_path"]["torch"] == "2.8.0" and by_kind["vllm_on_path"]["vllm"] == "0.11.0"
    assert by_kind["vllm_on_path"]["prefix"] == str(envs["serving"])
    assert by_kind["python3_on_path"]["torch"] == "2.9.1" and by_kind["python3_on_path"]["vllm"] is None
    assert "error" in by_kind["self"]


def metadata_of(venv: Path, torch: bool, vllm: bool) -> dict:
    return {"python": {"prefix": str(venv)}, "torch": {"installed": torch}, "vllm": {"installed": vllm}}


def test_warning_names_the_other_environment_that_has_vllm(envs):
    choice = it.choose(
        None, environ(envs, envs["serving"] / "bin", VIRTUAL_ENV=envs["tool"]), own=python_of(envs["tool"])
    )
    facts = it.bundle_facts(choice, metadata_of(envs["tool"], False, False), it.survey(choice.others))
    assert facts["chosen_by"] == "virtual_env"
    serving = python_of(envs["serving"])
    assert facts["warnings"] == [
        (
            f"vLLM and torch are not installed in {python_of(envs['tool'])} (VIRTUAL_ENV is {envs['tool']}), but "
            f"{serving} has vLLM 0.11.0, torch 2.8.0: if that is the environment vLLM runs in, collect again with "
            f"--python {serving}"
        )
    ]
    assert [o["executable"] for o in facts["other_interpreters"]] == [serving]


def test_no_warning_when_the_inspected_interpreter_has_both(envs):
    choice = it.choose(None, environ(envs, envs["torchonly"] / "bin", VIRTUAL_ENV=envs["serving"]))
    facts = it.bundle_facts(choice, metadata_of(envs["serving"], True, True), it.survey(choice.others))
    assert "warnings" not in facts


def test_without_another_candidate_the_warning_says_to_use_python(envs):
    choice = it.choose(None, environ(envs), own=python_of(envs["tool"]))
    facts = it.bundle_facts(choice, metadata_of(envs["tool"], True, False), it.survey(choice.others))
    assert facts["warnings"] == [
        (
            f"vLLM is not installed in {python_of(envs['tool'])} (vllm-bug's own: no "
            "VIRTUAL_ENV, CONDA_PREFIX or vllm on PATH); if vLLM runs in another environment, "
            "collect again with --python pointing at its interpreter"
        )
    ]


def test_the_same_environment_reached_twice_is_not_another_candidate(envs):
    # VIRTUAL_ENV and the vllm on PATH are one environment: bin/python and bin/python3 are different paths to it
    write_script(envs["torchonly"] / "bin" / "vllm", f"#!{envs['torchonly']}/bin/python3\n")
    try:
        choice = it.choose(
            None,
            environ(envs, envs["torchonly"] / "bin", VIRTUAL_ENV=envs["torchonly"]),
            own=python_of(envs["torchonly"]),
        )
        assert choice.others  # two paths before the survey...
        facts = it.bundle_facts(choice, metadata_of(envs["torchonly"], True, False), it.survey(choice.others))
    finally:
        (envs["torchonly"] / "bin" / "vllm").unlink()
    assert "other_interpreters" not in facts  # ...one environment after it
    assert "pointing at its interpreter" in facts["warnings"][0]


def test_metadata_that_failed_gives_no_warning(envs):
    choice = it.choose(None, environ(envs, envs["serving"] / "bin", VIRTUAL_ENV=envs["tool"]))
    assert "warnings" not in it.bundle_facts(choice, {"error": "probe hung"}, it.survey(choice.others))


# -- through the commands ----------------------------------------------------------------------


def test_collect_inspects_the_active_venv_and_warns_about_the_one_with_vllm(envs, tmp_path, monkeypatch, capsys):
    from vllm_bug.commands import collect

    monkeypatch.setattr(os, "environ", environ(envs, envs["serving"] / "bin", VIRTUAL_ENV=envs["tool"]))
    result = collect.execute(output=str(tmp_path / "b.zst"), timeout_s=60)
    assert result.exit_code == 0
    out = result.text
    serving, tool = python_of(envs["serving"]), python_of(envs["tool"])
    assert f"  python:    Python {sys.version.split()[0]} at {tool} (VIRTUAL_ENV is {envs['tool']})\n" in out
    assert f"warning: vLLM and torch are not installed in {tool}" in out and f"--python {serving}" in out
    python = read_bundle(tmp_path / "b.zst")["payload"]["host"]["python"]
    assert (python["executable"], python["chosen_by"]) == (tool, "virtual_env")
    assert python["other_interpreters"][0]["vllm"] == "0.11.0"


def test_quiet_collect_still_warns_on_stderr(envs, tmp_path, monkeypatch, capsys):
    from vllm_bug.cli import main

    monkeypatch.setattr(os, "environ", environ(envs, envs["serving"] / "bin", VIRTUAL_ENV=envs["tool"]))
    with pytest.raises(SystemExit) as exc:
        main(["collect", "-o", str(tmp_path / "b.zst"), "--quiet"])
    assert exc.value.code == 0
    captured = capsys.readouterr()
    assert captured.out == f"{tmp_path / 'b.zst'}\n"
    assert captured.err.startswith("vllm-bug: warning: vLLM and torch are not installed")


def test_run_takes_python(envs, tmp_path):
    # `run --python X -- cmd` used to run "--python" as the command (exit 127)
    serving = python_of(envs["serving"])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vllm_bug",
            "run",
            "--python",
            serving,
            "-o",
            "b.zst",
            "--",
            sys.executable,
            "-c",
            "raise SystemExit(5)",
        ],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 5, result.stderr
    python = read_bundle(tmp_path / "b.zst")["payload"]["host"]["python"]
    assert (python["executable"], python["chosen_by"]) == (serving, "option")


def test_run_with_a_bad_python_stops_before_the_command_runs(tmp_path):
    marker = tmp_path / "ran"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vllm_bug",
            "run",
            "--python",
            str(tmp_path / "nope"),
            "--",
            sys.executable,
            "-c",
            f"open({str(marker)!r}, 'w')",
        ],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == EXIT_USAGE
    assert result.stderr == f"vllm-bug: error: --python {tmp_path / 'nope'}: no such interpreter\n"
    assert not marker.exists()


def test_run_inspects_the_interpreter_of_the_command_it_ran(envs, tmp_path):
    script = write_script(tmp_path / "serve", f"#!{python_of(envs['serving'])}\nraise SystemExit(4)\n")
    env = dict(os.environ, PATH=os.pathsep.join([str(envs["empty"]), os.environ.get("PATH", "")]))
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        [sys.executable, "-m", "vllm_bug", "run", "-o", "b.zst", "--", str(script)],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 4, result.stderr
    python = read_bundle(tmp_path / "b.zst")["payload"]["host"]["python"]
    assert (python["executable"], python["chosen_by"]) == (python_of(envs["serving"]), "command")
    assert python["chosen_because"] == f"named by the #! line of the command {script}"


def test_a_fifo_named_vllm_on_path_is_never_opened(envs, tmp_path):
    fifo = tmp_path / "vllm"
    os.mkfifo(fifo)
    fifo.chmod(0o755)
    assert it.shebang_interpreter(str(fifo), environ(envs, tmp_path)) is None
