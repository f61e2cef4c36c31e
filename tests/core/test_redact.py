"""Specification of greenforge.redact: no secret survives in a stored or printed command line."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from greenforge.config import Secret
from greenforge.redact import (
    is_secret_name,
    redact_argv,
    redact_json,
    redact_text,
    redact_url,
    redact_values,
)

S = "\x00SECRET\x00"  # placeholder in the templates below
# Every form a user may type a secret in; `S` is where the secret goes.
ARGV_TEMPLATES: list[list[str]] = [
    ["curl", "-H", f"Authorization: Bearer {S}", "https://api.example.org/v3"],
    ["curl", "-H", f"auth-token: {S}", "https://api.example.org/v3"],
    ["curl", f"--header=X-Api-Key: {S}", "https://api.example.org"],
    ["curl", f"-HAuthorization: Basic {S}", "https://api.example.org"],
    ["curl", "-u", f"alice:{S}", "https://api.example.org"],
    ["psql", "-h", "db", "-p", S],
    ["mysql", f"-p{S}", "-u", "root"],
    ["python", "train.py", "--password", S, "--epochs", "3"],
    ["python", "train.py", f"--password={S}"],
    ["python", "train.py", "--token", S],
    ["python", "train.py", f"--token={S}"],
    ["python", "train.py", "--api-key", S],
    ["python", "train.py", f"--api-key={S}"],
    ["python", "train.py", "--hf-auth-token", S],
    ["env", f"KEY={S}", "python", "x.py"],
    ["env", f"SECRET={S}", "python", "x.py"],
    ["env", f"TOKEN={S}", "python", "x.py"],
    ["env", f"PASSWORD={S}", "python", "x.py"],
    ["env", f"WANDB_API_KEY={S}", f"AWS_SECRET_ACCESS_KEY={S}", "python", "x.py"],
    ["env", f"MYSQL_PWD={S}", "mysql"],
    ["python", "sync.py"],  # no secret at all: must come back unchanged (checked below)
]
# Forms where the secret sits inside a URL or a shell string: it cannot hold separators there.
URL_TEMPLATES: list[list[str]] = [
    ["git", "clone", f"https://alice:{S}@git.example.org/repo.git"],
    ["git", "clone", f"https://{S}@github.com/org/repo.git"],
    ["wget", f"https://data.example.org/x.csv?zone=DE&token={S}"],
    ["wget", f"https://data.example.org/x.csv?api_key={S}&zone=DE"],
    ["python", "load.py", f"--url=postgres://u:{S}@db:5432/x"],
    ["sh", "-c", f"curl -H 'Authorization: Bearer {S}' https://a.example.org"],
    ["sh", "-c", f"export API_KEY={S}; python train.py --password {S} --epochs 3"],
]

# Realistic secrets: any printable text without whitespace; a leading "--" would read as the
# next option (documented: a flag-like word after a secret-looking flag is kept).
secret_text = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_characters="\x7f"),
    min_size=4,
    max_size=40,
).filter(lambda s: not s.startswith("--"))
url_secret = st.text(
    alphabet=string.ascii_letters + string.digits + "-._~!$*+,%", min_size=4, max_size=40
).filter(lambda s: not s.startswith("--"))


def _fill(template: list[str], secret: str) -> list[str]:
    return [a.replace(S, secret) for a in template]


def _assume_distinct(template: list[str], secret: str) -> None:
    # a secret that is already part of the surrounding text cannot be told apart from it
    assume(secret not in " ".join(template).replace(S, " ") and "***" not in secret)
    assume(not any(secret in r for r in redact_argv(_fill(template, "\x01"))))


@pytest.mark.parametrize("template", ARGV_TEMPLATES, ids=lambda t: " ".join(t)[:40])
@given(secret=secret_text)
def test_a_secret_typed_on_a_command_line_never_survives(template: list[str], secret: str) -> None:
    _assume_distinct(template, secret)
    argv = _fill(template, secret)

    safe = redact_argv(argv)

    assert len(safe) == len(argv)
    assert all(secret not in arg for arg in safe), safe
    assert secret not in " ".join(safe)


@pytest.mark.parametrize("template", URL_TEMPLATES, ids=lambda t: " ".join(t)[:40])
@given(secret=url_secret)
def test_a_secret_in_a_url_or_shell_string_never_survives(template: list[str], secret: str) -> None:
    _assume_distinct(template, secret)

    safe = redact_argv(_fill(template, secret))

    assert secret not in " ".join(safe), safe


def test_the_shapes_stay_readable() -> None:
    assert redact_argv(
        ["curl", "-H", "Authorization: Bearer abc123", "-H", "Accept: text/csv"]
    ) == [
        "curl",
        "-H",
        "Authorization: Bearer ***",
        "-H",
        "Accept: text/csv",
    ]
    assert redact_argv(["curl", "-u", "alice:pw1234", "x"]) == ["curl", "-u", "alice:***", "x"]
    assert redact_argv(["psql", "-p", "pw1234"]) == ["psql", "-p", "***"]
    assert redact_argv(["mysql", "-ppw1234", "-u", "root"]) == ["mysql", "-p***", "-u", "root"]
    # a boolean flag that merely looks secret does not hide the next option
    assert redact_argv(["hf", "--use-auth-token", "--epochs", "3"]) == [
        "hf",
        "--use-auth-token",
        "--epochs",
        "3",
    ]


def test_ordinary_command_lines_are_kept_as_typed() -> None:
    argv = [
        "python",
        "-m",
        "train",
        "--lr=0.1",
        "--monkey-patch",
        "2",
        "--desc",
        "token classification",
        "https://example.org/data.csv?zone=DE",
        "sort_key=name",
    ]

    safe = redact_argv(argv)

    assert safe[:8] == argv[:8]
    assert safe[8] == argv[8]
    assert safe[9] == "sort_key=***"  # a *key* setting is hidden: better one too many


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("API_KEY", True),
        ("apiKey", True),
        ("X-Auth-Token", True),
        ("MYSQL_PWD", True),
        ("GITHUB_TOKEN", True),
        ("passphrase", True),
        ("monkey", False),
        ("passthrough", False),
        ("epochs", False),
        ("author_email", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_redact_url_hides_credentials_and_secret_parameters_only() -> None:
    url = "https://user:pw9@api.example.test/v3/x?zone=DE&api_key=abc123&token=zzz#access_token=t1"

    clean = redact_url(url)

    assert (
        clean
        == "https://user:***@api.example.test/v3/x?zone=DE&api_key=***&token=***#access_token=***"
    )
    assert redact_url("not a url") == "not a url"


def test_redact_text_finds_secrets_inside_prose() -> None:
    text = "failed: GET https://u:p4ss@h/x?token=t0k with Bearer b3arer and API_KEY=k3y"

    clean = redact_text(text)

    assert all(s not in clean for s in ("p4ss", "t0k", "b3arer", "k3y"))


@given(
    secret=st.text(min_size=3, max_size=30), before=st.text(max_size=20), after=st.text(max_size=20)
)
def test_redact_values_removes_every_form_of_a_known_secret(
    secret: str, before: str, after: str
) -> None:
    import json
    import urllib.parse

    text = (
        f"{before}{secret}|{urllib.parse.quote_plus(secret, safe='')}|{json.dumps(secret)}{after}"
    )
    assume(secret not in before + after)

    clean = redact_values(text, [Secret(secret), None])

    assert secret not in clean.replace("***", "\x00")


def test_redact_json_replaces_secrets_in_keys_and_nested_values() -> None:
    payload = {"echo": {"auth-token": "tok-12345", "list": ["x tok-12345 y", 3]}, "tok-12345": 1}

    clean = redact_json(payload, [Secret("tok-12345")])

    assert "tok-12345" not in str(clean)
    assert clean == {"echo": {"auth-token": "***", "list": ["x *** y", 3]}, "***": 1}
    assert payload["tok-12345"] == 1  # the input is not changed
