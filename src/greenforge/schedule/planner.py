"""The planner: the cleanest slots for a :class:`~greenforge.schedule.job.Job` before its deadline.

Pure functions over numpy arrays, three algorithms behind one entry point, :func:`plan_job`:

* **uninterruptible** - the start minimising the integral of intensity over ``[s, s + D)``.
  The integral is piecewise linear in ``s`` with breakpoints where ``s`` or ``s + D`` meets a
  knot of the (step-wise) forecast, so the exact optimum is among those candidates: one
  cumulative sum and one vectorised interpolation, O(T) (plus a sort of the candidates).
* **interruptible** - dynamic programming over (time step, zone, progress, chunk length) with a
  checkpoint/resume overhead (time and energy) per resumption and a minimum chunk length.
* **multi-zone** - the same DP; resuming in another zone adds the migration cost. An
  uninterruptible job runs entirely in its best zone.

Every plan lies inside ``[earliest_start_s, deadline_s]``: an infeasible job raises
:class:`~greenforge.errors.InfeasibleError`; no plan is ever late. The interruptible plan is
never worse than the uninterruptible one (the latter is always a candidate), which is never
worse than running now.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from greenforge.errors import DataError, InfeasibleError, UnknownZoneError
from greenforge.grid.series import IntensitySeries
from greenforge.schedule.job import DEFAULT_POWER_W, Job
from greenforge.timeutil import utc_iso_seconds
from greenforge.units import J_PER_KWH

FloatArray = npt.NDArray[np.float64]

_EPS_S = 1e-6
LOW_SAVING_PCT = 5.0
"""Below this saving (%) the plan's advice says why shifting does not pay here."""
FLAT_SPREAD_PCT = 10.0
"""A window whose forecast spreads less than this (% of its mean, max - min) is called flat."""
_MAX_DP_CELLS = 4_000_000
"""Upper bound on time steps x zones x progress x chunk-length cells of the DP."""


@dataclasses.dataclass(frozen=True)
class Slot:
    """One contiguous run of the job: ``[start_s, end_s)`` in ``zone``."""

    start_s: float
    end_s: float
    zone: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "start": utc_iso_seconds(self.start_s),
            "end": utc_iso_seconds(self.end_s),
            "zone": self.zone,
            "duration_s": self.duration_s,
        }


@dataclasses.dataclass(frozen=True)
class WindowStats:
    """The home zone's forecast over a job's window ``[earliest_start_s, deadline_s)``, g/kWh.

    ``spread_pct = 100 x (max - min) / mean``: how much choosing the hour can matter at all.
    ``now_g_per_kwh`` is the value at the earliest start.
    """

    zone: str
    min_g_per_kwh: float
    mean_g_per_kwh: float
    max_g_per_kwh: float
    now_g_per_kwh: float
    min_at_s: float
    """Start of the (first) cleanest step in the window."""

    @property
    def spread_pct(self) -> float:
        if self.mean_g_per_kwh <= 0:
            return 0.0
        return 100.0 * (self.max_g_per_kwh - self.min_g_per_kwh) / self.mean_g_per_kwh

    @property
    def now_is_cleanest(self) -> bool:
        return self.now_g_per_kwh <= self.min_g_per_kwh + 1e-9 * max(self.mean_g_per_kwh, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "min_g_per_kwh": self.min_g_per_kwh,
            "mean_g_per_kwh": self.mean_g_per_kwh,
            "max_g_per_kwh": self.max_g_per_kwh,
            "now_g_per_kwh": self.now_g_per_kwh,
            "spread_pct": self.spread_pct,
            "min_at": utc_iso_seconds(self.min_at_s),
        }


