"""HTTP for the live grid APIs: clients with timeouts, retries with backoff, secret-free errors.

- :func:`build_client` makes an ``httpx.Client`` whose timeout comes from
  ``settings.http_timeout_s``; :class:`JsonApi` also passes that timeout on every request, so an
  injected client without one still never waits forever.
- ``http_timeout_s`` is a deadline for the *whole* answer of each request (connect, headers and
  every byte of the body), not only for each read: a server that trickles a byte at a time is
  cut off at the deadline ("no complete answer within N s"). Every request and every wait
  between retries is also drawn from the command's network budget
  (:func:`~greenforge.grid.chain.network_budget`, ``http_budget_s``); once it is spent, no
  request is sent and the provider chain falls back.
- :class:`JsonApi` retries 429, 5xx, timeouts and connection errors with exponential backoff
  and jitter (:class:`RetryPolicy`), honouring ``Retry-After``; it serves and fills the on-disk
  :class:`~greenforge.grid.cache.DiskCache`, and in offline mode answers from the cache only.
- Every failure becomes a :class:`~greenforge.errors.ProviderError` that names the provider, the
  endpoint (path only, secrets removed), the zone and what to do. API keys, tokens and passwords
  are redacted from every message and log line (:mod:`greenforge.redact`).
"""

from __future__ import annotations

import dataclasses
import difflib
import email.utils
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar

import httpx
import numpy as np

from greenforge.config import Secret, Settings
from greenforge.errors import ConfigError, ProviderError, UnknownZoneError
from greenforge.grid.cache import DiskCache
from greenforge.grid.chain import NetworkBudget, network_budget
from greenforge.grid.series import IntensitySeries, SeriesKind
from greenforge.redact import redact_url
from greenforge.redact import redact_values as redact
from greenforge.timeutil import utc_iso

log = logging.getLogger("greenforge.grid.http")

USER_AGENT = "greenforge (+https://github.com/greenforge; grid intensity client)"
MAX_BODY_BYTES = 32 * 1024 * 1024
"""Largest answer read from a grid API (a year of 5-minute points is ~10 MB of JSON)."""
MIN_REQUEST_S = 0.05
"""A request is not sent with less time than this left in the network budget."""
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


# --------------------------------------------------------------------------- errors


class ProviderHTTPError(ProviderError):
    """An HTTP call to a grid API failed. Carries the status (``None`` when no answer came)."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        endpoint: str,
        status: int | None = None,
        zone: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.endpoint = endpoint
        self.status = status
        self.zone = zone


class ProviderAuthError(ProviderHTTPError):
    """The API refused the credentials (401/403)."""


class ProviderRateLimitError(ProviderHTTPError):
    """The API kept answering 429 after every retry."""


class ProviderTimeoutError(ProviderHTTPError):
    """The API did not answer within the timeout, on every try."""


class ProviderBudgetError(ProviderTimeoutError):
    """The command's network budget (``http_budget_s``) is spent: no request was sent."""


class ProviderOfflineError(ProviderError):
    """Offline mode is on and nothing is cached for the request."""


class ProviderZoneError(UnknownZoneError, ProviderError):
    """The API does not know the zone (catchable as UnknownZoneError and as ProviderError)."""

    def __init__(self, zone: str, message: str, known: Iterable[str] = ()) -> None:
        upper = {k.upper(): k for k in sorted(set(known))}
        close = difflib.get_close_matches(zone.upper(), list(upper), n=5, cutoff=0.6)
        self.zone = zone
        self.suggestions = [upper[c] for c in close]
        hint = f" Close matches: {', '.join(self.suggestions)}." if self.suggestions else ""
        Exception.__init__(self, message + hint)


# --------------------------------------------------------------------------- helpers


class _DeadlineError(Exception):
    """No complete answer within the request's deadline."""


class _BodyTooLargeError(Exception):
    """The answer is larger than MAX_BODY_BYTES."""


def _timeout_kind(exc: BaseException) -> str:
    return (
        "the answer was still incomplete" if isinstance(exc, _DeadlineError) else type(exc).__name__
    )


