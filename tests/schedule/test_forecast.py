"""Specification of the forecasters: registry, what each predicts, and that none sees the future."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenforge.errors import ConfigError, DataError, UnknownNameError
from greenforge.grid.profile import profile_quantiles
from greenforge.schedule.forecast import (
    DEFAULT_FORECASTER,
    Blend,
    DayProfile,
    ForecastInput,
    QuantileForecaster,
    create_forecaster,
    forecast_after,
    forecast_errors,
    forecaster_names,
)

H = 3600.0
T0 = 1_672_531_200.0  # 2023-01-01T00:00Z


def inputs(
    values: np.ndarray, decisions: list[int], horizon: int, zone: str = "GB"
) -> ForecastInput:
    """History rows ending just before each decision index (what the back-tester builds)."""
    need = max(create_forecaster(n).history_steps(horizon, H) for n in ("blend", "profile-7d"))
    rows = np.stack([values[i - need : i] for i in decisions])
    times = T0 + H * np.asarray(decisions, dtype=np.float64)
    return ForecastInput(rows, times, H, horizon, zone)


def test_the_registry_lists_the_forecasters_and_rejects_unknown_names() -> None:
    names = forecaster_names()
    for name in (
        "blend",
        "profile-7d",
        "seasonal-naive-1d",
        "seasonal-naive-7d",
        "persistence",
        "embedded-profile",
        "oracle",
    ):
        assert name in names
    assert DEFAULT_FORECASTER == "auto"  # learned or blend per zone (test_forecast_learned)
    with pytest.raises(UnknownNameError, match="blend"):
        create_forecaster("blnd")


daily_patterns = st.lists(st.floats(20.0, 800.0), min_size=24, max_size=24)


@settings(max_examples=30, deadline=None)
@given(daily_patterns, st.integers(1, 48))
def test_on_a_grid_that_repeats_daily_the_seasonal_forecasters_are_exact(
    pattern: list[float], horizon: int
) -> None:
    values = np.tile(np.asarray(pattern), 60)
    decision = 24 * 45 + 5
    inp = inputs(values, [decision], horizon)
    expected = values[decision : decision + horizon]
    for name in ("seasonal-naive-1d", "seasonal-naive-7d", "profile-7d", "blend"):
        got = create_forecaster(name).predict(inp)
        assert got.shape == (1, horizon)
        np.testing.assert_allclose(got[0], expected, rtol=1e-9, err_msg=name)


def test_persistence_holds_the_last_value() -> None:
    values = np.arange(1.0, 24 * 50 + 1)
    got = create_forecaster("persistence").predict(inputs(values, [24 * 45], 5))
    assert got.tolist() == [[24 * 45.0] * 5]


def test_the_7_day_profile_is_the_mean_of_the_same_hour_over_the_last_week() -> None:
    rng = np.random.default_rng(1)
    values = rng.uniform(50, 500, 24 * 60)
    i = 24 * 45 + 3
    got = DayProfile().predict(inputs(values, [i], 30))[0]
    for h in (0, 7, 23, 29):
        same = [values[i + h - 24 * k] for k in range(1 + h // 24, 8 + h // 24)]
        assert got[h] == pytest.approx(np.mean(same))


def test_blend_carries_a_fresh_deviation_forward_and_lets_it_fade() -> None:
    values = np.tile(np.full(24, 200.0), 60)
    i = 24 * 45
    values[i - 1] = 300.0  # the latest hour is 100 g/kWh dirtier than usual
    blend = Blend()
    got = blend.predict(inputs(values, [i], 48))[0]
    lead = np.arange(23)  # lead 23 is the same hour as the spike, a day later
    np.testing.assert_allclose(got[:23], 200.0 + 100.0 * blend.decay ** (lead + 1.0))
    assert np.all(np.diff(got[:23]) < 0)  # fading


def test_embedded_profile_forecaster_reads_the_embedded_table() -> None:
    values = np.full(24 * 50, 100.0)
    inp = inputs(values, [24 * 45], 10, zone="DE")
    got = create_forecaster("embedded-profile").predict(inp)[0]
    times = inp.decision_times_s[0] + H * np.arange(10)
    np.testing.assert_allclose(got, profile_quantiles("DE", times, 0.5))


def test_oracle_cannot_predict_from_the_past() -> None:
    oracle = create_forecaster("oracle")
    assert oracle.needs_future
    with pytest.raises(ConfigError, match="actual future"):
        oracle.predict(inputs(np.ones(24 * 50), [24 * 45], 4))


def test_forecast_input_is_a_read_only_copy() -> None:
    values = np.arange(1.0, 24 * 50 + 1)
    inp = inputs(values, [24 * 45], 4)
    with pytest.raises(ValueError, match="read-only"):
        inp.history_g_per_kwh[0, 0] = 0.0
    assert not np.shares_memory(inp.history_g_per_kwh, values)


def test_quantile_forecasts_are_ordered_and_use_only_history() -> None:
    rng = np.random.default_rng(7)
    values = 300 + 80 * np.sin(np.arange(24 * 80) * 2 * np.pi / 24) + rng.normal(0, 30, 24 * 80)
    high = create_forecaster("blend@p90")
    low = create_forecaster("blend", quantile=0.1)
    assert isinstance(high, QuantileForecaster)
    assert high.name == "blend@p90"
    need = high.history_steps(24, H)
    i = 24 * 75
    inp = ForecastInput(values[None, i - need : i], np.array([T0 + i * H]), H, 24, "GB")
    hi, lo = high.predict(inp), low.predict(inp)
    assert np.all(hi >= lo)
    poisoned = values.copy()
    poisoned[i:] = np.nan  # the future is never read
    inp2 = ForecastInput(poisoned[None, i - need : i], np.array([T0 + i * H]), H, 24, "GB")
    np.testing.assert_array_equal(high.predict(inp2), hi)


@pytest.mark.parametrize("bad", ["blend@90", "blend@pxx"])
def test_bad_quantile_suffixes_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="quantile"):
        create_forecaster(bad)


def test_quantile_must_be_inside_zero_one() -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        create_forecaster("blend", quantile=1.5)


def test_forecast_after_needs_enough_clean_history() -> None:
    blend = create_forecaster("blend")
    with pytest.raises(DataError, match="past steps"):
        forecast_after(blend, np.ones(30), T0, H, 24, "GB")
    history = np.ones(24 * 50)
    history[-3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        forecast_after(blend, history, T0, H, 24, "GB")
    ok = forecast_after(blend, np.ones(24 * 50), T0, H, 24, "GB")
    np.testing.assert_allclose(ok, np.ones(24))


def test_forecast_errors_are_mae_and_mape() -> None:
    mae, mape = forecast_errors(np.array([110.0, 90.0]), np.array([100.0, 100.0]))
    assert mae == pytest.approx(10.0)
    assert mape == pytest.approx(10.0)
