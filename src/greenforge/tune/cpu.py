"""Tune CPU threads and batch size by measured energy: :func:`cpu_grid`, :func:`cpu_threads`,
:func:`cpu_batch`.

Every setting (torch intra-op threads x batch size) of a small grid is measured with the forge's
measurement protocol (:mod:`greenforge.forge.protocol`): this process's own CPU time x per-core
power (or RAPL x its CPU share), all settings in the same rounds, warm-up rounds discarded,
the protocol's estimate (:meth:`~greenforge.forge.protocol.WorkloadCost.estimate`: the
round-adjusted median with a seeded bootstrap 95 % interval), widened when the machine is busy. What is compared:

- **serving**: energy and wall time per 1,000 samples predicted;
- **training**: energy and wall time *to solution*: the per-sample cost x the samples the
  solution takes at that batch size (a fixed number of samples, or the samples to reach a
  target loss, which depends on the batch size).

The chosen setting minimises Zeus's cost ``eta*E + (1-eta)*MaxPower*T``
(:mod:`greenforge.tune.cost`) under an optional time constraint. Threads are set only inside
each measured call (:func:`~greenforge.forge.protocol.thread_limit`): nothing global changes.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from greenforge.config import Settings
from greenforge.errors import ConfigError
from greenforge.forge.protocol import (
    BUSY_LOAD,
    Attribution,
    LoadProbe,
    ProtocolConfig,
    Workload,
    WorkloadCost,
    bootstrap_median,
    measure_interleaved,
    select_attribution,
    thread_limit,
    widen,
)
from greenforge.tune.cost import TimeConstraint, check_eta, choose

Mode = Literal["training", "serving"]
Step = Callable[[], int]
"""One step of work (a training step, or one batch of predictions); returns samples processed."""
StepFactory = Callable[[int], Step]
"""``batch_size -> step``: builds the state of one setting (its own model copy, data cursor)."""
SamplesToSolution = int | Mapping[int, int] | Callable[[int], int]
"""Samples a training run needs: a fixed number, or per batch size (a mapping or a function)."""

PER_SAMPLES = 1000
"""Serving figures are per this many samples."""


def available_cpus() -> int:
    """Returns the logical CPUs this process may run on (its affinity mask where known)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_thread_grid(ncpu: int | None = None) -> tuple[int, ...]:
    """Returns 1, 2, 4 ... up to the available CPUs, and the CPU count itself."""
    n = ncpu if ncpu is not None else available_cpus()
    grid = {1, n}
    t = 2
    while t < n:
        grid.add(t)
        t *= 2
    return tuple(sorted(grid))


def _positive_ints(name: str, values: Sequence[int]) -> tuple[int, ...]:
    out = tuple(dict.fromkeys(values))
    if not out:
        raise ConfigError(f"{name} is empty: give at least one value, e.g. {name}=(1, 2).")
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name} has {v!r}: every value must be an integer >= 1.")
    return out


@dataclasses.dataclass(frozen=True, order=True)
class Setting:
    """One point of the grid: torch intra-op ``threads`` and ``batch_size`` (samples/step)."""

    threads: int
    batch_size: int

    def __post_init__(self) -> None:
        _positive_ints("threads", [self.threads])
        _positive_ints("batch_size", [self.batch_size])

    @property
    def key(self) -> str:
        """Returns a short key, ``t2-b64``."""
        return f"t{self.threads}-b{self.batch_size}"


