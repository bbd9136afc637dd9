"""Compiled regexes kept between runs: the same pattern objects as re.compile, whatever the cache file holds."""

import array
import gc
import marshal
import os
import re

import pytest

from vllm_bug.formats import regex_cache
from vllm_bug.formats.lazyre import LazyPattern
from vllm_bug.formats.regex_cache import compile_cached

PATTERNS = [
    (r"GPU (\d+) has a total capacity of (?P<total>[\d.]+) GiB", 0),
    (r"(?<![\w-])--(?P<flag>[a-z][a-z0-9-]*)(?:=(\S+))?", re.IGNORECASE),
    (r"^\s*File \"(?P<path>[^\"]+)\", line (?P<line>\d+)", re.MULTILINE),
    (rb"(?m)^(?:(?!token|secret).){0,4096}$", 0),
    ("[\u00ad\u200b-\u200f\uff01-\uff5e]+|caf\u00e9", re.IGNORECASE | re.UNICODE),
    (r"(?i:cuda) (?:error|failure)(?!s)(?=:)", re.DOTALL | re.VERBOSE),
]


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """A cache folder of the test's own, and the module's state as a new process has it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(regex_cache.atexit, "register", lambda *args: None)
    new_process(monkeypatch)
    return tmp_path


def new_process(monkeypatch):
    """Forget what this process compiled and read, as the next run would."""
    monkeypatch.setattr(regex_cache, "_programs", regex_cache._Programs())


def keep():
    regex_cache._keep_programs(regex_cache._programs)


def cache_file(folder) -> str:
    (path,) = (folder / "vllm-bug" / "regex").iterdir()
    return str(path)


def test_equal_to_re_compile_before_and_after_a_round_trip(fresh_cache, monkeypatch):
    first = [compile_cached(p, f) for p, f in PATTERNS]
    assert first == [re.compile(p, f) for p, f in PATTERNS]  # same pattern, flags and program
    assert set(regex_cache._programs.computed) == set(PATTERNS)
    keep()
    new_process(monkeypatch)
    second = [compile_cached(p, f) for p, f in PATTERNS]
    assert second == [re.compile(p, f) for p, f in PATTERNS]
    assert not regex_cache._programs.computed  # every program came from the file
    assert [rx.groupindex for rx in second] == [re.compile(p, f).groupindex for p, f in PATTERNS]
    assert second[0].search("GPU 1 has a total capacity of 79.19 GiB").group("total") == "79.19"


def test_the_package_patterns_compile_to_what_re_compiles(fresh_cache):
    """Every module-level lazy pattern of the package, the signal rows and the redaction tries."""
    import vllm_bug.analyzer.signals as signals
    import vllm_bug.schema.redact as redact

    for module in ("analyzer.logclean", "analyzer.tracebacks", "formats.logline", "formats.traceback"):
        __import__(f"vllm_bug.{module}")
    lazy = [obj for obj in gc.get_objects() if isinstance(obj, LazyPattern)]
    assert len(lazy) > 50
    sources = [obj._source for obj in lazy]
    sources += [(row.pattern, row.flags) for row in signals.table().values() if row.words][:400]
    sources += [(redact._combined(None)[0].pattern, 0), (redact._trigger("/root").pattern, 0)]
    for pattern, flags in sources:
        assert compile_cached(pattern, flags) == re.compile(pattern, flags), pattern


def test_a_damaged_file_means_compiling_again(fresh_cache, monkeypatch):
    compile_cached(*PATTERNS[0])
    keep()
    with open(cache_file(fresh_cache), "wb") as handle:
        handle.write(b"\x00not marshal")
    new_process(monkeypatch)
    assert compile_cached(*PATTERNS[0]) == re.compile(*PATTERNS[0])


def test_a_wrong_program_is_refused_and_computed_again(fresh_cache, monkeypatch):
    pattern, flags = PATTERNS[0]
    compile_cached(pattern, flags)
    keep()
    with open(cache_file(fresh_cache), "rb") as handle:
        programs = marshal.loads(handle.read())
    programs[(pattern, flags)] = (flags, array.array("I", [999999, 1, 2]).tobytes(), 0, {}, ())  # not valid SRE code
    programs[("other", 0)] = "not a program"
    with open(cache_file(fresh_cache), "wb") as handle:
        handle.write(marshal.dumps(programs))
    new_process(monkeypatch)
    assert compile_cached(pattern, flags) == re.compile(pattern, flags)
    assert (pattern, flags) in regex_cache._programs.computed  # refused by SRE's own check, then recomputed
    assert compile_cached("other") == re.compile("other")


def test_a_bad_pattern_raises_what_re_compile_raises(fresh_cache):
    with pytest.raises(re.error, match="missing \\)"):
        compile_cached("(unclosed")
    assert not regex_cache._programs.computed


def test_no_folder_no_cache(tmp_path, fresh_cache, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert compile_cached(*PATTERNS[1]) == re.compile(*PATTERNS[1])
    keep()  # nowhere to write: nothing happens
    assert not blocked.is_dir()


def test_a_full_file_keeps_only_the_last_runs_programs(fresh_cache, monkeypatch):
    for pattern, flags in PATTERNS:
        compile_cached(pattern, flags)
    keep()
    new_process(monkeypatch)
    monkeypatch.setattr(regex_cache, "MAX_PROGRAMS", len(PATTERNS))
    compile_cached("one more pattern")
    compile_cached(*PATTERNS[0])
    keep()
    with open(cache_file(fresh_cache), "rb") as handle:
        assert set(marshal.loads(handle.read())) == {("one more pattern", 0), PATTERNS[0]}


def test_the_file_is_private(fresh_cache):
    compile_cached(*PATTERNS[0])
    keep()
    assert os.stat(os.path.dirname(cache_file(fresh_cache))).st_mode & 0o077 == 0


def test_kept_compiles_routes_re_compile_through_the_cache_then_restores_it(fresh_cache, monkeypatch):
    standard = re.compile
    with regex_cache.kept_compiles():
        routed = [re.compile(pattern, flags) for pattern, flags in PATTERNS]
        assert re.compile(routed[0]) is routed[0]  # a compiled pattern is handed back, as re.compile does
    assert re.compile is standard
    assert routed == [standard(pattern, flags) for pattern, flags in PATTERNS]
    keep()
    new_process(monkeypatch)
    monkeypatch.setattr(regex_cache, "_program", lambda *args: pytest.fail("computed again"))
    with regex_cache.kept_compiles():
        assert re.compile(*PATTERNS[1]) == standard(*PATTERNS[1])


def test_kept_compiles_restores_re_compile_after_an_error(fresh_cache):
    standard = re.compile
    with pytest.raises(re.error), regex_cache.kept_compiles():
        re.compile("(unclosed")
    assert re.compile is standard


def test_jinja2_imported_under_kept_compiles_renders_as_usual(fresh_cache):
    import subprocess
    import sys

    script = (
        "from vllm_bug.formats.regex_cache import kept_compiles\n"
        "with kept_compiles():\n"
        "    import jinja2\n"
        "print(jinja2.Environment().from_string('{{ a | upper }} {% for x in b %}{{ x }},{% endfor %}')"
        ".render(a='hi', b=[1, 2]))\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(fresh_cache)}
    for _ in range(2):  # the second run builds jinja2's patterns from the kept programs
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
        assert done.stdout == "HI 1,2,\n"
