"""Redaction: secrets never reach the disk, nor a rendered report.

Both halves use it, which is why it lives beside the bundle format: the collector redacts before
anything is written, and the analyzer redacts pasted text (and bundles from older or modified
collectors) before it renders anything.

    r = Redactor()
    r.text("... hf_xxx ...")        -> the text with each secret replaced by <redacted:KIND>
    r.value("HF_TOKEN", "...")      -> one env value, redacted by its name or by what it looks like
    r.env({"HF_TOKEN": "..."})      -> dict with every value passed through value()
    r.argv(["--api-key", "x"])      -> list with secret arguments redacted
    r.scrub(payload)                -> copy of any JSON-like structure with every string redacted
    r.summary()                     -> [{"kind": "hf_token", "count": 2}, ...] (never values)
    cut_text(text, limit, keep)     -> text cut to a size at line ends, a long line redacted first
    redacted_ends(text, h, t, r, note) -> its head and tail only, redacted (cost follows what is kept)

Three kinds of evidence mark a secret:
  * its shape (a Hugging Face, OpenAI, GitHub, GitLab, Stripe ... token, an AWS key id, a JWT, a
    PEM or PGP private key block);
  * its context (the values after `--api-key`, after `HF_TOKEN=`, after `Authorization: Bearer`,
    the password in `scheme://user:password@host`, a token alone before the `@` of a URL,
    `'api_key': [...]` in a logged dict, `password: x` in YAML, `curl -u user:password`);
  * its name, for environment variables and dict keys (see is_secret_name); a random-looking value
    under a name or flag that only hints at a secret (TOKEN_ID, --auth-x) is hidden too.

Everything else is kept as it is: a false positive hides what a maintainer needs to see.
Markers are never matched again, so redacting twice changes nothing and counts nothing twice.
The user's home directory becomes `~` and other users' /home/NAME becomes /home/<user> (kind
home_path), and a GPU or MIG UUID becomes its hash (GPU-<hashed:...>, as the bundle's GPU entries
record it; see schema.identifiers): not secrets, just privacy.

Cost: every pattern is bounded in what one match may span and nothing scans a region twice more
than a fixed number of times, so the work is linear in the input; one combined regex runs only
over lines that hold a trigger word. Characters that can hide a token from the patterns (zero-width
characters, full-width letters) are normalised on the lines where that reveals a secret.

Token shapes follow the gitleaks rules (MIT licence) and detect-secrets plugins, loosened where
real tokens vary in length.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cache, lru_cache
from typing import Any

from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.regex_cache import compile_cached
from vllm_bug.schema.identifiers import hash_gpu_uuids

# --------------------------------------------------------------------------- shapes
#
# (kind, literal prefixes, the rest of the token, characters that may not come right before the
# prefix or "" when a token glued to a preceding word still counts). Each rest is bounded.

_A = "A-Za-z0-9"
_W = r"A-Za-z0-9_\-"
_WORD_EDGE = _A + "_>-"  # also not after ">" (the end of a marker), so a second pass finds nothing new
_NOT_AFTER = f"(?![{_A}])"
_DIGIT_AHEAD = f"(?=[{_W}]{{0,4096}}[0-9])"

_SHAPE_TABLE: list[tuple[str, tuple[str, ...], str, str]] = [
    ("hf_token", ("hf_", "api_org_"), f"[{_A}]{{30,4096}}", ""),
    ("anthropic_key", ("sk-ant-",), f"[{_W}]{{20,4096}}", ""),
    ("openai_key", ("sk-proj-", "sk-svcacct-", "sk-admin-"), f"{_DIGIT_AHEAD}[{_W}]{{20,4096}}", ""),
    ("openai_key", ("sk-",), f"{_DIGIT_AHEAD}[{_W}]{{20,4096}}", _WORD_EDGE),
    ("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), f"[{_A}]{{30,4096}}", ""),
    ("github_token", ("github_pat_",), f"[{_A}_]{{30,4096}}", ""),
    (
        "gitlab_token",
        (
            "glpat-",
            "glptt-",
            "gldt-",
            "glrt-",
            "glcbt-",
            "glft-",
            "glimt-",
            "glagent-",
            "gloas-",
            "glsoat-",
            "glffct-",
            "GR1348941",
        ),
        f"[{_W}.]{{20,4096}}",
        "",
    ),
    ("aws_access_key_id", ("AKIA", "ASIA", "ABIA", "ACCA"), "[A-Z0-9]{16}", ""),
    ("aws_access_key_id", ("A3T",), "[A-Z0-9]{17}", ""),
    ("aws_bedrock_key", ("ABSK",), "[A-Za-z0-9+/]{100,4096}={0,2}", _WORD_EDGE),
    ("jwt", ("ey",), f"[{_W}]{{15,4096}}\\.ey[{_W}]{{15,4096}}\\.[{_W}]{{0,4096}}", _WORD_EDGE),
    (
        "slack_token",
        ("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xoxe-", "xoxe.", "xapp-"),
        f"[{_A}.-]{{10,4096}}",
        "",
    ),
    (
        "slack_webhook",
        ("hooks.slack.com/services/", "hooks.slack.com/workflows/", "hooks.slack.com/triggers/"),
        "[A-Za-z0-9+/_-]{20,4096}",
        "",
    ),
    (
        "discord_webhook",
        ("discord.com/api/webhooks/", "discordapp.com/api/webhooks/"),
        f"[0-9]{{5,30}}/[{_W}]{{20,4096}}",
        "",
    ),
    ("google_api_key", ("AIza",), f"[{_W}]{{35}}", ""),
    ("google_oauth_token", ("ya29.",), f"[{_W}.]{{20,4096}}", _WORD_EDGE),
    ("nvidia_api_key", ("nvapi-",), f"[{_W}]{{20,4096}}", ""),
    ("pypi_token", ("pypi-AgE",), f"[{_W}]{{40,4096}}", ""),
    ("npm_token", ("npm_",), f"[{_A}]{{36,4096}}", _WORD_EDGE),
    ("docker_token", ("dckr_pat_", "dckr_oat_"), f"[{_W}]{{20,4096}}", ""),
    ("databricks_token", ("dapi",), f"[a-f0-9]{{32}}(?:-[0-9])?{_NOT_AFTER}", _WORD_EDGE),
    ("replicate_token", ("r8_",), f"[{_A}]{{30,4096}}", _WORD_EDGE),
    ("groq_key", ("gsk_",), f"[{_A}]{{40,4096}}", _WORD_EDGE),
    ("perplexity_key", ("pplx-",), f"[{_A}]{{40,4096}}", _WORD_EDGE),
    ("xai_key", ("xai-",), f"[{_A}]{{40,4096}}", _WORD_EDGE),
    ("sendgrid_key", ("SG.",), f"[{_W}]{{16,4096}}\\.[{_W}]{{16,4096}}", _WORD_EDGE),
    ("twilio_key", ("AC", "SK"), f"[0-9a-f]{{32}}{_NOT_AFTER}", _WORD_EDGE),
    (
        "stripe_key",
        ("sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_", "whsec_"),
        f"[{_A}]{{10,4096}}",
        _WORD_EDGE,
    ),
    ("langsmith_key", ("lsv2_pt_", "lsv2_sk_"), f"[{_A}_]{{20,4096}}", ""),
    ("square_token", ("sq0atp-", "sq0csp-", "EAAA"), f"[{_W}]{{22,4096}}", _WORD_EDGE),
    ("shopify_token", ("shpat_", "shpca_", "shppa_", "shpss_"), "[a-fA-F0-9]{32}", ""),
    ("digitalocean_token", ("doo_v1_", "dop_v1_", "dor_v1_"), "[a-f0-9]{64}", ""),
    ("vault_token", ("hvs.", "hvb."), f"[{_W}]{{90,4096}}", _WORD_EDGE),
    ("api_token", ("AKCp",), f"[{_A}]{{69}}", _WORD_EDGE),  # Artifactory
    ("api_token", ("LTAI",), f"[{_A}]{{20}}{_NOT_AFTER}", _WORD_EDGE),  # Alibaba access key id
    ("api_token", ("AGE-SECRET-KEY-1",), "[0-9A-Z]{58}", ""),
    ("api_token", ("ops_eyJ",), "[A-Za-z0-9+/]{100,4096}={0,3}", ""),  # 1Password service account
    ("api_token", ("CLOJARS_",), "[a-z0-9]{60}", ""),
    ("api_token", ("dp.pt.",), f"[{_A}]{{43}}", ""),  # Doppler
    ("api_token", ("dt0c01.",), f"[{_A}]{{24}}\\.[{_A}]{{64}}", ""),  # Dynatrace
    ("api_token", ("EZAK", "EZTK"), f"[{_A}]{{54}}", _WORD_EDGE),  # EasyPost
    ("api_token", ("FLWSECK_TEST-", "FLWSECK-"), f"[{_A}]{{12,4096}}", ""),  # Flutterwave
    ("api_token", ("fio-u-",), f"[{_W}=]{{64}}", ""),  # Frame.io
    ("api_token", ("glc_",), "[A-Za-z0-9+/]{32,4096}={0,3}", _WORD_EDGE),  # Grafana cloud
    ("api_token", ("glsa_",), f"[{_A}]{{32}}_[A-Fa-f0-9]{{8}}", _WORD_EDGE),  # Grafana service account
    ("api_token", ("HRKU-AA",), f"[{_W}]{{58}}", ""),  # Heroku
    ("api_token", ("lin_api_",), f"[{_A}]{{40}}", ""),  # Linear
    ("api_token", ("ntn_",), f"[{_A}]{{40,4096}}", _WORD_EDGE),  # Notion
    ("api_token", ("sha256~",), f"[{_W}]{{43}}", _WORD_EDGE),  # OpenShift
    ("api_token", ("pscale_tkn_", "pscale_oauth_", "pscale_pw_"), f"[{_W}.=]{{32,64}}", ""),  # PlanetScale
    ("api_token", ("PMAK-",), "[a-fA-F0-9]{24}-[a-fA-F0-9]{34}", ""),  # Postman
    ("api_token", ("pnu_",), f"[{_A}]{{36}}", _WORD_EDGE),  # Prefect
    ("api_token", ("pul-",), "[a-f0-9]{40}", _WORD_EDGE),  # Pulumi
    ("api_token", ("rdme_",), "[a-z0-9]{70}", _WORD_EDGE),  # ReadMe
    ("api_token", ("rubygems_",), "[a-f0-9]{48}", ""),
    ("api_token", ("tk-us-",), f"[{_W}]{{48}}", _WORD_EDGE),  # Scalingo
    ("api_token", ("xkeysib-",), f"[a-f0-9]{{64}}-[{_A}]{{16}}", ""),  # Brevo / Sendinblue
    ("api_token", ("sntryu_",), "[a-f0-9]{64}", ""),  # Sentry user token
    ("api_token", ("sntrys_",), "[A-Za-z0-9+/=_]{40,4096}", ""),  # Sentry org token
    ("api_token", ("shippo_live_", "shippo_test_"), "[a-fA-F0-9]{40}", ""),
    ("api_token", ("ico-",), f"[{_A}]{{32}}", _WORD_EDGE),  # Infracost
    ("api_token", ("pcsk_",), f"[{_A}_]{{40,4096}}", _WORD_EDGE),  # Pinecone
    ("api_token", ("tvly-",), f"[{_W}]{{24,4096}}", _WORD_EDGE),  # Tavily
]

# Shapes whose start is checked by a lookbehind placed after a first literal: (kind, literals, rest).
_SHAPE_PATTERNS: list[tuple[str, tuple[str, ...], str]] = [
    # Discord bot token: base64 of a user id (starts M, N or O), a timestamp, an HMAC
    (
        "discord_token",
        ("M", "N", "O"),
        f"(?<![{_WORD_EDGE}][MNO])[{_W}]{{23,27}}\\.[{_W}]{{6,7}}\\.[{_W}]{{27,40}}{_NOT_AFTER}",
    ),
    # Azure AD client secret: three characters, a digit, "Q~", then the secret
    ("azure_client_secret", ("Q~",), f"(?<=[{_A}_~.]{{3}}[0-9]Q~)[{_A}_~.-]{{31,34}}(?![{_A}_~.-])"),
    # Telegram bot token: the bot id, a colon, then "AA" and the secret
    ("telegram_bot_token", (":",), f"(?<=[0-9]{{8}}:)AA[{_W}]{{33}}{_NOT_AFTER}"),
]
# The lower-case triggers of _SHAPE_PATTERNS (see _TRIGGER_WORDS), and of shapes whose prefix is too
# common a pair of letters to be one.
# Each is (literal, rest of the pattern), merged into the trigger trie.
_SHAPE_PATTERN_TRIGGERS = (
    (".", r"(?<=[a-z0-9_-]{23}\.)[a-z0-9_-]{6,7}\.[a-z0-9_-]{27}"),
    ("q~", ""),
    (":aa", ""),
    ("ac", "[0-9a-f]{32}"),
    ("sk", "[0-9a-f]{32}"),
)
_SHAPE_TRIGGERS = {"jwt": [".ey"], "twilio_key": []}


# Letters by how often they start a word in logs: the regex engine tries a trie's branches in order.
_LETTER_ORDER = " etaoinsrhldcumfpgwybvkxjqz_-.:0123456789/&?"


def _trie(entries: list[tuple[str, str, int]]) -> str:
    """One regex for (literal, tail, rank) entries: literals sharing a start share one branch, so a
    position where no literal starts is rejected after a few comparisons whatever their number.

    Where two entries can match at one position, the lower rank wins; within a rank, the longer
    literal (sk-ant- before sk-), then the entry given first.
    """
    root: dict[str, Any] = {}
    for literal, tail, rank in entries:
        node = root
        for ch in literal:
            node = node.setdefault(ch, {})
        node.setdefault("", []).append((rank, tail))

    def emit(node: dict[str, Any]) -> tuple[str, int]:
        """The node's regex, and the best rank of the entries under it."""
        chars = sorted((ch for ch in node if ch), key=lambda ch: (_LETTER_ORDER.find(ch.lower()) % 99, ch))
        branches = []
        for ch in chars:
            below, rank = emit(node[ch])
            branches.append((rank, 0, re.escape(ch) + below))
        branches += [(rank, 1, tail) for rank, tail in node.get("", [])]
        branches.sort(key=lambda b: (b[0], b[1]))
        ordered = [pattern for *_, pattern in branches]
        return (ordered[0] if len(ordered) == 1 else "(?:" + "|".join(ordered) + ")"), branches[0][0]

    return emit(root)[0]


