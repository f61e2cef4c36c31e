"""The grid-provider protocol and registry.

A provider answers "what was/is/will be the intensity of zone Z over [start, end)?" with an
:class:`IntensitySeries` whose ``source`` says where it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from greenforge.config import Settings
from greenforge.errors import UnknownNameError
from greenforge.grid.series import IntensitySeries


@runtime_checkable
class IntensityProvider(Protocol):
    """A source of carbon intensity for zones."""

    name: str

    def zones(self) -> Sequence[str]:
        """Zones this provider knows (may be a best-effort list for live APIs)."""

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        """Intensity over ``[start_s, end_s)`` (past). Raises UnknownZoneError / ProviderError."""

    def forecast(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        """Forecast over ``[start_s, end_s)``; providers without one raise ProviderError."""


ProviderFactory = Callable[[Settings], IntensityProvider]
_FACTORIES: dict[str, ProviderFactory] = {}


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Register a provider factory under ``name``."""
    _FACTORIES[name] = factory


def registered_factory(name: str) -> ProviderFactory:
    """The factory currently registered under ``name`` (KeyError if none)."""
    return _FACTORIES[name]


def provider_names() -> list[str]:
    _load_builtin()
    return sorted(_FACTORIES)


def create_provider(name: str, settings: Settings) -> IntensityProvider:
    """Create a registered provider; unknown names list the valid ones."""
    _load_builtin()
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UnknownNameError("grid provider", name, _FACTORIES) from None
    return factory(settings)


def _load_builtin() -> None:
    import greenforge.grid.providers  # noqa: F401  (registers the built-in providers)
