"""The forge's one measurement protocol: attribution, thread limits, interleaving, statistics.

Every energy figure ``greenforge forge`` reports comes through this module:

- **Attribution** (:class:`Attribution`): the energy of a measured call is the *process's own
  share*, so other work on the machine does not change it.

  - ``process`` (default, ``model:cpu-time-x-core-power+model:ram-w-per-gb``): CPU seconds of
    this process (all its threads, :func:`time.process_time`) x the modelled power of one
    logical CPU at full load (:func:`greenforge.hardware.catalog.cpu_power_model` full-load
    power / logical CPUs; its low/high curves give the bounds), plus resident memory x W/GB (as
    :mod:`greenforge.meters.model` does) x the time the process *ran*: the smaller of wall and
    CPU time. On a shared machine the wall time includes waiting for other processes' turn on
    the CPU; a dedicated serving replica would not wait, so charging memory for the wait would
    bill this call for the neighbours' load.
  - ``counter-share`` (RAPL readable): the counter's energy delta x this process's share of
    the machine's busy CPU time in the call (``+process-share``).
  - ``meters`` (injected meters, tests): the meters' readings as they are.

- **Threads** (:func:`thread_limit`): torch intra-op threads are set inside a block and restored
  after it; ONNX Runtime sessions are built with ``intra_op_num_threads`` = serving threads and
  ``inter_op_num_threads = 1``. With one thread no worker spins while waiting for a core, so the
  CPU time of a prediction does not grow on a busy machine.

- **Interleaved repeats** (:func:`measure_interleaved`): all workloads are measured together,
  once per round, each round in a fresh seeded random order (A B C, C A B, B C A ...). A fixed
  cyclic order (even rotated) gives every workload the same predecessor in every round, and what
  a predecessor leaves behind is billed to it: after an int8 workload at batch 64, a copy of the
  fp32 baseline at batch 1 came out 10 % dearer than the baseline itself, round after round.
  Each repeat is a fixed amount of work sized so it takes about ``repeat_s`` (6 ms), preceded
  by an unmeasured warm-up of about ``warmup_s`` (at least one unit): the first calls after a
  switch refill the caches, which a serving replica running warm does not pay, and which would
  bill a short repeat a start-up share that depends on its size. The size comes from the median
  of :data:`SIZE_ROUNDS` (3) interleaved rounds (:func:`_size_interleaved`), not from one
  workload timed alone at one moment, so two copies of one model get (nearly) the same repeat
  on a busy machine too; those rounds are discarded as the warm-up. Short repeats over many rounds sample a machine
  whose speed changes from one millisecond to the next (a cloud vCPU sharing its core) far more
  evenly than one long repeat per round. Rounds continue from ``min_rounds`` until every
  workload's bootstrap 95 % interval half-width is below ``rel_half_width`` of its median, or
  ``max_rounds``, or the CPU budget is spent. Repeat sizes and the budget count this process's
  *CPU* seconds, not wall time, so the amount of measuring - and its own energy, which is part
  of the search's cost - does not depend on other processes' load (a wall-time limit only
  guards against a machine so busy that the CPU budget would take too long).

- **Estimator** (:func:`round_adjusted_estimates`): every workload is measured once per round,
  so the costs form a workloads x rounds table. A busy machine slows whole rounds (a neighbour
  starts, the CPU's other hyper-thread fills); a Tukey median polish of the log costs splits each
  cost into a workload level and a round effect, and the estimate is the workload's level at the
  median round - the median cost with the rounds' shared swings taken out. Its 95 % interval is a
  seeded (deterministic) bootstrap over rounds. With one workload it is the plain median
  (:func:`bootstrap_median`). Measured beside a busy loop per core, two independent copies of
  one model agree about twice as closely as with per-workload medians.

- **Noise** (:class:`LoadProbe`): the machine's busy CPU time minus this process's, per CPU and
  second of wall time, is the *background load* (0..1). Above :data:`BUSY_LOAD` the run is called
  busy, said so, and every measurement interval's half-widths are multiplied by
  ``1 + BUSY_WIDEN * background_load`` (:func:`widen`): the number is less certain, and the
  output must not look precise.

Intervals have two parts, kept apart: the *measurement* spread (bootstrap, widened when busy) and
the *meter* bounds (the per-core power curve's low/high). Ratios between candidates measured
with the same meter use only the measurement spread: the per-core power bound is common to both
and cancels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from greenforge.config import Settings
from greenforge.errors import ConfigError

CpuClock = Callable[[], float]
"""Cumulative CPU seconds (user + system) of this process, all threads."""
WallClock = Callable[[], float]
MachineTimes = Callable[[], tuple[float, float]]
"""Cumulative machine-wide (busy_s, total_s) over all CPUs."""

METHOD_CPU = "model:cpu-time-x-core-power"
METHOD_RAM = "model:ram-w-per-gb"
BYTES_PER_GB = 1e9
BUSY_LOAD = 0.2
"""Background load (fraction of the other CPUs' time) above which a run is called busy."""
BUSY_WIDEN = 2.0
"""When busy, measurement half-widths are multiplied by ``1 + BUSY_WIDEN * background_load``."""
CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 1000
_STOP_SAMPLES = 200
"""Bootstrap samples for the stopping rule (the final estimate uses :data:`BOOTSTRAP_SAMPLES`).
The polish of a bootstrap sample is not free: with 14 workloads and 80 rounds, 500 samples
take about 0.3 CPU s, which is billed to the measurement like everything else it does."""
_STOP_EVERY = 10
"""The stopping rule is checked at ``min_rounds`` and then every this many rounds."""


# --------------------------------------------------------------------------- power per core


@dataclasses.dataclass(frozen=True)
class CorePower:
    """Modelled power of one busy logical CPU (W), with bounds and where it came from."""

    power_w: float
    low_w: float
    high_w: float
    source: str


def core_power(settings: Settings, cpuinfo: Any | None = None) -> CorePower:
    """Full-load power of one logical CPU in W: the machine's CPU power model at full load
    divided by its logical CPUs; the curve's low/high full-load values give the bounds."""
    from greenforge.hardware.catalog import cpu_power_model
    from greenforge.hardware.cpuinfo import read_cpuinfo

    cpu = cpuinfo if cpuinfo is not None else read_cpuinfo()
    model = cpu_power_model(settings, cpu)
    n = max(int(cpu.logical_cpus), 1)
    return CorePower(
        power_w=model.max_w / n,
        low_w=min(model.max_low_w / n, model.max_w / n),
        high_w=max(model.max_high_w / n, model.max_w / n),
        source=f"{model.method}: {model.provenance}; full-load power / {n} logical CPUs",
    )


# --------------------------------------------------------------------------- attribution


@dataclasses.dataclass(frozen=True)
class Reading:
    """What one attributed call cost: energy (J) with meter bounds, wall and CPU seconds."""

    energy_j: float
    low_j: float
    high_j: float
    wall_s: float
    cpu_s: float
    method: str


@dataclasses.dataclass(frozen=True)
class Mark:
    """Clocks at the start of a call (opaque to callers)."""

    wall_s: float
    cpu_s: float
    machine_busy_s: float = 0.0


class Attribution(Protocol):
    """How the energy of a call is attributed to it: ``begin()`` before, ``end(mark)`` after."""

    @property
    def name(self) -> str:
        """``process``, ``counter-share`` or ``meters``."""
        ...

    @property
    def method(self) -> str:
        """The ``+``-joined method string every reading carries."""
        ...

    @property
    def provenance(self) -> str:
        """Where the figures come from, in words."""
        ...

    def begin(self) -> Mark:
        """Read the clocks (and counters) before a call."""
        ...

    def end(self, mark: Mark) -> Reading:
        """The call's reading since ``mark``."""
        ...


def own_rss_bytes() -> float:
    """Resident memory of this process in bytes."""
    import psutil

    return float(psutil.Process().memory_info().rss)


class ProcessCpuAttribution:
    """CPU seconds of this process x per-core power, plus RSS x W/GB x min(wall, CPU seconds)
    (``process``)."""

    name = "process"

    def __init__(
        self,
        power: CorePower,
        ram_w_per_gb: float = 0.375,
        *,
        cpu_clock: CpuClock = time.process_time,
        wall_clock: WallClock = time.perf_counter,
        rss_bytes: Callable[[], float] = own_rss_bytes,
    ) -> None:
        from greenforge.meters.model import RAM_W_PER_GB_HIGH, RAM_W_PER_GB_LOW

        self.power = power
        self.ram_w_per_gb = ram_w_per_gb
        self.ram_low_w_per_gb = min(RAM_W_PER_GB_LOW, ram_w_per_gb)
        self.ram_high_w_per_gb = max(RAM_W_PER_GB_HIGH, ram_w_per_gb)
        self._cpu = cpu_clock
        self._wall = wall_clock
        self._rss = rss_bytes

    @property
    def method(self) -> str:
        return f"{METHOD_CPU}+{METHOD_RAM}"

    @property
    def provenance(self) -> str:
        return (
            f"CPU seconds of this process (all threads) x {self.power.power_w:.3g} W per busy "
            f"logical CPU (bounds {self.power.low_w:.3g}-{self.power.high_w:.3g} W; "
            f"{self.power.source}) + resident memory x {self.ram_w_per_gb:g} W/GB "
            f"(bounds {self.ram_low_w_per_gb:g}-{self.ram_high_w_per_gb:g}) x the time it ran "
            "(min of wall and CPU time)"
        )

    def begin(self) -> Mark:
        return Mark(self._wall(), self._cpu())

    def end(self, mark: Mark) -> Reading:
        wall = max(self._wall() - mark.wall_s, 0.0)
        cpu = max(self._cpu() - mark.cpu_s, 0.0)
        gb_s = self._rss() / BYTES_PER_GB * min(wall, cpu)
        p = self.power
        return Reading(
            energy_j=cpu * p.power_w + gb_s * self.ram_w_per_gb,
            low_j=cpu * p.low_w + gb_s * self.ram_low_w_per_gb,
            high_j=cpu * p.high_w + gb_s * self.ram_high_w_per_gb,
            wall_s=wall,
            cpu_s=cpu,
            method=self.method,
        )


class _ReadingMeter(Protocol):
    name: str

    def start(self) -> None: ...

    def read(self) -> Sequence[Any]: ...


def _read_meters(meters: Sequence[_ReadingMeter]) -> tuple[float, float, float, set[str]]:
    energy = low = high = 0.0
    methods: set[str] = set()
    for m in meters:
        try:
            for r in m.read():
                energy += r.energy_j
                low += r.low_j
                high += r.high_j
                methods.add(r.method)
        except Exception as exc:  # a meter problem never fails the workload
            methods.add(f"unmeasured ({getattr(m, 'name', m)}: {exc})")
    return energy, low, high, methods


class MeterAttribution:
    """Injected meters read directly around each call, as they are (``meters``; tests)."""

    name = "meters"

    def __init__(
        self,
        meters: Sequence[_ReadingMeter],
        *,
        cpu_clock: CpuClock = time.process_time,
        wall_clock: WallClock = time.perf_counter,
    ) -> None:
        self.meters = list(meters)
        self._cpu = cpu_clock
        self._wall = wall_clock
        self._started: list[_ReadingMeter] = []
        self._failed: list[str] = []

    @property
    def method(self) -> str:
        return "+".join(sorted({str(getattr(m, "method", m.name)) for m in self.meters}))

    @property
    def provenance(self) -> str:
        return "injected meters: " + ", ".join(m.name for m in self.meters)

    def begin(self) -> Mark:
        self._started = []
        self._failed = []
        for m in self.meters:
            try:
                m.start()
                self._started.append(m)
            except Exception as exc:
                self._failed.append(f"unmeasured ({getattr(m, 'name', m)}: {exc})")
        return Mark(self._wall(), self._cpu())

    def end(self, mark: Mark) -> Reading:
        cpu = max(self._cpu() - mark.cpu_s, 0.0)
        wall = max(self._wall() - mark.wall_s, 0.0)
        energy, low, high, methods = _read_meters(self._started)
        methods.update(self._failed)
        return Reading(energy, low, high, wall, cpu, "+".join(sorted(methods)) or "unmeasured")


class CounterShareAttribution:
    """A machine-wide energy counter (RAPL) x this process's share of the machine's busy CPU
    time during the call (``counter-share``)."""

    name = "counter-share"

    def __init__(
        self,
        meters: Sequence[_ReadingMeter],
        *,
        cpu_clock: CpuClock = time.process_time,
        wall_clock: WallClock = time.perf_counter,
        machine_times: MachineTimes | None = None,
    ) -> None:
        from greenforge.meters.model import machine_cpu_times

        self.meters = list(meters)
        self._cpu = cpu_clock
        self._wall = wall_clock
        self._machine = machine_times or machine_cpu_times

    @property
    def method(self) -> str:
        names = sorted({str(getattr(m, "method", m.name)) for m in self.meters})
        return "+".join(f"{n}+process-share" for n in names)

    @property
    def provenance(self) -> str:
        return (
            "energy counters ("
            + ", ".join(m.name for m in self.meters)
            + ") x this process's share of the machine's busy CPU time"
        )

    def begin(self) -> Mark:
        for m in self.meters:
            with contextlib.suppress(Exception):
                m.start()
        return Mark(self._wall(), self._cpu(), self._machine()[0])

    def end(self, mark: Mark) -> Reading:
        from greenforge.meters.model import process_share

        cpu = max(self._cpu() - mark.cpu_s, 0.0)
        wall = max(self._wall() - mark.wall_s, 0.0)
        busy = max(self._machine()[0] - mark.machine_busy_s, 0.0)
        share = process_share(cpu, busy)
        energy, low, high, methods = _read_meters(self.meters)
        method = "+".join(sorted(f"{m}+process-share" for m in methods)) or "unmeasured"
        return Reading(energy * share, low * share, high * share, wall, cpu, method)


def select_attribution(settings: Settings, meters: Sequence[Any] | None = None) -> Attribution:
    """The attribution for this machine: injected ``meters`` as they are; else RAPL counters
    apportioned by this process's CPU share when readable; else CPU time x per-core power."""
    if meters is not None:
        return MeterAttribution(meters)
    from greenforge.meters import rapl

    with contextlib.suppress(Exception):
        if rapl.probe().available:
            return CounterShareAttribution([rapl.RaplMeter()])
    return ProcessCpuAttribution(core_power(settings), settings.ram_w_per_gb)


# --------------------------------------------------------------------------- threads


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Run the block with torch using ``threads`` intra-op threads; the previous value is
    restored after it (no global change leaks out)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads {threads!r} must be an integer >= 1.")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ort_session_options(threads: int) -> Any:
    """ONNX Runtime session options for serving: ``threads`` intra-op, one inter-op thread,
    sequential execution, no spinning worker threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


# --------------------------------------------------------------------------- statistics


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A robust estimate: the median of ``n`` per-repeat values and its 95 % interval."""

    median: float
    low: float
    high: float
    n: int

    @property
    def rel_half_width(self) -> float:
        """Half the interval's width over the median (``inf`` when the median is 0)."""
        if self.median <= 0:
            return 0.0 if self.high <= self.low else math.inf
        return (self.high - self.low) / 2.0 / self.median

    def scaled(self, factor: float) -> Estimate:
        """The same estimate with every value multiplied by ``factor`` (>= 0)."""
        return Estimate(self.median * factor, self.low * factor, self.high * factor, self.n)


def bootstrap_median(
    values: Sequence[float], *, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES
) -> Estimate:
    """Median of ``values`` and its seeded bootstrap 95 % percentile interval (same unit)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("bootstrap_median needs at least one value.")
    med = float(np.median(arr))
    if arr.size == 1:
        return Estimate(med, med, med, 1)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(samples, arr.size))
    meds = np.median(arr[idx], axis=1)
    alpha = (1.0 - CONFIDENCE) / 2.0
    lo, hi = np.quantile(meds, [alpha, 1.0 - alpha])
    return Estimate(med, min(float(lo), med), max(float(hi), med), int(arr.size))


def _polished_levels(log_costs: np.ndarray, iterations: int = 8) -> np.ndarray:
    """Median polish of ``(..., workloads, rounds)`` log costs: each workload's level at the
    median round, shape ``(..., workloads)``."""
    res = log_costs.copy()
    row = np.zeros(res.shape[:-1])
    col = np.zeros(res.shape[:-2] + res.shape[-1:])
    for _ in range(iterations):
        rm = np.median(res, axis=-1)
        row += rm
        res -= rm[..., None]
        cm = np.median(res, axis=-2)
        col += cm
        res -= cm[..., None, :]
    levels: np.ndarray = row + np.median(col, axis=-1)[..., None]
    return levels


def round_adjusted_estimates(
    series: Mapping[str, Sequence[float]], *, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES
) -> dict[str, Estimate]:
    """Each workload's cost at the median round, from per-round costs measured interleaved
    (``series[key][r]`` = the cost in round ``r``; all the same length), with a seeded
    bootstrap-over-rounds 95 % interval. See the module's *Estimator* notes."""
    keys = list(series)
    if not keys:
        return {}
    lengths = {len(series[k]) for k in keys}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"every workload needs the same, non-zero number of rounds: {lengths}")
    table = np.asarray([series[k] for k in keys], dtype=np.float64)
    if len(keys) == 1 or not np.all(table > 0):  # nothing to pool, or a log is undefined
        return {k: bootstrap_median(series[k], seed=seed, samples=samples) for k in keys}
    logs = np.log(table)
    central = np.exp(_polished_levels(logs))
    rounds = table.shape[1]
    if rounds == 1:
        return {
            k: Estimate(float(c), float(c), float(c), 1) for k, c in zip(keys, central, strict=True)
        }
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, rounds, size=(samples, rounds))
    boot = np.exp(_polished_levels(np.moveaxis(logs[:, idx], 1, 0)))  # (samples, workloads)
    alpha = (1.0 - CONFIDENCE) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
    return {
        k: Estimate(float(c), min(float(a), float(c)), max(float(b), float(c)), rounds)
        for k, c, a, b in zip(keys, central, lo, hi, strict=True)
    }


