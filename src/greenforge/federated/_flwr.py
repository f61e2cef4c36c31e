"""The one place GreenForge imports Flower.

Flower sends usage telemetry to its servers unless ``FLWR_TELEMETRY_ENABLED=0`` is set before
it is imported; GreenForge never contacts a third party on the user's behalf, so it sets that
variable (only when the user has not set it) before the first import.
"""

from __future__ import annotations

import os
from typing import Any

from greenforge.errors import MissingExtraError


def import_flwr(what: str = "federated learning") -> Any:
    """Returns the ``flwr`` package (telemetry off unless asked for); MissingExtraError if absent."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    try:
        import flwr
        import flwr.app
        import flwr.clientapp
        import flwr.serverapp
        import flwr.serverapp.strategy
    except ImportError:
        raise MissingExtraError("flwr", "flower", what) from None
    return flwr
