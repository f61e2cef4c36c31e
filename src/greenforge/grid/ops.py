"""Pure, vectorised operations on intensity series: alignment to intervals and integration.

The series is a step function: point ``i`` holds over ``[t_i, t_i + step)``. Outside the
series' coverage the nearest edge value is held (callers that care check coverage first).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from greenforge.errors import ConfigError, DataError
from greenforge.grid.series import BoolArray, IntensitySeries
from greenforge.units import J_PER_KWH

FloatArray = npt.NDArray[np.float64]


def _cumulative(series: IntensitySeries) -> tuple[FloatArray, FloatArray]:
    """Knots and the running integral of intensity over time (g/kWh x s) at each knot."""
    t = series.times_s
    v = series.values_g_per_kwh
    knots = np.append(t, t[-1] + series.step_s)
    # Gaps between points (irregular series) hold the previous value until the next point.
    widths = np.diff(knots)
    cum = np.concatenate(([0.0], np.cumsum(v * widths)))
    return knots, cum


def _integral_at(series: IntensitySeries, x: FloatArray) -> FloatArray:
    knots, cum = _cumulative(series)
    v = series.values_g_per_kwh
    inside = np.interp(x, knots, cum)
    # hold edge values outside coverage
    before = x < knots[0]
    after = x > knots[-1]
    out = inside.copy()
    out[before] = (x[before] - knots[0]) * v[0]
    out[after] = cum[-1] + (x[after] - knots[-1]) * v[-1]
    return out


def mean_intensity(
    series: IntensitySeries, starts_s: npt.ArrayLike, ends_s: npt.ArrayLike
) -> FloatArray:
    """Time-weighted mean intensity (g/kWh) over each ``[start, end)``; vectorised."""
    s = np.atleast_1d(np.asarray(starts_s, dtype=np.float64))
    e = np.atleast_1d(np.asarray(ends_s, dtype=np.float64))
    width = e - s
    if np.any(width < 0):
        raise ValueError("interval ends must not precede starts")
    area = _integral_at(series, e) - _integral_at(series, s)
    v = series.values_g_per_kwh
    # zero-width interval: the value of the step that holds it
    idx = np.clip(np.searchsorted(series.times_s, s, side="right") - 1, 0, v.size - 1)
    point = v[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(width > 0, area / np.where(width > 0, width, 1.0), point)
    # a mean of a step function lies within its values (guards round-off on tiny intervals)
    return np.clip(mean, np.min(v), np.max(v))


def emissions_g(
    series: IntensitySeries,
    starts_s: npt.ArrayLike,
    ends_s: npt.ArrayLike,
    energy_j: npt.ArrayLike,
    pue: float = 1.0,
) -> FloatArray:
    """CO2e (g) of each interval: energy (J, spread evenly) x PUE x mean intensity over it."""
    energy = np.atleast_1d(np.asarray(energy_j, dtype=np.float64))
    return energy / J_PER_KWH * pue * mean_intensity(series, starts_s, ends_s)


# --------------------------------------------------------------------------------------------
# Gaps, fill policies, resampling, alignment and profile integration (pure, vectorised).
# --------------------------------------------------------------------------------------------

FILL_POLICIES = ("none", "ffill", "interpolate", "profile")


@dataclasses.dataclass(frozen=True)
class Gap:
    """Missing points of a regular series: ``missing_points`` steps from ``start_s`` to
    ``end_s`` (the time of the next present point)."""

    start_s: float
    end_s: float
    missing_points: int

    def describe(self) -> str:
        return (
            f"{self.missing_points} missing from {_iso(self.start_s)} "
            f"(next point at {_iso(self.end_s)})"
        )


def _iso(t_s: float) -> str:
    return str(np.datetime64(round(t_s), "s")) + "Z"


def find_gaps(times_s: npt.ArrayLike, step_s: float) -> list[Gap]:
    """Stretches where consecutive timestamps are more than ``step_s`` apart."""
    t = np.asarray(times_s, dtype=np.float64)
    if t.size < 2:
        return []
    d = np.diff(t)
    idx = np.flatnonzero(d > step_s * (1.0 + 1e-9))
    return [
        Gap(
            start_s=float(t[i] + step_s),
            end_s=float(t[i + 1]),
            missing_points=round(float(d[i]) / step_s) - 1,
        )
        for i in idx
    ]


def describe_gaps(gaps: Sequence[Gap], limit: int = 5) -> str:
    shown = "; ".join(g.describe() for g in gaps[:limit])
    more = f"; and {len(gaps) - limit} more" if len(gaps) > limit else ""
    total = sum(g.missing_points for g in gaps)
    return f"{len(gaps)} gap(s), {total} missing point(s): {shown}{more}"


def fill_gaps(
    series: IntensitySeries,
    policy: str,
    profile: Callable[[FloatArray], FloatArray] | None = None,
) -> IntensitySeries:
    """A regular series with the gaps of ``series`` filled by ``policy``.

    ``none`` raises :class:`DataError` listing the gaps (when there are any); ``ffill`` holds
    the last value; ``interpolate`` is linear in time between the neighbours; ``profile`` takes
    the embedded typical profile of the series' zone and basis (or ``profile(times_s)`` when
    given). Filled points are flagged ``estimated`` and the source says how they were filled.
    """
    if policy not in FILL_POLICIES:
        raise ConfigError(f"bad fill policy {policy!r}: use one of {', '.join(FILL_POLICIES)}.")
    gaps = find_gaps(series.times_s, series.step_s)
    if not gaps:
        return series
    if policy == "none":
        raise DataError(
            f"intensity series {series.source!r} has {describe_gaps(gaps)}. Choose a fill "
            "policy (--fill ffill|interpolate|profile, or intensity_fill in the config) or "
            "supply the missing data."
        )
    step = series.step_s
    offsets = np.round((series.times_s - series.start_s) / step).astype(np.int64)
    n = int(offsets[-1]) + 1
    times = series.start_s + step * np.arange(n, dtype=np.float64)
    present = np.zeros(n, dtype=np.bool_)
    present[offsets] = True
    values = np.empty(n, dtype=np.float64)
    values[offsets] = series.values_g_per_kwh
    missing = ~present
    if policy == "ffill":
        last = np.maximum.accumulate(np.where(present, np.arange(n), 0))
        values[missing] = values[last[missing]]
    elif policy == "interpolate":
        values[missing] = np.interp(times[missing], series.times_s, series.values_g_per_kwh)
    else:
        if profile is None:
            from greenforge.grid.profile import profile_quantiles

            zone, basis = series.zone, series.basis
            try:
                values[missing] = profile_quantiles(zone, times[missing], 0.5, basis)
            except ConfigError as exc:
                raise DataError(
                    f"cannot fill gaps of {series.source!r} from a profile: {exc} Use --fill "
                    "ffill or interpolate instead."
                ) from None
        else:
            values[missing] = profile(times[missing])
    estimated = np.ones(n, dtype=np.bool_)
    estimated[offsets] = series.estimated_flags
    forecast = np.zeros(n, dtype=np.bool_)
    forecast[offsets] = series.forecast_flags
    total = int(missing.sum())
    return series.replace(
        times_s=times,
        values_g_per_kwh=values,
        estimated=estimated,
        forecast=forecast,
        source=f"{series.source} ({total} gap point(s) filled: {policy})",
    )


def _require_no_gaps(series: IntensitySeries, what: str) -> None:
    gaps = find_gaps(series.times_s, series.step_s)
    if gaps:
        raise DataError(
            f"cannot {what} {series.source!r}: it has {describe_gaps(gaps)}. Fill them first "
            "with fill_gaps(series, 'ffill' | 'interpolate' | 'profile')."
        )


def _any_flag(
    flags: BoolArray, times_s: FloatArray, step_s: float, a: FloatArray, b: FloatArray
) -> BoolArray:
    """Whether any point overlapping ``[a, b)`` has its flag set (vectorised)."""
    counts = np.concatenate(([0], np.cumsum(flags.astype(np.int64))))
    lo = np.searchsorted(times_s + step_s, a, side="right")
    hi = np.searchsorted(times_s, b, side="left")
    hi = np.maximum(hi, lo)
    return np.asarray(counts[hi] - counts[lo] > 0, dtype=np.bool_)


def resample(series: IntensitySeries, step_s: float) -> IntensitySeries:
    """Time-weighted resampling to a regular ``step_s`` grid aligned to multiples of ``step_s``
    (UTC epoch), up or down. Each new point is the mean over the part of its step the series
    covers, so the integral over the coverage is preserved exactly. A point is ``estimated``
    (``forecast``) when any source point it overlaps is."""
    if not (np.isfinite(step_s) and step_s > 0):
        raise ConfigError(f"bad resampling step {step_s!r} s: use a positive step, e.g. 900.")
    _require_no_gaps(series, "resample")
    cov_start, cov_end = series.start_s, series.end_s
    first = np.floor(cov_start / step_s) * step_s
    n = max(int(np.ceil((cov_end - first) / step_s - 1e-9)), 1)
    grid = first + step_s * np.arange(n, dtype=np.float64)
    a = np.maximum(grid, cov_start)
    b = np.minimum(grid + step_s, cov_end)
    values = mean_intensity(series, a, b)
    return series.replace(
        times_s=grid,
        values_g_per_kwh=values,
        step_s=float(step_s),
        estimated=_any_flag(series.estimated_flags, series.times_s, series.step_s, a, b),
        forecast=_any_flag(series.forecast_flags, series.times_s, series.step_s, a, b),
    )


def align(
    series: IntensitySeries,
    starts_s: npt.ArrayLike,
    ends_s: npt.ArrayLike,
    hold_edges: bool = False,
) -> FloatArray:
    """Mean intensity over each measurement interval ``[start, end)``.

    Intervals outside the series' coverage raise :class:`DataError` (with the first one named)
    unless ``hold_edges`` is set, which holds the first/last value there. Gaps inside the series
    raise too: fill them first with :func:`fill_gaps`."""
    s = np.atleast_1d(np.asarray(starts_s, dtype=np.float64))
    e = np.atleast_1d(np.asarray(ends_s, dtype=np.float64))
    if s.shape != e.shape:
        raise ValueError(f"starts and ends differ in shape ({s.shape} vs {e.shape})")
    if series.kind not in ("annual", "static"):
        _require_no_gaps(series, "align")
    if not hold_edges and s.size:
        outside = np.flatnonzero((s < series.start_s - 1e-6) | (e > series.end_s + 1e-6))
        if outside.size:
            i = int(outside[0])
            raise DataError(
                f"interval {i} [{_iso(s[i])}, {_iso(e[i])}) lies outside the intensity series "
                f"{series.source!r} ({_iso(series.start_s)} to {_iso(series.end_s)}); "
                f"{outside.size} interval(s) affected. Fetch a longer series or pass "
                "hold_edges=True to hold the edge values."
            )
    return mean_intensity(series, s, e)


def integrate_energy_g(
    series: IntensitySeries,
    start_s: float,
    sample_step_s: float,
    energy_j: npt.ArrayLike,
    pue: float = 1.0,
) -> float:
    """CO2e (g) of a regular energy profile: sample ``i`` holds ``energy_j[i]`` spread evenly
    over ``[start_s + i*step, start_s + (i+1)*step)``, weighted by the intensity over it.

    O(n) in the samples: the energy is accumulated once and split at the series' knots (its
    few step boundaries), instead of averaging the intensity over every sample. Outside the
    series' coverage the edge values hold, as in :func:`mean_intensity`.
    """
    if not (np.isfinite(sample_step_s) and sample_step_s > 0):
        raise ConfigError(f"bad sample step {sample_step_s!r} s: must be > 0.")
    energy = np.asarray(energy_j, dtype=np.float64).ravel()
    n = energy.size
    if n == 0:
        return 0.0
    cum_energy = np.concatenate(([0.0], np.cumsum(energy)))
    knots, _ = _cumulative(series)
    # cumulative energy E(t) at each knot (piecewise linear between sample edges)
    pos = np.clip((knots - start_s) / sample_step_s, 0.0, float(n))
    idx = np.minimum(np.floor(pos).astype(np.int64), n - 1)
    at_knots = cum_energy[idx] + (pos - idx) * energy[idx]
    v = series.values_g_per_kwh
    inside = float(np.dot(np.diff(at_knots), v))
    before = float(at_knots[0]) * float(v[0])
    after = (float(cum_energy[-1]) - float(at_knots[-1])) * float(v[-1])
    return (inside + before + after) / J_PER_KWH * pue
