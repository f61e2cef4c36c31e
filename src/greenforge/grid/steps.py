"""Grid intensity as a pure-Python step function, for the tracker's hot paths (no numpy).

A tracker needs a handful of intensity points (an hour of a typical profile, or one annual
value) and a cheap integral at every sample. :class:`StepIntensity` holds those points in
plain tuples and integrates exactly like :func:`greenforge.grid.ops.emissions_g` (point ``i``
holds over ``[t_i, t_i + step)``, a gap holds the previous value, outside the coverage the edge
value is held), so ``import greenforge`` plus a tracked run never imports numpy.

:func:`embedded_steps` answers the default ``embedded`` provider from the same tables as
:class:`greenforge.grid.providers.embedded.EmbeddedProvider` (typical hourly profile, else the
annual average of each year touched), reading the profile archive with :mod:`zipimport` and
:mod:`array` instead of numpy; its values and labels equal that provider's ``history()``.
"""

from __future__ import annotations

import array
import bisect
import dataclasses
import functools
import io
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from greenforge.errors import ConfigError
from greenforge.pkgdata import data_file, read_data
from greenforge.records import IntensityProvenance
from greenforge.units import J_PER_KWH

if TYPE_CHECKING:
    from greenforge.grid.series import IntensitySeries

PROFILE_STEP_S = 3600.0
DAY_S = 86_400.0
_BASES = ("direct", "lca")
_MEDIAN = 0.5


@dataclasses.dataclass(frozen=True, eq=False)
class StepIntensity:
    """Intensity (g/kWh) at ``times_s[i]`` holding until the next point (the last for
    ``step_s``), with the provenance of the series it came from."""

    times_s: tuple[float, ...]
    values_g_per_kwh: tuple[float, ...]
    step_s: float
    provenance: IntensityProvenance
    _knots: tuple[float, ...] = dataclasses.field(init=False, repr=False)
    _cum: tuple[float, ...] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.times_s or len(self.times_s) != len(self.values_g_per_kwh):
            raise ConfigError("a step intensity needs as many values as times (at least one).")
        knots = (*self.times_s, self.times_s[-1] + self.step_s)
        cum = [0.0]
        for i, value in enumerate(self.values_g_per_kwh):
            cum.append(cum[-1] + value * (knots[i + 1] - knots[i]))
        object.__setattr__(self, "_knots", knots)
        object.__setattr__(self, "_cum", tuple(cum))

    @classmethod
    def from_series(cls, series: IntensitySeries) -> StepIntensity:
        """The same step function as ``series`` (an :class:`IntensitySeries`)."""
        return cls(
            tuple(float(t) for t in series.times_s.tolist()),
            tuple(float(v) for v in series.values_g_per_kwh.tolist()),
            float(series.step_s),
            series.provenance(),
        )

    @property
    def start_s(self) -> float:
        """Returns the start of the coverage (unix s)."""
        return self._knots[0]

    @property
    def end_s(self) -> float:
        """Returns the end of the coverage (unix s)."""
        return self._knots[-1]

    def covers(self, start_s: float, end_s: float) -> bool:
        """Returns True when ``[start_s, end_s]`` lies inside the coverage."""
        return self._knots[0] <= start_s and end_s <= self._knots[-1]

    def value_at(self, t_s: float) -> float:
        """Returns the intensity (g/kWh) of the point that holds at ``t_s`` (edge values
        outside the coverage)."""
        i = min(max(bisect.bisect_right(self.times_s, t_s) - 1, 0), len(self.times_s) - 1)
        return self.values_g_per_kwh[i]

    def integral(self, t_s: float) -> float:
        """Returns the integral of the intensity from the coverage start to ``t_s``
        (g/kWh x s; edge values held outside the coverage)."""
        knots, cum = self._knots, self._cum
        if t_s <= knots[0]:
            return (t_s - knots[0]) * self.values_g_per_kwh[0]
        if t_s >= knots[-1]:
            return cum[-1] + (t_s - knots[-1]) * self.values_g_per_kwh[-1]
        i = bisect.bisect_right(knots, t_s) - 1
        return cum[i] + (t_s - knots[i]) * self.values_g_per_kwh[i]

    def mean(self, start_s: float, end_s: float) -> float:
        """Returns the time-weighted mean intensity (g/kWh) over ``[start_s, end_s)``."""
        width = end_s - start_s
        if width <= 0:
            return self.value_at(start_s)
        mean = (self.integral(end_s) - self.integral(start_s)) / width
        return min(max(mean, min(self.values_g_per_kwh)), max(self.values_g_per_kwh))

    def co2e_g(self, start_s: float, end_s: float, energy_j: float, pue: float) -> float:
        """Returns the CO2e (g) of ``energy_j`` spread evenly over ``[start_s, end_s)``."""
        if energy_j == 0.0:
            return 0.0
        i = bisect.bisect_right(self.times_s, start_s) - 1
        if i >= 0 and end_s <= self._knots[i + 1]:  # one point covers it: the common case
            intensity = self.values_g_per_kwh[i]
        else:
            intensity = self.mean(start_s, end_s)
        return energy_j / J_PER_KWH * pue * intensity


