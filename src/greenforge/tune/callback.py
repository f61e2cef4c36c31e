"""A training-loop callback that tunes torch's CPU threads *while* training:
:class:`CpuThreadTuner`.

The first steps of training are spent profiling: windows of ``steps_per_window`` steps run at
each thread count in turn, round-robin (1, 2, 4, then 2, 4, 1 ...: each round rotated, as in the
forge protocol's interleaving), the first round discarded as warm-up. Each window is measured
with the forge protocol's attribution (this process's CPU time x per-core power, or RAPL x its
share). After ``rounds`` rounds the thread count with the least Zeus cost per sample (median
over the rounds, :func:`greenforge.tune.cost.choose`) is kept for the rest of training. The
thread count in force before the tuner started is restored at :meth:`CpuThreadTuner.close` (or
the end of its ``with`` block), so nothing global outlives it.

::

    tuner = CpuThreadTuner(threads=(1, 2, 4))
    with tuner:
        for x, y in loader:
            with tuner.step(len(x)):
                train_step(x, y)
    print(tuner.result.threads)
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

from greenforge.config import Settings
from greenforge.errors import ConfigError
from greenforge.forge.protocol import Attribution, Mark, bootstrap_median, select_attribution
from greenforge.tune.cost import TimeConstraint, check_eta, choose
from greenforge.tune.cpu import available_cpus, default_thread_grid


@dataclasses.dataclass(frozen=True)
class ThreadProfile:
    """One thread count's cost per training sample: energy (J) and wall time (s), medians over
    the profiled windows with 95 % intervals, and its Zeus cost (J per sample)."""

    threads: int
    windows: int
    energy_j_per_sample: float
    energy_low_j_per_sample: float
    energy_high_j_per_sample: float
    time_s_per_sample: float
    cost_j_per_sample: float
    feasible: bool


@dataclasses.dataclass(frozen=True)
class ThreadChoice:
    """The thread count kept for the rest of training and every count's profile."""

    threads: int
    profiles: tuple[ThreadProfile, ...]
    eta: float
    max_power_w: float
    method: str


