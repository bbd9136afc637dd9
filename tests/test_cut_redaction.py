"""Redact before any cut: a secret whose text is cut in half must not leave its other half behind.

Each test builds text whose cut falls on or next to a secret, runs the real cut, then the redaction
the bundle gets, and looks for any recognisable piece of the secret."""

from __future__ import annotations

import random
import re
import string

from vllm_bug.bundler import logcapture as lc
from vllm_bug.bundler import probes_python, runner
from vllm_bug.schema.redact import Redactor, cut_text

RNG = random.Random(12)


def token() -> str:
    return "hf_" + "".join(RNG.choice(string.ascii_letters) for _ in range(34))


PIECE = 8  # a run of this many characters of a secret is a recognisable piece of it


def assert_no_piece(text: str, *secrets: str) -> None:
    pieces = {secret[i : i + PIECE] for secret in secrets for i in range(3, len(secret) - PIECE + 1)}
    for run in re.findall(rf"[A-Za-z0-9]{{{PIECE},}}", text):
        leaked = [run[i : i + PIECE] for i in range(len(run) - PIECE + 1) if run[i : i + PIECE] in pieces]
        assert not leaked, (run[:60], leaked[:3])


def final(text: str) -> str:
    return Redactor(home=None).text(text)


def capture(data: bytes) -> lc.LogCapture:
    acc = lc.LogAccumulator()
    for i in range(0, len(data), 65536):
        acc.feed(data[i : i + 65536])
    return acc.finish("file", "test.log")


def pem_lines(n: int) -> list[str]:
    return ["".join(RNG.choice(string.ascii_letters + string.digits + "+/") for _ in range(64)) for _ in range(n)]