def _kept_trie(purpose: str, entries: list[tuple[str, str, int]]) -> str:
    """_trie(entries), kept in the user cache folder between runs (building it is about a millisecond per
    hundred entries): keyed by the entries and by the code and letter order that build it."""
    import hashlib
    import marshal

    from vllm_bug.formats.user_cache import remember

    key = hashlib.sha256(marshal.dumps((_trie.__code__, _LETTER_ORDER, entries))).digest()
    return remember(f"redaction-trie-{purpose}", key, lambda: _trie(entries))


# Kinds of redaction, as they appear in markers and in summary().
SHAPE_KINDS = tuple(
    dict.fromkeys(
        [kind for kind, *_ in _SHAPE_TABLE] + [kind for kind, *_ in _SHAPE_PATTERNS] + ["wandb_key", "private_key"]
    )
)
CONTEXT_KINDS = (
    "url_password",  # scheme://user:PASSWORD@host
    "url_token",  # scheme://TOKEN@host, and a signature in a URL's query (Azure SAS sig=)
    "bearer_token",
    "auth_header",
    "aws_secret_key",
    "secret_arg",  # the value of a secret-looking command-line flag or logged argument
    "secret_env",  # the value of a secret-named variable (environment, KEY=value, dict key)
)
KINDS = SHAPE_KINDS + CONTEXT_KINDS + ("home_path",)

_MARKER = lazy_compile(r"<redacted:[a-z0-9_]+>")
_LEADING_MARKER = lazy_compile(r"[\"']?<redacted:[a-z0-9_]{1,64}>")  # a value's start that is hidden already
_MARKER_KIND = lazy_compile(r"<redacted:([a-z0-9_]{1,64})>")


@cache
def marker(kind: str) -> str:
    return f"<redacted:{kind}>"


# --------------------------------------------------------------------------- names

# A name is cut into lower-case components at camelCase humps and at any non-alphanumeric.
_CAMEL_HUMP = lazy_compile(r"([a-z0-9])([A-Z])")
_NON_ALNUM = lazy_compile(r"[^a-z0-9]+")

