"""GreenForge: create AI models with minimal carbon footprint.

Public API (imported lazily, so ``import greenforge`` stays light and never imports torch)::

    import greenforge
    with greenforge.track(zone="GB") as run:
        train()
    print(run.record.co2e_g)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "track": "greenforge.tracker",
    "Tracker": "greenforge.tracker",
    "RunRecord": "greenforge.records",
    "Settings": "greenforge.config",
    "load_settings": "greenforge.config",
    "IntensitySeries": "greenforge.grid.series",
    "GreenForgeError": "greenforge.errors",
}

if TYPE_CHECKING:
    from greenforge.config import Settings, load_settings
    from greenforge.errors import GreenForgeError
    from greenforge.grid.series import IntensitySeries
    from greenforge.records import RunRecord
    from greenforge.tracker import Tracker, track

__all__ = [
    "GreenForgeError",
    "IntensitySeries",
    "RunRecord",
    "Settings",
    "Tracker",
    "__version__",
    "load_settings",
    "track",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'greenforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
