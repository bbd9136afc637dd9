"""Redaction in every shape: token formats of the common secret scanners (each from a fake built here),
secret names the plain name rules missed, URLs, YAML, curl, PGP, disguised tokens, several values per flag."""

from __future__ import annotations

import random
import string

import pytest

from vllm_bug.schema.redact import Redactor, is_secret_flag, is_secret_name, looks_random, shape_kind

RNG = random.Random(8)
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
URLSAFE = ALNUM + "_-"


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def kinds(r: Redactor) -> dict[str, int]:
    return {item["kind"]: item["count"] for item in r.summary()}


# kind -> a fake token of that format (never a real one: random characters after the known prefix)
FAKES: list[tuple[str, str]] = [
    ("gitlab_token", "glpat-" + rand(20, URLSAFE)),
    ("gitlab_token", "glrt-" + rand(20, URLSAFE)),
    ("gitlab_token", "glptt-" + rand(40, HEX)),
    ("stripe_key", "sk_live_" + rand(24)),
    ("stripe_key", "rk_live_" + rand(24)),
    ("stripe_key", "sk_test_" + rand(24)),
    ("stripe_key", "whsec_" + rand(32)),
    ("slack_token", "xoxb-" + rand(12, string.digits) + "-" + rand(13, string.digits) + "-" + rand(24)),
    ("slack_token", "xoxp-" + rand(12, string.digits) + "-" + rand(24)),
    ("slack_webhook", "https://hooks.slack.com/services/T" + rand(8) + "/B" + rand(8) + "/" + rand(24)),
    ("discord_token", "M" + rand(23, URLSAFE) + "." + rand(6, URLSAFE) + "." + rand(27, URLSAFE)),
    ("discord_webhook", "https://discord.com/api/webhooks/" + rand(18, string.digits) + "/" + rand(68, URLSAFE)),
    ("google_oauth_token", "ya29." + rand(60, URLSAFE)),
    ("google_api_key", "AIza" + rand(35, URLSAFE)),
    ("npm_token", "npm_" + rand(36)),
    ("docker_token", "dckr_pat_" + rand(27, URLSAFE)),
    ("databricks_token", "dapi" + rand(32, HEX)),
    ("replicate_token", "r8_" + rand(37)),
    ("groq_key", "gsk_" + rand(52)),
    ("perplexity_key", "pplx-" + rand(48)),
    ("xai_key", "xai-" + rand(80)),
    ("sendgrid_key", "SG." + rand(22, URLSAFE) + "." + rand(43, URLSAFE)),
    ("twilio_key", "AC" + rand(32, HEX)),
    ("twilio_key", "SK" + rand(32, HEX)),
    ("langsmith_key", "lsv2_pt_" + rand(32, HEX) + "_" + rand(10, HEX)),
    ("square_token", "sq0atp-" + rand(22, URLSAFE)),
    ("shopify_token", "shpat_" + rand(32, HEX)),
    ("digitalocean_token", "dop_v1_" + rand(64, HEX)),
    ("vault_token", "hvs." + rand(95, URLSAFE)),
    ("aws_bedrock_key", "ABSK" + rand(120, ALNUM + "+/")),
    ("azure_client_secret", "abc1Q~" + rand(34, ALNUM + "_~.-")),
    ("telegram_bot_token", rand(9, string.digits) + ":AA" + rand(33, URLSAFE)),
    ("api_token", "AGE-SECRET-KEY-1" + rand(58, string.ascii_uppercase + string.digits)),
    ("api_token", "AKCp" + rand(69)),
    ("api_token", "LTAI" + rand(20)),
    ("api_token", "dp.pt." + rand(43)),
    ("api_token", "dt0c01." + rand(24) + "." + rand(64)),
    ("api_token", "glsa_" + rand(32) + "_" + rand(8, HEX)),
    ("api_token", "HRKU-AA" + rand(58, URLSAFE)),
    ("api_token", "lin_api_" + rand(40)),
    ("api_token", "ntn_" + rand(11, string.digits) + rand(35)),
    ("api_token", "sha256~" + rand(43, URLSAFE)),
    ("api_token", "pscale_tkn_" + rand(43)),
    ("api_token", "PMAK-" + rand(24, HEX) + "-" + rand(34, HEX)),
    ("api_token", "pnu_" + rand(36)),
    ("api_token", "pul-" + rand(40, HEX)),
    ("api_token", "rdme_" + rand(70, "abcdefghijklmnopqrstuvwxyz0123456789")),
    ("api_token", "rubygems_" + rand(48, HEX)),
    ("api_token", "xkeysib-" + rand(64, HEX) + "-" + rand(16)),
    ("api_token", "sntryu_" + rand(64, HEX)),
    ("api_token", "shippo_live_" + rand(40, HEX)),
    ("api_token", "pcsk_" + rand(50)),
    ("api_token", "tvly-" + rand(32)),
]