def build_client(settings: Settings, *, base_url: str = "") -> httpx.Client:
    """An ``httpx.Client`` with the configured timeout, no redirects and a GreenForge user agent."""
    timeout = httpx.Timeout(settings.http_timeout_s, connect=min(settings.http_timeout_s, 10.0))
    return httpx.Client(
        base_url=base_url,
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
    )


def parse_time_utc(text: str) -> float:
    """Unix seconds of an ISO-8601 timestamp; naive times are UTC. Raises ValueError."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    # Python 3.10's fromisoformat wants 3 or 6 fractional digits and HH:MM:SS.
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d)(:\d\d)?(\.\d+)?([+-]\d\d:?\d\d)?", s)
    if m is None:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    date, hm, sec, frac, tz = m.groups()
    frac_us = f".{(frac[1:] + '000000')[:6]}" if frac else ""
    if tz and ":" not in tz:
        tz = f"{tz[:3]}:{tz[3:]}"
    dt = datetime.fromisoformat(f"{date}T{hm}{sec or ':00'}{frac_us}{tz or '+00:00'}")
    return dt.timestamp()


def format_time_utc(t_s: float, *, seconds: bool = True) -> str:
    """``2024-01-01T00:00:00Z`` (or without seconds) for unix seconds."""
    return utc_iso(t_s, timespec="seconds" if seconds else "minutes")


def _retry_after_s(value: str | None, now_s: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - now_s
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry 429/5xx/timeouts.

    Attempt ``n`` (0-based) waits ``backoff_base_s * 2**n`` capped at ``backoff_max_s``, with
    "equal jitter" (half fixed, half random). A ``Retry-After`` header replaces that wait; one
    longer than ``retry_after_max_s`` is not waited for (the error says when to retry).
    """

    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts!r}")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0 or self.retry_after_max_s < 0:
            raise ValueError("backoff and Retry-After limits must be >= 0 seconds")

    def backoff_s(self, attempt: int, rand: float) -> float:
        delay = min(self.backoff_base_s * (2.0**attempt), self.backoff_max_s)
        return delay / 2.0 + delay / 2.0 * rand


@dataclasses.dataclass(frozen=True)
class ErrorHints:
    """What to tell the user, per failure kind, for one provider."""

    auth: str = "check the API credentials."
    zone: str = "check the zone name."
    known_zones: Sequence[str] = ()


def _excerpt(body: str, secrets: Sequence[str | Secret | None]) -> str:
    text = body.strip().replace("\n", " ")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "error", "detail", "errors"):
            if key in data:
                val = data[key]
                text = json.dumps(val) if not isinstance(val, str) else val
                break
    text = redact(text, secrets)
    return text[:200] + ("..." if len(text) > 200 else "")


# --------------------------------------------------------------------------- the API client


