"""Window boundaries cost a timestamp: no meter read, each window's figures computed once."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest

from greenforge.config import Settings
from greenforge.grid.series import IntensitySeries
from greenforge.monitor import BOUNDARY_SAMPLE_AGE_S, Monitor
from greenforge.records import WindowColumns, WindowRecord, run_record_from_dict
from greenforge.report.store import RunStore
from greenforge.testing import FakeMeter, ManualClock
from greenforge.tracker import Tracker

NEVER_S = 3600.0  # the background thread never samples in these tests


class HourlyIntensity:
    """100, 400, 250 g/kWh for three consecutive 10-minute steps from ``start_s``."""

    name = "steps"

    def __init__(self, start_s: float) -> None:
        self.start_s = start_s

    def zones(self) -> list[str]:
        return ["DE"]

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        return IntensitySeries(
            times_s=self.start_s + np.array([0.0, 600.0, 1200.0]),
            values_g_per_kwh=np.array([100.0, 400.0, 250.0]),
            step_s=600.0,
            zone=zone,
            source="steps:test",
        )

    def forecast(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        return self.history(zone, start_s, end_s)


def started(
    settings: Settings,
    clock: ManualClock,
    meter: FakeMeter,
    provider: HourlyIntensity | None = None,
    store: RunStore | None = None,
) -> Tracker:
    """A started tracker on ``clock`` whose thread never samples (in memory without a
    ``store``)."""
    return Tracker(
        settings,
        zone="DE",
        meters=[meter],
        provider=provider,
        interval_s=NEVER_S,
        clock=clock,
        store=store,
        persist=store is not None,
    ).start()


def test_window_boundaries_do_not_read_the_meters(clock: ManualClock) -> None:
    meter = FakeMeter(10.0, clock=clock)
    monitor = Monitor([meter], NEVER_S, clock=clock)
    monitor.start()
    clock.advance(2.0)
    monitor.sample()  # the power is known from here
    reads = meter.reads
    for i in range(1000):
        with monitor.window(f"step-{i}"):
            clock.advance(0.0005)
    assert meter.reads == reads  # 0.5 s of windows: all interpolated, no meter read
    monitor.stop()
    windows = monitor.windows
    assert len(windows) == 1000
    assert all(w.final for w in windows)
    # (unix-time floats resolve ~0.2 us at 1.7e9 s: the widths are exact only to ~1e-4)
    assert [w.energy_j for w in windows] == pytest.approx([10.0 * 0.0005] * 1000, rel=1e-3)
    span_s = windows[-1].end_s - windows[0].start_s
    assert sum(w.energy_j for w in windows) == pytest.approx(10.0 * span_s, rel=1e-9)


def test_a_boundary_reads_the_meters_when_the_last_sample_is_old(clock: ManualClock) -> None:
    meter = FakeMeter(10.0, clock=clock)
    monitor = Monitor([meter], NEVER_S, clock=clock)
    monitor.start()
    clock.advance(BOUNDARY_SAMPLE_AGE_S)
    reads = meter.reads
    monitor.begin("epoch")
    assert meter.reads == reads + 1
    clock.advance(0.25)
    span = monitor.end("epoch")  # extrapolated from the fresh sample's power
    assert meter.reads == reads + 1
    assert not span.final
    assert span.energy_j == pytest.approx(2.5)
    monitor.stop()
    assert monitor.windows[0].final
    assert monitor.windows[0].energy_j == pytest.approx(2.5)


def test_windows_that_tile_a_run_sum_to_its_energy_and_co2e(
    settings: Settings, clock: ManualClock
) -> None:
    # Power changes between samples and the intensity changes inside windows: each window's
    # figures are interpolated between samples, and tiling windows still add up exactly.
    meter = FakeMeter(50.0, clock=clock)
    tracker = started(settings, clock, meter, provider=HourlyIntensity(clock()))
    for i, (seconds, power_w) in enumerate([(250.0, 80.0), (700.0, 20.0), (500.0, 200.0)]):
        with tracker.window(f"phase-{i}"):
            for _ in range(3):
                clock.advance(seconds / 3)
                tracker._running_monitor().sample()
                meter.power_w["cpu"] = power_w
    record = tracker.stop()
    assert len(record.windows) == 3
    assert sum(w.energy_j for w in record.windows) == pytest.approx(record.energy_j)
    assert sum(w.co2e_g or 0.0 for w in record.windows) == pytest.approx(record.co2e_g)
    assert record.windows[1].co2e_g is not None
    # the middle window spans 100 and 400 g/kWh: its mean intensity lies between them
    mean = record.windows[1].co2e_g / (record.windows[1].energy_j / 3.6e6)
    assert 100.0 < mean < 400.0


def test_many_windows_are_finished_once_and_stored_in_start_order(
    settings: Settings, clock: ManualClock
) -> None:
    tracker = started(settings, clock, FakeMeter(10.0, clock=clock))  # embedded DE profile
    with tracker.window("epoch"):
        for i in range(2000):
            with tracker.window(f"step-{i}"):
                clock.advance(0.01)
    record = tracker.stop()
    monitor = tracker._monitor
    assert monitor is not None
    assert len(monitor.intervals) <= 21  # one read per second of windows at most, not 4002
    assert tracker._windows_done == 2001
    assert [w.path for w in record.windows[:2]] == ["epoch", "epoch/step-0"]
    assert record.windows[0].energy_j == pytest.approx(10.0 * 20.0)
    assert sum(w.energy_j for w in record.windows[1:]) == pytest.approx(10.0 * 20.0)
    # steps inside one sampling interval take the fast path (energy x mean intensity), the
    # epoch spans many: both agree
    epoch_g = record.windows[0].co2e_g
    assert epoch_g is not None
    assert epoch_g > 0
    assert sum(w.co2e_g or 0.0 for w in record.windows[1:]) == pytest.approx(epoch_g, rel=1e-9)
    starts = [w.start_s for w in record.windows]
    assert starts == sorted(starts)


def test_windows_are_stored_once_in_batches_beside_the_record(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    # Each flush writes the windows finished since the last one (one chunk), the stop the
    # rest; reading the run gives every window back in start order, as the tracker had them.
    store = RunStore(tmp_path / "runs.sqlite")
    tracker = started(settings, clock, FakeMeter(10.0, clock=clock), store=store)
    deadline = time.monotonic() + 30.0
    while tracker._series is None and time.monotonic() < deadline:  # loaded in the background
        time.sleep(0.01)
    with tracker.window("epoch"):
        for i in range(3):
            with tracker.window(f"step-{i}"):
                clock.advance(0.1)
        tracker._running_monitor().sample()
        tracker._flush("running")
        running = store.get(tracker.run_id)
        assert running.status == "running"
        assert [w.path for w in running.windows] == [f"epoch/step-{i}" for i in range(3)]
        with tracker.window("step-3"):
            clock.advance(0.1)
    record = tracker.stop()
    stored = store.get(tracker.run_id)
    assert [w.path for w in record.windows] == ["epoch"] + [f"epoch/step-{i}" for i in range(4)]
    assert stored.windows == record.windows
    assert [w.name for w in stored.windows][:2] == ["epoch", "step-0"]
    chunks = store._query("SELECT COUNT(*) FROM window_chunks")
    assert chunks == [(2,)]  # every window written once
    payload = store._query("SELECT record FROM parts")[0][0]
    assert json.loads(payload)["windows"] == []  # not serialised into the record
    assert RunStore(tmp_path / "runs.sqlite", read_only=True).list()[0].windows == record.windows
    store.close()


def test_windows_accounted_anew_at_stop_replace_the_stored_ones(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    # A live provider's intensity is fetched again for the run's span at stop: every window
    # gets its CO2e anew, and the store holds the new figures, each window once.
    store = RunStore(tmp_path / "runs.sqlite")
    meter = FakeMeter(10.0, clock=clock)
    tracker = started(settings, clock, meter, HourlyIntensity(clock()), store=store)
    for i in range(2):
        with tracker.window(f"phase-{i}"):
            clock.advance(400.0)
            tracker._running_monitor().sample()
    tracker._flush("running")
    record = tracker.stop()
    stored = store.get(tracker.run_id)
    assert stored.windows == record.windows
    assert len(stored.windows) == 2
    assert all(w.co2e_g is not None for w in stored.windows)
    store.close()


def test_a_damaged_window_chunk_loses_only_those_windows(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    cols = WindowColumns()
    cols.paths.append("epoch")
    cols.depths.append(0)
    cols.start_s.append(1.0)
    cols.end_s.append(2.0)
    cols.energy_j.append(3.0)
    cols.co2e_g.append(None)
    good = run_record_from_dict(
        {"id": "good", "name": "g", "status": "completed", "started_s": 1.0, "duration_s": 1.0}
    )
    store.save_part(good, windows=cols)
    bad = dataclasses.replace(good, id="bad")
    store.save_part(bad, windows=cols)
    with store._tx() as cur:
        cur.execute("UPDATE window_chunks SET numbers = x'00' WHERE run_id = 'bad'")
    assert sorted(r.id for r in store.list()) == ["bad", "good"]  # the runs' figures stay
    assert store.get("good").windows == (WindowRecord("epoch", "epoch", 1.0, 2.0, 3.0, None),)
    assert store.get("bad").windows == ()
    assert any("run bad" in p and "window records" in p for p in store.problems)
    store.close()


def test_a_version_1_store_reads_and_upgrades(tmp_path: Path) -> None:
    # Stores written before window_chunks existed hold windows in the record's JSON: a
    # read-only view reads them as they are, a writable open adds the table.
    path = tmp_path / "runs.sqlite"
    record = run_record_from_dict(
        {
            "id": "old",
            "name": "o",
            "status": "completed",
            "started_s": 1.0,
            "duration_s": 1.0,
            "windows": [{"name": "e", "path": "e", "start_s": 1.0, "end_s": 2.0, "energy_j": 3.0}],
        }
    )
    with RunStore(path) as store:
        store.save_part(record)
        with store._tx() as cur:
            cur.execute("DROP TABLE window_chunks")
            cur.execute("PRAGMA user_version=1")
    assert RunStore(path, read_only=True).get("old").windows == record.windows
    with RunStore(path) as store:
        assert store.get("old").windows == record.windows
        assert store._query("PRAGMA user_version") == [(2,)]
