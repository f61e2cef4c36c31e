"""Resampling, alignment, profile integration, gap detection and fill policies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenforge.errors import ConfigError, DataError
from greenforge.grid.ops import (
    align,
    emissions_g,
    fill_gaps,
    find_gaps,
    integrate_energy_g,
    mean_intensity,
    resample,
)
from greenforge.grid.series import IntensitySeries

STEPS_S = [300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0]
values_st = st.lists(
    st.floats(min_value=0.0, max_value=1500.0, allow_nan=False), min_size=1, max_size=60
)


def series_of(values: list[float], step_s: float = 3600.0, start_s: float = 0.0) -> IntensitySeries:
    t = start_s + step_s * np.arange(len(values), dtype=np.float64)
    return IntensitySeries(t, np.array(values), step_s, "GB", "test:GB")


def integral(series: IntensitySeries) -> float:
    """Integral of intensity over the series' coverage (g/kWh x s)."""
    a = np.maximum(series.times_s, series.start_s)
    b = np.minimum(series.times_s + series.step_s, series.end_s)
    return float(np.sum(series.values_g_per_kwh * (b - a)))


@given(values_st, st.sampled_from(STEPS_S), st.sampled_from(STEPS_S), st.integers(0, 200))
@settings(max_examples=150, deadline=None)
def test_resampling_preserves_the_integral_over_the_coverage(
    values: list[float], step_s: float, new_step_s: float, offset_min: int
) -> None:
    series = series_of(values, step_s, start_s=1.7e9 + 60.0 * offset_min)
    out = resample(series, new_step_s)
    assert out.step_s == new_step_s
    assert np.all(np.mod(out.times_s, new_step_s) == 0)
    # each new point is the mean over the covered part of its step
    a = np.maximum(out.times_s, series.start_s)
    b = np.minimum(out.times_s + new_step_s, series.end_s)
    area = float(np.sum(out.values_g_per_kwh * (b - a)))
    assert area == pytest.approx(integral(series), rel=1e-9, abs=1e-6)


@given(values_st, st.sampled_from([(3600.0, 900.0), (3600.0, 300.0), (1800.0, 600.0)]))
@settings(max_examples=100, deadline=None)
def test_upsampling_then_downsampling_returns_the_original(
    values: list[float], steps: tuple[float, float]
) -> None:
    coarse, fine = steps
    series = series_of(values, coarse, start_s=1.6e9 - (1.6e9 % coarse))
    back = resample(resample(series, fine), coarse)
    np.testing.assert_allclose(back.values_g_per_kwh, series.values_g_per_kwh, atol=1e-9)
    np.testing.assert_array_equal(back.times_s, series.times_s)


@given(st.floats(min_value=0.0, max_value=2000.0), st.sampled_from(STEPS_S))
def test_resampling_a_constant_series_keeps_the_constant(value: float, new_step_s: float) -> None:
    out = resample(series_of([value] * 10, 3600.0, start_s=1234.0), new_step_s)
    np.testing.assert_allclose(out.values_g_per_kwh, value, rtol=1e-12)


def test_downsampling_is_time_weighted() -> None:
    series = series_of([100.0, 200.0, 300.0, 400.0], 900.0)
    out = resample(series, 3600.0)
    assert out.values_g_per_kwh.tolist() == [250.0]


def test_resampling_carries_estimated_and_forecast_flags() -> None:
    series = series_of([1.0, 2.0, 3.0, 4.0], 900.0).replace(
        estimated=np.array([False, True, False, False]),
        forecast=np.array([False, False, False, True]),
    )
    hourly = resample(series, 3600.0)
    assert hourly.estimated_flags.tolist() == [True]
    fine = resample(series, 300.0)
    assert fine.estimated_flags.tolist() == [False] * 3 + [True] * 3 + [False] * 6
    assert fine.forecast_flags.tolist() == [False] * 9 + [True] * 3


