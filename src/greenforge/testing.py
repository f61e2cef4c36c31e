"""Fakes for tests - ours and our users'. Real components everywhere else.

- :class:`FakeMeter`: constant power per component, on an injectable clock.
- :class:`ReplayMeter`: replays a recorded CSV of ``time_s,component,power_w`` rows.
- :class:`StaticIntensity`: a grid provider with one fixed (or per-zone) intensity.
- :class:`ManualClock`: a clock moved by hand, for exact meter/tracker tests.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from greenforge.errors import DataError, ProviderError, UnknownZoneError
from greenforge.grid.series import IntensitySeries, constant_series
from greenforge.meters.base import Scope
from greenforge.records import EnergyReading

Clock = Callable[[], float]


class ManualClock:
    """A clock that only moves when told to (unix seconds); share it between a meter and a
    tracker to get exact, sleep-free measurements in tests."""

    def __init__(self, start_s: float = 1_700_000_000.0) -> None:
        self.now_s = float(start_s)

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds!r} s)")
        self.now_s += seconds


class FakeMeter:
    """Constant power per component; energy = power x elapsed time on ``clock``."""

    def __init__(
        self,
        power_w: Mapping[str, float] | float = 10.0,
        name: str = "fake",
        scope: Scope = "node",
        method: str = "fake",
        clock: Clock = time.monotonic,
        rel_err: float = 0.0,
    ) -> None:
        self.name = name
        self.scope: Scope = scope
        self.power_w = dict(power_w) if isinstance(power_w, Mapping) else {"cpu": float(power_w)}
        self.method = method
        self.clock = clock
        self.rel_err = rel_err
        self.reads = 0
        self.closed = False
        self._last: float | None = None

    def start(self) -> None:
        self._last = self.clock()

    def read(self) -> Sequence[EnergyReading]:
        now = self.clock()
        last = now if self._last is None else self._last
        self._last = now
        self.reads += 1
        dt_s = max(now - last, 0.0)
        return [
            EnergyReading.exact(c, p * dt_s, self.method, self.rel_err)
            for c, p in self.power_w.items()
        ]

    def close(self) -> None:
        self.closed = True


class ReplayMeter:
    """Replays recorded power from a CSV with columns ``time_s,component,power_w``.

    ``time_s`` is relative to the recording start; each read integrates the recorded power
    (step-wise, previous value held) between the previous and the current clock time.
    """

    def __init__(
        self,
        path: str | Path,
        name: str = "replay",
        scope: Scope = "node",
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self.scope: Scope = scope
        self.clock = clock
        self.path = Path(path)
        self._series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        rows: dict[str, list[tuple[float, float]]] = {}
        try:
            with self.path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                missing = {"time_s", "component", "power_w"} - set(reader.fieldnames or ())
                if missing:
                    raise DataError(
                        f"{self.path}: replay CSV lacks column(s) {sorted(missing)}; "
                        "expected header time_s,component,power_w."
                    )
                for lineno, row in enumerate(reader, start=2):
                    try:
                        t, p = float(row["time_s"]), float(row["power_w"])
                    except ValueError:
                        raise DataError(
                            f"{self.path}:{lineno}: non-numeric value in {row}."
                        ) from None
                    if p < 0:
                        raise DataError(f"{self.path}:{lineno}: negative power {p}.")
                    rows.setdefault(row["component"], []).append((t, p))
        except OSError as exc:
            raise DataError(f"cannot read replay file {str(self.path)!r}: {exc}") from None
        for comp, pts in rows.items():
            pts.sort()
            self._series[comp] = (
                np.array([t for t, _ in pts], dtype=np.float64),
                np.array([p for _, p in pts], dtype=np.float64),
            )
        self._t0: float | None = None
        self._last_rel = 0.0

    def _energy_until(self, comp: str, rel_s: float) -> float:
        t, p = self._series[comp]
        edges = np.clip(np.append(t, np.inf), None, rel_s)
        widths = np.clip(np.diff(edges), 0.0, None)
        return float(np.sum(widths * p))

    def start(self) -> None:
        self._t0 = self.clock()
        self._last_rel = 0.0

    def read(self) -> Sequence[EnergyReading]:
        if self._t0 is None:
            self.start()
        assert self._t0 is not None
        rel = self.clock() - self._t0
        out = []
        for comp in self._series:
            e = self._energy_until(comp, rel) - self._energy_until(comp, self._last_rel)
            out.append(EnergyReading.exact(comp, e, "replay"))
        self._last_rel = rel
        return out

    def close(self) -> None:
        pass


class StaticIntensity:
    """A grid provider with a fixed intensity (one value, or one per zone)."""

    def __init__(
        self,
        intensity_g_per_kwh: float | Mapping[str, float] = 100.0,
        name: str = "static",
    ) -> None:
        self.name = name
        if isinstance(intensity_g_per_kwh, Mapping):
            self._values = dict(intensity_g_per_kwh)
            self._default: float | None = None
        else:
            self._values = {}
            self._default = float(intensity_g_per_kwh)

    def zones(self) -> Sequence[str]:
        return sorted(self._values)

    def _value(self, zone: str) -> float:
        if zone in self._values:
            return self._values[zone]
        if self._default is not None:
            return self._default
        raise UnknownZoneError(zone, self._values, source=self.name)

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        return constant_series(
            self._value(zone), zone, f"{self.name}:{zone}", start_s, end_s, kind="static"
        )

    def forecast(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        raise ProviderError(f"{self.name} provider has no forecast for {zone!r}.")
