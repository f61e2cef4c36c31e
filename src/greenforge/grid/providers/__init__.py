"""Built-in grid providers; importing this package registers them."""

from __future__ import annotations

from greenforge.grid.providers import (  # noqa: F401
    electricitymaps,
    embedded,
    energidata,
    files,
    ukneso,
    watttime,
)
