"""The one place ``greenforge forge`` measures energy: :func:`measure` runs a function measured.

With the defaults it uses GreenForge's tracker (:class:`greenforge.tracker.Tracker`, which picks
the machine's meters and the grid intensity). Tests and callers can inject ``meters`` (e.g.
:class:`greenforge.testing.FakeMeter`) and an ``intensity_g_per_kwh``/``provider``; then the
meters are read directly around the call. A measurement problem never fails the workload: the
function's result is returned, and the measurement says ``method="unmeasured"`` with the reason.

Inference CO2e is computed at the *deployment* zone with :func:`deployment_intensity` (mean of
:func:`greenforge.grid.chain.intensity_for` over a year), not where the search ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from greenforge.config import Settings
from greenforge.errors import GreenForgeError
from greenforge.meters.base import Meter
from greenforge.units import S_PER_YEAR, co2e_g

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Energy and emissions of one measured call, with provenance."""

    energy_j: float
    low_j: float
    high_j: float
    duration_s: float
    co2e_g: float
    method: str
    """Meter method(s), e.g. ``model:cpu-tdp+model:ram``, ``rapl``, ``fake``."""
    intensity_source: str
    intensity_g_per_kwh: float
    cpu_time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Measurement:
        return Measurement(**data)


def _sum_measurements(ms: Sequence[Measurement]) -> Measurement:
    if not ms:
        return Measurement(0.0, 0.0, 0.0, 0.0, 0.0, "none", "none", 0.0)
    energy = sum(m.energy_j for m in ms)
    methods = sorted({m.method for m in ms})
    sources = sorted({m.intensity_source for m in ms})
    co2 = sum(m.co2e_g for m in ms)
    return Measurement(
        energy_j=energy,
        low_j=sum(m.low_j for m in ms),
        high_j=sum(m.high_j for m in ms),
        duration_s=sum(m.duration_s for m in ms),
        co2e_g=co2,
        method="+".join(methods),
        intensity_source="; ".join(sources),
        intensity_g_per_kwh=(co2 / (energy / 3.6e6)) if energy > 0 else ms[0].intensity_g_per_kwh,
        cpu_time_s=sum(m.cpu_time_s for m in ms),
    )


total = _sum_measurements
"""Sum several measurements (energy, CO2e, durations; methods and sources joined)."""


def energy_basis(methods: str) -> str:
    """How a ``+``-joined method string was obtained: ``measured`` (meters only: RAPL, NVML,
    ...), ``modelled`` (only ``model:*`` estimates, e.g. CPU TDP x utilisation), ``partly
    modelled`` (both), or ``unmeasured``. Reports say this instead of calling a modelled
    figure "measured"."""
    parts = [p for p in methods.split("+") if p and p != "none"]
    measured = [p for p in parts if not p.startswith(("model:", "unmeasured"))]
    modelled = [p for p in parts if p.startswith("model:")]
    if measured and not modelled and len(measured) == len(parts):
        return "measured"
    if measured or (modelled and len(modelled) < len(parts)):
        return "partly modelled"
    return "modelled" if modelled else "unmeasured"


def tracker_available() -> bool:
    """Whether GreenForge's tracker module is installed (it is part of the core package)."""
    return importlib.util.find_spec("greenforge.tracker") is not None


def measure(
    fn: Callable[[], T],
    settings: Settings,
    *,
    name: str = "forge",
    meters: Sequence[Meter] | None = None,
    intensity_g_per_kwh: float | None = None,
    intensity_source: str = "injected",
    zone: str | None = None,
) -> tuple[T, Measurement]:
    """Run ``fn()`` and measure it. Returns ``(fn's result, Measurement)``.

    - ``meters``: meters to read directly (tests); default: the tracker's own selection.
    - ``intensity_g_per_kwh``: a fixed intensity (tests); default: the tracker's grid chain for
      ``zone`` (else the settings' zone).
    """
    if tracker_available():
        provider: Any = None
        if intensity_g_per_kwh is not None:
            from greenforge.testing import StaticIntensity

            provider = StaticIntensity(intensity_g_per_kwh, name=intensity_source)
        return _measure_with_tracker(fn, settings, name, zone, meters, provider)
    if meters is None:
        from greenforge.meters.select import select_meters

        meters = select_meters(settings).meters
    return _measure_with_meters(fn, meters, intensity_g_per_kwh, intensity_source, settings, zone)


def _cpu_time_s() -> float:
    t = time.process_time()
    return t


