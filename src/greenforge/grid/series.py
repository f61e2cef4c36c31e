"""``IntensitySeries``: a regular time series of grid carbon intensity, and pure functions on it.

Timestamps are unix seconds (UTC) in a float64 numpy array, values g/kWh. Each point may be
flagged ``estimated`` (the source estimated it) or ``forecast``. A series built from a typical
profile or an annual average says so in ``source`` and ``kind``, never passing as a measurement.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import numpy.typing as npt

from greenforge.errors import DataError
from greenforge.records import IntensityProvenance

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
SeriesKind = Literal["measured", "forecast", "profile", "annual", "static", "mixed"]


@dataclasses.dataclass(frozen=True, eq=False)
class IntensitySeries:
    """Carbon intensity of one zone at regular steps.

    Point ``i`` covers ``[times_s[i], times_s[i] + step_s)``.
    """

    times_s: FloatArray
    values_g_per_kwh: FloatArray
    step_s: float
    zone: str
    source: str
    signal: str = "average"
    basis: str = "lca"
    kind: SeriesKind = "measured"
    estimated: BoolArray | None = None
    forecast: BoolArray | None = None

    def __post_init__(self) -> None:
        t = np.asarray(self.times_s, dtype=np.float64)
        v = np.asarray(self.values_g_per_kwh, dtype=np.float64)
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "values_g_per_kwh", v)
        if t.ndim != 1 or t.shape != v.shape:
            raise DataError(
                f"intensity series for {self.zone!r}: times and values differ in shape "
                f"({t.shape} vs {v.shape})."
            )
        if self.step_s <= 0:
            raise DataError(f"intensity series step must be > 0 s, got {self.step_s!r}.")
        if t.size > 1 and np.any(np.diff(t) <= 0):
            raise DataError(f"intensity series for {self.zone!r}: timestamps not increasing.")
        for name in ("estimated", "forecast"):
            flags = getattr(self, name)
            if flags is None:
                object.__setattr__(self, name, np.zeros(t.shape, dtype=np.bool_))
            else:
                arr = np.asarray(flags, dtype=np.bool_)
                if arr.shape != t.shape:
                    raise DataError(f"intensity series {name} flags have the wrong shape.")
                object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.times_s.size)

    @property
    def start_s(self) -> float:
        return float(self.times_s[0])

    @property
    def end_s(self) -> float:
        """End of the last point's coverage."""
        return float(self.times_s[-1] + self.step_s)

    @property
    def estimated_flags(self) -> BoolArray:
        assert self.estimated is not None  # set in __post_init__
        return self.estimated

    @property
    def forecast_flags(self) -> BoolArray:
        assert self.forecast is not None  # set in __post_init__
        return self.forecast

    def provenance(self) -> IntensityProvenance:
        return IntensityProvenance(
            source=self.source,
            zone=self.zone,
            signal=self.signal,
            basis=self.basis,
            time_resolved=self.kind not in ("annual", "static"),
            kind=self.kind,
        )

    def between(self, start_s: float, end_s: float) -> IntensitySeries:
        """The points whose coverage overlaps ``[start_s, end_s)`` (at least one point; flags
        kept). Raises DataError when the range lies entirely outside the series."""
        if end_s < start_s:
            raise DataError(f"bad range: end {end_s!r} precedes start {start_s!r}.")
        if end_s < self.start_s or start_s >= self.end_s:
            raise DataError(
                f"range [{start_s!r}, {end_s!r}) lies outside the intensity series "
                f"{self.source!r} ([{self.start_s!r}, {self.end_s!r}))."
            )
        lo = int(np.searchsorted(self.times_s + self.step_s, start_s, side="right"))
        hi = max(int(np.searchsorted(self.times_s, end_s, side="left")), lo + 1)
        return self.replace(
            times_s=self.times_s[lo:hi],
            values_g_per_kwh=self.values_g_per_kwh[lo:hi],
            estimated=self.estimated_flags[lo:hi],
            forecast=self.forecast_flags[lo:hi],
        )

    def replace(self, **changes: object) -> IntensitySeries:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def constant_series(
    value_g_per_kwh: float,
    zone: str,
    source: str,
    start_s: float,
    end_s: float,
    kind: SeriesKind = "annual",
    signal: str = "average",
    basis: str = "lca",
) -> IntensitySeries:
    """A single-point series covering ``[start_s, end_s)`` at one value (annual or static)."""
    step = max(end_s - start_s, 1e-9)
    return IntensitySeries(
        times_s=np.array([start_s]),
        values_g_per_kwh=np.array([float(value_g_per_kwh)]),
        step_s=step,
        zone=zone,
        source=source,
        kind=kind,
        signal=signal,
        basis=basis,
    )
