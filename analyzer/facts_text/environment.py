"""Environment variables a report shows being set, with secret values hidden."""

from __future__ import annotations

import re

from vllm_bug.analyzer.facts import Facts
from vllm_bug.formats.env_vars import find_env_settings
from vllm_bug.formats.lazyre import lazy_compile

REDACTED = "<redacted>"
_SECRET_NAME = lazy_compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE|CREDENTIAL|AUTH", re.IGNORECASE)


def mask_secret(name: str, value: str) -> str:
    """VALUE, or '<redacted>' when NAME says it holds a secret (HF_TOKEN, WANDB_API_KEY, ...)."""
    return REDACTED if _SECRET_NAME.search(name) and value and value != REDACTED else value


def env_from_text(facts: Facts, text: str) -> None:
    for setting in find_env_settings(text):
        facts.env.setdefault(setting.name, mask_secret(setting.name, setting.value))
