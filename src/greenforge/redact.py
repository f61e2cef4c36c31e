"""Redaction: the one place that keeps secrets out of stored and printed text.

Two kinds of redaction, each replacing a secret with ``***``:

- **by pattern**, for text whose secrets we do not know: a command line (:func:`redact_argv`),
  a URL (:func:`redact_url`) or free text (:func:`redact_text`). Values of secret-looking
  options (``--password X``, ``--token=X``, ``--api-key X``, ``-p X``), secret-looking
  headers (``-H "Authorization: Bearer X"``, ``-H "auth-token: X"``), environment-style
  assignments (``API_KEY=X``, ``PASSWORD=X``), URL credentials (``https://user:X@host``) and
  secret-looking query parameters (``?token=X``) are hidden.
- **by value**, for text that may echo a secret we hold (an API's error body, a cached answer):
  :func:`redact_values` and :func:`redact_json` replace every occurrence of the known values,
  also in their URL- and JSON-escaped forms.

Pure standard library (no httpx), imported lazily where it costs (``shlex``, ``urllib.parse``),
so importing the config to redact a command line stays cheap.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import Any, Protocol

REDACTED = "***"


class _Lazy:
    """A regular expression compiled on first use (keeps ``import greenforge`` cheap)."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags

    @functools.cached_property
    def rx(self) -> re.Pattern[str]:
        return re.compile(self.pattern, self.flags)


class _Revealable(Protocol):
    def reveal(self) -> str: ...


SecretLike = str | _Revealable | None
"""A secret value: a plain string, a :class:`greenforge.config.Secret`, or ``None``."""

