"""A Python package that is missing, or installed at a version another package does not accept, and the
error it causes (category other).

Cross-layer: the bundle's requirement check (what `pip check` reports for the interpreter that failed)
joined with the error: a ModuleNotFoundError for a module that a missing distribution provides, or a call
or import that does not fit (unexpected keyword, missing name) raised in the code of a distribution whose
requirement is in conflict. The finding gives the install command, with the requirement's own constraint.
"""

from __future__ import annotations

import re
import shlex

from vllm_bug.analyzer.facts import Facts, normalise_package_name
from vllm_bug.analyzer.findings import Diagnosis
from vllm_bug.analyzer.knowledge import is_dev_build
from vllm_bug.analyzer.rules import rule
from vllm_bug.analyzer.rules.helpers import engine_arg, evidence, level, vllm_version
from vllm_bug.formats.traceback import Frame, Traceback

API_MISMATCH_SIGNALS = ("UNEXPECTED_KEYWORD_ARGUMENT", "CANNOT_IMPORT_NAME", "MODULE_HAS_NO_ATTRIBUTE")
# torch at a version vLLM does not pin is a build mismatch: versions.TORCH_NOT_WHAT_VLLM_REQUIRES says so
LEFT_TO_OTHER_RULES = ("torch",)
OTHERS_NAMED = 5
# a name followed by an attribute access: the module (or object) a source line reaches into
DOTTED_NAME = re.compile(r"\b([A-Za-z_]\w*)\.[A-Za-z_]")


def provides(facts: Facts, distribution: str, module: str) -> bool:
    """Whether `import module` (a top-level name) loads code of `distribution`.

    The bundle's record of the distribution's import names decides when it has one; otherwise the names are
    compared the way distributions are usually named after their module: flashinfer -> flashinfer-python,
    tvm_ffi -> apache-tvm-ffi, yaml -> pyyaml."""
    distribution = normalise_package_name(distribution)
    known = facts.requirement_modules.get(distribution)
    if known:
        return module in known
    name = normalise_package_name(module)
    return (
        distribution == name
        or distribution.startswith(name + "-")
        or distribution.endswith("-" + name)
        or distribution in ("py" + name, "python-" + name)
        or distribution.replace("-", "") == name.replace("-", "")
    )


def install_command(facts: Facts, name: str, specifiers: list[str], reinstall: bool = False) -> str:
    """pip's command line that installs `name` within every specifier, into the interpreter that failed; with
    `reinstall`, one that puts the distribution's files back without touching its dependencies."""
    spec = ",".join(dict.fromkeys(part for s in specifiers for part in s.split(",") if part))
    target = shlex.quote(f"{name}{spec}")
    exe = shlex.quote(facts.python_executable) if facts.python_executable else None
    if facts.python_env_kind == "uv":
        options = "--reinstall --no-deps " if reinstall else ""
        return f"uv pip install --python {exe} {options}{target}" if exe else f"uv pip install {options}{target}"
    options = "--force-reinstall --no-deps " if reinstall else ""
    return f"{exe} -m pip install {options}{target}" if exe else f"pip install {options}{target}"


def _problem_words(problem: dict) -> str:
    """'vllm 0.22.0 requires flashinfer-python==0.5.3', and for an extra's requirement 'pydantic-extra-types 2.11.1
    requires pycountry>=23 for its extra 'pycountry', which mistral-common asks for'."""
    who = " ".join(part for part in (problem["package"], problem.get("version")) if part)
    words = f"{who} requires {problem['name']}{problem.get('specifier') or ''}"
    if problem.get("extra"):
        words += f" for its extra '{problem['extra']}'"
        if problem.get("wanted_by"):
            words += f", which {problem['wanted_by']} asks for"
    return words


def _check_words(problem: dict) -> str:
    """Which check found the problem: pip check, or the extras it does not follow."""
    return "requirement check (extras followed)" if problem.get("extra") else "pip check"


def _fixes(facts: Facts, chosen: list[dict]) -> list[str]:
    name = chosen[0]["name"]
    fixes = [install_command(facts, name, [p.get("specifier") or "" for p in chosen])]
    others = sorted({p["name"] for p in facts.requirement_problems if p["name"] != name})
    if others:
        shown = ", ".join(others[:OTHERS_NAMED]) + (
            f" and {len(others) - OTHERS_NAMED} more" if len(others) > OTHERS_NAMED else ""
        )
        fixes.append(
            f"the same check finds {len(others)} other unmet requirement{'s' if len(others) > 1 else ''} "
            f"({shown}): `pip check` lists them; install those too, or the next import fails the same way"
        )
    return fixes


