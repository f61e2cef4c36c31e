"""Valid JSON only: non-finite floats (NaN, +/-Infinity) become ``null``.

``json.dumps`` writes ``NaN`` and ``Infinity`` by default, which is not JSON and breaks
``jq`` and most parsers. :func:`finite_or_none` maps them to ``None`` (recursively, numpy
scalars included) and :func:`dumps` serialises with ``allow_nan=False``, so a non-finite value
that slips past the mapping fails loudly instead of producing invalid output. A value that can
be ``null`` should come with a field saying why (e.g. ``saving_note``).
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_none(value: Any) -> Any:
    """Returns ``value`` with every non-finite float (also inside dicts/lists) made ``None``."""
    if isinstance(value, float):  # numpy.float64 is a float subclass
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return finite_or_none(value.item())  # other numpy scalars (float32, int64, bool_)
    return value


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """Returns ``value`` as JSON text, non-finite floats written as ``null`` (never ``NaN``)."""
    return json.dumps(finite_or_none(value), indent=indent, allow_nan=False)