def widen(est: Estimate, background_load: float) -> Estimate:
    """``est`` with its half-widths multiplied by ``1 + BUSY_WIDEN * background_load`` when the
    load is above :data:`BUSY_LOAD` (unchanged otherwise); the low end stays >= 0."""
    if background_load <= BUSY_LOAD:
        return est
    f = 1.0 + BUSY_WIDEN * min(background_load, 1.0)
    low = max(est.median - (est.median - est.low) * f, 0.0)
    high = est.median + (est.high - est.median) * f
    return Estimate(est.median, low, high, est.n)


# --------------------------------------------------------------------------- background load


def background_load(d_machine_busy_s: float, d_own_cpu_s: float, ncpu: int, wall_s: float) -> float:
    """Other processes' share of the machine's CPU capacity over ``wall_s`` (0..1)."""
    if wall_s <= 0 or ncpu < 1:
        return 0.0
    other = max(d_machine_busy_s - d_own_cpu_s, 0.0)
    return min(other / (ncpu * wall_s), 1.0)


class LoadProbe:
    """Measures the background load over a window: ``start()``, then ``stop()`` -> load."""

    def __init__(
        self,
        *,
        machine_times: MachineTimes | None = None,
        cpu_clock: CpuClock = time.process_time,
        wall_clock: WallClock = time.perf_counter,
        ncpu: int | None = None,
    ) -> None:
        from greenforge.meters.model import machine_cpu_times

        self._machine = machine_times or machine_cpu_times
        self._cpu = cpu_clock
        self._wall = wall_clock
        self.ncpu = ncpu if ncpu is not None else (os.cpu_count() or 1)
        self._start: tuple[float, float, float] | None = None

    def start(self) -> None:
        self._start = (self._wall(), self._machine()[0], self._cpu())

    def stop(self) -> float:
        """Background load (0..1) since :meth:`start`."""
        if self._start is None:
            return 0.0
        w0, b0, c0 = self._start
        wall, busy, own = self._wall() - w0, self._machine()[0] - b0, self._cpu() - c0
        return background_load(busy, own, self.ncpu, wall)

    def idle_sample(self, seconds: float, sleep: Callable[[float], None] = time.sleep) -> float:
        """Background load while this process sleeps for ``seconds`` (before measuring)."""
        self.start()
        sleep(seconds)
        return self.stop()