class CpuThreadTuner:
    """Profiles torch thread counts over windows of training steps, then keeps the cheapest."""

    def __init__(
        self,
        threads: Sequence[int] | None = None,
        *,
        steps_per_window: int = 20,
        rounds: int = 3,
        eta: float = 0.5,
        max_slowdown: float | None = None,
        max_power_w: float | None = None,
        settings: Settings | None = None,
        attribution: Attribution | None = None,
    ) -> None:
        grid = tuple(dict.fromkeys(threads or default_thread_grid()))
        if not grid or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in grid):
            raise ConfigError(f"threads {threads!r} must be integers >= 1.")
        if steps_per_window < 1 or rounds < 1:
            raise ConfigError(
                f"steps_per_window ({steps_per_window!r}) and rounds ({rounds!r}) must be >= 1."
            )
        self.threads = grid
        self.steps_per_window = steps_per_window
        self.rounds = rounds
        self.eta = check_eta(eta)
        self.constraint = TimeConstraint(None, max_slowdown)
        self._settings = settings
        self._max_power_w = max_power_w
        self._attribution = attribution
        self.result: ThreadChoice | None = None
        self._schedule: list[int] = []
        """Thread count of each window still to run (the warm-up round first)."""
        self._warmup_windows = len(grid)
        self._windows_done = 0
        self._energy: dict[int, list[float]] = {t: [] for t in grid}
        self._time: dict[int, list[float]] = {t: [] for t in grid}
        self._window_steps = 0
        self._window_samples = 0
        self._mark: Mark | None = None
        self._before: int | None = None
        self._torch: Any = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> CpuThreadTuner:
        """Remembers torch's thread count and plans the windows (warm-up round + ``rounds``)."""
        import torch

        self._torch = torch
        self._before = int(torch.get_num_threads())
        if self._attribution is None:
            from greenforge.config import load_settings

            self._settings = self._settings or load_settings()
            self._attribution = select_attribution(self._settings)
        n = len(self.threads)
        self._schedule = [
            self.threads[(i + r) % n] for r in range(self.rounds + 1) for i in range(n)
        ]
        return self

    def close(self) -> None:
        """Restores torch's thread count from before :meth:`start`."""
        if self._torch is not None and self._before is not None:
            self._torch.set_num_threads(self._before)
            self._before = None

    def __enter__(self) -> CpuThreadTuner:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- hooks ------------------------------------------------------------------------------

    @property
    def profiling(self) -> bool:
        """Returns True while windows remain to be profiled."""
        return bool(self._schedule)

    def on_step_begin(self) -> None:
        """Before a training step: opens a window (setting its thread count) when none is."""
        if self._torch is None:
            self.start()
        if not self._schedule or self._mark is not None:
            return
        self._torch.set_num_threads(self._schedule[0])
        self._window_steps = self._window_samples = 0
        assert self._attribution is not None
        self._mark = self._attribution.begin()

    def on_step_end(self, samples: int) -> None:
        """After a training step of ``samples`` samples: closes the window when it is full."""
        if self._mark is None:
            return
        self._window_steps += 1
        self._window_samples += int(samples)
        if self._window_steps < self.steps_per_window:
            return
        assert self._attribution is not None
        reading = self._attribution.end(self._mark)
        self._mark = None
        threads = self._schedule.pop(0)
        self._windows_done += 1
        if self._windows_done > self._warmup_windows and self._window_samples > 0:
            self._energy[threads].append(reading.energy_j / self._window_samples)
            self._time[threads].append(reading.wall_s / self._window_samples)
        if not self._schedule:
            self._decide()

    @contextlib.contextmanager
    def step(self, samples: int) -> Iterator[None]:
        """Wraps one training step of ``samples`` samples (``on_step_begin``/``on_step_end``)."""
        self.on_step_begin()
        yield
        self.on_step_end(samples)

    # -- decision ---------------------------------------------------------------------------

    def _decide(self) -> None:
        counts = [t for t in self.threads if self._energy[t]]
        if not counts:
            return
        energy = {t: bootstrap_median(self._energy[t]) for t in counts}
        wall = {t: float(bootstrap_median(self._time[t]).median) for t in counts}
        max_power_w = self._max_power_w
        if max_power_w is None:
            from greenforge.tune.cpu import max_power

            from_settings = self._settings
            if from_settings is None:
                from greenforge.config import load_settings

                from_settings = load_settings()
            max_power_w = max_power(from_settings, available_cpus())[0]
        choice = choose(
            [energy[t].median for t in counts],
            [wall[t] for t in counts],
            eta=self.eta,
            max_power_w=max_power_w,
            constraint=self.constraint,
            labels=[f"{t} threads" for t in counts],
        )
        profiles = tuple(
            ThreadProfile(
                t,
                len(self._energy[t]),
                energy[t].median,
                energy[t].low,
                energy[t].high,
                wall[t],
                choice.costs_j[i],
                choice.feasible[i],
            )
            for i, t in enumerate(counts)
        )
        chosen = counts[choice.index]
        assert self._attribution is not None
        self.result = ThreadChoice(
            chosen, profiles, self.eta, max_power_w, self._attribution.method
        )
        self._torch.set_num_threads(chosen)

    def summary(self) -> str:
        """Returns one line: the kept thread count and each count's J per 1,000 samples."""
        if self.result is None:
            return "CPU threads: still profiling" if self.profiling else "CPU threads: not tuned"
        parts = ", ".join(
            f"{p.threads}: {p.energy_j_per_sample * 1000:.3g} J/1k samples"
            for p in self.result.profiles
        )
        return f"CPU threads: kept {self.result.threads} ({parts})"


__all__ = ["CpuThreadTuner", "ThreadChoice", "ThreadProfile"]
