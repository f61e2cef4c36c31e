"""The sampling monitor: per-interval energy, nestable windows, failing meters, CUDA sync."""

from __future__ import annotations

import itertools
import logging
import sys
import time
import types
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from greenforge.errors import ConfigError
from greenforge.meters.base import Scope
from greenforge.monitor import Monitor, sync_cuda
from greenforge.records import EnergyReading, totals_by_component
from greenforge.testing import FakeMeter, ManualClock

NEVER_S = 3600.0  # an interval so long the background thread never samples in a test


class BrokenMeter:
    """Works for ``good_reads`` reads, then raises like a vanished device."""

    scope: Scope = "node"

    def __init__(self, good_reads: int = 0, fail_start: bool = False) -> None:
        self.name = "broken"
        self.good_reads = good_reads
        self.fail_start = fail_start
        self.closed = False

    def start(self) -> None:
        if self.fail_start:
            raise RuntimeError("device vanished")

    def read(self) -> Sequence[EnergyReading]:
        if self.good_reads <= 0:
            raise OSError("read error on the counter")
        self.good_reads -= 1
        return [EnergyReading.exact("gpu:0", 1.0, "fake")]

    def close(self) -> None:
        self.closed = True


def test_intervals_hold_each_components_energy(clock: ManualClock) -> None:
    meter = FakeMeter({"cpu": 20.0, "ram": 5.0}, clock=clock)
    monitor = Monitor([meter], NEVER_S, clock=clock)
    monitor.start()
    clock.advance(2.0)
    first = monitor.sample()
    clock.advance(1.0)
    intervals = monitor.stop()
    assert first is not None
    assert {r.component: r.energy_j for r in first.readings} == {"cpu": 40.0, "ram": 10.0}
    assert [iv.duration_s for iv in intervals] == [2.0, 1.0]
    assert monitor.energy_j == pytest.approx(75.0)
    assert meter.closed


def test_the_background_thread_samples_at_the_interval() -> None:
    meter = FakeMeter(10.0)
    monitor = Monitor([meter], 0.01)
    monitor.start()
    deadline = time.monotonic() + 10
    while len(monitor.intervals) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    intervals = monitor.stop()
    assert len(intervals) >= 4  # three periodic samples and the final one
    assert intervals[0].start_s == monitor.started_s
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(intervals))


def test_windows_nest_and_cover_exactly_their_intervals(clock: ManualClock) -> None:
    monitor = Monitor([FakeMeter(10.0, clock=clock)], NEVER_S, clock=clock)
    monitor.start()
    clock.advance(1.0)  # outside any window
    with monitor.window("epoch-1") as outer:
        clock.advance(2.0)
        with monitor.window("eval") as inner:
            clock.advance(3.0)
    clock.advance(1.0)
    monitor.stop()
    spans = {w.path: w for w in monitor.windows}
    assert (outer, inner) == ("epoch-1", "epoch-1/eval")
    assert spans["epoch-1/eval"].energy_j == pytest.approx(30.0)
    assert spans["epoch-1"].energy_j == pytest.approx(50.0)
    assert spans["epoch-1"].depth == 0
    assert spans["epoch-1/eval"].depth == 1
    assert monitor.energy_j == pytest.approx(70.0)


def test_begin_and_end_check_their_use(clock: ManualClock) -> None:
    monitor = Monitor([FakeMeter(1.0, clock=clock)], NEVER_S, clock=clock)
    monitor.start()
    with pytest.raises(ConfigError, match="no open window"):
        monitor.end()
    for bad in ("", "a/b", "  "):
        with pytest.raises(ConfigError, match="bad window name"):
            monitor.begin(bad)
    monitor.begin("train")
    with pytest.raises(ConfigError, match="innermost"):
        monitor.end("eval")
    monitor.stop()
    assert any("still open" in w for w in monitor.warnings)
    assert [w.path for w in monitor.windows] == ["train"]


def test_a_meter_that_fails_while_reading_is_dropped_with_one_warning(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    good = FakeMeter(10.0, clock=clock)
    broken = BrokenMeter(good_reads=1)
    monitor = Monitor([good, broken], NEVER_S, clock=clock)
    monitor.start()
    with caplog.at_level(logging.WARNING, logger="greenforge.monitor"):
        for _ in range(4):
            clock.advance(1.0)
            monitor.sample()
    monitor.stop()
    assert monitor.dropped == ["broken"]
    assert broken.closed
    assert len([r for r in caplog.records if "broken" in r.getMessage()]) == 1
    assert monitor.energy_j == pytest.approx(40.0 + 1.0)


def test_a_meter_that_cannot_start_is_dropped(clock: ManualClock) -> None:
    monitor = Monitor([BrokenMeter(fail_start=True), FakeMeter(1.0, clock=clock)], NEVER_S)
    monitor.start()
    assert [m.name for m in monitor.meters] == ["fake"]
    monitor.stop()
    assert "could not start" in monitor.warnings[0]


def test_a_raising_interval_hook_never_stops_sampling(clock: ManualClock) -> None:
    def hook(_: object) -> None:
        raise ValueError("user bug")

    monitor = Monitor([FakeMeter(1.0, clock=clock)], NEVER_S, clock=clock, on_interval=hook)
    monitor.start()
    clock.advance(1.0)
    monitor.sample()
    monitor.stop()
    assert monitor.energy_j == pytest.approx(1.0)
    assert any("hook failed" in w for w in monitor.warnings)


def test_a_bad_interval_is_rejected() -> None:
    with pytest.raises(ConfigError, match="bad sampling interval"):
        Monitor([], 0.0)


@hypothesis_settings(max_examples=50, deadline=None)
@given(
    power_w=st.floats(0.0, 500.0),
    steps_s=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=20),
)
def test_interval_energies_add_up_to_power_times_time(power_w: float, steps_s: list[float]) -> None:
    clock = ManualClock(0.0)
    monitor = Monitor([FakeMeter(power_w, clock=clock)], NEVER_S, clock=clock)
    monitor.start()
    for step in steps_s:
        clock.advance(step)
        monitor.sample()
    intervals = monitor.stop()
    total = totals_by_component(intervals)
    expected = power_w * sum(steps_s)
    assert monitor.energy_j == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert sum(c.energy_j for c in total) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert sum(iv.duration_s for iv in intervals) == pytest.approx(sum(steps_s), abs=1e-6)


def fake_torch(calls: list[str], initialised: bool) -> types.ModuleType:
    module = types.ModuleType("torch")
    module.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_initialized=lambda: initialised,
        is_available=lambda: True,
        synchronize=lambda: calls.append("sync"),
    )
    return module


def test_window_boundaries_synchronise_cuda_when_the_user_initialised_it(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setitem(sys.modules, "torch", fake_torch(calls, initialised=True))
    monitor = Monitor([FakeMeter(1.0, clock=clock)], NEVER_S, clock=clock)
    monitor.start()
    with monitor.window("step"):
        pass
    monitor.stop()
    assert calls == ["sync", "sync", "sync"]  # begin, end, stop


def test_cuda_is_left_alone_when_torch_is_absent_or_cuda_unused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert sync_cuda() is False
    assert "torch" not in sys.modules
    calls: list[str] = []
    monkeypatch.setitem(sys.modules, "torch", fake_torch(calls, initialised=False))
    assert sync_cuda() is False
    assert calls == []
