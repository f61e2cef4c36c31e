"""``track()`` / ``Tracker``: records with energy, CO2e per interval, PUE, embodied, windows."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import greenforge
from greenforge.config import Settings, load_settings
from greenforge.errors import ConfigError, ProviderError, StoreError, UnknownZoneError
from greenforge.grid.ops import emissions_g
from greenforge.grid.providers.embedded import EmbeddedProvider
from greenforge.grid.series import IntensitySeries
from greenforge.records import RunRecord
from greenforge.report.store import RunStore
from greenforge.testing import FakeMeter, ManualClock, StaticIntensity
from greenforge.tracker import Tracker, interval_co2e_g, track
from greenforge.units import J_PER_KWH, S_PER_YEAR

NEVER_S = 3600.0


class TwoStepIntensity:
    """A grid whose intensity is 100 g/kWh for 30 minutes, then 300 g/kWh."""

    name = "two-step"

    def __init__(self, start_s: float) -> None:
        self.start_s = start_s

    def zones(self) -> list[str]:
        return ["DE"]

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        return IntensitySeries(
            times_s=np.array([self.start_s, self.start_s + 1800.0]),
            values_g_per_kwh=np.array([100.0, 300.0]),
            step_s=1800.0,
            zone=zone,
            source="two-step:test",
            kind="measured",
        )

    def forecast(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        return self.history(zone, start_s, end_s)


def test_context_manager_measures_energy_and_co2e(settings: Settings, clock: ManualClock) -> None:
    settings = load_settings(env={}, home=settings.home, pue=1.2)
    with track(
        settings,
        zone="DE",
        meters=[FakeMeter({"cpu": 30.0, "ram": 6.0}, clock=clock)],
        provider=StaticIntensity(400.0),
        interval_s=NEVER_S,
        clock=clock,
    ) as run:
        clock.advance(100.0)
    record = run.record
    assert record is not None
    assert record.status == "completed"
    assert record.duration_s == pytest.approx(100.0)
    assert {c.component: c.energy_j for c in record.components} == {"cpu": 3000.0, "ram": 600.0}
    assert record.energy_kwh == pytest.approx(3600.0 / J_PER_KWH)
    assert record.emissions is not None
    assert record.co2e_g == pytest.approx(3600.0 / J_PER_KWH * 1.2 * 400.0)
    assert record.emissions.pue == 1.2
    assert record.emissions.pue_source == "settings.pue"
    assert record.emissions.intensity.source == "static:DE"
    assert record.emissions.intensity.zone == "DE"
    assert record.meters == ("fake: injected",)


def test_co2e_is_time_resolved_per_interval(settings: Settings, clock: ManualClock) -> None:
    tracker = Tracker(
        settings,
        zone="DE",
        meters=[FakeMeter(100.0, clock=clock)],
        provider=TwoStepIntensity(clock()),
        interval_s=NEVER_S,
        clock=clock,
    )
    tracker.start()
    with tracker.window("clean-half"):
        clock.advance(1800.0)
    with tracker.window("dirty-half"):
        clock.advance(1800.0)
    record = tracker.stop()
    kwh_per_half = 100.0 * 1800.0 / J_PER_KWH
    assert record.co2e_g == pytest.approx(kwh_per_half * 100.0 + kwh_per_half * 300.0)
    assert [w.co2e_g for w in record.windows] == pytest.approx(
        [kwh_per_half * 100.0, kwh_per_half * 300.0]
    )
    assert record.emissions is not None
    assert record.emissions.intensity.time_resolved
    assert record.emissions.mean_intensity_g_per_kwh == pytest.approx(200.0)


def test_low_and_high_bounds_follow_the_meter_bounds(
    settings: Settings, clock: ManualClock
) -> None:
    meter = FakeMeter(50.0, clock=clock, rel_err=0.2)
    with track(
        settings,
        zone="DE",
        meters=[meter],
        provider=StaticIntensity(200.0),
        interval_s=NEVER_S,
        clock=clock,
    ) as run:
        clock.advance(60.0)
    record = run.record
    assert record is not None
    assert record.emissions is not None
    assert record.energy_low_j == pytest.approx(0.8 * 3000.0)
    assert record.energy_high_j == pytest.approx(1.2 * 3000.0)
    assert record.emissions.low_g == pytest.approx(0.8 * record.emissions.co2e_g)
    assert record.emissions.high_g == pytest.approx(1.2 * record.emissions.co2e_g)


def test_embodied_emissions_are_reported_apart(settings: Settings, clock: ManualClock) -> None:
    settings = load_settings(env={}, home=settings.home, embodied_kg=1000.0)
    with track(
        settings,
        zone="DE",
        meters=[FakeMeter(10.0, clock=clock)],
        provider=StaticIntensity(100.0),
        interval_s=NEVER_S,
        clock=clock,
    ) as run:
        clock.advance(3600.0)
    record = run.record
    assert record is not None
    assert record.embodied is not None
    assert record.embodied.co2e_g == pytest.approx(1e6 * 3600.0 / (4.0 * S_PER_YEAR))
    assert record.co2e_g == pytest.approx(36000.0 / J_PER_KWH * 100.0)  # operational only


def test_decorator_measures_every_call(settings: Settings) -> None:
    tracked = track(settings, zone="DE", meters=[FakeMeter(5.0)], provider=StaticIntensity())

    @tracked
    def train(epochs: int) -> str:
        time.sleep(0.01)
        return f"trained {epochs}"

    assert train(3) == "trained 3"
    first = tracked.record
    assert train(1) == "trained 1"
    assert first is not None
    assert tracked.record is not None
    assert tracked.record.id != first.id
    assert first.name.endswith("train")
    assert first.energy_j > 0
    with RunStore.for_settings(settings) as store:
        assert {r.id for r in store.list()} == {first.id, tracked.record.id}


def test_a_failing_body_is_stored_as_failed_and_reraised(settings: Settings) -> None:
    tracked = track(settings, zone="DE", meters=[FakeMeter(5.0)], provider=StaticIntensity())
    with pytest.raises(KeyError), tracked:
        raise KeyError("boom")
    assert tracked.record is not None
    assert tracked.record.status == "failed"
    assert "KeyError" in tracked.record.metadata["error"]


def test_explicit_start_stop(settings: Settings, clock: ManualClock) -> None:
    tracker = Tracker(
        settings,
        zone="DE",
        meters=[FakeMeter(1.0, clock=clock)],
        provider=StaticIntensity(),
        name="explicit",
        metadata={"model": "mlp"},
        clock=clock,
        interval_s=NEVER_S,
    )
    assert tracker.start() is tracker
    clock.advance(10.0)
    assert tracker.energy_j == pytest.approx(0.0)  # nothing sampled yet
    record = tracker.stop()
    assert tracker.stop() is record
    assert record.name == "explicit"
    assert record.metadata["model"] == "mlp"
    assert record.energy_j == pytest.approx(10.0)
    with pytest.raises(ConfigError, match="already started"):
        tracker.start()


def test_window_api_returns_window_records(settings: Settings, clock: ManualClock) -> None:
    tracker = Tracker(
        settings,
        zone="DE",
        meters=[FakeMeter(2.0, clock=clock)],
        provider=StaticIntensity(500.0),
        clock=clock,
        interval_s=NEVER_S,
    ).start()
    assert tracker.begin("epoch-1") == "epoch-1"
    clock.advance(5.0)
    window = tracker.end()
    tracker.stop()
    assert window.path == "epoch-1"
    assert window.energy_j == pytest.approx(10.0)
    assert window.co2e_g == pytest.approx(10.0 / J_PER_KWH * 500.0)
    with pytest.raises(ConfigError, match="running tracker"):
        tracker.begin("late")


def wait_for_run(
    store: RunStore, run_id: str, ready: Callable[[RunRecord], bool], timeout_s: float = 30.0
) -> RunRecord:
    """Poll the store until the run exists and ``ready`` holds (or the timeout passes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            record = store.get(run_id)
            if ready(record) or time.monotonic() > deadline:
                return record
        except StoreError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.02)


