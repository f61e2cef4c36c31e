"""Specification of the forge measurement protocol (fake clocks; one real interleaved run)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import pytest
import torch
from torch import nn

from greenforge.config import Settings
from greenforge.errors import ConfigError
from greenforge.forge.protocol import (
    BUSY_WIDEN,
    CorePower,
    CounterShareAttribution,
    Estimate,
    LoadProbe,
    Mark,
    MeterAttribution,
    ProcessCpuAttribution,
    ProtocolConfig,
    Reading,
    Workload,
    background_load,
    bootstrap_median,
    core_power,
    measure_interleaved,
    round_adjusted_estimates,
    thread_limit,
    widen,
)
from greenforge.records import EnergyReading
from greenforge.testing import FakeMeter

POWER = CorePower(power_w=10.0, low_w=5.0, high_w=20.0, source="test")


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_process_attribution_charges_own_cpu_time_times_core_power_plus_ram() -> None:
    cpu, wall = Clock(), Clock()
    att = ProcessCpuAttribution(POWER, 0.4, cpu_clock=cpu, wall_clock=wall, rss_bytes=lambda: 2e9)

    mark = att.begin()
    cpu.t += 3.0  # 3 CPU seconds of this process ...
    wall.t += 5.0  # ... over 5 s of wall time
    r = att.end(mark)

    assert r.cpu_s == 3.0
    assert r.wall_s == 5.0
    # memory is charged for the 3 s the process ran, not the 2 s it waited for the CPU
    assert r.energy_j == pytest.approx(3.0 * 10.0 + 2.0 * 0.4 * 3.0)
    assert r.low_j == pytest.approx(3.0 * 5.0 + 2.0 * 0.25 * 3.0)
    assert r.high_j == pytest.approx(3.0 * 20.0 + 2.0 * 0.5 * 3.0)
    assert r.method == "model:cpu-time-x-core-power+model:ram-w-per-gb"
    assert "per busy logical CPU" in att.provenance


def test_waiting_for_the_cpu_costs_nothing_extra() -> None:
    cpu, wall = Clock(), Clock()
    att = ProcessCpuAttribution(POWER, 0.4, cpu_clock=cpu, wall_clock=wall, rss_bytes=lambda: 2e9)

    quiet = att.begin()
    cpu.t += 1.0
    wall.t += 1.0
    alone = att.end(quiet)
    busy = att.begin()
    cpu.t += 1.0
    wall.t += 4.0  # the same work while other processes held the CPU 3/4 of the time
    shared = att.end(busy)

    assert shared.energy_j == pytest.approx(alone.energy_j)


def test_counter_share_attribution_scales_the_counter_by_own_share_of_busy_cpu() -> None:
    cpu, wall = Clock(), Clock()
    busy = [100.0]
    meter = FakeMeter(40.0, clock=wall, method="rapl")
    att = CounterShareAttribution(
        [meter], cpu_clock=cpu, wall_clock=wall, machine_times=lambda: (busy[0], 0.0)
    )

    mark = att.begin()
    wall.t += 1.0
    cpu.t += 0.5
    busy[0] += 2.0  # the machine was busy 2 CPU-s; 0.5 were ours
    r = att.end(mark)

    assert r.energy_j == pytest.approx(40.0 * 0.25)
    assert r.method == "rapl+process-share"


class BrokenMeter:
    name = "broken"
    method = "broken"

    def start(self) -> None:
        raise RuntimeError("no permission")

    def read(self) -> Sequence[EnergyReading]:
        return []


def test_meter_attribution_reads_injected_meters_and_names_a_failing_one() -> None:
    wall = Clock()
    att = MeterAttribution([FakeMeter(20.0, clock=wall), BrokenMeter()], wall_clock=wall)

    mark = att.begin()
    wall.t += 2.0
    r = att.end(mark)

    assert r.energy_j == pytest.approx(40.0)
    assert "fake" in r.method
    assert "unmeasured (broken" in r.method


def test_core_power_is_the_machines_full_load_power_per_logical_cpu() -> None:
    from greenforge.hardware.cpuinfo import CpuInfo

    cpu = CpuInfo(model_name="Test CPU", logical_cpus=4)
    p = core_power(Settings(cpu_tdp_w=100.0), cpu)

    assert p.power_w == pytest.approx(25.0)
    assert p.low_w <= p.power_w <= p.high_w
    assert "4 logical CPUs" in p.source


def test_bootstrap_median_is_deterministic_and_brackets_the_median() -> None:
    values = [10.0, 11.0, 9.5, 10.2, 30.0, 10.1, 9.9]

    a = bootstrap_median(values, seed=3)
    b = bootstrap_median(values, seed=3)

    assert a == b
    assert a.median == pytest.approx(10.1)
    assert a.low <= a.median <= a.high
    assert a.high < 30.0  # one disturbed repeat does not move the estimate
    assert bootstrap_median([4.0]) == Estimate(4.0, 4.0, 4.0, 1)
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_median([])


def test_intervals_widen_only_when_the_machine_is_busy() -> None:
    est = Estimate(10.0, 9.0, 12.0, 8)

    assert widen(est, 0.1) == est
    wide = widen(est, 0.5)
    f = 1.0 + BUSY_WIDEN * 0.5
    assert wide.median == 10.0
    assert wide.low == pytest.approx(10.0 - 1.0 * f)
    assert wide.high == pytest.approx(10.0 + 2.0 * f)
    assert widen(Estimate(1.0, 0.1, 1.5, 5), 1.0).low == 0.0


def test_background_load_is_other_processes_share_of_the_cpu_capacity() -> None:
    # 2 CPUs over 10 s = 20 CPU-s; machine busy 15 CPU-s of which 5 were ours -> 10/20
    assert background_load(15.0, 5.0, 2, 10.0) == pytest.approx(0.5)
    assert background_load(5.0, 5.0, 2, 10.0) == 0.0
    assert background_load(1.0, 0.0, 2, 0.0) == 0.0
    assert background_load(100.0, 0.0, 2, 10.0) == 1.0

    wall, cpu = Clock(), Clock()
    busy = [0.0]
    probe = LoadProbe(machine_times=lambda: (busy[0], 0.0), cpu_clock=cpu, wall_clock=wall, ncpu=2)

    def sleep(s: float) -> None:
        wall.t += s
        busy[0] += 2.0 * s * 0.9  # a burner on each core

    assert probe.idle_sample(1.0, sleep=sleep) == pytest.approx(0.9)


class ScriptedAttribution:
    """Reports scripted energies per call, in the order the calls come."""

    name = "scripted"
    method = "scripted"
    provenance = "test"

    def __init__(self, energies: dict[str, list[float]], order: list[str]) -> None:
        self.energies = energies
        self.order = order
        self.current = ""

    def begin(self) -> Mark:
        return Mark(0.0, 0.0)

    def end(self, mark: Mark) -> Reading:
        key = self.order[-1]
        e = self.energies[key].pop(0) if self.energies[key] else 1.0
        return Reading(e, e * 0.5, e * 2.0, 0.01, 0.005, self.method)


def _workloads(order: list[str], keys: Sequence[str]) -> list[Workload]:
    def make(k: str) -> Workload:
        def run(units: int) -> int:
            order.append(k)
            return 1000 * units

        return Workload(k, run)

    return [make(k) for k in keys]


def test_measurement_is_round_robin_warm_up_discarded_and_stops_when_tight() -> None:
    order: list[str] = []
    att = ScriptedAttribution({"a": [2.0] * 40, "b": [3.0] * 40}, order)
    wall = Clock()

    run = measure_interleaved(
        _workloads(order, ["a", "b"]),
        att,
        ProtocolConfig(min_rounds=5, max_rounds=30),
        wall_clock=wall,
        units={"a": 1, "b": 1},
        probe=LoadProbe(machine_times=lambda: (0.0, 0.0), wall_clock=wall, ncpu=1),
    )

    assert order[:2] == ["a", "b"]  # warm-up round
    # then every workload once per round, in a seeded random order, each measured repeat
    # right after an unmeasured warm-up of the same workload, stopping at the minimum
    calls = order[2:]
    assert all(calls[i] == calls[i + 1] for i in range(0, len(calls), 2))
    measured = calls[1::2]
    rounds = [measured[i : i + 2] for i in range(0, len(measured), 2)]
    assert len(rounds) == 5
    assert all(sorted(r) == ["a", "b"] for r in rounds)
    assert len({tuple(r) for r in rounds}) == 2  # the order changes from round to round
    assert run.rounds == 5
    assert "within" in run.stopped
    assert run.costs["a"].energy_j_per_1k == (2.0,) * 5
    assert run.costs["a"].bound_low == pytest.approx(0.5)
    assert run.costs["b"].bound_high == pytest.approx(2.0)


def test_each_repeat_is_warmed_up_unmeasured_for_about_warmup_s() -> None:
    """The warm-up before a repeat is about ``warmup_s`` of the repeat's work (at least one
    unit) and none of it is in the reading; ``warmup_s=0`` measures from the first call."""
    events: list[tuple[str, int]] = []

    class Att(ScriptedAttribution):
        def begin(self) -> Mark:
            events.append(("begin", 0))
            return Mark(0.0, 0.0)

    def make(k: str) -> Workload:
        def run(units: int) -> int:
            events.append((k, units))
            self_order.append(k)
            return units

        return Workload(k, run)

    self_order: list[str] = []
    wall = Clock()
    config = ProtocolConfig(repeat_s=0.006, warmup_s=0.002, min_rounds=2, max_rounds=2)
    measure_interleaved(
        [make("a"), make("b")],
        Att({"a": [1.0] * 9, "b": [1.0] * 9}, self_order),
        config,
        wall_clock=wall,
        units={"a": 30, "b": 1},
        probe=LoadProbe(machine_times=lambda: (0.0, 0.0), wall_clock=wall, ncpu=1),
    )
    assert events[:2] == [("a", 30), ("b", 1)]  # the discarded warm-up round
    repeats = [events[i : i + 3] for i in range(2, len(events), 3)]
    assert len(repeats) == 4
    for warm, begin, measured in repeats:  # warm-up, then the reading starts, then the repeat
        assert begin == ("begin", 0)
        assert warm[0] == measured[0]
        assert warm[1] == {"a": 10, "b": 1}[warm[0]]  # 30 units x 2/6, and at least one unit
        assert measured[1] == {"a": 30, "b": 1}[measured[0]]

    events.clear()
    measure_interleaved(
        [make("a")],
        Att({"a": [1.0] * 9}, self_order),
        dataclasses.replace(config, warmup_s=0.0),
        wall_clock=wall,
        units={"a": 30},
        probe=LoadProbe(machine_times=lambda: (0.0, 0.0), wall_clock=wall, ncpu=1),
    )
    assert events == [("a", 30), ("begin", 0), ("a", 30), ("begin", 0), ("a", 30)]
    with pytest.raises(ConfigError, match="warmup_s"):
        ProtocolConfig(warmup_s=-1.0)


def test_noisy_measurements_run_on_until_the_budget_or_max_rounds() -> None:
    order: list[str] = []
    noisy = [1.0, 5.0, 2.0, 9.0] * 20
    att = ScriptedAttribution({"a": list(noisy)}, order)
    wall = Clock()

    def run(units: int) -> int:
        order.append("a")
        wall.t += 1.0
        return 1000

    result = measure_interleaved(
        [Workload("a", run)],
        att,
        ProtocolConfig(min_rounds=5, max_rounds=30, budget_s=8.0, warmup_s=0.0),
        wall_clock=wall,
        cpu_clock=wall,  # one CPU second per repeat
        units={"a": 1},
        probe=LoadProbe(machine_times=lambda: (0.0, 0.0), wall_clock=wall, ncpu=1),
    )

    assert result.rounds == 8
    assert "CPU budget" in result.stopped


def test_a_very_busy_machine_stops_at_the_wall_time_limit() -> None:
    order: list[str] = []
    att = ScriptedAttribution({"a": [1.0, 5.0, 2.0, 9.0] * 20}, order)
    wall, cpu = Clock(), Clock()

    def run(units: int) -> int:
        order.append("a")
        wall.t += 10.0  # waiting for the CPU most of the time
        cpu.t += 0.1
        return 1000

    result = measure_interleaved(
        [Workload("a", run)],
        att,
        ProtocolConfig(min_rounds=5, max_rounds=30, budget_s=8.0, wall_limit_s=60.0, warmup_s=0.0),
        wall_clock=wall,
        cpu_clock=cpu,
        units={"a": 1},
        probe=LoadProbe(machine_times=lambda: (0.0, 0.0), wall_clock=wall, ncpu=1),
    )

    assert result.rounds == 6
    assert "wall-time limit" in result.stopped


def test_protocol_config_and_threads_reject_bad_values() -> None:
    with pytest.raises(ConfigError, match="min_rounds"):
        ProtocolConfig(min_rounds=10, max_rounds=5)
    with pytest.raises(ConfigError, match="budget_s"):
        ProtocolConfig(budget_s=0.0)
    with pytest.raises(ConfigError, match="threads 0"), thread_limit(0):
        pass


def test_thread_limit_restores_torchs_threads() -> None:
    before = torch.get_num_threads()
    with thread_limit(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_two_identical_models_measured_independently_come_out_within_ten_percent() -> None:
    from greenforge.forge.evaluate import measure_serving

    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    b = copy.deepcopy(a)
    pool = torch.randn(128, 64)
    att = ProcessCpuAttribution(POWER, 0.375)

    run = measure_serving(
        {"a": a, "b": b},
        pool,
        (16,),
        att,
        threads=1,
        config=ProtocolConfig(repeat_s=0.02, min_rounds=7, max_rounds=30, budget_s=4.0),
        idle_probe_s=0.0,
    )

    ea = run.costs[("a", 16)].energy_j_per_1k
    eb = run.costs[("b", 16)].energy_j_per_1k
    assert ea > 0
    assert eb > 0
    assert abs(ea - eb) / min(ea, eb) < 0.10
    cost = run.costs[("a", 16)]
    assert cost.energy_j_per_1k_low <= cost.spread_low_j_per_1k <= ea
    assert ea <= cost.spread_high_j_per_1k <= cost.energy_j_per_1k_high


def test_each_workload_follows_different_ones_so_no_neighbour_is_always_billed() -> None:
    """A fixed cyclic order gives a workload the same predecessor every round; what that
    predecessor leaves behind (a lower vector clock, cold caches) is then always billed to it."""
    order: list[str] = []
    keys = ["base", "int8", "small", "base~control"]

    class Leftover(ScriptedAttribution):
        def end(self, mark: Mark) -> Reading:
            after_int8 = len(self.order) > 1 and self.order[-2] == "int8"
            e = {"base": 10.0, "base~control": 10.0, "int8": 3.0, "small": 1.0}[self.order[-1]]
            e *= 1.25 if after_int8 else 1.0
            return Reading(e, e, e, 0.01, 0.005, self.method)

    wall = Clock()
    run = measure_interleaved(
        _workloads(order, keys),
        Leftover({}, order),
        ProtocolConfig(min_rounds=30, max_rounds=30),
        wall_clock=wall,
        units=dict.fromkeys(keys, 1),
        probe=LoadProbe(machine_times=lambda: (0.0, 0.0), wall_clock=wall, ncpu=1),
    )

    base, control = run.costs["base"].estimate(), run.costs["base~control"].estimate()
    assert abs(control.median / base.median - 1.0) < 0.10
    predecessors = {
        order[i - 1] for i in range(len(keys) + 1, len(order)) if order[i] == "base~control"
    }
    assert len(predecessors) >= 3


def test_round_adjusted_estimates_take_out_whole_round_slowdowns() -> None:
    slow = [1.0, 1.6, 1.0, 2.2, 1.1, 1.0, 1.9, 1.0, 1.3]  # a neighbour slows whole rounds
    series = {"a": [2.0 * f for f in slow], "b": [5.0 * f for f in slow]}
    est = round_adjusted_estimates(series)
    assert est["b"].median / est["a"].median == pytest.approx(2.5)
    # how dear a typical round is stays uncertain, and equally so for both workloads
    assert est["a"].rel_half_width == pytest.approx(est["b"].rel_half_width)
    assert est["a"].low < est["a"].median < est["a"].high
    # one workload: the plain median with its bootstrap interval
    alone = round_adjusted_estimates({"a": series["a"]})["a"]
    assert alone == bootstrap_median(series["a"])
    assert round_adjusted_estimates({}) == {}
    with pytest.raises(ValueError, match="same, non-zero number of rounds"):
        round_adjusted_estimates({"a": [1.0, 2.0], "b": [1.0]})


def test_a_busy_machine_gets_more_rounds() -> None:
    order: list[str] = []
    att = ScriptedAttribution({"a": [1.0, 5.0, 2.0, 9.0] * 20, "b": [2.0, 3.0] * 40}, order)
    wall = Clock()
    busy = {"t": 0.0}

    def machine() -> tuple[float, float]:
        busy["t"] += 0.9  # others keep the (single) CPU 90 % busy between readings
        return (busy["t"], 0.0)

    def run_for(key: str) -> Workload:
        def run(units: int) -> int:
            order.append(key)
            wall.t += 1.0
            return 1000

        return Workload(key, run)

    result = measure_interleaved(
        [run_for("a"), run_for("b")],
        att,
        ProtocolConfig(min_rounds=5, max_rounds=10, busy_max_rounds=20, budget_s=1e9, warmup_s=0),
        wall_clock=wall,
        units={"a": 1, "b": 1},
        probe=LoadProbe(machine_times=machine, wall_clock=wall, cpu_clock=lambda: 0.0, ncpu=1),
    )

    assert result.rounds == 20
    assert "busy" in result.stopped
    with pytest.raises(ConfigError, match="busy_max_rounds"):
        ProtocolConfig(min_rounds=5, max_rounds=15, busy_max_rounds=10)


def test_repeat_sizes_come_from_the_median_of_interleaved_rounds_not_one_moment() -> None:
    """A workload timed alone at a slow moment is not sized short: the repeat size is
    ``repeat_s`` / the median per-unit CPU time over three interleaved, warmed-up rounds, so
    two copies of one model get the same repeat however the first timing went."""
    cpu = Clock()
    events: list[tuple[str, int]] = []
    order: list[str] = []
    # The copy's first four calls hit a moment 4x slower than usual (1 ms per unit otherwise):
    # its rough sizing (two calls of one unit, 4 ms) and its first sizing round.
    slow_calls = {"copy": 4}

    def make(k: str) -> Workload:
        def run(units: int) -> int:
            events.append((k, units))
            order.append(k)
            per_unit = 0.001
            if slow_calls.get(k, 0) > 0:
                slow_calls[k] -= 1
                per_unit = 0.004
            cpu.t += per_unit * units
            return units

        return Workload(k, run)

    wall = Clock()
    config = ProtocolConfig(repeat_s=0.006, warmup_s=0.002, min_rounds=2, max_rounds=2)
    run = measure_interleaved(
        [make("base"), make("copy")],
        ScriptedAttribution({"base": [1.0] * 9, "copy": [1.0] * 9}, order),
        config,
        wall_clock=wall,
        cpu_clock=cpu,
        probe=LoadProbe(machine_times=lambda: (0.0, 0.0), wall_clock=wall, ncpu=1),
    )
    assert run.costs["base"].units == run.costs["copy"].units == 6  # 6 ms / 1 ms per unit
    # Sized alone, the slow moment gave the copy a rough repeat of 2 units (6 ms / 4 ms), and
    # its first sizing round saw 4 ms per unit again; the median of three rounds did not.
    assert events[events.index(("copy", 1)) : events.index(("copy", 1)) + 2] == [("copy", 1)] * 2
    assert ("copy", 2) in events
