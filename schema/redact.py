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

Three kinds of evidence mark a secret:
  * its shape (a Hugging Face, OpenAI, GitHub ... token, an AWS key id, a JWT, a PEM key block);
  * its context (the value after `--api-key`, after `HF_TOKEN=`, after `Authorization: Bearer`,
    the password in `scheme://user:password@host`, `'api_key': '...'` in a logged dict);
  * its name, for environment variables and dict keys (see is_secret_name).

Everything else is kept as it is: a false positive hides what a maintainer needs to see.
Markers are never matched again, so redacting twice changes nothing and counts nothing twice.
The user's home directory becomes `~` (kind home_path): not a secret, just privacy.

Pattern shapes follow the gitleaks rules (MIT licence), loosened where real tokens vary in length.
Speed: one combined regex, run only over lines that hold a trigger word; a 1 MiB vLLM log takes
about 0.03-0.05 s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

# Kinds of redaction, as they appear in markers and in summary().
SHAPE_KINDS = (
    "hf_token",
    "anthropic_key",
    "openai_key",
    "github_token",
    "aws_access_key_id",
    "jwt",
    "slack_token",
    "google_api_key",
    "nvidia_api_key",
    "pypi_token",
)
CONTEXT_KINDS = (
    "private_key",
    "url_password",
    "bearer_token",
    "auth_header",
    "aws_secret_key",
    "secret_arg",  # the value of a secret-looking command-line flag or logged argument
    "secret_env",  # the value of a secret-named variable (environment, KEY=value, dict key)
)
KINDS = SHAPE_KINDS + CONTEXT_KINDS + ("home_path",)

_MARKER = re.compile(r"<redacted:[a-z_]+>")


def marker(kind: str) -> str:
    return f"<redacted:{kind}>"


# --------------------------------------------------------------------------- names

# A name is cut into lower-case components at camelCase humps and at any non-alphanumeric.
_CAMEL_HUMP = re.compile(r"([a-z0-9])([A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")

# A component that marks a secret wherever it stands in the name.
_SECRET_WORD = re.compile(
    r"[a-z0-9]*(?:secrets?|passw(?:or)?ds?|pwd|credentials?|creds|cookies?|signatures?|auth)"
    r"|oauth2?|authorization|authn|authz|sessionid|sessionkey"
)
# Words that mark a secret only at the end of a name (or, for keys, before "id"): API_KEY and
# ACCESS_KEY_ID, but not KEY_VALUE_..., TOKEN_IDS, NCCL_IB_PKEY or SSL_KEYFILE; DB_PASS but not a
# compiler pass.
_KEY_WORDS = frozenset({"key", "keys", "apikey", "apikeys", "accesskey", "secretkey", "privatekey"})
_TAIL_WORD = re.compile(r"[a-z0-9]*token|session|pass")
# Vocabulary tokens of a language model, which logs print next to the word "token": eos_token='</s>'.
_MODEL_TOKEN_WORDS = frozenset(
    {
        "bos", "eos", "pad", "unk", "sep", "cls", "mask", "eot", "eom", "start", "end", "stop",
        "special", "added", "image", "video", "audio", "vision", "placeholder", "sink", "tool",
        "think", "thinking", "reasoning", "decoder", "encoder", "prompt", "output", "input",
        "first", "last", "next", "prev", "new", "max", "min", "num", "total", "default", "chat",
    }
)
# Words that end in "token" without being one: the tiktoken package, sub-word tokens.
_NOT_SECRET_TOKEN_WORDS = frozenset({"tiktoken", "subtoken", "detoken", "pretoken", "multitoken", "maxtoken", "mintoken"})
# A name ending in one of these describes a setting, not a secret: RAY_AUTH_MODE, HF_TOKEN_PATH.
_SETTING_SUFFIXES = frozenset(
    {
        "mode", "type", "method", "enable", "enabled", "disable", "disabled", "level", "timeout",
        "backend", "provider", "policy", "path", "file", "dir", "size", "limit", "threshold",
        "count", "len", "length", "interval", "id", "ids",
    }
)
# Shell variables that hold the working directory, not a password.
_NOT_SECRET_NAMES = frozenset({"pwd", "oldpwd"})
# Values that carry no secret even under a secret name: unset, masked, or a switch.
_HARMLESS_VALUES = frozenset(
    {"", "none", "null", "nil", "<none>", "0", "1", "true", "false", "yes", "no", "on", "off"}
)


