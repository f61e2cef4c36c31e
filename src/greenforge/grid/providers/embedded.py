"""Grid provider ``embedded`` (default, offline) and ``embedded-annual``.

- ``embedded``: the typical hourly profile (month x hour x weekday/weekend, median) for the
  16 zones with embedded hourly data, else the annual average of the zone.
- ``embedded-annual``: always the annual average.

Both label what they return: ``kind="profile"`` with source ``embedded:profile-2021-2023:GB``,
or ``kind="annual"`` with source ``embedded:electricitymaps-yearly-2024:DE`` (or
``embedded:ember-2023:UKR``; across New Year daily points at each year's value, e.g.
``embedded:electricitymaps-yearly-2021+2022:FR``, see :func:`annual_series`). Neither is ever
passed off as a measurement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from greenforge.config import Settings
from greenforge.errors import ConfigError
from greenforge.grid.profile import has_profile, profile_series
from greenforge.grid.provider import register_provider
from greenforge.grid.series import IntensitySeries, constant_series
from greenforge.grid.zones import (
    annual_intensity,
    annual_years,
    canonical_zone,
    known_zones,
    unknown_zone_error,
)


class EmbeddedProvider:
    """Offline intensity from the embedded tables."""

    def __init__(self, prefer: str = "profile", basis: str = "lca") -> None:
        if prefer not in ("profile", "annual"):
            raise ConfigError(f"bad embedded preference {prefer!r}: use 'profile' or 'annual'.")
        self.prefer = prefer
        self.basis = basis
        self.name = "embedded" if prefer == "profile" else "embedded-annual"

    def zones(self) -> Sequence[str]:
        return known_zones()

    def _zone(self, zone: str) -> str:
        z = canonical_zone(zone)
        if z is None:
            raise unknown_zone_error(zone, "the embedded tables")
        return z

    def _annual(self, zone: str, start_s: float, end_s: float, forecast: bool) -> IntensitySeries:
        _check_range(start_s, end_s)
        return annual_series(zone, start_s, end_s, forecast=forecast)

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        z = self._zone(zone)
        if self.prefer == "profile" and has_profile(z):
            return profile_series(z, start_s, end_s, basis=self.basis)
        return self._annual(z, start_s, end_s, forecast=False)

    def forecast(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        """The typical profile (labelled as a profile, flagged forecast) or the annual value.
        Quantiles for planning under uncertainty: :func:`greenforge.grid.profile.
        profile_quantiles`."""
        z = self._zone(zone)
        if self.prefer == "profile" and has_profile(z):
            return profile_series(z, start_s, end_s, basis=self.basis, forecast=True)
        return self._annual(z, start_s, end_s, forecast=True)

    def forecast_quantile(
        self, zone: str, start_s: float, end_s: float, q: float
    ) -> IntensitySeries:
        """The profile at quantile ``q`` (0.05-0.95) for planning under uncertainty, e.g.
        ``q=0.9`` for a pessimistic plan. Zones without a profile raise UnknownZoneError."""
        z = self._zone(zone)
        return profile_series(z, start_s, end_s, basis=self.basis, q=q, forecast=True)


DAY_S = 86_400.0
"""Step of a multi-year annual series: every UTC year boundary is a UTC midnight, so daily
points never straddle New Year."""

MAX_ANNUAL_POINTS = 100 * 366
"""Most daily points one multi-year annual series may have (about 100 years, < 1 MB)."""


def annual_series(
    zone: str, start_s: float, end_s: float, forecast: bool = False
) -> IntensitySeries:
    """The annual average of each year that ``[start_s, end_s)`` touches.

    Within one year (or when every year touched falls back to the same table year): one point
    covering the range, source ``embedded:electricitymaps-yearly-2024:DE``. Across New Year:
    daily points from the UTC midnight at or before ``start_s``, each at the value of its own
    year, the source naming every year used (``embedded:electricitymaps-yearly-2021+2022:FR``).
    A year missing from the table uses the latest year the table has, and the source names the
    year actually used (a range in 2030 reads ``embedded:electricitymaps-yearly-2025:DE``).
    """
    first_year = _utc_year(start_s)
    # [start, end) is half-open: a range ending exactly at New Year stays in the earlier year
    last_year = _utc_year(max(start_s, math.ceil(end_s) - 1.0))
    table_years = annual_years(zone)  # empty for Ember-only zones: one value for all years
    if table_years:
        # years beyond the table's edges all behave like the first year past each edge
        lo, hi = table_years[0] - 1, table_years[-1] + 1
    else:
        lo = hi = first_year
    first_year, last_year = min(max(first_year, lo), hi), min(max(last_year, lo), hi)
    values = {year: annual_intensity(zone, year) for year in range(first_year, last_year + 1)}
    used = sorted({v.year for v in values.values()})
    sample = values[first_year]
    if len(used) == 1:
        series = constant_series(
            sample.intensity_g_per_kwh,
            sample.zone,
            sample.source,
            start_s,
            end_s,
            kind="annual",
            basis=sample.basis,
        )
        if forecast:
            series = series.replace(forecast=np.ones(1, dtype=np.bool_))
        return series
    first_s = math.floor(start_s / DAY_S) * DAY_S
    n = max(math.ceil((end_s - first_s) / DAY_S), 1)
    if n > MAX_ANNUAL_POINTS:
        # a typo'd year (2024 -> 9024) must not allocate millions of points
        raise ConfigError(
            f"time range too long for the annual series of {zone!r}: {n} days "
            f"(at most {MAX_ANNUAL_POINTS}, about 100 years). Check the start and end times."
        )
    times_s = first_s + DAY_S * np.arange(n, dtype=np.float64)
    years = np.clip(_utc_years(times_s), first_year, last_year)
    point_years, index = np.unique(years, return_inverse=True)
    point_values = np.array(
        [values[int(y)].intensity_g_per_kwh for y in point_years], dtype=np.float64
    )[index]
    return IntensitySeries(
        times_s=times_s,
        values_g_per_kwh=point_values,
        step_s=DAY_S,
        zone=sample.zone,
        source=f"embedded:{sample.dataset}-{'+'.join(str(y) for y in used)}:{sample.zone}",
        kind="annual",
        basis=sample.basis,
        forecast=np.full(n, forecast, dtype=np.bool_),
    )


def _utc_years(times_s: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """UTC calendar year of each time (numpy's calendar: no overflow for far-future typos)."""
    seconds = np.floor(times_s).astype("datetime64[s]")
    return seconds.astype("datetime64[Y]").astype(np.int64) + 1970


def _utc_year(t_s: float) -> int:
    return int(_utc_years(np.array([t_s], dtype=np.float64))[0])


def _check_range(start_s: float, end_s: float) -> None:
    if not (np.isfinite(start_s) and np.isfinite(end_s)) or end_s < start_s:
        raise ConfigError(f"bad time range [{start_s!r}, {end_s!r}): end must not precede start.")


def _create(settings: Settings) -> EmbeddedProvider:
    return EmbeddedProvider("profile", basis=settings.intensity_basis)


def _create_annual(settings: Settings) -> EmbeddedProvider:
    return EmbeddedProvider("annual", basis=settings.intensity_basis)


register_provider("embedded", _create)
register_provider("embedded-annual", _create_annual)