def test_records_are_flushed_while_running(settings: Settings) -> None:
    tracker = Tracker(
        settings, zone="DE", meters=[FakeMeter(100.0)], provider=StaticIntensity()
    ).start()
    try:
        with RunStore.for_settings(settings) as store:
            seen = wait_for_run(store, tracker.run_id, lambda r: r.energy_j > 0)
        assert seen.status == "running"
        assert seen.energy_j > 0
        assert seen.co2e_g is not None
        assert seen.co2e_g > 0
    finally:
        tracker.stop()


def test_persist_false_keeps_the_run_out_of_the_store(settings: Settings) -> None:
    with track(
        settings, zone="DE", meters=[FakeMeter()], provider=StaticIntensity(), persist=False
    ) as run:
        pass
    assert run.record is not None
    assert not (settings.resolved_home() / "runs.sqlite").exists()


def test_an_unknown_zone_fails_before_the_workload_runs(settings: Settings) -> None:
    tracker = Tracker(
        settings, zone="GBX", meters=[FakeMeter()], provider=StaticIntensity({"GB": 300.0})
    )
    with pytest.raises(UnknownZoneError, match=r"'GBX'.*Close matches: GB"):
        tracker.start()


def test_an_unknown_zone_in_the_embedded_table_lists_close_matches(settings: Settings) -> None:
    with (
        pytest.raises(UnknownZoneError, match="unknown grid zone 'GERMANY'"),
        track(settings, zone="GERMANY", meters=[FakeMeter()]),
    ):
        pytest.fail("the body must not run")