# A name is secret-looking when it contains one of the strong words, or when one of its parts
# (split at ``-``, ``_``, ``.`` and camelCase) is one of the short words (``key`` but not
# ``monkey``, ``pass`` but not ``passthrough``).
_STRONG = _Lazy(
    r"token|secret|passw|passphrase|apikey|api_key|api-key|credential|signature|cookie|"
    r"bearer|authorization|oauth|private[-_]?key|access[-_]?key|session[-_]?id",
    re.IGNORECASE,
)
_SHORT = frozenset({"key", "pass", "pwd", "pw", "auth", "sig", "jwt"})
_PARTS = _Lazy(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

_HEADER_OPTIONS = frozenset({"-H", "--header", "--headers", "--http-header"})
_USER_OPTIONS = frozenset({"-u", "--user", "--proxy-user", "-U"})
_PASSWORD_SHORT = frozenset({"-p"})
# Programs whose ``-pVALUE`` (value attached) is a password, as in ``mysql -psecret``.
_ATTACHED_P_PROGRAMS = frozenset({"mysql", "mysqldump", "mysqladmin", "mariadb", "mysqlimport"})

_URL = _Lazy(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>`]+")
_ASSIGN = _Lazy(r"(?<![\w.-])([A-Za-z_][\w.-]*)=(\"[^\"]*\"|'[^']*'|[^\s&]*)")
_HEADER_TEXT = _Lazy(r"(?i)\b([A-Za-z][\w-]*)\s*:\s*(.+)")
_SCHEME_VALUE = _Lazy(r"(?i)\b(bearer)\s+([^\s\"',;]+)")
_LONG_OPTION_TEXT = _Lazy(r"(?<!\S)(--?[A-Za-z][\w-]*)(\s+)([^\s\"']+|\"[^\"]*\"|'[^']*')")


def is_secret_name(name: str) -> bool:
    """True when an option, variable, header or parameter name looks like it holds a secret."""
    if _STRONG.rx.search(name):
        return True
    return any(part.lower() in _SHORT for part in _PARTS.rx.findall(name))


def redact_url(url: str) -> str:
    """``url`` with its user info and secret-looking query/fragment values replaced by ``***``.

    ``https://user:pw@host/p?zone=DE&token=t`` becomes ``https://user:***@host/p?zone=DE&token=***``;
    a user info without a password (often a token: ``https://TOKEN@host``) becomes ``***``.
    Text that is not a URL comes back unchanged.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    authority, tail = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        authority = f"{user}:{REDACTED}@{host}" if colon else f"{REDACTED}@{host}"
    path, qmark, query = tail.partition("?")
    if qmark:
        query, hash_, fragment = query.partition("#")
        tail = f"{path}?{_redact_params(query)}" + (f"#{_redact_params(fragment)}" if hash_ else "")
    elif "#" in tail:
        path, _, fragment = tail.partition("#")
        tail = f"{path}#{_redact_params(fragment)}"
    return f"{scheme}://{authority}{tail}"


def _redact_params(text: str) -> str:
    import urllib.parse

    out = []
    for item in re.split(r"([&;])", text):
        name, eq, _value = item.partition("=")
        out.append(
            f"{name}={REDACTED}" if eq and is_secret_name(urllib.parse.unquote(name)) else item
        )
    return "".join(out)


def _redact_header(text: str) -> str | None:
    """``Name: ***`` for a secret-looking header line (scheme such as ``Bearer`` kept)."""
    m = _HEADER_TEXT.rx.fullmatch(text.strip())
    if m is None or not is_secret_name(m.group(1)):
        return None
    value = m.group(2).strip()
    scheme = value.split(None, 1)
    if len(scheme) == 2 and scheme[0].lower() in {"bearer", "basic", "token", "digest"}:
        return f"{m.group(1)}: {scheme[0]} {REDACTED}"
    return f"{m.group(1)}: {REDACTED}"


def redact_text(text: str) -> str:
    """Free text with secret-looking values hidden: URLs with credentials or secret query
    values, ``NAME=value`` with a secret-looking name, ``Authorization: ...`` style headers,
    ``Bearer X`` and ``--password X`` inside the text."""
    header = _redact_header(text)
    if header is not None:
        return header
    out = _URL.rx.sub(lambda m: redact_url(m.group(0)), text)
    out = _SCHEME_VALUE.rx.sub(lambda m: f"{m.group(1)} {REDACTED}", out)
    out = _ASSIGN.rx.sub(
        lambda m: f"{m.group(1)}={REDACTED}" if is_secret_name(m.group(1)) else m.group(0), out
    )
    return _LONG_OPTION_TEXT.rx.sub(
        lambda m: (
            f"{m.group(1)}{m.group(2)}{REDACTED}"
            if _is_secret_option(m.group(1)) and not m.group(3).startswith("-")
            else m.group(0)
        ),
        out,
    )


def _is_secret_option(arg: str) -> bool:
    return arg in _PASSWORD_SHORT or (arg.startswith("-") and is_secret_name(arg.lstrip("-")))


def _program(argv: Sequence[str]) -> str:
    return PurePath(argv[0]).name if argv else ""


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line safe to store or print: secret values become ``***``.

    Catches ``--password X`` / ``--password=X``, ``--token``, ``--api-key``, ``-p X``,
    ``-H "Authorization: Bearer X"`` / ``-H "auth-token: X"`` (also ``--header``),
    ``-u user:X``, ``KEY=X`` / ``SECRET=X`` / ``TOKEN=X`` / ``PASSWORD=X`` (and any name
    containing them), URLs with credentials or secret query parameters, and the same forms
    inside one argument holding a whole shell command (``sh -c "..."``). Everything else is
    kept as typed.
    """
    out: list[str] = []
    attached_p = _program(argv) in _ATTACHED_P_PROGRAMS
    pending: str | None = None  # the option whose value comes next
    for arg in argv:
        if pending is not None:
            option, pending = pending, None
            if option in _HEADER_OPTIONS:
                out.append(_redact_header(arg) or redact_text(arg))
            elif option in _USER_OPTIONS:
                user, colon, _pw = arg.partition(":")
                out.append(f"{user}:{REDACTED}" if colon else arg)
            elif arg.startswith("--") and len(arg) > 2:
                out.append(_redact_arg(arg, attached_p))  # a flag without a value: next option
                if _takes_value(arg, attached_p):
                    pending = arg
            else:
                out.append(REDACTED)
            continue
        out.append(_redact_arg(arg, attached_p))
        if _takes_value(arg, attached_p):
            pending = arg
    return out


def _takes_value(arg: str, attached_p: bool) -> bool:
    """True when ``arg`` is an option whose value (the next argument) must be looked at."""
    if attached_p and arg.startswith("-p") and len(arg) > 2:
        return False  # mysql -pSECRET: the value was attached
    return (
        arg in _HEADER_OPTIONS
        or arg in _USER_OPTIONS
        or ("=" not in arg and _is_secret_option(arg))
    )


def _redact_arg(arg: str, attached_p: bool) -> str:
    if arg.startswith("-"):
        name, eq, value = arg.partition("=")
        if eq and name in _HEADER_OPTIONS:
            return f"{name}={_redact_header(value) or redact_text(value)}"
        if arg[:2] == "-H" and len(arg) > 2 and not arg.startswith("--"):
            return "-H" + (_redact_header(arg[2:]) or redact_text(arg[2:]))
        if attached_p and arg[:2] == "-p" and len(arg) > 2 and not arg.startswith("--"):
            return f"-p{REDACTED}"
        if eq and re.fullmatch(r"--?[\w.-]+", name) and is_secret_name(name.lstrip("-")):
            return f"{name}={REDACTED}"
    name, eq, _value = arg.partition("=")
    if eq and re.fullmatch(r"[A-Za-z_][\w.-]*", name) and is_secret_name(name):
        return f"{name}={REDACTED}"  # the whole value, spaces and all: it may be the secret
    if any(c.isspace() for c in arg.strip()):
        inner = _redact_shell(arg)
        if inner is not None:
            return inner
    return redact_text(arg)


def _redact_shell(arg: str) -> str | None:
    """A whole shell command in one argument, redacted word by word (``None``: not needed)."""
    import shlex

    try:
        words = shlex.split(arg)
    except ValueError:
        return None
    if len(words) < 2:
        return None
    safe = redact_argv(words)
    if safe == words:
        return redact_text(arg)
    return shlex.join(safe)


# --------------------------------------------------------------------------- by value


def _reveal(secret: SecretLike) -> str | None:
    if secret is None:
        return None
    return secret if isinstance(secret, str) else secret.reveal()


def _forms(value: str) -> list[str]:
    """The ways a secret value may appear in text: as is, URL-encoded, JSON-escaped."""
    import json
    import urllib.parse

    forms = {
        value,
        urllib.parse.quote_plus(value, safe=""),
        urllib.parse.quote(value, safe=""),
        json.dumps(value)[1:-1],
    }
    return sorted(forms, key=len, reverse=True)


def redact_values(text: str, secrets: Iterable[SecretLike]) -> str:
    """``text`` with every known secret value replaced by ``***`` (also URL-/JSON-escaped forms).

    Values shorter than 3 characters are left alone: they cannot be told apart from ordinary
    text (and are never real keys).
    """
    out = text
    for secret in secrets:
        value = _reveal(secret)
        if value is None or len(value) < 3:
            continue
        for form in _forms(value):
            out = out.replace(form, REDACTED)
    return out


def redact_json(payload: Any, secrets: Sequence[SecretLike]) -> Any:
    """A copy of decoded JSON with every known secret value replaced in strings and keys."""
    if not any(_reveal(s) for s in secrets):
        return payload
    if isinstance(payload, str):
        return redact_values(payload, secrets)
    if isinstance(payload, list):
        return [redact_json(v, secrets) for v in payload]
    if isinstance(payload, dict):
        return {redact_values(str(k), secrets): redact_json(v, secrets) for k, v in payload.items()}
    return payload