# --------------------------------------------------------------------------- interleaving


@dataclasses.dataclass(frozen=True)
class Workload:
    """One thing to measure: ``run(units)`` does ``units`` units of work and returns how many
    predictions it made; ``unit_predictions`` predictions per unit (e.g. the batch size)."""

    key: str
    run: Callable[[int], int]


@dataclasses.dataclass(frozen=True)
class ProtocolConfig:
    """Settings of :func:`measure_interleaved` (durations in seconds)."""

    repeat_s: float = 0.006
    """Target CPU seconds of one measured repeat (fixed work, sized once per workload). Short
    repeats, many rounds: on a shared cloud guest the vCPU runs at full speed or about 1.8x
    slower from one millisecond to the next (the host's other tenants), so what one repeat
    costs depends on which moments it happened to get. Four 6 ms repeats spread over four
    rounds sample those moments far more evenly than one 25 ms repeat in one round: on the
    2-core guest, at the same measured CPU time, two copies of the digits baseline agreed
    about 2.5x (idle) to 4x (a busy loop per core) more closely (``warmup_s`` keeps the short
    repeats from being billed the switch)."""
    warmup_s: float = 0.002
    """Unmeasured warm-up before every repeat (at least one unit, about this much CPU time):
    the first calls after switching from another workload refill the caches (2.5x a warm call
    at batch 1 for a 4.5 MB model, about seven calls to settle). A serving replica runs warm,
    and a start-up share that depends on the repeat's size would make two copies of one model
    disagree. Its energy is part of the measurement's (charged to the search), not of the
    workload's figure. ``0`` measures from the first call."""
    min_rounds: int = 20
    max_rounds: int = 60
    """Round limit on a quiet machine. The measurement is charged to the chosen model like the
    rest of the search, so every round moves the headline a little; too few and two copies of
    one model disagree. On the idle 2-core guest, two copies of the digits baseline came out
    1.3 % (batch 1) and 2.0 % (batch 64) apart over 80 rounds (root mean square over blocks),
    and in the forge 0.7-7.4 % apart in 18 runs of bench_forge_stability (half beside a busy
    loop per core), most of them stopping before this limit."""
    busy_max_rounds: int = 80
    """Round limit once the background load so far is above :data:`BUSY_LOAD` (per-repeat noise
    is larger then): beside a busy loop per core, 80 rounds put the two copies 2.6 % and 3.5 %
    apart (root mean square over blocks; worst 5.8 %). The CPU budget still caps the
    measuring."""
    rel_half_width: float = 0.05
    """Stop when every workload's 95 % interval half-width is below this share of its median."""
    budget_s: float = 25.0
    """Stop after this process spent this many CPU seconds measuring (the minimum rounds
    always run)."""
    wall_limit_s: float = 120.0
    """Stop after this much wall time, whatever the CPU budget (a very busy machine)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.repeat_s > 0:
            raise ConfigError(f"repeat_s {self.repeat_s!r} must be > 0.")
        if not 1 <= self.min_rounds <= self.max_rounds:
            raise ConfigError(
                f"rounds: need 1 <= min_rounds ({self.min_rounds}) <= max_rounds "
                f"({self.max_rounds})."
            )
        if self.busy_max_rounds < self.max_rounds:
            raise ConfigError(
                f"busy_max_rounds ({self.busy_max_rounds}) must be >= max_rounds "
                f"({self.max_rounds})."
            )
        if not (math.isfinite(self.warmup_s) and self.warmup_s >= 0):
            raise ConfigError(f"warmup_s {self.warmup_s!r} must be >= 0 (seconds).")
        if not self.budget_s > 0:
            raise ConfigError(f"budget_s {self.budget_s!r} must be > 0 (seconds).")
        if not self.wall_limit_s > 0:
            raise ConfigError(f"wall_limit_s {self.wall_limit_s!r} must be > 0 (seconds).")


@dataclasses.dataclass(frozen=True)
class WorkloadCost:
    """A workload's measured cost: per-repeat energy and time per 1,000 predictions."""

    key: str
    units: int
    """Units of work per repeat (fixed)."""
    predictions: int
    """Predictions per repeat."""
    energy_j_per_1k: tuple[float, ...]
    wall_s_per_1k: tuple[float, ...]
    cpu_s_per_1k: tuple[float, ...]
    bound_low: float
    """Meter low bound / central (summed over repeats): scales the estimate to the low bound."""
    bound_high: float
    method: str
    adjusted: Estimate | None = None
    """The round-adjusted estimate from :func:`round_adjusted_estimates` (set by
    :func:`measure_interleaved`), which :meth:`estimate` prefers."""

    def estimate(self, seed: int = 0) -> Estimate:
        """Energy per 1k predictions (J) with its 95 % interval: the round-adjusted estimate
        when the workload was measured interleaved with others, else the bootstrap median."""
        if self.adjusted is not None:
            return self.adjusted
        return bootstrap_median(self.energy_j_per_1k, seed=seed)


