"""Compiled regexes kept between runs.

CPython compiles a regex in Python code (re._parser, then re._compiler) into a program, a list of integers
that its C matcher runs; `re.compile` then builds the pattern object from that program. For our large
patterns (the redaction trie, the signal rows, the log grammars) compiling is a good part of a run.
`compile_cached(pattern, flags)` returns what `re.compile(pattern, flags)` returns (an equal pattern object,
same program), building it from a program kept in the user cache folder (formats.user_cache) when one is
there, and keeps the programs it had to compute for the next run when the process exits.

Programs are keyed by the pattern, the flags and the interpreter (its version and SRE's magic number), so a
kept program is only ever used for the exact pattern it was compiled from, by the interpreter that compiled
it; the C side validates every program it is given. An interpreter whose re internals are not the expected
ones, a missing or unwritable folder, or an unreadable file all mean compiling as re.compile does.
"""

from __future__ import annotations

import array
import atexit
import marshal
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, AnyStr

from vllm_bug.formats.user_cache import cache_folder, read_cached, write_cached

MAX_PROGRAMS = 4096  # more than every pattern of the package; past it only the last run's programs are kept
MAX_FILE_BYTES = 16 << 20
_CODE_TYPE = "I"  # SRE_CODE, a 32-bit unsigned int
_re_compile = re.compile  # the standard one, also while kept_compiles() stands in for it

Key = tuple[Any, int]  # (pattern: str | bytes, flags)
Program = tuple[int, bytes, int, dict[str, int], tuple[Any, ...]]  # the code as native unsigned ints


class _Programs:
    """This process's view of the cache file: read on first use, written at exit when it computed new ones."""

    def __init__(self) -> None:
        self.compiled: dict[Key, Any] = {}
        self.folder: str | None = None
        self.kept: dict[Key, Program] | None = None
        self.computed: dict[Key, Program] = {}
        self.used: set[Key] = set()


_programs = _Programs()


def compile_cached(pattern: AnyStr, flags: int = 0) -> re.Pattern[AnyStr]:
    """re.compile(pattern, flags), from a kept program when there is one."""
    key = (pattern, int(flags))
    found = _programs.compiled.get(key)
    if found is None:
        found = _from_program(key)
        if found is None:
            found = _re_compile(pattern, flags)
        _programs.compiled[key] = found
    return found


@contextmanager
def kept_compiles() -> Iterator[None]:
    """While active, re.compile goes through compile_cached: for the patterns another package compiles when it
    is imported (jinja2's lexer and utilities). Single-threaded use only: re.compile is swapped for everyone."""

    def compile_through_cache(pattern: Any, flags: int = 0) -> Any:
        if isinstance(pattern, (str, bytes)):
            return compile_cached(pattern, flags)
        return _re_compile(pattern, flags)

    re.compile = compile_through_cache
    try:
        yield
    finally:
        re.compile = _re_compile


def _sre_internals() -> tuple[Any, Any, Any] | None:
    """(_sre, the parser module, the compiler module) when this interpreter has the ones this module knows."""
    if sys.implementation.name != "cpython":
        return None
    try:
        import _sre  # type: ignore[import-not-found]

        parser, compiler = getattr(re, "_parser", None), getattr(re, "_compiler", None)
        if parser is None or compiler is None:  # Python 3.10
            import sre_compile as compiler
            import sre_parse as parser
    except ImportError:
        return None
    if not (hasattr(parser, "parse") and hasattr(compiler, "_code") and hasattr(_sre, "compile")):
        return None
    if getattr(_sre, "CODESIZE", None) != array.array(_CODE_TYPE).itemsize:
        return None
    return _sre, parser, compiler


_STORED_FORMAT = 2  # what a kept program holds (2: the code as native 32-bit words); a change makes a new file


def _file_name(sre: Any) -> str:
    interpreter = f"{sys.implementation.cache_tag}-{sys.hexversion:x}-{getattr(sre, 'MAGIC', 0)}"
    return f"sre{_STORED_FORMAT}-{interpreter}.marshal"


def _from_program(key: Key) -> Any:
    """The pattern object built from a kept or newly computed program; None to let re.compile do it (and
    raise its own error for a bad pattern)."""
    internals = _sre_internals()
    if internals is None:
        return None
    sre, parser, compiler = internals
    state = _programs
    program = _kept_programs(state, sre).get(key)
    if program is not None:
        try:
            compiled = _build(sre, key[0], program)
        except (TypeError, ValueError, RuntimeError, OverflowError):  # damaged: compute it again
            compiled = None
        if compiled is not None:
            state.used.add(key)
            return compiled
    try:
        program = _program(parser, compiler, key)
        compiled = _build(sre, key[0], program)
    except Exception:
        return None
    if not state.computed:
        atexit.register(_keep_programs, state)
    state.computed[key] = program
    state.used.add(key)
    return compiled


def _program(parser: Any, compiler: Any, key: Key) -> Program:
    """What re._compiler.compile computes before handing it to _sre.compile."""
    pattern, flags = key
    parsed = parser.parse(pattern, flags)
    code = compiler._code(parsed, flags)
    state = parsed.state
    index_group: list[Any] = [None] * state.groups
    for name, index in state.groupdict.items():
        index_group[index] = name
    code_bytes = array.array(_CODE_TYPE, code).tobytes()
    return int(flags | state.flags), code_bytes, state.groups - 1, dict(state.groupdict), tuple(index_group)


def _build(sre: Any, pattern: Any, program: Program) -> Any:
    flags, code, groups, group_index, index_group = program
    return sre.compile(pattern, flags, array.array(_CODE_TYPE, code).tolist(), groups, group_index, index_group)


def _kept_programs(state: _Programs, sre: Any) -> dict[Key, Program]:
    if state.kept is None:
        state.kept = {}
        state.folder = cache_folder("regex")
        data = read_cached(state.folder, _file_name(sre)) if state.folder else None
        if data:
            try:
                loaded = marshal.loads(data)
            except (EOFError, ValueError, TypeError):
                loaded = None
            if isinstance(loaded, dict):
                state.kept = {k: v for k, v in loaded.items() if _well_formed(k, v)}
    return state.kept


def _well_formed(key: Any, program: Any) -> bool:
    return (
        isinstance(key, tuple)
        and len(key) == 2
        and isinstance(key[0], (str, bytes))
        and isinstance(key[1], int)
        and isinstance(program, tuple)
        and len(program) == 5
        and isinstance(program[1], bytes)
    )


def _keep_programs(state: _Programs) -> None:
    """At exit: write the kept programs with this run's new ones, or only the ones this run used when that
    would grow the file past its bounds. The folder is the one read from, whatever the environment says now."""
    internals = _sre_internals()
    if internals is None or state.folder is None or not state.computed:
        return
    programs = dict(state.kept or {})
    programs.update(state.computed)
    if len(programs) > MAX_PROGRAMS:
        programs = {key: programs[key] for key in state.used if key in programs}
    data = marshal.dumps(programs)
    if len(data) > MAX_FILE_BYTES:
        data = marshal.dumps({key: programs[key] for key in state.used if key in programs})
    if len(data) <= MAX_FILE_BYTES:
        write_cached(state.folder, _file_name(internals[0]), data)
