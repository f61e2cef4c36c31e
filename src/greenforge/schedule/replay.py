"""Replay recorded forecasts (a live provider's own, or any other) in the back-tester.

A forecast file is a CSV with a header and one row per (issue, target) pair::

    issued_at,target_time,value[,zone]
    2023-03-01T00:00Z,2023-03-01T00:00Z,212.5,GB
    2023-03-01T00:00Z,2023-03-01T01:00Z,205.0,GB
    ...

Times are ISO 8601 (no offset means UTC) or unix seconds; ``value`` is g/kWh. Column names
may also be ``issued``/``issue_time``/``created_at``, ``target``/``datetime``/``timestamp``
and ``intensity``/``carbon_intensity``/``intensity_g_per_kwh``. Record a provider's forecast as
you fetch it with :func:`append_forecast_csv`.

:class:`RecordedForecaster` is a :class:`~greenforge.schedule.forecast.Forecaster`: at each
decision time it uses **the latest forecast issued at or before it** (never a later one), and
for each step the mean of that issue's values whose target falls in the step. A decision with
no issue in the last ``max_age_s`` seconds, or a step the issue does not reach, is a
``DataError`` naming the time, so a comparison never mixes in another forecaster silently.
Create one by name with ``create_forecaster("recorded:PATH")``, e.g.
``greenforge backtest --file history.csv --forecast auto,recorded:em_forecasts.csv``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from greenforge.errors import ConfigError, DataError
from greenforge.grid.series import IntensitySeries
from greenforge.schedule.forecast import ForecastInput
from greenforge.timeutil import utc_iso_seconds

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_ROWS = 5_000_000
"""Most rows one forecast file may have (about 570 hourly issues a year of 72 h each, x 100)."""
MAX_G_PER_KWH = 5000.0
_ISSUED = ("issued_at", "issued", "issue_time", "created_at")
_TARGET = ("target_time", "target", "datetime", "timestamp")
_VALUE = ("value", "intensity", "carbon_intensity", "intensity_g_per_kwh")


def _time_s(text: str, where: str) -> float:
    raw = text.strip()
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(
            f"{where}: bad time {raw!r}; write ISO 8601 (2023-03-01T00:00Z) or unix seconds."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


def _column(header: list[str], names: tuple[str, ...], path: Path) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise DataError(
        f"{path}: no {names[0]!r} column (header: {', '.join(header)}); a forecast file needs "
        "issued_at,target_time,value (and optionally zone)."
    )


@dataclasses.dataclass(frozen=True, eq=False)
class RecordedForecasts:
    """Every recorded forecast of one zone: row ``m`` says the issue made at
    ``issued_s[issue[m]]`` predicted ``values_g_per_kwh[m]`` for ``target_s[m]``."""

    zone: str | None
    issued_s: FloatArray  # sorted, unique
    issue: IntArray
    target_s: FloatArray
    values_g_per_kwh: FloatArray
    source: str


def _group(
    zone: str | None, rows: list[tuple[float, float, float]], source: str
) -> RecordedForecasts:
    arr = np.array(rows, dtype=np.float64)
    issued, issue = np.unique(arr[:, 0], return_inverse=True)
    return RecordedForecasts(zone, issued, issue.astype(np.int64), arr[:, 1], arr[:, 2], source)


def load_forecast_csv(path: str | Path) -> dict[str | None, RecordedForecasts]:
    """Returns the recorded forecasts of a CSV file by zone (``None`` when it has no zone
    column: then they serve any zone)."""
    p = Path(path)
    try:
        handle = p.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read forecast file {p}: {exc.strerror or exc}.") from None
    by_zone: dict[str | None, list[tuple[float, float, float]]] = {}
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{p}: empty file; a forecast file needs issued_at,target_time,value.")
        ci = _column(header, _ISSUED, p)
        ct = _column(header, _TARGET, p)
        cv = _column(header, _VALUE, p)
        lowered = [h.strip().lower() for h in header]
        cz = lowered.index("zone") if "zone" in lowered else None
        for line, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            where = f"{p}:{line}"
            if len(row) < len(header):
                raise DataError(f"{where}: {len(row)} fields, the header has {len(header)}.")
            try:
                value = float(row[cv])
            except ValueError:
                raise DataError(
                    f"{where}: bad value {row[cv]!r}; give g/kWh as a number."
                ) from None
            if not (math.isfinite(value) and 0.0 <= value <= MAX_G_PER_KWH):
                raise DataError(f"{where}: value {value!r} g/kWh is outside 0-{MAX_G_PER_KWH:g}.")
            zone = row[cz].strip() if cz is not None else None
            rows = by_zone.setdefault(zone, [])
            rows.append((_time_s(row[ci], where), _time_s(row[ct], where), value))
            if sum(len(r) for r in by_zone.values()) > MAX_ROWS:
                raise DataError(f"{p}: more than {MAX_ROWS} rows; split the file.")
    if not by_zone:
        raise DataError(f"{p}: no forecast rows.")
    return {z: _group(z, rows, f"recorded:{p.name}") for z, rows in by_zone.items()}


def append_forecast_csv(path: str | Path, series: IntensitySeries, issued_s: float) -> int:
    """Append a forecast (e.g. a live provider's, as fetched) to a forecast CSV file.

    Returns the number of rows written; the header is written when the file is new.
    """
    p = Path(path)
    new = not p.exists() or p.stat().st_size == 0
    with p.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["issued_at", "target_time", "value", "zone"])
        issued = utc_iso_seconds(issued_s)
        for t, v in zip(series.times_s, series.values_g_per_kwh, strict=True):
            writer.writerow([issued, utc_iso_seconds(float(t)), f"{float(v):.6g}", series.zone])
    return len(series)


@dataclasses.dataclass(frozen=True, eq=False)
class RecordedForecaster:
    """Plays back recorded forecasts: at each decision, the latest issue at or before it."""

    recorded: dict[str | None, RecordedForecasts]
    label: str = "file"
    max_age_s: float = 6 * 3600.0
    """An issue older than this at a decision is not used (a ``DataError`` instead)."""
    needs_future: bool = False

    def __post_init__(self) -> None:
        if not self.recorded:
            raise ConfigError("no recorded forecasts given.")
        if not self.max_age_s >= 0:
            raise ConfigError(f"max_age_s must be >= 0, got {self.max_age_s!r}.")

    @classmethod
    def from_csv(cls, path: str | Path, max_age_s: float = 6 * 3600.0) -> RecordedForecaster:
        """Returns a forecaster replaying the forecast CSV at ``path``."""
        return cls(load_forecast_csv(path), Path(path).name, max_age_s)

    @property
    def name(self) -> str:
        return f"recorded:{self.label}"

    @property
    def description(self) -> str:
        return f"forecasts recorded in {self.label}, each decision using the latest issue before it"

    def history_steps(self, horizon: int, step_s: float) -> int:
        return 0

    def _for_zone(self, zone: str) -> RecordedForecasts:
        if zone in self.recorded:
            return self.recorded[zone]
        if None in self.recorded:
            return self.recorded[None]
        zones = ", ".join(sorted(str(z) for z in self.recorded))
        raise DataError(f"{self.label} has no forecasts for zone {zone!r} (it has {zones}).")

    def predict(self, inp: ForecastInput) -> FloatArray:
        """Returns the ``(N, horizon)`` recorded forecasts (g/kWh) for the decisions."""
        rec = self._for_zone(inp.zone)
        step = inp.step_s
        times = inp.decision_times_s
        k = np.searchsorted(rec.issued_s, times, side="right") - 1
        if np.any(k < 0):
            first = float(times[int(np.argmax(k < 0))])
            raise DataError(
                f"{self.label}: no forecast issued at or before {utc_iso_seconds(first)} for "
                f"{inp.zone!r} (the first is {utc_iso_seconds(float(rec.issued_s[0]))}); "
                "back-test from a later --from."
            )
        age = times - rec.issued_s[k]
        if np.any(age > self.max_age_s):
            n = int(np.argmax(age > self.max_age_s))
            raise DataError(
                f"{self.label}: at {utc_iso_seconds(float(times[n]))} the latest forecast for "
                f"{inp.zone!r} is {age[n] / 3600:.3g} h old (more than "
                f"{self.max_age_s / 3600:g} h); the recording has a gap there."
            )
        # bucket every recorded row into its data step, keyed by (issue, step index)
        phase = float(times[0]) % step
        bucket = np.floor((rec.target_s - phase) / step + 1e-9).astype(np.int64)
        lo = int(bucket.min())
        span = int(bucket.max()) - lo + inp.horizon + 2
        keys = rec.issue * span + (bucket - lo)
        uniq, inverse = np.unique(keys, return_inverse=True)
        sums = np.bincount(inverse, weights=rec.values_g_per_kwh)
        counts = np.bincount(inverse)
        means = sums / counts
        first_bucket = np.floor((times - phase) / step + 1e-9).astype(np.int64)
        want = first_bucket[:, None] + np.arange(inp.horizon)[None, :] - lo  # (N, H)
        valid = (want >= 0) & (want < span)
        q = k[:, None] * span + np.clip(want, 0, span - 1)
        pos = np.clip(np.searchsorted(uniq, q), 0, uniq.size - 1)
        found = valid & (uniq[pos] == q)
        if not np.all(found):
            n, h = (int(i[0]) for i in np.nonzero(~found))
            raise DataError(
                f"{self.label}: the forecast issued {utc_iso_seconds(float(rec.issued_s[k[n]]))} "
                f"for {inp.zone!r} has no value for {utc_iso_seconds(float(times[n] + h * step))} "
                f"({h} steps after the decision at {utc_iso_seconds(float(times[n]))}); use a "
                "shorter job + slack or a recording that reaches further."
            )
        return np.asarray(means[pos], dtype=np.float64)


def recorded_from_name(argument: str) -> RecordedForecaster:
    """Returns the forecaster for ``recorded:PATH`` (the part after the colon)."""
    if not argument:
        raise ConfigError("write the recorded forecasts as recorded:PATH (a forecast CSV file).")
    return RecordedForecaster.from_csv(argument)
