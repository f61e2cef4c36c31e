"""Know the grid: carbon-intensity series, providers (embedded, files, live APIs), zones.

The names below are imported lazily, so ``import greenforge.grid.zones`` (zone resolution at
tracker start) does not pay for numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from greenforge.grid.provider import (
        IntensityProvider,
        create_provider,
        provider_names,
        register_provider,
    )
    from greenforge.grid.series import IntensitySeries, constant_series

_LAZY: dict[str, str] = {
    "IntensityProvider": "greenforge.grid.provider",
    "create_provider": "greenforge.grid.provider",
    "provider_names": "greenforge.grid.provider",
    "register_provider": "greenforge.grid.provider",
    "IntensitySeries": "greenforge.grid.series",
    "constant_series": "greenforge.grid.series",
}

__all__ = [
    "IntensityProvider",
    "IntensitySeries",
    "constant_series",
    "create_provider",
    "provider_names",
    "register_provider",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'greenforge.grid' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