def _named_modules(facts: Facts, *signal_ids: str) -> list[str]:
    """Top-level modules the error's messages name: the root cause's first, then the input's lines'."""
    assert facts.signals is not None
    groups = [facts.signals.root_groups.get(signal_id) or {} for signal_id in signal_ids]
    groups += [hit.groups for signal_id in signal_ids for hit in facts.signals.all(signal_id)]
    return list(dict.fromkeys(str(g["module"]).split(".")[0] for g in groups if g.get("module")))


def _failing_tracebacks(facts: Facts) -> list[Traceback]:
    return [facts.root_cause] if facts.root_cause is not None else facts.tracebacks[-1:]


def _installed_frames(facts: Facts) -> list[Frame]:
    """The failing traceback's frames in installed packages' code, outermost first."""
    return [
        frame
        for tb in _failing_tracebacks(facts)
        for frame in tb.frames
        if "-packages/" in frame.path.replace("\\", "/")
    ]


def _raising_module(facts: Facts) -> list[str]:
    """The top-level module of the innermost installed-package frame of the failing traceback: the code that made
    the call or import that did not fit (the outer frames, vLLM's own among them, only led there)."""
    frames = _installed_frames(facts)
    return [frames[-1].module.split(".")[0]] if frames else []


def _modules_in_the_failing_line(facts: Facts) -> list[str]:
    """Top-level names the innermost frame's source line reaches into ('tvm_ffi' of 'tvm_ffi.libinfo.load(...)')."""
    frames = [frame for tb in _failing_tracebacks(facts) for frame in tb.frames]
    code = frames[-1].code if frames else None
    return list(dict.fromkeys(DOTTED_NAME.findall(code or "")))


def _modules_the_error_involves(facts: Facts, signal_ids: tuple[str, ...]) -> list[str]:
    """Modules named by the error's messages, whose code the failing traceback ran, or that its last line used."""
    framed = [frame.module.split(".")[0] for frame in _installed_frames(facts)]
    return list(dict.fromkeys(_named_modules(facts, *signal_ids) + framed[::-1] + _modules_in_the_failing_line(facts)))


MISSING_MODULE_SIGNALS = ("MODULE_NOT_FOUND", "MODULE_REQUIRED_NOT_INSTALLED")


@rule("MISSING_REQUIREMENT", category="other", needs=("requirement_problems",), signals=MISSING_MODULE_SIGNALS)
def missing_requirement(facts: Facts) -> Diagnosis | None:
    """An import failed, and the module is one that a required but missing distribution provides."""
    missing = [p for p in facts.requirement_problems if p["problem"] == "missing"]
    for module in _named_modules(facts, *MISSING_MODULE_SIGNALS):
        chosen = [p for p in missing if provides(facts, p["name"], module)]
        if chosen:
            break
    else:
        return None
    name = chosen[0]["name"]
    wanted = "; ".join(_problem_words(p) for p in chosen[:2])
    return Diagnosis(
        level(facts, *MISSING_MODULE_SIGNALS),
        f"Python cannot import '{module}' because {name} is not installed, though {wanted}.",
        evidence=evidence(facts, *MISSING_MODULE_SIGNALS, limit=1)
        + [f"{_check_words(p)}: {_problem_words(p)}, which is not installed" for p in chosen[:2]],
        fixes=_fixes(facts, chosen),
        details={"module": module, "requirements": chosen[:5]},
    )


@rule("MODULE_REQUIRED_NOT_INSTALLED", category="other", signals=("MODULE_REQUIRED_NOT_INSTALLED",))
def module_required_not_installed(facts: Facts) -> Diagnosis | None:
    """A library says in its own words that a module it needs is not installed (an optional dependency, which its
    extra brings and `pip check` never looks at). MISSING_REQUIREMENT speaks for it when a requirement check names
    the module; a module the bundle lists as installed is left alone."""
    modules = _named_modules(facts, "MODULE_REQUIRED_NOT_INSTALLED")
    if not modules:
        return None
    module = modules[0]
    named = [p for p in facts.requirement_problems if p["problem"] == "missing" and provides(facts, p["name"], module)]
    if named or any(provides(facts, name, module) for name in facts.packages):
        return None
    raiser = _raising_module(facts)
    owner = next((name for name in facts.packages for m in raiser if provides(facts, name, m)), None)
    who = f"{owner} {facts.packages[owner]}" if owner else (raiser[0] if raiser else "A library")
    return Diagnosis(
        level(facts, "MODULE_REQUIRED_NOT_INSTALLED"),
        f"{who} needs '{module}', which is not installed.",
        evidence=evidence(facts, "MODULE_REQUIRED_NOT_INSTALLED", limit=1),
        fixes=[
            install_command(facts, module, [""]),
            "an optional dependency like this one comes with the extra that asks for it "
            + (f"('{owner}[...]' in a requirement): " if owner else "")
            + "an install that skipped it may have skipped others, and `pip check` does not look at extras",
        ],
        details={"module": module, "raised_by": owner or (raiser[0] if raiser else None)},
    )