# -- the embedded tables, without numpy ---------------------------------------------------


def _npy(raw: bytes) -> tuple[str, tuple[int, ...], memoryview]:
    """Returns (dtype descr, shape, data) of a C-ordered ``.npy`` file's bytes."""
    import ast

    if raw[:6] != b"\x93NUMPY":
        raise ConfigError("the embedded profile archive is damaged: reinstall greenforge.")
    major = raw[6]
    if major == 1:
        header_len, offset = int.from_bytes(raw[8:10], "little"), 10
    else:
        header_len, offset = int.from_bytes(raw[8:12], "little"), 12
    header: dict[str, Any] = ast.literal_eval(raw[offset : offset + header_len].decode("latin1"))
    if header.get("fortran_order"):
        raise ConfigError("the embedded profile archive is damaged: reinstall greenforge.")
    return str(header["descr"]), tuple(header["shape"]), memoryview(raw)[offset + header_len :]


@dataclasses.dataclass(frozen=True)
class _Medians:
    zones: tuple[str, ...]
    shape: tuple[int, ...]  # zone, basis, daytype, month, hour, quantile
    median_index: int
    values_dg: array.array[int]  # flat, C order, decigrams per kWh
    info: dict[str, Any]


def _npz_reader(relative: str) -> Callable[[str], bytes]:
    """Returns a reader of the members of the embedded archive ``relative``: through
    ``zipimport`` (loaded by the import system already, so no zipfile/shutil/bz2 import,
    ~5 ms of a tracker start) when the archive is a file, else through ``zipfile``."""
    path = data_file("greenforge.grid", relative)
    if path is not None:
        import zipimport

        return zipimport.zipimporter(str(path)).get_data
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(read_data("greenforge.grid", relative)))
    return archive.read


@functools.lru_cache(maxsize=1)
def _medians() -> _Medians:
    read = _npz_reader("data/profiles.npz")
    zones_descr, _, zones_raw = _npy(read("zones.npy"))
    q_descr, _, q_raw = _npy(read("quantiles.npy"))
    values_descr, shape, values_raw = _npy(read("values_dg_per_kwh.npy"))
    if zones_descr[:2] != "<U" or q_descr != "<f8" or values_descr != "<u2":
        raise ConfigError("the embedded profile archive has an unexpected layout.")
    width = int(zones_descr[2:])
    text = bytes(zones_raw).decode("utf-32-le")
    zones = tuple(text[i : i + width].rstrip("\x00") for i in range(0, len(text), width))
    quantiles = array.array("d", bytes(q_raw))
    values = array.array("H", bytes(values_raw))
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        quantiles.byteswap()
        values.byteswap()
    info: dict[str, Any] = json.loads(read_data("greenforge.grid", "data/profiles.json"))
    return _Medians(zones, shape, list(quantiles).index(_MEDIAN), values, info)


def _profile_steps(zone: str, start_s: float, end_s: float, basis: str) -> StepIntensity:
    """The median typical profile, hourly, as ``profile_series(zone, ..., q=0.5)``."""
    m = _medians()
    if basis not in _BASES:
        raise ConfigError(f"bad basis {basis!r}: use 'lca' (life-cycle) or 'direct'.")
    zi, bi = m.zones.index(zone), _BASES.index(basis)
    _, _, n_day, n_month, n_hour, n_q = m.shape
    zone_info = m.info["zones"][zone]
    offset_s = float(zone_info["standard_offset_h"]) * 3600.0
    first = math.floor(start_s / PROFILE_STEP_S) * PROFILE_STEP_S
    n = max(math.ceil((end_s - first) / PROFILE_STEP_S), 1)
    times = tuple(first + PROFILE_STEP_S * k for k in range(n))
    values = []
    for t in times:
        local = t + offset_s
        day = math.floor(local / DAY_S)
        hour = math.floor(local / 3600.0) % 24
        month = time.gmtime(math.floor(local)).tm_mon - 1
        weekend = 1 if (day + 3) % 7 >= 5 else 0  # 1970-01-01 was a Thursday
        flat = (((((zi * 2 + bi) * n_day + weekend) * n_month + month) * n_hour + hour) * n_q) + (
            m.median_index
        )
        values.append(m.values_dg[flat] / 10.0)
    years = zone_info["years"]
    source = f"embedded:profile-{years[0]}-{years[-1]}:{zone}"
    provenance = IntensityProvenance(source, zone, "average", basis, True, "profile")
    return StepIntensity(times, tuple(values), PROFILE_STEP_S, provenance)


