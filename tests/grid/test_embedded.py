"""The embedded provider: annual averages everywhere, typical hourly profiles for 16 zones."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.config import Settings
from greenforge.errors import ConfigError, UnknownZoneError
from greenforge.grid.ops import find_gaps, mean_intensity, resample
from greenforge.grid.profile import (
    profile_info,
    profile_quantiles,
    profile_series,
    profile_zones,
)
from greenforge.grid.provider import IntensityProvider, create_provider, provider_names
from greenforge.grid.providers.embedded import EmbeddedProvider
from greenforge.grid.zones import annual_intensity


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


def test_an_annual_range_across_new_year_uses_each_years_value() -> None:
    series = EmbeddedProvider().history("FR", utc(2021, 12, 31), utc(2022, 1, 2))
    assert series.kind == "annual"
    assert series.source == "embedded:electricitymaps-yearly-2021+2022:FR"
    assert series.step_s == 86_400.0
    assert series.times_s.tolist() == [utc(2021, 12, 31), utc(2022, 1, 1)]
    assert series.values_g_per_kwh.tolist() == [60.0, 91.0]  # FR 2021, FR 2022
    assert find_gaps(series.times_s, series.step_s) == []
    assert mean_intensity(series, [utc(2021, 12, 31, 12)], [utc(2022, 1, 1, 12)]).tolist() == [
        pytest.approx((60.0 + 91.0) / 2)
    ]
    hourly = resample(series, 3600.0)
    assert hourly.values_g_per_kwh[:24].tolist() == [60.0] * 24
    assert hourly.values_g_per_kwh[24:48].tolist() == [91.0] * 24


def test_an_annual_range_across_new_year_starts_at_the_midnight_before_it() -> None:
    series = EmbeddedProvider().history("FR", utc(2021, 12, 31, 22, 30), utc(2022, 1, 1, 2))
    assert series.times_s.tolist() == [utc(2021, 12, 31), utc(2022, 1, 1)]
    assert series.end_s >= utc(2022, 1, 1, 2)
    assert mean_intensity(series, [utc(2021, 12, 31, 23)], [utc(2022, 1, 1, 1)]).tolist() == [
        pytest.approx(75.5)
    ]


def test_a_range_ending_exactly_at_new_year_stays_in_the_old_year() -> None:
    series = EmbeddedProvider().history("FR", utc(2021, 12, 31, 12), utc(2022, 1, 1))
    assert series.source == "embedded:electricitymaps-yearly-2021:FR"
    assert series.values_g_per_kwh.tolist() == [60.0]
    assert (series.start_s, series.end_s) == (utc(2021, 12, 31, 12), utc(2022, 1, 1))


def test_years_beyond_the_table_use_its_latest_year_named_in_the_source() -> None:
    # FR's table ends in 2025: 2026 falls back to 2025, and the source says 2024+2025 only
    series = EmbeddedProvider().history("FR", utc(2024, 12, 31), utc(2026, 1, 2))
    assert series.source == "embedded:electricitymaps-yearly-2024+2025:FR"
    fr2024 = annual_intensity("FR", 2024).intensity_g_per_kwh
    fr2025 = annual_intensity("FR", 2025).intensity_g_per_kwh
    assert series.values_g_per_kwh[0] == fr2024
    assert set(series.values_g_per_kwh[1:].tolist()) == {fr2025}
    later = EmbeddedProvider().history("FR", utc(2025, 12, 31), utc(2027, 1, 2))
    assert later.source == "embedded:electricitymaps-yearly-2025:FR"
    assert later.values_g_per_kwh.tolist() == [fr2025]


def test_a_forecast_across_new_year_is_flagged_on_every_point() -> None:
    series = EmbeddedProvider().forecast("FR", utc(2021, 12, 30), utc(2022, 1, 3))
    assert series.source == "embedded:electricitymaps-yearly-2021+2022:FR"
    assert len(series) == 4
    assert series.forecast_flags.all()


def test_an_ember_zone_has_one_value_across_years() -> None:
    series = EmbeddedProvider().history("UKR", utc(2021, 12, 31), utc(2023, 1, 2))
    assert series.source.startswith("embedded:ember-")
    assert len(series) == 1


def test_a_multi_year_annual_series_of_centuries_is_refused_not_allocated() -> None:
    with pytest.raises(ConfigError, match="time range too long"):
        EmbeddedProvider().history("FR", utc(2021, 1, 1), utc(2021, 1, 1) + 300 * 365.25 * 86400)