@dataclasses.dataclass(frozen=True)
class Plan:
    """Where and when to run a job, and what it is expected to emit.

    ``expected_co2e_g`` and ``run_now_co2e_g`` are computed on the forecast (run now = start at
    the earliest start in the job's home zone, its first zone). Where actual intensity was given,
    ``actual_co2e_g`` is the plan's CO2e on it, ``oracle_co2e_g`` the best any plan could have
    done knowing it in advance, and ``regret_g`` their difference (>= 0).
    """

    job: Job
    slots: tuple[Slot, ...]
    expected_co2e_g: float
    run_now_co2e_g: float
    saving_pct: float
    oracle_co2e_g: float | None
    regret_g: float | None
    advice: tuple[str, ...]
    forecast_source: str
    actual_co2e_g: float | None = None
    run_now_actual_co2e_g: float | None = None
    energy_j: float = 0.0
    power_w: float = DEFAULT_POWER_W
    power_assumed: bool = True
    algorithm: str = "uninterruptible"
    zone_co2e_g: tuple[tuple[str, float], ...] = ()
    """Best expected CO2e per zone considered (allowed zones, then advisory ones)."""
    window: WindowStats | None = None
    """The home zone's forecast over the job's window (min, mean, max, spread)."""
    reason: str = ""
    """Why the plan starts when it does (e.g. "now is already the cleanest hour ...")."""

    @property
    def start_s(self) -> float:
        return self.slots[0].start_s

    @property
    def end_s(self) -> float:
        return self.slots[-1].end_s

    @property
    def delay_s(self) -> float:
        """How long after the earliest start the job begins."""
        return self.start_s - self.job.earliest_start_s

    @property
    def actual_saving_pct(self) -> float | None:
        if self.actual_co2e_g is None or not self.run_now_actual_co2e_g:
            return None
        return 100.0 * (1.0 - self.actual_co2e_g / self.run_now_actual_co2e_g)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plan (the ``greenforge plan --json`` contract)."""
        return {
            "job": {
                "name": self.job.name,
                "duration_s": self.job.duration_s,
                "earliest_start_s": self.job.earliest_start_s,
                "deadline_s": self.job.deadline_s,
                "earliest_start": utc_iso_seconds(self.job.earliest_start_s),
                "deadline": utc_iso_seconds(self.job.deadline_s),
                "zones": list(self.job.zones),
                "interruptible": self.job.interruptible,
            },
            "slots": [s.to_dict() for s in self.slots],
            "start": utc_iso_seconds(self.start_s),
            "end": utc_iso_seconds(self.end_s),
            "delay_s": self.delay_s,
            "expected_co2e_g": self.expected_co2e_g,
            "run_now_co2e_g": self.run_now_co2e_g,
            "saving_pct": self.saving_pct,
            "actual_co2e_g": self.actual_co2e_g,
            "run_now_actual_co2e_g": self.run_now_actual_co2e_g,
            "actual_saving_pct": self.actual_saving_pct,
            "oracle_co2e_g": self.oracle_co2e_g,
            "regret_g": self.regret_g,
            "energy_j": self.energy_j,
            "power_w": self.power_w,
            "power_assumed": self.power_assumed,
            "algorithm": self.algorithm,
            "forecast_source": self.forecast_source,
            "zone_co2e_g": dict(self.zone_co2e_g),
            "window_intensity": None if self.window is None else self.window.to_dict(),
            "reason": self.reason,
            "advice": list(self.advice),
        }


# --------------------------------------------------------------------------------------------
# Array-level building blocks (also used by the vectorised back-tester)


def window_sums(values: FloatArray, length: int) -> FloatArray:
    """Sums of every window of ``length`` consecutive values along the last axis (cumsum)."""
    if length <= 0:
        raise ValueError("window length must be >= 1")
    cum = np.cumsum(values, axis=-1)
    zero = np.zeros((*values.shape[:-1], 1))
    cum = np.concatenate([zero, cum], axis=-1)
    return np.asarray(cum[..., length:] - cum[..., :-length], dtype=np.float64)


def cheapest_steps_sum(values: FloatArray, count: int) -> FloatArray:
    """Sum of the ``count`` smallest values along the last axis (interruptible, no overhead)."""
    if count >= values.shape[-1]:
        return np.asarray(values.sum(axis=-1), dtype=np.float64)
    part = np.partition(values, count - 1, axis=-1)[..., :count]
    return np.asarray(part.sum(axis=-1), dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class _Curve:
    """Running integral of intensity (g/kWh x s) over a step-wise series."""

    knots_s: FloatArray
    cum: FloatArray

    @classmethod
    def of(cls, series: IntensitySeries) -> _Curve:
        t = series.times_s
        knots = np.append(t, t[-1] + series.step_s)
        widths = np.diff(knots)
        cum = np.concatenate(([0.0], np.cumsum(series.values_g_per_kwh * widths)))
        return cls(knots, cum)

    def integral(self, a_s: FloatArray | float, b_s: FloatArray | float) -> FloatArray:
        a = np.asarray(a_s, dtype=np.float64)
        b = np.asarray(b_s, dtype=np.float64)
        return np.asarray(
            np.interp(b, self.knots_s, self.cum) - np.interp(a, self.knots_s, self.cum),
            dtype=np.float64,
        )


def best_start(
    curve: _Curve,
    earliest_s: float,
    deadline_s: float,
    duration_s: float,
    bounds_s: Sequence[float] | None = None,
    power_w: Sequence[float] | None = None,
) -> tuple[float, float]:
    """Exact best start of an uninterruptible run: ``(start_s, cost)``.

    Power ``power_w[j]`` holds over work time ``[bounds_s[j], bounds_s[j + 1])`` (default: one
    segment of 1 W, so the cost is the integral of intensity, g/kWh x s; with watts the cost
    is in W x s x g/kWh, i.e. divide by ``J_PER_KWH`` for grams). The cost is
    piecewise linear in the start, with breakpoints where a segment edge meets a knot of the
    forecast, so the optimum is among those candidates. Ties go to the earliest start (run
    sooner when it costs nothing).
    """
    bounds = [0.0, duration_s] if bounds_s is None else list(bounds_s)
    powers = [1.0] if power_w is None else list(power_w)
    latest = deadline_s - duration_s
    knots = curve.knots_s
    lo = int(np.searchsorted(knots, earliest_s, side="left"))
    hi = int(np.searchsorted(knots, deadline_s, side="right"))
    local = knots[lo:hi]
    parts = [np.array([earliest_s, latest])] + [local - b for b in bounds]
    cand = np.concatenate(parts)
    cand = cand[(cand >= earliest_s - _EPS_S) & (cand <= latest + _EPS_S)]
    cand = np.unique(np.clip(cand, earliest_s, latest))
    cost = np.zeros(cand.shape)
    for j, p in enumerate(powers):
        if p:
            cost += p * curve.integral(cand + bounds[j], cand + bounds[j + 1])
    best = float(np.min(cost))
    tol = 1e-9 * max(abs(best), 1.0)
    idx = int(np.flatnonzero(cost <= best + tol)[0])
    return float(cand[idx]), float(cost[idx])


# --------------------------------------------------------------------------------------------
# Plan evaluation


def _slot_overhead_s(job: Job, slots: Sequence[Slot], i: int) -> float:
    """Extra running time at the start of chunk ``i`` (resume, plus migration)."""
    if i == 0:
        return 0.0
    extra = job.checkpoint_overhead_s
    if slots[i].zone != slots[i - 1].zone:
        extra += job.migration_cost_s
    return min(extra, slots[i].duration_s)


def _power_pieces(job: Job, slots: Sequence[Slot]) -> list[tuple[int, float, float, float]]:
    """``(slot index, start_s, end_s, power_w)`` pieces of constant power along the plan.

    Work advances the job's progress through its power profile; resume/migration overhead at
    the start of a chunk runs at the power of the progress it resumes from.
    """
    bounds, powers = job.power_segments()

    def power_at(progress: float) -> float:
        j = int(np.searchsorted(bounds, progress, side="right")) - 1
        return powers[min(max(j, 0), len(powers) - 1)]

    pieces: list[tuple[int, float, float, float]] = []
    progress = 0.0
    for i, slot in enumerate(slots):
        over = _slot_overhead_s(job, slots, i)
        if over > 0:
            pieces.append((i, slot.start_s, slot.start_s + over, power_at(progress)))
        t = slot.start_s + over
        work = slot.end_s - t
        end_progress = min(progress + work, job.duration_s)
        for j, p in enumerate(powers):
            a = max(bounds[j], progress)
            b = min(bounds[j + 1], end_progress)
            if b > a:
                pieces.append((i, t + (a - progress), t + (b - progress), p))
        progress = end_progress
    return pieces


def _slots_co2e_g(slots: Sequence[Slot], curves: Mapping[str, _Curve], job: Job) -> float:
    """CO2e of running ``slots`` (plus per-resumption energy lumps), exactly integrated."""
    total = 0.0
    for i, start, end, power in _power_pieces(job, slots):
        total += power * float(curves[slots[i].zone].integral(start, end)) / J_PER_KWH
    for i in range(1, len(slots)):
        lump_j = job.checkpoint_overhead_j
        if slots[i].zone != slots[i - 1].zone:
            lump_j += job.migration_cost_j
        if lump_j > 0:
            slot = slots[i]
            point = float(curves[slot.zone].integral(slot.start_s, slot.start_s + 1.0))
            total += lump_j * point / J_PER_KWH
    return total


def slots_co2e_g(
    job: Job, slots: Sequence[Slot], intensity: Mapping[str, IntensitySeries]
) -> float:
    """CO2e (g) of running ``job`` in ``slots`` on ``intensity`` (one series per zone used),
    resumption overheads included: how another plan's slots fare on other data."""
    curves = {s.zone: _Curve.of(intensity[s.zone]) for s in slots}
    return _slots_co2e_g(slots, curves, job)