@pytest.mark.parametrize(("kind", "token"), FAKES, ids=[f"{k}-{t[:8]}" for k, t in FAKES])
def test_token_format_is_hidden_wherever_it_stands(kind, token):
    r = Redactor(home=None)
    out = r.text(f"INFO 06-01 12:00:00 [client.py:7] using {token} for the call")
    assert token not in out and token[-16:] not in out
    assert kinds(r) == {kind: 1}
    assert out.startswith("INFO 06-01 12:00:00 [client.py:7] using ")
    assert out.endswith(" for the call")


@pytest.mark.parametrize(("kind", "token"), FAKES[:12], ids=[f"{k}-{t[:8]}" for k, t in FAKES[:12]])
def test_token_format_in_quotes_and_after_punctuation(kind, token):
    for template in ("'{t}'", '"{t}",', "({t})", "key={t};", "[{t}]"):
        out = Redactor(home=None).text(template.format(t=token))
        assert token[-16:] not in out


def test_look_alikes_are_kept():
    lines = [
        "AC" + "0" * 31,  # 31 hex digits: not a Twilio SID
        "ACCOUNT_ID=12345 SKIP_BUILD=1 gsk_short npm_run dapi_version",
        "Mistral-7B-Instruct-v0.3.safetensors.index.json",
        "sha256:" + "a" * 64,
        "xai-grok is a model name; sk_live_ alone; r8_ alone",
        "commit 3c8e5f2a9b1d4e6f7a8b9c0d1e2f3a4b5c6d7e8f",
        "wandb: Syncing run sparkling-sun-42 (3c8e5f2a9b1d)",
    ]
    r = Redactor(home=None)
    for line in lines:
        assert r.text(line) == line
    assert r.summary() == []


def test_wandb_key_is_hidden_next_to_wandb():
    key = rand(40, HEX)
    r = Redactor(home=None)
    assert r.text(f"wandb login {key}") == "wandb login <redacted:wandb_key>"
    assert r.text(f"WANDB_API_KEY={key}") == "WANDB_API_KEY=<redacted:wandb_key>"
    assert r.text(f"export WANDB_API_KEY\n{key}") == f"export WANDB_API_KEY\n{key}"  # no context on its line


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        "HF_TOKEN_VALUE",
        "HF_HUB_TOKEN_2",
        "VLLM_HF_ACCESS_TOKENS",
        "VLLM_PASSPHRASE",
        "DB_PASSWORD_B64",
        "GH_TOKEN_1",
        "api_tokens",
        "REFRESH_TOKENS",
        "passphrase",
    ],
)
def test_secret_names_the_plain_rules_missed(name):
    assert is_secret_name(name)
    r = Redactor(home=None)
    assert r.value(name, "s3cr3t-value") == "<redacted:secret_env>"


@pytest.mark.parametrize(
    "name",
    [
        "max_num_batched_tokens",
        "prompt_tokens",
        "special_tokens",
        "num_tokens",
        "VLLM_KEY_VALUE_CACHE",
        "TOKEN_IDS_2",
        "added_tokens",
        "KEY_VALUE",
        "cache_key_value",
    ],
)
def test_names_that_still_are_not_secret(name):
    assert not is_secret_name(name)


def test_passphrase_flag():
    assert is_secret_flag("--passphrase")
    r = Redactor(home=None)
    assert (
        r.text("openssl rsa --passphrase hunter2x --in k.pem")
        == "openssl rsa --passphrase <redacted:secret_arg> --in k.pem"
    )
    assert r.argv(["tool", "--passphrase", "hunter2x"]) == ["tool", "--passphrase", "<redacted:secret_arg>"]


