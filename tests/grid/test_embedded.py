"""The embedded provider: annual averages everywhere, typical hourly profiles for 16 zones."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.config import Settings
from greenforge.errors import ConfigError, UnknownZoneError
from greenforge.grid.profile import (
    profile_info,
    profile_quantiles,
    profile_series,
    profile_zones,
)
from greenforge.grid.provider import IntensityProvider, create_provider, provider_names
from greenforge.grid.providers.embedded import EmbeddedProvider


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.timezone.utc).timestamp()


PROFILE_ZONES = [
    "AU-NSW", "AU-VIC", "BR-CS", "CA-ON", "CL-SEN", "DE", "GB", "IN-WE",
    "JP-TK", "KR", "SG", "US-CAL-CISO", "US-MIDA-PJM", "US-NY-NYIS", "US-TEX-ERCO", "ZA",
]  # fmt: skip


def test_embedded_providers_are_registered_by_name() -> None:
    assert {"embedded", "embedded-annual", "files"} <= set(provider_names())
    provider = create_provider("embedded", Settings())
    assert isinstance(provider, IntensityProvider)
    assert "DE" in provider.zones()


def test_the_16_hourly_zones_have_profiles() -> None:
    assert profile_zones() == PROFILE_ZONES


def test_history_of_a_profile_zone_is_a_labelled_hourly_profile() -> None:
    provider = EmbeddedProvider()
    series = provider.history("gb", utc(2024, 6, 1, 10, 30), utc(2024, 6, 1, 14))
    assert series.kind == "profile"
    assert series.source == "embedded:profile-2021-2023:GB"
    assert series.zone == "GB"
    assert series.step_s == 3600.0
    assert series.times_s[0] == utc(2024, 6, 1, 10)
    assert len(series) == 4
    assert series.estimated_flags.all()
    assert not series.forecast_flags.any()
    provenance = series.provenance()
    assert (provenance.source, provenance.basis, provenance.time_resolved) == (
        series.source,
        "lca",
        True,
    )


def test_history_elsewhere_is_the_annual_average_of_that_year() -> None:
    series = EmbeddedProvider().history("FR", utc(2022, 3, 1), utc(2022, 3, 2))
    assert series.kind == "annual"
    assert series.source == "embedded:electricitymaps-yearly-2022:FR"
    assert series.values_g_per_kwh.tolist() == [91.0]
    assert (series.start_s, series.end_s) == (utc(2022, 3, 1), utc(2022, 3, 2))


def test_annual_preference_skips_the_profile() -> None:
    series = create_provider("embedded-annual", Settings()).history(
        "DE", utc(2030, 1, 1), utc(2030, 1, 2)
    )
    assert series.kind == "annual"
    assert series.source == "embedded:electricitymaps-yearly-2025:DE"


def test_forecast_is_the_profile_flagged_as_forecast() -> None:
    series = EmbeddedProvider().forecast("DE", utc(2030, 1, 1), utc(2030, 1, 3))
    assert series.kind == "profile"
    assert len(series) == 48
    assert series.forecast_flags.all()
    annual = EmbeddedProvider().forecast("PL", utc(2030, 1, 1), utc(2030, 1, 3))
    assert annual.kind == "annual"
    assert annual.forecast_flags.all()


def test_forecast_quantiles_bracket_the_median_forecast() -> None:
    provider = EmbeddedProvider()
    lo = provider.forecast_quantile("GB", utc(2030, 1, 1), utc(2030, 1, 2), 0.1)
    mid = provider.forecast("GB", utc(2030, 1, 1), utc(2030, 1, 2))
    hi = provider.forecast_quantile("GB", utc(2030, 1, 1), utc(2030, 1, 2), 0.9)
    assert np.all(lo.values_g_per_kwh <= mid.values_g_per_kwh)
    assert np.all(mid.values_g_per_kwh <= hi.values_g_per_kwh)
    assert hi.source == "embedded:profile-2021-2023:GB (p90)"
    assert hi.forecast_flags.all()


def test_direct_basis_is_lower_than_life_cycle() -> None:
    t = np.arange(48) * 3600.0 + utc(2024, 1, 1)
    direct = profile_quantiles("DE", t, 0.5, basis="direct")
    lca = profile_quantiles("DE", t, 0.5, basis="lca")
    assert np.all(direct < lca)
    series = create_provider("embedded", Settings(intensity_basis="direct")).history(
        "DE", t[0], t[-1]
    )
    assert series.basis == "direct"


@given(
    st.floats(min_value=0.0, max_value=4e9),
    st.floats(min_value=0.05, max_value=0.95),
    st.floats(min_value=0.05, max_value=0.95),
)
def test_quantiles_are_monotone_in_q(t: float, q1: float, q2: float) -> None:
    lo, hi = sorted((q1, q2))
    values = profile_quantiles("GB", [t], [lo, hi])
    assert values.shape == (2, 1)
    assert values[0, 0] <= values[1, 0] + 1e-9


def test_p10_median_p90_bracket_each_other() -> None:
    t = utc(2024, 7, 1) + 3600.0 * np.arange(24 * 7)
    p10, p50, p90 = profile_quantiles("US-CAL-CISO", t, [0.1, 0.5, 0.9])
    assert np.all(p10 <= p50)
    assert np.all(p50 <= p90)
    assert np.any(p10 < p90)
    series = profile_series("US-CAL-CISO", t[0], t[-1] + 3600, q=0.9)
    assert series.source.endswith("(p90)")
    np.testing.assert_allclose(series.values_g_per_kwh, p90)


def test_profile_shows_the_daily_cycle_californias_solar_dip() -> None:
    day = utc(2024, 5, 15) + 3600.0 * np.arange(24)  # local standard time = UTC - 8 h
    values = profile_quantiles("US-CAL-CISO", day, 0.5)
    noon_local = values[20]  # 20:00 UTC = 12:00 PST
    night_local = values[4]  # 04:00 UTC = 20:00 PST
    assert noon_local < 0.8 * night_local


def test_weekday_and_weekend_are_kept_apart_where_they_differ() -> None:
    split = {z for z in PROFILE_ZONES if profile_info(z)["weekday_weekend_split"]}
    assert {"DE", "GB", "KR", "US-CAL-CISO"} <= split
    assert {"SG", "ZA", "IN-WE"}.isdisjoint(split)
    for zone in PROFILE_ZONES:
        info = profile_info(zone)
        above_noise = info["weekend_median_diff_share"] >= 1.5 * info["weekday_baseline_diff_share"]
        assert info["weekday_weekend_split"] == (
            above_noise and info["weekend_median_diff_share"] > 0.02
        )
    wednesday, sunday = utc(2024, 6, 5, 12), utc(2024, 6, 9, 12)
    de = profile_quantiles("DE", [wednesday, sunday], 0.5)
    assert de[1] < de[0]  # less industry demand, more renewables share on Sundays
    sg = profile_quantiles("SG", [wednesday, sunday], 0.5)
    assert sg[0] == sg[1]


def test_bad_quantile_basis_and_zone_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match=r"between 0\.05 and 0\.95"):
        profile_quantiles("GB", [0.0], 0.99)
    with pytest.raises(ConfigError, match="'lca'"):
        profile_quantiles("GB", [0.0], 0.5, basis="scope3")
    with pytest.raises(UnknownZoneError, match="hourly profiles"):
        profile_quantiles("FR", [0.0], 0.5)
    with pytest.raises(UnknownZoneError, match="Close matches"):
        EmbeddedProvider().history("GBR-X", 0.0, 1.0)
    with pytest.raises(ConfigError, match="end must not precede start"):
        EmbeddedProvider().history("FR", 10.0, 0.0)


def test_a_profile_series_of_thousands_of_years_is_refused_not_allocated() -> None:
    with pytest.raises(ConfigError, match="time range too long"):
        profile_series("DE", 1.6e9, 1.6e9 + 7000 * 365.25 * 86400)
