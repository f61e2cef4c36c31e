"""CPU tuning over a threads x batch grid: the forge protocol with fake clocks (exact figures),
then one real digits run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from greenforge.errors import ConfigError
from greenforge.forge.protocol import CorePower, LoadProbe, ProcessCpuAttribution, ProtocolConfig
from greenforge.tune.cpu import (
    Setting,
    TuneResult,
    cpu_batch,
    cpu_grid,
    cpu_threads,
    default_thread_grid,
)
from greenforge.tune.output import _figure, plot_tradeoff, summary_lines, table_rows

POWER = CorePower(power_w=10.0, low_w=8.0, high_w=12.0, source="test")
CONFIG = ProtocolConfig(min_rounds=3, max_rounds=3, busy_max_rounds=3)


class Clocks:
    """Fake process-CPU and wall clocks that the fake steps advance."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0

    def attribution(self) -> ProcessCpuAttribution:
        return ProcessCpuAttribution(
            POWER, 0.0, cpu_clock=lambda: self.cpu, wall_clock=lambda: self.wall,
            rss_bytes=lambda: 0.0,
        )  # fmt: skip

    def probe(self) -> LoadProbe:
        return LoadProbe(machine_times=lambda: (0.0, 0.0), cpu_clock=lambda: self.cpu,
                         wall_clock=lambda: self.wall, ncpu=2)  # fmt: skip


# CPU and wall seconds per sample at each thread count: 2 threads finish sooner but spin.
CPU_S = {1: 1e-3, 2: 1.5e-3}
WALL_S = {1: 1e-3, 2: 0.8e-3}
BATCH_DISCOUNT = {16: 1.0, 64: 0.5}
"""Per-sample cost factor of each batch size (larger batches vectorise better)."""


def fake_steps(clocks: Clocks):  # type: ignore[no-untyped-def]
    def make(batch_size: int):  # type: ignore[no-untyped-def]
        def step() -> int:
            t = torch.get_num_threads()  # set by the tuner around each repeat
            k = BATCH_DISCOUNT[batch_size] * batch_size
            clocks.cpu += CPU_S[t] * k
            clocks.wall += WALL_S[t] * k
            return batch_size

        return step

    return make


def grid(clocks: Clocks, **options: Any) -> TuneResult:
    return cpu_grid(
        fake_steps(clocks), threads=[1, 2], batch_sizes=[16, 64], attribution=clocks.attribution(),
        probe=clocks.probe(), idle_probe_s=0.0, config=CONFIG, repeat_steps=4, max_power_w=20.0,
        **options,
    )  # fmt: skip


def test_serving_costs_are_energy_and_time_per_1000_samples() -> None:
    clocks = Clocks()

    result = grid(clocks, eta=1.0, default=Setting(2, 16))

    by_key = {c.setting.key: c for c in result.costs}
    assert by_key["t1-b64"].energy_j == pytest.approx(1000 * 1e-3 * 0.5 * 10.0)  # 5 J per 1k
    assert by_key["t2-b16"].energy_j == pytest.approx(1000 * 1.5e-3 * 10.0)
    assert by_key["t2-b16"].time_s == pytest.approx(0.8)
    assert by_key["t1-b64"].power_w == pytest.approx(10.0)
    assert result.best.setting == Setting(1, 64)  # least energy at eta = 1
    assert result.saving is not None
    assert result.saving.energy_ratio == pytest.approx(15.0 / 5.0)  # per-round ratios, paired
    assert result.saving.energy_saving_pct == pytest.approx(100 * (1 - 5.0 / 15.0))
    assert result.rounds == 3


def test_time_weighted_choice_prefers_more_threads() -> None:
    result = grid(Clocks(), eta=0.0)

    assert result.best.setting == Setting(2, 64)


def test_training_compares_energy_to_solution_per_batch_size() -> None:
    # batch 64 is cheaper per sample but needs 3x the samples to reach the target
    result = grid(Clocks(), eta=1.0, mode="training", samples_to_solution={16: 1000, 64: 3000})

    by_key = {c.setting.key: c for c in result.costs}
    assert by_key["t1-b16"].energy_j == pytest.approx(1000 * 1e-3 * 10.0)
    assert by_key["t1-b64"].energy_j == pytest.approx(3000 * 0.5e-3 * 10.0)
    assert result.best.setting == Setting(1, 16)
    assert "to solution" in result.objective