# --------------------------------------------------------------------------- several values per flag


def test_api_key_with_several_values_in_text():
    r = Redactor(home=None)
    out = r.text("vllm serve m --api-key key-one key-two --port 8000")
    assert out == "vllm serve m --api-key <redacted:secret_arg> <redacted:secret_arg> --port 8000"
    out = r.text("vllm serve m --api-key K1 K2")  # at the end of a command: values that look like keys
    assert out == "vllm serve m --api-key <redacted:secret_arg> <redacted:secret_arg>"


def test_several_values_stop_at_prose_and_shell_separators():
    r = Redactor(home=None)
    assert r.text("pass --api-key K1 to the server") == "pass --api-key <redacted:secret_arg> to the server"
    assert r.text("--token abc123 | tee log") == "--token <redacted:secret_arg> | tee log"


def test_api_key_with_several_values_in_argv():
    r = Redactor(home=None)
    argv = ["vllm", "serve", "m", "--api-key", "k1", "k2", "k3", "--password", "a", "b", "--port", "8000"]
    out = r.argv(argv)
    assert out == ["vllm", "serve", "m", "--api-key"] + ["<redacted:secret_arg>"] * 3 + ["--password"] + [
        "<redacted:secret_arg>"
    ] * 2 + ["--port", "8000"]


# --------------------------------------------------------------------------- URLs


TOKEN_USER = "ghx" + rand(29)  # no known shape: judged by what it looks like


@pytest.mark.parametrize("url", [f"https://{TOKEN_USER}@github.com/org/repo.git", f"http://{TOKEN_USER}:@proxy:3128"])
def test_url_with_only_a_token_before_the_at(url):
    r = Redactor(home=None)
    out = r.text(f"pip install git+{url}")
    assert TOKEN_USER not in out and "//<redacted:url_token>" in out


def test_url_user_names_are_kept():
    r = Redactor(home=None)
    for url in (
        "ssh://git@github.com/x",
        "https://deploy@host/x",
        "https://first.last@host/x",
        "http://bob@proxy:3128",
    ):
        assert r.text(url) == url


@pytest.mark.parametrize("name", ["http_proxy", "HTTPS_PROXY", "HF_ENDPOINT", "VLLM_SOME_URL"])
def test_url_token_in_environment_values(name):
    r = Redactor(home=None)
    assert TOKEN_USER not in r.value(name, f"https://{TOKEN_USER}@mirror.example.com/hf")


def test_url_token_in_argv_traceback_config_and_direct_url():
    r = Redactor(home=None)
    url = f"https://{TOKEN_USER}@git.example.com/vllm.git"
    payload = {
        "command": {"argv": ["pip", "install", f"git+{url}"]},
        "vllm": {"install_url": url},
        "log": {"tracebacks": [f'  File "x.py", line 1\nOSError: cannot fetch {url}']},
        "model": {"config": {"_name_or_path": url}},
    }
    assert TOKEN_USER not in str(r.scrub(payload))


def test_azure_sas_signature_in_a_url():
    sig = "sig=" + rand(43, ALNUM + "%")
    url = f"https://acct.blob.core.windows.net/models/w.bin?sv=2022-11-02&se=2030-01-01&sr=b&sp=r&{sig}"
    r = Redactor(home=None)
    out = r.value("VLLM_MODEL_URL", url)
    assert sig[4:] not in out and out.endswith("&sig=<redacted:url_token>")
    assert "sv=2022-11-02" in out


# --------------------------------------------------------------------------- log forms


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("password: hunter2", "password: <redacted:secret_arg>"),
        ("  api_key: sk-local-abc", "  api_key: <redacted:secret_arg>"),
        ("- password: two words", "- password: <redacted:secret_arg>"),
        ("db:\n  password: 'q w e'\n", "db:\n  password: '<redacted:secret_arg>'\n"),
        ("INFO session: 3 users", "INFO session: 3 users"),  # mid-line lower-case: not YAML
    ],
)
def test_lower_case_yaml(line, expected):
    assert Redactor(home=None).text(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("curl -u bob:hunter2 https://x", "curl -u bob:<redacted:secret_arg> https://x"),
        ("curl --user bob:hunter2 https://x", "curl --user bob:<redacted:secret_arg> https://x"),
        ("curl -sS -U proxyuser:pw https://x", "curl -sS -U proxyuser:<redacted:secret_arg> https://x"),
        ("docker run -u 1000:1000 img", "docker run -u 1000:1000 img"),
        ("sort -u a:b", "sort -u a:b"),
    ],
)
def test_curl_user_password(line, expected):
    assert Redactor(home=None).text(line) == expected