# A component that marks a secret wherever it stands in the name.
_SECRET_WORD = lazy_compile(
    r"[a-z0-9]*(?:secrets?|passw(?:or)?ds?|passphrases?|pwd|credentials?|creds|cookies?|signatures?|auth)"
    r"|oauth2?|authorization|authn|authz|sessionid|sessionkey|(?:access|auth|api|bearer|refresh)tokens"
)
# Words that mark a secret only at the end of a name (or, for keys, before "id"): API_KEY and
# ACCESS_KEY_ID, but not KEY_VALUE_..., TOKEN_IDS, NCCL_IB_PKEY or SSL_KEYFILE; DB_PASS but not a
# compiler pass.
_KEY_WORDS = frozenset({"key", "keys", "apikey", "apikeys", "accesskey", "secretkey", "privatekey"})
_TAIL_WORD = lazy_compile(r"[a-z0-9]*token|session|pass")
# "tokens" names credentials only after these words (VLLM_HF_ACCESS_TOKENS, not max_num_batched_tokens).
_CREDENTIAL_TOKENS_AFTER = frozenset({"access", "auth", "api", "bearer", "refresh", "hf", "oauth", "personal"})
# Vocabulary tokens of a language model, which logs print next to the word "token": eos_token='</s>'.
_MODEL_TOKEN_WORDS = frozenset(
    {
        "bos",
        "eos",
        "pad",
        "unk",
        "sep",
        "cls",
        "mask",
        "eot",
        "eom",
        "start",
        "end",
        "stop",
        "special",
        "added",
        "image",
        "video",
        "audio",
        "vision",
        "placeholder",
        "sink",
        "tool",
        "think",
        "thinking",
        "reasoning",
        "decoder",
        "encoder",
        "prompt",
        "output",
        "input",
        "first",
        "last",
        "next",
        "prev",
        "new",
        "max",
        "min",
        "num",
        "total",
        "default",
        "chat",
    }
)
# Words that end in "token" without being one: the tiktoken package, sub-word tokens.
_NOT_SECRET_TOKEN_WORDS = frozenset(
    {"tiktoken", "subtoken", "detoken", "pretoken", "multitoken", "maxtoken", "mintoken"}
)
# A name ending in one of these describes a setting, not a secret: RAY_AUTH_MODE, HF_TOKEN_PATH.
_SETTING_SUFFIXES = frozenset(
    {
        "mode",
        "type",
        "method",
        "enable",
        "enabled",
        "disable",
        "disabled",
        "level",
        "timeout",
        "backend",
        "provider",
        "policy",
        "path",
        "file",
        "dir",
        "size",
        "limit",
        "threshold",
        "count",
        "len",
        "length",
        "interval",
        "id",
        "ids",
    }
)
# Trailing words that only say how a secret is stored: HF_TOKEN_VALUE, DB_PASSWORD_B64, HF_HUB_TOKEN_2.
_STORAGE_SUFFIXES = frozenset({"value", "val", "str", "string", "b64", "base64", "raw", "plain", "plaintext", "hex"})
# Shell variables that hold the working directory, not a password.
_NOT_SECRET_NAMES = frozenset({"pwd", "oldpwd"})
# Values that carry no secret even under a secret name: unset, masked, or a switch.
_HARMLESS_VALUES = frozenset({"", "none", "null", "nil", "<none>", "0", "1", "true", "false", "yes", "no", "on", "off"})


def _components(name: str) -> list[str]:
    return [c for c in _NON_ALNUM.split(_CAMEL_HUMP.sub(r"\1_\2", name).lower()) if c]


# A key that is a lookup key, not a credential: cache_key, sort_key, public_key, kv_key.
_PLAIN_KEY_QUALIFIERS = frozenset(
    {
        "cache",
        "sort",
        "hash",
        "lookup",
        "partition",
        "primary",
        "foreign",
        "dict",
        "map",
        "row",
        "column",
        "group",
        "prefix",
        "kv",
        "routing",
        "shard",
        "index",
        "unique",
        "request",
        "block",
        "page",
        "layer",
        "query",
        "value",
        "model",
        "config",
        "registry",
        "metric",
        "label",
        "entry",
        "item",
        "node",
        "peer",
        "device",
        "prompt",
        "public",
        "pub",
        "lora",
        "adapter",
        "schema",
    }
)


def _is_secret_component(parts: list[str], i: int) -> bool:
    part = parts[i]
    is_last = i == len(parts) - 1
    if part in _KEY_WORDS:
        if i > 0 and parts[i - 1] in _PLAIN_KEY_QUALIFIERS:
            return False
        return is_last or parts[i + 1] in ("id", "ids")
    if part == "tokens":
        return is_last and i > 0 and parts[i - 1] in _CREDENTIAL_TOKENS_AFTER
    if _TAIL_WORD.fullmatch(part):
        if part in _NOT_SECRET_TOKEN_WORDS:
            return False
        return is_last and (i == 0 or parts[i - 1] not in _MODEL_TOKEN_WORDS)
    return _SECRET_WORD.fullmatch(part) is not None