def test_key_whose_begin_falls_in_the_cut_part_of_a_long_log():
    # 300 key lines with the BEGIN in the part that is cut: 245 of them used to reach the bundle
    body = pem_lines(300)
    filler = b"INFO 06-01 12:00:00 [engine.py:1] step\n"
    tail_room = lc.TAIL_BYTES - 245 * 65 - 200
    log = (
        filler * 3000
        + b"-----BEGIN PRIVATE KEY-----\n"
        + "\n".join(body).encode()
        + b"\n-----END PRIVATE KEY-----\n"
        + filler * (tail_room // len(filler))
    )
    cap = capture(log)
    assert cap.truncated
    out = final(cap.text)
    assert not any(line in out for line in body)


def test_key_without_end_that_the_cut_falls_inside():
    # no END anywhere: the tail starts inside the key block, so its first lines are key material
    body = pem_lines(300)
    filler = b"INFO 06-01 12:00:00 [engine.py:1] step\n"
    after = filler * ((lc.TAIL_BYTES - 120 * 65) // len(filler))
    log = filler * 30000 + b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(body).encode() + b"\n" + after
    cap = capture(log)
    tail = cap.text.split("omitted here", 1)[1]
    assert not any(line in cap.text for line in body)
    assert tail.count("step") > 1000  # the log after the key is still there


def test_a_giant_log_line_is_redacted_before_its_tail_is_cut():
    for pad in range(0, 45, 7):  # move the cut across a token
        secrets = [token() for _ in range(16_000)]
        line = ("y" * pad + " " + " ".join(secrets)).encode()  # one line, longer than head and tail together
        cap = capture(b"start\n" + line)
        assert cap.truncated
        assert_no_piece(final(cap.text), *secrets)


def test_a_giant_first_line_is_redacted_before_the_head_is_cut():
    for pad in range(0, 45, 7):
        secrets = [token() for _ in range(2_000)]
        cap = capture(("y" * pad + " " + " ".join(secrets)).encode() + b"\n" + b"x\n" * 300_000)
        assert cap.truncated
        assert_no_piece(final(cap.text), *secrets)


def traceback_text(lines: int, per_line: int = 3) -> tuple[str, list[str]]:
    secrets = [token() for _ in range(lines * per_line)]
    body = "\n".join("    " + " ".join(secrets[i : i + per_line]) for i in range(0, len(secrets), per_line))
    return "Traceback (most recent call last):\n" + body + "\nRuntimeError: boom\n", secrets


def test_the_traceback_cap_cuts_between_lines():
    for lines in range(300, 330, 5):  # over 32 KiB, under the line caps; the cut moves across tokens
        text, secrets = traceback_text(lines)
        cap = capture(text.encode())
        (tb,) = cap.tracebacks
        assert len(tb) <= lc.TRACEBACK_CHAR_CAP + 100 and "characters omitted" in tb
        assert_no_piece(final(tb), *secrets)


def test_a_long_traceback_line_is_redacted_before_it_is_cut():
    secret = token()
    for offset in range(1980, 2005, 3):
        line = "x" * offset + " " + secret + " " + "y" * 3000
        cap = capture(f"Traceback (most recent call last):\n  {line}\nValueError: v\n".encode())
        assert_no_piece(final("\n".join(cap.tracebacks)), secret)


def test_the_target_probe_keeps_whole_lines_and_the_collector_redacts_before_its_cut():
    text, secrets = traceback_text(400)
    from vllm_bug.bundler import target_probe

    sent = target_probe._cap(text, 4000)
    kept = [line for line in sent.splitlines() if "File" in line]
    assert all(line in text.splitlines() for line in kept)  # whole lines only
    facts = probes_python._cap_probe_texts({"traceback": text, "error": "OSError: " + " ".join(secrets[:200])})
    assert_no_piece(final(facts["traceback"] + facts["error"]), *secrets)


def test_the_runner_error_text_does_not_cut_a_token_in_half():
    for shift in range(0, 40, 3):
        secret = token()
        stderr = "Traceback ...\n" + "z" * 600 + " --api-key " + secret + " " + "w" * (470 - shift)
        error = runner._last_output(stderr, "")
        assert len(error) <= 520
        assert_no_piece(final(error), secret)


def test_cut_text_never_cuts_inside_a_marker():
    text = " ".join(["<redacted:hf_token>"] * 100)
    for limit in range(50, 90):
        head = cut_text(text, limit, keep="head")
        tail = cut_text(text, limit, keep="tail")
        assert head.count("<") == head.count(">") and tail.count("<") == tail.count(">")


def test_the_summary_counts_what_was_redacted_before_a_cut():
    from vllm_bug.schema.redact import summary_of

    collector = Redactor(home="/home/alice")
    payload = collector.scrub(
        {
            "log": {"text": "/home/alice/x --api-key K1x2y3z4"},
            "error": cut_text("z" * 600 + " " + token(), 300, keep="tail"),
        }
    )
    assert summary_of(payload, collector) == [
        {"kind": "hf_token", "count": 1},
        {"kind": "home_path", "count": 1},
        {"kind": "secret_arg", "count": 1},
    ]


def test_a_ray_error_is_redacted_before_it_is_cut():
    from vllm_bug.bundler.ray_collect import _one_line

    for shift in range(0, 40, 4):
        secret = token()
        error = _one_line(RuntimeError("x" * (470 + shift) + " token " + secret + " tail"))
        assert len(error) <= 500
        assert_no_piece(final(error), secret)


def test_the_word_at_a_cut_is_measured_from_its_own_end():
    # the last word of a long text without blanks was found by a search that tried every position
    # with 4096 characters each (a one-line log of 1 MB took minutes); the new reading gives the same lengths
    from vllm_bug.schema.redact import _first_word_length, _last_word_length

    assert _last_word_length("a b\tcd") == 2
    assert _last_word_length("ab ") == 0
    assert _last_word_length("") == 0
    assert _last_word_length("x" * 10_000) == 4096
    assert _last_word_length("a\u00a0bcd") == 3  # a no-break space is a blank, as for re's \S
    assert _first_word_length("abc d") == 3
    assert _first_word_length(" abc") == 0
    assert _first_word_length("y" * 5000) == 4096


def test_a_giant_line_cut_inside_keeps_no_piece_of_a_secret_at_its_edge():
    secret = token()
    text = "word " * 5000 + "k" * 3000 + secret + "z" * 200_000
    head = cut_text(text, 25_000 + 3000 + 20, keep="head")
    assert_no_piece(head, secret)
    assert head.startswith("word word")


def analyze_text_read(text: str) -> str:
    from vllm_bug.analyzer.textfacts import redacted_part_read

    return redacted_part_read(text, Redactor(home=None))


def test_only_the_part_of_a_huge_text_that_is_read_is_redacted_and_kept():
    from vllm_bug.analyzer.textfacts import MAX_TEXT_CHARS, redacted_part_read

    text = "\n".join(f"line {i} HF_TOKEN=Sec{i}ret" for i in range(400_000))
    assert len(text) > MAX_TEXT_CHARS
    redactor = Redactor(home=None)
    read = redacted_part_read(text, redactor)
    assert read.startswith("line 0 HF_TOKEN=<redacted:secret_env>\n")
    assert read.endswith("line 399999 HF_TOKEN=<redacted:secret_env>")
    assert "\n[... cut by vllm-bug ...]\n" in read
    assert "Sec" not in read
    kept_lines = read.count("\n")  # every line but the note
    assert kept_lines < 400_000 * MAX_TEXT_CHARS / len(text)
    assert redactor.counts == {"secret_env": kept_lines}  # what is cut out is neither read nor counted


def test_a_huge_text_of_one_line_is_redacted_before_it_is_cut():
    secret = token()
    one_line = ("x=1 " * 300_000) + "HF_TOKEN=" + secret + " " + ("y=2 " * 2_000_000)
    read = analyze_text_read(one_line)
    assert_no_piece(read, secret)
    assert "[... cut by vllm-bug ...]" in read


def test_a_key_block_open_across_the_cut_stays_hidden_in_the_tail():
    # the BEGIN falls in the part cut out, and the log stops inside the block (no END)
    body = pem_lines(50)
    text = "INFO step\n" * 200_000 + "-----BEGIN PRIVATE KEY-----\n" + "\n".join(body * 2400) + "\n"
    read = analyze_text_read(text)
    assert read.startswith("INFO step\n")
    assert_no_piece(read, *body)
