"""Specification of the planner: deadlines are hard, shifting never hurts, the oracle bounds it."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenforge.errors import DataError, InfeasibleError, UnknownZoneError
from greenforge.grid.series import FloatArray, IntensitySeries
from greenforge.schedule.job import Job
from greenforge.schedule.planner import (
    Plan,
    cheapest_steps_sum,
    plan_job,
    window_sums,
)

H = 3600.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % H)


def series(
    values: Sequence[float] | FloatArray, zone: str = "AA", step_s: float = H
) -> IntensitySeries:
    v: FloatArray = np.asarray(values, dtype=np.float64)
    times: FloatArray = T0 + step_s * np.arange(v.size, dtype=np.float64)
    return IntensitySeries(times, v, step_s, zone, f"test:{zone}")


def total_s(plan: Plan) -> float:
    return sum(s.duration_s for s in plan.slots)


intensities = st.lists(st.floats(10.0, 900.0), min_size=6, max_size=30)


@st.composite
def jobs_on_series(draw: st.DrawFn) -> tuple[Job, IntensitySeries]:
    values = draw(intensities)
    n = len(values)
    duration_h = draw(st.integers(1, n - 1))
    window_h = draw(st.integers(duration_h, n))
    offset_h = draw(st.integers(0, n - window_h))
    start = T0 + offset_h * H + draw(st.sampled_from([0.0, 0.0, 900.0]))
    deadline = min(start + window_h * H, T0 + n * H)
    if deadline - start < duration_h * H:
        start = deadline - duration_h * H
    job = Job(
        duration_s=duration_h * H,
        earliest_start_s=start,
        deadline_s=deadline,
        zones=("AA",),
    )
    return job, series(values)


@settings(max_examples=60, deadline=None)
@given(jobs_on_series())
def test_plans_stay_inside_the_window_and_cover_the_duration(
    case: tuple[Job, IntensitySeries],
) -> None:
    job, fc = case
    for interruptible in (False, True):
        j = dataclasses.replace(job, interruptible=interruptible)
        plan = plan_job(j, {"AA": fc})
        assert plan.slots[0].start_s >= j.earliest_start_s - 1e-6
        assert plan.slots[-1].end_s <= j.deadline_s + 1e-6
        assert total_s(plan) == pytest.approx(j.duration_s)
        for a, b in itertools.pairwise(plan.slots):
            assert a.end_s <= b.start_s + 1e-6


@settings(max_examples=60, deadline=None)
@given(jobs_on_series())
def test_interruptible_beats_uninterruptible_beats_running_now(
    case: tuple[Job, IntensitySeries],
) -> None:
    job, fc = case
    solid = plan_job(job, {"AA": fc})
    split = plan_job(dataclasses.replace(job, interruptible=True), {"AA": fc})
    tol = 1e-9 * solid.run_now_co2e_g
    assert split.expected_co2e_g <= solid.expected_co2e_g + tol
    assert solid.expected_co2e_g <= solid.run_now_co2e_g + tol
    assert solid.saving_pct >= -1e-9


@settings(max_examples=40, deadline=None)
@given(jobs_on_series(), st.lists(st.floats(10.0, 900.0), min_size=30, max_size=30))
def test_the_oracle_never_does_worse_than_the_plan_on_actual_data(
    case: tuple[Job, IntensitySeries], noise: list[float]
) -> None:
    job, actual = case
    forecast = series(np.asarray(noise[: len(actual)]))
    for interruptible in (False, True):
        j = dataclasses.replace(job, interruptible=interruptible)
        plan = plan_job(j, {"AA": forecast}, actual={"AA": actual})
        assert plan.oracle_co2e_g is not None
        assert plan.actual_co2e_g is not None
        assert plan.regret_g is not None
        assert plan.oracle_co2e_g <= plan.actual_co2e_g + 1e-9
        assert plan.regret_g >= 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(1.0, 500.0), min_size=4, max_size=14), st.data())
def test_interruptible_without_overhead_picks_the_cheapest_hours(
    values: list[float], data: st.DataObject
) -> None:
    k = data.draw(st.integers(1, len(values)))
    job = Job(
        duration_s=k * H,
        earliest_start_s=T0,
        deadline_s=T0 + len(values) * H,
        zones=("AA",),
        interruptible=True,
        power_w=1000.0,
    )
    plan = plan_job(job, {"AA": series(values)})
    best = cheapest_steps_sum(np.asarray(values), k)
    assert plan.expected_co2e_g == pytest.approx(float(best) * 1.0, rel=1e-9)


def brute_force_chunks(values: list[float], k: int, lmin: int, over: int) -> float:
    """Cheapest set of chunks (each >= lmin hours, each resume costs ``over`` extra hours)."""
    n = len(values)
    best = np.inf
    for mask in range(1 << n):
        bits = [(mask >> i) & 1 for i in range(n)]
        runs: list[int] = []
        length = 0
        for b in [*bits, 0]:
            if b:
                length += 1
            elif length:
                runs.append(length)
                length = 0
        if not runs or any(r < lmin for r in runs):
            continue
        if sum(runs) != k + over * (len(runs) - 1):
            continue
        best = min(best, sum(v for v, b in zip(values, bits, strict=True) if b))
    return float(best)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 9).map(float), min_size=4, max_size=10),
    st.integers(1, 4),
    st.integers(1, 2),
    st.integers(0, 1),
)
def test_dynamic_programme_matches_brute_force_with_overheads_and_min_chunk(
    values: list[float], k: int, lmin: int, over: int
) -> None:
    k = min(k, len(values))
    lmin = min(lmin, k)
    job = Job(
        duration_s=k * H,
        earliest_start_s=T0,
        deadline_s=T0 + len(values) * H,
        zones=("AA",),
        interruptible=True,
        checkpoint_overhead_s=over * H,
        min_chunk_s=lmin * H,
        power_w=1000.0,
    )
    plan = plan_job(job, {"AA": series(values)})
    assert plan.expected_co2e_g == pytest.approx(brute_force_chunks(values, k, lmin, over))
    assert total_s(plan) == pytest.approx(k * H + over * H * (len(plan.slots) - 1))
    assert all(s.duration_s >= lmin * H - 1e-6 for s in plan.slots)


def test_uninterruptible_job_starts_at_the_cleanest_window() -> None:
    values = [300.0, 300.0, 300.0, 100.0, 100.0, 300.0, 300.0, 300.0]
    job = Job(duration_s=2 * H, earliest_start_s=T0, deadline_s=T0 + 8 * H, zones=("AA",))
    plan = plan_job(job, {"AA": series(values)})
    assert [(s.start_s - T0) / H for s in plan.slots] == [3.0]
    assert plan.expected_co2e_g == pytest.approx(200.0)  # 1 kW x 2 h x 100 g/kWh
    assert plan.run_now_co2e_g == pytest.approx(600.0)
    assert plan.saving_pct == pytest.approx(100 * (1 - 200 / 600))
    assert plan.power_assumed


def test_off_grid_durations_and_starts_are_integrated_exactly() -> None:
    values = [100.0, 400.0, 400.0, 400.0, 100.0, 100.0]
    job = Job(
        duration_s=1.5 * H, earliest_start_s=T0 + 0.25 * H, deadline_s=T0 + 6 * H, zones=("AA",)
    )
    plan = plan_job(job, {"AA": series(values)})
    assert plan.slots[0].start_s == pytest.approx(T0 + 4 * H)
    assert plan.expected_co2e_g == pytest.approx(150.0)
    # run now: 0.75 h at 100 + 0.75 h at 400
    assert plan.run_now_co2e_g == pytest.approx(0.75 * 100 + 0.75 * 400)


def test_interruptible_job_splits_around_a_dirty_peak_when_overhead_allows() -> None:
    values = [50.0, 50.0, 900.0, 900.0, 900.0, 50.0, 50.0, 900.0]
    base = Job(duration_s=4 * H, earliest_start_s=T0, deadline_s=T0 + 8 * H, zones=("AA",))
    solid = plan_job(base, {"AA": series(values)})
    split = plan_job(
        dataclasses.replace(base, interruptible=True, checkpoint_overhead_j=3.6e6 * 0.1),
        {"AA": series(values)},
    )
    assert [(s.start_s - T0) / H for s in split.slots] == [0.0, 5.0]
    assert split.expected_co2e_g == pytest.approx(200.0 + 0.1 * 50)  # lump energy at resume
    assert split.expected_co2e_g < solid.expected_co2e_g
    assert split.energy_j == pytest.approx(4 * 3.6e6 + 0.1 * 3.6e6)
    assert any("chunks" in a for a in split.advice)


def test_multi_zone_interruptible_job_migrates_when_it_pays() -> None:
    a = series([50, 50, 900, 900, 900, 900], "AA")
    b = series([900, 900, 900, 900, 60, 60], "BB")
    job = Job(
        duration_s=4 * H,
        earliest_start_s=T0,
        deadline_s=T0 + 6 * H,
        zones=("AA", "BB"),
        interruptible=True,
        migration_cost_s=0.0,
    )
    plan = plan_job(job, {"AA": a, "BB": b})
    assert [s.zone for s in plan.slots] == ["AA", "BB"]
    assert plan.expected_co2e_g == pytest.approx(220.0)


def test_migration_time_is_spent_in_the_new_zone_and_respects_the_deadline() -> None:
    a = series([50, 50, 900, 900, 900, 900, 900], "AA")
    b = series([900, 900, 900, 900, 60, 60, 60], "BB")
    job = Job(
        duration_s=4 * H,
        earliest_start_s=T0,
        deadline_s=T0 + 7 * H,
        zones=("AA", "BB"),
        interruptible=True,
        migration_cost_s=0.5 * H,
    )
    plan = plan_job(job, {"AA": a, "BB": b})
    assert [s.zone for s in plan.slots] == ["AA", "BB"]
    assert total_s(plan) == pytest.approx(4.5 * H)
    assert plan.end_s <= job.deadline_s


def test_flat_grid_advice_points_to_a_cleaner_zone() -> None:
    flat = series([400.0] * 48, "AA")
    clean = series([40.0] * 48, "BB")
    job = Job(duration_s=4 * H, earliest_start_s=T0, deadline_s=T0 + 24 * H, zones=("AA",))
    plan = plan_job(job, {"AA": flat, "BB": clean}, actual=None)
    text = " ".join(plan.advice)
    assert "flat" in text
    assert "BB" in text
    assert "not in the job's list" in text
    assert plan.slots[0].zone == "AA"  # advisory zones are never used


def test_long_job_in_a_short_window_is_told_why_shifting_cannot_pay() -> None:
    values = list(np.linspace(100, 800, 30))
    job = Job(duration_s=20 * H, earliest_start_s=T0, deadline_s=T0 + 21 * H, zones=("AA",))
    plan = plan_job(job, {"AA": series(values)})
    assert any("fills most of its window" in a for a in plan.advice)


def test_unknown_zone_lists_the_known_ones() -> None:
    job = Job(duration_s=H, earliest_start_s=T0, deadline_s=T0 + 4 * H, zones=("GB",))
    with pytest.raises(UnknownZoneError, match="GB"):
        plan_job(job, {"DE": series([1.0] * 8, "DE")})


def test_forecast_shorter_than_the_window_is_refused() -> None:
    job = Job(duration_s=H, earliest_start_s=T0, deadline_s=T0 + 10 * H, zones=("AA",))
    with pytest.raises(InfeasibleError, match="shorter than the job's window"):
        plan_job(job, {"AA": series([1.0] * 5)})


def test_missing_values_inside_the_window_are_refused() -> None:
    job = Job(duration_s=H, earliest_start_s=T0, deadline_s=T0 + 4 * H, zones=("AA",))
    with pytest.raises(DataError, match="NaN"):
        plan_job(job, {"AA": series([1.0, np.nan, 1.0, 1.0])})


def test_plan_to_dict_is_json_ready() -> None:
    import json

    job = Job(
        duration_s=H, earliest_start_s=T0, deadline_s=T0 + 4 * H, zones=("AA",), power_w=250.0
    )
    plan = plan_job(job, {"AA": series([4.0, 3.0, 2.0, 1.0])}, actual={"AA": series([1.0] * 4)})
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["slots"][0]["zone"] == "AA"
    assert data["power_w"] == 250.0
    assert data["power_assumed"] is False
    assert data["oracle_co2e_g"] == pytest.approx(0.25)
    assert data["regret_g"] == pytest.approx(0.0)
    assert data["forecast_source"] == "test:AA"


def test_window_sums_and_cheapest_steps_are_vectorised() -> None:
    v = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
    assert window_sums(v, 2).tolist() == [[3.0, 5.0, 7.0], [7.0, 5.0, 3.0]]
    assert cheapest_steps_sum(v, 2).tolist() == [3.0, 3.0]


def test_an_annual_average_forecast_is_called_out_as_unable_to_time_shift() -> None:
    annual = IntensitySeries(
        np.array([T0]), np.array([300.0]), 24 * H, "AA", "embedded:yearly:AA", kind="annual"
    )
    job = Job(duration_s=4 * H, earliest_start_s=T0, deadline_s=T0 + 24 * H, zones=("AA",))
    plan = plan_job(job, {"AA": annual})
    assert plan.saving_pct == pytest.approx(0.0)
    assert any("no hourly variation" in a for a in plan.advice)


def test_a_power_profile_puts_the_power_hungry_phase_in_the_clean_hour() -> None:
    values = [500.0, 100.0, 500.0, 500.0, 100.0, 500.0]
    job = Job(
        duration_s=2 * H,
        earliest_start_s=T0,
        deadline_s=T0 + 6 * H,
        zones=("AA",),
        power_profile_w=(2000.0, 100.0),  # e.g. training, then a light evaluation
    )
    plan = plan_job(job, {"AA": series(values)})
    assert (plan.start_s - T0) / H == 1.0
    assert plan.expected_co2e_g == pytest.approx(2.0 * 100 + 0.1 * 500)
    assert plan.energy_j == pytest.approx((2000.0 + 100.0) * H)
    assert plan.power_w == pytest.approx(1050.0)
    assert not plan.power_assumed


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 9).map(float), min_size=4, max_size=9),
    st.lists(st.sampled_from([100.0, 500.0, 2000.0]), min_size=1, max_size=3),
    st.booleans(),
)
def test_power_profiles_are_planned_optimally(
    values: list[float], profile: list[float], interruptible: bool
) -> None:
    k = min(len(profile), len(values))
    profile = profile[:k]
    job = Job(
        duration_s=k * H,
        earliest_start_s=T0,
        deadline_s=T0 + len(values) * H,
        zones=("AA",),
        interruptible=interruptible,
        power_profile_w=tuple(profile),
    )
    plan = plan_job(job, {"AA": series(values)})
    hours = range(len(values))
    choices: list[tuple[int, ...]]
    if interruptible:
        choices = list(itertools.combinations(hours, k))
    else:
        choices = [tuple(range(s, s + k)) for s in range(len(values) - k + 1)]
    best = min(sum(p * values[t] for p, t in zip(profile, c, strict=True)) for c in choices)
    assert plan.expected_co2e_g == pytest.approx(best / 1000.0)
    assert total_s(plan) == pytest.approx(k * H)


@settings(max_examples=40, deadline=None)
@given(
    jobs_on_series(),
    st.lists(st.floats(10.0, 900.0), min_size=30, max_size=30),
    st.sampled_from([0.0, 600.0, 1800.0, 5400.0]),
    st.sampled_from([0.0, 1800.0, 3600.0]),
    st.sampled_from([0.0, 900.0, 3600.0]),
)
def test_chunked_multi_zone_plans_keep_every_promise(
    case: tuple[Job, IntensitySeries],
    other: list[float],
    overhead_s: float,
    min_chunk_s: float,
    migration_s: float,
) -> None:
    job, fc = case
    second = series(np.asarray(other[: len(fc)]), "BB")
    flexible = dataclasses.replace(
        job,
        zones=("AA", "BB"),
        interruptible=True,
        checkpoint_overhead_s=overhead_s,
        min_chunk_s=min(min_chunk_s, job.duration_s),
        migration_cost_s=migration_s,
        checkpoint_overhead_j=50_000.0,
    )
    plan = plan_job(flexible, {"AA": fc, "BB": second})
    solid = plan_job(dataclasses.replace(job, zones=("AA", "BB")), {"AA": fc, "BB": second})
    assert plan.start_s >= job.earliest_start_s - 1e-6
    assert plan.end_s <= job.deadline_s + 1e-6
    assert plan.expected_co2e_g <= solid.expected_co2e_g * (1 + 1e-9)
    expected = job.duration_s
    for prev, nxt in itertools.pairwise(plan.slots):
        assert prev.end_s <= nxt.start_s + 1e-6
        expected += overhead_s + (migration_s if nxt.zone != prev.zone else 0.0)
    assert total_s(plan) == pytest.approx(expected)
    if len(plan.slots) > 1:
        assert all(s.duration_s >= flexible.min_chunk_s - 1e-6 for s in plan.slots)


def test_a_grid_whose_current_hour_is_merely_the_cleanest_is_not_called_flat() -> None:
    values = [212.0, *(220.0 + i for i in range(1, 30))]  # rises 212 -> 249: 16 % spread
    job = Job(duration_s=H, earliest_start_s=T0, deadline_s=T0 + 24 * H, zones=("AA",))
    plan = plan_job(job, {"AA": series(values)})
    text = " ".join(plan.advice)
    assert "flat" not in text
    assert "now is already the cleanest hour in the window" in text
    assert plan.window is not None
    assert plan.window.min_g_per_kwh == 212.0
    assert plan.window.max_g_per_kwh == 243.0  # the last step before the deadline
    assert f"spread {plan.window.spread_pct:.0f} %" in text
    assert plan.reason.startswith("starts at the earliest start: now is already the cleanest")


def test_a_plan_that_waits_although_now_is_the_cleanest_hour_says_why() -> None:
    # now is the cleanest single hour, but the best 4 h stretch (slightly cleaner on average)
    # starts 2 h later: the advice must not say "now is already the cleanest" beside a delay
    values = [200.0, 215.0, 204.0, 204.0, 204.0, 204.0, *([240.0] * 30)]
    job = Job(duration_s=4 * H, earliest_start_s=T0, deadline_s=T0 + 24 * H, zones=("AA",))
    plan = plan_job(job, {"AA": series(values)})
    assert plan.start_s == T0 + 2 * H
    text = " ".join(plan.advice)
    assert "now is already the cleanest" not in text
    assert "averages slightly less starting later" in text


def test_a_flat_grid_is_called_flat_with_its_spread() -> None:
    values = [400.0 + (i % 3) for i in range(30)]  # 400-402 g/kWh
    job = Job(duration_s=2 * H, earliest_start_s=T0 + H, deadline_s=T0 + 25 * H, zones=("AA",))
    plan = plan_job(job, {"AA": series(values)})
    text = " ".join(plan.advice)
    assert "is flat over the window (400-402 g/kWh over the window, spread 0 %)" in text
    assert plan.to_dict()["window_intensity"]["spread_pct"] == pytest.approx(0.5, abs=0.01)


def test_a_short_dip_too_small_for_the_job_is_explained() -> None:
    values = [300.0] * 30
    values[20] = 100.0  # one clean hour late in the window; the job needs 16 h
    job = Job(duration_s=16 * H, earliest_start_s=T0, deadline_s=T0 + 24 * H, zones=("AA",))
    plan = plan_job(job, {"AA": series(values)})
    assert plan.saving_pct < 5.0
    assert any("too short a dip" in a and "spread 69 %" in a for a in plan.advice)
    values[20], values[5] = 300.0, 100.0  # the dip is inside a run that starts now
    plan = plan_job(job, {"AA": series(values)})
    assert plan.start_s == T0
    assert any("a run that starts now already takes in the cleanest hour" in a for a in plan.advice)


def test_a_shifted_plan_says_how_long_it_waits_and_what_it_saves() -> None:
    values = [400.0] * 6 + [100.0] * 4 + [400.0] * 20
    job = Job(duration_s=2 * H, earliest_start_s=T0, deadline_s=T0 + 24 * H, zones=("AA",))
    plan = plan_job(job, {"AA": series(values)})
    assert plan.reason.startswith("starts after 6 h: ")
    assert "75.0 % less" in plan.reason


def test_a_chunked_plan_may_use_the_rest_of_the_current_hour() -> None:
    values = [10.0, 500.0, 500.0, 10.0, 300.0, 300.0]
    job = Job(
        duration_s=1.5 * H,
        earliest_start_s=T0 + 0.5 * H,  # half-way through a clean hour
        deadline_s=T0 + 5.5 * H,  # half-way through the last one
        zones=("AA",),
        interruptible=True,
        power_w=1000.0,
    )
    plan = plan_job(job, {"AA": series(values)})
    assert [(s.start_s - T0) / H for s in plan.slots] == [0.5, 3.0]
    assert plan.expected_co2e_g == pytest.approx(0.5 * 10 + 1.0 * 10)
    assert plan.end_s <= job.deadline_s