def _annual_steps(zone: str, start_s: float, end_s: float) -> StepIntensity:
    """The annual average of each year touched, as ``embedded.annual_series``."""
    from greenforge.grid.zones import annual_intensity, annual_years

    first_year = time.gmtime(math.floor(start_s)).tm_year
    last_year = time.gmtime(math.floor(max(start_s, math.ceil(end_s) - 1.0))).tm_year
    table_years = annual_years(zone)
    lo, hi = (table_years[0] - 1, table_years[-1] + 1) if table_years else (first_year,) * 2
    first_year, last_year = min(max(first_year, lo), hi), min(max(last_year, lo), hi)
    values = {year: annual_intensity(zone, year) for year in range(first_year, last_year + 1)}
    used = sorted({v.year for v in values.values()})
    sample = values[first_year]
    if len(used) == 1:
        provenance = IntensityProvenance(
            sample.source, sample.zone, "average", sample.basis, False, "annual"
        )
        step = max(end_s - start_s, 1e-9)
        return StepIntensity((start_s,), (sample.intensity_g_per_kwh,), step, provenance)
    first = math.floor(start_s / DAY_S) * DAY_S
    n = max(math.ceil((end_s - first) / DAY_S), 1)
    times = tuple(first + DAY_S * k for k in range(n))
    point_values = tuple(
        values[min(max(time.gmtime(t).tm_year, first_year), last_year)].intensity_g_per_kwh
        for t in times
    )
    source = f"embedded:{sample.dataset}-{'+'.join(str(y) for y in used)}:{sample.zone}"
    provenance = IntensityProvenance(source, sample.zone, "average", sample.basis, False, "annual")
    return StepIntensity(times, point_values, DAY_S, provenance)


def has_embedded_profile(zone: str) -> bool:
    """Returns True when ``zone`` (canonical spelling) has an embedded hourly profile."""
    return zone in _medians().zones


def embedded_steps(
    zone: str, start_s: float, end_s: float, basis: str = "lca", prefer: str = "profile"
) -> StepIntensity:
    """Returns the embedded intensity of ``zone`` over ``[start_s, end_s)`` as a step function:
    the median typical profile where the zone has one (``prefer="profile"``), else the annual
    average; the same values and labels as ``EmbeddedProvider(prefer, basis).history(...)``.
    Raises :class:`~greenforge.errors.UnknownZoneError` for a zone the tables lack, and
    :class:`~greenforge.errors.ConfigError` for a range that is not finite, reversed, or beyond
    the years 1970-9999 (use the provider for those)."""
    from greenforge.grid.zones import canonical_zone, unknown_zone_error

    if not (math.isfinite(start_s) and math.isfinite(end_s)) or end_s < start_s:
        raise ConfigError(f"bad time range [{start_s!r}, {end_s!r}): end must not precede start.")
    if start_s < 0 or end_s >= 253_402_300_800.0:  # 10000-01-01: beyond time.gmtime's years
        raise ConfigError(f"time range [{start_s!r}, {end_s!r}) outside the years 1970-9999.")
    z = canonical_zone(zone)
    if z is None:
        raise unknown_zone_error(zone, "the embedded tables")
    if prefer == "profile" and has_embedded_profile(z):
        return _profile_steps(z, start_s, end_s, basis)
    return _annual_steps(z, start_s, end_s)


def steps_total_co2e_g(
    steps: StepIntensity,
    starts_s: Sequence[float],
    ends_s: Sequence[float],
    energy_j: Sequence[float],
    pue: float,
) -> float:
    """Returns the summed CO2e (g) of intervals ``[starts_s[i], ends_s[i])`` of ``energy_j[i]``."""
    return math.fsum(
        steps.co2e_g(s, e, j, pue) for s, e, j in zip(starts_s, ends_s, energy_j, strict=True)
    )


__all__ = ["StepIntensity", "embedded_steps", "has_embedded_profile", "steps_total_co2e_g"]