class JsonApi:
    """GET JSON from one API, with timeouts, retries, the disk cache and secret-free errors."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        settings: Settings,
        client: httpx.Client | None = None,
        *,
        retry: RetryPolicy | None = None,
        cache: DiskCache | None = None,
        hints: ErrorHints | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        budget: NetworkBudget | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self._owns_client = client is None
        self.client = client if client is not None else build_client(settings)
        self.retry = retry or RetryPolicy()
        self.cache = cache if cache is not None else DiskCache.for_provider(settings, provider)
        self.hints = hints or ErrorHints()
        self.timeout = httpx.Timeout(settings.http_timeout_s)
        self.budget = budget if budget is not None else network_budget(settings)
        self._sleep = sleep
        self._rand = rand
        self._clock = clock
        self.secrets: list[str | Secret | None] = []

    # -- public -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP client if this object created it (an injected one is left open)."""
        if self._owns_client:
            self.client.close()

    def add_secret(self, secret: str | Secret | None) -> None:
        """Remember a value that must never appear in errors or logs."""
        if secret is not None and secret not in self.secrets:
            self.secrets.append(secret)

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        zone: str | None = None,
        ttl_s: float | None = None,
        use_cache: bool = True,
        on_unauthorized: Callable[[], Mapping[str, str]] | None = None,
    ) -> Any:
        """The decoded JSON of ``GET base_url + path``.

        Fresh cache entries are served without a request; in offline mode any cached entry is
        served, else :class:`ProviderOfflineError`. ``on_unauthorized`` (WattTime) is called
        once on a 401 and returns replacement headers for one more try.
        """
        params = dict(params or {})
        ttl = self.settings.cache_ttl_s if ttl_s is None else ttl_s
        key = self.cache.key(path, params) if use_cache else None
        if self.settings.offline:
            entry = self.cache.get(key, max_age_s=None) if key is not None else None
            if entry is None:
                raise ProviderOfflineError(
                    f"{self.provider}: offline mode is on (GREENFORGE_OFFLINE / offline = true) "
                    f"and nothing is cached for {self.endpoint(path)}"
                    f"{self._zone_part(zone)}. Run once online to fill the cache, turn offline "
                    f"mode off, or put 'embedded' in intensity_providers."
                )
            age_s = self._clock() - entry.stored_at_s
            if age_s > ttl:
                log.warning(
                    "%s: offline mode, serving a cached answer for %s that is %.0f s old",
                    self.provider,
                    self.endpoint(path),
                    age_s,
                )
            return entry.payload
        if key is not None:
            entry = self.cache.get(key, max_age_s=ttl)
            if entry is not None:
                return entry.payload
        payload = self._fetch(path, params, dict(headers or {}), auth, zone, on_unauthorized)
        if key is not None:  # never a key in the cache, even one the server echoed back
            self.cache.put(key, payload, endpoint=self.endpoint(path), secrets=self.secrets)
        return payload

    def will_request(self, path: str, params: Mapping[str, str], ttl_s: float) -> bool:
        """Would :meth:`get_json` send a request (online, nothing fresh cached)?

        For credentials that cost a request of their own (a login): get them only then.
        """
        if self.settings.offline:
            return False
        return self.cache.get(self.cache.key(path, dict(params)), max_age_s=ttl_s) is None

    def endpoint(self, path: str) -> str:
        """The endpoint as shown in errors: path only, never query values or credentials."""
        return httpx.URL(self.base_url + path).path

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _zone_part(zone: str | None) -> str:
        return f" (zone {zone!r})" if zone else ""

    def _error(
        self,
        cls: type[ProviderHTTPError],
        what: str,
        path: str,
        zone: str | None,
        status: int | None,
    ) -> ProviderHTTPError:
        msg = redact(
            f"{self.provider}: GET {self.endpoint(path)}{self._zone_part(zone)}: {what}",
            self.secrets,
        )
        return cls(
            msg, provider=self.provider, endpoint=self.endpoint(path), status=status, zone=zone
        )

    def _fetch(
        self,
        path: str,
        params: dict[str, str],
        headers: dict[str, str],
        auth: httpx.Auth | None,
        zone: str | None,
        on_unauthorized: Callable[[], Mapping[str, str]] | None,
    ) -> Any:
        url = self.base_url + path
        relogged = False
        attempt = 0
        last = "no request sent yet"
        while True:
            wait_s: float | None = None
            login_again = False
            limit_s = self._request_limit_s(path, zone, attempt, last)  # taken from the budget
            started = time.monotonic()
            try:
                response = self._get_within(url, params, headers, auth, limit_s)
            except (httpx.TimeoutException, _DeadlineError) as exc:
                last = f"no complete answer within {limit_s:g} s"
                if attempt + 1 >= self.retry.max_attempts:
                    raise self._error(
                        ProviderTimeoutError,
                        f"no complete answer within {limit_s:g} s{self._limit_note(limit_s)} "
                        f"({_timeout_kind(exc)}, {attempt + 1} tries). The service "
                        "may be down or slow: try again later, raise http_timeout_s "
                        "(GREENFORGE_HTTP_TIMEOUT_S), or use offline mode with a cache",
                        path,
                        zone,
                        None,
                    ) from None
                self._warn_retry(last, path, attempt)
            except _BodyTooLargeError:
                raise self._error(
                    ProviderHTTPError,
                    f"the answer is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB; a proxy "
                    "or mirror may be answering something else: check the base URL",
                    path,
                    zone,
                    None,
                ) from None
            except httpx.TransportError as exc:
                permanent = isinstance(exc, httpx.UnsupportedProtocol)
                last = f"connection failed ({type(exc).__name__})"
                if permanent or attempt + 1 >= self.retry.max_attempts:
                    raise self._error(
                        ProviderHTTPError,
                        f"connection failed ({type(exc).__name__}: "
                        f"{redact(str(exc), self.secrets)[:160]}; {attempt + 1} tries). Check the "
                        "network or proxy, or use offline mode with a cache",
                        path,
                        zone,
                        None,
                    ) from None
                self._warn_retry(type(exc).__name__, path, attempt)
            else:
                status = response.status_code
                log.debug("%s: GET %s -> %d", self.provider, redact_url(str(response.url)), status)
                if 200 <= status < 300:
                    return self._decode(response, path, zone)
                login_again = status == 401 and on_unauthorized is not None and not relogged
                if not login_again:
                    wait_s = self._retry_wait_s(response, path, zone, attempt)
                    last = f"HTTP {status}"
            finally:  # give back what this request did not use
                self.budget.refund(limit_s - (time.monotonic() - started))
            if login_again and on_unauthorized is not None:
                relogged = True  # once, after this request's budget share came back
                headers = {**headers, **on_unauthorized()}
                continue
            delay = wait_s if wait_s is not None else self.retry.backoff_s(attempt, self._rand())
            if delay > self.budget.remaining_s():
                raise self._budget_error(path, zone, attempt + 1, last)
            self._sleep(delay)
            self.budget.spend(delay)
            attempt += 1

    def _retry_wait_s(
        self, response: httpx.Response, path: str, zone: str | None, attempt: int
    ) -> float | None:
        """For a failed answer: the ``Retry-After`` wait (or ``None``: back off) when it is
        worth another try, else raises its error."""
        status = response.status_code
        if status not in RETRY_STATUSES:
            raise self._status_error(response, path, zone)
        wait_s = _retry_after_s(response.headers.get("Retry-After"), self._clock())
        if wait_s is not None and wait_s > self.retry.retry_after_max_s:
            raise self._status_error(response, path, zone, retry_after_s=wait_s)
        if attempt + 1 >= self.retry.max_attempts:
            raise self._status_error(response, path, zone, tries=attempt + 1)
        self._warn_retry(f"HTTP {status}", path, attempt)
        return wait_s

    def _warn_retry(self, what: str, path: str, attempt: int) -> None:
        log.warning(
            "%s: %s from %s (try %d of %d); retrying",
            self.provider,
            what,
            self.endpoint(path),
            attempt + 1,
            self.retry.max_attempts,
        )

    def _request_limit_s(self, path: str, zone: str | None, tries: int, last: str) -> float:
        """Deadline of the next request, taken from the budget: ``http_timeout_s``, or what is
        left of the budget."""
        granted = self.budget.take(self.settings.http_timeout_s)
        if granted < min(MIN_REQUEST_S, self.settings.http_timeout_s):
            self.budget.refund(granted)
            raise self._budget_error(path, zone, tries, last)
        return granted

    def _limit_note(self, limit_s: float) -> str:
        if limit_s < self.settings.http_timeout_s:
            return f" (what was left of the {self.budget.total_s:g} s network budget)"
        return ""

    def _budget_error(self, path: str, zone: str | None, tries: int, last: str) -> ProviderError:
        done = f"after {tries} tries ({last})" if tries else "before any request"
        return self._error(
            ProviderBudgetError,
            f"gave up {done}: this command has spent its network budget of "
            f"{self.budget.total_s:g} s on grid APIs (http_budget_s, GREENFORGE_HTTP_BUDGET_S). "
            "Raise it, run once to fill the cache, or rely on the next provider",
            path,
            zone,
            None,
        )

    def _get_within(
        self,
        url: str,
        params: dict[str, str],
        headers: dict[str, str],
        auth: httpx.Auth | None,
        limit_s: float,
    ) -> httpx.Response:
        """The complete response of one GET, or an exception, within ``limit_s`` seconds.

        The request runs in a helper thread that reads the body chunk by chunk and stops at
        the deadline; the caller waits at most ``limit_s`` whatever the server does (a server
        that stops sending leaves the helper blocked until its own read timeout, at most
        ``limit_s`` later, then it ends by itself).
        """
        deadline = time.monotonic() + limit_s
        cancelled = threading.Event()
        done = threading.Event()
        outcome: list[httpx.Response | BaseException] = []
        timeout = httpx.Timeout(limit_s)
        client = self.client

        def work() -> None:
            try:
                request = client.build_request(
                    "GET", url, params=params, headers=headers, timeout=timeout
                )
                response = client.send(request, auth=auth, stream=True)
                if response.is_stream_consumed:  # read already (an in-memory transport)
                    outcome.append(response)
                    return
                try:
                    body = bytearray()
                    for chunk in response.iter_raw():
                        body += chunk
                        if len(body) > MAX_BODY_BYTES:
                            raise _BodyTooLargeError
                        if cancelled.is_set() or time.monotonic() > deadline:
                            raise _DeadlineError
                finally:
                    response.close()
                # a complete, non-streaming copy (the body is decoded by httpx as usual)
                outcome.append(
                    httpx.Response(
                        response.status_code,
                        headers=response.headers,
                        content=bytes(body),
                        request=response.request,
                    )
                )
            except BaseException as exc:  # handed to the caller, never raised in this thread
                outcome.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=work, name=f"greenforge-http-{self.provider}", daemon=True)
        worker.start()
        if not done.wait(limit_s) or not outcome:
            cancelled.set()
            raise _DeadlineError
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _decode(self, response: httpx.Response, path: str, zone: str | None) -> Any:
        try:
            return response.json()
        except (ValueError, UnicodeDecodeError):
            ctype = response.headers.get("Content-Type", "?")
            raise self._error(
                ProviderHTTPError,
                f"invalid JSON (HTTP {response.status_code}, Content-Type {ctype}, "
                f"starts {_excerpt(response.text[:80], self.secrets)!r}). The service or a proxy "
                "answered something else: try again later, check proxies, or report it",
                path,
                zone,
                response.status_code,
            ) from None

    def _status_error(
        self,
        response: httpx.Response,
        path: str,
        zone: str | None,
        *,
        tries: int = 1,
        retry_after_s: float | None = None,
    ) -> ProviderError:
        status = response.status_code
        detail = _excerpt(response.text, self.secrets)
        said = f" The API said: {detail}" if detail not in ("", "{}", "[]") else ""
        if status in (401, 403):
            return self._error(
                ProviderAuthError,
                f"HTTP {status} (not authorised): {self.hints.auth.rstrip('.')}.{said}",
                path,
                zone,
                status,
            )
        mentions_zone = zone is not None and bool(
            re.search(rf"(?<![\w-]){re.escape(zone)}(?![\w-])", detail)
            or re.search(r"\b(zone|region)\b", detail, re.IGNORECASE)
        )
        if zone is not None and (status == 404 or (status == 400 and mentions_zone)):
            endpoint = self.endpoint(path)
            msg = redact(
                f"{self.provider}: GET {endpoint}: HTTP {status}: zone {zone!r} is not known to "
                f"{self.provider} (or not in your plan). {self.hints.zone.rstrip('.')}.{said}",
                self.secrets,
            )
            return ProviderZoneError(zone, msg, self.hints.known_zones)
        if status == 429:
            when = (
                f"the API asks to wait {retry_after_s:.0f} s"
                if retry_after_s is not None
                else f"still limited after {tries} tries"
            )
            return self._error(
                ProviderRateLimitError,
                f"HTTP 429 (rate limited; {when}). Make fewer requests (results are cached for "
                "cache_ttl_s), wait and retry, or check your plan's quota.",
                path,
                zone,
                status,
            )
        if status >= 500:
            return self._error(
                ProviderHTTPError,
                f"HTTP {status} (server error, {tries} tries). The service is failing: try again "
                f"later or put a fallback such as 'embedded' in intensity_providers.{said}",
                path,
                zone,
                status,
            )
        return self._error(
            ProviderHTTPError,
            f"HTTP {status} (request refused). Check the zone and the time range.{said}",
            path,
            zone,
            status,
        )


