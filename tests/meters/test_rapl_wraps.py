"""RAPL counters that can wrap more than once between reads: the sampling interval is bounded
by the counter range and the package's maximum power, and a late read is marked uncertain with
bounds that hold the true energy (instead of silently losing whole wraps)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from greenforge.config import load_settings
from greenforge.meters import rapl
from greenforge.meters.model import ProcessShareMeter
from greenforge.testing import StaticIntensity
from greenforge.tracker import Tracker

RANGE_UJ = 1_000_000  # a 1 J counter, so wraps are easy to provoke
MAX_POWER_UW = 1_000_000  # the package's rated maximum: 1 W


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def package(root: Path, energy_uj: int = 0, max_power_uw: int | None = MAX_POWER_UW) -> Path:
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{RANGE_UJ}\n")
    if max_power_uw is not None:
        (zone / "constraint_0_max_power_uw").write_text(f"{max_power_uw}\n")
    return zone


class Counter:
    """A package drawing ``power_w``: the counter as the hardware would show it."""

    def __init__(self, zone: Path, clock: Clock) -> None:
        self.zone, self.clock, self.true_uj = zone, clock, 0.0

    def run(self, seconds: float, power_w: float) -> None:
        self.clock.now_s += seconds
        self.true_uj += power_w * 1e6 * seconds
        (self.zone / "energy_uj").write_text(f"{round(self.true_uj) % RANGE_UJ}\n")


def test_the_interval_bound_is_half_the_time_to_wrap_at_maximum_power() -> None:
    # A typical Xeon package: 262 kJ range, 150 W -> a wrap every 29 min; read every 14.6 min.
    assert rapl.max_read_interval_s(262_143_328_850, 150.0) == pytest.approx(873.8111, rel=1e-6)
    assert rapl.max_read_interval_s(0, 150.0) == float("inf")  # no range: nothing to bound


def test_the_meter_takes_its_maximum_power_from_sysfs(tmp_path: Path) -> None:
    package(tmp_path)
    assert rapl.RaplMeter(root=tmp_path).max_interval_s == pytest.approx(0.5)
    assert rapl.RaplMeter(root=tmp_path, max_power_w=4.0).max_interval_s == pytest.approx(0.125)


def test_without_a_stated_maximum_the_cpu_tdp_or_a_generous_default_bounds_it(
    tmp_path: Path,
) -> None:
    package(tmp_path, max_power_uw=None)
    bound = rapl.RaplMeter(root=tmp_path).max_interval_s
    assert bound <= RANGE_UJ / 1e6 / 2 / 1.0  # at least as strict as 1 W would be
    assert bound > 0


def test_reads_within_the_bound_are_exact(tmp_path: Path) -> None:
    clock = Clock()
    counter = Counter(package(tmp_path), clock)
    meter = rapl.RaplMeter(root=tmp_path, clock=clock)
    meter.start()
    counter.run(0.4, 1.9)  # 0.76 J: wraps once at most, read in time

    [reading] = meter.read()
    assert reading.method == "rapl"
    assert reading.energy_j == pytest.approx(0.76)


def test_several_wraps_between_reads_are_estimated_and_bounded_not_lost(tmp_path: Path) -> None:
    clock = Clock()
    counter = Counter(package(tmp_path), clock)
    meter = rapl.RaplMeter(root=tmp_path, clock=clock)
    meter.start()
    counter.run(0.25, 1.5)
    [first] = meter.read()  # in time: 0.375 J, and the power it implies (1.5 W)
    assert first.energy_j == pytest.approx(0.375)

    counter.run(2.0, 1.5)  # the process stalled: 3 J, three whole wraps, counter looks unchanged
    [late] = meter.read()

    assert late.method == rapl.WRAP_UNCERTAIN
    assert late.energy_j == pytest.approx(3.0)  # wraps estimated from the power seen before
    assert late.low_j <= 3.0 <= late.high_j
    assert late.high_j >= 4.0  # up to 2 W (twice the rating) for 2 s could be 4 J
    assert any("wrap" in e for e in meter.errors)


def test_a_late_first_read_says_it_is_uncertain(tmp_path: Path) -> None:
    clock = Clock()
    counter = Counter(package(tmp_path), clock)
    meter = rapl.RaplMeter(root=tmp_path, clock=clock)
    meter.start()
    counter.run(3.0, 1.2)  # 3.6 J, nothing seen before to estimate the wraps from

    [late] = meter.read()
    assert late.method == rapl.WRAP_UNCERTAIN
    assert late.low_j <= 3.6 <= late.high_j


@hypothesis_settings(deadline=None, max_examples=60)
@given(
    steps=st.lists(
        st.tuples(st.floats(0.01, 5.0), st.floats(0.0, 2.0)),  # (seconds, watts <= 2x rating)
        min_size=1,
        max_size=25,
    )
)
def test_the_bounds_always_hold_the_true_energy(steps: list[tuple[float, float]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        clock = Clock()
        counter = Counter(package(Path(root)), clock)
        meter = rapl.RaplMeter(root=Path(root), clock=clock)
        meter.start()
        low = high = 0.0
        for seconds, watts in steps:
            counter.run(seconds, watts)
            for r in meter.read():
                low += r.low_j
                high += r.high_j
    true_j = counter.true_uj / 1e6
    assert low - 1e-5 <= true_j <= high + 1e-5  # (+-1 uJ rounding per read)


def test_the_tracker_clamps_a_sampling_interval_that_would_allow_double_wraps(
    tmp_path: Path,
) -> None:
    package(tmp_path / "powercap")
    meter = rapl.RaplMeter(root=tmp_path / "powercap")
    settings = load_settings(env={}, home=tmp_path / "home", interval_s=30.0)
    tracker = Tracker(
        settings, zone="DE", meters=[meter], provider=StaticIntensity(), persist=False
    )
    tracker.start()
    record = tracker.stop()

    assert tracker.settings.interval_s == pytest.approx(0.5)
    assert record.metadata["interval_s"] == pytest.approx(0.5)
    assert any("wrapping twice" in w for w in record.warnings)


def test_the_bound_sees_through_process_attribution(tmp_path: Path) -> None:
    package(tmp_path)
    inner = rapl.RaplMeter(root=tmp_path)
    shared = ProcessShareMeter(inner, process_cpu=lambda: 0.0)
    assert rapl.max_sampling_interval_s([shared]) == pytest.approx(0.5)
    assert rapl.max_sampling_interval_s([]) == float("inf")
