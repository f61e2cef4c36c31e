"""Specification of the ``electricitymaps`` provider against recorded API v3 answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from greenforge.config import Secret, Settings, load_settings
from greenforge.errors import ConfigError, ProviderError, UnknownZoneError
from greenforge.grid.cache import DiskCache
from greenforge.grid.http import ProviderAuthError, ProviderOfflineError, RetryPolicy
from greenforge.grid.provider import IntensityProvider, create_provider
from greenforge.grid.providers.electricitymaps import ElectricityMapsProvider

FIXTURES = Path(__file__).parent / "fixtures" / "api" / "electricitymaps"
NOW = 1795946400.0  # 2026-11-29T10:00:00Z, the time the fixtures were "recorded"
HOUR = 3600.0
TOKEN = "em-test-token-5f2a9c"
Handler = Callable[[httpx.Request], httpx.Response]


def fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


def recorded(log: list[httpx.Request]) -> Handler:
    routes = {
        "/v3/carbon-intensity/latest": "latest.json",
        "/v3/carbon-intensity/history": "history.json",
        "/v3/carbon-intensity/past-range": "past_range.json",
        "/v3/carbon-intensity/forecast": "forecast.json",
    }

    def handler(req: httpx.Request) -> httpx.Response:
        log.append(req)
        if req.headers.get("auth-token") != TOKEN:
            return httpx.Response(401, json=fixture("error_401.json"))
        if req.url.params.get("zone") != "DE":
            return httpx.Response(404, json=fixture("error_404_zone.json"))
        return httpx.Response(200, json=fixture(routes[req.url.path]))

    return handler


def provider(
    tmp_path: Path,
    handler: Handler,
    *,
    token: str | None = TOKEN,
    offline: bool = False,
    basis: str = "lca",
) -> ElectricityMapsProvider:
    settings = Settings(
        home=tmp_path,
        electricitymaps_token=Secret(token) if token else None,
        offline=offline,
        intensity_basis=basis,
    )
    return ElectricityMapsProvider(
        settings,
        httpx.Client(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(max_attempts=2, backoff_base_s=0.0),
        cache=DiskCache(tmp_path / "cache", clock=lambda: NOW),
        clock=lambda: NOW,
        sleep=lambda s: None,
    )


def test_it_is_registered_and_satisfies_the_provider_protocol(tmp_path: Path) -> None:
    p = create_provider("electricitymaps", Settings(home=tmp_path))

    assert isinstance(p, IntensityProvider)
    assert p.name == "electricitymaps"


def test_latest_returns_one_point_with_the_estimated_flag(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    s = provider(tmp_path, recorded(log)).latest("DE")

    assert len(s) == 1
    assert s.values_g_per_kwh[0] == 302.0
    assert s.source == "electricitymaps:latest"
    assert (s.signal, s.basis) == ("average", "lca")
    assert bool(s.estimated_flags[0]) is True
    assert log[0].headers["auth-token"] == TOKEN


def test_recent_history_uses_the_24h_endpoint_and_keeps_per_point_flags(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    s = provider(tmp_path, recorded(log)).history("DE", NOW - 6 * HOUR, NOW)

    assert log[0].url.path == "/v3/carbon-intensity/history"
    assert s.source == "electricitymaps:history"
    assert len(s) == 6  # 04:00 ... 09:00, the newest hour in the answer
    assert s.step_s == HOUR
    assert s.kind == "measured"
    assert list(s.estimated_flags) == [False, False, False, True, True, True]
    assert np.all(np.diff(s.times_s) == HOUR)


def test_older_history_uses_past_range_for_whole_utc_days(tmp_path: Path) -> None:
    log: list[httpx.Request] = []
    start = 1793512800.0  # 2026-11-01T06:00Z

    s = provider(tmp_path, recorded(log)).history("DE", start, start + 6 * HOUR)

    assert [r.url.path for r in log] == ["/v3/carbon-intensity/past-range"]
    assert log[0].url.params["start"] == "2026-11-01T00:00:00Z"
    assert log[0].url.params["end"] == "2026-11-02T00:00:00Z"
    assert s.source == "electricitymaps:past-range"
    assert len(s) == 6
    assert s.times_s[0] == start


def test_a_second_identical_query_is_served_from_the_cache(tmp_path: Path) -> None:
    log: list[httpx.Request] = []
    p = provider(tmp_path, recorded(log))
    start = 1793512800.0

    p.history("DE", start, start + HOUR)
    p.history("DE", start + 2 * HOUR, start + 3 * HOUR)  # same UTC day -> same request

    assert len(log) == 1


def test_forecast_points_are_flagged_forecast(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    s = provider(tmp_path, recorded(log)).forecast("DE", NOW, NOW + 12 * HOUR)

    assert s.source == "electricitymaps:forecast"
    assert s.kind == "forecast"
    assert len(s) == 12
    assert bool(s.forecast_flags.all())
    assert "horizonHours" not in log[0].url.params


def test_forecast_beyond_24h_asks_for_a_longer_horizon(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    provider(tmp_path, recorded(log)).forecast("DE", NOW, NOW + 30 * HOUR)

    assert log[0].url.params["horizonHours"] == "48"


def test_direct_basis_asks_for_direct_emission_factors(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    provider(tmp_path, recorded(log), basis="direct").forecast("DE", NOW, NOW + HOUR)

    assert log[0].url.params["emissionFactorType"] == "direct"


def test_a_missing_token_is_a_config_error_naming_the_env_var(tmp_path: Path) -> None:
    p = provider(tmp_path, recorded([]), token=None)

    with pytest.raises(ConfigError, match="ELECTRICITYMAPS_API_KEY"):
        p.history("DE", NOW - HOUR, NOW)


def test_the_token_is_read_from_the_documented_env_vars(tmp_path: Path) -> None:
    for env in ({"ELECTRICITYMAPS_API_KEY": TOKEN}, {"GREENFORGE_ELECTRICITYMAPS_TOKEN": TOKEN}):
        settings = load_settings(env=env, config_file=None, home=tmp_path)
        assert settings.electricitymaps_token == Secret(TOKEN)


def test_a_wrong_token_gives_an_auth_error_with_the_env_var_hint(tmp_path: Path) -> None:
    p = provider(tmp_path, recorded([]), token="wrong-token-123")

    with pytest.raises(ProviderAuthError) as err:
        p.history("DE", NOW - HOUR, NOW)

    text = str(err.value)
    assert "ELECTRICITYMAPS_API_KEY / GREENFORGE_ELECTRICITYMAPS_TOKEN" in text
    assert "/v3/carbon-intensity/history" in text
    assert "wrong-token-123" not in text


def test_an_unknown_zone_is_an_unknown_zone_error_with_guidance(tmp_path: Path) -> None:
    with pytest.raises(UnknownZoneError) as err:
        provider(tmp_path, recorded([])).history("XX-NOPE", NOW - HOUR, NOW)

    assert isinstance(err.value, ProviderError)  # so a fallback chain moves on
    assert "'XX-NOPE'" in str(err.value)
    assert "zone key" in str(err.value)


def test_rate_limit_is_retried_then_reported(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        return httpx.Response(429, json={"message": "Too many requests"})

    with pytest.raises(ProviderError, match="429"):
        provider(tmp_path, handler).forecast("DE", NOW, NOW + HOUR)
    assert len(calls) == 2


def test_server_errors_and_bad_json_name_the_endpoint(tmp_path: Path) -> None:
    answers = {
        "/v3/carbon-intensity/latest": httpx.Response(500, text="oops"),
        "/v3/carbon-intensity/forecast": httpx.Response(200, text="not json"),
    }
    p = provider(tmp_path, lambda req: answers[req.url.path])

    with pytest.raises(ProviderError, match=r"carbon-intensity/latest.*HTTP 500"):
        p.latest("DE")
    with pytest.raises(ProviderError, match=r"carbon-intensity/forecast.*invalid JSON"):
        p.forecast("DE", NOW, NOW + HOUR)


def test_an_answer_in_another_shape_is_reported_as_such(tmp_path: Path) -> None:
    p = provider(tmp_path, lambda req: httpx.Response(200, json={"zone": "DE"}))

    with pytest.raises(ProviderError, match=r"unexpected response.*'history'"):
        p.history("DE", NOW - HOUR, NOW)


def test_offline_mode_serves_what_was_cached_and_refuses_the_rest(tmp_path: Path) -> None:
    provider(tmp_path, recorded([])).forecast("DE", NOW, NOW + HOUR)

    def no_network(req: httpx.Request) -> httpx.Response:
        raise AssertionError("offline mode must not make requests")

    offline = provider(tmp_path, no_network, token=None, offline=True)

    assert len(offline.forecast("DE", NOW, NOW + HOUR)) == 1
    with pytest.raises(ProviderOfflineError, match="offline"):
        offline.history("DE", NOW - HOUR, NOW)


def test_the_token_never_appears_in_errors_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def echo(req: httpx.Request) -> httpx.Response:
        status = 503 if req.url.path.endswith("latest") else 401
        return httpx.Response(status, json={"message": f"bad token {req.headers['auth-token']}"})

    caplog.set_level(logging.DEBUG)
    p = provider(tmp_path, echo)
    messages: list[str] = []
    with pytest.raises(ProviderError) as err:
        p.latest("DE")
    messages += [str(err.value), repr(err.value)]
    with pytest.raises(ProviderError) as err:
        p.history("DE", NOW - HOUR, NOW)
    messages += [str(err.value), repr(err.value)]

    assert all(TOKEN not in m for m in messages)
    assert TOKEN not in caplog.text


def test_zones_are_the_electricity_maps_zone_keys(tmp_path: Path) -> None:
    zones = provider(tmp_path, recorded([])).zones()

    assert "DE" in zones
    assert "US-CAL-CISO" in zones


def test_a_misspelt_zone_gets_close_matches(tmp_path: Path) -> None:
    with pytest.raises(UnknownZoneError) as err:
        provider(tmp_path, recorded([])).history("US-CAL-CSO", NOW - HOUR, NOW)

    assert "US-CAL-CISO" in err.value.suggestions
