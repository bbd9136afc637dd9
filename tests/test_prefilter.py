"""The regex prefilter may only skip patterns that truly cannot match."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from vllm_bug.analyzer.prefilter import fold, may_match, required_words
from vllm_bug.analyzer.search import searchable_text

FIXTURES = Path(__file__).parent / "fixtures"


def _real_texts() -> list[str]:
    texts = [
        p.read_text(encoding="utf-8", errors="replace")
        for sub in ("device/h200/cuda-errors", "device/h200", "reports/excerpts")
        for p in sorted((FIXTURES / sub).glob("*.*"))
        if p.suffix in (".txt", ".log")
    ]
    for line in (FIXTURES / "reports" / "real-issues-dev.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        texts.append("\n".join(case.get(k) or "" for k in ("title", "error_text", "env_text")))
    return texts


def test_no_signal_row_is_wrongly_skipped():
    """A signal row's regex is compiled only when one of its words occurs (for a catalogue row: the tokens
    of one of its forms): on real inputs, a row skipped so never has a match."""
    from vllm_bug.analyzer.signals import _may_match, table, text_tokens

    rows = table().values()
    checked = skipped = 0
    for text in _real_texts():
        searchable = searchable_text(text.splitlines())
        folded = fold(searchable)
        tokens = text_tokens(folded)
        for row in rows:
            checked += 1
            if not _may_match(row, folded, tokens):
                skipped += 1
                assert re.search(row.pattern, searchable, row.flags) is None, row.id
    assert skipped > checked // 2


def test_words_come_from_every_alternative():
    assert required_words(r"CUDA out of(?: memory|\s*$)|OutOfMemoryError") == ("cuda out of", "outofmemoryerror")
    assert required_words(r"GLIBCXX_[\d.]+ not found") == (" not found",)
    assert required_words(r"sm_\d+a?|ab") is None  # 'ab' is too short to decide on
    assert required_words(r"(?i)abc|Error 804") == ("abc", "error 804")  # a leading (?i) is read past
    assert required_words(r"abc(?i:def)") is None  # other inline flags: not read
    assert required_words(r"(?s)abc") is None
    assert required_words(r"x\d{2,3}yyy") == ("yyy",)


def test_case_pairs_re_adds_are_folded():
    for odd, plain in (("\u212a", "kernel"), ("\u017f", "assert"), ("\u0130", "illegal")):
        text = plain.replace(plain[0] if odd != "\u017f" else "s", odd, 1)
        assert re.search(plain, text, re.IGNORECASE)
        assert may_match(plain, fold(text))


_pieces = st.sampled_from(
    [
        "ab",
        "abc",
        "cuda",
        "x",
        "\\.",
        "\\d+",
        "[a-c]",
        "(?:ab|cd)",
        "e?",
        "f*",
        "g+",
        "h{2}",
        "i{1,3}",
        ".",
        "\\s",
        "(xy)?",
        "zz",
        "\\(",
        "-",
        " ",
        "^",
        "$",
        "|",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_pieces, min_size=1, max_size=8).map("".join), st.text(alphabet="abcdefghxyzCUDA .-(0123\n", max_size=60)
)
def test_random_patterns_never_skip_a_match(pattern, text):
    try:
        rx = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
    except re.error:
        return
    if rx.search(text):
        assert may_match(pattern, fold(text))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_pieces, min_size=1, max_size=8).map("".join), st.text(alphabet="abcdefghxyzCUDA .-(0123\n", max_size=60)
)
def test_random_patterns_behind_a_leading_inline_ignorecase_never_skip_a_match(pattern, text):
    try:
        rx = re.compile("(?i)" + pattern, re.MULTILINE)
    except re.error:
        return
    if rx.search(text):
        assert may_match("(?i)" + pattern, fold(text))


def test_the_token_index_picks_the_rows_the_token_test_would():
    """detect_signals finds the catalogue rows worth trying from the text's tokens (an index of their forms);
    on real inputs that gives exactly the rows whose own token test passes."""
    from vllm_bug.analyzer.signals import _forms_by_token, _may_match, _rows_with_a_form_in, table, text_tokens

    rows = table()
    forms = _forms_by_token(rows)
    token_rows = [row for row in rows.values() if row.tokens]
    assert len(token_rows) > 1000
    picked_any = False
    for text in _real_texts() + [""]:
        tokens = text_tokens(fold(searchable_text(text.splitlines())))
        expected = {row.id for row in token_rows if _may_match(row, "", tokens)}
        assert _rows_with_a_form_in(forms, tokens) == expected
        picked_any = picked_any or bool(expected)
    assert picked_any