def test_curl_user_password_in_argv():
    r = Redactor(home=None)
    assert r.argv(["curl", "-u", "bob:hunter2", "https://x"]) == [
        "curl",
        "-u",
        "bob:<redacted:secret_arg>",
        "https://x",
    ]
    assert r.argv(["docker", "run", "-u", "vllm:vllm", "img"]) == ["docker", "run", "-u", "vllm:vllm", "img"]


def test_pgp_private_key_block():
    body = "\n".join(rand(64, ALNUM + "+/") for _ in range(5))
    block = (
        f"-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n{body}\n=abCD\n"
        "-----END PGP PRIVATE KEY BLOCK-----"
    )
    r = Redactor(home=None)
    assert r.text(f"gpg output:\n{block}\ndone") == "gpg output:\n<redacted:private_key>\ndone"


def test_key_body_after_a_cut_is_hidden():
    body = [rand(64, ALNUM + "+/") for _ in range(6)]
    tail = "\n".join(body[3:]) + "\n-----END RSA PRIVATE KEY-----\nserver started"
    out = Redactor(home=None).text("[... cut ...]\n" + tail)
    assert out == "[... cut ...]\n<redacted:private_key>\nserver started"
    out = Redactor(home=None).text("\n".join(body[3:]) + "\nnext line", starts_inside_private_key=True)
    assert out == "<redacted:private_key>\nnext line"


def test_tokens_split_by_zero_width_or_full_width_characters():
    token = "hf_" + rand(34, string.ascii_letters)
    r = Redactor(home=None)
    split = token[:10] + "\u200b" + token[10:20] + "\u2060" + token[20:]
    assert r.text(f"token {split} used") == "token <redacted:hf_token> used"
    wide = "".join(chr(ord(c) + 0xFEE0) for c in token)
    assert r.text(f"login {wide}") == "login <redacted:hf_token>"
    assert r.text(f"HF_TOKEN\u200b=abc{rand(8)}") == "HF_TOKEN=<redacted:secret_env>"
    cjk = "错误：模型加载失败（ＧＰＵ内存不足）"  # full-width punctuation with nothing secret stays as it is
    assert r.text(cjk) == cjk


# --------------------------------------------------------------------------- random values under hint names


def test_random_values_under_names_that_only_hint_at_a_secret():
    value = rand(32)
    r = Redactor(home=None)
    assert r.text(f"MY_TOKEN_ID={value}") == "MY_TOKEN_ID=<redacted:secret_env>"
    assert r.text(f"--auth-mode {value}") == "--auth-mode <redacted:secret_arg>"
    assert r.scrub({"session_handle": value}) == {"session_handle": "<redacted:secret_arg>"}


def test_ordinary_values_under_hint_names_are_kept():
    r = Redactor(home=None)
    lines = [
        "tokenizer=meta-llama/Llama-3.1-8B-Instruct tokenizer_mode=auto",
        "session_id=8f14e45f-ceea-467f-a0f5-7e3f0a1b2c3d",
        "cache_key=" + rand(64, HEX),
        "--tokenizer-revision " + rand(40, HEX),
        "key_cache_dtype=fp8_e4m3 max_num_batched_tokens=8192",
    ]
    for line in lines:
        assert r.text(line) == line
    assert not looks_random("meta-llama-Llama-3.1-8B-Instruct")
    assert looks_random(rand(32))


def test_shape_kind_of_a_whole_value():
    for kind, token in FAKES:
        # URLs (the scheme is not part of the shape) and shapes recognised from their middle
        if kind not in ("slack_webhook", "discord_webhook", "azure_client_secret", "telegram_bot_token"):
            assert shape_kind(token) == kind, token
