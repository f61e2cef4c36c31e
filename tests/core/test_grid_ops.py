"""Integration of energy against an intensity step function."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.errors import DataError
from greenforge.grid.ops import emissions_g, mean_intensity
from greenforge.grid.series import IntensitySeries, constant_series


def hourly(values: list[float]) -> IntensitySeries:
    t = np.arange(len(values), dtype=np.float64) * 3600.0
    return IntensitySeries(t, np.array(values), 3600.0, "GB", "test")


def test_mean_over_partial_hours() -> None:
    series = hourly([100.0, 200.0, 300.0])
    got = mean_intensity(series, [0.0, 1800.0, 9000.0], [3600.0, 5400.0, 9000.0])
    assert got.tolist() == [100.0, 150.0, 300.0]


def test_one_kwh_over_two_hours() -> None:
    series = hourly([100.0, 200.0])
    assert emissions_g(series, [0.0], [7200.0], [3.6e6]).tolist() == [150.0]


def test_constant_series_covers_its_span() -> None:
    series = constant_series(250.0, "DE", "embedded:test", 10.0, 20.0)
    assert series.end_s == 20.0
    assert mean_intensity(series, [12.0], [18.0]).tolist() == [250.0]


def test_series_rejects_unsorted_times() -> None:
    with pytest.raises(DataError, match="not increasing"):
        IntensitySeries(np.array([1.0, 0.0]), np.array([1.0, 2.0]), 1.0, "GB", "x")


@given(
    st.lists(st.floats(min_value=0, max_value=1000), min_size=1, max_size=48),
    st.floats(min_value=0, max_value=1e7),
)
def test_whole_span_integral_matches_average(values: list[float], energy_j: float) -> None:
    series = hourly(values)
    co2 = emissions_g(series, [0.0], [series.end_s], [energy_j])[0]
    assert math.isclose(co2, energy_j / 3.6e6 * float(np.mean(values)), rel_tol=1e-9, abs_tol=1e-9)


@given(
    st.lists(st.floats(min_value=0, max_value=1000), min_size=2, max_size=24), st.integers(1, 50)
)
def test_splitting_intervals_conserves_emissions(values: list[float], pieces: int) -> None:
    series = hourly(values)
    edges = np.linspace(0.0, series.end_s, pieces + 1)
    energy = np.full(pieces, 1000.0 / pieces)
    split = emissions_g(series, edges[:-1], edges[1:], energy).sum()
    # same energy spread evenly over the whole span
    whole = emissions_g(series, [0.0], [series.end_s], [1000.0])[0]
    assert math.isclose(split, whole, rel_tol=1e-9, abs_tol=1e-12)