@dataclasses.dataclass(frozen=True)
class InterleavedRun:
    """All workloads' costs, the rounds run, why it stopped and the background load."""

    costs: dict[str, WorkloadCost]
    rounds: int
    stopped: str
    wall_s: float
    background_load: float


MAX_UNITS = 100_000
"""The most units of work one measured repeat is sized to."""

SIZE_ROUNDS = 3
"""Interleaved rounds that fix the repeat sizes (see :func:`_size_interleaved`)."""


def _warm_units(units: int, config: ProtocolConfig) -> int:
    """Units of the unmeasured warm-up before a repeat of ``units`` (at least one; 0 when
    ``config.warmup_s`` is 0)."""
    if config.warmup_s <= 0:
        return 0
    return max(1, math.ceil(units * config.warmup_s / config.repeat_s))


def _size_interleaved(
    workloads: Sequence[Workload],
    rough: Mapping[str, int],
    config: ProtocolConfig,
    cpu_clock: CpuClock,
    rng: np.random.Generator,
    max_units: int = MAX_UNITS,
) -> dict[str, int]:
    """Repeat sizes from :data:`SIZE_ROUNDS` interleaved rounds of ``rough``-sized repeats,
    each warmed up as in the measurement: ``repeat_s`` / the median CPU time per unit.

    One workload sized alone at one moment takes that moment's speed for its own: beside a busy
    loop per core the same model's repeat came out anywhere from 2 to 38 units, and a copy
    sized at 7 units cost 16-22 % more per prediction than one sized at 15-17 (likely the
    switch's start-up share, larger in a short repeat), which no number of rounds removes. The
    median over rounds, each in a fresh random order, sizes every workload at the machine's
    usual speed, so two copies of one model get (nearly) the same repeat."""
    per_unit: dict[str, list[float]] = {w.key: [] for w in workloads}
    for _ in range(SIZE_ROUNDS):
        for i in rng.permutation(len(workloads)):
            w = workloads[int(i)]
            n = rough[w.key]
            if warm := _warm_units(n, config):
                w.run(warm)
            t0 = cpu_clock()
            w.run(n)
            per_unit[w.key].append(max(cpu_clock() - t0, 0.0) / n)
    sizes = {}
    for w in workloads:
        med = float(np.median(per_unit[w.key]))
        sizes[w.key] = (
            max(1, min(max_units, round(config.repeat_s / med))) if med > 0 else rough[w.key]
        )
    return sizes


