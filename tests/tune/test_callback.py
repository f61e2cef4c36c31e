"""The training-loop thread tuner: windows round-robin over thread counts, then the cheapest
is kept, and torch's thread count is restored at the end."""

from __future__ import annotations

import pytest
import torch

from greenforge.errors import ConfigError
from greenforge.forge.protocol import CorePower, ProcessCpuAttribution
from greenforge.tune.callback import CpuThreadTuner

# CPU and wall seconds per sample at each thread count
CPU_S = {1: 1.0e-3, 2: 1.4e-3, 3: 2.5e-3}
WALL_S = {1: 1.0e-3, 2: 0.7e-3, 3: 0.9e-3}


class Clocks:
    def __init__(self) -> None:
        self.cpu = self.wall = 0.0
        self.seen: list[int] = []

    def train_step(self, samples: int) -> None:
        t = torch.get_num_threads()
        self.seen.append(t)
        self.cpu += CPU_S[t] * samples
        self.wall += WALL_S[t] * samples

    def attribution(self) -> ProcessCpuAttribution:
        power = CorePower(10.0, 9.0, 11.0, "test")
        return ProcessCpuAttribution(power, 0.0, cpu_clock=lambda: self.cpu,
                                     wall_clock=lambda: self.wall, rss_bytes=lambda: 0.0)  # fmt: skip


def run(clocks: Clocks, steps: int, **options: object) -> CpuThreadTuner:
    tuner = CpuThreadTuner((1, 2, 3), steps_per_window=2, rounds=2, max_power_w=30.0,
                           attribution=clocks.attribution(), **options)  # type: ignore[arg-type]  # fmt: skip
    with tuner:
        for _ in range(steps):
            with tuner.step(32):
                clocks.train_step(32)
    return tuner


def test_windows_rotate_over_thread_counts_then_the_cheapest_is_kept() -> None:
    clocks = Clocks()

    tuner = run(clocks, steps=30, eta=1.0)

    # warm-up round 1,2,3 then rounds 2,3,1 and 3,1,2 (2 steps each), then the choice
    windows = clocks.seen[:18:2]
    assert windows == [1, 2, 3, 2, 3, 1, 3, 1, 2]
    assert tuner.result is not None
    assert tuner.result.threads == 1
    assert set(clocks.seen[18:]) == {1}
    p1 = next(p for p in tuner.result.profiles if p.threads == 1)
    assert p1.energy_j_per_sample == pytest.approx(1.0e-3 * 10.0)
    assert p1.windows == 2  # the warm-up window is not counted


def test_time_weight_picks_the_fastest_and_torch_threads_are_restored() -> None:
    before = torch.get_num_threads()
    clocks = Clocks()

    tuner = run(clocks, steps=20, eta=0.0)

    assert tuner.result is not None
    assert tuner.result.threads == 2
    assert torch.get_num_threads() == before
    assert "kept 2" in tuner.summary()


def test_too_short_a_training_leaves_the_threads_untuned() -> None:
    tuner = run(Clocks(), steps=5)

    assert tuner.result is None
    assert tuner.summary() == "CPU threads: still profiling"


def test_bad_thread_list_is_refused() -> None:
    with pytest.raises(ConfigError, match="threads"):
        CpuThreadTuner((0, 2))