def schema_error(provider: str, endpoint: str, zone: str | None, problem: str) -> ProviderError:
    """A response that is JSON but not in the documented shape."""
    where = f" (zone {zone!r})" if zone else ""
    return ProviderError(
        f"{provider}: unexpected response from {endpoint}{where}: {problem}. The API may have "
        "changed: update greenforge, or report it with the endpoint name."
    )


# --------------------------------------------------------------------------- live providers

RECENT_S = 2 * 86400.0
"""Data this recent may still be revised by the API: it is cached for the normal TTL only."""
SETTLED_TTL_S = 7 * 86400.0
"""Cache life (at least) of older windows, which change little."""


class ApiProvider:
    """What the live providers share: the :class:`JsonApi`, cache lifetimes, answer checks.

    A subclass sets ``name``, ``default_base_url`` and ``base_url_setting`` (the setting that
    points it at a proxy or mirror), says how to fix errors (:meth:`error_hints`), and keeps
    only what is specific to its API (endpoints, parameters, credentials, answer shapes).
    The base URL is the ``base_url`` argument, else that setting, else the default.
    """

    name: str
    default_base_url: ClassVar[str]
    base_url_setting: ClassVar[str] = ""
    """Name of the :class:`Settings` field with this API's base URL (``""``: none)."""
    signal: ClassVar[str] = "average"
    """Signal type of this API's intensities (``average`` or ``marginal``)."""
    basis: ClassVar[str] = "direct"
    """Their basis unless an answer says otherwise (``direct`` or ``lca``)."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client | None = None,
        *,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        cache: DiskCache | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        budget: NetworkBudget | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        if base_url is None:
            configured = (
                getattr(settings, self.base_url_setting, None) if self.base_url_setting else None
            )
            base_url = configured or self.default_base_url
        self.api = JsonApi(
            self.name,
            base_url,
            settings,
            client,
            retry=retry,
            cache=cache,
            hints=self.error_hints(),
            sleep=sleep,
            clock=clock,
            budget=budget,
        )
        for secret in self.secrets():
            self.api.add_secret(secret)

    def error_hints(self) -> ErrorHints:
        """What to tell the user on an auth or unknown-zone error from this API."""
        return ErrorHints()

    def secrets(self) -> Sequence[str | Secret | None]:
        """Credentials from the settings that must never appear in errors or logs."""
        return ()

    def close(self) -> None:
        """Release the HTTP client this provider created (an injected client stays open)."""
        self.api.close()

    def past_ttl_s(self, window_end_s: float, now_s: float) -> float:
        """Cache life of a past window: the normal TTL while recent, at least a week after."""
        ttl_s = self.settings.cache_ttl_s
        return ttl_s if window_end_s > now_s - RECENT_S else max(ttl_s, SETTLED_TTL_S)

    def fresh_ttl_s(self, max_s: float) -> float:
        """Cache life of a forecast or latest value: the normal TTL, at most ``max_s``."""
        return min(self.settings.cache_ttl_s, max_s)

    def rows(self, payload: Any, key: str, path: str, zone: str) -> list[Any]:
        """``payload[key]``, which must be a list; else a schema error naming the endpoint."""
        rows = payload.get(key) if isinstance(payload, dict) else None
        if not isinstance(rows, list):
            raise schema_error(self.name, self.api.endpoint(path), zone, f"no {key!r} list")
        return rows

    def series(
        self,
        buf: PointBuffer,
        path: str,
        *,
        zone: str,
        source: str,
        step_s: float,
        start_s: float,
        end_s: float,
        basis: str | None = None,
    ) -> IntensitySeries:
        """:meth:`PointBuffer.to_series` with this API's signal, basis and endpoint."""
        return buf.to_series(
            zone=zone,
            source=source,
            signal=self.signal,
            basis=self.basis if basis is None else basis,
            step_s=step_s,
            start_s=start_s,
            end_s=end_s,
            endpoint=self.api.endpoint(path),
        )


