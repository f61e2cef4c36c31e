"""Grid provider ``watttime``: the WattTime API v3 (marginal emissions, needs an account).

- ``GET /login`` with HTTP basic auth (``WATTTIME_USERNAME`` / ``WATTTIME_PASSWORD``) returns a
  bearer token, kept in memory only until shortly before it expires (30 min); a 401 logs in
  again once.
- ``/v3/historical`` (at most 32 days a request; cut into 30-day windows) -> :meth:`history`
- ``/v3/forecast`` (``horizon_hours`` 0-72) -> :meth:`forecast`
- ``/v3/signal-index`` -> :meth:`signal_index` (a 0-100 percentile, not an intensity)

Signal ``co2_moer`` is the *marginal* operating emissions rate in lbs CO2/MWh; it is converted
exactly with :func:`greenforge.units.lb_per_mwh_to_g_per_kwh` (x 453.59237 / 1000). Basis is
``direct`` (operating emissions). Zones are WattTime region names (``CAISO_NORTH``,
``PJM_NJ``, ...) or the Electricity Maps zone keys in :data:`ZONE_TO_REGION`;
``settings.watttime_region`` overrides both.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from greenforge.config import Secret, Settings
from greenforge.errors import ConfigError
from greenforge.grid.http import (
    ApiProvider,
    ErrorHints,
    PointBuffer,
    ProviderAuthError,
    check_range,
    format_time_utc,
    parse_time_utc,
    schema_error,
    time_chunks,
)
from greenforge.grid.provider import register_provider
from greenforge.grid.series import IntensitySeries
from greenforge.units import lb_per_mwh_to_g_per_kwh

NAME = "watttime"
BASE_URL = "https://api.watttime.org"
SIGNAL_TYPE = "co2_moer"
UNITS = "lbs_co2_per_mwh"
TOKEN_LIFETIME_S = 30 * 60.0
TOKEN_MARGIN_S = 60.0
MAX_SPAN_S = 30 * 86400.0
DEFAULT_STEP_S = 300.0
AUTH_HINT = (
    "check WATTTIME_USERNAME and WATTTIME_PASSWORD (or GREENFORGE_WATTTIME_USERNAME / "
    "GREENFORGE_WATTTIME_PASSWORD), and that your plan covers this region (/v3/my-access)"
)

ZONE_TO_REGION: Mapping[str, str] = {
    # Electricity Maps zone key -> WattTime region, only where the balancing authority is the
    # same area. Anything else: pass the WattTime region name itself, or set watttime_region.
    "US-NW-BPAT": "BPA",
    "US-NW-PACE": "PACE",
    "US-NW-PACW": "PACW",
    "US-NW-NEVP": "NEVP",
    "US-NW-PSCO": "PSCO",
    "US-NW-IPCO": "IPCO",
    "US-NW-WACM": "WACM",
    "US-SW-AZPS": "AZPS",
    "US-SW-SRP": "SRP",
    "US-SW-TEPC": "TEPC",
    "US-FLA-FPL": "FPL",
    "US-CAR-DUK": "DUK",
    "US-SE-SOCO": "SOCO",
    "US-TEN-TVA": "TVA",
}
_REGION = re.compile(r"^[A-Z0-9][A-Z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class SignalIndex:
    """WattTime's relative signal: where now sits in the recent range (0 = cleanest, 100)."""

    region: str
    time_s: float
    percentile: float
    source: str = f"{NAME}:signal-index"


