"""Redaction stays linear with bounded memory: structural bounds on every pattern, and the inputs that
used to rescan or blow up, at sizes small enough to run quickly (benchmarks/redact_worst.py times them)."""

from __future__ import annotations

import re
import tracemalloc
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

import pytest

from vllm_bug.schema import redact
from vllm_bug.schema.redact import MAX_KEY_BLOCK, Redactor

HOME = "/home/alice"
KIB = 1 << 10


def unbounded_repeats(pattern: re.Pattern) -> list[str]:
    """Repeats in `pattern` with no upper bound (`*`, `+`, `{n,}`), as text of the sub-pattern."""
    found: list[str] = []

    def walk(items) -> None:
        for op, av in items:
            if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
                if av[1] == sre_constants.MAXREPEAT:
                    found.append(str(av[2])[:80])
                walk(av[2])
            elif op == sre_constants.SUBPATTERN:
                walk(av[-1])
            elif op == sre_constants.BRANCH:
                for branch in av[1]:
                    walk(branch)
            elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
                walk(av[1])

    walk(sre_parse.parse(pattern.pattern, pattern.flags))
    return found


@pytest.mark.parametrize(
    "name",
    [
        "_combined",
        "_trigger",
        "_quiet_line",
        "_shape_only",
        "_KEY_MARKER",
        "_KEY_LINE",
        "_LIST_ITEM",
        "_QUOTED_RE",
        "_NEXT_VALUE",
        "_MORE_VALUES",
        "_BLANKS_AND_VALUE",
        "_DISGUISE",
        "_MARKER_KIND",
        "_TOKEN_ALPHABET",
    ],
)
def test_every_repeat_that_runs_over_text_is_bounded(name):
    obj = getattr(redact, name)
    pattern = obj(HOME) if name in ("_combined", "_trigger", "_quiet_line") else obj() if name == "_shape_only" else obj
    if isinstance(pattern, tuple):
        pattern = pattern[0]
    assert unbounded_repeats(pattern) == []


def test_one_match_spans_at_most_a_few_kib():
    # a value longer than any bound is hidden in bounded pieces, never matched whole
    value = "x" * (64 * KIB)
    out = Redactor(home=None).text(f"HF_TOKEN={value}")
    assert out.startswith("HF_TOKEN=<redacted:secret_env>")
    assert len(out) < len(value)  # the first 4 KiB went; what is left holds no context to hide it


def peak_bytes(func, *args) -> int:
    tracemalloc.start()
    try:
        func(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_unclosed_private_key_blocks_are_each_hidden_without_rescanning():
    # each BEGIN without END used to rescan to the end of the text: 200 KB took 13 s
    text = "-----BEGIN PRIVATE KEY-----\nMIIE!\n" * 3000
    spans = redact._private_key_spans(text, False)
    assert len(spans) == 3000
    assert all(end - start <= len("-----BEGIN PRIVATE KEY-----") for start, end in spans)
    out = Redactor(home=None).text(text)
    assert out == "<redacted:private_key>\nMIIE!\n" * 3000


def test_an_end_far_from_its_begin_does_not_close_it():
    far = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n" + "INFO loading\n" * (MAX_KEY_BLOCK // 13 + 10)
    out = Redactor(home=None).text(far + "MIIEvQIBAD\n-----END PRIVATE KEY-----\n")
    assert out.startswith("<redacted:private_key>\nINFO loading\n")
    assert out.endswith("INFO loading\n<redacted:private_key>\n")
    assert "MIIE" not in out


def test_a_logged_list_that_never_closes_costs_little_memory():
    # RuntimeError: x / 'api_key': [ followed by 'a', repeated: 300 bytes per input byte before
    text = "RuntimeError: x\n'api_key': [" + "'a', " * 40_000
    peak = peak_bytes(Redactor(home=None).text, text)
    assert peak < 40 * len(text)
    out = Redactor(home=None).text(text)
    assert out.count("<redacted:secret_arg>") == redact._MAX_LIST_ITEMS


def test_a_long_plain_line_after_a_triggered_one_costs_little_memory():
    # the run of triggered lines is ended by a regex whose backtracking memory grows with the line it reads
    text = "token=abc\n" + "x" * (1 << 20)
    assert peak_bytes(Redactor(home=None).text, text) < 8 * len(text)


@pytest.mark.parametrize(
    "unit",
    [
        "token=",
        "HF_TOKEN = ",
        "http://a:b\n",
        "'a_token': ",
        "--token a ",
        "-----BEGIN PRIVATE KEY-----\n",
        "password: x\n",
        "Cookie: a\n",
    ],
)
def test_dense_hostile_inputs_use_memory_linear_in_their_size(unit):
    small, large = unit * (20 * KIB // len(unit)), unit * (80 * KIB // len(unit))
    r = Redactor(home=None)
    peak_small, peak_large = peak_bytes(r.text, small), peak_bytes(r.text, large)
    assert peak_large < 5 * peak_small + 64 * KIB  # 4x the input: about 4x the memory, never 16x
    assert peak_large < 60 * len(large)
    once = r.text(large)
    assert r.text(once) == once


def test_repeated_assignments_hide_every_value():
    # each value is the word after "=": hidden; the word after it is the next name
    out = Redactor(home=None).text("HF_TOKEN = " * 1000)
    assert out == "HF_TOKEN = <redacted:secret_env> = " * 500
    out = Redactor(home=None).text("token=" * 1000)
    assert out == ("token=<redacted:secret_arg>=" * 500)[:-1]


def test_a_url_without_credentials_is_left_alone_on_every_line():
    text = "http://a:b\n" * 5000
    assert Redactor(home=None).text(text) == text