def test_no_zone_anywhere_is_a_config_error_not_a_default(settings: Settings) -> None:
    tracker = Tracker(settings, meters=[FakeMeter()], provider=StaticIntensity(), env={})
    with pytest.raises(ConfigError, match="no grid zone"):
        tracker.start()


def test_bad_settings_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'fast'.*interval_s"):
        load_settings(env={"GREENFORGE_INTERVAL_S": "fast"})
    with pytest.raises(ConfigError, match="bad interval_s 0"):
        Tracker(load_settings(env={}), interval_s=0.0)
    with pytest.raises(ConfigError, match="expected_windows"):
        Tracker(load_settings(env={}), expected_windows=0)
    with pytest.raises(ConfigError, match="bad PUE"):
        load_settings(env={"GREENFORGE_PUE": "0.5"})


def test_the_public_api_exposes_track_and_tracker() -> None:
    assert greenforge.track is track
    assert greenforge.Tracker is Tracker


class FlakyIntensity(StaticIntensity):
    """A live grid API that is down for the first ``failures`` calls."""

    def __init__(self, failures: int) -> None:
        super().__init__(300.0, name="flaky")
        self.failures = failures

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        if self.failures > 0:
            self.failures -= 1
            raise ProviderError("flaky API: 503 Service Unavailable")
        return super().history(zone, start_s, end_s)


def test_a_grid_outage_at_start_does_not_stop_the_workload(
    settings: Settings, clock: ManualClock
) -> None:
    with track(
        settings,
        zone="DE",
        meters=[FakeMeter(36.0, clock=clock)],
        provider=FlakyIntensity(failures=2),
        interval_s=NEVER_S,
        clock=clock,
    ) as run:
        clock.advance(100.0)
    record = run.record
    assert record is not None
    assert record.co2e_g == pytest.approx(3600.0 / J_PER_KWH * 300.0)
    assert any("unavailable at start" in w for w in record.warnings)


def test_a_grid_that_never_answers_keeps_the_energy_and_says_why(
    settings: Settings, clock: ManualClock
) -> None:
    with track(
        settings,
        zone="DE",
        meters=[FakeMeter(36.0, clock=clock)],
        provider=FlakyIntensity(failures=100),
        interval_s=NEVER_S,
        clock=clock,
    ) as run:
        clock.advance(100.0)
    record = run.record
    assert record is not None
    assert record.energy_j == pytest.approx(3600.0)
    assert record.emissions is None
    assert any("no CO2e for this run" in w for w in record.warnings)


