"""Shared fixtures for the forge tests: a small separable data set and fake-meter measuring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from greenforge.testing import FakeMeter


def blobs(n: int = 240, features: int = 8, classes: int = 3, seed: int = 0) -> tuple[Any, Any]:
    """Well separated Gaussian blobs: every reasonable model reaches high accuracy fast."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 4.0, size=(classes, features))
    y = np.arange(n) % classes
    x = centers[y] + rng.normal(0.0, 0.6, size=(n, features))
    return x.astype(np.float32), y.astype(np.int64)


@pytest.fixture
def blobs_npz(tmp_path: Path) -> Path:
    x, y = blobs()
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x, y=y)
    return path


def write_task(tmp_path: Path, body: str, npz: Path) -> Path:
    path = tmp_path / "task.toml"
    path.write_text(
        f'[data]\nkind = "npz"\npath = "{npz.name}"\n\n[model]\narchitecture = "mlp"\n'
        f"hidden = [64, 64]\n\n{body}",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def fake_measure() -> dict[str, Any]:
    """Measure with a 20 W fake meter and a fixed 300 g/kWh intensity (no hardware, no grid)."""
    return {
        "meters": [FakeMeter(20.0)],
        "intensity_g_per_kwh": 300.0,
        "intensity_source": "static:test",
    }