def _size_units(
    w: Workload, cpu_clock: CpuClock, repeat_s: float, max_units: int = MAX_UNITS
) -> int:
    """Units per repeat so one repeat takes about ``repeat_s`` (growing from 1 unit). Each try
    is timed warm (run once untimed first): the first calls of a model refill the caches and
    would make a short repeat of a large model far too small."""
    units = 1
    while True:
        w.run(units)
        t0 = cpu_clock()
        w.run(units)
        dt = max(cpu_clock() - t0, 0.0)
        if dt >= repeat_s / 2 or units >= max_units:
            if dt <= 0:
                return units
            return max(1, min(max_units, round(units * repeat_s / dt)))
        grow = 16 if dt <= 0 else min(16, max(2, math.ceil(repeat_s / (2 * dt))))
        units = min(max_units, units * grow)


def measure_interleaved(
    workloads: Sequence[Workload],
    attribution: Attribution,
    config: ProtocolConfig = ProtocolConfig(),
    *,
    wall_clock: WallClock = time.perf_counter,
    cpu_clock: CpuClock = time.process_time,
    probe: LoadProbe | None = None,
    units: dict[str, int] | None = None,
) -> InterleavedRun:
    """Measure every workload round-robin until the intervals are tight or the budget is spent.

    Each workload's repeat size is fixed once: ``units`` where given (then one warm-up round is
    run and discarded), else sized to ``config.repeat_s`` by :func:`_size_interleaved`, whose
    rounds are the discarded warm-up. Every repeat is preceded by an unmeasured warm-up of about
    ``config.warmup_s`` (at least one unit). Returns per-repeat costs per 1,000 predictions.
    """
    keys = [w.key for w in workloads]
    if len(set(keys)) != len(keys):
        raise ValueError(f"workload keys must be unique: {keys}")
    order_rng = np.random.default_rng(config.seed)
    sizes = dict(units or {})
    unsized = [w for w in workloads if w.key not in sizes]
    if unsized:  # the sizing rounds are also their (discarded) warm-up
        rough = {w.key: _size_units(w, cpu_clock, config.repeat_s) for w in unsized}
        sizes.update(_size_interleaved(unsized, rough, config, cpu_clock, order_rng))
    for w in workloads:
        if units is not None and w.key in units:  # warm-up round, discarded
            w.run(sizes[w.key])
    warm = {k: _warm_units(n, config) for k, n in sizes.items()}
    probe = probe if probe is not None else LoadProbe(wall_clock=wall_clock, cpu_clock=cpu_clock)
    probe.start()
    started = wall_clock()
    cpu_started = cpu_clock()
    energy: dict[str, list[float]] = {k: [] for k in keys}
    wall: dict[str, list[float]] = {k: [] for k in keys}
    cpu: dict[str, list[float]] = {k: [] for k in keys}
    low: dict[str, float] = dict.fromkeys(keys, 0.0)
    high: dict[str, float] = dict.fromkeys(keys, 0.0)
    central: dict[str, float] = dict.fromkeys(keys, 0.0)
    preds: dict[str, int] = dict.fromkeys(keys, 0)
    methods: dict[str, set[str]] = {k: set() for k in keys}
    rounds = 0
    limit = config.max_rounds
    stopped = f"max_rounds ({config.max_rounds})"
    while rounds < limit:
        # A fresh seeded order every round: each workload follows different ones, so what a
        # workload leaves behind (caches, a vector unit's lower clock) is not always billed to
        # the same successor.
        for i in order_rng.permutation(len(workloads)):
            w = workloads[int(i)]
            if warm[w.key]:
                w.run(warm[w.key])
            mark = attribution.begin()
            n = w.run(sizes[w.key])
            r = attribution.end(mark)
            k = 1000.0 / max(n, 1)
            preds[w.key] = n
            energy[w.key].append(r.energy_j * k)
            wall[w.key].append(r.wall_s * k)
            cpu[w.key].append(r.cpu_s * k)
            central[w.key] += r.energy_j
            low[w.key] += r.low_j
            high[w.key] += r.high_j
            methods[w.key].add(r.method)
        rounds += 1
        if rounds < config.min_rounds:
            continue
        if limit < config.busy_max_rounds and probe.stop() > BUSY_LOAD:
            limit = config.busy_max_rounds
            stopped = f"max_rounds ({config.busy_max_rounds}, the machine is busy)"
        if (rounds - config.min_rounds) % _STOP_EVERY == 0:
            estimates = round_adjusted_estimates(energy, seed=config.seed, samples=_STOP_SAMPLES)
            if all(e.rel_half_width < config.rel_half_width for e in estimates.values()):
                stopped = f"intervals within {config.rel_half_width:.0%} of the median"
                break
        if cpu_clock() - cpu_started >= config.budget_s:
            stopped = f"CPU budget ({config.budget_s:g} s) spent"
            break
        if wall_clock() - started >= config.wall_limit_s:
            stopped = f"wall-time limit ({config.wall_limit_s:g} s) reached"
            break
    load = probe.stop()
    adjusted = round_adjusted_estimates(energy, seed=config.seed)
    costs = {
        k: WorkloadCost(
            key=k,
            units=sizes[k],
            predictions=preds[k],
            energy_j_per_1k=tuple(energy[k]),
            wall_s_per_1k=tuple(wall[k]),
            cpu_s_per_1k=tuple(cpu[k]),
            bound_low=low[k] / central[k] if central[k] > 0 else 1.0,
            bound_high=high[k] / central[k] if central[k] > 0 else 1.0,
            method="+".join(sorted(methods[k])),
            adjusted=adjusted[k],
        )
        for k in keys
    }
    return InterleavedRun(costs, rounds, stopped, wall_clock() - started, load)


__all__ = [
    "BUSY_LOAD",
    "BUSY_WIDEN",
    "METHOD_CPU",
    "METHOD_RAM",
    "Attribution",
    "CorePower",
    "CounterShareAttribution",
    "Estimate",
    "InterleavedRun",
    "LoadProbe",
    "Mark",
    "MeterAttribution",
    "ProcessCpuAttribution",
    "ProtocolConfig",
    "Reading",
    "Workload",
    "WorkloadCost",
    "background_load",
    "bootstrap_median",
    "core_power",
    "measure_interleaved",
    "ort_session_options",
    "round_adjusted_estimates",
    "select_attribution",
    "thread_limit",
    "widen",
]
