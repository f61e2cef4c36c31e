"""Specification of the ``uk-neso`` provider against recorded Carbon Intensity API answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from greenforge.config import Settings
from greenforge.errors import ProviderError, UnknownZoneError
from greenforge.grid.cache import DiskCache
from greenforge.grid.http import RetryPolicy
from greenforge.grid.provider import IntensityProvider, create_provider
from greenforge.grid.providers.ukneso import REGIONS, UkNesoProvider, known_zones, region_id

FIXTURES = Path(__file__).parent / "fixtures" / "api" / "ukneso"
NOW = 1795946400.0  # 2026-11-29T10:00:00Z
DAY_28 = 1795824000.0  # 2026-11-28T00:00:00Z
HALF_HOUR = 1800.0
Handler = Callable[[httpx.Request], httpx.Response]


def fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


def recorded(log: list[httpx.Request]) -> Handler:
    def handler(req: httpx.Request) -> httpx.Response:
        log.append(req)
        path = req.url.path
        if path == "/intensity/date":
            name = "intensity_date.json"
        elif path.startswith("/regional/") and path.endswith("/regionid/13"):
            name = "regional_fw48h.json" if "/fw48h/" in path else "regional_range.json"
        elif path.startswith("/intensity/") and path.endswith("/fw48h"):
            name = "fw48h.json"
        elif path.startswith("/intensity/"):
            name = "intensity_range.json"
        else:
            return httpx.Response(400, json=fixture("error_400.json"))
        return httpx.Response(200, json=fixture(name))

    return handler


def provider(tmp_path: Path, handler: Handler, *, neso_region: str | None = None) -> UkNesoProvider:
    return UkNesoProvider(
        Settings(home=tmp_path, neso_region=neso_region),
        httpx.Client(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(max_attempts=2, backoff_base_s=0.0),
        cache=DiskCache(tmp_path / "cache", clock=lambda: NOW),
        clock=lambda: NOW,
        sleep=lambda s: None,
    )


def test_it_is_registered_keyless_and_satisfies_the_protocol(tmp_path: Path) -> None:
    p = create_provider("uk-neso", Settings(home=tmp_path))

    assert isinstance(p, IntensityProvider)
    assert "GB" in p.zones()
    assert "GB-NESO-13" in p.zones()
    assert "GB-NESO-LONDON" in p.zones()


def test_national_history_prefers_actuals_and_flags_forecast_fill_ins(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    s = provider(tmp_path, recorded(log)).history("GB", DAY_28, DAY_28 + 4 * 3600)

    assert log[0].url.path == "/intensity/2026-11-28T00:00Z/2026-11-28T04:00Z"
    assert s.step_s == HALF_HOUR
    assert list(s.values_g_per_kwh) == [138, 143, 148, 153, 158, 163, 170, 175]
    assert list(s.forecast_flags) == [False] * 6 + [True] * 2
    assert s.kind == "mixed"
    assert (s.source, s.signal, s.basis) == ("uk-neso:history", "average", "direct")


def test_long_ranges_are_cut_into_14_day_requests(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    provider(tmp_path, recorded(log)).history("GB", DAY_28 - 20 * 86400, DAY_28 + 3600)

    assert len(log) == 2
    assert log[0].url.path == "/intensity/2026-11-08T00:00Z/2026-11-22T00:00Z"


def test_today_uses_the_date_endpoint(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    s = provider(tmp_path, recorded(log)).today()

    assert log[0].url.path == "/intensity/date"
    assert len(s) == 4
    assert s.source == "uk-neso:date"


def test_national_forecast_is_48h_ahead_and_flagged(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    s = provider(tmp_path, recorded(log)).forecast("GB", NOW, NOW + 2 * 3600)

    assert log[0].url.path == "/intensity/2026-11-29T10:00Z/fw48h"
    assert list(s.values_g_per_kwh) == [100, 110, 120, 130]
    assert s.kind == "forecast"
    assert s.source == "uk-neso:forecast"


def test_regional_forecast_by_zone_name_is_estimated_and_forecast(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    s = provider(tmp_path, recorded(log)).forecast("GB-NESO-LONDON", NOW, NOW + 3600)

    assert log[0].url.path == "/regional/intensity/2026-11-29T10:00Z/fw48h/regionid/13"
    assert list(s.values_g_per_kwh) == [150, 157]
    assert bool(s.estimated_flags.all())
    assert bool(s.forecast_flags.all())
    assert s.source == "uk-neso:forecast:region-13"


def test_regional_history_and_the_neso_region_setting(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    s = provider(tmp_path, recorded(log), neso_region="London").history("GB", DAY_28, DAY_28 + 3600)

    assert log[0].url.path == "/regional/intensity/2026-11-28T00:00Z/2026-11-28T01:00Z/regionid/13"
    assert list(s.values_g_per_kwh) == [160, 161]
    assert s.kind == "forecast"  # NESO publishes no regional actuals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GB", None),
        ("GB-NESO", None),
        ("GB-NESO-13", 13),
        ("gb-neso-north-scotland", 1),
        ("GB-NESO-NORTH-WALES-AND-MERSEYSIDE", 6),
        ("North Wales & Merseyside", 6),
        ("17", 17),
    ],
)
def test_region_names_and_ids_resolve(text: str, expected: int | None) -> None:
    assert region_id(text) == expected


def test_every_region_has_an_id_zone_and_a_name_zone() -> None:
    zones = known_zones()

    assert len(zones) == 2 + 2 * len(REGIONS)
    assert all(region_id(z) is not None for z in zones[2:])


def test_an_unknown_region_lists_close_matches(tmp_path: Path) -> None:
    with pytest.raises(UnknownZoneError, match="GB-NESO-LONDON"):
        provider(tmp_path, recorded([])).forecast("GB-NESO-LONDN", NOW, NOW + 3600)


def test_a_400_answer_is_reported_with_neso_s_message(tmp_path: Path) -> None:
    p = provider(tmp_path, lambda req: httpx.Response(400, json=fixture("error_400.json")))

    with pytest.raises(ProviderError, match=r"HTTP 400.*valid ISO 8601 datetime"):
        p.history("GB", DAY_28, DAY_28 + 3600)


def test_a_range_outside_the_answer_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="no data for zone 'GB'"):
        provider(tmp_path, recorded([])).history("GB", DAY_28 + 86400, DAY_28 + 90000)
