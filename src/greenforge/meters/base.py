"""The small protocol every energy meter implements, and the meter registry.

A meter reports *energy since its previous read* per component. Counter-based meters (RAPL,
NVML total energy) difference their counters; power-based meters integrate samples; modelled
meters multiply a modelled power by elapsed time. Meters never raise from :meth:`Meter.read`
during a run: they raise :class:`~greenforge.errors.MeterError` from :meth:`Meter.start` (so the
tracker can pick another meter) and return what they can afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, runtime_checkable

from greenforge.errors import UnknownNameError
from greenforge.records import EnergyReading

Scope = Literal["node", "device", "process"]
"""``node``: machine-wide (RAPL, modelled CPU/RAM) - read once per node in distributed runs.
``device``: one accelerator - read once per device. ``process``: the tracked process tree."""


@runtime_checkable
class Meter(Protocol):
    """An energy source: start, read deltas, close."""

    name: str
    scope: Scope

    def start(self) -> None:
        """Take the baseline; raise MeterError if the source cannot be used."""

    def read(self) -> Sequence[EnergyReading]:
        """Energy per component since the previous read (or since start)."""

    def close(self) -> None:
        """Release handles and threads."""


@dataclasses.dataclass(frozen=True)
class Availability:
    """Whether a meter can run here, why, and how to enable it (for ``greenforge doctor``)."""

    name: str
    available: bool
    detail: str
    how_to_enable: str = ""


MeterFactory = Callable[..., Meter]
ProbeFn = Callable[[], Availability]

_FACTORIES: dict[str, MeterFactory] = {}
_PROBES: dict[str, ProbeFn] = {}


def register_meter(name: str, factory: MeterFactory, probe: ProbeFn) -> None:
    """Register a meter by name with a factory and an availability probe."""
    _FACTORIES[name] = factory
    _PROBES[name] = probe


def meter_names() -> list[str]:
    _load_builtin()
    return sorted(_FACTORIES)


def create_meter(name: str, **kwargs: object) -> Meter:
    """Create a registered meter; unknown names list the valid ones."""
    _load_builtin()
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UnknownNameError("meter", name, _FACTORIES) from None
    return factory(**kwargs)


def probe_meter(name: str) -> Availability:
    _load_builtin()
    try:
        return _PROBES[name]()
    except KeyError:
        raise UnknownNameError("meter", name, _PROBES) from None


def _load_builtin() -> None:
    # Importing the modules registers them; cheap, and torch-free.
    from greenforge.meters import amd, model, nvidia, rapl  # noqa: F401