class WattTimeProvider(ApiProvider):
    """WattTime API v3 as an :class:`~greenforge.grid.provider.IntensityProvider`."""

    name = NAME
    default_base_url = BASE_URL
    base_url_setting = "watttime_base_url"
    signal = "marginal"

    _token: str | None = None
    _token_expires_s = 0.0

    def secrets(self) -> list[str | Secret | None]:
        settings = self.settings
        out: list[str | Secret | None] = [settings.watttime_password]
        if settings.watttime_username and settings.watttime_password:
            basic = f"{settings.watttime_username}:{settings.watttime_password.reveal()}"
            out.append(base64.b64encode(basic.encode("utf-8")).decode("ascii"))
        return out

    def error_hints(self) -> ErrorHints:
        return ErrorHints(
            auth=AUTH_HINT,
            zone="Use a WattTime region name such as 'CAISO_NORTH' (list yours with "
            "/v3/my-access), or set watttime_region.",
            known_zones=sorted(set(ZONE_TO_REGION.values())),
        )

    # -- protocol -----------------------------------------------------------------------------

    def zones(self) -> Sequence[str]:
        """Best effort: the mapped zone keys; any WattTime region name is accepted too."""
        return sorted(ZONE_TO_REGION)

    def region_for(self, zone: str) -> str:
        """The WattTime region for a zone (see the module docs)."""
        if self.settings.watttime_region:
            return self.settings.watttime_region
        if zone in ZONE_TO_REGION:
            return ZONE_TO_REGION[zone]
        if _REGION.match(zone):
            return zone
        raise ConfigError(
            f"watttime: no WattTime region for zone {zone!r}. Pass a WattTime region name "
            f"(e.g. 'CAISO_NORTH'), set watttime_region (GREENFORGE_WATTTIME_REGION), or use "
            f"one of the mapped zones: {', '.join(sorted(ZONE_TO_REGION))}."
        )

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        """Marginal intensity over ``[start_s, end_s)`` from ``/v3/historical``."""
        check_range(NAME, start_s, end_s)
        region = self.region_for(zone)
        path = "/v3/historical"
        buf = PointBuffer()
        step_s = DEFAULT_STEP_S
        now = self._clock()
        lo = start_s - start_s % DEFAULT_STEP_S
        for a, b in time_chunks(lo, end_s, MAX_SPAN_S):
            params = {
                "region": region,
                "signal_type": SIGNAL_TYPE,
                "start": _iso(a),
                "end": _iso(b),
            }
            payload = self._get(path, params, zone, ttl_s=self.past_ttl_s(b, now))
            step_s = self._add(buf, payload, path, zone, forecast=False)
        return self.series(
            buf,
            path,
            zone=zone,
            source=f"{NAME}:historical",
            step_s=step_s,
            start_s=start_s,
            end_s=end_s,
        )

    def forecast(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        """The latest marginal forecast over ``[start_s, end_s)`` from ``/v3/forecast``."""
        check_range(NAME, start_s, end_s)
        region = self.region_for(zone)
        path = "/v3/forecast"
        hours = int(min(72, max(0, -(-(end_s - self._clock()) // 3600))))
        params = {"region": region, "signal_type": SIGNAL_TYPE, "horizon_hours": str(hours)}
        payload = self._get(path, params, zone, ttl_s=self.fresh_ttl_s(300.0))
        buf = PointBuffer()
        step_s = self._add(buf, payload, path, zone, forecast=True)
        return self.series(
            buf,
            path,
            zone=zone,
            source=f"{NAME}:forecast",
            step_s=step_s,
            start_s=start_s,
            end_s=end_s,
        )

    def signal_index(self, zone: str) -> SignalIndex:
        """The current signal index (percentile 0-100) from ``/v3/signal-index``."""
        region = self.region_for(zone)
        path = "/v3/signal-index"
        params = {"region": region, "signal_type": SIGNAL_TYPE}
        payload = self._get(path, params, zone, ttl_s=self.fresh_ttl_s(300.0))
        rows = self.rows(payload, "data", path, zone)
        try:
            row = rows[-1]
            return SignalIndex(
                region=region,
                time_s=parse_time_utc(str(row["point_time"])),
                percentile=float(row["value"]),
            )
        except (IndexError, KeyError, ValueError, TypeError) as exc:
            raise schema_error(NAME, self.api.endpoint(path), zone, f"bad point ({exc})") from None

    # -- internals ----------------------------------------------------------------------------

    def _login(self) -> str:
        username = self.settings.watttime_username
        password = self.settings.watttime_password
        if not username or not password:
            raise ConfigError(
                "WattTime needs an account: set WATTTIME_USERNAME and WATTTIME_PASSWORD (or "
                "GREENFORGE_WATTTIME_USERNAME / GREENFORGE_WATTTIME_PASSWORD), or remove "
                "'watttime' from intensity_providers."
            )
        auth = httpx.BasicAuth(username, password.reveal())
        payload = self.api.get_json("/login", auth=auth, use_cache=False)
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderAuthError(
                f"watttime: /login answered without a token: {AUTH_HINT}.",
                provider=NAME,
                endpoint="/login",
            )
        self.api.add_secret(token)
        self._token = token
        self._token_expires_s = self._clock() + TOKEN_LIFETIME_S - TOKEN_MARGIN_S
        return token

    def _bearer(self, *, fresh: bool = False) -> dict[str, str]:
        if fresh or self._token is None or self._clock() >= self._token_expires_s:
            self._login()
        return {"Authorization": f"Bearer {self._token}"}

    def _get(self, path: str, params: Mapping[str, str], zone: str, ttl_s: float) -> Any:
        # log in only when a request will really be made
        headers = self._bearer() if self.api.will_request(path, params, ttl_s) else {}
        return self.api.get_json(
            path,
            params=params,
            headers=headers,
            zone=zone,
            ttl_s=ttl_s,
            on_unauthorized=lambda: self._bearer(fresh=True),
        )

    def _add(
        self, buf: PointBuffer, payload: Any, path: str, zone: str, *, forecast: bool
    ) -> float:
        rows = self.rows(payload, "data", path, zone)
        endpoint = self.api.endpoint(path)
        meta = payload.get("meta") if isinstance(payload, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        units = meta.get("units", UNITS)
        if units != UNITS:
            raise schema_error(NAME, endpoint, zone, f"units {units!r}, expected {UNITS!r}")
        try:
            step_s = float(meta.get("data_point_period_seconds", DEFAULT_STEP_S))
            for row in rows:
                if row.get("value") is None:
                    continue
                buf.add(
                    parse_time_utc(str(row["point_time"])),
                    lb_per_mwh_to_g_per_kwh(float(row["value"])),
                    estimated=False,
                    forecast=forecast,
                )
        except (AttributeError, KeyError, ValueError, TypeError) as exc:
            raise schema_error(NAME, endpoint, zone, f"bad point ({exc})") from None
        return step_s


def _iso(t_s: float) -> str:
    """WattTime wants an explicit offset on every timestamp."""
    return format_time_utc(t_s).replace("Z", "+00:00")


def _factory(settings: Settings) -> WattTimeProvider:
    return WattTimeProvider(settings)


register_provider(NAME, _factory)