def _slots_energy_j(slots: Sequence[Slot], job: Job) -> float:
    energy = sum((end - start) * power for _, start, end, power in _power_pieces(job, slots))
    for i in range(1, len(slots)):
        energy += job.checkpoint_overhead_j
        if slots[i].zone != slots[i - 1].zone:
            energy += job.migration_cost_j
    return energy


# --------------------------------------------------------------------------------------------
# Interruptible / multi-zone dynamic programme


def _resolution(job: Job, step_s: float, n_zones: int) -> float:
    """DP time resolution: the forecast step, refined so durations and overheads fit it."""
    quantities = [
        job.duration_s,
        job.checkpoint_overhead_s,
        job.min_chunk_s,
        job.migration_cost_s,
    ]
    chosen = step_s
    for m in (1, 2, 3, 4, 6, 12):
        r = step_s / m
        if all(abs(q / r - round(q / r)) < 1e-6 for q in quantities):
            chosen = r
            break
    # keep the DP within its cell budget: coarsen when the window is long
    while True:
        t_units = job.window_s / chosen
        k_units = job.duration_s / chosen
        l_units = max(job.min_chunk_s / chosen, 1.0)
        if t_units * n_zones * (k_units + 1) * (l_units + 1) <= _MAX_DP_CELLS:
            return chosen
        chosen *= 2.0


def _ceil_units(seconds: float, r: float) -> int:
    return math.ceil(seconds / r - 1e-9)