def _without_storage_suffixes(parts: list[str]) -> list[str]:
    """HF_HUB_TOKEN_2 -> hf hub token; HF_TOKEN_VALUE -> hf token (only after a token or password word)."""
    while len(parts) > 1 and (parts[-1].isdigit() or parts[-1] in _STORAGE_SUFFIXES):
        before = parts[-2]
        if not parts[-1].isdigit() and not (_TAIL_WORD.fullmatch(before) or _SECRET_WORD.fullmatch(before)):
            break
        parts = parts[:-1]
    return parts


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a variable or key called `name` holds a secret (HF_TOKEN, api_key, aws_secret_access_key)."""
    parts = _without_storage_suffixes(_components(name))
    if not parts or "".join(parts) in _NOT_SECRET_NAMES:
        return False
    if parts[-1] in _SETTING_SUFFIXES and not (len(parts) > 1 and parts[-2] in _KEY_WORDS):
        return False
    return any(_is_secret_component(parts, i) for i in range(len(parts)))


@lru_cache(maxsize=1024)
def is_secret_flag(flag: str) -> bool:
    """Whether a command-line flag takes a secret: its last word is secret (--api-key, --hf-token).

    Only the last word counts, so `--return-tokens-as-token-ids` and `--tokenizer` are left alone.
    """
    parts = _without_storage_suffixes(_components(flag))
    return bool(parts) and _is_secret_component(parts, len(parts) - 1)


# A version number ("2.40.0", "0.9.0rc1", "2.9.0+cu128"): in a package map, google_auth's value.
_VERSION = lazy_compile(r"v?\d+(?:\.\d+)+(?:[a-z]+\d*)?(?:[.+-][A-Za-z0-9]{1,16}){0,3}")


def _is_harmless_value(value: str) -> bool:
    stripped = value.strip()
    if stripped.lower() in _HARMLESS_VALUES or _MARKER.fullmatch(stripped):
        return True
    return set(stripped) == {"*"}  # vLLM masks api_key and hf_token as '***' itself


_TOKEN_ALPHABET = lazy_compile(r"[A-Za-z0-9+=_.~-]{20,512}")
_HEX_OR_UUID = lazy_compile(r"[0-9a-fA-F]+|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def looks_random(value: str) -> bool:
    """Whether `value` reads like a generated secret: 20+ token characters mixing letters and digits,
    with high entropy. Hex digests, UUIDs, versions, words and paths do not."""
    if not _TOKEN_ALPHABET.fullmatch(value) or _HEX_OR_UUID.fullmatch(value) or _VERSION.fullmatch(value):
        return False
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 4.0


# --------------------------------------------------------------------------- context rules
#
# All rules are entries of one regex (see _compile). Each starts with a literal and checks what
# precedes it with a lookbehind placed after that literal. Every repetition is bounded, so one match
# spans at most a few KiB, and a value hidden already (a marker) is never matched again.

# Words that a secret-bearing name or flag contains; the callbacks then apply the exact rule.
_HINT = r"(?i:token|secret|passw|pwd|pass|cred|cookie|auth|session|signature|key)"
_QUOTED = r"\"[^\"\n]{0,4096}\"|'[^'\n]{0,4096}'"
_QUOTED_RE = lazy_compile(_QUOTED)
_BARE = r"(?!=)[^\s'\",;)\]}=]{1,4096}(?:={1,8}(?![=\w]))?"  # base64 padding, but not the "=" of a NAME=value
_NOT_MARKER = r"(?![\"']?<redacted:)"  # a value hidden already is not matched again
_VALUE = rf"{_NOT_MARKER}(?:\[|{_QUOTED}|{_BARE})"  # "[" opens a list, read item by item by _hide_list
_BLANKS = r"[ \t]{0,64}"

# (rule, first literals, the rest): the secret is the group named {g}_val; what comes before it in
# the match is kept. A lookbehind right after the literal checks what precedes it. No rule crosses a
# line end.
_CONTEXTS: list[tuple[str, tuple[str, ...], str]] = [
    # scheme://user:PASSWORD@host (the scheme lies before the match and is kept)
    ("url_password", ("://",), r"[^\s/:@'\"<>]{0,256}:(?P<{g}_val>[^\s/@'\"]{1,1024})(?=@)"),
    # scheme://TOKEN@host, judged by what TOKEN looks like (a user name is kept)
    ("url_token", ("://",), r"(?P<{g}_val>[^\s/:@'\"<>]{8,256}):?(?=@)"),
    # Authorization: Bearer X; X-Api-Key: X; auth-token / access-token headers (never right after a
    # marker: a second pass must find nothing new)
    (
        "auth_header",
        ("A", "a"),
        r"(?<![\w>][Aa])(?i:uthorization[\"']?[ \t]{0,16}[:=][ \t]{0,16}[\"']?"
        r"(?:(?:bearer|basic|token|digest|negotiate)[ \t]{1,16})?"
        r"|(?:pi-key|uth-token|ccess-token)[\"']?[ \t]{0,16}:[ \t]{0,16}[\"']?)(?P<{g}_val>[^\s\"',;]{1,4096})",
    ),
    # Cookie: and Set-Cookie: hide the rest of the line
    (
        "cookie_header",
        ("C", "c"),
        r"(?<![\w>][Cc])(?i:ookie)[\"']?[ \t]{0,16}:[ \t]{0,16}(?P<{g}_val>[^\s\"'][^\r\n\"']{0,4095})",
    ),
    (
        "bearer_token",
        ("B", "b"),
        r"(?<![\w>][Bb])(?i:earer)[ \t]{1,16}"
        r"(?P<{g}_val>(?=[A-Za-z0-9._~+/=-]{0,4096}[0-9])[A-Za-z0-9._~+/=-]{8,4096})",
    ),
    # --api-key X [Y ...], --hf-token=X (not right after a marker, so that a second pass finds nothing new)
    (
        "flag",
        ("-",),
        # (the name is taken whole, as an atomic group would: a lookahead captures it, a backreference consumes it)
        rf"(?<![\w>-]-)-?(?=[\w-]{{0,64}}?{_HINT})(?=(?P<{{g}}_name>[{_A}][\w-]{{0,64}}))(?P={{g}}_name)"
        rf"(?:=|[ \t]{{1,16}})"
        rf"(?P<{{g}}_val>{_NOT_MARKER}(?:{_QUOTED}|(?!--)[^\s'\"]{{1,4096}}))",
    ),
    # curl -u user:password, --user user:password, --proxy-user user:password
    (
        "user_password",
        ("-",),
        r"(?<![\w>-]-)(?P<{g}_name>-user|-proxy-user|u|U)(?:=|[ \t]{1,16})[\"']?[^\s:'\"]{1,256}:"
        rf"(?P<{{g}}_val>{_NOT_MARKER}[^\s'\"]{{1,1024}})",
    ),
    # Azure SAS and other signatures in a URL's query
    ("url_query", ("?sig=", "&sig="), rf"(?P<{{g}}_val>{_NOT_MARKER}[^\s&#'\"]{{1,4096}})"),
    # A 40-hex Weights & Biases key on a line that names wandb (WANDB_API_KEY, `wandb login KEY`)
    (
        "wandb_key",
        ("W", "w"),
        r"(?<![A-Za-z0-9][Ww])(?i:andb)[^\n]{0,256}?(?<![A-Za-z0-9])(?P<{g}_val>[0-9a-f]{40})(?![A-Za-z0-9])",
    ),
]

# NAME=value, NAME: value (YAML), 'NAME': value (a logged dict or JSON), where NAME holds a hint word:
# the match starts at the hint and ends at the operator; the callback reads the whole name back from
# there and the value forward (so an "=" after a name without a hint costs nothing).
_HINT_WORDS = ("token", "secret", "pass", "pwd", "cred", "cookie", "auth", "session", "signature", "key")
_HINT_LITERALS = tuple(dict.fromkeys(v for w in _HINT_WORDS for v in (w, w.upper(), w.capitalize())))
_NAMED = (
    "named",
    _HINT_LITERALS,
    r"[A-Za-z0-9_.-]{0,64}(?:[ \t]{0,64}(?:=(?!=)|:(?=[ \t]))|[\"'][ \t]{0,64}:)(?![ \t]{0,64}[\"']?<redacted:)",
)
_HINT_START = lazy_compile("|".join(_HINT_LITERALS))
_BLANKS_AND_VALUE = lazy_compile(rf"([ \t]{{0,64}})({_VALUE})")

_NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
_NAME_LOOKBACK = 200
_HINT_RE = lazy_compile(_HINT)
# One item of a logged list, the blanks around it and the comma or bracket after it.
_LIST_ITEM = lazy_compile(
    r"([ \t]{0,64})(?:(\"[^\"\n]{0,4096}\"|'[^'\n]{0,4096}')|([^,\]\n]{1,4096}))"
    r"([ \t]{0,64})(,|\])?"
)  # blanks, a quoted or bare item, blanks, the separator
# The words after a secret flag's value, up to a flag, a shell separator or the end of the line.
_NEXT_VALUE = lazy_compile(rf"([ \t]{{1,64}})((?![-;|&<>()])(?:{_QUOTED}|[^\s'\"]{{1,4096}}))")
_MAX_MORE_VALUES = 16
_MORE_VALUES = lazy_compile(rf"(?:[ \t]{{1,64}}(?![-;|&<>()])(?:{_QUOTED}|[^\s'\"]{{1,4096}})){{0,{_MAX_MORE_VALUES}}}")
_MAX_LIST_ITEMS = 1024
_USER_FLAGS_NEEDING_CURL = frozenset({"u", "U"})
# Rules whose value is always a secret, and the kind it is reported as.
_ALWAYS_SECRET = {
    "url_password": "url_password",
    "wandb_key": "wandb_key",
    "bearer_token": "bearer_token",
    "url_query": "url_token",
    "cookie_header": "auth_header",
}
# Those whose value is reported by its token shape when it has one, and nothing before it is scanned again.
_ALWAYS_SECRET_BY_SHAPE = frozenset({"bearer_token", "url_query", "cookie_header"})


def _plain_name(name: str) -> str:
    """A name as a variable or key is written: no leading dashes, starting with a letter or "_"."""
    name = name.lstrip("-")
    return name if name[:1].isalpha() or name[:1] == "_" else ""


def _starts_line(text: str, name_start: int) -> bool:
    """Whether only blanks, a YAML list dash or a quote come before a name starting at `name_start` on its line."""
    floor = max(0, name_start - 64)
    before = text[floor:name_start].rstrip(" \t-\"'")
    return before.endswith("\n") or (not before and (floor == 0 or text[floor - 1] == "\n"))


# --------------------------------------------------------------------------- compiling


Rules = list[tuple[str, tuple[str, ...], str]]


def _compile(purpose: str, *ranked: Rules) -> tuple[re.Pattern[str], dict[str, str]]:
    """One regex for groups of rules, as a trie over their first literals: every alternative starts
    with a literal, so the regex engine skips positions where none can start. At one position a rule
    of an earlier group wins. Returns the regex and, for each value group, its rule.

    A context rule's value group {g}_val becomes r{i}_val, which m.lastgroup then names (it closes
    last). Token shapes have no group at all, so that the regex stays fast (the engine saves every
    group's marks at each branch): a match without a group is a shape, named by shape_of().
    """
    entries: list[tuple[str, str, int]] = []
    groups: dict[str, str] = {}
    for rank, rules in enumerate(ranked):
        for rule, literals, rest in rules:
            for literal in literals:
                if "{g}" in rest:
                    group = f"r{len(groups)}"
                    groups[f"{group}_val"] = rule
                    rest_i = rest.replace("{g}", group)
                else:
                    rest_i = rest
                entries.append((literal, rest_i, rank))
    return compile_cached(_kept_trie(purpose, entries)), groups


def _shape_rules() -> list[tuple[str, tuple[str, ...], str]]:
    rules = list(_SHAPE_PATTERNS)
    for kind, prefixes, rest, not_before in _SHAPE_TABLE:
        for prefix in prefixes:
            guard = f"(?<![{not_before}]{re.escape(prefix)})" if not_before else ""
            rules.append((kind, (prefix,), guard + rest))
    return rules


@lru_cache(maxsize=1)
def _shapes_by_literal() -> tuple[dict[str, list[tuple[str, re.Pattern[str]]]], list[int]]:
    """literal -> [(kind, the whole shape's regex)], and the literals' lengths, longest first."""
    table: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for kind, literals, rest in _shape_rules():
        for literal in literals:
            table.setdefault(literal, []).append((kind, re.compile(re.escape(literal) + rest)))
    return table, sorted({len(literal) for literal in table}, reverse=True)


def shape_of(m: re.Match[str]) -> str:
    """The kind of the token shape that matched as `m` (the rule with the longest literal that fits it)."""
    table, lengths = _shapes_by_literal()
    text, start, end = m.string, m.start(), m.end()
    for length in lengths:
        for kind, rx in table.get(text[start : start + length], ()):
            if rx.fullmatch(text, start, end):
                return kind
    return "api_token"


def _home_rules(home: str | None) -> list[tuple[str, tuple[str, ...], str]]:
    """The current user's home (shown as ~) and other users' /home/NAME and /Users/NAME (as /home/<user>)."""
    if not home:
        return []
    edge = r"(?![\w.<-])"
    return [
        # Not next to "~", ">" or "<" either (what a replacement leaves), so a second pass finds nothing new.
        ("home_path", (home,), f"(?<![\\w.~>-]{re.escape(home)})(?P<{{g}}_val>){edge}"),
        (
            "other_home",
            ("/home/", "/Users/"),
            r"(?<![\w.~>-]/home/)(?<![\w.~>-]/Users/)(?![<.])(?P<{g}_val>[A-Za-z0-9._-]{1,64})" + edge,
        ),
    ]


@lru_cache(maxsize=1)
def _shape_only() -> re.Pattern[str]:
    return _compile("shapes", _shape_rules())[0]


@lru_cache(maxsize=8)
def _combined(home: str | None) -> tuple[re.Pattern[str], dict[str, str]]:
    # Context rules come first: at one position, `HF_TOKEN=hf_...` is an assignment whose value
    # is then classified by shape.
    return _compile("combined", _CONTEXTS + _home_rules(home), [_NAMED], _shape_rules())


# Lower-case words and prefixes of which every redaction needs at least one on its line: the
# hints of secret names, header words, the starts of token shapes, "://" and home paths. Lines
# without any are left alone, which makes large logs cheap.
_TRIGGER_WORDS = (
    "token",
    "secret",
    "pass",
    "pwd",
    "cred",
    "cookie",
    "auth",
    "session",
    "signature",
    "key",
    "bearer",
    "://",
    "wandb",
    "curl",
    "--user",
    "--proxy-user",
    "?sig=",
    "&sig=",
    "access-tokens",
    "access_tokens",
    "accesstokens",
    "api-tokens",
    "api_tokens",
    "apitokens",
    "refresh-tokens",
    "refresh_tokens",
    "refreshtokens",
    "personal-tokens",
    "personal_tokens",
)


@lru_cache(maxsize=8)
def _trigger(home: str | None) -> re.Pattern[bytes]:
    words = set(_TRIGGER_WORDS)
    for kind, prefixes, _, _ in _SHAPE_TABLE:
        words.update(_SHAPE_TRIGGERS[kind] if kind in _SHAPE_TRIGGERS else [prefix.lower() for prefix in prefixes])
    if home:
        words.update({home.lower(), "/home/", "/users/"})
    # "token" but not "tokens", which vLLM logs print all the time (the plural credentials are listed above)
    entries = [
        (w.encode("ascii", "replace").decode("latin-1"), "(?!s)" if w == "token" else "", 0) for w in sorted(words)
    ]
    entries += [(literal, rest, 0) for literal, rest in _SHAPE_PATTERN_TRIGGERS]
    return compile_cached(_kept_trie("trigger", entries).encode("latin-1"))


@lru_cache(maxsize=8)
def _quiet_line(home: str | None) -> re.Pattern[bytes]:
    """A whole line (lower-cased) in which no trigger starts. A line longer than 4 KiB never is one (its
    regex scan then costs what the check would, and the check's backtracking memory stays bounded)."""
    return compile_cached(rb"(?m)^(?:(?!" + _trigger(home).pattern + rb").){0,4096}$")


def shape_kind(value: str) -> str | None:
    """The token kind that `value` is, as a whole, or None."""
    m = _shape_only().fullmatch(value.strip())
    return shape_of(m) if m else None


def _usable_home(home: str | None) -> str | None:
    """The home path worth hiding: /root, or at least two levels deep (/home/alice); never / or /tmp."""
    if not home:
        return None
    home = home.rstrip("/")
    if not home.startswith("/") or (home.count("/") < 2 and home != "/root"):
        return None
    return home


# --------------------------------------------------------------------------- private keys

_KEY_MARKER = lazy_compile(r"-----(BEGIN|END)[A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----")
# A line of key material: base64, or an armour header (Proc-Type, DEK-Info, Version, Comment), or blank.
_KEY_LINE = lazy_compile(r"[ \t]{0,64}(?:[A-Za-z0-9+/=]{1,4096}|[A-Za-z][A-Za-z-]{0,40}:[^\n]{0,1024})?[ \t]{0,64}\r?")
MAX_KEY_BLOCK = 64 << 10  # an END further than this from its BEGIN does not close it


def _key_material_end(text: str, pos: int, limit: int) -> int:
    """Where the run of key-material lines starting at `pos` (a line start or a marker's end) ends: the
    end of its last line, before that line's newline."""
    last = pos
    while pos <= limit:
        line_end = text.find("\n", pos, limit)
        line_end = limit if line_end < 0 else line_end
        if _KEY_LINE.fullmatch(text, pos, line_end) is None:
            break
        if text[pos:line_end].strip():
            last = line_end
        if line_end >= limit:
            break
        pos = line_end + 1
    return last


def _key_material_start(text: str, end: int, floor: int) -> int:
    """Where the run of key-material lines that ends at `end` (a marker's start) begins, not before `floor`."""
    start = end
    while start > floor:
        line_start = text.rfind("\n", floor, start - 1) + 1
        line_start = max(line_start, floor)
        if _KEY_LINE.fullmatch(text, line_start, start - 1 if text[start - 1] == "\n" else start) is None:
            break
        start = line_start
    return start


def _private_key_spans(text: str, starts_inside: bool) -> list[tuple[int, int]]:
    """Spans of private key blocks, in order: BEGIN..END (within MAX_KEY_BLOCK); a BEGIN without its END
    with the key material after it; an END without its BEGIN (cut off) with the key material before it."""
    spans: list[tuple[int, int]] = []
    open_at: int | None = 0 if starts_inside else None
    done = 0
    for m in _KEY_MARKER.finditer(text):
        if m.group(1) == "BEGIN":
            if open_at is not None:  # the previous block never ended
                spans.append((open_at, max(_key_material_end(text, _after(text, open_at), m.start()), open_at)))
                done = spans[-1][1]
            open_at = m.start()
            continue
        if open_at is not None and m.end() - open_at <= MAX_KEY_BLOCK:
            spans.append((open_at, m.end()))
        else:
            if open_at is not None:
                spans.append((open_at, _key_material_end(text, _after(text, open_at), m.start())))
                done = spans[-1][1]
            spans.append((_key_material_start(text, m.start(), done), m.end()))
        open_at = None
        done = spans[-1][1]
    if open_at is not None:
        spans.append((open_at, _key_material_end(text, _after(text, open_at), len(text))))
    return spans


def key_block_end(text: str) -> int:
    """Where the private key block that `text` starts inside (its BEGIN was cut off) ends: after its
    lines of key material and the END line that closes them, if one does."""
    end = _key_material_end(text, 0, len(text))
    closing = _KEY_MARKER.match(text, end + 1 if text[end : end + 1] == "\n" else end)
    if closing is not None and closing.group(1) == "END":
        end = closing.end()
    return end


def _after(text: str, start: int) -> int:
    """The end of the BEGIN marker at `start` (or `start` itself for a block already open at the text's start)."""
    m = _KEY_MARKER.match(text, start)
    return m.end() if m else start


# --------------------------------------------------------------------------- disguised tokens

# Zero-width characters and full-width ASCII can split or disguise a token; matching sees through them.
_DISGUISE = lazy_compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff\uff01-\uff5e\u3000]")
_ZERO_WIDTH = lazy_compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]")
_FULL_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def _undisguised(line: str) -> str:
    return _ZERO_WIDTH.sub("", line).translate(_FULL_WIDTH)


# --------------------------------------------------------------------------- the redactor

_DEFAULT = object()
# Past this depth a declined match's value is only checked for token shapes (no recursion).
_MAX_DEPTH = 4
_MAX_PASSES = 4
# The rules that look a distance back, which redaction shortens (a leading character class lets the
# regex engine skip to where one can start).
_WITHIN_REACH = lazy_compile(r"[WwCc](?:(?<=[Ww])[Aa][Nn][Dd][Bb]|(?<=[Cc])[Uu][Rr][Ll])")
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.+/=~")
_SHORTEST_SHAPE = 18  # no token shape is shorter (sk_live_ and ten characters)
_JOIN_EVERY = 4096  # output pieces are joined in groups, so a region with many matches stays compact


class Redactor:
    def __init__(self, home: Any = _DEFAULT) -> None:
        """`home`: the directory shown as `~`; default the current user's, None to keep every path."""
        if home is _DEFAULT:
            home = os.path.expanduser("~")
        self.home = _usable_home(home)
        self._pattern, self._rule_of_group = _combined(self.home)
        self._trigger = _trigger(self.home)
        self._quiet_line = _quiet_line(self.home)
        self.counts: dict[str, int] = {}
        self._glued = False  # a token shape was hidden right after a word character (see _redact_to_fixed_point)

    # ---------------------------------------------------------------- public API

    def text(self, value: str, *, starts_inside_private_key: bool = False) -> str:
        """`value` with every secret (and the home directory) replaced by a marker.

        `starts_inside_private_key`: `value` is the part after a cut that fell inside a key block.
        """
        if not value:
            return value
        if starts_inside_private_key or "PRIVATE KEY" in value:
            value = self._hide_private_keys(value, starts_inside_private_key)
        if _DISGUISE.search(value) is not None:
            value = self._undisguise(value)
        return self._redact_lines(hash_gpu_uuids(value))

    def value(self, name: str, value: str) -> str:
        """One environment variable's value: hidden whole if the name is secret, else scanned."""
        if not _is_harmless_value(value) and (is_secret_name(name) or self._random_under_hint(name, value)):
            return self._hide("secret_env")
        return self.text(value)

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        return {name: self.value(name, value) for name, value in env.items()}

    def argv(self, argv: Sequence[Any]) -> list[Any]:
        """A command line with the arguments after each secret flag hidden (`--api-key X Y`).

        A secret flag's values run to the next flag (vLLM's --api-key takes several). Items that are
        not strings are kept as they are.
        """
        out: list[Any] = []
        after_secret_flag = False
        after_user_flag = False
        curl = any(isinstance(item, str) and os.path.basename(item).startswith("curl") for item in argv)
        for item in argv:
            if not isinstance(item, str):
                out.append(self.scrub(item))
                after_secret_flag = after_user_flag = False
                continue
            is_flag = item.startswith("-") and len(item) > 1
            if after_secret_flag and not is_flag and not _is_harmless_value(item):
                out.append(self._hide(shape_kind(item) or "secret_arg"))
            elif after_user_flag and ":" in item and not item.split(":", 1)[1].isdigit():
                user, _, _ = item.partition(":")
                out.append(self.text(user) + ":" + self._hide("secret_arg"))
            else:
                out.append(self.text(item))
            if is_flag:
                after_secret_flag = "=" not in item and is_secret_flag(item)
                after_user_flag = item in ("--user", "--proxy-user") or (curl and item in ("-u", "-U"))
            else:
                after_user_flag = False
        return out

    def scrub(self, obj: Any) -> Any:
        """A copy of a JSON-like structure with every string redacted.

        Values under secret-named keys (`{"api_key": "..."}`) are hidden whole; a list is read as a
        command line (`["--api-key", "x"]`).
        """
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {self.scrub(k): self._scrub_item(k, v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return self.argv(obj)
        return obj

    def summary(self) -> list[dict[str, object]]:
        return [{"kind": k, "count": n} for k, n in sorted(self.counts.items())]

    # ---------------------------------------------------------------- internals

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _hide(self, kind: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1  # _count, inlined: this runs once per finding
        return marker(kind)

    def _random_under_hint(self, name: str, value: str) -> bool:
        """A random-looking value under a name that hints at a secret without being one (TOKEN_ID=...)."""
        return _HINT_RE.search(name) is not None and looks_random(value.strip().strip("'\""))

    def _scrub_item(self, key: Any, value: Any) -> Any:
        # Only identifier-like keys: a package map's "google-auth" is not a secret's name.
        if isinstance(key, str) and key.isidentifier():
            if is_secret_name(key):
                kind = _named_kind(key)
                if isinstance(value, str) and not _is_harmless_value(value) and not _VERSION.fullmatch(value):
                    return self._hide(kind)
                if isinstance(value, list) and all(isinstance(v, str) for v in value):
                    return [v if _is_harmless_value(v) else self._hide(kind) for v in value]
            elif isinstance(value, str) and self._random_under_hint(key, value):
                return self._hide(_named_kind(key))
        return self.scrub(value)

    def _hide_private_keys(self, text: str, starts_inside: bool) -> str:
        spans = _private_key_spans(text, starts_inside)
        if not spans:
            return text
        pieces: list[str] = []
        done = 0
        for start, end in spans:
            if end <= start or start < done:
                continue
            pieces += [text[done:start], self._hide("private_key")]
            done = end
        pieces.append(text[done:])
        return "".join(pieces)

    def _undisguise(self, text: str) -> str:
        """Lines where zero-width or full-width characters hide a secret are replaced by their plain form."""
        pieces: list[str] = []
        done = pos = 0
        while (m := _DISGUISE.search(text, pos)) is not None:
            start = text.rfind("\n", done, m.start()) + 1 or done
            end = text.find("\n", m.end())
            end = len(text) if end < 0 else end
            line = text[start:end]
            plain = _undisguised(line)
            if Redactor(home=self.home)._redact_lines(plain) != plain:
                pieces += [text[done:start], plain]
                done = end
            pos = end + 1 if end < len(text) else end
            if pos >= len(text):
                break
        pieces.append(text[done:])
        return "".join(pieces)

    def _redact_lines(self, text: str) -> str:
        """The one-line rules, run only over regions of lines that hold a trigger."""
        pieces: list[str] = []
        done = 0
        for start, end in self._regions(text):
            pieces.append(text[done:start])
            pieces.append(self._redact_to_fixed_point(text[start:end]))
            done = end
        pieces.append(text[done:])
        return "".join(pieces)

    def _regions(self, text: str) -> Iterator[tuple[int, int]]:
        """(start, end) of each run of adjacent lines that hold a trigger, in order."""
        # One byte per character, so offsets match; characters outside ASCII can start no trigger.
        folded = text.encode("ascii", "replace").lower()
        pos = 0
        while (m := self._trigger.search(folded, pos)) is not None:
            start = folded.rfind(b"\n", 0, m.start()) + 1
            quiet = self._quiet_line.search(folded, m.end())  # the next line without a trigger, found in one pass
            end = quiet.start() - 1 if quiet is not None else len(folded)
            yield start, end
            pos = end + 1

    def _redact_to_fixed_point(self, text: str) -> str:
        """A changed text is scanned again, and redaction must be idempotent: hiding a token glued to
        the end of another (`dapi...` then `glpat-...`) puts a marker where the first one needed a word
        to end, and a shorter text can bring a key within reach of the `wandb` or `curl` before it.
        Nothing else can change what a second pass finds (every rule ignores a marker and the text
        right after one), so only then is the text scanned again; the lines that a second pass still
        changes are scanned until they settle."""
        self._glued = False
        once = self._redact(text, 1)
        if once == text or not (self._glued or _WITHIN_REACH.search(text)):
            return once
        twice = self._redact(once, 1)
        if twice == once:
            return once
        lines, before = twice.split("\n"), once.split("\n")
        if len(lines) != len(before):  # cannot happen (no rule crosses a line end); settle everything
            return self._settle_line(twice, _MAX_PASSES - 2)
        return "\n".join(
            self._settle_line(new, _MAX_PASSES - 2) if new != old else new
            for new, old in zip(lines, before, strict=True)
        )

    def _settle_line(self, line: str, passes: int) -> str:
        for _ in range(passes):
            redacted = self._redact(line, 1)
            if redacted == line:
                break
            line = redacted
        return line

    def _redact(self, text: str, depth: int) -> str:
        """All one-line rules over `text`; declined matches rescan their parts one level deeper."""
        if depth >= _MAX_DEPTH:
            self._glued = True  # rare: not worth telling apart
            return _shape_only().sub(lambda m: self._hide(shape_of(m)), text)
        pattern = self._pattern
        groups: list[str] = []
        pieces: list[str] = []
        pos = 0
        while (m := pattern.search(text, pos)) is not None:
            replacement, end = self._replace(m, depth)
            pieces.append(text[pos : m.start()])
            pieces.append(replacement)
            pos = end
            if len(pieces) >= _JOIN_EVERY:
                groups.append("".join(pieces))
                pieces = []
        if not groups and not pieces:
            return text
        pieces.append(text[pos:])
        groups.append("".join(pieces))
        return "".join(groups)

    def _replace(self, m: re.Match[str], depth: int) -> tuple[str, int]:
        """(what replaces the match, where scanning goes on): usually the match's end; a list, a
        YAML line or a flag's further values run on past it."""
        group = m.lastgroup
        if group is None:
            if _HINT_START.match(m.string, m.start()) is None:
                if m.start() and m.string[m.start() - 1] in _TOKEN_CHARS:
                    self._glued = True
                return self._hide(shape_of(m)), m.end()
            return self._replace_named(m, depth)
        rule = self._rule_of_group[group]
        text, (val_start, val_end) = m.string, m.span(group)
        hidden_already = (
            _LEADING_MARKER.match(text, val_start, val_end) if text[val_start : val_start + 1] in "<'\"" else None
        )
        if hidden_already is not None and hidden_already.end() < val_end:
            # a value that starts with a marker is hidden already up to the marker's end: what follows is
            # scanned on its own (a token glued to the marker is not part of it)
            return self._rescan(text[m.start() : val_start], depth + 1) + text[val_start : hidden_already.end()], (
                hidden_already.end()
            )
        if rule in _ALWAYS_SECRET_BY_SHAPE:  # the most common findings (a header, a bearer token) in one step
            return text[m.start() : val_start] + self._hide_value(
                text[val_start:val_end], _ALWAYS_SECRET[rule]
            ), val_end
        if rule == "home_path":
            self._count("home_path")
            return "~", m.end()
        if rule == "other_home":
            self._count("home_path")
            return m.string[m.start() : m.start(group)] + "<user>", m.end()
        pre, val = text[m.start() : val_start], text[val_start:val_end]
        secret, kind = self._judge(m, rule, group, val)
        if not secret:
            # the value is scanned again as part of the text that follows
            return self._rescan(pre, depth + 1), val_start
        if rule == "flag":  # a flag's name may hold a token too (as any name kept before a value)
            return self._hide_flag_values(m, self._rescan_name(pre), val, kind)
        hidden = self._hide_value(val, kind, by_shape=rule not in ("url_password", "wandb_key"))
        if rule in ("wandb_key", "url_password"):  # what comes before the value may hold a secret too
            return self._rescan(pre, depth + 1) + hidden, val_end
        if rule == "user_password":  # the user may be a token (curl -u TOKEN:x-oauth-basic)
            return self._rescan_name(pre) + hidden, val_end
        return pre + hidden, val_end

    def _replace_named(self, m: re.Match[str], depth: int) -> tuple[str, int]:
        """NAME=value, NAME: value or 'NAME': value; the match runs from a hint word to the operator."""
        text, start, op_end = m.string, m.start(), m.end()
        pre = text[start:op_end]
        stem = pre.rstrip(" \t:=")
        if pre[-1] == ":" and stem[-1:] in ("'", '"'):
            rule, name_end, quote = "quoted_key", start + len(stem) - 1, stem[-1]
        else:
            rule, name_end, quote = ("assignment" if pre[-1] == "=" else "yaml_key"), start + len(stem), ""
        # the match starts inside the name, at its hint word: the name's start lies before it
        head = text[max(0, start - _NAME_LOOKBACK) : start]
        name_start = start - (len(head) - len(head.rstrip(_NAME_CHARS)))
        name = _plain_name(text[name_start:name_end])
        if quote and (name_start < 1 or text[name_start - 1] != quote):
            name = ""
        value = _BLANKS_AND_VALUE.match(text, op_end)
        if value is None:
            return self._rescan_name(pre), op_end
        pos = value.start(2)
        if pos > op_end and rule == "assignment" and name_end == op_end - 1:
            return self._rescan_name(pre), op_end  # "HF_TOKEN= x" assigns nothing: blanks only where they precede "="
        val = value.group(2)
        if rule == "quoted_key" and val[:1] not in "['\"":
            return self._rescan_name(pre), op_end
        at_line_start = rule == "yaml_key" and _starts_line(text, name_start)
        if rule == "yaml_key" and not (name.isupper() or at_line_start):
            return self._rescan_name(pre), op_end
        secret, kind = self._judge_name(name, val, hinted=True)
        if not secret:
            return self._rescan_name(pre), op_end
        lead = self._rescan_name(pre) + text[op_end:pos]  # the name may hold a token (token_ghp_...=x)
        if val == "[":
            hidden, end = self._hide_list(text, value.end(), kind)
            return lead + hidden, end
        if at_line_start and val[:1] not in "'\"":  # a YAML value runs to the end of its line
            line_end = text.find("\n", pos)
            line_end = len(text) if line_end < 0 else line_end
            rest = text[pos:line_end].rstrip()
            return lead + self._hide_value(rest, kind), pos + len(rest)
        return lead + self._hide_value(val, kind), value.end()

    def _rescan_name(self, part: str) -> str:
        """A name (and its operator) whose value was not hidden: only a token shape can hide in it."""
        return part if len(part) < _SHORTEST_SHAPE else self._redact(part, _MAX_DEPTH)

    def _rescan(self, part: str, depth: int) -> str:
        """A declined match's part, scanned again on its own (most parts hold no trigger at all)."""
        if self._trigger.search(part.encode("ascii", "replace").lower()) is None:
            return part
        return self._redact(part, depth)

    def _judge(self, m: re.Match[str], rule: str, group: str, val: str) -> tuple[bool, str]:
        """(whether the value is secret, the kind to report if it has no token shape)."""
        if rule in _ALWAYS_SECRET:
            return True, _ALWAYS_SECRET[rule]
        if rule == "url_token":
            return shape_kind(val) is not None or looks_random(val) or _looks_like_token(val), "url_token"
        if rule == "auth_header":
            return True, "bearer_token" if "bearer" in m.group(0).lower() else "auth_header"
        name = m.group(group[:-3] + "name")
        if rule == "user_password":
            if val.isdigit():  # docker -u 1000:1000 is a uid and a gid
                return False, ""
            if name in _USER_FLAGS_NEEDING_CURL and not _curl_before(m.string, m.start()):
                return False, ""
            return True, "secret_arg"
        # flag
        return is_secret_flag(name) or (
            _HINT_RE.search(name) is not None and looks_random(_unquoted(val))
        ), "secret_arg"

    @staticmethod
    def _judge_name(name: str, val: str, hinted: bool = False) -> tuple[bool, str]:
        """Whether the value of a variable or key called `name` is secret, and its kind (`hinted`: the
        name is known to hold a hint word)."""
        if not name or (not hinted and _HINT_RE.search(name) is None):
            return False, ""
        if is_secret_name(name):
            return True, _named_kind(name)
        return looks_random(_unquoted(val)), _named_kind(name)

    def _hide_list(self, text: str, pos: int, kind: str) -> tuple[str, int]:
        """The items of a list opened just before `pos`, each hidden: (the text up to where the list ends, that end)."""
        pieces = ["["]
        for _ in range(_MAX_LIST_ITEMS):
            item = _LIST_ITEM.match(text, pos)
            if item is None:
                break
            lead, quoted, bare, trail, sep = item.groups()
            value = quoted or bare.rstrip(" \t")
            trail = (bare[len(value) :] if bare else "") + trail + (sep or "")
            pieces += [lead, self._hide_value(value, kind), trail]
            pos = item.end()
            if sep != ",":
                break
        return "".join(pieces), pos

    def _hide_flag_values(self, m: re.Match[str], pre: str, val: str, kind: str) -> tuple[str, int]:
        """A secret flag's value and the values after it: all of them up to a following flag, or, at
        the end of a command, those that look like values (vLLM's --api-key takes several)."""
        text = m.string
        pieces = [pre, self._hide_value(val, kind)]
        pos = m.end()
        more = _MORE_VALUES.match(text, pos)
        words = _NEXT_VALUE.findall(more.group(0)) if more and more.group(0) else []
        after = text[more.end() if more else pos : (more.end() if more else pos) + 66].lstrip(" \t")
        flag_follows = after[:1] == "-" and after[1:2] not in ("", " ", "\t")
        for blank, word in words:
            if not (flag_follows or _looks_like_value(_unquoted(word))):
                break
            pieces += [blank, self._hide_value(word, kind)]
            pos += len(blank) + len(word)
        return "".join(pieces), pos

    def _hide_value(self, val: str, kind: str, by_shape: bool = True) -> str:
        quote = val[0] if val[:1] in ("'", '"') and len(val) >= 2 and val[-1] == val[0] else ""
        inner = val[1:-1] if quote else val
        found = _value_class(inner) if len(inner) <= 256 else _value_class.__wrapped__(inner)
        if found is None:
            return val
        return f"{quote}{self._hide(found if found and by_shape else kind)}{quote}"


@lru_cache(maxsize=4096)
def _value_class(value: str) -> str | None:
    """None for a value to keep (harmless, or starting with a marker: hidden already); else its
    token kind, or "" when it has no known shape."""
    if _is_harmless_value(value) or _MARKER.match(value):
        return None
    return shape_kind(value) or ""


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


_KEY_LIKE_WORD = lazy_compile(r"[A-Za-z0-9_.+=~-]{2,4096}")


def _looks_like_value(word: str) -> bool:
    """A further word after a secret flag's value that is another key, not prose or a path: made of
    token characters, with a digit, mixed case, or 16 characters or more."""
    if not _KEY_LIKE_WORD.fullmatch(word) or word.endswith((".", ",")):
        return False
    return any(c.isdigit() for c in word) or not (word.islower() or word.isupper()) or len(word) >= 16


def _looks_like_token(value: str) -> bool:
    """A user part of a URL that is a token rather than a name: long, or mixing letters and digits."""
    letters = sum(c.isalpha() for c in value)
    digits = sum(c.isdigit() for c in value)
    return len(value) >= 32 or (len(value) >= 16 and letters > 0 and digits > 0)


def _curl_before(text: str, start: int) -> bool:
    floor = max(0, start - 512)
    line_start = text.rfind("\n", floor, start) + 1 or floor
    return text.find("curl", line_start, start) >= 0


@lru_cache(maxsize=1024)
def _named_kind(name: str) -> str:
    """AWS secret keys by name; lower-case names are logged arguments, upper-case ones variables."""
    if "".join(_components(name)).endswith("secretaccesskey"):
        return "aws_secret_key"
    return "secret_arg" if name.islower() else "secret_env"


# --------------------------------------------------------------------------- summaries and cuts


def markers_in(obj: Any) -> dict[str, int]:
    """How many markers of each kind the strings of a JSON-like structure hold."""
    counts: dict[str, int] = {}
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "<redacted:" in item:
                for kind in _MARKER_KIND.findall(item):
                    counts[kind] = counts.get(kind, 0) + 1
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return counts


def summary_of(payload: Any, redactor: Redactor) -> list[dict[str, object]]:
    """What a payload's redaction hid: the markers it holds, whoever made them (a text redacted before
    it was cut, by another Redactor, counts too), and the home paths `redactor` shortened."""
    counts = markers_in(payload)
    if redactor.counts.get("home_path"):
        counts["home_path"] = redactor.counts["home_path"]
    return [{"kind": k, "count": n} for k, n in sorted(counts.items())]


CUT_NOTE = "[... vllm-bug: {n:,} characters cut ...]"
_CONTEXT_MARGIN = 8192  # what a cut inside a line redacts beyond the cut: more than any one match spans


def cut_text(
    text: str,
    limit: int,
    keep: str = "both",
    redactor: Redactor | None = None,
    note: str = CUT_NOTE,
    *,
    starts_cut: bool = False,
    ends_cut: bool = False,
) -> str:
    """`text` in about `limit` characters (plus a note when `keep` is "both"), never cutting a secret in half.

    keep: "head" (the start), "tail" (the end) or "both" (start and end, the middle cut out). Cuts
    fall at line ends, so each kept line is whole and every one-line rule still sees it later; when
    a cut must fall inside a line, the text around it is redacted first (by `redactor`, or a new
    Redactor) and cut between words. The two ends of a key block cut in half are hidden by the key
    rules themselves (a BEGIN without its END, an END without its BEGIN).

    `starts_cut` / `ends_cut`: `text` itself was cut from something longer there, so a word at that
    edge may be part of a secret: it is never kept.
    """
    if len(text) <= limit and not (starts_cut or ends_cut):
        return text
    if keep == "head":
        return _cut_head(text, limit, redactor, ends_cut)
    if keep == "tail":
        return _cut_tail(text, limit, redactor, starts_cut)
    head = _cut_head(text, limit // 2, redactor, False)
    tail = _cut_tail(text, limit - limit // 2, redactor, False)
    omitted = max(0, len(text) - len(head) - len(tail))
    return f"{head}\n{note.format(n=omitted)}\n{tail}"


def redacted_ends(text: str, head: int, tail: int, redactor: Redactor, note: str) -> str:
    """`text` redacted; past `head` + `tail` characters, only its first `head` and last `tail` (about:
    cuts fall at line ends) are kept, each redacted, joined by `note` on a line of its own.

    Only what is kept is redacted, so the cost follows what is kept, not the input's size. A cut
    inside a line is made after the text around it is redacted (see cut_text), and a private key
    block left open in the part cut out stays hidden where the tail starts inside it.
    """
    if len(text) <= head + tail:
        return redactor.text(text)
    first, first_redacted = _head_part(text, head, redactor, False)
    last, last_redacted = _tail_part(text, tail, redactor, False)
    if not first_redacted:
        first = redactor.text(first)
    if not last_redacted:
        last = redactor.text(last, starts_inside_private_key=_key_block_open(text, len(text) - len(last)))
    return f"{first}\n{note}\n{last}"


def _key_block_open(text: str, pos: int) -> bool:
    """Whether the last private key marker before `pos` is a BEGIN (its block may run on past `pos`)."""
    found = text.rfind("PRIVATE KEY", 0, pos)
    if found < 0:
        return False
    markers = list(_KEY_MARKER.finditer(text, max(0, found - 80), min(pos, found + 24)))
    return bool(markers) and markers[-1].group(1) == "BEGIN"


def _cut_head(text: str, limit: int, redactor: Redactor | None, ends_cut: bool) -> str:
    return _head_part(text, limit, redactor, ends_cut)[0]


def _head_part(text: str, limit: int, redactor: Redactor | None, ends_cut: bool) -> tuple[str, bool]:
    """The head of `text` in about `limit` characters, and whether it was redacted (a cut inside a line)."""
    cut = text.rfind("\n", 0, limit + 1)
    if cut >= limit // 2:
        return text[:cut], False
    end = limit + _CONTEXT_MARGIN
    window = (redactor or Redactor()).text(text[:end])
    if end < len(text) or ends_cut:  # the window ends inside a longer text: its last word may be part of a secret
        window = window[: len(window) - _last_word_length(window)]
    if len(window) <= limit:
        return window, True
    space = window.rfind(" ", 0, limit + 1)
    return window[: space if space >= limit // 2 else _outside_marker(window, limit)], True


def _cut_tail(text: str, limit: int, redactor: Redactor | None, starts_cut: bool) -> str:
    return _tail_part(text, limit, redactor, starts_cut)[0]


def _tail_part(text: str, limit: int, redactor: Redactor | None, starts_cut: bool) -> tuple[str, bool]:
    """The tail of `text` in about `limit` characters, and whether it was redacted (a cut inside a line)."""
    start = max(0, len(text) - limit)
    line_start = text.find("\n", max(0, start - 1), start + limit // 2)
    if line_start >= 0:
        return text[line_start + 1 :], False
    begin = max(0, start - _CONTEXT_MARGIN)
    window = (redactor or Redactor()).text(text[begin:])
    if begin > 0 or starts_cut:  # the window starts inside a longer text: its first word may be part of a secret
        window = window[_first_word_length(window) :]
    if len(window) <= limit:
        return window, True
    from_ = len(window) - limit
    space = window.find(" ", from_, from_ + limit // 2)
    return (window[space + 1 :] if space >= 0 else window[_outside_marker(window, from_, forward=True) :]), True


_MAX_EDGE_WORD = 4096  # a run of non-blanks longer than this at a cut loses only this much


def _last_word_length(text: str) -> int:
    """The length of the word that ends `text` (0 after a blank), at most _MAX_EDGE_WORD. Read from
    the end: a search for it from the start would try every position of a text without blanks."""
    edge = text[-_MAX_EDGE_WORD:]
    return 0 if not edge or edge[-1].isspace() else len(edge.rsplit(None, 1)[-1])


def _first_word_length(text: str) -> int:
    """The length of the word that starts `text` (0 before a blank), at most _MAX_EDGE_WORD."""
    edge = text[:_MAX_EDGE_WORD]
    return 0 if not edge or edge[0].isspace() else len(edge.split(None, 1)[0])


def _outside_marker(text: str, pos: int, forward: bool = False) -> int:
    """`pos`, moved out of the marker it falls inside, if any: to its start, or past its end when `forward`."""
    opening = text.rfind("<redacted:", max(0, pos - 80), pos)
    closing = text.find(">", opening) if opening >= 0 else -1
    if opening >= 0 and closing >= pos:
        return closing + 1 if forward else opening
    return pos
