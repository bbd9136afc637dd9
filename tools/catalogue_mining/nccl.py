"""NCCL, tag by tag: the ncclResult_t codes with the text ncclGetErrorString gives each, and the forms its
log lines take ("NCCL WARN ...", "Cuda failure '...'" carrying a CUDA error, "Call to ... failed").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .messages import Hole, Part, Template, printf_template
from .sources import GitRef

REPOSITORY = "NVIDIA/nccl"
HEADER = "src/nccl.h.in"
MACRO_FOLDERS = ("src/include/",)
DEBUG = "src/debug.cc"

_RESULT_ENUM = re.compile(r"typedef\s+enum\s*\{(.*?)\}\s*ncclResult_t\s*;", re.DOTALL)
_RESULT_ENTRY = re.compile(r"(nccl[A-Z]\w*)\s*=\s*(\d+)")
_ERROR_STRING = re.compile(r'case\s+(nccl\w+)\s*:\s*return\s+((?:"(?:[^"\\\n]|\\.)*"\s*)+);')


@dataclass(frozen=True)
class Result:
    name: str
    number: int
    text: str | None  # what ncclGetErrorString returns for it
    excerpt: str  # the `case ...: return "...";` line (or the enum line when there is no text)
    path: str


def release_tags(tags: Iterable[str], oldest: tuple[int, int] = (2, 10)) -> list[str]:
    """NCCL's release tags (v2.M.P-N) from `oldest` on."""
    out = []
    for tag in tags:
        match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)-(\d+)", tag)
        if match and (int(match.group(1)), int(match.group(2))) >= oldest:
            out.append(tag)
    return out


def results(source: GitRef) -> list[Result]:
    header = source.read(HEADER) or ""
    block = _RESULT_ENUM.search(header)
    if not block:
        return []
    strings: dict[str, tuple[str, str, str]] = {}
    for path in ("src/init.cc", "src/misc/utils.cc", "src/misc/argcheck.cc"):
        for match in _ERROR_STRING.finditer(source.read(path) or ""):
            text = "".join(re.findall(r'"((?:[^"\\\n]|\\.)*)"', match.group(2)))
            strings.setdefault(match.group(1), (text, " ".join(match.group().split()), path))
    out = []
    for name, number in _RESULT_ENTRY.findall(block.group(1)):
        if name in ("ncclSuccess", "ncclNumResults"):
            continue
        text, excerpt, path = strings.get(name, (None, f"{name} = {number}", HEADER))
        out.append(Result(name, int(number), text, excerpt, path))
    return out


@dataclass(frozen=True)
class LogForm:
    template: Template
    excerpt: str  # the macro call or format line it was read from, trimmed
    path: str


_WARN_CALL = re.compile(
    r"\b(?:WARN|INFO)\s*\((?:\s*NCCL_\w+\s*,)?"  # the macro, and INFO's subsystem mask
    r"\s*((?:\"(?:[^\"\\\n]|\\.)*\"|\s|[A-Za-z_]\w*)+)"  # the format: literals and macro parameters
    r"((?:,[^;\n]*)?)\)"  # the arguments
)


def log_forms(source: GitRef) -> list[LogForm]:
    """The 'Cuda failure ...' and 'Call to ... failed' warnings of the checking macros, with the hole
    that holds the CUDA error's text named cuda_error."""
    forms = []
    for path in source.files(MACRO_FOLDERS[0]):
        if not path.endswith(".h"):
            continue
        for match in _WARN_CALL.finditer(source.read(path) or ""):
            template = macro_format(match.group(1), match.group(2))
            head = template.text()
            if (
                head.startswith("Cuda failure")
                or re.match(r"\{\}:\{\} Cuda failure", head)
                or head.startswith("Call to ")
            ):
                forms.append(LogForm(template, " ".join(match.group().split()), path))
    return forms


def macro_format(fmt: str, args: str) -> Template:
    """A WARN/INFO format: C string literals and macro parameters between them (`"Call to " name " failed"`),
    each printf conversion a hole named after the argument it prints."""
    parts: list[Part] = []
    for literal, identifier in re.findall(r'"((?:[^"\\\n]|\\.)*)"|([A-Za-z_]\w*)', fmt):
        parts.extend(printf_template(literal).parts if not identifier else [Hole()])
    names = [_arg_name(a) for a in _split_args(args)]
    named: list[Part] = []
    holes = 0
    for part in Template.of(parts).parts:
        if isinstance(part, Hole) and part.name is None:
            named.append(Hole(names[holes] if holes < len(names) else None))
            holes += 1
        else:
            named.append(part)
    return Template(tuple(named))


def _split_args(args: str) -> list[str]:
    out, depth, current = [], 0, ""
    for char in args.lstrip(","):
        if char == "," and depth == 0:
            out.append(current.strip())
            current = ""
            continue
        depth += char in "(["
        depth -= char in ")]"
        current += char
    if current.strip():
        out.append(current.strip())
    return out


def _arg_name(arg: str) -> str | None:
    if "ErrorString" in arg or arg in ("errStr", "str"):
        return "cuda_error"
    if arg == "err":
        return "code"
    if "strerror" in arg:
        return "os_error"
    return None


def warn_prefix(source: GitRef) -> LogForm | None:
    """The prefix NCCL's logger puts before a warning's text ('... NCCL WARN '), from debug.cc."""
    text = source.read(DEBUG) or ""
    match = re.search(r'"[^"\n]*NCCL WARN [^"\n]*"', text)
    if not match:
        return None
    template = Template.of(["NCCL WARN ", Hole("warning")])
    return LogForm(template, match.group(), DEBUG)
