"""The tracker's numpy-free intensity: the same values, labels and integrals as the provider."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from greenforge.errors import ConfigError, UnknownZoneError
from greenforge.grid.ops import emissions_g
from greenforge.grid.providers.embedded import EmbeddedProvider
from greenforge.grid.series import IntensitySeries
from greenforge.grid.steps import StepIntensity, embedded_steps, has_embedded_profile

NEW_YEAR_2024_S = 1_704_067_200.0
HOUR_S = 3600.0
DAY_S = 86_400.0


@pytest.mark.parametrize("prefer", ["profile", "annual"])
@pytest.mark.parametrize("basis", ["lca", "direct"])
@pytest.mark.parametrize("zone", ["DE", "gb", "FR", "IN", "ZW", "USA"])
@pytest.mark.parametrize(
    ("start_s", "width_s"),
    [
        (1_720_000_123.4, 10.0),  # seconds inside one hour
        (1_720_000_123.4, 7 * DAY_S),  # the tracker's one-week horizon
        (NEW_YEAR_2024_S - 3.3 * DAY_S, 8 * DAY_S),  # across New Year: daily annual points
    ],
)
def test_embedded_steps_equal_the_embedded_provider(
    zone: str, basis: str, prefer: str, start_s: float, width_s: float
) -> None:
    series = EmbeddedProvider(prefer, basis).history(zone, start_s, start_s + width_s)
    steps = embedded_steps(zone, start_s, start_s + width_s, basis, prefer)
    assert steps.provenance == series.provenance()
    assert list(steps.times_s) == series.times_s.tolist()
    assert list(steps.values_g_per_kwh) == series.values_g_per_kwh.tolist()
    assert steps.step_s == series.step_s


def test_embedded_steps_know_which_zones_have_a_profile() -> None:
    assert has_embedded_profile("DE")
    assert not has_embedded_profile("ZW")
    with pytest.raises(UnknownZoneError):
        embedded_steps("Atlantis", 0.0, 1.0)
    with pytest.raises(ConfigError, match="end must not precede start"):
        embedded_steps("DE", 10.0, 1.0)
    with pytest.raises(ConfigError, match="1970-9999"):
        embedded_steps("DE", 1e12, 1e12 + 1)  # the provider answers such ranges


def _irregular() -> IntensitySeries:
    """Hourly points with a two-hour gap (the previous value holds over it)."""
    times = [0.0, HOUR_S, 2 * HOUR_S, 5 * HOUR_S, 6 * HOUR_S]
    return IntensitySeries(
        times_s=NEW_YEAR_2024_S + np.array(times),
        values_g_per_kwh=np.array([100.0, 350.0, 20.0, 800.0, 410.0]),
        step_s=HOUR_S,
        zone="XX",
        source="test:irregular",
    )


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    start=st.floats(-2 * HOUR_S, 9 * HOUR_S),
    width=st.one_of(st.just(0.0), st.floats(0.0, 10 * HOUR_S)),
    energy_j=st.floats(0.0, 1e7),
    pue=st.floats(1.0, 3.0),
)
def test_step_co2e_equals_the_vectorised_integral(
    start: float, width: float, energy_j: float, pue: float
) -> None:
    series = _irregular()
    steps = StepIntensity.from_series(series)
    s = NEW_YEAR_2024_S + start
    expected = float(emissions_g(series, [s], [s + width], [energy_j], pue)[0])
    got = steps.co2e_g(s, s + width, energy_j, pue)
    assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12)