@dataclasses.dataclass(frozen=True)
class SettingCost:
    """A setting's measured cost: per sample (J, s; medians with 95 % intervals), and the
    objective the choice compares (to solution for training, per 1,000 samples for serving)."""

    setting: Setting
    energy_j_per_sample: float
    energy_low_j_per_sample: float
    energy_high_j_per_sample: float
    time_s_per_sample: float
    time_low_s_per_sample: float
    time_high_s_per_sample: float
    samples: int
    """Samples the objective counts (to solution, or :data:`PER_SAMPLES`)."""
    meter_low: float
    """Meter low bound / central: the energy interval's meter part (per-core power curve)."""
    meter_high: float
    cost_j: float = math.nan
    feasible: bool = True

    @property
    def energy_j(self) -> float:
        """Returns the objective's energy (J): to solution, or per 1,000 samples."""
        return self.energy_j_per_sample * self.samples

    @property
    def energy_low_j(self) -> float:
        """Returns the low end of the objective's energy interval (J, measurement spread)."""
        return self.energy_low_j_per_sample * self.samples

    @property
    def energy_high_j(self) -> float:
        """Returns the high end of the objective's energy interval (J, measurement spread)."""
        return self.energy_high_j_per_sample * self.samples

    @property
    def time_s(self) -> float:
        """Returns the objective's wall time (s)."""
        return self.time_s_per_sample * self.samples

    @property
    def power_w(self) -> float:
        """Returns the mean attributed power (W): energy / wall time."""
        t = self.time_s_per_sample
        return self.energy_j_per_sample / t if t > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON-ready figures (units in the names)."""
        return {
            "threads": self.setting.threads,
            "batch_size": self.setting.batch_size,
            "samples": self.samples,
            "energy_j": self.energy_j,
            "energy_low_j": self.energy_low_j,
            "energy_high_j": self.energy_high_j,
            "meter_low_j": self.energy_j * self.meter_low,
            "meter_high_j": self.energy_j * self.meter_high,
            "time_s": self.time_s,
            "time_low_s": self.time_low_s_per_sample * self.samples,
            "time_high_s": self.time_high_s_per_sample * self.samples,
            "power_w": self.power_w,
            "energy_j_per_sample": self.energy_j_per_sample,
            "time_s_per_sample": self.time_s_per_sample,
            "cost_j": self.cost_j,
            "feasible": self.feasible,
        }


@dataclasses.dataclass(frozen=True)
class Saving:
    """The chosen setting vs the default, measured in the same rounds: the median of the
    per-round ratios default/chosen with a bootstrap 95 % interval (the meter bound cancels)."""

    energy_ratio: float
    energy_ratio_low: float
    energy_ratio_high: float
    time_ratio: float

    @property
    def energy_saving_pct(self) -> float:
        """Returns the energy saved vs the default, % (negative: the default used less)."""
        return 100.0 * (1.0 - 1.0 / self.energy_ratio) if self.energy_ratio > 0 else math.nan

    @property
    def energy_saving_low_pct(self) -> float:
        """Returns the low end of the saving's interval (%)."""
        r = self.energy_ratio_low
        return 100.0 * (1.0 - 1.0 / r) if r > 0 else -math.inf

    @property
    def energy_saving_high_pct(self) -> float:
        """Returns the high end of the saving's interval (%)."""
        r = self.energy_ratio_high
        return 100.0 * (1.0 - 1.0 / r) if r > 0 else math.nan

    def to_dict(self) -> dict[str, float]:
        """Returns the JSON-ready figures."""
        return {
            "energy_ratio_default_over_chosen": self.energy_ratio,
            "energy_ratio_low": self.energy_ratio_low,
            "energy_ratio_high": self.energy_ratio_high,
            "energy_saving_pct": self.energy_saving_pct,
            "energy_saving_low_pct": self.energy_saving_low_pct,
            "energy_saving_high_pct": self.energy_saving_high_pct,
            "time_ratio_default_over_chosen": self.time_ratio,
        }