def _components(name: str) -> list[str]:
    return [c for c in _NON_ALNUM.split(_CAMEL_HUMP.sub(r"\1_\2", name).lower()) if c]


# A key that is a lookup key, not a credential: cache_key, sort_key, public_key, kv_key.
_PLAIN_KEY_QUALIFIERS = frozenset(
    {
        "cache", "sort", "hash", "lookup", "partition", "primary", "foreign", "dict", "map", "row",
        "column", "group", "prefix", "kv", "routing", "shard", "index", "unique", "request", "block",
        "page", "layer", "query", "value", "model", "config", "registry", "metric", "label", "entry",
        "item", "node", "peer", "device", "prompt", "public", "pub", "lora", "adapter", "schema",
    }
)


def _is_secret_component(parts: list[str], i: int) -> bool:
    part = parts[i]
    is_last = i == len(parts) - 1
    if part in _KEY_WORDS:
        if i > 0 and parts[i - 1] in _PLAIN_KEY_QUALIFIERS:
            return False
        return is_last or parts[i + 1] in ("id", "ids")
    if _TAIL_WORD.fullmatch(part):
        if part in _NOT_SECRET_TOKEN_WORDS:
            return False
        return is_last and (i == 0 or parts[i - 1] not in _MODEL_TOKEN_WORDS)
    return _SECRET_WORD.fullmatch(part) is not None


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a variable or key called `name` holds a secret (HF_TOKEN, api_key, aws_secret_access_key)."""
    parts = _components(name)
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
    parts = _components(flag)
    return bool(parts) and _is_secret_component(parts, len(parts) - 1)


# A version number ("2.40.0", "0.9.0rc1", "2.9.0+cu128"): in a package map, google_auth's value.
_VERSION = re.compile(r"v?\d+(?:\.\d+)+(?:[a-z]+\d*)?(?:[.+-][A-Za-z0-9]{1,16}){0,3}")


def _is_harmless_value(value: str) -> bool:
    stripped = value.strip()
    if stripped.lower() in _HARMLESS_VALUES or _MARKER.fullmatch(stripped):
        return True
    return set(stripped) == {"*"}  # vLLM masks api_key and hf_token as '***' itself


# --------------------------------------------------------------------------- patterns
#
# All rules are alternatives of one regex. Each alternative starts with a literal character or a
# character class and checks what precedes it with a lookbehind placed after that first character:
# the regex engine then rejects most alternatives at most positions after one comparison.

_A = "A-Za-z0-9"


def _starting(literal: str, not_before: str) -> str:
    """`literal` (fixed width), not preceded by a character of class `not_before`."""
    return f"{literal}(?<![{not_before}]{literal})"


# (kind, pattern): whole-value token shapes.
_SHAPES: list[tuple[str, str]] = [
    # Distinctive prefixes count even when glued to a preceding word; `sk-` and `ey` (common in
    # words) must start one. Not after ">" either, so that a second pass finds nothing new.
    ("hf_token", f"hf_[{_A}]{{30,}}"),
    ("hf_token", f"api_org_[{_A}]{{30,}}"),
    ("anthropic_key", f"sk-ant-[{_A}_-]{{20,}}"),
    ("openai_key", f"sk-(?:proj|svcacct|admin)-(?=[{_A}_-]*[0-9])[{_A}_-]{{20,}}"),
    ("openai_key", _starting("sk-", _A + "_>-") + f"(?=[{_A}_-]*[0-9])[{_A}_-]{{20,}}"),
    ("github_token", f"gh[pousr]_[{_A}]{{30,}}"),
    ("github_token", f"github_pat_[{_A}_]{{30,}}"),
    ("aws_access_key_id", "A(?:KIA|SIA|BIA|CCA|3T[A-Z0-9])[A-Z0-9]{16}"),
    ("jwt", _starting("ey", _A + "_>-") + f"[{_A}_-]{{15,}}\\.ey[{_A}_-]{{15,}}\\.[{_A}_-]*"),
    ("slack_token", f"xox[abposr]-[{_A}-]{{10,}}"),
    ("slack_token", f"xapp-[{_A}-]{{10,}}"),
    ("google_api_key", f"AIza[{_A}_-]{{35}}"),
    ("nvidia_api_key", f"nvapi-[{_A}_-]{{20,}}"),
    ("pypi_token", f"pypi-AgE[{_A}_-]{{40,}}"),
]

# The only rule that spans lines; it runs first, on its own (its literal start makes it cheap).
# A block cut short by a log's truncation is hidden up to the first line that is not key material.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----"
    r"(?:[\s\S]*?-----END[A-Z0-9 ]*PRIVATE KEY-----|[A-Za-z0-9+/=\s:,_.-]*)"
)

# Words that a secret-bearing name or flag contains; the callbacks then apply the exact rule.
_HINT = r"(?i:token|secret|passw|pwd|pass|cred|cookie|auth|session|signature|key)"
_QUOTED = r"\"[^\"\n]*\"|'[^'\n]*'"
_LIST = rf"\[[ \t]*(?:{_QUOTED})(?:[ \t]*,[ \t]*(?:{_QUOTED}))*[ \t]*,?[ \t]*\]"
_LIST_RE = re.compile(_LIST)
_BARE = r"(?!=)[^\s'\",;)\]}=]+(?:=+(?![=\w]))?"  # base64 padding, but not the "=" of a NAME=value

# (rule, pattern): the secret is the group named {g}_val; what comes before it in the match is
# kept. No rule crosses a line end.
_CONTEXTS: list[tuple[str, str]] = [
    # scheme://user:PASSWORD@host (the scheme lies before the match and is kept)
    ("url_password", r"://[^\s/:@'\"<>]*:(?P<{g}_val>[^\s/@'\"]+)(?=@)"),
    # Authorization: Bearer X; X-Api-Key: X; auth-token / access-token headers (never right after a
    # marker: a second pass must find nothing new)
    (
        "auth_header",
        _starting("[Aa]", r"\w>") + r"(?i:uthorization[\"']?[ \t]*[:=][ \t]*[\"']?"
        r"(?:(?:bearer|basic|token|digest|negotiate)[ \t]+)?"
        r"|(?:pi-key|uth-token|ccess-token)[\"']?[ \t]*:[ \t]*[\"']?)(?P<{g}_val>[^\s\"',;]+)",
    ),
    # Cookie: and Set-Cookie: hide the rest of the line
    ("cookie_header", _starting("[Cc]", r"\w>") + r"(?i:ookie)[\"']?[ \t]*:[ \t]*(?P<{g}_val>[^\s\"'][^\r\n\"']*)"),
    (
        "bearer_token",
        _starting("[Bb]", r"\w>") + r"(?i:earer)[ \t]+(?P<{g}_val>(?=[A-Za-z0-9._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{8,})",
    ),
    # --api-key X, --hf-token=X (not right after a marker, so that a second pass finds nothing new)
    (
        "flag",
        _starting("-", r"\w>-") + rf"-?(?P<{{g}}_name>(?=[\w-]*?{_HINT})[{_A}][\w-]*)(?:=|[ \t]+)"
        rf"(?P<{{g}}_val>{_QUOTED}|(?!--)[^\s'\"]+)",
    ),
    # NAME=value, NAME='value', NAME=['a', 'b']; the name before "=" is checked by the callback
    # ("HF_TOKEN= x" assigns nothing: blanks may follow "=" only where blanks precede it)
    ("assignment", rf"=(?<![=!<>:+*/%&|^-]=)(?:(?<=[ \t]=)[ \t]+)?(?P<{{g}}_val>{_LIST}|{_QUOTED}|{_BARE})"),
    # NAME: value, as in a YAML environment section; only upper-case names (checked by the callback)
    ("yaml_key", rf":(?<=[A-Z0-9_]:)[ \t]+(?P<{{g}}_val>{_QUOTED}|{_BARE})"),
    # 'name': 'value' in a logged dict or JSON; the quoted name is checked by the callback
    ("quoted_key", rf"[\"'][ \t]*:[ \t]*(?P<{{g}}_val>{_LIST}|{_QUOTED})"),
]

_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_NAME_LOOKBACK = 200
_HINT_RE = re.compile(_HINT)


def _name_before(text: str, end: int, quote: str = "") -> str:
    """The identifier that ends at `end` (after blanks; or opened by `quote` when one is given), or ""."""
    if not quote:
        while end > 0 and text[end - 1] in " \t":
            end -= 1
    start, floor = end, max(0, end - _NAME_LOOKBACK)
    while start > floor and text[start - 1] in _NAME_CHARS:
        start -= 1
    if quote and (start < 1 or text[start - 1] != quote):
        return ""
    name = text[start:end].lstrip("-")
    return name if name[:1].isalpha() or name[:1] == "_" else ""


def _alternation(rules: list[tuple[str, str]], home: str | None = None) -> tuple[re.Pattern[str], list[str]]:
    """One regex for `rules`; alternative i ends with the empty group r{i}, so m.lastgroup names it."""
    if home:
        # Not next to "~", ">" or "<" either (what a replacement leaves), so a second pass finds nothing new.
        rules = rules + [("home_path", _starting(re.escape(home), r"\w.~>-") + r"(?![\w.<-])")]
    parts = [pattern.replace("{g}", f"r{i}") + f"(?P<r{i}>)" for i, (_, pattern) in enumerate(rules)]
    return re.compile("|".join(parts)), [rule for rule, _ in rules]


@lru_cache(maxsize=1)
def _shape_only() -> tuple[re.Pattern[str], list[str]]:
    return _alternation(_SHAPES)


@lru_cache(maxsize=8)
def _combined(home: str | None) -> tuple[re.Pattern[str], list[str]]:
    # Context rules come first: at one position, `HF_TOKEN=hf_...` is an assignment whose value
    # is then classified by shape.
    return _alternation(_CONTEXTS + _SHAPES, home)


# Lower-case words and prefixes of which every redaction needs at least one on its line: the
# hints of secret names, header words, the starts of token shapes, "://" and the home path. Lines
# without any are left alone, which makes large logs cheap.
_TRIGGERS = (
    rb"token(?!s)|secret|pass|pwd|cred|cookie|auth|session|signature|key|bearer"
    rb"|hf_|api_org_|sk-|gh[pousr]_|github_pat_|akia|asia|abia|acca|a3t|\.ey|xox|xapp|aiza|nvapi-|pypi-|://"
)


@lru_cache(maxsize=8)
def _trigger(home: str | None) -> re.Pattern[bytes]:
    extra = b"|" + re.escape(home.encode("ascii", "replace").lower()) if home else b""
    return re.compile(_TRIGGERS + extra)


def _lines_with(trigger: re.Pattern[bytes], text: str) -> list[tuple[int, int]]:
    """(start, end) of each line of `text` holding a trigger, in order."""
    # One byte per character, so offsets match; characters outside ASCII can start no trigger.
    folded = text.encode("ascii", "replace").lower()
    spans: list[tuple[int, int]] = []
    pos = 0
    while (m := trigger.search(folded, pos)) is not None:
        start = folded.rfind(b"\n", 0, m.start()) + 1
        end = folded.find(b"\n", m.end())
        end = len(folded) if end < 0 else end
        spans.append((start, end))
        pos = end
    return spans


def _rule_of(m: re.Match[str], rules: list[str]) -> tuple[str, str]:
    group = m.lastgroup or "r0"
    return rules[int(group[1:])], group


def shape_kind(value: str) -> str | None:
    """The token kind that `value` is, as a whole, or None."""
    pattern, rules = _shape_only()
    m = pattern.fullmatch(value.strip())
    return _rule_of(m, rules)[0] if m else None


def _usable_home(home: str | None) -> str | None:
    """The home path worth hiding: at least two levels deep (/home/alice), so never /, /root or /tmp."""
    if not home:
        return None
    home = home.rstrip("/")
    if not home.startswith("/") or home.count("/") < 2:
        return None
    return home


_SHAPE_KINDS_SET = frozenset(kind for kind, _ in _SHAPES)
_DEFAULT = object()
# Past this depth a declined match's value is only checked for token shapes (no recursion).
_MAX_DEPTH = 4
_MAX_PASSES = 4


class Redactor:
    def __init__(self, home: Any = _DEFAULT) -> None:
        """`home`: the directory shown as `~`; default the current user's, None to keep paths."""
        if home is _DEFAULT:
            home = os.path.expanduser("~")
        self.home = _usable_home(home)
        self._pattern, self._rules = _combined(self.home)
        self._trigger = _trigger(self.home)
        self.counts: dict[str, int] = {}

    # ---------------------------------------------------------------- public API

    def text(self, value: str) -> str:
        """`value` with every secret (and the home directory) replaced by a marker."""
        if not value:
            return value
        return self._redact_lines(value)

    def value(self, name: str, value: str) -> str:
        """One environment variable's value: hidden whole if the name is secret, else scanned."""
        if is_secret_name(name) and not _is_harmless_value(value):
            return self._hide("secret_env")
        return self.text(value)

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        return {name: self.value(name, value) for name, value in env.items()}

    def argv(self, argv: Sequence[str]) -> list[str]:
        """A command line with the argument after each secret flag hidden (`--api-key X`)."""
        out: list[str] = []
        follows_secret_flag = False
        for item in argv:
            if follows_secret_flag and not item.startswith("--") and not _is_harmless_value(item):
                out.append(self._hide(shape_kind(item) or "secret_arg"))
            else:
                out.append(self.text(item))
            follows_secret_flag = item.startswith("-") and "=" not in item and is_secret_flag(item)
        return out

    def scrub(self, obj: Any) -> Any:
        """A copy of a JSON-like structure with every string redacted.

        Values under secret-named keys (`{"api_key": "..."}`) are hidden whole.
        """
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {self.scrub(k): self._scrub_item(k, v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.scrub(v) for v in obj]
        return obj

    def summary(self) -> list[dict[str, object]]:
        return [{"kind": k, "count": n} for k, n in sorted(self.counts.items())]

    # ---------------------------------------------------------------- internals

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _hide(self, kind: str) -> str:
        self._count(kind)
        return marker(kind)

    def _scrub_item(self, key: Any, value: Any) -> Any:
        # Only identifier-like keys: a package map's "google-auth" is not a secret's name.
        if isinstance(key, str) and key.isidentifier() and is_secret_name(key):
            kind = _named_kind(key)
            if isinstance(value, str) and not _is_harmless_value(value) and not _VERSION.fullmatch(value):
                return self._hide(kind)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return [v if _is_harmless_value(v) else self._hide(kind) for v in value]
        return self.scrub(value)

    def _redact_lines(self, text: str) -> str:
        """Private-key blocks first (they span lines), then the one-line rules on lines with a trigger."""
        if "PRIVATE KEY-----" in text:
            text = _PRIVATE_KEY.sub(lambda m: self._hide("private_key"), text)
        pieces: list[str] = []
        done = 0
        for start, end in _lines_with(self._trigger, text):
            pieces.append(text[done:start])
            pieces.append(self._redact_to_fixed_point(text[start:end]))
            done = end
        pieces.append(text[done:])
        return "".join(pieces)

    def _redact_to_fixed_point(self, line: str) -> str:
        """A changed line is scanned again: hiding one value can turn what follows into a new
        `NAME=value` (as in `hf_...=TOKEN=x`), and redaction must be idempotent."""
        for _ in range(_MAX_PASSES):
            redacted = self._redact(line, 1)
            if redacted == line:
                break
            line = redacted
        return line

    def _redact(self, text: str, depth: int) -> str:
        """All one-line rules over `text`; declined matches rescan their parts one level deeper."""
        if depth >= _MAX_DEPTH:
            pattern, rules = _shape_only()
            return pattern.sub(lambda m: self._hide(_rule_of(m, rules)[0]), text)
        return self._pattern.sub(lambda m: self._replace(m, depth), text)

    def _replace(self, m: re.Match[str], depth: int) -> str:
        rule, group = _rule_of(m, self._rules)
        if rule == "home_path":
            self._count("home_path")
            return "~"
        if rule in _SHAPE_KINDS_SET:
            return self._hide(rule)
        val_start, val_end = m.span(f"{group}_val")
        pre, val, post = m.string[m.start() : val_start], m.group(f"{group}_val"), m.string[val_end : m.end()]
        secret, kind, by_shape = self._judge(m, rule, group, pre)
        if not secret:
            return self._rescan(pre, depth + 1) + self._rescan(val, depth + 1) + post
        return pre + self._hide_value(val, kind, by_shape) + post

    def _rescan(self, part: str, depth: int) -> str:
        """A declined match's part, scanned again on its own (most parts hold no trigger at all)."""
        if self._trigger.search(part.encode("ascii", "replace").lower()) is None:
            return part
        return self._redact(part, depth)

    def _judge(self, m: re.Match[str], rule: str, group: str, pre: str) -> tuple[bool, str, bool]:
        """(whether the value is secret, the kind to report if it has no token shape, classify by shape)."""
        if rule == "url_password":
            return True, "url_password", False
        if rule == "auth_header":
            return True, "bearer_token" if "bearer" in pre.lower() else "auth_header", True
        if rule == "cookie_header":
            return True, "auth_header", True
        if rule == "bearer_token":
            return True, "bearer_token", True
        if rule == "flag":
            return is_secret_flag(m.group(f"{group}_name")), "secret_arg", True
        if rule == "quoted_key":  # the match starts with the quote that closes the name
            name = _name_before(m.string, m.start(), quote=m.group(0)[0])
        else:  # assignment, yaml_key
            name = _name_before(m.string, m.start())
            if rule == "yaml_key" and not name.isupper():
                return False, "", True
        if not name or _HINT_RE.search(name) is None or not is_secret_name(name):
            return False, "", True
        return True, _named_kind(name), True

    def _hide_value(self, val: str, kind: str, by_shape: bool) -> str:
        if _LIST_RE.fullmatch(val):  # a logged list of quoted strings: hide each one
            return re.sub(_QUOTED, lambda q: self._hide_value(q.group(0), kind, by_shape), val)
        quote = val[0] if val[:1] in ("'", '"') and len(val) >= 2 and val[-1] == val[0] else ""
        inner = val[1:-1] if quote else val
        if _is_harmless_value(inner) or _MARKER.match(inner):  # a value that starts with a marker was hidden already
            return val
        found = shape_kind(inner) if by_shape else None
        return f"{quote}{self._hide(found or kind)}{quote}"


@lru_cache(maxsize=1024)
def _named_kind(name: str) -> str:
    """AWS secret keys by name; lower-case names are logged arguments, upper-case ones variables."""
    if "".join(_components(name)).endswith("secretaccesskey"):
        return "aws_secret_key"
    return "secret_arg" if name.islower() else "secret_env"
