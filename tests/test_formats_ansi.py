"""Escape sequences and control characters: each caller's style removes exactly what it did before."""

from pathlib import Path

import pytest

from vllm_bug.formats.ansi import MARKDOWN, PASTED, SIGNATURE, TERMINAL, has_control, strip_ansi, strip_control

TOPO = (Path(__file__).parent / "fixtures" / "device" / "h200x2" / "topo.txt").read_text()
LINK = "\x1b]8;;https://example.com/" + "a" * 300 + "\x1b\\docs\x1b]8;;\x1b\\"


def test_real_nvidia_smi_topo_output():
    assert "\x1b" in TOPO
    for style in (TERMINAL, PASTED, MARKDOWN, SIGNATURE):
        assert "\x1b" not in strip_ansi(TOPO, style)
    assert strip_ansi("\t\x1b[4mGPU0\tCPU Affinity\x1b[0m", TERMINAL) == "\tGPU0\tCPU Affinity"


def test_a_real_pasted_ray_line_whose_escape_bytes_were_lost():
    line = (
        " [36m(RayWorkerVllm pid=5085) [0m [E ProcessGroupNCCL.cpp:475] [Rank 1] Watchdog caught collective "
        "operation timeout"
    )
    assert strip_ansi(line, PASTED) == (
        " (RayWorkerVllm pid=5085)  [E ProcessGroupNCCL.cpp:475] [Rank 1] Watchdog caught collective operation timeout"
    )
    assert strip_ansi(line, TERMINAL) == line  # a terminal's own bytes never lose their ESC


@pytest.mark.parametrize(
    "text, terminal, pasted, markdown, signature",
    [
        ("\x1b[1;31mERR\x1b[0m", "ERR", "ERR", "ERR", "ERR"),
        ("\x1b[>0c!", "!", "\x1b[>0c!", "\x1b[>0c!", "\x1b[>0c!"),  # '>' parameters: only the full ECMA-48 form
        ("\x1b]0;title\x07x", "x", "x", "0;title\x07x", "\x1b]0;title\x07x"),  # OSC; Markdown drops 'ESC ]' alone
        (LINK, "docs", LINK.replace("\x1b]8;;\x1b\\", ""), "8;;https://example.com/" + "a" * 300 + "docs8;;", LINK),
        ("\x1bMx", "x", "\x1bMx", "x", "\x1bMx"),  # a two-byte escape
        ("ESC[31mred^[[0m", "ESC[31mred^[[0m", "red", "red^[[0m", "ESC[31mred^[[0m"),  # escapes pasted as text
        (
            "[1;36m(x pid=1)[0m hi",
            "[1;36m(x pid=1)[0m hi",
            "(x pid=1) hi",
            "[1;36m(x pid=1)[0m hi",
            "[1;36m(x pid=1)[0m hi",
        ),
        (
            "[100;100;100;100;100m x",
            "[100;100;100;100;100m x",
            "[100;100;100;100;100m x",
            "[100;100;100;100;100m x",
            "[100;100;100;100;100m x",
        ),  # too long for the quick test of a lost escape
        ("plain [1] text", "plain [1] text", "plain [1] text", "plain [1] text", "plain [1] text"),
    ],
)
def test_each_style(text, terminal, pasted, markdown, signature):
    assert strip_ansi(text, TERMINAL) == terminal
    assert strip_ansi(text, PASTED) == pasted
    assert strip_ansi(text, MARKDOWN) == markdown
    assert strip_ansi(text, SIGNATURE) == signature


def test_control_characters():
    text = "a\x00b\x1b[0mc\td\u202ee\r\n"
    assert strip_control(text) == "ab[0mc\td\u202ee\r\n"
    assert strip_control(text, keep_escape=True) == "ab\x1b[0mc\td\u202ee\r\n"
    assert strip_control(text, bidi=True) == "ab[0mc\tde\r\n"
    assert has_control(text) and not has_control("tab\tand newline\n")
