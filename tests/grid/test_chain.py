"""The explicit provider chain: first answer wins, fallbacks are visible and warned."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from greenforge.config import Settings
from greenforge.errors import ConfigError, ProviderError, UnknownNameError, UnknownZoneError
from greenforge.grid.chain import GridFallbackWarning, intensity_for
from greenforge.grid.provider import IntensityProvider
from greenforge.grid.series import IntensitySeries
from greenforge.testing import StaticIntensity

T0 = 1_700_000_000.0


class FailingProvider:
    """A live provider whose API is down."""

    name = "live"

    def zones(self) -> Sequence[str]:
        return []

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        raise ProviderError("live API answered 503 Service Unavailable after 3 retries")

    def forecast(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        raise ProviderError("live API answered 503")


def test_default_chain_is_the_embedded_provider() -> None:
    series = intensity_for(Settings(), "DE", T0, T0 + 3600)
    assert series.source.startswith("embedded:profile-2021-2023:DE")


def test_first_provider_that_answers_is_used_without_fallback_note() -> None:
    settings = Settings(intensity_providers=("static", "embedded"))
    providers: dict[str, IntensityProvider] = {"static": StaticIntensity(123.0)}
    series = intensity_for(settings, "DE", T0, T0 + 60, providers=providers)
    assert series.source == "static:DE"
    assert series.values_g_per_kwh.tolist() == [123.0]


def test_fallback_is_named_in_the_source_and_warned() -> None:
    settings = Settings(intensity_providers=("live", "embedded-annual"))
    with pytest.warns(GridFallbackWarning, match="'live' failed for zone 'FR'; using"):
        series = intensity_for(settings, "FR", T0, T0 + 60, providers={"live": FailingProvider()})
    assert series.source.startswith("embedded:electricitymaps-yearly-2023:FR (fallback after live:")
    assert "ProviderError: live API answered 503" in series.source


def test_forecast_asks_forecast_and_falls_back_through_the_chain() -> None:
    settings = Settings(intensity_providers=("static", "embedded"))
    with pytest.warns(GridFallbackWarning):
        series = intensity_for(
            settings, "GB", T0, T0 + 7200, forecast=True, providers={"static": StaticIntensity(5.0)}
        )
    assert series.forecast_flags.all()
    assert "fallback after static: ProviderError" in series.source


class BrokenDiskProvider(FailingProvider):
    name = "disk"

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        raise PermissionError(13, "Permission denied", "/data/cache.json")


def test_an_unwrapped_io_error_also_falls_back_visibly() -> None:
    settings = Settings(intensity_providers=("disk", "embedded"))
    with pytest.warns(GridFallbackWarning):
        series = intensity_for(
            settings, "DE", T0, T0 + 60, providers={"disk": BrokenDiskProvider()}
        )
    assert "fallback after disk: ProviderError: PermissionError" in series.source


def test_no_fallback_outside_the_configured_chain() -> None:
    settings = Settings(intensity_providers=("live",))
    with pytest.raises(ProviderError, match=r"no grid provider answered for zone 'DE' \(live:"):
        intensity_for(settings, "DE", T0, T0 + 60, providers={"live": FailingProvider()})


def test_unknown_zone_everywhere_raises_the_zone_error_with_close_matches() -> None:
    with pytest.raises(UnknownZoneError, match="Close matches"):
        intensity_for(Settings(), "DEX", T0, T0 + 60)


def test_misspelt_provider_name_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError, match="embedded"):
        intensity_for(Settings(intensity_providers=("embeded",)), "DE", T0, T0 + 60)


def test_unconfigured_files_provider_is_skipped_visibly() -> None:
    settings = Settings(intensity_providers=("files", "embedded"))
    with pytest.warns(GridFallbackWarning):
        series = intensity_for(settings, "DE", T0, T0 + 60)
    assert "fallback after files: ConfigError" in series.source


def test_reversed_range_is_rejected() -> None:
    with pytest.raises(ConfigError, match="precedes start"):
        intensity_for(Settings(), "DE", T0, T0 - 1)


class VerboseFailingProvider(FailingProvider):
    name = "verbose"

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        raise ProviderError("verbose: " + "context " * 40 + "To fix it: run once online.")


def test_when_every_provider_fails_the_error_keeps_each_whole_message() -> None:
    # the advice at the end of a long provider message must not be cut off
    settings = Settings(intensity_providers=("verbose",))
    with pytest.raises(ProviderError, match="To fix it: run once online"):
        intensity_for(settings, "DE", T0, T0 + 60, providers={"verbose": VerboseFailingProvider()})
