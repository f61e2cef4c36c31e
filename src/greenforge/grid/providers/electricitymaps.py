"""Grid provider ``electricitymaps``: the Electricity Maps API v3 (needs an API token).

Endpoints (base ``https://api.electricitymaps.com/v3``, header ``auth-token``):

- ``/carbon-intensity/latest?zone=Z`` -> :meth:`ElectricityMapsProvider.latest`
- ``/carbon-intensity/history?zone=Z`` (the past 24 h) -> :meth:`history` for recent ranges
- ``/carbon-intensity/past-range?zone=Z&start=..&end=..`` -> :meth:`history` for older ranges,
  cut into windows of at most 10 days (hourly) or 1 day (5/15-minute), the API's limits
- ``/carbon-intensity/forecast?zone=Z`` -> :meth:`forecast`

Values are grid-average g/kWh; ``emissionFactorType`` ``lifecycle`` is basis ``lca``, ``direct``
is ``direct`` (``settings.intensity_basis`` chooses; default ``lca``). Points the API marks
``isEstimated`` keep that flag. The token comes from ``ELECTRICITYMAPS_API_KEY`` or
``GREENFORGE_ELECTRICITYMAPS_TOKEN`` (or ``electricitymaps_token`` in greenforge.toml).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from greenforge.config import Secret, Settings
from greenforge.errors import ConfigError
from greenforge.grid.cache import DiskCache
from greenforge.grid.chain import NetworkBudget
from greenforge.grid.http import (
    ApiProvider,
    ErrorHints,
    PointBuffer,
    RetryPolicy,
    ceil_to,
    check_range,
    floor_to,
    format_time_utc,
    parse_time_utc,
    schema_error,
    time_chunks,
)
from greenforge.grid.provider import register_provider
from greenforge.grid.series import IntensitySeries

NAME = "electricitymaps"
BASE_URL = "https://api.electricitymaps.com/v3"
AUTH_HINT = (
    "check your token in ELECTRICITYMAPS_API_KEY / GREENFORGE_ELECTRICITYMAPS_TOKEN "
    "(or electricitymaps_token in greenforge.toml), and that your plan covers this zone"
)
STEP_S = {"5_minutes": 300.0, "15_minutes": 900.0, "hourly": 3600.0}
MAX_SPAN_S = {"5_minutes": 86400.0, "15_minutes": 86400.0, "hourly": 10 * 86400.0}
HISTORY_WINDOW_S = 24 * 3600.0
FORECAST_HORIZONS_H = (24, 48, 72)
_BASIS = {"lifecycle": "lca", "direct": "direct"}
_FACTOR_TYPE = {"lca": "lifecycle", "direct": "direct"}


class ElectricityMapsProvider(ApiProvider):
    """Electricity Maps API v3 as an :class:`~greenforge.grid.provider.IntensityProvider`."""

    name = NAME
    default_base_url = BASE_URL
    base_url_setting = "electricitymaps_base_url"

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client | None = None,
        *,
        base_url: str | None = None,
        granularity: str = "hourly",
        retry: RetryPolicy | None = None,
        cache: DiskCache | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        budget: NetworkBudget | None = None,
    ) -> None:
        if granularity not in STEP_S:
            raise ConfigError(
                f"bad Electricity Maps granularity {granularity!r}: use one of {', '.join(STEP_S)}."
            )
        self.granularity = granularity
        self.step_s = STEP_S[granularity]
        self.factor_type = _FACTOR_TYPE.get(settings.intensity_basis, "lifecycle")
        super().__init__(
            settings,
            client,
            base_url=base_url,
            retry=retry,
            cache=cache,
            clock=clock,
            sleep=sleep,
            budget=budget,
        )

    def secrets(self) -> list[str | Secret | None]:
        return [self.settings.electricitymaps_token]

    def error_hints(self) -> ErrorHints:
        return ErrorHints(
            auth=AUTH_HINT,
            zone="Use an Electricity Maps zone key such as 'DE', 'FR' or 'US-CAL-CISO' "
            "(see https://app.electricitymaps.com/map), or run `greenforge grid zones`.",
            known_zones=_embedded_em_zones(),
        )

    # -- protocol -----------------------------------------------------------------------------

    def zones(self) -> Sequence[str]:
        """Best effort: the Electricity Maps zone keys of the embedded yearly table (~300);
        which of them your token may query depends on your plan."""
        return _embedded_em_zones()

    def latest(self, zone: str) -> IntensitySeries:
        """The most recent value (one point), from ``/carbon-intensity/latest``."""
        path = "/carbon-intensity/latest"
        payload = self._get(path, {"zone": zone}, zone, ttl_s=self.fresh_ttl_s(300.0))
        buf = PointBuffer()
        basis = self._add_points(buf, [payload], path, zone, forecast=False)
        t = buf.times_s[0] if buf.times_s else 0.0
        return self.series(
            buf,
            path,
            zone=zone,
            source=f"{NAME}:latest",
            basis=basis,
            step_s=self.step_s,
            start_s=t,
            end_s=t + self.step_s,
        )

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        """Past intensity over ``[start_s, end_s)``: ``/history`` if recent, else ``/past-range``."""
        check_range(NAME, start_s, end_s)
        now = self._clock()
        buf = PointBuffer()
        if start_s >= now - HISTORY_WINDOW_S + self.step_s:
            path = "/carbon-intensity/history"
            payload = self._get(path, {"zone": zone}, zone)
            rows = self.rows(payload, "history", path, zone)
            basis = self._add_points(buf, rows, path, zone, forecast=False)
            source = f"{NAME}:history"
        else:
            path = "/carbon-intensity/past-range"
            # whole UTC days, so that repeated queries hit the cache; never past "now"
            lo = floor_to(start_s, 86400.0)
            hi = min(ceil_to(end_s, 86400.0), ceil_to(now, self.step_s))
            basis = _BASIS[self.factor_type]
            for a, b in time_chunks(lo, max(hi, lo + self.step_s), MAX_SPAN_S[self.granularity]):
                params = {"zone": zone, "start": format_time_utc(a), "end": format_time_utc(b)}
                payload = self._get(path, params, zone, ttl_s=self.past_ttl_s(b, now))
                rows = self.rows(payload, "data", path, zone)
                basis = self._add_points(buf, rows, path, zone, forecast=False)
            source = f"{NAME}:past-range"
        return self.series(
            buf,
            path,
            zone=zone,
            source=source,
            basis=basis,
            step_s=self.step_s,
            start_s=start_s,
            end_s=end_s,
        )

    def forecast(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        """Forecast over ``[start_s, end_s)`` from ``/carbon-intensity/forecast`` (up to 72 h)."""
        check_range(NAME, start_s, end_s)
        path = "/carbon-intensity/forecast"
        hours_needed = max(0.0, (end_s - self._clock()) / 3600.0)
        horizon = next((h for h in FORECAST_HORIZONS_H if h >= hours_needed), 72)
        params = {"zone": zone}
        if horizon > 24:
            params["horizonHours"] = str(horizon)
        payload = self._get(path, params, zone)
        rows = self.rows(payload, "forecast", path, zone)
        buf = PointBuffer()
        basis = self._add_points(buf, rows, path, zone, forecast=True)
        return self.series(
            buf,
            path,
            zone=zone,
            source=f"{NAME}:forecast",
            basis=basis,
            step_s=self.step_s,
            start_s=start_s,
            end_s=end_s,
        )

    # -- internals ----------------------------------------------------------------------------

    def _get(
        self, path: str, params: Mapping[str, str], zone: str, ttl_s: float | None = None
    ) -> Any:
        query = dict(params)
        if self.granularity != "hourly":
            query["temporalGranularity"] = self.granularity
        if self.factor_type != "lifecycle":
            query["emissionFactorType"] = self.factor_type
        token = self.settings.electricitymaps_token
        headers: dict[str, str] = {}
        if not self.settings.offline:
            if not token:
                raise ConfigError(
                    "Electricity Maps needs an API token: set ELECTRICITYMAPS_API_KEY (or "
                    "GREENFORGE_ELECTRICITYMAPS_TOKEN, or electricitymaps_token in "
                    "greenforge.toml), or remove 'electricitymaps' from intensity_providers."
                )
            headers["auth-token"] = token.reveal()
        return self.api.get_json(path, params=query, headers=headers, zone=zone, ttl_s=ttl_s)

    def _add_points(
        self, buf: PointBuffer, rows: list[Any], path: str, zone: str, *, forecast: bool
    ) -> str:
        """Append the rows' points; returns the basis they report."""
        basis = _BASIS[self.factor_type]
        for row in rows:
            if not isinstance(row, dict):
                raise schema_error(NAME, self.api.endpoint(path), zone, "a point is not an object")
            value = row.get("carbonIntensity")
            if value is None:  # the API's "no data for this hour"
                continue
            try:
                t = parse_time_utc(str(row["datetime"]))
                v = float(value)
            except (KeyError, ValueError, TypeError) as exc:
                raise schema_error(
                    NAME, self.api.endpoint(path), zone, f"bad point {row!r:.120} ({exc})"
                ) from None
            factor = row.get("emissionFactorType")
            if isinstance(factor, str) and factor in _BASIS:
                basis = _BASIS[factor]
            buf.add(t, v, estimated=bool(row.get("isEstimated", False)), forecast=forecast)
        return basis


def _embedded_em_zones() -> tuple[str, ...]:
    try:
        from greenforge.grid.zones import electricitymaps_zones

        return tuple(electricitymaps_zones())
    except Exception:  # the list only improves messages; never fail because of it
        return ()


def _factory(settings: Settings) -> ElectricityMapsProvider:
    return ElectricityMapsProvider(settings)


register_provider(NAME, _factory)