def _measure_with_tracker(
    fn: Callable[[], T],
    settings: Settings,
    name: str,
    zone: str | None,
    meters: Sequence[Meter] | None,
    provider: Any,
) -> tuple[T, Measurement]:
    from greenforge import tracker as tracker_mod

    kwargs: dict[str, Any] = {"settings": settings, "name": name, "persist": False}
    if zone is not None:
        kwargs["zone"] = zone
    if meters is not None:
        kwargs["meters"] = meters
    if provider is not None:
        kwargs["provider"] = provider
    tr: Any = None
    t0 = time.time()
    c0 = _cpu_time_s()
    try:
        tr = _make_tracker(tracker_mod, kwargs)
        tr.start()
    except Exception as exc:  # never fail the workload because measuring failed
        _warn_once(f"forge: the tracker could not start ({exc}); this step is unmeasured.")
        tr = None
    try:
        result = fn()
    except BaseException:
        # the workload's own error propagates; the tracker (and its sampling thread) stops
        if tr is not None:
            with contextlib.suppress(Exception):
                tr.stop()
        raise
    c1 = _cpu_time_s()
    if tr is None:
        return result, _unmeasured(time.time() - t0, c1 - c0, "tracker failed to start")
    try:
        record = tr.stop()
    except Exception as exc:
        _warn_once(f"forge: the tracker failed to stop ({exc}); this step is unmeasured.")
        return result, _unmeasured(time.time() - t0, c1 - c0, "tracker failed")
    methods = sorted({c.method for c in record.components}) or ["unmeasured (no meter reading)"]
    if record.emissions is not None:
        co2 = record.emissions.co2e_g
        src = record.emissions.intensity.source
        mean_i = record.emissions.mean_intensity_g_per_kwh
    else:
        co2, src, mean_i = 0.0, "none (no intensity)", 0.0
    return result, Measurement(
        energy_j=record.energy_j,
        low_j=record.energy_low_j,
        high_j=record.energy_high_j,
        duration_s=record.duration_s,
        co2e_g=co2,
        method="+".join(methods),
        intensity_source=src,
        intensity_g_per_kwh=mean_i,
        cpu_time_s=c1 - c0,
    )


def _make_tracker(tracker_mod: Any, kwargs: dict[str, Any]) -> Any:
    """Create a Tracker, dropping keyword arguments this tracker version does not take."""
    import inspect

    cls = tracker_mod.Tracker
    params = inspect.signature(cls).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    usable = {k: v for k, v in kwargs.items() if accepts_any or k in params}
    return cls(**usable)


def _measure_with_meters(
    fn: Callable[[], T],
    meters: Sequence[Meter],
    intensity_g_per_kwh: float | None,
    intensity_source: str,
    settings: Settings,
    zone: str | None,
) -> tuple[T, Measurement]:
    started: list[Meter] = []
    for m in meters:
        try:
            m.start()
            started.append(m)
        except Exception as exc:
            _warn_once(f"forge: meter {getattr(m, 'name', m)!r} could not start: {exc}")
    t0 = time.time()
    c0 = _cpu_time_s()
    result = fn()
    c1 = _cpu_time_s()
    duration = time.time() - t0
    energy = low = high = 0.0
    methods: set[str] = set()
    for m in started:
        try:
            for r in m.read():
                energy += r.energy_j
                low += r.low_j
                high += r.high_j
                methods.add(r.method)
        except Exception as exc:
            _warn_once(f"forge: meter {getattr(m, 'name', m)!r} failed to read: {exc}")
    if intensity_g_per_kwh is None:
        intensity, source = deployment_intensity(settings, zone)
    else:
        intensity, source = intensity_g_per_kwh, intensity_source
    pue = settings.pue if settings.pue is not None else 1.0
    return result, Measurement(
        energy_j=energy,
        low_j=low,
        high_j=high,
        duration_s=duration,
        co2e_g=co2e_g(energy, intensity, pue),
        method="+".join(sorted(methods)) or "unmeasured",
        intensity_source=source,
        intensity_g_per_kwh=intensity,
        cpu_time_s=c1 - c0,
    )


def _unmeasured(duration_s: float, cpu_s: float, why: str) -> Measurement:
    return Measurement(0.0, 0.0, 0.0, duration_s, 0.0, f"unmeasured ({why})", "none", 0.0, cpu_s)


def deployment_intensity(settings: Settings, zone: str | None) -> tuple[float, str]:
    """Mean carbon intensity (g/kWh) of the deployment zone over the coming year, and its source.

    Uses :func:`greenforge.grid.chain.intensity_for` (the settings' provider chain, by default the
    embedded annual/profile data). Raises :class:`~greenforge.errors.ConfigError` when no zone is
    known (no silent default location).
    """
    from greenforge.errors import ConfigError

    z = zone or settings.zone
    if z is None:
        try:
            from greenforge.grid.zones import resolve_zone

            z = resolve_zone(settings, None)
        except (ImportError, AttributeError):
            z = None
    if z is None:
        raise ConfigError(
            "no deployment zone: pass --zone (e.g. --zone DE) or set `zone` in the task file "
            "or GREENFORGE_ZONE."
        )
    from greenforge.grid import chain

    now = time.time()
    series = chain.intensity_for(settings, z, now - S_PER_YEAR, now)
    values = series.values_g_per_kwh
    if values.size == 0:
        raise ConfigError(f"no carbon intensity for zone {z!r}; try another provider or zone.")
    import numpy as np

    from greenforge.grid.ops import mean_intensity

    mean = mean_intensity(series, np.array([now - S_PER_YEAR]), np.array([now]))
    return float(np.asarray(mean).ravel()[0]), series.source


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message in _WARNED:
        return
    _WARNED.add(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


__all__ = [
    "GreenForgeError",
    "Measurement",
    "deployment_intensity",
    "energy_basis",
    "measure",
    "total",
    "tracker_available",
]