def test_a_decorated_function_that_raises_is_stored_as_failed(settings: Settings) -> None:
    tracked = track(settings, zone="DE", meters=[FakeMeter(5.0)], provider=StaticIntensity())

    @tracked
    def diverge() -> None:
        raise FloatingPointError("loss is NaN")

    with pytest.raises(FloatingPointError):
        diverge()
    assert tracked.record is not None
    assert tracked.record.status == "failed"
    assert tracked.record.metadata["error"] == "FloatingPointError: loss is NaN"


@hypothesis_settings(deadline=None)  # timing varies on shared CI machines
@given(
    values=st.lists(st.floats(0.0, 2000.0), min_size=1, max_size=6),
    start_offset_s=st.floats(-7200.0, 30000.0),
    # widths far below a microsecond are a few float64 ulps of an epoch timestamp: both paths
    # then round the interval differently, which is not what this test is about
    width_s=st.one_of(st.just(0.0), st.floats(1e-3, 10000.0)),
    energy_j=st.floats(0.0, 1e7),
)
def test_the_running_co2e_fast_path_matches_the_integral(
    values: list[float], start_offset_s: float, width_s: float, energy_j: float
) -> None:
    t0 = 1_700_000_000.0
    series = IntensitySeries(
        times_s=t0 + 3600.0 * np.arange(len(values), dtype=np.float64),
        values_g_per_kwh=np.array(values),
        step_s=3600.0,
        zone="DE",
        source="test",
    )
    start_s = t0 + start_offset_s
    expected = float(emissions_g(series, start_s, start_s + width_s, energy_j, 1.3)[0])
    got = interval_co2e_g(series, start_s, start_s + width_s, energy_j, 1.3)
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_process_attribution_in_process_charges_this_process_tree(settings: Settings) -> None:
    # Without an explicit pid, `attribution="process"` must scope the modelled meters to the
    # calling process, not fall back to charging the whole machine.
    import dataclasses

    process = dataclasses.replace(settings, attribution="process")
    tracker = Tracker(process, zone="DE", persist=False, provider=StaticIntensity(400.0))
    tracker.start()
    sum(i * i for i in range(10_000))
    record = tracker.stop()
    cpu_notes = [m for m in record.meters if m.startswith("model-cpu")]
    assert cpu_notes
    assert all("process" in m for m in cpu_notes), cpu_notes


def test_decorating_a_coroutine_function_measures_the_awaited_body(settings: Settings) -> None:
    import asyncio

    tracked = track(settings, zone="DE", meters=[FakeMeter(5.0)], provider=StaticIntensity())

    @tracked
    async def train(epochs: int) -> str:
        await asyncio.sleep(0.2)
        return f"trained {epochs}"

    assert asyncio.run(train(2)) == "trained 2"
    assert tracked.record is not None
    assert tracked.record.status == "completed"
    assert tracked.record.duration_s >= 0.2  # the body ran inside the run
    assert tracked.record.energy_j == pytest.approx(5.0 * tracked.record.duration_s, rel=0.2)


def test_decorating_a_generator_function_is_refused_with_advice(settings: Settings) -> None:
    tracked = track(settings, zone="DE", meters=[FakeMeter(5.0)], provider=StaticIntensity())

    def batches() -> Iterator[int]:
        yield 1

    with pytest.raises(ConfigError, match="generator function"):
        tracked(batches)


