"""Specification of back-testing: the definitions, the no-look-ahead guarantee, real-data shapes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from greenforge.errors import ConfigError, DataError
from greenforge.grid.files import load_csv
from greenforge.grid.series import IntensitySeries
from greenforge.schedule.backtest import JobShape, backtest, backtest_series
from greenforge.schedule.forecast import FloatArray, ForecastInput, create_forecaster

H = 3600.0
T0 = 1_672_531_200.0  # 2023-01-01T00:00Z


def hourly(values: FloatArray, zone: str = "AA") -> IntensitySeries:
    times: FloatArray = T0 + H * np.arange(values.size, dtype=np.float64)
    return IntensitySeries(times, values, H, zone, f"test:{zone}")


def pct(share: float | None) -> float:
    """A saving share that must be applicable here (None only when nothing could be saved)."""
    assert share is not None
    return share


def noisy_days(n_days: int = 60, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hours = np.arange(24 * n_days)
    return 300 + 120 * np.sin(hours * 2 * np.pi / 24) + rng.normal(0, 40, hours.size)


@dataclasses.dataclass
class Spy:
    """A forecaster that records how far into the data each history row reaches."""

    name: str = "spy"
    description: str = "records what it sees"
    needs_future: bool = False
    latest_seen_minus_decision: list[float] = dataclasses.field(default_factory=list)

    def history_steps(self, horizon: int, step_s: float) -> int:
        return 48

    def predict(self, inp: ForecastInput) -> FloatArray:
        # values encode their own index: value = index + 1, so a row's max is its last index + 1
        decision_index = (inp.decision_times_s - T0) / inp.step_s
        last_index_seen = inp.history_g_per_kwh.max(axis=1) - 1
        self.latest_seen_minus_decision.extend((last_index_seen - decision_index).tolist())
        return np.repeat(inp.history_g_per_kwh[:, -1:], inp.horizon, axis=1)


@pytest.mark.parametrize("policy", ["once", "replan"])
@pytest.mark.parametrize("interruptible", [False, True])
def test_a_forecaster_never_sees_data_at_or_after_its_decision_time(
    policy: str, interruptible: bool
) -> None:
    series = hourly(np.arange(1.0, 24 * 10 + 1))
    spy = Spy()
    backtest_series(series, spy, [JobShape(3, 5)], policy=policy, interruptible=interruptible)
    seen = np.asarray(spy.latest_seen_minus_decision)
    assert seen.size > 100
    assert np.all(seen == -1)  # each row ends exactly one step before its decision


def test_changing_the_future_does_not_change_a_decision() -> None:
    values = noisy_days()
    arrival = T0 + H * 24 * 45
    future_changed = values.copy()
    cut = 24 * 45
    future_changed[cut:] = np.random.default_rng(9).uniform(10, 900, values.size - cut)
    runs = [
        backtest_series(
            hourly(v),
            create_forecaster("blend"),
            [JobShape(4, 24)],
            start_s=arrival,
            end_s=arrival + 1,
        )[0]
        for v in (values, future_changed)
    ]
    assert runs[0].arrivals == runs[1].arrivals == 1
    assert runs[0].mean_delay_h == runs[1].mean_delay_h  # same start chosen
    assert runs[0].planned_g_per_kw != runs[1].planned_g_per_kw  # charged at the actual


def test_savings_follow_their_definition_on_a_hand_computed_case() -> None:
    # a 2-hour pattern: dirty then clean; 1 h jobs with 1 h slack, arriving every hour
    values = np.tile([200.0, 100.0], 24 * 10)
    res = backtest_series(hourly(values), create_forecaster("oracle"), [JobShape(1, 1)])[0]
    # run now: half the arrivals pay 200, half 100; the oracle always pays 100
    assert res.run_now_g_per_kw == pytest.approx(res.arrivals * 150.0, rel=0.01)
    assert res.oracle_g_per_kw == pytest.approx(res.arrivals * 100.0)
    assert res.saving_pct == pytest.approx(res.oracle_saving_pct)
    assert res.oracle_saving_pct == pytest.approx(100 * (1 - 100 / 150), rel=0.01)
    assert res.captured == pytest.approx(1.0)


@pytest.mark.parametrize("policy", ["once", "replan"])
def test_planned_totals_lie_between_the_oracle_and_worst_case(policy: str) -> None:
    series = hourly(noisy_days())
    for interruptible in (False, True):
        for r in backtest_series(
            series,
            create_forecaster("blend"),
            [JobShape(1, 12), JobShape(4, 24)],
            interruptible=interruptible,
            policy=policy,
        ):
            assert r.oracle_g_per_kw <= r.planned_g_per_kw + 1e-6
            assert pct(r.saving_pct) <= pct(r.oracle_saving_pct) + 1e-9
            assert 0.0 <= r.mean_delay_h <= r.slack_hours + r.job_hours
            assert r.policy == policy


def test_interruptible_oracle_saves_at_least_as_much_as_uninterruptible() -> None:
    series = hourly(noisy_days())
    oracle = create_forecaster("oracle")
    solid = backtest_series(series, oracle, [JobShape(4, 24)])[0]
    split = backtest_series(series, oracle, [JobShape(4, 24)], interruptible=True)[0]
    assert pct(split.oracle_saving_pct) >= pct(solid.oracle_saving_pct)


def test_several_forecasters_are_compared_on_the_same_arrivals() -> None:
    data = {"AA": hourly(noisy_days()), "BB": hourly(noisy_days(seed=5), "BB")}
    names = ["blend", "profile-7d", "persistence", "oracle"]
    result = backtest(data, [create_forecaster(n) for n in names], [JobShape(4, 24)])
    assert len(result.results) == 2 * len(names)
    for zone in ("AA", "BB"):
        counts = {result.get(zone, n, 4, 24).arrivals for n in names}
        assert len(counts) == 1
        assert result.get(zone, "oracle", 4, 24).captured == pytest.approx(1.0)
        assert result.get(zone, "oracle", 4, 24).mae_g_per_kwh == 0.0
    payload = result.to_dict()
    row = payload["results"][0]
    for key in ("zone", "job_hours", "slack_hours", "saving_pct", "oracle_saving_pct", "captured"):
        assert key in row


def test_bad_shapes_policies_and_data_are_refused_clearly() -> None:
    series = hourly(noisy_days(10))
    blend = create_forecaster("blend")
    with pytest.raises(ConfigError, match="whole"):
        backtest_series(series, blend, [JobShape(1.25, 24)])
    with pytest.raises(ConfigError, match="policy"):
        backtest_series(series, blend, [JobShape(4, 24)], policy="greedy")
    with pytest.raises(ConfigError, match="> 0"):
        JobShape(0, 24)
    with pytest.raises(DataError, match="no arrivals"):
        backtest_series(hourly(noisy_days(5)), blend, [JobShape(4, 24)])
    gappy = IntensitySeries(T0 + H * np.array([0.0, 1.0, 3.0]), np.ones(3), H, "AA", "t")
    with pytest.raises(DataError, match="gaps"):
        backtest_series(gappy, blend, [JobShape(1, 0)])


def test_embedded_profile_is_flagged_in_sample_on_the_years_it_was_built_from() -> None:
    values = noisy_days(60)
    series = hourly(values, "GB")
    res = backtest_series(series, create_forecaster("embedded-profile"), [JobShape(4, 24)])[0]
    assert res.in_sample
    assert not backtest_series(series, create_forecaster("blend"), [JobShape(4, 24)])[0].in_sample


def _year(shared: Path, zone: str, basis: str = "lca") -> IntensitySeries:
    hourly_dir = shared / "grid" / "hourly"
    paths = [hourly_dir / f"{zone}_{y}_hourly.csv.gz" for y in (2022, 2023)]
    return load_csv(paths, basis=basis)


def test_real_history_reproduces_the_published_shape(shared_data: Path) -> None:
    start = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    data = {z: _year(shared_data, z) for z in ("GB", "US-MIDA-PJM", "SG")}
    forecasters = [create_forecaster(n) for n in ("oracle", "profile-7d", "blend")]
    result = backtest(data, forecasters, [JobShape(4, 24)], start_s=start)
    gb = result.get("GB", "oracle", 4, 24)
    assert gb.arrivals > 8_600
    assert pct(gb.oracle_saving_pct) > 25.0  # GB: large daily swings (~30 %)
    assert pct(result.get("US-MIDA-PJM", "oracle", 4, 24).oracle_saving_pct) < 8.0  # a few %
    assert pct(result.get("SG", "oracle", 4, 24).oracle_saving_pct) < 8.0
    for zone in data:
        blend = result.get(zone, "blend", 4, 24)
        profile = result.get(zone, "profile-7d", 4, 24)
        assert blend.captured is not None
        assert profile.captured is not None
        assert blend.captured >= profile.captured
    direct = backtest(
        {"GB": _year(shared_data, "GB", "direct")},
        forecasters[:1],
        [JobShape(4, 24)],
        start_s=start,
    )
    assert pct(direct.get("GB", "oracle", 4, 24).oracle_saving_pct) > 30.0  # direct basis: 30+ %
    gb_blend = result.get("GB", "blend", 4, 24)
    assert gb_blend.mae_g_per_kwh < result.get("GB", "profile-7d", 4, 24).mae_g_per_kwh
