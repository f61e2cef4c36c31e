"""Grid provider ``uk-neso``: the GB Carbon Intensity API of NESO (keyless, 30-minute steps).

Base ``https://api.carbonintensity.org.uk``. National (Great Britain):

- ``/intensity/{from}/{to}`` (at most 14 days a request; longer ranges are cut) -> :meth:`history`
- ``/intensity/date`` (today, UK settlement day) -> :meth:`today`
- ``/intensity/{from}/fw48h`` -> :meth:`forecast`

Regional (NESO's 17 regions, ids 1-17):

- ``/regional/intensity/{from}/{to}/regionid/{id}`` -> :meth:`history`
- ``/regional/intensity/{from}/fw48h/regionid/{id}`` -> :meth:`forecast`

Zones: ``GB`` or ``GB-NESO`` for the national series (or the region in
``settings.neso_region`` when set), ``GB-NESO-<id>`` (e.g. ``GB-NESO-13`` = London) or
``GB-NESO-<name>`` (e.g. ``GB-NESO-LONDON``, ``GB-NESO-NORTH-SCOTLAND``). See :data:`REGIONS`.

Values are NESO's operational (combustion, ``direct``) grid-average g/kWh. A national point
uses ``actual`` when NESO has published it and is otherwise flagged ``forecast``. NESO
publishes no actuals per region: every regional point is its forecast, flagged ``forecast``
and ``estimated``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from greenforge.config import Settings
from greenforge.errors import UnknownZoneError
from greenforge.grid.http import (
    ApiProvider,
    ErrorHints,
    PointBuffer,
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

NAME = "uk-neso"
BASE_URL = "https://api.carbonintensity.org.uk"
STEP_S = 1800.0
MAX_SPAN_S = 14 * 86400.0
FORECAST_SPAN_S = 48 * 3600.0

REGIONS: Mapping[int, str] = {
    1: "North Scotland",
    2: "South Scotland",
    3: "North West England",
    4: "North East England",
    5: "Yorkshire",
    6: "North Wales & Merseyside",
    7: "South Wales",
    8: "West Midlands",
    9: "East Midlands",
    10: "East England",
    11: "South West England",
    12: "South England",
    13: "London",
    14: "South East England",
    15: "England",
    16: "Scotland",
    17: "Wales",
}
NATIONAL_ZONES = ("GB", "GB-NESO")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "-", name.upper().replace("&", "AND")).strip("-")


_BY_NAME = {_slug(n): i for i, n in REGIONS.items()}


def region_id(zone_or_region: str) -> int | None:
    """NESO region id for ``GB-NESO-13``, ``GB-NESO-LONDON``, ``13`` or ``London``; ``None``
    for the national zones. Raises UnknownZoneError for anything else."""
    text = zone_or_region.strip()
    if text.upper() in NATIONAL_ZONES:
        return None
    bare = re.sub(r"^GB-NESO-", "", text, flags=re.IGNORECASE)
    if bare.isdigit() and int(bare) in REGIONS:
        return int(bare)
    slug = _slug(bare)
    if slug in _BY_NAME:
        return _BY_NAME[slug]
    raise UnknownZoneError(zone_or_region, known_zones(), source="the UK NESO Carbon Intensity API")


def known_zones() -> list[str]:
    out = list(NATIONAL_ZONES)
    out += [f"GB-NESO-{i}" for i in REGIONS]
    out += [f"GB-NESO-{_slug(n)}" for n in REGIONS.values()]
    return out


class UkNesoProvider(ApiProvider):
    """NESO Carbon Intensity API as an :class:`~greenforge.grid.provider.IntensityProvider`."""

    name = NAME
    default_base_url = BASE_URL
    base_url_setting = "ukneso_base_url"

    def error_hints(self) -> ErrorHints:
        return ErrorHints(
            auth="the NESO API needs no key; a proxy may be refusing the request",
            zone="Use GB, GB-NESO-<1..17> or GB-NESO-<REGION-NAME>.",
            known_zones=known_zones(),
        )

    def zones(self) -> Sequence[str]:
        return known_zones()

    def region_for(self, zone: str) -> int | None:
        """The NESO region id for a zone (``None``: national); ``neso_region`` applies to GB."""
        rid = region_id(zone)
        if rid is None and zone.upper() == "GB" and self.settings.neso_region:
            return region_id(self.settings.neso_region)
        return rid

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        """Half-hourly intensity over ``[start_s, end_s)``."""
        check_range(NAME, start_s, end_s)
        rid = self.region_for(zone)
        now = self._clock()
        lo = floor_to(start_s, STEP_S)
        hi = ceil_to(end_s, STEP_S)
        buf = PointBuffer()
        path = ""
        for a, b in time_chunks(lo, hi, MAX_SPAN_S):
            span = f"{format_time_utc(a, seconds=False)}/{format_time_utc(b, seconds=False)}"
            if rid is None:
                path = f"/intensity/{span}"
            else:
                path = f"/regional/intensity/{span}/regionid/{rid}"
            payload = self.api.get_json(path, zone=zone, ttl_s=self.past_ttl_s(b, now))
            self._add(buf, payload, path, zone, regional=rid is not None)
        return self._series(buf, zone, "history", rid, start_s, end_s, path)

    def today(self, zone: str = "GB") -> IntensitySeries:
        """Today's national series (UK settlement day) from ``/intensity/date``."""
        if self.region_for(zone) is not None:
            raise UnknownZoneError(zone, NATIONAL_ZONES, source="NESO /intensity/date")
        path = "/intensity/date"
        payload = self.api.get_json(path, zone=zone, ttl_s=self.fresh_ttl_s(900.0))
        buf = PointBuffer()
        self._add(buf, payload, path, zone, regional=False)
        if not buf.times_s:
            raise schema_error(NAME, path, zone, "no points for today")
        lo, hi = min(buf.times_s), max(buf.times_s) + STEP_S
        return self._series(buf, zone, "date", None, lo, hi, path)

    def forecast(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        """The 48-hour forecast from ``start_s`` (NESO forecasts no further)."""
        check_range(NAME, start_s, end_s)
        rid = self.region_for(zone)
        lo = floor_to(start_s, STEP_S)
        buf = PointBuffer()
        path = ""
        for a, _ in time_chunks(lo, ceil_to(end_s, STEP_S), FORECAST_SPAN_S):
            stamp = format_time_utc(a, seconds=False)
            if rid is None:
                path = f"/intensity/{stamp}/fw48h"
            else:
                path = f"/regional/intensity/{stamp}/fw48h/regionid/{rid}"
            payload = self.api.get_json(path, zone=zone, ttl_s=self.fresh_ttl_s(1800.0))
            self._add(buf, payload, path, zone, regional=rid is not None)
        return self._series(buf, zone, "forecast", rid, start_s, end_s, path)

    # -- internals ----------------------------------------------------------------------------

    def _series(
        self,
        buf: PointBuffer,
        zone: str,
        what: str,
        rid: int | None,
        start_s: float,
        end_s: float,
        path: str,
    ) -> IntensitySeries:
        where = "" if rid is None else f":region-{rid}"
        return self.series(
            buf,
            path,
            zone=zone,
            source=f"{NAME}:{what}{where}",
            step_s=STEP_S,
            start_s=start_s,
            end_s=end_s,
        )

    def _add(self, buf: PointBuffer, payload: Any, path: str, zone: str, *, regional: bool) -> None:
        endpoint = self.api.endpoint(path)
        data = payload.get("data") if isinstance(payload, dict) else None
        if regional:
            # {"data": {"regionid": 13, ..., "data": [...]}} (some answers wrap it in a list)
            if isinstance(data, list) and len(data) == 1:
                data = data[0]
            rows = data.get("data") if isinstance(data, dict) else None
        else:
            rows = data
        if not isinstance(rows, list):
            raise schema_error(NAME, endpoint, zone, "no 'data' list of half-hours")
        for row in rows:
            try:
                t = parse_time_utc(str(row["from"]))
                intensity = row["intensity"]
                actual = None if regional else intensity.get("actual")
                fcst = intensity.get("forecast")
                if actual is not None:
                    buf.add(t, float(actual), estimated=False, forecast=False)
                elif fcst is not None:
                    buf.add(t, float(fcst), estimated=regional, forecast=True)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                raise schema_error(NAME, endpoint, zone, f"bad half-hour ({exc})") from None


def _factory(settings: Settings) -> UkNesoProvider:
    return UkNesoProvider(settings)


register_provider(NAME, _factory)