@dataclasses.dataclass(frozen=True)
class TuneResult:
    """Every setting's cost, the one chosen, and how the figures were obtained."""

    mode: Mode
    objective: str
    """What ``energy_j``/``time_s`` of each setting are, in words."""
    costs: tuple[SettingCost, ...]
    chosen: int
    default: int | None
    eta: float
    max_power_w: float
    max_power_source: str
    constraint: TimeConstraint
    limit_s: float
    saving: Saving | None
    method: str
    provenance: str
    rounds: int
    stopped: str
    background_load: float

    @property
    def best(self) -> SettingCost:
        """Returns the chosen setting's cost."""
        return self.costs[self.chosen]

    @property
    def busy(self) -> bool:
        """Returns True when other processes loaded the machine while measuring."""
        return self.background_load > BUSY_LOAD

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON-ready result (the ``greenforge tune cpu --json`` contract)."""
        return {
            "mode": self.mode,
            "objective": self.objective,
            "settings": [c.to_dict() for c in self.costs],
            "chosen": dataclasses.asdict(self.best.setting),
            "default": None
            if self.default is None
            else dataclasses.asdict(self.costs[self.default].setting),
            "eta": self.eta,
            "max_power_w": self.max_power_w,
            "max_power_source": self.max_power_source,
            "constraint": self.constraint.describe(),
            "limit_s": self.limit_s if math.isfinite(self.limit_s) else None,
            "saving": None if self.saving is None else self.saving.to_dict(),
            "method": self.method,
            "provenance": self.provenance,
            "rounds": self.rounds,
            "stopped": self.stopped,
            "background_load": self.background_load,
        }


def _samples_for(solution: SamplesToSolution | None, batch_size: int) -> int:
    if solution is None:
        return PER_SAMPLES
    if isinstance(solution, Mapping):
        if batch_size not in solution:
            raise ConfigError(
                f"samples_to_solution has no entry for batch size {batch_size}: give one per "
                f"batch size (has {sorted(solution)})."
            )
        n = solution[batch_size]
    elif callable(solution):
        n = solution(batch_size)
    else:
        n = solution
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(
            f"samples to solution at batch size {batch_size} is {n!r}: must be an integer >= 1."
        )
    return n


def _workload(setting: Setting, step: Step) -> Workload:
    def run(units: int) -> int:
        done = 0
        with thread_limit(setting.threads):
            for _ in range(units):
                done += step()
        return done

    return Workload(setting.key, run)


def _paired_ratio(a: WorkloadCost, b: WorkloadCost, seed: int) -> tuple[float, float, float]:
    """Median and interval of the per-round ratio a/b of energy per sample."""
    ratios = [x / y for x, y in zip(a.energy_j_per_1k, b.energy_j_per_1k, strict=True) if y > 0]
    if not ratios:
        return math.nan, math.nan, math.nan
    est = bootstrap_median(ratios, seed=seed)
    return est.median, est.low, est.high


def max_power(settings: Settings, ncpu: int | None = None) -> tuple[float, str]:
    """Returns Zeus's MaxPower for CPU tuning (W) and its source: the modelled full-load power
    of one logical CPU x the CPUs this process may use."""
    from greenforge.forge.protocol import core_power

    n = ncpu if ncpu is not None else available_cpus()
    p = core_power(settings)
    return p.power_w * n, f"{p.power_w:.3g} W per logical CPU at full load x {n} CPUs ({p.source})"


def cpu_grid(
    make_step: StepFactory,
    *,
    threads: Sequence[int] | None = None,
    batch_sizes: Sequence[int],
    mode: Mode = "serving",
    samples_to_solution: SamplesToSolution | None = None,
    eta: float = 0.5,
    max_time_s: float | None = None,
    max_slowdown: float | None = None,
    default: Setting | None = None,
    max_power_w: float | None = None,
    settings: Settings | None = None,
    attribution: Attribution | None = None,
    config: ProtocolConfig = ProtocolConfig(),
    probe: LoadProbe | None = None,
    idle_probe_s: float = 0.5,
    repeat_steps: int | None = None,
) -> TuneResult:
    """Measures every (threads, batch size) setting and returns the one with the least Zeus
    cost under the time constraint, with the whole trade-off curve (:class:`TuneResult`).

    ``make_step(batch_size)`` builds one setting's step (called once per setting); ``step()``
    does one unit of work and returns the samples it processed. ``mode="training"`` needs
    ``samples_to_solution`` (fixed, or per batch size); ``"serving"`` compares per 1,000
    samples. ``default`` (e.g. torch's default threads and batch 64) is added to the grid when
    missing, and the chosen setting's saving against it is reported. ``repeat_steps`` fixes
    the steps per measured repeat (default: sized to ``config.repeat_s`` of CPU time).
    """
    eta = check_eta(eta)
    if mode not in ("training", "serving"):
        raise ConfigError(f"mode {mode!r} must be 'training' or 'serving'.")
    if mode == "training" and samples_to_solution is None:
        raise ConfigError(
            "training mode compares energy to solution: give samples_to_solution (a number of "
            "samples, or the samples to reach the target loss per batch size)."
        )
    if mode == "serving" and samples_to_solution is not None:
        raise ConfigError("samples_to_solution is for training; serving compares per sample.")
    constraint = TimeConstraint(max_time_s, max_slowdown)
    thread_grid = _positive_ints("threads", threads or default_thread_grid())
    batch_grid = _positive_ints("batch_sizes", batch_sizes)
    grid = [Setting(t, b) for b in batch_grid for t in thread_grid]
    if default is not None and default not in grid:
        grid.append(default)
    samples = {s: _samples_for(samples_to_solution, s.batch_size) for s in grid}
    from greenforge.config import load_settings

    settings = settings if settings is not None else load_settings()
    if max_power_w is None:
        max_power_w, power_source = max_power(settings)
    else:
        power_source = "given"
    attribution = attribution if attribution is not None else select_attribution(settings)
    probe = probe if probe is not None else LoadProbe()
    before = probe.idle_sample(idle_probe_s) if idle_probe_s > 0 else 0.0
    workloads = [_workload(s, make_step(s.batch_size)) for s in grid]
    units = None if repeat_steps is None else {s.key: repeat_steps for s in grid}
    run = measure_interleaved(workloads, attribution, config, probe=probe, units=units)
    load = max(before, run.background_load)

    costs: list[SettingCost] = []
    for s in grid:
        wc = run.costs[s.key]
        e = widen(wc.estimate(config.seed), load).scaled(1.0 / PER_SAMPLES)
        t = widen(bootstrap_median(wc.wall_s_per_1k, seed=config.seed), load).scaled(
            1.0 / PER_SAMPLES
        )
        costs.append(
            SettingCost(
                s, e.median, e.low, e.high, t.median, t.low, t.high, samples[s],
                wc.bound_low, wc.bound_high,
            )
        )  # fmt: skip
    choice = choose(
        [c.energy_j for c in costs],
        [c.time_s for c in costs],
        eta=eta,
        max_power_w=max_power_w,
        constraint=constraint,
        labels=[c.setting.key for c in costs],
    )
    costs = [
        dataclasses.replace(c, cost_j=k, feasible=f)
        for c, k, f in zip(costs, choice.costs_j, choice.feasible, strict=True)
    ]
    default_index = None if default is None else grid.index(default)
    saving = None
    if default_index is not None:
        d, c = costs[default_index], costs[choice.index]
        ratio = _paired_ratio(run.costs[d.setting.key], run.costs[c.setting.key], config.seed)
        # to solution: the per-sample ratio x the ratio of samples each needs
        k = d.samples / c.samples
        saving = Saving(ratio[0] * k, ratio[1] * k, ratio[2] * k, d.time_s / c.time_s)
    objective = (
        "per 1,000 samples"
        if mode == "serving"
        else "to solution (samples to solution x cost per sample)"
    )
    return TuneResult(
        mode=mode,
        objective=objective,
        costs=tuple(costs),
        chosen=choice.index,
        default=default_index,
        eta=eta,
        max_power_w=max_power_w,
        max_power_source=power_source,
        constraint=constraint,
        limit_s=choice.limit_s,
        saving=saving,
        method=attribution.method,
        provenance=attribution.provenance,
        rounds=run.rounds,
        stopped=run.stopped,
        background_load=load,
    )


def cpu_threads(
    step: Step,
    *,
    threads: Sequence[int] | None = None,
    batch_size: int = 1,
    **options: Any,
) -> TuneResult:
    """Measures ``step`` (one unit of work, returns samples) at each thread count and returns
    the :class:`TuneResult` (see :func:`cpu_grid` for ``options``). ``batch_size`` only labels
    the setting: the step does the same work at every thread count."""
    return cpu_grid(lambda _b: step, threads=threads, batch_sizes=[batch_size], **options)


def cpu_batch(
    make_step: StepFactory,
    *,
    batch_sizes: Sequence[int],
    threads: int | None = None,
    **options: Any,
) -> TuneResult:
    """Measures each batch size at one thread count (default: torch's current) and returns
    the :class:`TuneResult` (see :func:`cpu_grid` for ``options``)."""
    if threads is None:
        import torch

        threads = int(torch.get_num_threads())
    return cpu_grid(make_step, threads=[threads], batch_sizes=batch_sizes, **options)


__all__ = [
    "PER_SAMPLES",
    "Mode",
    "SamplesToSolution",
    "Saving",
    "Setting",
    "SettingCost",
    "Step",
    "StepFactory",
    "TuneResult",
    "available_cpus",
    "cpu_batch",
    "cpu_grid",
    "cpu_threads",
    "default_thread_grid",
    "max_power",
]