def test_running_co2e_follows_the_embedded_profile_not_the_first_hour(
    settings: Settings, clock: ManualClock
) -> None:
    # Budgets, window figures and predictions use the running total: over a 13 h run it must
    # follow the hourly profile like the final record does, not hold the first hour's value.
    tracker = Tracker(
        settings,
        zone="DE",
        meters=[FakeMeter(100.0, clock=clock)],
        interval_s=NEVER_S,
        clock=clock,
        persist=False,
    )
    tracker.start()
    deadline = time.monotonic() + 10.0
    while tracker._series is None and time.monotonic() < deadline:  # loaded in the background
        time.sleep(0.01)
    with tracker.window("night"):
        clock.advance(3600.0)
    clock.advance(11 * 3600.0)
    with tracker.window("noon"):
        clock.advance(3600.0)
    running_g = tracker.co2e_g
    record = tracker.stop()
    assert record.emissions is not None
    assert record.emissions.intensity.time_resolved
    assert running_g == pytest.approx(record.co2e_g, rel=1e-9)


def test_co2e_of_a_run_across_new_year_uses_each_years_annual_value(
    settings: Settings,
) -> None:
    # FR has no hourly profile: the embedded grid gives 60 g/kWh in 2021, 91 g/kWh in 2022
    new_year_s = dt.datetime(2022, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    clock = ManualClock(new_year_s - 3600.0)
    tracker = Tracker(
        settings, zone="FR", meters=[FakeMeter(100.0, clock=clock)], interval_s=NEVER_S, clock=clock
    )
    tracker.start()
    with tracker.window("old-year"):
        clock.advance(3600.0)
    with tracker.window("new-year"):
        clock.advance(3600.0)
    record = tracker.stop()
    assert record.emissions is not None
    assert record.emissions.intensity.source == "embedded:electricitymaps-yearly-2021+2022:FR"
    series = EmbeddedProvider().history("FR", new_year_s - 3600.0, new_year_s + 3600.0)
    expected = emissions_g(
        series, [new_year_s - 3600.0, new_year_s], [new_year_s, new_year_s + 3600.0], 360_000.0
    )
    kwh_per_hour = 100.0 * 3600.0 / J_PER_KWH
    assert expected.tolist() == pytest.approx([kwh_per_hour * 60.0, kwh_per_hour * 91.0])
    assert record.co2e_g == pytest.approx(float(expected.sum()))
    assert [w.co2e_g for w in record.windows] == pytest.approx(expected.tolist())
    assert record.emissions.mean_intensity_g_per_kwh == pytest.approx(75.5)


def test_a_zone_from_a_cloud_region_variable_brings_that_clouds_pue(
    settings: Settings, clock: ManualClock
) -> None:
    with track(
        settings,
        meters=[FakeMeter(100.0, clock=clock)],
        provider=StaticIntensity(400.0),
        interval_s=NEVER_S,
        env={"AWS_REGION": "eu-central-1"},
        clock=clock,
    ) as run:
        clock.advance(60.0)
    record = run.record
    assert record is not None
    assert record.emissions is not None
    assert record.metadata["zone_source"] == "AWS_REGION=eu-central-1"
    assert record.emissions.pue == 1.135
    assert record.emissions.pue_source == "ccf-methodology:pue:aws (from AWS_REGION)"
    assert record.co2e_g == pytest.approx(6000.0 / J_PER_KWH * 1.135 * 400.0)


@pytest.mark.parametrize(
    ("zone", "extra", "expected"),
    [
        (None, {}, (1.1, "ccf-methodology:pue:gcp (from GOOGLE_CLOUD_REGION)")),
        ("DE", {}, (1.0, "default:local-machine")),  # explicit zone: a local machine
        (None, {"GREENFORGE_ZONE": "DE"}, (1.0, "default:local-machine")),
        (None, {"GREENFORGE_PUE": "1.3"}, (1.3, "settings.pue")),  # explicit PUE wins
    ],
)
def test_only_a_zone_from_a_cloud_variable_brings_its_pue(
    settings: Settings, zone: str | None, extra: dict[str, str], expected: tuple[float, str]
) -> None:
    env = {"GOOGLE_CLOUD_REGION": "europe-west1", **extra}
    tracker = Tracker(
        load_settings(env=env, home=settings.home),
        zone=zone,
        meters=[FakeMeter()],
        provider=StaticIntensity(),
        env=env,
    )
    tracker.prepare()
    assert (tracker.pue, tracker.pue_source) == expected
