"""Specification of the ``energidataservice`` provider against recorded dataset answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from greenforge.config import Settings
from greenforge.errors import ProviderError, UnknownZoneError
from greenforge.grid.cache import DiskCache
from greenforge.grid.http import ProviderOfflineError, RetryPolicy
from greenforge.grid.provider import IntensityProvider, create_provider
from greenforge.grid.providers.energidata import EnergiDataProvider

FIXTURES = Path(__file__).parent / "fixtures" / "api" / "energidataservice"
NOW = 1795946400.0  # 2026-11-29T10:00:00Z
DAY_28 = 1795824000.0  # 2026-11-28T00:00:00Z
Handler = Callable[[httpx.Request], httpx.Response]


def fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


def recorded(log: list[httpx.Request]) -> Handler:
    def handler(req: httpx.Request) -> httpx.Response:
        log.append(req)
        name = {"/dataset/CO2Emis": "co2emis.json", "/dataset/CO2EmisProg": "co2emisprog.json"}
        return httpx.Response(200, json=fixture(name[req.url.path]))

    return handler


def provider(tmp_path: Path, handler: Handler, *, offline: bool = False) -> EnergiDataProvider:
    return EnergiDataProvider(
        Settings(home=tmp_path, offline=offline),
        httpx.Client(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(max_attempts=2, backoff_base_s=0.0),
        cache=DiskCache(tmp_path / "cache", clock=lambda: NOW),
        clock=lambda: NOW,
        sleep=lambda s: None,
    )


def test_it_is_registered_keyless_and_satisfies_the_protocol(tmp_path: Path) -> None:
    p = create_provider("energidataservice", Settings(home=tmp_path))

    assert isinstance(p, IntensityProvider)
    assert list(p.zones()) == ["DK-DK1", "DK-DK2"]


def test_history_reads_co2emis_for_the_price_area_in_5_minute_steps(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    s = provider(tmp_path, recorded(log)).history("DK-DK1", DAY_28, DAY_28 + 3600)

    params = log[0].url.params
    assert json.loads(params["filter"]) == {"PriceArea": ["DK1"]}
    assert params["timezone"] == "UTC"
    assert params["start"] == "2026-11-27T22:00"  # widened by 2 h each side
    assert params["end"] == "2026-11-28T03:00"
    assert len(s) == 12
    assert s.step_s == 300.0
    assert s.times_s[0] == DAY_28
    assert s.values_g_per_kwh[0] == 110.0
    assert s.values_g_per_kwh[1] == 111.5
    assert (s.source, s.signal, s.basis, s.kind) == (
        "energidataservice:CO2Emis",
        "average",
        "direct",
        "measured",
    )


def test_forecast_reads_co2emisprog_and_flags_the_points(tmp_path: Path) -> None:
    log: list[httpx.Request] = []

    s = provider(tmp_path, recorded(log)).forecast("DK1", NOW, NOW + 1800)

    assert log[0].url.path == "/dataset/CO2EmisProg"
    assert len(s) == 6
    assert bool(s.forecast_flags.all())
    assert s.source == "energidataservice:CO2EmisProg"


def test_only_dk1_and_dk2_are_zones(tmp_path: Path) -> None:
    with pytest.raises(UnknownZoneError, match="DK-DK1"):
        provider(tmp_path, recorded([])).history("DK-DK3", DAY_28, DAY_28 + 3600)


def test_records_of_the_other_area_and_null_values_are_ignored(tmp_path: Path) -> None:
    body = fixture("co2emis.json")
    records = body["records"]  # type: ignore[index]
    records[0]["PriceArea"] = "DK2"
    records[1]["CO2Emission"] = None
    answer = httpx.Response(200, json=body)

    s = provider(tmp_path, lambda req: answer).history("DK-DK1", DAY_28 - 7200, DAY_28)

    assert len(s) == 22


def test_a_truncated_answer_is_reported_not_silently_used(tmp_path: Path) -> None:
    body = fixture("co2emis.json")
    body["total"] = 5000  # type: ignore[index]

    with pytest.raises(ProviderError, match="truncated"):
        provider(tmp_path, lambda req: httpx.Response(200, json=body)).history(
            "DK-DK1", DAY_28, DAY_28 + 3600
        )


def test_a_400_answer_carries_the_api_message(tmp_path: Path) -> None:
    p = provider(tmp_path, lambda req: httpx.Response(400, json=fixture("error_400.json")))

    with pytest.raises(ProviderError, match=r"/dataset/CO2Emis.*HTTP 400.*unknown column"):
        p.history("DK-DK1", DAY_28, DAY_28 + 3600)


def test_offline_mode_answers_from_the_cache_only(tmp_path: Path) -> None:
    provider(tmp_path, recorded([])).history("DK-DK1", DAY_28, DAY_28 + 3600)
    offline = provider(tmp_path, recorded([]), offline=True)

    assert len(offline.history("DK-DK1", DAY_28, DAY_28 + 3600)) == 12
    with pytest.raises(ProviderOfflineError):
        offline.forecast("DK-DK1", NOW, NOW + 3600)