@rule(
    "REQUIREMENT_CONFLICT",
    category="other",
    needs=("requirement_problems",),
    signals=(*API_MISMATCH_SIGNALS, "MODULE_NOT_FOUND"),
)
def requirement_conflict(facts: Facts) -> Diagnosis | None:
    """A call or import that does not fit, in the code of a distribution whose requirement is in conflict."""
    conflicts = [
        p for p in facts.requirement_problems if p["problem"] == "conflict" and p["name"] not in LEFT_TO_OTHER_RULES
    ]
    if not conflicts:
        return None
    said = tuple(s for s in (*API_MISMATCH_SIGNALS, "MODULE_NOT_FOUND") if evidence(facts, s, limit=1))
    involved = _modules_the_error_involves(facts, said)
    # a conflict explains the error only when the error reaches the conflicting distribution itself: a missing
    # module, or vLLM's own code, says nothing about a numba or apache-tvm-ffi of the wrong version
    explaining = [p for p in conflicts if any(provides(facts, p["name"], module) for module in involved)]
    if not explaining:
        return None
    raising = _raising_module(facts)
    # the requirement of the code that made the call comes first: its constraint is the one the call needed
    chosen = sorted(explaining, key=lambda p: not any(provides(facts, p["package"], m) for m in raising))
    first = chosen[0]
    same = [p for p in conflicts if p["name"] == first["name"]]
    return Diagnosis(
        level(facts, *said),
        f"{_problem_words(first)}, but {first['name']} {first['installed']} is installed: the error comes from "
        "that mismatch.",
        evidence=evidence(facts, *said, limit=1)
        + [f"pip check: {_problem_words(p)}, but {p['name']} {p['installed']} is installed" for p in same[:2]],
        fixes=_fixes(facts, same),
        details={"requirements": same[:5]},
    )


@rule("VLLM_FLASH_ATTN_EXTENSIONS_MISSING", category="other", signals=("VLLM_FLASH_ATTN_EXTENSIONS_MISSING",))
def flash_attn_extensions_missing(facts: Facts) -> Diagnosis | None:
    """vLLM's own FlashAttention package found neither of its compiled extensions importable: files left out of
    the install, or extensions built for another torch. Model inspection imports it whatever the backend."""
    version = vllm_version(facts)
    pinned = f"=={version}" if version and not is_dev_build(version) else ""
    python = shlex.quote(facts.python_executable) if facts.python_executable else "python"
    fixes = [
        "reinstall the vllm wheel, which ships both in vllm/vllm_flash_attn/: "
        + install_command(facts, "vllm", [pinned], reinstall=True),
        f"{python} -c 'import vllm.vllm_flash_attn._vllm_fa2_C' prints the loader's own error, which vLLM keeps "
        "to itself: a missing file, or an undefined symbol when torch was changed after vLLM was installed",
        "a folder named vllm in the working directory (a source checkout) hides the installed package: start "
        "vLLM from another directory",
    ]
    if engine_arg(facts, "attention_backend") is not None:
        fixes.insert(
            1, "--attention-backend does not avoid it: vLLM imports vllm.vllm_flash_attn while it inspects the model"
        )
    return Diagnosis(
        level(facts, "VLLM_FLASH_ATTN_EXTENSIONS_MISSING"),
        "This vLLM install lacks its FlashAttention extensions (_vllm_fa2_C, _vllm_fa3_C), or they do not load: "
        "vllm.vllm_flash_attn needs one of them.",
        evidence=evidence(facts, "VLLM_FLASH_ATTN_EXTENSIONS_MISSING", limit=1),
        fixes=fixes,
    )