def test_time_constraint_and_default_are_in_the_table_and_json(tmp_path: Path) -> None:
    result = grid(Clocks(), eta=1.0, max_slowdown=1.1, default=Setting(2, 64))

    rows = table_rows(result)
    marks = {(r[0], r[1]): r[-1] for r in rows}
    assert marks[("2", "64")] == "chosen, default"  # the only setting within 1.1 x the fastest
    assert marks[("1", "16")] == "too slow"
    assert [float(r[4]) for r in rows] == sorted(float(r[4]) for r in rows)  # fastest first
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["chosen"] == {"threads": 2, "batch_size": 64}
    assert doc["constraint"] == "time <= 1.1 x the fastest"
    assert "the default setting is already the cheapest: keep it" in summary_lines(result)
    other = grid(Clocks(), eta=1.0, default=Setting(2, 16))
    assert any(
        line.startswith("vs default (2 thread(s), batch 16)") for line in summary_lines(other)
    )


def test_plot_has_labelled_axes_with_units_and_is_a_png(tmp_path: Path) -> None:
    result = grid(Clocks(), eta=0.5, mode="training", samples_to_solution=500)

    ax = _figure(result).axes[0]
    path = plot_tradeoff(result, tmp_path / "curve.png")

    assert ax.get_xlabel() == "wall time to solution (s)"
    assert ax.get_ylabel() == "energy to solution (J)"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_threads_and_batch_wrappers_measure_one_axis() -> None:
    clocks = Clocks()
    common = {"attribution": clocks.attribution(), "probe": clocks.probe(), "idle_probe_s": 0.0,
                  "config": CONFIG, "repeat_steps": 2, "max_power_w": 20.0}  # fmt: skip

    by_threads = cpu_threads(fake_steps(clocks)(16), threads=[1, 2], batch_size=16, **common)
    by_batch = cpu_batch(fake_steps(clocks), batch_sizes=[16, 64], threads=1, **common)

    assert [c.setting for c in by_threads.costs] == [Setting(1, 16), Setting(2, 16)]
    assert [c.setting for c in by_batch.costs] == [Setting(1, 16), Setting(1, 64)]


def test_torch_threads_are_restored_after_tuning() -> None:
    before = torch.get_num_threads()

    grid(Clocks(), eta=0.5)

    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"mode": "training"}, "samples_to_solution"),
        ({"mode": "serving", "samples_to_solution": 10}, "for training"),
        ({"mode": "training", "samples_to_solution": {16: 10}}, "batch size 64"),
        ({"mode": "batch"}, "mode 'batch'"),
        ({"eta": 2.0}, "eta 2.0"),
    ],
)
def test_bad_options_say_what_to_give(options: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        grid(Clocks(), **options)


def test_bad_grid_values_name_the_value() -> None:
    with pytest.raises(ConfigError, match="threads has 0"):
        cpu_grid(fake_steps(Clocks()), threads=[0], batch_sizes=[16])
    with pytest.raises(ConfigError, match="batch_sizes is empty"):
        cpu_grid(fake_steps(Clocks()), threads=[1], batch_sizes=[])


def test_default_thread_grid_doubles_up_to_the_cpu_count() -> None:
    assert default_thread_grid(6) == (1, 2, 4, 6)
    assert default_thread_grid(1) == (1,)


def test_real_torch_serving_is_measured_with_the_process_attribution() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    pool = torch.randn(256, 64)

    def make(batch_size: int):  # type: ignore[no-untyped-def]
        def step() -> int:
            with torch.inference_mode():
                model(pool[:batch_size])
            return batch_size

        return step

    result = cpu_grid(
        make, threads=[1], batch_sizes=[8, 64], idle_probe_s=0.0,
        config=ProtocolConfig(min_rounds=2, max_rounds=2, busy_max_rounds=2), repeat_steps=3,
    )  # fmt: skip

    assert result.method.startswith(("model:cpu-time", "rapl"))
    assert all(c.energy_j > 0 and c.time_s > 0 for c in result.costs)
    assert result.rounds == 2
