"""Typical hourly intensity profiles for the 16 zones with embedded hourly data.

Each profile is a table month x hour-of-day x (weekday, weekend) of quantiles (5 %..95 %) of
the Electricity Maps hourly intensity in 2021-2023, for both the direct and the life-cycle
basis, indexed in the zone's local *standard* time (no daylight saving, so the index is a pure
function of UTC). Weekday and weekend are kept apart only where the weekend difference is
above 2 % of the mean and at least 1.5x a same-size weekday-vs-weekday noise baseline; other
zones use one all-days table for both (``profile_info(zone)`` gives both numbers).

A profile is a climatology, not a measurement: series built from it have ``kind="profile"``,
every point flagged ``estimated``, and a source like ``embedded:profile-2021-2023:GB``.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from greenforge.errors import ConfigError, UnknownZoneError
from greenforge.grid.series import FloatArray, IntensitySeries

_BASES = ("direct", "lca")
PROFILE_STEP_S = 3600.0


@dataclasses.dataclass(frozen=True)
class _Profiles:
    zones: tuple[str, ...]
    quantiles: FloatArray
    values_g_per_kwh: FloatArray  # [zone, basis, daytype, month, hour, quantile]
    info: dict[str, Any]


@functools.lru_cache(maxsize=1)
def _profiles() -> _Profiles:
    base = resources.files("greenforge.grid").joinpath("data")
    with np.load(io.BytesIO(base.joinpath("profiles.npz").read_bytes())) as npz:
        zones = tuple(str(z) for z in npz["zones"])
        quantiles = np.asarray(npz["quantiles"], dtype=np.float64)
        values = np.asarray(npz["values_dg_per_kwh"], dtype=np.float64) / 10.0
    info: dict[str, Any] = json.loads(base.joinpath("profiles.json").read_text("utf-8"))
    return _Profiles(zones, quantiles, values, info)


def profile_zones() -> list[str]:
    """Zones with an embedded typical hourly profile."""
    return list(_profiles().zones)


def has_profile(zone: str) -> bool:
    return zone in _profiles().zones


def profile_info(zone: str) -> dict[str, Any]:
    """Metadata of a zone's profile: years, standard offset, weekday/weekend split and the
    measured weekday/weekend median difference."""
    p = _profiles()
    _zone_index(zone)
    info: dict[str, Any] = dict(p.info["zones"][zone])
    return info


def profile_source(zone: str) -> str:
    years = profile_info(zone)["years"]
    return f"embedded:profile-{years[0]}-{years[-1]}:{zone}"


def _zone_index(zone: str) -> int:
    p = _profiles()
    try:
        return p.zones.index(zone)
    except ValueError:
        raise UnknownZoneError(zone, p.zones, source="the embedded hourly profiles") from None


def _basis_index(basis: str) -> int:
    if basis not in _BASES:
        raise ConfigError(f"bad basis {basis!r}: use 'lca' (life-cycle) or 'direct'.")
    return _BASES.index(basis)


def _cells(zone: str, times_s: FloatArray) -> tuple[npt.NDArray[np.int64], ...]:
    """(daytype, month, hour) indices of each UTC time in the zone's local standard time."""
    offset_s = float(profile_info(zone)["standard_offset_h"]) * 3600.0
    local = times_s + offset_s
    days = np.floor(local / 86400.0).astype(np.int64)
    hour = (np.floor(local / 3600.0).astype(np.int64)) % 24
    month = local.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12
    weekend = ((days + 3) % 7 >= 5).astype(np.int64)  # 1970-01-01 was a Thursday
    return weekend, month, hour


def profile_quantiles(
    zone: str,
    times_s: npt.ArrayLike,
    q: float | Sequence[float],
    basis: str = "lca",
) -> FloatArray:
    """Typical intensity (g/kWh) of ``zone`` at each UTC time, at quantile(s) ``q``.

    ``q`` in [0.05, 0.95]; levels between the stored ones (5, 10, 20, ..., 90, 95 %) are
    interpolated linearly. A scalar ``q`` gives shape ``(n,)``, a sequence ``(len(q), n)``.
    """
    p = _profiles()
    zi = _zone_index(zone)
    bi = _basis_index(basis)
    qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
    lo, hi = float(p.quantiles[0]), float(p.quantiles[-1])
    if np.any((qs < lo) | (qs > hi)) or not np.all(np.isfinite(qs)):
        raise ConfigError(f"bad quantile(s) {q!r}: use values between {lo} and {hi}.")
    t = np.atleast_1d(np.asarray(times_s, dtype=np.float64))
    daytype, month, hour = _cells(zone, t)
    table = p.values_g_per_kwh[zi, bi][daytype, month, hour]  # (n, nq)
    # Interpolate along the quantile axis for each requested level.
    pos = np.interp(qs, p.quantiles, np.arange(p.quantiles.size, dtype=np.float64))
    below = np.floor(pos).astype(np.int64)
    above = np.minimum(below + 1, p.quantiles.size - 1)
    frac = pos - below
    out = table[:, below] * (1.0 - frac) + table[:, above] * frac  # (n, len(q))
    result = np.ascontiguousarray(out.T)
    return result[0] if np.ndim(q) == 0 else result


MAX_PROFILE_POINTS = 100 * 8784
"""Most hourly points one profile series may have (about 100 years; ~80 MB while built)."""


def profile_series(
    zone: str,
    start_s: float,
    end_s: float,
    basis: str = "lca",
    q: float = 0.5,
    forecast: bool = False,
) -> IntensitySeries:
    """Hourly typical-profile series covering ``[start_s, end_s)`` (hour-aligned in UTC).

    Labelled ``kind="profile"``, all points ``estimated`` (and ``forecast`` when asked)."""
    if not (np.isfinite(start_s) and np.isfinite(end_s)) or end_s < start_s:
        raise ConfigError(f"bad time range [{start_s!r}, {end_s!r}): end must not precede start.")
    first = np.floor(start_s / PROFILE_STEP_S) * PROFILE_STEP_S
    n = max(int(np.ceil((end_s - first) / PROFILE_STEP_S)), 1)
    if n > MAX_PROFILE_POINTS:
        # a typo'd year (2024 -> 9024) must not allocate gigabytes of hourly points
        raise ConfigError(
            f"time range too long for an hourly profile of {zone!r}: {n} hours "
            f"(at most {MAX_PROFILE_POINTS}, about 100 years). Check the start and end times."
        )
    times = first + PROFILE_STEP_S * np.arange(n, dtype=np.float64)
    values = profile_quantiles(zone, times, q, basis)
    label = "" if q == 0.5 else f" (p{round(q * 100):d})"
    return IntensitySeries(
        times_s=times,
        values_g_per_kwh=values,
        step_s=PROFILE_STEP_S,
        zone=zone,
        source=profile_source(zone) + label,
        signal="average",
        basis=basis,
        kind="profile",
        estimated=np.ones(n, dtype=np.bool_),
        forecast=np.full(n, forecast, dtype=np.bool_),
    )
