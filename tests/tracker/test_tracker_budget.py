"""Budgets (callback, stop flag, opt-in exception) and the Carbontracker-style prediction."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from greenforge.budget import Budget, BudgetStatus, check_budget, predict_total
from greenforge.config import Settings
from greenforge.errors import BudgetExceededError, ConfigError
from greenforge.records import Prediction
from greenforge.testing import FakeMeter, ManualClock, StaticIntensity
from greenforge.tracker import Tracker, track
from greenforge.units import J_PER_KWH

NEVER_S = 3600.0


def clocked_tracker(settings: Settings, clock: ManualClock, **kwargs: object) -> Tracker:
    return Tracker(
        settings,
        zone="DE",
        meters=[FakeMeter(100.0, clock=clock)],
        provider=StaticIntensity(360.0),
        interval_s=NEVER_S,
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_budget_needs_a_positive_limit() -> None:
    with pytest.raises(ConfigError, match="co2e_g and/or energy_j"):
        Budget()
    with pytest.raises(ConfigError, match="energy_j=-1"):
        Budget(energy_j=-1)
    with pytest.raises(ConfigError, match="co2e_g=nan"):
        Budget(co2e_g=float("nan"))


def test_check_budget_names_the_limit_that_tripped() -> None:
    budget = Budget(energy_j=1000.0, co2e_g=1.0)
    assert check_budget(budget, 999.0, 0.5) is None
    status = check_budget(budget, 1001.0, 0.5)
    assert status is not None
    assert "energy 1001 J exceeds the budget of 1000 J" in status.reason
    co2 = check_budget(budget, 10.0, 1.5)
    assert co2 is not None
    assert "emissions 1.5 gCO2e" in co2.reason


def test_a_prediction_can_trip_a_budget_early() -> None:
    budget = Budget(energy_j=1000.0, use_prediction=True)
    prediction = Prediction(1, 10, 2000.0, 0.2, 100.0)
    status = check_budget(budget, 200.0, 0.02, prediction)
    assert status is not None
    assert status.predicted
    assert check_budget(Budget(energy_j=1000.0), 200.0, 0.02, prediction) is None


def test_going_over_budget_sets_the_flag_and_calls_back_once(
    settings: Settings, clock: ManualClock
) -> None:
    calls: list[BudgetStatus] = []
    tracker = clocked_tracker(
        settings, clock, budget=Budget(energy_j=500.0, on_exceed=calls.append)
    )
    tracker.start()
    for _ in range(4):
        clock.advance(3.0)  # 300 J a step
        with tracker.window("step"):
            pass
    record = tracker.stop()
    assert tracker.over_budget
    assert len(calls) == 1
    assert calls[0].energy_j == pytest.approx(600.0)
    assert record.metadata["budget"]["exceeded"] is True
    assert any("over budget" in w for w in record.warnings)


def test_raise_on_exceed_stops_the_workload_at_the_next_window(
    settings: Settings, clock: ManualClock
) -> None:
    steps = 0
    tracked = track(
        settings,
        zone="DE",
        meters=[FakeMeter(100.0, clock=clock)],
        provider=StaticIntensity(360.0),
        interval_s=NEVER_S,
        clock=clock,
        budget=Budget(co2e_g=100.0 * 3.0 / J_PER_KWH * 360.0 * 1.5, raise_on_exceed=True),
    )
    run: Tracker | None = None

    def train() -> None:
        nonlocal steps, run
        with tracked as run:
            for _ in range(10):
                with run.window("epoch"):
                    clock.advance(3.0)
                steps += 1

    with pytest.raises(BudgetExceededError, match="went over its budget"):
        train()
    assert steps == 1  # the second window's end tripped the budget and raised
    assert run is not None
    assert run.record is not None
    assert run.record.metadata["stopped_by_budget"] is True
    assert run.record.status == "completed"


def test_without_raise_the_workload_only_sees_the_flag(
    settings: Settings, clock: ManualClock
) -> None:
    tracker = clocked_tracker(settings, clock, budget=Budget(energy_j=1.0)).start()
    clock.advance(1.0)
    with tracker.window("epoch"):
        pass
    assert tracker.check_budget() is True
    tracker.stop()


def test_prediction_after_the_first_window(settings: Settings, clock: ManualClock) -> None:
    seen: list[Prediction] = []
    tracker = clocked_tracker(
        settings, clock, expected_windows=10, on_prediction=seen.append
    ).start()
    with tracker.window("epoch-1"):
        clock.advance(60.0)
        with tracker.window("batch"):  # nested windows do not count as epochs
            clock.advance(1.0)
    assert tracker.prediction is not None
    assert tracker.prediction.windows_seen == 1
    assert tracker.prediction.energy_j == pytest.approx(10 * 6100.0)
    assert tracker.prediction.duration_s == pytest.approx(610.0)
    assert tracker.prediction.co2e_g == pytest.approx(10 * 6100.0 / J_PER_KWH * 360.0)
    with tracker.window("epoch-2"):
        clock.advance(30.0)
    record = tracker.stop()
    assert record.prediction is not None
    assert record.prediction.windows_seen == 2
    assert record.prediction.energy_j == pytest.approx((6100.0 + 3000.0) / 2 * 10)
    assert [p.windows_seen for p in seen] == [1, 2]


def test_predict_after_waits_for_k_windows(settings: Settings, clock: ManualClock) -> None:
    tracker = clocked_tracker(settings, clock, expected_windows=5, predict_after=2).start()
    with tracker.window("epoch-1"):
        clock.advance(1.0)
    assert tracker.prediction is None
    with tracker.window("epoch-2"):
        clock.advance(1.0)
    assert tracker.prediction is not None
    tracker.stop()


@hypothesis_settings(deadline=None)  # timing varies on shared CI machines
@given(
    energies=st.lists(st.floats(0.0, 1e6), min_size=1, max_size=30),
    extra=st.integers(0, 100),
)
def test_prediction_is_the_measured_sum_plus_the_mean_for_each_window_left(
    energies: list[float], extra: int
) -> None:
    total = len(energies) + extra
    p = predict_total(energies, energies, [1.0] * len(energies), total)
    mean = sum(energies) / len(energies)
    assert p.energy_j == pytest.approx(sum(energies) + mean * extra, rel=1e-9, abs=1e-6)
    assert p.duration_s == pytest.approx(float(total))
    if extra == 0:
        assert p.energy_j == pytest.approx(sum(energies), rel=1e-12, abs=1e-9)


def test_prediction_inputs_are_checked() -> None:
    with pytest.raises(ConfigError, match="before the first window"):
        predict_total([], [], [], 3)
    with pytest.raises(ConfigError, match="less than the 2 windows"):
        predict_total([1.0, 2.0], [0.1, 0.2], [1.0, 1.0], 1)


def test_a_callback_that_stops_the_run_gets_a_warning_not_a_deadlock(settings: Settings) -> None:
    box: list[Tracker] = []

    def stop_now(_: BudgetStatus) -> None:
        box[0].stop()

    tracker = Tracker(
        settings,
        zone="DE",
        meters=[FakeMeter(1000.0)],
        provider=StaticIntensity(),
        budget=Budget(energy_j=1.0, on_exceed=stop_now),
    )
    box.append(tracker)
    tracker.start()
    deadline = time.monotonic() + 30
    while not tracker.over_budget and time.monotonic() < deadline:
        time.sleep(0.01)
    record = tracker.stop()
    assert tracker.over_budget
    assert any("budget callback failed" in w and "sampling thread" in w for w in record.warnings)


def test_a_prediction_without_intensity_has_unknown_co2e_not_zero() -> None:
    prediction = predict_total([100.0, 120.0], [None, 0.01], [10.0, 12.0], 10)
    assert prediction.co2e_g is None
    assert prediction.energy_j == pytest.approx(1100.0)
    budget = Budget(co2e_g=0.001, use_prediction=True)
    assert check_budget(budget, 220.0, None, prediction) is None  # unknown is not "over"
