"""Pure, vectorised operations on intensity series: alignment to intervals and integration.

The series is a step function: point ``i`` holds over ``[t_i, t_i + step)``. Outside the
series' coverage the nearest edge value is held (callers that care check coverage first).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from greenforge.grid.series import IntensitySeries
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
    point = np.interp(s, series.times_s, series.values_g_per_kwh)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(width > 0, area / np.where(width > 0, width, 1.0), point)
    return mean


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
