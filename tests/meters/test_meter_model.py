"""Modelled CPU and RAM meters, process-tree CPU accounting and process-share scoping."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.config import Settings
from greenforge.hardware.catalog import CpuPowerModel
from greenforge.hardware.cpuinfo import CpuInfo
from greenforge.meters import model
from greenforge.meters.base import create_meter, probe_meter
from greenforge.testing import FakeMeter

CURVE = CpuPowerModel(
    method="model:cpu-tdp",
    idle_w=10.0,
    max_w=50.0,
    idle_low_w=5.0,
    max_low_w=40.0,
    idle_high_w=15.0,
    max_high_w=60.0,
    provenance="test curve",
)
VM = CpuInfo("AMD EPYC", "AuthenticAMD", 26, 2, 1, logical_cpus=2, hypervisor=True)


class Counters:
    """Injectable clock, machine CPU times and process CPU time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.busy = 0.0
        self.total = 0.0
        self.proc = 0.0

    def clock(self) -> float:
        return self.now

    def cpu_times(self) -> tuple[float, float]:
        return self.busy, self.total

    def process_cpu(self) -> float:
        return self.proc

    def advance(self, dt_s: float, busy_s: float, cpus: int = 2, proc_s: float = 0.0) -> None:
        self.now += dt_s
        self.busy += busy_s
        self.total += dt_s * cpus
        self.proc += proc_s


@given(
    d_busy=st.floats(min_value=-10, max_value=1e6),
    d_total=st.floats(min_value=-10, max_value=1e6),
)
def test_utilisation_is_always_a_fraction(d_busy: float, d_total: float) -> None:
    assert 0.0 <= model.utilisation(d_busy, d_total) <= 1.0


@given(
    d_proc=st.floats(min_value=-10, max_value=1e6),
    d_busy=st.floats(min_value=-10, max_value=1e6),
)
def test_process_share_is_always_a_fraction(d_proc: float, d_busy: float) -> None:
    assert 0.0 <= model.process_share(d_proc, d_busy) <= 1.0


def test_cpu_energy_is_curve_power_at_utilisation_times_elapsed_time() -> None:
    c = Counters()
    meter = model.ModelCpuMeter(
        Settings(), cpuinfo=VM, cpu_times=c.cpu_times, clock=c.clock, power_model=CURVE
    )
    meter.start()
    c.advance(dt_s=10.0, busy_s=10.0)  # 2 CPUs x 10 s, 10 s busy -> 50 % -> 30 W

    (reading,) = meter.read()

    assert reading.component == "cpu"
    assert reading.method == "model:cpu-tdp"
    assert reading.energy_j == pytest.approx(300.0)
    assert reading.low_j == pytest.approx(225.0)  # (5 + 35 * 0.5) W x 10 s
    assert reading.high_j == pytest.approx(375.0)
    assert meter.scope == "node"


def test_idle_machine_is_charged_the_idle_floor() -> None:
    c = Counters()
    meter = model.ModelCpuMeter(
        Settings(), cpuinfo=VM, cpu_times=c.cpu_times, clock=c.clock, power_model=CURVE
    )
    meter.start()
    c.advance(dt_s=2.0, busy_s=0.0)

    assert meter.read()[0].energy_j == pytest.approx(20.0)


def test_process_attribution_charges_the_tree_share_of_busy_cpu_time() -> None:
    c = Counters()
    meter = model.ModelCpuMeter(
        Settings(attribution="process"),
        cpuinfo=VM,
        cpu_times=c.cpu_times,
        process_cpu=c.process_cpu,
        clock=c.clock,
        power_model=CURVE,
    )
    meter.start()
    c.advance(dt_s=10.0, busy_s=20.0, proc_s=5.0)  # 100 % busy, the tree used a quarter

    (reading,) = meter.read()

    assert meter.scope == "process"
    assert reading.energy_j == pytest.approx(50.0 * 10.0 * 0.25)
    assert "process-tree share" in meter.provenance


def test_machine_attribution_ignores_a_pid() -> None:
    meter = model.ModelCpuMeter(
        Settings(attribution="machine"), pid=os.getpid(), cpuinfo=VM, power_model=CURVE
    )
    assert meter.scope == "node"


def test_real_machine_counters_give_a_bounded_reading() -> None:
    meter = model.ModelCpuMeter(Settings(), cpuinfo=VM)
    meter.start()
    sum(i * i for i in range(200_000))

    (reading,) = meter.read()

    assert 0.0 <= reading.low_j <= reading.energy_j <= reading.high_j
    assert reading.method == "model:cpu-ccf-vcpu"
    meter.close()


BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def test_process_tree_counts_children_that_exit() -> None:
    tree = model.ProcessTreeCpu(os.getpid())
    before = tree.sample()

    subprocess.run([sys.executable, "-c", BURN.format(s=0.3)], check=True)

    assert tree.sample() - before >= 0.29


def test_process_tree_counts_grandchildren_reaped_by_a_child() -> None:
    code = (
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {BURN.format(s=0.3)!r}], check=True)\n"
    )
    tree = model.ProcessTreeCpu(os.getpid())
    before = tree.sample()

    subprocess.run([sys.executable, "-c", code], check=True)

    assert tree.sample() - before >= 0.29


def test_process_tree_follows_a_live_child_and_never_decreases() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", BURN.format(s=0.2) + "import time\ntime.sleep(30)"]
    )
    try:
        tree = model.ProcessTreeCpu(os.getpid())
        first = tree.sample()
        samples = [tree.sample() for _ in range(50)]
        assert samples == sorted(samples)
        assert samples[-1] >= first
        assert tree.rss_bytes() > 0
    finally:
        child.kill()
        child.wait()


def test_unknown_pid_is_a_clear_meter_error() -> None:
    from greenforge.errors import MeterError

    with pytest.raises(MeterError, match="attribution='machine'"):
        model.ProcessTreeCpu(2**22 + 12345)


def test_ram_energy_is_w_per_gb_times_memory_times_time() -> None:
    c = Counters()
    meter = model.ModelRamMeter(Settings(), memory_bytes=lambda: 16e9, clock=c.clock)
    meter.start()
    c.advance(dt_s=100.0, busy_s=0.0)

    (reading,) = meter.read()

    assert reading.component == "ram"
    assert reading.method == "model:ram-w-per-gb"
    assert reading.energy_j == pytest.approx(0.375 * 16 * 100)
    assert reading.low_j == pytest.approx(0.25 * 16 * 100)
    assert reading.high_j == pytest.approx(0.5 * 16 * 100)


def test_ram_bounds_widen_to_include_a_custom_figure() -> None:
    meter = model.ModelRamMeter(Settings(ram_w_per_gb=0.8), memory_bytes=lambda: 1e9)
    assert (meter.low_w_per_gb, meter.w_per_gb, meter.high_w_per_gb) == (0.25, 0.8, 0.8)


def test_process_ram_uses_resident_memory_of_the_tree() -> None:
    meter = model.ModelRamMeter(Settings(attribution="process"), pid=os.getpid())
    meter.start()
    (reading,) = meter.read()

    assert meter.scope == "process"
    assert "resident memory" in meter.provenance
    assert reading.energy_j >= 0.0


def test_process_share_meter_scales_a_node_meter() -> None:
    c = Counters()
    inner = FakeMeter({"cpu:0": 100.0}, name="rapl", method="rapl", clock=c.clock)
    meter = model.ProcessShareMeter(inner, cpu_times=c.cpu_times, process_cpu=c.process_cpu)
    meter.start()
    c.advance(dt_s=1.0, busy_s=2.0, proc_s=0.5)

    (reading,) = meter.read()

    assert meter.name == "rapl"
    assert meter.scope == "process"
    assert reading.energy_j == pytest.approx(25.0)
    assert reading.method == "rapl+process-share"
    meter.close()
    assert inner.closed


def test_modelled_meters_are_registered() -> None:
    assert create_meter("model-cpu", settings=Settings(), cpuinfo=VM).name == "model-cpu"
    assert create_meter("model-ram", settings=Settings()).name == "model-ram"
    assert probe_meter("model-cpu").available
    assert "W/GB" in probe_meter("model-ram").detail


@given(
    splits=st.lists(st.floats(min_value=0.01, max_value=100), min_size=1, max_size=20),
    utilisation=st.floats(min_value=0, max_value=1),
)
def test_cpu_energy_does_not_depend_on_how_often_it_is_read(
    splits: list[float], utilisation: float
) -> None:
    def run(steps: list[float]) -> float:
        c = Counters()
        meter = model.ModelCpuMeter(
            Settings(), cpuinfo=VM, cpu_times=c.cpu_times, clock=c.clock, power_model=CURVE
        )
        meter.start()
        total = 0.0
        for dt in steps:
            c.advance(dt_s=dt, busy_s=dt * 2 * utilisation)
            total += sum(r.energy_j for r in meter.read())
        return total

    assert run(splits) == pytest.approx(run([sum(splits)]), rel=1e-9)
