"""Times and durations as the user types them, and as GreenForge prints them.

* :func:`parse_time_s` reads a point in time: ``now``, ``+12h`` (relative to ``now_s``), unix
  seconds, or ISO 8601 with ``Z`` or an offset (no offset means UTC).
* :func:`parse_duration_s` reads ``4h``, ``90m``, ``1h30m``, ``2d``, ``45s`` or plain seconds.
* :func:`utc_iso` (milliseconds) and :func:`utc_iso_seconds` format unix seconds as ISO 8601
  UTC with a ``Z`` suffix.

All times inside GreenForge are unix seconds (float, UTC).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Final, Literal

from greenforge.errors import ConfigError

_UNITS_S: Final[dict[str, float]] = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)


def utc_iso(
    ts_s: float, *, timespec: Literal["minutes", "seconds", "milliseconds"] = "milliseconds"
) -> str:
    """A unix timestamp (s) as ISO 8601 UTC with a ``Z`` suffix.

    ``timespec`` as in :meth:`datetime.datetime.isoformat`: ``2024-01-01T00:00:00.000Z``
    (default), ``2024-01-01T00:00:00Z`` (``"seconds"``) or ``2024-01-01T00:00Z``
    (``"minutes"``).
    """
    return (
        dt.datetime.fromtimestamp(ts_s, tz=dt.timezone.utc)
        .isoformat(timespec=timespec)
        .replace("+00:00", "Z")
    )


def utc_iso_seconds(ts_s: float) -> str:
    """A unix timestamp (s) as ``2024-01-01T00:00:00Z`` (whole seconds), for messages and JSON."""
    return utc_iso(ts_s, timespec="seconds")


def parse_duration_s(text: str) -> float:
    """``"4h"``, ``"90m"``, ``"1h30m"``, ``"2d"``, ``"45s"`` or plain seconds -> seconds (> 0)."""
    raw = str(text).strip().lower()
    try:
        value = float(raw)
    except ValueError:
        parts = _DURATION.findall(raw)
        if not parts or _DURATION.sub("", raw).strip():
            raise ConfigError(
                f"bad duration {text!r}: use a number with a unit, e.g. 4h, 90m, 1h30m, 2d, "
                "or plain seconds."
            ) from None
        value = sum(float(n) * _UNITS_S[u.lower()] for n, u in parts)
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"bad duration {text!r}: a duration must be > 0.")
    return value


_MAX_TIME_S: Final[float] = 253402300799.0  # 9999-12-31T23:59:59Z, the last printable time


def parse_time_s(text: str, now_s: float) -> float:
    """A point in time: ``now``, ``+12h`` (relative to ``now_s``), unix seconds, or ISO 8601.

    ISO times without an offset are taken as UTC (``2026-11-30T06:00`` = 06:00 UTC). Times
    before 1970 or after the year 9999 are refused (they cannot be printed or looked up).
    """
    value = _parse_time_s(text, now_s)
    if not 0.0 <= value <= _MAX_TIME_S:
        raise ConfigError(
            f"bad time {text!r}: outside 1970-01-01 .. 9999-12-31 UTC (unix seconds "
            f"{value:.6g}). Check the value and its unit (seconds, not milliseconds)."
        )
    return value


def _parse_time_s(text: str, now_s: float) -> float:
    raw = str(text).strip()
    if raw.lower() == "now":
        return now_s
    if raw.startswith("+"):
        return now_s + parse_duration_s(raw[1:])
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        if math.isfinite(value):
            return value
    iso = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        raise ConfigError(
            f"bad time {text!r}: use ISO 8601 (2026-11-30T06:00Z or 2026-11-30T08:00+02:00), "
            "a relative time (+12h), unix seconds, or 'now'."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()
