"""Module-level patterns compiled on first use."""

import re

from vllm_bug.formats.lazyre import LazyPattern, lazy_compile


def test_compiles_on_first_use_and_keeps_identity():
    rx = lazy_compile(r"GPU (\d+)", re.IGNORECASE)
    assert isinstance(rx, LazyPattern) and "search" not in vars(rx)
    assert rx.search("gpu 3").group(1) == "3"
    assert "search" in vars(rx)  # the compiled pattern's methods were copied on
    assert rx.pattern == r"GPU (\d+)" and rx.flags & re.IGNORECASE
    assert rx.sub("x", "GPU 1 and GPU 2") == "x and x"
