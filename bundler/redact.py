"""Redaction: secrets never reach the disk. (Interface; implementation in progress.)

    r = Redactor()
    r.text("... hf_xxx ...")        -> str with secrets replaced by <redacted:KIND>
    r.env({"HF_TOKEN": "..."})      -> dict with values redacted by name rules and value patterns
    r.argv(["--api-key", "x"])      -> list with secret arguments redacted
    r.summary()                     -> [{"kind": "hf_token", "count": 2}, ...] (never values)
"""

from __future__ import annotations


class Redactor:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def text(self, value: str) -> str:
        raise NotImplementedError

    def env(self, env: dict[str, str]) -> dict[str, str]:
        raise NotImplementedError

    def argv(self, argv: list[str]) -> list[str]:
        raise NotImplementedError

    def summary(self) -> list[dict[str, object]]:
        return [{"kind": k, "count": n} for k, n in sorted(self.counts.items())]
