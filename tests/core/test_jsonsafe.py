"""JSON output is always valid: non-finite numbers become null."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from greenforge.jsonsafe import dumps, finite_or_none


def test_non_finite_floats_become_none_at_any_depth() -> None:
    value = {
        "a": math.nan,
        "b": [1.0, math.inf, {"c": -math.inf}],
        "d": (np.float64("nan"), np.float32(2.5), np.int64(3), np.bool_(True)),
        "e": "NaN",
        "f": None,
    }
    assert finite_or_none(value) == {
        "a": None,
        "b": [1.0, None, {"c": None}],
        "d": [None, 2.5, 3, True],
        "e": "NaN",
        "f": None,
    }


def test_dumps_writes_null_never_nan() -> None:
    text = dumps({"x": math.nan, "y": [math.inf, 1.5]})
    assert "NaN" not in text
    assert "Infinity" not in text
    assert json.loads(text) == {"x": None, "y": [None, 1.5]}


def test_a_value_json_cannot_write_still_fails_loudly() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})
