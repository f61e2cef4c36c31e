"""The committed embedded tables are exactly what scripts/build_grid_tables.py derives."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np

REPO = Path(__file__).resolve().parents[2]
EMBEDDED = REPO / "src" / "greenforge" / "grid" / "data"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_grid_tables", REPO / "scripts" / "build_grid_tables.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rebuilding_reproduces_the_committed_tables(shared_data: Path, tmp_path: Path) -> None:
    load_script().build(shared_data, tmp_path)
    for name in ("annual.json.gz",):
        assert json.loads(gzip.decompress((tmp_path / name).read_bytes())) == json.loads(
            gzip.decompress((EMBEDDED / name).read_bytes())
        )
    for name in ("cloud_regions.json", "profiles.json"):
        assert json.loads((tmp_path / name).read_text()) == json.loads(
            (EMBEDDED / name).read_text()
        )
    with np.load(tmp_path / "profiles.npz") as new, np.load(EMBEDDED / "profiles.npz") as old:
        assert sorted(new.files) == sorted(old.files)
        for key in new.files:
            np.testing.assert_array_equal(new[key], old[key])


def test_profile_median_matches_the_raw_hourly_data(shared_data: Path) -> None:
    """Spot check against the raw files: GB, January, 12:00 UTC on weekdays."""
    from greenforge.grid.files import load_csv
    from greenforge.grid.profile import profile_quantiles

    series = load_csv(sorted((shared_data / "grid" / "hourly").glob("GB_*_hourly.csv.gz")))
    t = series.times_s
    stamp = t.astype("datetime64[s]")
    month = stamp.astype("datetime64[M]").astype(np.int64) % 12
    hour = (t // 3600) % 24
    weekday = ((t // 86400).astype(np.int64) + 3) % 7 < 5
    raw = series.values_g_per_kwh[(month == 0) & (hour == 12) & weekday]
    monday_noon = 1704715200.0  # 2024-01-08T12:00Z, a Monday
    got = float(profile_quantiles("GB", [monday_noon], 0.5)[0])
    assert abs(got - float(np.median(raw))) <= 0.05
    assert len(json.loads((EMBEDDED / "profiles.json").read_text())["zones"]) == 16
    assert sum(p.stat().st_size for p in EMBEDDED.iterdir()) < 1_000_000