def _unit_powers(job: Job, r: float, k_need: int) -> FloatArray:
    """Mean power (W) of each DP work unit ``[k r, (k + 1) r)`` of progress."""
    bounds, powers = job.power_segments()
    b = np.asarray(bounds)
    p = np.asarray(powers)
    energy_at = np.concatenate(([0.0], np.cumsum(p * np.diff(b))))
    edges = np.minimum(r * np.arange(k_need + 1, dtype=np.float64), job.duration_s)
    energy = np.interp(edges, b, energy_at)
    widths = np.diff(edges)
    mean = np.where(widths > 0, np.diff(energy) / np.where(widths > 0, widths, 1.0), p[-1])
    return np.asarray(mean, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class _Grid:
    """The DP's grid: forecast steps in time, ``ms[t]`` units of progress in step ``t``.

    Time moves in forecast steps (the intensity is constant inside one; the first and last
    may be partial, from the earliest start and up to the deadline), progress in units of
    ``r`` seconds, so overheads shorter than a step count exactly while the Python loop runs
    once per forecast step, not once per minute.
    """

    ms: npt.NDArray[np.int64]
    k_need: int
    lmin: int
    over: int
    mig: int
    edges: FloatArray
    cost: FloatArray
    """(step, zone): g per W of job power for one unit of progress."""
    lump_c: FloatArray
    """(step, zone): g of the per-resume energy lump."""
    lump_m: FloatArray
    """(step, zone): g of the per-resume lump plus the migration lump."""
    cum_pw: FloatArray
    """Power (W) summed over progress units ``[0, k)``, for ``k = 0 .. k_need``."""
    step_pw: FloatArray
    """``step_pw[t, k]``: power summed over the units step ``t`` runs from progress ``k``
    (capped at the job's end)."""


_Move = tuple[int, str]
"""(units of progress lost, "same" | "other" | "any" zone): one way to resume."""


def _dp_grid(
    job: Job,
    zones: Sequence[str],
    series: Mapping[str, IntensitySeries],
    curves: Mapping[str, _Curve],
) -> _Grid | None:
    step_s = min(series[z].step_s for z in zones)
    m = max(round(step_s / _resolution(job, step_s, len(zones))), 1)
    r = step_s / m
    phase = float(series[zones[0]].times_s[0])
    first = phase + math.ceil((job.earliest_start_s - phase) / r - 1e-9) * r
    last = phase + math.floor((job.deadline_s - phase) / r + 1e-9) * r
    inner = phase + math.ceil((first - phase) / step_s + 1e-9) * step_s  # next step boundary
    bounds = [first, *np.arange(inner, last - r / 2, step_s).tolist(), last]
    edges: FloatArray = np.asarray(bounds, dtype=np.float64)
    ms = np.round(np.diff(edges) / r).astype(np.int64)
    keep = np.concatenate(([True], ms > 0))
    edges, ms = edges[keep], ms[ms > 0]
    k_need = _ceil_units(job.duration_s, r)
    if ms.size == 0 or k_need <= 0 or int(ms.sum()) < k_need:
        return None
    integral = np.stack([curves[z].integral(edges[:-1], edges[1:]) for z in zones]).T
    mean_g_per_kwh = integral / np.diff(edges)[:, None]
    cum_pw = np.concatenate(([0.0], np.cumsum(_unit_powers(job, r, k_need))))
    ks = np.arange(k_need)
    step_pw = cum_pw[np.minimum(ks[None, :] + ms[:, None], k_need)] - cum_pw[ks][None, :]
    return _Grid(
        ms=ms,
        k_need=k_need,
        lmin=min(max(1, _ceil_units(job.min_chunk_s, r)), k_need),
        over=_ceil_units(job.checkpoint_overhead_s, r),
        mig=_ceil_units(job.migration_cost_s, r),
        edges=edges,
        cost=integral / ms[:, None] / J_PER_KWH,
        lump_c=job.checkpoint_overhead_j * mean_g_per_kwh / J_PER_KWH,
        lump_m=(job.checkpoint_overhead_j + job.migration_cost_j) * mean_g_per_kwh / J_PER_KWH,
        cum_pw=cum_pw,
        step_pw=np.asarray(step_pw, dtype=np.float64),
    )


def _moves(job: Job, g: _Grid, n_z: int) -> list[_Move]:
    if n_z == 1 or (g.mig == 0 and job.migration_cost_j == 0):
        return [(g.over, "any")]  # moving is free: resume from the best zone
    return [(g.over, "same"), (g.over + g.mig, "other")]


def _resume_sources(paused: FloatArray, kind: str) -> FloatArray:
    """(zone, k): the paused cost a chunk in each zone can resume from, by kind of move."""
    if kind == "same":
        return paused
    if kind == "any":
        return np.asarray(paused.min(axis=0, keepdims=True), dtype=np.float64)
    two = np.partition(paused, 1, axis=0) if paused.shape[0] > 2 else np.sort(paused, axis=0)
    return np.asarray(np.where(paused <= two[0], two[1], two[0]), dtype=np.float64)


def _starts(g: _Grid, paused: FloatArray, moves: Sequence[_Move], t: int) -> FloatArray:
    """(zone, s): the cheapest way to begin a chunk at progress ``s`` in each zone in step
    ``t`` (fresh at s = 0 for nothing; resuming from progress k starts at max(k - lost, 0))."""
    n_z, k_need = paused.shape
    start = np.full((n_z, k_need), np.inf)
    start[:, 0] = 0.0
    if k_need < 2:  # nothing to resume: every chunk is the whole job
        return start
    for lose, kind in moves:
        src = _resume_sources(paused[:, 1:], kind)  # progress 1 .. k_need - 1
        lump = (g.lump_m if kind == "other" else g.lump_c)[t]
        if lose >= 1:  # every progress <= lose restarts from 0
            head = src[:, : min(lose, k_need - 1)].min(axis=1) + lump
            np.minimum(start[:, 0], head, out=start[:, 0])
        n_tail = k_need - 1 - lose
        if n_tail > 0:  # progress k > lose restarts from k - lose
            dest = start[:, 1 : 1 + n_tail]
            np.minimum(dest, src[:, lose:] + lump[:, None], out=dest)
    return start


def _dp_plan(
    job: Job,
    zones: Sequence[str],
    series: Mapping[str, IntensitySeries],
    curves: Mapping[str, _Curve],
) -> list[Slot] | None:
    """Interruptible/multi-zone DP; ``None`` when no chunked plan fits on the DP grid.

    State at each step boundary: running (zone, progress k, units of the current chunk capped
    at the minimum chunk) or paused (zone, progress). One numpy pass per forecast step moves
    every state; resuming in another zone takes the cheapest paused state of the *other* zones
    from the two smallest values per progress (no zone x zone loop).
    """
    g = _dp_grid(job, zones, series, curves)
    if g is None:
        return None
    n_steps, n_z = g.cost.shape
    k_need, lmin = g.k_need, g.lmin
    inf = np.inf
    run_hist = np.full((n_steps + 1, n_z, k_need, lmin + 1), inf)  # ran during step t - 1
    idle_hist = np.full((n_steps + 1, n_z, k_need), inf)  # paused during step t - 1
    fin_hist = np.full((n_steps, n_z), inf)  # the job finished inside step t
    moves = _moves(job, g, n_z)
    ll = np.arange(lmin + 1)
    for t in range(n_steps):
        m = int(g.ms[t])
        n_go = k_need - m  # a step from progress k < n_go does not finish the job
        lm = min(m, lmin)
        k_fin = np.arange(max(n_go, 0), k_need)  # a step from these finishes it
        ok_run = (ll[None, :] >= 1) & (ll[None, :] + (k_need - k_fin)[:, None] >= lmin)
        ok_start = (k_need - k_fin) >= lmin  # the last chunk is long enough
        run = run_hist[t]
        new = run_hist[t + 1]
        ck = g.cost[t][:, None] * g.step_pw[t][None, :]  # (zone, k): one step from progress k
        paused = idle_hist[t + 1]
        np.minimum(idle_hist[t], run[:, :, lmin], out=paused)
        paused[:, 0] = inf
        start = _starts(g, paused, moves, t)
        if n_go > 0:  # a chunk starts in this step
            np.minimum(new[:, m:, lm], start[:, :n_go] + ck[:, :n_go], out=new[:, m:, lm])
        if n_go > 1:  # a chunk goes on (its length grows, capped at lmin)
            src = run[:, 1:n_go, :] + ck[:, 1:n_go, None]
            dest = new[:, 1 + m :, :]
            if m < lmin:
                np.minimum(
                    dest[:, :, 1 + m :], src[:, :, 1 : lmin + 1 - m], out=dest[:, :, 1 + m :]
                )
            capped = src[:, :, max(lmin + 1 - m, 1) :].min(axis=2)
            np.minimum(dest[:, :, lmin], capped, out=dest[:, :, lmin])
        fin_s = np.where(ok_start[None, :], start[:, k_fin] + ck[:, k_fin], inf).min(axis=1)
        fin_r = np.where(ok_run[None], run[:, k_fin, :] + ck[:, k_fin, None], inf)
        np.minimum(fin_s, fin_r.reshape(n_z, -1).min(axis=1), out=fin_hist[t])
    done = float(np.min(fin_hist))
    if not math.isfinite(done):
        return None
    tol = 1e-12 * max(abs(done), 1.0)
    t_end, z_end = divmod(int(np.flatnonzero(fin_hist.ravel() <= done + tol)[0]), n_z)
    chunks = _backtrack(g, run_hist, idle_hist, moves, t_end, z_end, done)
    slots = [Slot(float(g.edges[a]), float(g.edges[b]), zones[z]) for z, a, b in chunks]
    return _trim(slots, job, curves)


def _better(a: float, b: float) -> bool:
    """``a`` is (numerically) strictly below ``b``; ``b`` may be infinite."""
    if not math.isfinite(b):
        return math.isfinite(a)
    return a < b - 1e-12 * max(abs(b), 1.0)


def _close(a: float, b: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)


def _step_cost(g: _Grid, t: int, z: int, k: int) -> float:
    """Cost of one step in zone ``z`` from progress ``k`` (the units it runs, capped)."""
    return float(g.cost[t, z] * g.step_pw[t, k])


def _backtrack(
    g: _Grid,
    run_hist: FloatArray,
    idle_hist: FloatArray,
    moves: Sequence[_Move],
    t_end: int,
    zone: int,
    done: float,
) -> list[tuple[int, int, int]]:
    """Recover the chunks ``(zone, first step, end step)`` of the optimal DP path by matching
    the stored costs against each possible predecessor (walking back from the finish)."""
    k_need, lmin = g.k_need, g.lmin
    chunks: list[tuple[int, int, int]] = []
    chunk_end = t_end + 1
    state: tuple[str, int, int, int, float] | None = None  # (kind, t, zone, progress, value)
    t, z = t_end, zone
    for k in range(
        max(k_need - int(g.ms[t]), 0), k_need
    ):  # the finishing step: a chunk under way ...
        c = _step_cost(g, t, z, k)
        for ll in range(1, lmin + 1):
            if k >= 1 and ll + k_need - k >= lmin and _close(done, run_hist[t, z, k, ll] + c):
                state = ("run", t, z, k * (lmin + 1) + ll, float(run_hist[t, z, k, ll]))
                break
        if state is None and k_need - k >= lmin:  # ... or one that began in it
            state = (
                ("start", t, z, k, done - c)
                if k == 0 or _resumable(g, idle_hist, moves, t, z, k, done - c)
                else None
            )
        if state is not None:
            break
    while state is not None:
        kind, t, z, key, value = state
        state = None
        if kind == "run":  # ran during step t - 1, now at progress k with chunk length ll
            k, ll = divmod(key, lmin + 1)
            m = int(g.ms[t - 1])
            prev_k = k - m
            c = _step_cost(g, t - 1, z, prev_k)
            if prev_k >= 1:
                prevs = [ll - m] if ll < lmin else range(max(lmin - m, 1), lmin + 1)
                for pl in prevs:
                    if pl >= 1 and _close(value, run_hist[t - 1, z, prev_k, pl] + c):
                        v = float(run_hist[t - 1, z, prev_k, pl])
                        state = ("run", t - 1, z, prev_k * (lmin + 1) + pl, v)
                        break
            if state is None and ll == min(m, lmin):
                state = ("start", t - 1, z, prev_k, value - c)
        elif kind == "start":  # a chunk begins at progress `key` in step t
            chunks.append((z, t, chunk_end))
            if key == 0:
                return chunks[::-1]
            source = _resumable(g, idle_hist, moves, t, z, key, value)
            if source is not None:
                zi, k = source
                state = ("paused", t, zi, k, float(idle_hist[t + 1, zi, k]))
        else:  # paused, available to step t
            if _close(value, run_hist[t, z, key, lmin]):
                chunk_end = t
                state = ("run", t, z, key * (lmin + 1) + lmin, float(run_hist[t, z, key, lmin]))
            elif _close(value, idle_hist[t, z, key]):
                state = ("paused", t - 1, z, key, float(idle_hist[t, z, key]))
    raise RuntimeError("planner DP backtrack failed")  # pragma: no cover


def _resumable(
    g: _Grid,
    idle_hist: FloatArray,
    moves: Sequence[_Move],
    t: int,
    z: int,
    s: int,
    value: float,
) -> tuple[int, int] | None:
    """The paused (zone, progress) a chunk beginning at progress ``s`` in zone ``z`` during
    step ``t`` resumed from, given the chunk's start cost ``value``."""
    paused = idle_hist[t + 1]
    n_z = paused.shape[0]
    for lose, kind in moves:
        lump = float((g.lump_m if kind == "other" else g.lump_c)[t, z])
        zs = [z] if kind == "same" else [zi for zi in range(n_z) if kind == "any" or zi != z]
        ks = range(1, g.k_need) if s == 0 else [s + lose]
        for zi in zs:
            for k in ks:
                if k < g.k_need and max(k - lose, 0) == s and _close(value, paused[zi, k] + lump):
                    return zi, k
    return None


def _trim(slots: list[Slot], job: Job, curves: Mapping[str, _Curve]) -> list[Slot]:
    """Shorten chunks so the total running time is exactly what the job needs.

    The DP rounds durations and overheads up to its grid; the excess is cut from the chunk
    edge where it saves the most, keeping every chunk at least ``min_chunk_s`` long.
    """
    needed = job.duration_s
    for i in range(1, len(slots)):
        needed += job.checkpoint_overhead_s
        if slots[i].zone != slots[i - 1].zone:
            needed += job.migration_cost_s
    excess = sum(s.duration_s for s in slots) - needed
    while excess > _EPS_S:
        best: tuple[float, int, Slot] | None = None
        for i, s in enumerate(slots):
            floor = max(job.min_chunk_s, job.checkpoint_overhead_s if i else 0.0, _EPS_S)
            cut = min(excess, s.duration_s - floor)
            if cut <= _EPS_S:
                continue
            curve = curves[s.zone]
            for cand in (
                Slot(s.start_s + cut, s.end_s, s.zone),
                Slot(s.start_s, s.end_s - cut, s.zone),
            ):
                saved = float(
                    curve.integral(s.start_s, s.end_s) - curve.integral(cand.start_s, cand.end_s)
                )
                if best is None or saved > best[0]:
                    best = (saved, i, cand)
        if best is None:  # pragma: no cover - chunks cannot shrink further
            break
        _, i, cand = best
        excess -= slots[i].duration_s - cand.duration_s
        slots[i] = cand
    return slots


# --------------------------------------------------------------------------------------------
# Entry point


def _check_series(job: Job, zone: str, series: IntensitySeries, role: str) -> None:
    if len(series) == 0:
        raise DataError(f"the {role} for {zone!r} is empty.")
    if series.start_s > job.earliest_start_s + _EPS_S or series.end_s < job.deadline_s - _EPS_S:
        raise InfeasibleError(
            f"the {role} for {zone!r} covers {utc_iso_seconds(series.start_s)} to {utc_iso_seconds(series.end_s)}, "
            f"shorter than the job's window {utc_iso_seconds(job.earliest_start_s)} to "
            f"{utc_iso_seconds(job.deadline_s)}; give a longer {role} or an earlier deadline."
        )
    lo = int(np.searchsorted(series.times_s, job.earliest_start_s, side="right")) - 1
    hi = int(np.searchsorted(series.times_s, job.deadline_s, side="left"))
    window = series.values_g_per_kwh[max(lo, 0) : hi]
    if not np.all(np.isfinite(window)):
        raise DataError(
            f"the {role} for {zone!r} has missing (NaN) or infinite values inside the job's "
            "window; fill the gaps or choose another forecast."
        )


def _optimise(
    job: Job,
    series: Mapping[str, IntensitySeries],
    curves: Mapping[str, _Curve],
) -> tuple[list[Slot], float, str, dict[str, float]]:
    """Best slots for ``job`` on ``series``: (slots, CO2e g, algorithm, best per zone)."""
    per_zone: dict[str, float] = {}
    best_slots: list[Slot] | None = None
    best_cost = math.inf
    bounds, powers = job.power_segments()
    for zone in job.zones:
        start, integral = best_start(
            curves[zone], job.earliest_start_s, job.deadline_s, job.duration_s, bounds, powers
        )
        cost = integral / J_PER_KWH
        per_zone[zone] = cost
        if cost < best_cost - 1e-12 * max(best_cost, 1.0) or best_slots is None:
            best_slots, best_cost = [Slot(start, start + job.duration_s, zone)], cost
    algorithm = "uninterruptible" if len(job.zones) == 1 else "uninterruptible, best zone"
    assert best_slots is not None
    if job.interruptible:
        dp = _dp_plan(job, job.zones, series, curves)
        if dp is not None:
            dp_cost = _slots_co2e_g(dp, curves, job)
            if dp_cost < best_cost - 1e-9 * max(best_cost, 1.0):
                best_slots, best_cost = dp, dp_cost
                algorithm = "interruptible" if len(job.zones) == 1 else "interruptible, multi-zone"
    return best_slots, best_cost, algorithm, per_zone


def plan_job(
    job: Job,
    forecasts: Mapping[str, IntensitySeries],
    *,
    actual: Mapping[str, IntensitySeries] | None = None,
) -> Plan:
    """Plan ``job`` on ``forecasts`` (one series per zone).

    Zones in ``forecasts`` that the job may not use are only compared in the advice. With
    ``actual`` (the intensity that really happened), the plan also reports its actual CO2e,
    the oracle (perfect-knowledge) CO2e and the regret.
    """
    for zone in job.zones:
        if zone not in forecasts:
            raise UnknownZoneError(
                zone,
                forecasts.keys(),
                f"the forecasts given to the planner (they cover {', '.join(forecasts)})",
            )
        _check_series(job, zone, forecasts[zone], "forecast")
    power_w = job.effective_power_w
    curves = {z: _Curve.of(s) for z, s in forecasts.items()}
    slots, cost, algorithm, per_zone = _optimise(job, forecasts, curves)
    home = job.zones[0]
    now_slot = [Slot(job.earliest_start_s, job.earliest_start_s + job.duration_s, home)]
    run_now = _slots_co2e_g(now_slot, curves, job)
    saving = 100.0 * (1.0 - cost / run_now) if run_now > 0 else 0.0

    actual_cost = oracle = regret = run_now_actual = None
    if actual is not None:
        for zone in job.zones:
            if zone not in actual:
                raise UnknownZoneError(
                    zone,
                    actual.keys(),
                    f"the actual intensity given (it covers {', '.join(actual)})",
                )
            _check_series(job, zone, actual[zone], "actual intensity")
        a_curves = {z: _Curve.of(actual[z]) for z in job.zones}
        actual_cost = _slots_co2e_g(slots, a_curves, job)
        run_now_actual = _slots_co2e_g(now_slot, a_curves, job)
        _, o_cost, _, _ = _optimise(job, actual, a_curves)
        # the plan itself is a feasible candidate: the oracle can never do worse than it
        oracle = min(o_cost, actual_cost)
        regret = actual_cost - oracle

    others: dict[str, float] = {}
    bounds, powers = job.power_segments()
    for zone, s in forecasts.items():
        if zone in job.zones:
            continue
        try:
            _check_series(job, zone, s, "forecast")
        except (DataError, InfeasibleError):
            continue
        _, integral = best_start(
            curves[zone], job.earliest_start_s, job.deadline_s, job.duration_s, bounds, powers
        )
        others[zone] = integral / J_PER_KWH

    stats = window_stats(job, forecasts[home])
    starts_later = slots[0].start_s - job.earliest_start_s > _EPS_S
    advice = _advice(
        job, forecasts, stats, cost, run_now, saving, per_zone, others, len(slots), starts_later
    )
    reason = _reason(job, forecasts[home], stats, slots, cost, run_now, saving)
    zone_co2e = tuple(per_zone.items()) + tuple(sorted(others.items(), key=lambda kv: kv[1]))
    sources = sorted({forecasts[z].source for z in job.zones})
    return Plan(
        job=job,
        slots=tuple(slots),
        expected_co2e_g=cost,
        run_now_co2e_g=run_now,
        saving_pct=saving,
        oracle_co2e_g=oracle,
        regret_g=regret,
        advice=tuple(advice),
        forecast_source=", ".join(sources),
        actual_co2e_g=actual_cost,
        run_now_actual_co2e_g=run_now_actual,
        energy_j=_slots_energy_j(slots, job),
        power_w=power_w,
        power_assumed=job.power_assumed,
        algorithm=algorithm,
        zone_co2e_g=zone_co2e,
        window=stats,
        reason=reason,
    )


def window_stats(job: Job, series: IntensitySeries) -> WindowStats | None:
    """The forecast of ``series`` over the job's window (min, mean, max, value now), g/kWh;
    ``None`` when no step of it falls in the window."""
    times = series.times_s
    lo = max(int(np.searchsorted(times, job.earliest_start_s, side="right")) - 1, 0)
    hi = int(np.searchsorted(times, job.deadline_s, side="left"))
    window = series.values_g_per_kwh[lo:hi]
    if window.size == 0 or not np.all(np.isfinite(window)):
        return None
    i = int(np.argmin(window))
    return WindowStats(
        zone=series.zone,
        min_g_per_kwh=float(window[i]),
        mean_g_per_kwh=float(np.mean(window)),
        max_g_per_kwh=float(np.max(window)),
        now_g_per_kwh=float(window[0]),
        min_at_s=max(float(times[lo + i]), job.earliest_start_s),
    )


def _span(stats: WindowStats) -> str:
    return (
        f"{stats.min_g_per_kwh:.0f}-{stats.max_g_per_kwh:.0f} g/kWh over the window, "
        f"spread {stats.spread_pct:.0f} %"
    )


def _why_not_later(
    job: Job, home: IntensitySeries, stats: WindowStats | None, *, starts_later: bool = False
) -> str:
    """Why the home zone offers (almost) nothing better than starting at the earliest start
    (``starts_later``: the plan still waits, for a slightly cleaner stretch)."""
    if home.kind in ("annual", "static"):
        return (
            f"the forecast for {job.zones[0]} is {home.kind} ({home.source}), one value "
            "with no hourly variation; use an hourly source (a live provider or --file) "
            "to find cleaner hours"
        )
    if job.window_s < 1.25 * job.duration_s:
        return (
            f"the job ({job.duration_s / 3600:.3g} h) fills most of its window "
            f"({job.window_s / 3600:.3g} h), so there is little room to move it"
        )
    if stats is None:
        return "the forecast shows no cleaner window before the deadline"
    if stats.spread_pct < FLAT_SPREAD_PCT:
        now = ", and now is its cleanest hour" if stats.now_is_cleanest else ""
        return f"the grid in {job.zones[0]} is flat over the window ({_span(stats)}){now}"
    if stats.now_is_cleanest and starts_later:
        return (
            f"now is the cleanest single hour ({stats.now_g_per_kwh:.0f} g/kWh), but a "
            f"{job.duration_s / 3600:.3g} h run averages slightly less starting later; "
            f"{_span(stats)}"
        )
    if stats.now_is_cleanest:
        return (
            f"now is already the cleanest hour in the window ({stats.now_g_per_kwh:.0f} g/kWh; "
            f"{_span(stats)})"
        )
    cleanest = (
        f"the cleanest hour ({stats.min_g_per_kwh:.0f} g/kWh at {utc_iso_seconds(stats.min_at_s)})"
    )
    if stats.min_at_s < job.earliest_start_s + job.duration_s - _EPS_S:
        return f"a run that starts now already takes in {cleanest} ({_span(stats)})"
    return (
        f"no {job.duration_s / 3600:.3g} h stretch before the deadline is much cleaner than "
        f"starting now: {cleanest} is too short a dip ({_span(stats)})"
    )


def _reason(
    job: Job,
    home: IntensitySeries,
    stats: WindowStats | None,
    slots: Sequence[Slot],
    cost: float,
    run_now: float,
    saving: float,
) -> str:
    """One sentence: why the plan starts when (and where) it does."""
    first = slots[0]
    at_once = abs(first.start_s - job.earliest_start_s) <= _EPS_S and first.zone == job.zones[0]
    if at_once and len(slots) == 1:
        return f"starts at the earliest start: {_why_not_later(job, home, stats)}"
    where = "" if first.zone == job.zones[0] else f" in {first.zone}"
    wait = first.start_s - job.earliest_start_s
    when = "at the earliest start" if wait <= _EPS_S else f"after {wait / 3600:.3g} h"
    chunks = f" in {len(slots)} chunks" if len(slots) > 1 else ""
    span = f"; {job.zones[0]}: {_span(stats)}" if stats is not None else ""
    return (
        f"starts {when}{where}{chunks}: {cost:.4g} g instead of {run_now:.4g} g running now "
        f"({saving:.1f} % less{span})"
    )


def _advice(
    job: Job,
    forecasts: Mapping[str, IntensitySeries],
    stats: WindowStats | None,
    cost: float,
    run_now: float,
    saving: float,
    per_zone: Mapping[str, float],
    others: Mapping[str, float],
    n_slots: int,
    starts_later: bool = False,
) -> list[str]:
    out: list[str] = []
    if job.power_assumed:
        out.append(
            f"power unknown: CO2e figures assume {DEFAULT_POWER_W / 1000:g} kW and scale with "
            "the job's real power (pass power_w / --power); the chosen slots do not depend on it."
        )
    if saving < LOW_SAVING_PCT:
        why = _why_not_later(job, forecasts[job.zones[0]], stats, starts_later=starts_later)
        out.append(f"time-shifting saves only {saving:.1f} % here: {why}.")
        alt = {z: c for z, c in {**per_zone, **others}.items() if z != job.zones[0]}
        if alt:
            zone, alt_cost = min(alt.items(), key=lambda kv: kv[1])
            if alt_cost < cost:
                allowed = "an allowed zone" if zone in per_zone else "a zone not in the job's list"
                out.append(
                    f"running in {zone} ({allowed}) would emit {alt_cost:.4g} g instead of "
                    f"{cost:.4g} g ({100 * (1 - alt_cost / run_now):.0f} % less than running "
                    "now at home)."
                )
        elif not job.interruptible:
            out.append(
                "allowing more zones (or an interruptible job with checkpoints) may save more."
            )
    if n_slots > 1:
        out.append(f"the job runs in {n_slots} chunks; it must checkpoint and resume.")
    return out
