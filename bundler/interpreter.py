"""Which Python interpreter runs vLLM: the one whose torch and vLLM a collect inspects.

vllm-bug is usually installed in an environment of its own (`pipx install`, `uv tool install`), so
its own interpreter is the last guess, not the first. The candidates, most specific first:

1. `--python` (an interpreter, or the folder of a virtual or conda environment);
2. for `vllm-bug run`, the command's own interpreter: `python ...` itself, or the `#!` line of a
   script such as `vllm` or `torchrun`;
3. the active virtual environment (`VIRTUAL_ENV`), then the active conda environment (`CONDA_PREFIX`);
4. the interpreter in the `#!` line of `vllm` on PATH;
5. `python3` on PATH, and vllm-bug's own interpreter (this process's).

The first candidate found is inspected. The others are surveyed cheaply (package metadata only,
in a subprocess each) so that a collect can warn when the inspected one lacks torch or vLLM while
another has them. Nothing here imports torch or vLLM.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vllm_bug.errors import UsageProblem

SHEBANG_READ_CAP = 4096
SURVEY_TIMEOUT_S = 10.0
# pip and uv write this two-line launcher when the interpreter's path is too long for a #! line
_SH_EXEC = re.compile(r"""^'''exec' (?:"([^"]+)"|'([^']+)'|(\S+)) "\$0" "\$@"\s*$""")
_PYTHON_NAME = re.compile(r"^(?:python|pypy)(?:\d+(?:\.\d+)*)?t?$")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")

# Printed as one JSON line by each surveyed interpreter; standard library only, any Python >= 3.8.
SURVEY_SOURCE = """\
import json, sys
try:
    from importlib import metadata
except ImportError:
    metadata = None
def version(name):
    try:
        return metadata.version(name)
    except Exception:
        return None
print(json.dumps({"prefix": sys.prefix, "torch": version("torch") if metadata else None,
                  "vllm": version("vllm") if metadata else None}))
"""


@dataclass(frozen=True)
class Candidate:
    executable: str  # absolute, symbolic links kept: a venv's bin/python is a link to its base interpreter
    found_by: str  # option | command | virtual_env | conda_prefix | vllm_on_path | python3_on_path | self
    reason: str  # why, in words that fit "inspected X (REASON)": "given with --python", "VIRTUAL_ENV is /x/.venv"


@dataclass
class Choice:
    """The interpreter to inspect and the others worth a look."""

    chosen: Candidate
    others: list[Candidate] = field(default_factory=list)


# -- finding candidates ------------------------------------------------------------------------


def looks_like_python(path: str) -> bool:
    return bool(_PYTHON_NAME.match(os.path.basename(path)))


def _runnable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _which(name: str, environ: Mapping[str, str]) -> str | None:
    found = shutil.which(name, path=environ.get("PATH", os.defpath))
    return os.path.abspath(found) if found else None


def prefix_interpreter(prefix: str) -> str | None:
    """The interpreter of a virtual or conda environment folder, if it has one."""
    for name in ("bin/python", "bin/python3"):
        path = os.path.join(prefix, name)
        if _runnable(path):
            return os.path.abspath(path)
    return None


def resolve_option(value: str, environ: Mapping[str, str]) -> str:
    """`--python VALUE` as an absolute path: an interpreter (by path or on PATH) or an environment folder."""
    found = value if os.path.sep in value else _which(value, environ)
    if not found or not os.path.exists(found):
        raise UsageProblem(f"--python {value}: no such interpreter")
    if os.path.isdir(found):
        inside = prefix_interpreter(found)
        if inside is None:
            raise UsageProblem(f"--python {value}: a folder with no bin/python in it; give the interpreter itself")
        return inside
    if not os.access(found, os.X_OK):
        raise UsageProblem(f"--python {value}: not an executable file")
    return os.path.abspath(found)


def shebang_interpreter(script: str, environ: Mapping[str, str]) -> str | None:
    """The Python interpreter a script's #! line names (None for binaries, shells and other languages)."""
    if not os.path.isfile(script):  # never open a FIFO or a device found on PATH: reading it could block
        return None
    try:
        with open(script, "rb") as handle:
            head = handle.read(SHEBANG_READ_CAP)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    lines = head.decode("utf-8", "replace").splitlines()
    words = lines[0][2:].split()
    if not words:
        return None
    program, arguments = words[0], words[1:]
    found: str | None
    if os.path.basename(program) == "env":
        named = _program_after_env(arguments)
        if named is None:
            return None
        found = named if os.path.sep in named else _which(named, environ)
    elif os.path.basename(program) == "sh" and len(lines) > 1:
        launcher = _SH_EXEC.match(lines[1])
        found = next((g for g in launcher.groups() if g), None) if launcher else None
    else:
        found = program
    if not found or not looks_like_python(found) or not _runnable(found):
        return None
    return os.path.abspath(found)


def _program_after_env(arguments: list[str]) -> str | None:
    """The program `env [-S] [-i] [-u NAME] [NAME=value...] PROGRAM` runs."""
    if arguments and arguments[0] == "-S":  # `env -S "python3 -u"`: the rest is split again
        try:
            arguments = shlex.split(" ".join(arguments[1:]))
        except ValueError:  # an unbalanced quote
            return None
    skip_next = False
    for word in arguments:
        if skip_next:
            skip_next = False
        elif word in ("-u", "--unset"):
            skip_next = True
        elif word.startswith("-") or _ENV_ASSIGNMENT.match(word):
            continue
        else:
            return word
    return None


def command_interpreter(argv: Sequence[str], environ: Mapping[str, str]) -> Candidate | None:
    """For `vllm-bug run -- CMD`: the interpreter CMD runs in, when it is Python."""
    words = list(argv)
    if words and os.path.basename(words[0]) == "env":
        program = _program_after_env(words[1:])
        words = [program] if program else []
    if not words:
        return None
    program = words[0]
    found = os.path.abspath(program) if os.path.sep in program else _which(program, environ)
    if not found or not _runnable(found):
        return None
    if looks_like_python(found):
        return Candidate(found, "command", "the command runs it")
    interpreter = shebang_interpreter(found, environ)
    if interpreter:
        return Candidate(interpreter, "command", f"named by the #! line of the command {program}")
    return None


def candidates(
    option: str | None, environ: Mapping[str, str], argv: Sequence[str] | None = None, own: str | None = None
) -> list[Candidate]:
    """Every interpreter worth inspecting, most specific first, each path once."""
    found: list[Candidate] = []
    if option:
        found.append(Candidate(resolve_option(option, environ), "option", "given with --python"))
    if argv:
        command = command_interpreter(argv, environ)
        if command:
            found.append(command)
    for variable, kind in (("VIRTUAL_ENV", "virtual_env"), ("CONDA_PREFIX", "conda_prefix")):
        prefix = environ.get(variable)
        interpreter = prefix_interpreter(prefix) if prefix else None
        if interpreter:
            found.append(Candidate(interpreter, kind, f"{variable} is {prefix}"))
    vllm = _which("vllm", environ)
    interpreter = shebang_interpreter(vllm, environ) if vllm else None
    if vllm and interpreter:
        found.append(Candidate(interpreter, "vllm_on_path", f"named by the #! line of {vllm}"))
    python3 = _which("python3", environ)
    if python3:
        found.append(Candidate(python3, "python3_on_path", "python3 on PATH"))
    own = own or sys.executable
    if own:
        found.append(
            Candidate(os.path.abspath(own), "self", "vllm-bug's own: no VIRTUAL_ENV, CONDA_PREFIX or vllm on PATH")
        )
    unique: dict[str, Candidate] = {}
    for candidate in found:
        unique.setdefault(candidate.executable, candidate)
    return list(unique.values())


# Candidates that only fill the list of others: a collect never inspects them unless nothing else is found.
_FALLBACKS = ("python3_on_path",)


def choose(
    option: str | None, environ: Mapping[str, str], argv: Sequence[str] | None = None, own: str | None = None
) -> Choice:
    """The interpreter to inspect; a usage error (exit 2) when --python names nothing usable."""
    found = candidates(option, environ, argv, own)
    primary = [c for c in found if c.found_by not in _FALLBACKS]
    chosen = primary[0] if primary else found[0]
    return Choice(chosen, [c for c in found if c is not chosen])


# -- surveying the others ------------------------------------------------------------------------


def survey(others: Sequence[Candidate], timeout_s: float = SURVEY_TIMEOUT_S) -> list[dict[str, Any]]:
    """torch and vLLM versions (package metadata only) in each interpreter, all at once."""
    results: list[dict[str, Any]] = [{} for _ in others]

    def look(position: int, candidate: Candidate) -> None:
        results[position] = survey_one(candidate, timeout_s)

    threads = [threading.Thread(target=look, args=(i, c), daemon=True) for i, c in enumerate(others)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s + 1.0)
    return [r for r in results if r]


def survey_one(candidate: Candidate, timeout_s: float = SURVEY_TIMEOUT_S) -> dict[str, Any]:
    from vllm_bug.bundler.runner import run_command

    entry: dict[str, Any] = {"executable": candidate.executable, "found_by": candidate.found_by}
    result = run_command(
        "interpreter survey", [candidate.executable, "-c", SURVEY_SOURCE], timeout_s=timeout_s, output_cap=65536
    )
    lines = result.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if result.ok and lines else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        entry["error"] = (result.record.error or f"exit code {result.record.exit_code}, no answer")[:500]
        return entry
    for key in ("prefix", "torch", "vllm"):
        value = answer.get(key)
        entry[key] = str(value)[:4096] if value is not None else None
    return entry


# -- what to tell the user ----------------------------------------------------------------------


def warnings_for(
    chosen: Candidate, chosen_prefix: str | None, has: Mapping[str, bool | None], surveyed: Sequence[Mapping[str, Any]]
) -> list[str]:
    """What a collect says when the inspected interpreter lacks torch or vLLM.

    `has` says whether torch and vllm are installed in the chosen interpreter (None: unknown);
    `surveyed` is survey()'s answer for the others.
    """
    missing = [name for name in ("vllm", "torch") if has.get(name) is False]
    if not missing:
        return []
    label = {"vllm": "vLLM", "torch": "torch"}
    elsewhere = [s for s in surveyed if s.get("prefix") != chosen_prefix and any(s.get(n) for n in missing)]
    what = " and ".join(label[n] for n in missing)
    verb = "are" if len(missing) > 1 else "is"
    if not elsewhere:
        return [
            (
                f"{what} {verb} not installed in {chosen.executable} ({chosen.reason}); if vLLM runs in another "
                "environment, collect again with --python pointing at its interpreter"
            )
        ]
    best = max(elsewhere, key=lambda s: sum(1 for n in missing if s.get(n)))
    versions = ", ".join(f"{label[n]} {best[n]}" for n in ("vllm", "torch") if best.get(n))
    return [
        (
            f"{what} {verb} not installed in {chosen.executable} ({chosen.reason}), but {best['executable']} has "
            f"{versions}: if that is the environment vLLM runs in, collect again with --python {best['executable']}"
        )
    ]


def relevant_survey(chosen_prefix: str | None, surveyed: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The surveyed interpreters worth keeping in a bundle: other environments with torch or vLLM, each once."""
    seen: set[str] = {chosen_prefix} if chosen_prefix else set()
    kept = []
    for entry in surveyed:
        prefix = entry.get("prefix")
        if prefix in seen or not (entry.get("torch") or entry.get("vllm")):
            continue
        if prefix:
            seen.add(prefix)
        kept.append(dict(entry))
    return kept


def bundle_facts(choice: Choice, metadata: Mapping[str, Any], surveyed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The fields a bundle's host.python gets: why this interpreter, the other environments, the warnings.

    `metadata` is the metadata probe's record for the chosen interpreter ({} when it failed).
    """
    python = metadata.get("python") if isinstance(metadata.get("python"), dict) else {}
    prefix = python.get("prefix") if python else None
    has = {name: (metadata.get(name) or {}).get("installed") for name in ("torch", "vllm")}
    others = relevant_survey(prefix, surveyed)
    facts: dict[str, Any] = {"chosen_by": choice.chosen.found_by, "chosen_because": choice.chosen.reason[:4096]}
    if others:
        facts["other_interpreters"] = others[:16]
    warnings = warnings_for(choice.chosen, prefix, has, others)
    if warnings:
        facts["warnings"] = [w[:8192] for w in warnings]
    return facts