def test_resampling_rejects_a_bad_step_and_a_gappy_series() -> None:
    with pytest.raises(ConfigError, match="bad resampling step"):
        resample(series_of([1.0, 2.0]), 0.0)
    gappy = IntensitySeries(np.array([0.0, 3600.0, 3 * 3600.0]), np.ones(3), 3600.0, "GB", "t")
    with pytest.raises(DataError, match="1 gap"):
        resample(gappy, 900.0)


@given(values_st, st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.0, max_value=1.0))
def test_align_gives_the_mean_over_each_measurement_interval(
    values: list[float], f0: float, f1: float
) -> None:
    series = series_of(values, 900.0)
    lo, hi = sorted((f0 * series.end_s, f1 * series.end_s))
    got = align(series, [lo], [hi])
    assert float(got[0]) >= min(values) - 1e-9
    assert float(got[0]) <= max(values) + 1e-9
    np.testing.assert_allclose(got, mean_intensity(series, [lo], [hi]))


def test_align_refuses_intervals_outside_the_series_unless_asked() -> None:
    series = series_of([100.0, 200.0])
    with pytest.raises(DataError, match=r"interval 1 .* outside .*hold_edges=True"):
        align(series, [0.0, 7000.0], [10.0, 8000.0])
    held = align(series, [0.0, 7000.0], [10.0, 8000.0], hold_edges=True)
    assert held.tolist() == [100.0, 200.0]


def test_align_requires_matching_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        align(series_of([1.0]), [0.0, 1.0], [1.0])


@given(
    st.lists(st.floats(min_value=0.0, max_value=900.0), min_size=25, max_size=25),
    st.floats(min_value=0.0, max_value=500.0),
)
@settings(max_examples=30, deadline=None)
def test_integrating_a_constant_power_profile_equals_energy_times_mean_intensity(
    values: list[float], power_w: float
) -> None:
    series = series_of(values, 3600.0)
    energy = np.full(86400, power_w)  # 1 s samples over 24 h, J per sample
    got = integrate_energy_g(series, 0.0, 1.0, energy)
    expected = power_w * 86400 / 3.6e6 * float(np.mean(values[:24]))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


@given(
    st.lists(st.floats(min_value=0.0, max_value=900.0), min_size=1, max_size=6),
    st.lists(st.floats(min_value=0.0, max_value=1e4), min_size=1, max_size=80),
    st.floats(min_value=-5000.0, max_value=25000.0),
    st.sampled_from([1.0, 7.5, 60.0, 450.0]),
)
@settings(max_examples=150, deadline=None)
def test_profile_integration_equals_the_sum_of_per_sample_emissions(
    values: list[float], energy: list[float], start_s: float, step_s: float
) -> None:
    series = series_of(values, 3600.0)
    starts = start_s + step_s * np.arange(len(energy))
    expected = float(np.sum(emissions_g(series, starts, starts + step_s, energy)))
    got = integrate_energy_g(series, start_s, step_s, energy)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_integration_weights_energy_by_the_hour_it_was_used_in() -> None:
    series = series_of([100.0, 500.0])
    energy = np.zeros(7200)
    energy[3600:] = 1000.0  # all energy in the second hour: 3.6 MJ = 1 kWh
    assert integrate_energy_g(series, 0.0, 1.0, energy) == pytest.approx(500.0)
    assert integrate_energy_g(series, 0.0, 1.0, energy, pue=1.5) == pytest.approx(750.0)


def test_between_keeps_the_points_overlapping_a_range() -> None:
    series = series_of([1.0, 2.0, 3.0, 4.0]).replace(estimated=np.array([0, 1, 0, 0], dtype=bool))
    part = series.between(3600.0 + 60.0, 3 * 3600.0)
    assert part.values_g_per_kwh.tolist() == [2.0, 3.0]
    assert part.estimated_flags.tolist() == [True, False]
    assert series.between(7200.0, 7200.0).values_g_per_kwh.tolist() == [3.0]
    with pytest.raises(DataError, match="outside"):
        series.between(5 * 3600.0, 6 * 3600.0)


