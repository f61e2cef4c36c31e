"""Specification of the ``watttime`` provider against recorded API v3 answers."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from greenforge.config import Secret, Settings
from greenforge.errors import ConfigError, ProviderError
from greenforge.grid.cache import DiskCache
from greenforge.grid.http import ProviderAuthError, ProviderOfflineError, RetryPolicy
from greenforge.grid.provider import IntensityProvider, create_provider
from greenforge.grid.providers.watttime import WattTimeProvider
from greenforge.units import lb_per_mwh_to_g_per_kwh

FIXTURES = Path(__file__).parent / "fixtures" / "api" / "watttime"
NOW = 1795946400.0  # 2026-11-29T10:00:00Z
HOUR = 3600.0
USER = "greenforge-test"
PASSWORD = "wt-pass-8d7c6b5a"
Handler = Callable[[httpx.Request], httpx.Response]


def fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


TOKEN = str(fixture("login.json")["token"])  # type: ignore[index]


class FakeWattTime:
    """Recorded answers, a valid token, and a switch to expire it once."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.expire_next = False

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.requests.append(req)
        if req.url.path == "/login":
            expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if req.headers.get("Authorization") != f"Basic {expected}":
                return httpx.Response(401, json=fixture("error_401.json"))
            return httpx.Response(200, json=fixture("login.json"))
        if req.headers.get("Authorization") != f"Bearer {TOKEN}" or self.expire_next:
            self.expire_next = False
            return httpx.Response(401, json=fixture("error_401.json"))
        if req.url.params.get("region") != "CAISO_NORTH":
            return httpx.Response(403, json=fixture("error_403_region.json"))
        name = {
            "/v3/historical": "historical.json",
            "/v3/forecast": "forecast.json",
            "/v3/signal-index": "signal_index.json",
        }[req.url.path]
        return httpx.Response(200, json=fixture(name))

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def provider(
    tmp_path: Path,
    handler: Handler,
    *,
    password: str | None = PASSWORD,
    offline: bool = False,
    region: str | None = None,
    clock: Callable[[], float] = lambda: NOW,
) -> WattTimeProvider:
    settings = Settings(
        home=tmp_path,
        watttime_username=USER,
        watttime_password=Secret(password) if password else None,
        watttime_region=region,
        offline=offline,
    )
    return WattTimeProvider(
        settings,
        httpx.Client(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(max_attempts=2, backoff_base_s=0.0),
        cache=DiskCache(tmp_path / "cache", clock=clock),
        clock=clock,
        sleep=lambda s: None,
    )


def test_it_is_registered_and_satisfies_the_provider_protocol(tmp_path: Path) -> None:
    p = create_provider("watttime", Settings(home=tmp_path))

    assert isinstance(p, IntensityProvider)


def test_history_logs_in_then_converts_lbs_per_mwh_exactly(tmp_path: Path) -> None:
    api = FakeWattTime()
    start = 1795824000.0  # 2026-11-28T00:00Z

    s = provider(tmp_path, api).history("CAISO_NORTH", start, start + HOUR)

    assert api.paths() == ["/login", "/v3/historical"]
    assert api.requests[1].url.params["signal_type"] == "co2_moer"
    assert api.requests[1].url.params["start"] == "2026-11-28T00:00:00+00:00"
    assert len(s) == 12  # the 13th point (inclusive end) lies outside [start, end)
    assert s.values_g_per_kwh[0] == lb_per_mwh_to_g_per_kwh(950.0)
    assert s.values_g_per_kwh[0] == pytest.approx(430.9127515)
    assert (s.signal, s.basis, s.source) == ("marginal", "direct", "watttime:historical")
    assert s.step_s == 300.0
    assert not s.forecast_flags.any()


def test_forecast_is_marginal_and_flagged_forecast(tmp_path: Path) -> None:
    api = FakeWattTime()

    s = provider(tmp_path, api).forecast("CAISO_NORTH", NOW, NOW + HOUR)

    assert api.requests[-1].url.params["horizon_hours"] == "1"
    assert len(s) == 12
    assert s.kind == "forecast"
    assert bool(s.forecast_flags.all())
    assert s.source == "watttime:forecast"
    assert s.values_g_per_kwh[1] == lb_per_mwh_to_g_per_kwh(803.5)


def test_signal_index_is_a_percentile_not_an_intensity(tmp_path: Path) -> None:
    idx = provider(tmp_path, FakeWattTime()).signal_index("CAISO_NORTH")

    assert idx.percentile == 37.0
    assert idx.time_s == NOW
    assert idx.source == "watttime:signal-index"


def test_the_token_is_reused_until_it_expires(tmp_path: Path) -> None:
    api = FakeWattTime()
    now = [NOW]
    p = provider(tmp_path, api, clock=lambda: now[0])

    p.signal_index("CAISO_NORTH")
    p.forecast("CAISO_NORTH", NOW, NOW + HOUR)
    now[0] += 31 * 60
    p.forecast("CAISO_NORTH", now[0], now[0] + HOUR)

    assert api.paths().count("/login") == 2


def test_a_401_logs_in_again_once(tmp_path: Path) -> None:
    api = FakeWattTime()
    p = provider(tmp_path, api)
    p.signal_index("CAISO_NORTH")
    api.expire_next = True

    p.forecast("CAISO_NORTH", NOW, NOW + HOUR)

    assert api.paths() == [
        "/login",
        "/v3/signal-index",
        "/v3/forecast",
        "/login",
        "/v3/forecast",
    ]


def test_mapped_zones_and_the_region_setting_choose_the_region(tmp_path: Path) -> None:
    assert provider(tmp_path, FakeWattTime()).region_for("US-NW-BPAT") == "BPA"
    assert provider(tmp_path, FakeWattTime()).region_for("PJM_NJ") == "PJM_NJ"
    forced = provider(tmp_path, FakeWattTime(), region="CAISO_NORTH")
    assert forced.region_for("US-CAL-CISO") == "CAISO_NORTH"


def test_a_zone_without_a_region_is_a_config_error_with_guidance(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no WattTime region for zone 'US-CAL-CISO'.*region"):
        provider(tmp_path, FakeWattTime()).forecast("US-CAL-CISO", NOW, NOW + HOUR)


def test_a_region_outside_the_plan_is_an_auth_error_naming_the_region_hint(
    tmp_path: Path,
) -> None:
    with pytest.raises(ProviderAuthError, match=r"/v3/forecast.*HTTP 403.*my-access"):
        provider(tmp_path, FakeWattTime()).forecast("NOPE_REGION", NOW, NOW + HOUR)


def test_missing_credentials_are_a_config_error_naming_the_env_vars(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WATTTIME_USERNAME and WATTTIME_PASSWORD"):
        provider(tmp_path, FakeWattTime(), password=None).forecast("CAISO_NORTH", NOW, NOW + 1)


def test_a_wrong_password_is_an_auth_error_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(ProviderAuthError) as err:
        provider(tmp_path, FakeWattTime(), password="nope-wrong-1").forecast(
            "CAISO_NORTH", NOW, NOW + HOUR
        )

    assert "/login" in str(err.value)
    assert "WATTTIME_PASSWORD" in str(err.value)
    assert "nope-wrong-1" not in str(err.value)


def test_other_units_are_refused_rather_than_misconverted(tmp_path: Path) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/login":
            return httpx.Response(200, json={"token": TOKEN})
        body = fixture("forecast.json")
        body["meta"]["units"] = "kg_co2_per_mwh"  # type: ignore[index]
        return httpx.Response(200, json=body)

    with pytest.raises(ProviderError, match="units 'kg_co2_per_mwh'"):
        provider(tmp_path, handler).forecast("CAISO_NORTH", NOW, NOW + HOUR)


def test_offline_mode_serves_cache_without_logging_in(tmp_path: Path) -> None:
    provider(tmp_path, FakeWattTime()).forecast("CAISO_NORTH", NOW, NOW + HOUR)
    api = FakeWattTime()
    offline = provider(tmp_path, api, offline=True)

    assert len(offline.forecast("CAISO_NORTH", NOW, NOW + HOUR)) == 12
    assert api.requests == []
    with pytest.raises(ProviderOfflineError):
        offline.history("CAISO_NORTH", NOW - HOUR, NOW)


def test_password_and_token_never_appear_in_errors_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/login":
            return httpx.Response(200, json={"token": TOKEN})
        echoed = f"{req.headers.get('Authorization')} with {PASSWORD}"
        return httpx.Response(503, json={"message": echoed})

    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderError) as err:
        provider(tmp_path, handler).forecast("CAISO_NORTH", NOW, NOW + HOUR)

    for text in (str(err.value), repr(err.value), caplog.text):
        assert PASSWORD not in text
        assert TOKEN not in text


def test_an_echoed_basic_auth_header_is_redacted_too(tmp_path: Path) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"message": f"rejected {req.headers['Authorization']}"})

    with pytest.raises(ProviderAuthError) as err:
        provider(tmp_path, handler).forecast("CAISO_NORTH", NOW, NOW + HOUR)

    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert encoded not in str(err.value)
    assert "rejected Basic ***" in str(err.value)
