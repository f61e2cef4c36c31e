"""Unit conversions are exact and invertible."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from greenforge import units

finite = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)


def test_constants_are_exact() -> None:
    assert units.J_PER_KWH == 3_600_000.0
    assert units.G_PER_LB == 453.59237


def test_watttime_pounds_per_mwh_convert_exactly() -> None:
    # 1000 lb/MWh = 453.59237 g/kWh
    assert units.lb_per_mwh_to_g_per_kwh(1000.0) == 453.59237


@given(finite)
def test_kwh_round_trip(energy_j: float) -> None:
    back = units.kwh_to_j(units.j_to_kwh(energy_j))
    assert math.isclose(back, energy_j, rel_tol=1e-12, abs_tol=1e-300)


@given(finite)
def test_lb_per_mwh_round_trip(value: float) -> None:
    back = units.g_per_kwh_to_lb_per_mwh(units.lb_per_mwh_to_g_per_kwh(value))
    assert math.isclose(back, value, rel_tol=1e-12, abs_tol=1e-12)


@given(finite, st.floats(min_value=0, max_value=2000), st.floats(min_value=1.0, max_value=3.0))
def test_co2e_is_energy_times_pue_times_intensity(
    energy_j: float, g_per_kwh: float, pue: float
) -> None:
    expected = energy_j / 3.6e6 * pue * g_per_kwh
    assert math.isclose(
        units.co2e_g(energy_j, g_per_kwh, pue), expected, rel_tol=1e-12, abs_tol=1e-12
    )


def test_small_unit_helpers() -> None:
    assert units.uj_to_j(2_500_000.0) == 2.5
    assert units.mj_to_j(1500.0) == 1.5
    assert units.mw_to_w(250_000.0) == 250.0