def test_find_gaps_reports_each_missing_stretch() -> None:
    t = np.array([0.0, 900.0, 3600.0, 4500.0, 9000.0])
    gaps = find_gaps(t, 900.0)
    assert [(g.start_s, g.end_s, g.missing_points) for g in gaps] == [
        (1800.0, 3600.0, 2),
        (5400.0, 9000.0, 4),
    ]
    assert find_gaps(np.arange(5) * 900.0, 900.0) == []


def gappy() -> IntensitySeries:
    t = np.array([0.0, 3600.0, 4 * 3600.0])
    return IntensitySeries(t, np.array([100.0, 200.0, 500.0]), 3600.0, "GB", "test:GB")


def test_fill_policy_none_raises_and_names_the_gaps() -> None:
    with pytest.raises(
        DataError,
        match=r"1 gap\(s\), 2 missing point\(s\): 2 missing from 1970-01-01T02:00:00Z \(next point at 1970-01-01T04:00:00Z\)",
    ):
        fill_gaps(gappy(), "none")


def test_ffill_holds_the_last_value_and_flags_the_filled_points() -> None:
    out = fill_gaps(gappy(), "ffill")
    assert out.values_g_per_kwh.tolist() == [100.0, 200.0, 200.0, 200.0, 500.0]
    assert out.estimated_flags.tolist() == [False, False, True, True, False]
    assert "2 gap point(s) filled: ffill" in out.source


def test_interpolate_is_linear_in_time() -> None:
    out = fill_gaps(gappy(), "interpolate")
    assert out.values_g_per_kwh.tolist() == [100.0, 200.0, 300.0, 400.0, 500.0]


def test_profile_fill_uses_the_embedded_profile_of_the_zone() -> None:
    from greenforge.grid.profile import profile_quantiles

    out = fill_gaps(gappy(), "profile")
    expected = profile_quantiles("GB", np.array([7200.0, 10800.0]), 0.5)
    np.testing.assert_allclose(out.values_g_per_kwh[2:4], expected)
    custom = fill_gaps(gappy(), "profile", profile=lambda t: np.full(t.shape, 7.0))
    assert custom.values_g_per_kwh[2:4].tolist() == [7.0, 7.0]


def test_profile_fill_for_a_zone_without_profile_says_what_to_do() -> None:
    series = gappy().replace(zone="FR")
    with pytest.raises(DataError, match="ffill or interpolate"):
        fill_gaps(series, "profile")


@given(
    st.lists(
        st.tuples(st.integers(1, 4), st.floats(min_value=0.0, max_value=1000.0)),
        min_size=2,
        max_size=30,
    ),
    st.sampled_from(["ffill", "interpolate"]),
)
def test_filling_keeps_every_present_point_and_flags_only_the_new_ones(
    steps_and_values: list[tuple[int, float]], policy: str
) -> None:
    offsets = np.cumsum([k for k, _ in steps_and_values])
    times = 900.0 * offsets
    values = np.array([v for _, v in steps_and_values])
    series = IntensitySeries(times, values, 900.0, "GB", "test:GB")
    out = fill_gaps(series, policy)
    assert find_gaps(out.times_s, 900.0) == []
    assert (out.start_s, out.end_s) == (series.start_s, series.end_s)
    present = np.isin(out.times_s, times)
    np.testing.assert_array_equal(out.values_g_per_kwh[present], values)
    np.testing.assert_array_equal(out.estimated_flags, ~present)
    filled = out.values_g_per_kwh[~present]
    if policy == "ffill":
        prev = np.searchsorted(times, out.times_s[~present]) - 1
        np.testing.assert_array_equal(filled, values[prev])
    else:
        assert np.all(filled >= values.min() - 1e-9)
        assert np.all(filled <= values.max() + 1e-9)


def test_unknown_fill_policy_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="none, ffill, interpolate, profile"):
        fill_gaps(gappy(), "zero")
