"""Grid provider ``energidataservice``: Energinet's Energi Data Service (keyless, Denmark).

Base ``https://api.energidataservice.dk``; datasets (5-minute steps, g/kWh):

- ``/dataset/CO2Emis`` — realised CO2 emission per kWh consumed -> :meth:`history`
- ``/dataset/CO2EmisProg`` — its forecast -> :meth:`forecast`

Rows: ``Minutes5UTC`` (UTC, no offset), ``PriceArea`` (``DK1`` west, ``DK2`` east) and
``CO2Emission``. Zones ``DK-DK1`` / ``DK-DK2`` (``DK1`` / ``DK2`` accepted too). Requests ask
for ``timezone=UTC``, are widened by two hours on each side (so that a server reading
``start``/``end`` in Danish time still covers the range) and cut to it by ``Minutes5UTC``.
Energinet's figure covers the emissions of the fuel burnt (``direct``), grid average.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
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
    parse_time_utc,
    schema_error,
    time_chunks,
)
from greenforge.grid.provider import register_provider
from greenforge.grid.series import IntensitySeries

NAME = "energidataservice"
BASE_URL = "https://api.energidataservice.dk"
STEP_S = 300.0
MAX_SPAN_S = 7 * 86400.0
MARGIN_S = 2 * 3600.0
ZONES: Mapping[str, str] = {"DK-DK1": "DK1", "DK-DK2": "DK2", "DK1": "DK1", "DK2": "DK2"}
REALISED = "CO2Emis"
FORECAST = "CO2EmisProg"


def _minutes(t_s: float) -> str:
    """``yyyy-MM-ddTHH:mm``, the API's datetime format."""
    return datetime.fromtimestamp(t_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M")


class EnergiDataProvider(ApiProvider):
    """Energi Data Service as an :class:`~greenforge.grid.provider.IntensityProvider`."""

    name = NAME
    default_base_url = BASE_URL
    base_url_setting = "energidataservice_base_url"

    def error_hints(self) -> ErrorHints:
        return ErrorHints(
            auth="Energi Data Service needs no key; a proxy may be refusing the request",
            zone="Use DK-DK1 (west Denmark) or DK-DK2 (east Denmark).",
            known_zones=("DK-DK1", "DK-DK2"),
        )

    def zones(self) -> Sequence[str]:
        return ("DK-DK1", "DK-DK2")

    def price_area(self, zone: str) -> str:
        try:
            return ZONES[zone.upper()]
        except KeyError:
            raise UnknownZoneError(
                zone, ("DK-DK1", "DK-DK2"), source="Energi Data Service"
            ) from None

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        """Realised 5-minute intensity (``CO2Emis``) over ``[start_s, end_s)``."""
        return self._dataset(REALISED, zone, start_s, end_s, forecast=False)

    def forecast(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        """Forecast 5-minute intensity (``CO2EmisProg``) over ``[start_s, end_s)``."""
        return self._dataset(FORECAST, zone, start_s, end_s, forecast=True)

    # -- internals ----------------------------------------------------------------------------

    def _dataset(
        self, dataset: str, zone: str, start_s: float, end_s: float, *, forecast: bool
    ) -> IntensitySeries:
        check_range(NAME, start_s, end_s)
        area = self.price_area(zone)
        path = f"/dataset/{dataset}"
        now = self._clock()
        lo = floor_to(start_s, 3600.0) - MARGIN_S
        hi = ceil_to(end_s, 3600.0) + MARGIN_S
        buf = PointBuffer()
        for a, b in time_chunks(lo, hi, MAX_SPAN_S):
            rows_max = math.ceil((b - a) / STEP_S) + 24
            params = {
                "start": _minutes(a),
                "end": _minutes(b),
                "timezone": "UTC",
                "filter": json.dumps({"PriceArea": [area]}, separators=(",", ":")),
                "columns": "Minutes5UTC,PriceArea,CO2Emission",
                "sort": "Minutes5UTC ASC",
                "limit": str(rows_max),
            }
            ttl = self.fresh_ttl_s(900.0) if forecast else self.past_ttl_s(b, now)
            payload = self.api.get_json(path, params=params, zone=zone, ttl_s=ttl)
            self._add(buf, payload, path, zone, area, forecast=forecast)
        return self.series(
            buf,
            path,
            zone=zone,
            source=f"{NAME}:{dataset}",
            step_s=STEP_S,
            start_s=start_s,
            end_s=end_s,
        )

    def _add(
        self,
        buf: PointBuffer,
        payload: Any,
        path: str,
        zone: str,
        area: str,
        *,
        forecast: bool,
    ) -> None:
        rows = self.rows(payload, "records", path, zone)
        endpoint = self.api.endpoint(path)
        try:
            for row in rows:
                if row.get("PriceArea", area) != area or row.get("CO2Emission") is None:
                    continue
                buf.add(
                    parse_time_utc(str(row["Minutes5UTC"])),
                    float(row["CO2Emission"]),
                    estimated=False,
                    forecast=forecast,
                )
        except (AttributeError, KeyError, ValueError, TypeError) as exc:
            raise schema_error(NAME, endpoint, zone, f"bad record ({exc})") from None
        total = payload.get("total")
        if isinstance(total, int) and total > len(rows):
            raise schema_error(
                NAME, endpoint, zone, f"answer truncated ({len(rows)} of {total} records)"
            )


def _factory(settings: Settings) -> EnergiDataProvider:
    return EnergiDataProvider(settings)


register_provider(NAME, _factory)
