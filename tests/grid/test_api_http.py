"""Specification of the shared HTTP layer of the live grid providers (grid/http.py, cache.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.config import Secret, Settings
from greenforge.errors import ConfigError, ProviderError, UnknownZoneError
from greenforge.grid.cache import DiskCache
from greenforge.grid.http import (
    ErrorHints,
    JsonApi,
    PointBuffer,
    ProviderAuthError,
    ProviderOfflineError,
    ProviderRateLimitError,
    ProviderTimeoutError,
    ProviderZoneError,
    RetryPolicy,
    build_client,
    check_range,
    format_time_utc,
    parse_time_utc,
    time_chunks,
)
from greenforge.redact import redact_url
from greenforge.redact import redact_values as redact

SECRET = "sk-live-9f8e7d6c5b4a"
Handler = Callable[[httpx.Request], httpx.Response]


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_api(
    tmp_path: Path,
    handler: Handler,
    *,
    offline: bool = False,
    attempts: int = 3,
    sleeps: list[float] | None = None,
    clock: Clock | None = None,
) -> JsonApi:
    settings = Settings(home=tmp_path, offline=offline, http_timeout_s=2.0)
    clock = clock or Clock()
    recorded = sleeps if sleeps is not None else []
    api = JsonApi(
        "testapi",
        "https://api.example.test/v1",
        settings,
        httpx.Client(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(max_attempts=attempts, backoff_base_s=0.001),
        cache=DiskCache(tmp_path / "cache", clock=clock),
        hints=ErrorHints(auth="set TESTAPI_KEY", zone="use a real zone"),
        sleep=recorded.append,
        rand=lambda: 0.5,
        clock=clock,
    )
    api.add_secret(Secret(SECRET))
    return api


def json_response(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


# ------------------------------------------------------------------------ retries and errors


def test_a_503_then_200_is_retried_and_returns_the_json(tmp_path: Path) -> None:
    answers = iter([json_response(503, {"error": "busy"}), json_response(200, {"ok": 1})])
    sleeps: list[float] = []
    api = make_api(tmp_path, lambda req: next(answers), sleeps=sleeps)

    assert api.get_json("/thing", zone="DE") == {"ok": 1}
    assert len(sleeps) == 1


def test_retry_after_seconds_is_honoured_instead_of_backoff(tmp_path: Path) -> None:
    answers = iter([json_response(429, {}, **{"Retry-After": "2"}), json_response(200, [1])])
    sleeps: list[float] = []
    api = make_api(tmp_path, lambda req: next(answers), sleeps=sleeps)

    api.get_json("/thing")

    assert sleeps == [2.0]


def test_backoff_doubles_with_each_try() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=100.0)

    waits = [policy.backoff_s(n, rand=1.0) for n in range(4)]

    assert waits == [1.0, 2.0, 4.0, 8.0]
    assert policy.backoff_s(3, rand=0.0) == 4.0  # jitter: between half and all of the delay


def test_persistent_429_ends_in_a_rate_limit_error_that_says_what_to_do(tmp_path: Path) -> None:
    api = make_api(tmp_path, lambda req: json_response(429, {"message": "slow down"}))

    with pytest.raises(ProviderRateLimitError) as err:
        api.get_json("/thing", zone="DE")

    text = str(err.value)
    assert "429" in text
    assert "/v1/thing" in text
    assert "'DE'" in text
    assert "3 tries" in text


def test_a_retry_after_beyond_the_limit_is_not_waited_for(tmp_path: Path) -> None:
    sleeps: list[float] = []
    api = make_api(
        tmp_path, lambda req: json_response(429, {}, **{"Retry-After": "3600"}), sleeps=sleeps
    )

    with pytest.raises(ProviderRateLimitError, match="wait 3600 s"):
        api.get_json("/thing")
    assert sleeps == []


def test_401_is_an_auth_error_with_the_provider_hint(tmp_path: Path) -> None:
    api = make_api(tmp_path, lambda req: json_response(401, {"message": "bad token"}))

    with pytest.raises(ProviderAuthError, match="set TESTAPI_KEY") as err:
        api.get_json("/thing")
    assert err.value.status == 401
    assert "bad token" in str(err.value)


def test_404_for_a_zone_is_an_unknown_zone_and_a_provider_error(tmp_path: Path) -> None:
    api = make_api(tmp_path, lambda req: json_response(404, {"message": "no such zone"}))

    with pytest.raises(ProviderZoneError) as err:
        api.get_json("/thing", zone="XX")

    assert isinstance(err.value, UnknownZoneError)
    assert isinstance(err.value, ProviderError)
    assert "'XX'" in str(err.value)
    assert "use a real zone" in str(err.value)


def test_5xx_after_all_tries_names_the_endpoint_and_suggests_a_fallback(tmp_path: Path) -> None:
    api = make_api(tmp_path, lambda req: json_response(502, {}))

    with pytest.raises(ProviderError, match=r"/v1/thing: HTTP 502.*3 tries.*embedded"):
        api.get_json("/thing")


def test_invalid_json_is_a_clear_provider_error(tmp_path: Path) -> None:
    api = make_api(tmp_path, lambda req: httpx.Response(200, text="<html>proxy login</html>"))

    with pytest.raises(ProviderError, match=r"/v1/thing: invalid JSON"):
        api.get_json("/thing")


def test_timeouts_are_retried_then_reported(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        raise httpx.ReadTimeout("timed out", request=req)

    api = make_api(tmp_path, handler)

    with pytest.raises(
        ProviderTimeoutError, match=r"no complete answer within 2 s.*http_timeout_s"
    ):
        api.get_json("/thing")
    assert len(calls) == 3


def test_every_request_carries_a_timeout_even_on_an_injected_client(tmp_path: Path) -> None:
    seen: list[object] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req.extensions.get("timeout"))
        return json_response(200, {})

    make_api(tmp_path, handler).get_json("/thing")

    assert seen == [{"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}]


def test_connection_errors_are_reported_without_the_secret(tmp_path: Path) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach host with key {SECRET}", request=req)

    with pytest.raises(ProviderError) as err:
        make_api(tmp_path, handler).get_json("/thing")

    assert SECRET not in str(err.value)
    assert "connection failed" in str(err.value)


def test_the_secret_never_appears_in_errors_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("/busy"):
            return json_response(503, {"message": f"busy, key {SECRET}"})
        return json_response(401, {"message": f"token {SECRET} is invalid"})

    api = make_api(tmp_path, handler)
    caplog.set_level(logging.DEBUG)
    texts = []
    for path in ("/busy", "/auth"):
        with pytest.raises(ProviderError) as err:
            api.get_json(path, headers={"auth-token": SECRET})
        texts.append(str(err.value))
        texts.append(repr(err.value))

    assert all(SECRET not in t for t in texts)
    assert SECRET not in caplog.text
    assert "***" in texts[2]


# ------------------------------------------------------------------------ redaction helpers


def test_redact_url_drops_credentials_and_secret_query_values() -> None:
    url = "https://user:pw@api.example.test/v3/x?zone=DE&api_key=abc123&token=zzz"

    clean = redact_url(url)

    assert "pw" not in clean
    assert "abc123" not in clean
    assert "zzz" not in clean
    assert "zone=DE" in clean
    assert "api_key=***" in clean


def test_redact_replaces_plain_and_url_encoded_secrets() -> None:
    secret = "a b/c+d"

    text = redact(f"raw {secret} and encoded a+b%2Fc%2Bd", [Secret(secret), None])

    assert text == "raw *** and encoded ***"


def test_build_client_uses_the_configured_timeout() -> None:
    with build_client(Settings(http_timeout_s=3.5)) as client:
        assert client.timeout.read == 3.5
        assert client.follow_redirects is False


# ------------------------------------------------------------------------ time helpers


@given(st.integers(min_value=0, max_value=4_000_000_000))
def test_format_and_parse_time_round_trip(t: int) -> None:
    assert parse_time_utc(format_time_utc(float(t))) == float(t)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-29T10:00Z", 1795946400.0),
        ("2026-11-29T10:00:00.000Z", 1795946400.0),
        ("2026-11-29T10:00:00+00:00", 1795946400.0),
        ("2026-11-29T11:00:00+01:00", 1795946400.0),
        ("2026-11-29T10:00:00", 1795946400.0),
    ],
)
def test_parse_time_utc_reads_the_formats_the_apis_use(text: str, expected: float) -> None:
    assert parse_time_utc(text) == expected


def test_parse_time_utc_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not an ISO-8601"):
        parse_time_utc("yesterday")


@given(
    st.floats(min_value=0, max_value=1e9),
    st.floats(min_value=1, max_value=1e7),
    st.floats(min_value=0.01, max_value=2.0),
)
def test_time_chunks_cover_the_range_without_gaps(start: float, span: float, frac: float) -> None:
    chunk = span * frac
    chunks = time_chunks(start, start + span, chunk)

    assert chunks[0][0] == start
    assert chunks[-1][1] == start + span
    assert all(b - a <= chunk + 1e-6 for a, b in chunks)
    assert all(chunks[i][1] == chunks[i + 1][0] for i in range(len(chunks) - 1))


def test_a_reversed_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="end must be after the start"):
        check_range("x", 10.0, 5.0)


def test_point_buffer_sorts_dedupes_and_trims_to_the_range() -> None:
    buf = PointBuffer()
    for t, v in [(3600.0, 2.0), (0.0, 1.0), (7200.0, 3.0), (3600.0, 2.5)]:
        buf.add(t, v, estimated=False, forecast=t > 4000)

    s = buf.to_series(
        zone="Z",
        source="x:y",
        signal="average",
        basis="lca",
        step_s=3600.0,
        start_s=1800.0,
        end_s=7200.0,
        endpoint="/e",
    )

    assert list(s.times_s) == [0.0, 3600.0]
    assert list(s.values_g_per_kwh) == [1.0, 2.5]
    assert s.kind == "measured"


def test_point_buffer_without_points_in_range_raises() -> None:
    with pytest.raises(ProviderError, match="no data for zone 'Z'"):
        PointBuffer().to_series(
            zone="Z",
            source="x:y",
            signal="average",
            basis="lca",
            step_s=60.0,
            start_s=0.0,
            end_s=60.0,
            endpoint="/e",
        )


# ------------------------------------------------------------------------ cache and offline


def test_a_fresh_cache_entry_is_served_without_a_request(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        return json_response(200, {"n": len(calls)})

    clock = Clock()
    api = make_api(tmp_path, handler, clock=clock)

    first = api.get_json("/thing", params={"zone": "DE"}, ttl_s=60)
    second = api.get_json("/thing", params={"zone": "DE"}, ttl_s=60)
    clock.t += 61
    third = api.get_json("/thing", params={"zone": "DE"}, ttl_s=60)

    assert (first, second, third) == ({"n": 1}, {"n": 1}, {"n": 2})


def test_offline_mode_serves_the_cache_at_any_age(tmp_path: Path) -> None:
    clock = Clock()
    online = make_api(tmp_path, lambda req: json_response(200, {"v": 7}), clock=clock)
    online.get_json("/thing", params={"zone": "DE"})
    clock.t += 10 * 86400

    def no_network(req: httpx.Request) -> httpx.Response:
        raise AssertionError("offline mode must not make requests")

    offline = make_api(tmp_path, no_network, offline=True, clock=clock)

    assert offline.get_json("/thing", params={"zone": "DE"}) == {"v": 7}


def test_offline_mode_without_a_cache_entry_says_so(tmp_path: Path) -> None:
    api = make_api(tmp_path, lambda req: json_response(200, {}), offline=True)

    with pytest.raises(ProviderOfflineError, match=r"offline mode is on.*nothing is cached"):
        api.get_json("/thing", params={"zone": "FR"}, zone="FR")


def test_cache_keys_ignore_credential_parameters(tmp_path: Path) -> None:
    a = DiskCache.key("/x", {"zone": "DE", "api_key": "one"})
    b = DiskCache.key("/x", {"zone": "DE", "api_key": "two"})

    assert a == b
    assert a != DiskCache.key("/x", {"zone": "FR"})


def test_cache_files_never_contain_the_secret(tmp_path: Path) -> None:
    api = make_api(tmp_path, lambda req: json_response(200, {"fine": True}))

    api.get_json("/thing", params={"zone": "DE"}, headers={"auth-token": SECRET})

    files = list((tmp_path / "cache").glob("*.json"))
    assert len(files) == 1
    assert SECRET not in files[0].read_text()


def test_a_corrupt_cache_entry_counts_as_missing_and_is_removed(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    key = cache.key("/x", {})
    cache.path(key).write_text("{not json")

    assert cache.get(key, max_age_s=None) is None
    assert not cache.path(key).exists()


def test_cache_round_trips_json_and_clear_removes_it(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "c")
    cache.put("k", {"a": [1, 2]}, endpoint="/x")

    entry = cache.get("k", max_age_s=None)

    assert entry is not None
    assert entry.payload == {"a": [1, 2]}
    assert entry.endpoint == "/x"
    assert json.loads(cache.path("k").read_text())["endpoint"] == "/x"
    assert cache.clear() == 1


def test_an_unwritable_cache_never_breaks_the_request(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = DiskCache(blocker / "sub")  # a directory under a file cannot be created

    cache.put("k", {"a": 1})

    assert cache.get("k", max_age_s=None) is None


def test_a_400_that_names_the_zone_is_a_zone_error(tmp_path: Path) -> None:
    api = make_api(tmp_path, lambda req: json_response(400, {"error": "Zone 'XX' unsupported"}))

    with pytest.raises(ProviderZoneError, match=r"HTTP 400: zone 'XX' is not known"):
        api.get_json("/thing", zone="XX")


def test_a_400_about_something_else_is_not_a_zone_error(tmp_path: Path) -> None:
    api = make_api(tmp_path, lambda req: json_response(400, {"error": "bad datetime order"}))

    with pytest.raises(ProviderError, match="request refused") as err:
        api.get_json("/thing", zone="DE")
    assert not isinstance(err.value, UnknownZoneError)


def test_an_unsupported_url_scheme_is_not_retried(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        raise httpx.UnsupportedProtocol("no", request=req)

    with pytest.raises(ProviderError, match="connection failed"):
        make_api(tmp_path, handler).get_json("/thing")
    assert len(calls) == 1
