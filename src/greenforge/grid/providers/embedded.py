"""Grid provider ``embedded`` (default, offline) and ``embedded-annual``.

- ``embedded``: the typical hourly profile (month x hour x weekday/weekend, median) for the
  16 zones with embedded hourly data, else the annual average of the zone.
- ``embedded-annual``: always the annual average.

Both label what they return: ``kind="profile"`` with source ``embedded:profile-2021-2023:GB``,
or ``kind="annual"`` with source ``embedded:electricitymaps-yearly-2024:DE`` (or
``embedded:ember-2023:UKR``). Neither is ever passed off as a measurement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np

from greenforge.config import Settings
from greenforge.errors import ConfigError
from greenforge.grid.profile import has_profile, profile_series
from greenforge.grid.provider import register_provider
from greenforge.grid.series import IntensitySeries, constant_series
from greenforge.grid.zones import (
    annual_intensity,
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
        year = dt.datetime.fromtimestamp(start_s, tz=dt.timezone.utc).year
        value = annual_intensity(zone, year)
        series = constant_series(
            value.intensity_g_per_kwh,
            value.zone,
            value.source,
            start_s,
            end_s,
            kind="annual",
            basis=value.basis,
        )
        if forecast:
            series = series.replace(forecast=np.ones(1, dtype=np.bool_))
        return series

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


def _check_range(start_s: float, end_s: float) -> None:
    if not (np.isfinite(start_s) and np.isfinite(end_s)) or end_s < start_s:
        raise ConfigError(f"bad time range [{start_s!r}, {end_s!r}): end must not precede start.")


def _create(settings: Settings) -> EmbeddedProvider:
    return EmbeddedProvider("profile", basis=settings.intensity_basis)


def _create_annual(settings: Settings) -> EmbeddedProvider:
    return EmbeddedProvider("annual", basis=settings.intensity_basis)


register_provider("embedded", _create)
register_provider("embedded-annual", _create_annual)
