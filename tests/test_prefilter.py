"""The regex prefilter may only skip patterns that truly cannot match."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from vllm_bug.analyzer import prefilter
from vllm_bug.analyzer.prefilter import fold, may_match, required_words
from vllm_bug.analyzer.rules import helpers
from vllm_bug.analyzer.search import searchable_text
from vllm_bug.analyzer.signals import table as signal_table

FIXTURES = Path(__file__).parent / "fixtures"


def _real_texts() -> list[str]:
    texts = [p.read_text(encoding="utf-8", errors="replace")
             for sub in ("device/h200/cuda-errors", "device/h200", "reports/excerpts")
             for p in sorted((FIXTURES / sub).glob("*.*")) if p.suffix in (".txt", ".log")]
    for line in (FIXTURES / "reports" / "real-issues-dev.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        texts.append("\n".join(case.get(k) or "" for k in ("title", "error_text", "env_text")))
    return texts


def test_no_pattern_the_rules_ask_is_wrongly_skipped(monkeypatch):
    """Every (pattern, input) pair the rules search on real inputs: a real match is never prefiltered away."""
    from vllm_bug.analyzer.analyze import analyze_text

    asked: set[str] = set()

    def record(pattern: str, folded: str) -> bool:
        asked.add(pattern)
        return True

    monkeypatch.setattr(helpers, "may_match", record)
    texts = _real_texts()
    for text in texts:
        analyze_text(text)
    assert len(asked) + len(signal_table()) > 100  # regexes move from the rules into signal rows as modules migrate
    checked = skipped = 0
    for text in texts:
        searchable = searchable_text(text.splitlines())
        folded = fold(searchable)
        for pattern in asked:
            if not prefilter.may_match(pattern, folded):
                skipped += 1
                assert re.search(pattern, searchable, re.IGNORECASE | re.MULTILINE) is None, pattern
            checked += 1
    assert skipped > checked // 2  # the prefilter does spare most searches


def test_no_signal_row_is_wrongly_skipped_by_its_words():
    """A signal row is compiled only when one of its words occurs: on real inputs, none of its matches is lost."""
    for text in _real_texts():
        searchable = searchable_text(text.splitlines())
        folded = fold(searchable)
        for row in signal_table().values():
            if row.scope == "text" and not any(word in folded for word in row.words):
                assert re.compile(row.pattern, row.flags).search(searchable) is None, row.id


def test_words_come_from_every_alternative():
    assert required_words(r"CUDA out of(?: memory|\s*$)|OutOfMemoryError") == ("cuda out of", "outofmemoryerror")
    assert required_words(r"GLIBCXX_[\d.]+ not found") == (" not found",)
    assert required_words(r"sm_\d+a?|ab") is None  # 'ab' is too short to decide on
    assert required_words(r"(?i)abc") is None  # inline flags: not read
    assert required_words(r"x\d{2,3}yyy") == ("yyy",)


def test_case_pairs_re_adds_are_folded():
    for odd, plain in (("\u212a", "kernel"), ("\u017f", "assert"), ("\u0130", "illegal")):
        text = plain.replace(plain[0] if odd != "\u017f" else "s", odd, 1)
        assert re.search(plain, text, re.IGNORECASE)
        assert may_match(plain, fold(text))


_pieces = st.sampled_from(["ab", "abc", "cuda", "x", "\\.", "\\d+", "[a-c]", "(?:ab|cd)", "e?", "f*", "g+",
                           "h{2}", "i{1,3}", ".", "\\s", "(xy)?", "zz", "\\(", "-", " ", "^", "$", "|"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_pieces, min_size=1, max_size=8).map("".join), st.text(alphabet="abcdefghxyzCUDA .-(0123\n", max_size=60))
def test_random_patterns_never_skip_a_match(pattern, text):
    try:
        rx = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
    except re.error:
        return
    if rx.search(text):
        assert may_match(pattern, fold(text))
