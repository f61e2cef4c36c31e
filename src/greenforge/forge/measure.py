"""The one place ``greenforge forge`` measures a step's energy: :func:`measure` runs a function
measured with a :class:`Metering` (attribution + intensity + PUE, each with its source).

The attribution is the forge's protocol (:mod:`greenforge.forge.protocol`): by default the
process's own CPU time x the modelled per-core power plus its resident memory, so other work on
the machine does not change a step's figure. Tests and callers inject meters (``meters``) and an
intensity (``intensity_g_per_kwh`` + ``intensity_source``) as plain parameters. A meter problem
never fails the workload: the function's result is returned and the method says
``unmeasured (...)``. An unknown intensity is an error (:class:`~greenforge.errors.ConfigError`),
never 0 g.

Inference CO2e is computed at the *deployment* zone with :func:`deployment_intensity` (mean of
:func:`greenforge.grid.chain.intensity_for` over a year); training CO2e at the training zone's
mean over the last day (:func:`training_intensity`).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from greenforge.config import Settings
from greenforge.errors import ConfigError, GreenForgeError
from greenforge.forge.protocol import Attribution, select_attribution
from greenforge.units import S_PER_YEAR, co2e_g

T = TypeVar("T")
S_PER_DAY = 86_400.0


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Energy and emissions of one measured call, with provenance."""

    energy_j: float
    low_j: float
    high_j: float
    duration_s: float
    co2e_g: float
    method: str
    """Method(s), e.g. ``model:cpu-time-x-core-power+model:ram-w-per-gb``, ``rapl``, ``fake``."""
    intensity_source: str
    intensity_g_per_kwh: float
    cpu_time_s: float = 0.0
    attribution: str = ""
    """``process``, ``counter-share`` or ``meters`` (see :mod:`greenforge.forge.protocol`)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Measurement:
        return Measurement(**data)


@dataclasses.dataclass(frozen=True)
class Intensity:
    """A carbon intensity (g/kWh) and where it came from."""

    g_per_kwh: float
    source: str


@dataclasses.dataclass(frozen=True)
class Pue:
    """A power usage effectiveness and where it came from."""

    value: float
    source: str


@dataclasses.dataclass(frozen=True)
class Metering:
    """How a step is measured: the attribution, the intensity and the PUE to apply."""

    attribution: Attribution
    intensity: Intensity
    pue: Pue


def _sum_measurements(ms: Sequence[Measurement]) -> Measurement:
    if not ms:
        return Measurement(0.0, 0.0, 0.0, 0.0, 0.0, "none", "none", 0.0)
    energy = sum(m.energy_j for m in ms)
    methods = sorted({p for m in ms for p in m.method.split("+") if p})
    sources = sorted({m.intensity_source for m in ms})
    attributions = sorted({m.attribution for m in ms if m.attribution})
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
        attribution="+".join(attributions),
    )


total = _sum_measurements
"""Sum several measurements (energy, CO2e, durations; methods and sources joined)."""


def energy_basis(methods: str) -> str:
    """How a ``+``-joined method string was obtained: ``measured`` (meters only: RAPL, NVML,
    ...), ``modelled`` (only ``model:*`` estimates, e.g. CPU TDP x utilisation), ``partly
    modelled`` (both), or ``unmeasured``. Reports say this instead of calling a modelled
    figure "measured"."""
    parts = [p for p in methods.split("+") if p and p not in ("none", "process-share")]
    measured = [p for p in parts if not p.startswith(("model:", "unmeasured"))]
    modelled = [p for p in parts if p.startswith("model:")]
    if measured and not modelled and len(measured) == len(parts):
        return "measured"
    if measured or (modelled and len(modelled) < len(parts)):
        return "partly modelled"
    return "modelled" if modelled else "unmeasured"


def metering_for(
    settings: Settings,
    *,
    zone: str | None = None,
    meters: Sequence[Any] | None = None,
    intensity: Intensity | None = None,
    pue: Pue | None = None,
) -> Metering:
    """The metering for ``settings``: injected ``meters`` or this machine's attribution, the
    given ``intensity`` or the training zone's (raises ConfigError when unknown), the PUE from
    :func:`greenforge.hardware.catalog.default_pue` with its source."""
    from greenforge.hardware.catalog import default_pue

    if intensity is None:
        intensity = training_intensity(settings, zone)
    if pue is None:
        pue = Pue(*default_pue(settings))
    return Metering(select_attribution(settings, meters), intensity, pue)


def measure(
    fn: Callable[[], T],
    settings: Settings,
    *,
    name: str = "forge",
    metering: Metering | None = None,
    meters: Sequence[Any] | None = None,
    intensity_g_per_kwh: float | None = None,
    intensity_source: str = "injected",
    zone: str | None = None,
) -> tuple[T, Measurement]:
    """Run ``fn()`` and measure it. Returns ``(fn's result, Measurement)``.

    - ``metering``: how to measure (the forge builds one per search); else one is built from
      ``meters`` (default: this machine's attribution) and ``intensity_g_per_kwh`` with its
      ``intensity_source`` (default: the training zone's intensity, ``zone`` or the settings').
    """
    if metering is None:
        given = (
            None
            if intensity_g_per_kwh is None
            else Intensity(float(intensity_g_per_kwh), intensity_source)
        )
        metering = metering_for(settings, zone=zone, meters=meters, intensity=given)
    att = metering.attribution
    mark = att.begin()
    result = fn()
    r = att.end(mark)
    if r.energy_j == 0.0 and r.method.startswith("unmeasured"):
        _warn_once(f"forge: step {name!r} is unmeasured: {r.method}")
    return result, Measurement(
        energy_j=r.energy_j,
        low_j=r.low_j,
        high_j=r.high_j,
        duration_s=r.wall_s,
        co2e_g=co2e_g(r.energy_j, metering.intensity.g_per_kwh, metering.pue.value),
        method=r.method,
        intensity_source=metering.intensity.source,
        intensity_g_per_kwh=metering.intensity.g_per_kwh,
        cpu_time_s=r.cpu_s,
        attribution=att.name,
    )


def _zone(settings: Settings, zone: str | None) -> str:
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
    return z


def zone_intensity(
    settings: Settings, zone: str | None, window_s: float, what: str
) -> tuple[float, str]:
    """Mean carbon intensity (g/kWh) of ``zone`` over the last ``window_s`` seconds, and its
    source. Raises ConfigError when no zone is known or no provider has data (never 0 g)."""
    import numpy as np

    from greenforge.grid import chain
    from greenforge.grid.ops import mean_intensity

    z = _zone(settings, zone)
    now = time.time()
    series = chain.intensity_for(settings, z, now - window_s, now)
    if series.values_g_per_kwh.size == 0:
        raise ConfigError(f"no carbon intensity for zone {z!r}; try another provider or zone.")
    mean = float(
        np.asarray(mean_intensity(series, np.array([now - window_s]), np.array([now]))).ravel()[0]
    )
    if not np.isfinite(mean):
        raise ConfigError(f"no carbon intensity for zone {z!r} ({what}); try another provider.")
    return mean, series.source


def training_intensity(settings: Settings, zone: str | None) -> Intensity:
    """Mean intensity of the training zone over the last day, with its source."""
    value, source = zone_intensity(settings, zone, S_PER_DAY, "training")
    return Intensity(value, f"{source} (mean of the last 24 h)")


def deployment_intensity(settings: Settings, zone: str | None) -> tuple[float, str]:
    """Mean carbon intensity (g/kWh) of the deployment zone over the coming year, and its source.

    Uses :func:`greenforge.grid.chain.intensity_for` (the settings' provider chain, by default the
    embedded annual/profile data) over the past year. Raises
    :class:`~greenforge.errors.ConfigError` when no zone is known (no silent default location).
    """
    return zone_intensity(settings, zone, S_PER_YEAR, "deployment")


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message in _WARNED:
        return
    _WARNED.add(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


__all__ = [
    "GreenForgeError",
    "Intensity",
    "Measurement",
    "Metering",
    "Pue",
    "deployment_intensity",
    "energy_basis",
    "measure",
    "metering_for",
    "total",
    "training_intensity",
    "zone_intensity",
]
