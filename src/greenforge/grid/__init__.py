"""Know the grid: carbon-intensity series, providers (embedded, files, live APIs), zones."""

from __future__ import annotations

from greenforge.grid.provider import (
    IntensityProvider,
    create_provider,
    provider_names,
    register_provider,
)
from greenforge.grid.series import IntensitySeries, constant_series

__all__ = [
    "IntensityProvider",
    "IntensitySeries",
    "constant_series",
    "create_provider",
    "provider_names",
    "register_provider",
]