# --------------------------------------------------------------------------- series building


@dataclasses.dataclass
class PointBuffer:
    """Points collected from one or more API answers, turned into one IntensitySeries."""

    times_s: list[float] = dataclasses.field(default_factory=list)
    values_g_per_kwh: list[float] = dataclasses.field(default_factory=list)
    estimated: list[bool] = dataclasses.field(default_factory=list)
    forecast: list[bool] = dataclasses.field(default_factory=list)

    def add(self, t_s: float, value: float, *, estimated: bool, forecast: bool) -> None:
        self.times_s.append(float(t_s))
        self.values_g_per_kwh.append(float(value))
        self.estimated.append(bool(estimated))
        self.forecast.append(bool(forecast))

    def to_series(
        self,
        *,
        zone: str,
        source: str,
        signal: str,
        basis: str,
        step_s: float,
        start_s: float,
        end_s: float,
        endpoint: str,
    ) -> IntensitySeries:
        """Sorted, de-duplicated (last answer wins) points covering ``[start_s, end_s)``.

        Raises ProviderError when no point covers the range (an empty series is never returned).
        """
        by_time: dict[float, int] = {}
        for i, t in enumerate(self.times_s):
            by_time[t] = i
        order = [by_time[t] for t in sorted(by_time) if t + step_s > start_s and t < end_s]
        if not order:
            raise ProviderError(
                f"{source}: no data for zone {zone!r} between {format_time_utc(start_s)} and "
                f"{format_time_utc(end_s)} from {endpoint}. The API may not cover that period "
                "yet (or any more): pick another range, or use a fallback provider."
            )
        idx = np.array(order, dtype=np.int64)
        values = np.asarray(self.values_g_per_kwh, dtype=np.float64)[idx]
        bad = ~np.isfinite(values) | (values < 0)
        if np.any(bad):
            raise ProviderError(
                f"{source}: invalid intensity value {values[bad][0]!r} for zone {zone!r} from "
                f"{endpoint}; report it to the data provider."
            )
        forecast = np.asarray(self.forecast, dtype=np.bool_)[idx]
        kind: SeriesKind = (
            "forecast" if forecast.all() else ("measured" if not forecast.any() else "mixed")
        )
        return IntensitySeries(
            times_s=np.asarray(self.times_s, dtype=np.float64)[idx],
            values_g_per_kwh=values,
            step_s=step_s,
            zone=zone,
            source=source,
            signal=signal,
            basis=basis,
            kind=kind,
            estimated=np.asarray(self.estimated, dtype=np.bool_)[idx],
            forecast=forecast,
        )


def time_chunks(start_s: float, end_s: float, max_span_s: float) -> list[tuple[float, float]]:
    """``[start, end)`` cut into consecutive windows no longer than ``max_span_s``."""
    if end_s <= start_s:
        return []
    out = []
    t = start_s
    while t < end_s:
        out.append((t, min(t + max_span_s, end_s)))
        t += max_span_s
    return out


def floor_to(t_s: float, step_s: float) -> float:
    return math.floor(t_s / step_s) * step_s


def ceil_to(t_s: float, step_s: float) -> float:
    return math.ceil(t_s / step_s) * step_s


def check_range(provider: str, start_s: float, end_s: float) -> None:
    """Reject an empty or reversed time range with a clear error."""
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or end_s <= start_s:
        raise ConfigError(
            f"{provider}: bad time range [{start_s!r}, {end_s!r}): the end must be after the "
            "start (unix seconds, UTC)."
        )
