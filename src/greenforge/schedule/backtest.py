"""Back-testing: replay history with a forecaster and the planner, and count what it saved.

A job of ``job_hours`` arrives at every step of the history and must finish within
``job_hours + slack_hours``. At each arrival the forecaster is given **only the values before
the arrival** (a copied ``(N, L)`` matrix built by index arithmetic that never reaches past the
decision time - see :class:`~greenforge.schedule.forecast.ForecastInput`), the planner picks the
start (or, for interruptible jobs, the cheapest steps) on that forecast, and the choice is
charged at the *actual* intensity. Three totals per zone and job shape:

* run now - every job starts at its arrival;
* planned - the forecaster's choices;
* oracle - the best choices knowing the actual intensity.

``saving_pct = 100 x (1 - planned / run now)``, ``oracle_saving_pct`` likewise, and
``captured = saving_pct / oracle_saving_pct``. Everything is vectorised across arrivals.

Two policies (``POLICIES``):

* ``once`` - plan at arrival on that forecast and stick to it;
* ``replan`` - re-plan at every step while waiting, each time on a fresh forecast from the data
  seen so far: an uninterruptible job starts at the first step whose plan says "start now"
  (or when its slack is used up); an interruptible job runs a step when that step is among the
  cheapest forecast steps it still needs. The deadline holds either way.
Interruptible back-tests use zero checkpoint overhead and one-step chunks (then the optimum is
the cheapest steps of the window); the planner's DP handles overheads for single plans.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from greenforge.errors import ConfigError, DataError
from greenforge.grid.series import IntensitySeries
from greenforge.jsonsafe import finite_or_none
from greenforge.schedule.forecast import Forecaster, ForecastInput, trained_in_sample
from greenforge.schedule.planner import cheapest_steps_sum, window_sums
from greenforge.timeutil import utc_iso_seconds

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_CHUNK = 4096
"""Most arrivals forecast per vectorised call."""
_CHUNK_CELLS = 1 << 22
"""Arrivals are replayed in blocks of at most this many history + horizon cells (32 MiB per
matrix): memory stays bounded whatever the length of the data or its step."""
POLICIES = ("once", "replan")


@dataclasses.dataclass(frozen=True)
class JobShape:
    """A job length and how long it may wait."""

    job_hours: float
    slack_hours: float

    def __post_init__(self) -> None:
        if not self.job_hours > 0:
            raise ConfigError(f"job length must be > 0 h, got {self.job_hours!r} h.")
        if not self.slack_hours >= 0:
            raise ConfigError(f"slack must be >= 0 h, got {self.slack_hours!r} h.")

    def steps(self, step_s: float) -> tuple[int, int]:
        """(job steps, slack steps) on a grid of ``step_s``; both must be whole steps."""
        d = self.job_hours * 3600.0 / step_s
        s = self.slack_hours * 3600.0 / step_s
        if abs(d - round(d)) > 1e-9 or abs(s - round(s)) > 1e-9:
            raise ConfigError(
                f"job {self.job_hours:g} h / slack {self.slack_hours:g} h are not whole "
                f"multiples of the data's {step_s / 60:g}-minute step; pick lengths that are."
            )
        return round(d), round(s)


@dataclasses.dataclass(frozen=True)
class ShapeResult:
    """Totals of one back-test: one zone, forecaster, job shape and policy."""

    zone: str
    forecaster: str
    job_hours: float
    slack_hours: float
    interruptible: bool
    policy: str
    arrivals: int
    first_arrival_s: float
    last_arrival_s: float
    run_now_g_per_kw: float
    """Total CO2e of running every job at arrival, per kW of job power (g)."""
    planned_g_per_kw: float
    oracle_g_per_kw: float
    mean_delay_h: float
    mae_g_per_kwh: float
    mape_pct: float
    in_sample: bool = False
    """The forecaster was built from data that includes the replayed period."""

    @property
    def saving_note(self) -> str | None:
        """Why the savings are ``None`` (not applicable), or None when they are numbers."""
        if not math.isfinite(self.run_now_g_per_kw):
            return "not applicable: the total of running every job at arrival is not finite"
        if self.run_now_g_per_kw <= 0.0:
            return (
                "not applicable: running every job at arrival emits 0 g (every intensity in the "
                "windows is 0), so there is nothing to save"
            )
        return None

    def _share_pct(self, total_g_per_kw: float) -> float | None:
        if self.saving_note is not None or not math.isfinite(total_g_per_kw):
            return None
        return 100.0 * (1.0 - total_g_per_kw / self.run_now_g_per_kw)

    @property
    def saving_pct(self) -> float | None:
        """Returns % of the run-now CO2e the plan saved; None when not applicable (``saving_note``)."""
        return self._share_pct(self.planned_g_per_kw)

    @property
    def oracle_saving_pct(self) -> float | None:
        """Returns % of the run-now CO2e the oracle saved; None when not applicable."""
        return self._share_pct(self.oracle_g_per_kw)

    @property
    def captured(self) -> float | None:
        """Share of the oracle's saving that the forecaster achieved (None if oracle saves 0)."""
        oracle, saving = self.oracle_saving_pct, self.saving_pct
        if oracle is None or saving is None or not oracle > 1e-9:
            return None
        return saving / oracle

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON fields of this result; non-finite numbers are None."""
        out: dict[str, Any] = finite_or_none(self._fields())
        return out

    def _fields(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "forecaster": self.forecaster,
            "job_hours": self.job_hours,
            "slack_hours": self.slack_hours,
            "interruptible": self.interruptible,
            "policy": self.policy,
            "arrivals": self.arrivals,
            "first_arrival": utc_iso_seconds(self.first_arrival_s),
            "last_arrival": utc_iso_seconds(self.last_arrival_s),
            "saving_pct": self.saving_pct,
            "oracle_saving_pct": self.oracle_saving_pct,
            "captured": self.captured,
            "saving_note": self.saving_note,
            "run_now_co2e_g_per_kw": self.run_now_g_per_kw,
            "planned_co2e_g_per_kw": self.planned_g_per_kw,
            "oracle_co2e_g_per_kw": self.oracle_g_per_kw,
            "mean_delay_h": self.mean_delay_h,
            "mae_g_per_kwh": self.mae_g_per_kwh,
            "mape_pct": self.mape_pct,
            "in_sample": self.in_sample,
        }


@dataclasses.dataclass(frozen=True)
class BacktestResult:
    results: tuple[ShapeResult, ...]
    sources: tuple[tuple[str, str], ...]
    """(zone, source of its data)."""

    def get(self, zone: str, forecaster: str, job_hours: float, slack_hours: float) -> ShapeResult:
        for r in self.results:
            if (r.zone, r.forecaster, r.job_hours, r.slack_hours) == (
                zone,
                forecaster,
                job_hours,
                slack_hours,
            ):
                return r
        raise KeyError((zone, forecaster, job_hours, slack_hours))

    def to_dict(self) -> dict[str, Any]:
        """JSON contract of ``greenforge backtest --json`` (numbers are finite or None)."""
        return {
            "definition": (
                "saving_pct = 100 x (1 - total CO2e of planned runs / total CO2e of running "
                "every job at arrival); captured = saving_pct / oracle_saving_pct"
            ),
            "sources": dict(self.sources),
            "results": [r.to_dict() for r in self.results],
        }


def _arrivals(
    series: IntensitySeries,
    history_steps: int,
    window_steps: int,
    start_s: float | None,
    end_s: float | None,
) -> IntArray:
    t = series.times_s
    first = history_steps
    last = len(series) - window_steps  # inclusive: the window must lie inside the data
    idx = np.arange(first, last + 1, dtype=np.int64)
    if start_s is not None:
        idx = idx[t[idx] >= start_s]
    if end_s is not None:
        idx = idx[t[idx] < end_s]
    if idx.size == 0:
        span = f"{utc_iso_seconds(series.start_s)} to {utc_iso_seconds(series.end_s)}"
        raise DataError(
            f"no arrivals to replay for {series.zone!r}: the data ({span}, {len(series)} steps) "
            f"must hold {history_steps} steps of history before the first arrival and "
            f"{window_steps} steps after the last (the job's window of job + slack, and the "
            "look-ahead that re-planning the same arrivals needs), within the chosen period. "
            "Give more data (e.g. the previous year too) or a shorter period."
        )
    return idx


def _regular(series: IntensitySeries) -> None:
    if len(series) > 1 and not np.allclose(np.diff(series.times_s), series.step_s):
        raise DataError(
            f"the data for {series.zone!r} has gaps; back-tests need a regular series "
            "(load it with a fill policy, e.g. --fill interpolate)."
        )
    if not np.all(np.isfinite(series.values_g_per_kwh)):
        raise DataError(f"the data for {series.zone!r} has missing (NaN) values; fill them first.")


def _forecasts(
    series: IntensitySeries,
    forecaster: Forecaster,
    decisions: IntArray,
    horizon: int,
    need: int,
) -> tuple[FloatArray, FloatArray]:
    """(forecast, actual), each ``(len(decisions), horizon)``, for each decision index.

    The forecaster gets, per decision ``i``, a copy of ``values[i - need : i]`` only.
    """
    values = series.values_g_per_kwh
    # row j of `windows` is values[j : j + need]; row i - need ends one step before decision i
    windows = np.lib.stride_tricks.sliding_window_view(values, max(need, 1))
    lead = np.arange(horizon)
    fcs: list[FloatArray] = []
    acts: list[FloatArray] = []
    for lo in range(0, decisions.size, _CHUNK):
        idx = decisions[lo : lo + _CHUNK]
        actual = values[idx[:, None] + lead[None, :]]
        if forecaster.needs_future:
            fc = actual
        else:
            if idx[-1] - idx[0] == idx.size - 1:  # consecutive decisions: a view, copied once
                history = windows[idx[0] - need : idx[-1] - need + 1]  # by ForecastInput
            else:
                history = windows[idx - need]
            if need == 0:
                history = history[:, :0]
            inp = ForecastInput(history, series.times_s[idx], series.step_s, horizon, series.zone)
            fc = np.asarray(forecaster.predict(inp), dtype=np.float64)
            if fc.shape != actual.shape:
                raise DataError(
                    f"forecaster {forecaster.name!r} returned shape {fc.shape}, "
                    f"expected {actual.shape}."
                )
            if not np.all(np.isfinite(fc)):
                raise DataError(f"forecaster {forecaster.name!r} returned NaN or infinite values.")
        fcs.append(fc)
        acts.append(actual)
    return np.concatenate(fcs), np.concatenate(acts)


def _start_now_table(fc: FloatArray, d: int, s: int) -> npt.NDArray[np.bool_]:
    """``[t, r]``: at decision ``t`` with ``r`` steps of slack left, does the plan start now?"""
    sums = window_sums(fc[:, : d + s], d)  # (T, s + 1)
    later = np.concatenate([np.full((sums.shape[0], 1), np.inf), sums[:, 1:]], axis=1)
    best_later = np.minimum.accumulate(later, axis=1)
    return np.asarray(sums[:, [0]] <= best_later, dtype=np.bool_)


def _replan_interruptible(
    fc: FloatArray, offsets: IntArray, d: int, s: int, n: int
) -> tuple[FloatArray, IntArray]:
    """Steps run (mask ``(n, d + s)``) when each step re-decides on its fresh forecast."""
    w = d + s
    remaining = np.full(n, d, dtype=np.int64)
    run = np.zeros((n, w), dtype=np.bool_)
    first = np.full(n, w, dtype=np.int64)
    for k in range(w):
        f = fc[offsets + k, : w - k]  # forecast made at step k of every job, rest of its window
        cheaper = (f[:, 1:] < f[:, [0]]).sum(axis=1)
        go = (remaining > 0) & ((cheaper < remaining) | (remaining >= w - k))
        run[:, k] = go
        first = np.where(go & (first == w), k, first)
        remaining -= go
    return run.astype(np.float64), first


@dataclasses.dataclass
class _Totals:
    """Running sums of one job shape over blocks of arrivals (g/kWh x steps)."""

    now: float = 0.0
    planned: float = 0.0
    oracle: float = 0.0
    delay_steps: float = 0.0
    abs_error: float = 0.0
    cells: int = 0
    rel_error: float = 0.0
    rel_cells: int = 0


def _replay_block(
    totals: _Totals,
    fc_all: FloatArray,
    actual: FloatArray,
    offsets: IntArray,
    d: int,
    s: int,
    interruptible: bool,
    policy: str,
) -> None:
    """Add one block of arrivals of one job shape to ``totals``.

    ``fc_all`` holds the forecasts of every decision time of the block (for ``replan``, the
    block's arrivals and the later steps their jobs re-decide at); ``offsets`` is the row of
    each arrival in it, and ``actual`` the actual intensity from each arrival on.
    """
    n = offsets.size
    w = d + s
    a_w = actual[:, :w]
    f_w = fc_all[offsets, :w]  # the forecast made at arrival (for errors and "once")
    diff = np.abs(f_w - a_w)
    nz = a_w != 0
    totals.abs_error += float(diff.sum())
    totals.cells += int(diff.size)
    if nz.any():
        totals.rel_error += float((diff[nz] / np.abs(a_w[nz])).sum())
        totals.rel_cells += int(nz.sum())
    if interruptible:
        totals.now += float(a_w[:, :d].sum())
        totals.oracle += float(cheapest_steps_sum(a_w, d).sum())
        if policy == "once":
            chosen = np.argsort(f_w, axis=1, kind="stable")[:, :d]
            totals.planned += float(np.take_along_axis(a_w, chosen, axis=1).sum())
            totals.delay_steps += float(chosen.min(axis=1).sum())
        elif s == 0:
            totals.planned += float(a_w.sum())
        else:
            mask, first = _replan_interruptible(fc_all, offsets, d, s, n)
            totals.planned += float((a_w * mask).sum())
            totals.delay_steps += float(first.sum())
        return
    sums_a = window_sums(a_w, d)
    totals.now += float(sums_a[:, 0].sum())
    totals.oracle += float(sums_a.min(axis=1).sum())
    if policy == "once":
        start = np.argmin(window_sums(f_w, d), axis=1)
    else:
        table = _start_now_table(fc_all, d, s)
        k = np.arange(s + 1)
        go = table[offsets[:, None] + k[None, :], s - k[None, :]]
        start = np.argmax(go, axis=1)  # the last step (no slack left) always says go
    totals.planned += float(sums_a[np.arange(n), start].sum())
    totals.delay_steps += float(start.sum())


def _check_period(start_s: float | None, end_s: float | None) -> None:
    if start_s is not None and end_s is not None and not start_s < end_s:
        raise ConfigError(
            f"the back-test period starts ({utc_iso_seconds(start_s)}) at or after it ends "
            f"({utc_iso_seconds(end_s)}): the start (--from) must be before the end (--until)."
        )


def backtest_series(
    series: IntensitySeries,
    forecaster: Forecaster,
    shapes: Sequence[JobShape],
    *,
    interruptible: bool = False,
    policy: str = "once",
    history_steps: int | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
) -> list[ShapeResult]:
    """Back-test one forecaster on one zone's history for each job shape.

    ``history_steps`` (default: what the forecaster needs) sets the first arrival; pass the
    largest need of several forecasters to compare them on the same arrivals. Arrivals are
    replayed in blocks, so memory stays bounded for any length of data.
    """
    if not shapes:
        raise ConfigError("give at least one job shape (job hours x slack hours).")
    if policy not in POLICIES:
        raise ConfigError(f"unknown back-test policy {policy!r}: use one of {', '.join(POLICIES)}.")
    _check_period(start_s, end_s)
    _regular(series)
    step = series.step_s
    steps = [shape.steps(step) for shape in shapes]
    for (d, _), shape in zip(steps, shapes, strict=True):
        if d < 1:
            raise ConfigError(f"job of {shape.job_hours:g} h is shorter than one data step.")
    horizon = max(d + s for d, s in steps)
    need = forecaster.history_steps(horizon, step)
    hist_steps = max(need, history_steps or 0)
    # the same arrivals under both policies: re-planning needs forecasts up to the last
    # decision of the last job (its latest start, or its last step when interruptible)
    extra = horizon - 1 if interruptible else max(s for _, s in steps)
    arrivals = _arrivals(series, hist_steps, horizon + extra, start_s, end_s)
    n = arrivals.size
    totals = [_Totals() for _ in shapes]
    block = max(_CHUNK_CELLS // (need + horizon), 4 * (extra + 1), 64)
    for lo in range(0, n, block):
        arr = arrivals[lo : lo + block]
        if policy == "replan":
            # every step from the block's first arrival to its last job's last decision
            decisions = np.arange(int(arr[0]), int(arr[-1]) + extra + 1, dtype=np.int64)
        else:
            decisions = arr
        fc_all, act_all = _forecasts(series, forecaster, decisions, horizon, need)
        offsets = arr - arr[0]  # row of each arrival in the decision tables
        actual = act_all[offsets] if policy == "replan" else act_all
        for tot, (d, s) in zip(totals, steps, strict=True):
            _replay_block(tot, fc_all, actual, offsets, d, s, interruptible, policy)
    in_sample = _in_sample(forecaster, series, arrivals)
    per_kw = step / 3600.0  # g/kWh x step (h) x 1 kW = g per kW of job power
    return [
        ShapeResult(
            zone=series.zone,
            forecaster=forecaster.name,
            job_hours=shape.job_hours,
            slack_hours=shape.slack_hours,
            interruptible=interruptible,
            policy=policy,
            arrivals=int(n),
            first_arrival_s=float(series.times_s[arrivals[0]]),
            last_arrival_s=float(series.times_s[arrivals[-1]]),
            run_now_g_per_kw=tot.now * per_kw,
            planned_g_per_kw=tot.planned * per_kw,
            oracle_g_per_kw=tot.oracle * per_kw,
            mean_delay_h=tot.delay_steps / n * step / 3600.0,
            mae_g_per_kwh=tot.abs_error / tot.cells,
            mape_pct=tot.rel_error / tot.rel_cells * 100 if tot.rel_cells else 0.0,
            in_sample=in_sample,
        )
        for shape, tot in zip(shapes, totals, strict=True)
    ]


def _in_sample(forecaster: Forecaster, series: IntensitySeries, arrivals: IntArray) -> bool:
    """True when the forecaster was built from data of the replayed period (the embedded
    profile's years, the learned forecaster's training years: :class:`TrainedOn`)."""
    first = float(series.times_s[arrivals[0]])
    last = float(series.times_s[arrivals[-1]])
    return trained_in_sample(forecaster, series.zone, first, last + series.step_s)


def backtest(
    series_by_zone: Mapping[str, IntensitySeries],
    forecasters: Sequence[Forecaster],
    shapes: Sequence[JobShape],
    *,
    interruptible: bool = False,
    policy: str = "once",
    start_s: float | None = None,
    end_s: float | None = None,
) -> BacktestResult:
    """Back-test every forecaster on every zone, all on the same arrivals per zone."""
    if not forecasters:
        raise ConfigError("give at least one forecaster to back-test.")
    if not series_by_zone:
        raise ConfigError("give at least one zone's history to back-test.")
    _check_period(start_s, end_s)
    results: list[ShapeResult] = []
    for _zone, series in series_by_zone.items():
        step = series.step_s
        horizon = max(sum(shape.steps(step)) for shape in shapes)
        common = max(f.history_steps(horizon, step) for f in forecasters)
        for forecaster in forecasters:
            results.extend(
                backtest_series(
                    series,
                    forecaster,
                    shapes,
                    interruptible=interruptible,
                    policy=policy,
                    history_steps=common,
                    start_s=start_s,
                    end_s=end_s,
                )
            )
    sources = tuple((z, s.source) for z, s in series_by_zone.items())
    return BacktestResult(tuple(results), sources)
