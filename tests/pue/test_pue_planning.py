"""The planner with PUE(t) on a real-looking year: the choice moves to cooler hours, and the
saving due to PUE is reported apart from the grid's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from greenforge.grid.files import load_csv
from greenforge.grid.series import IntensitySeries
from greenforge.pue import PueSeries, attribute_saving, load_pue
from greenforge.schedule.job import Job

YEAR_START_S = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc).timestamp()
DAY_S = 86_400.0


def job_on(day: int, hour: int = 0) -> Job:
    start = YEAR_START_S + day * DAY_S + hour * 3600.0
    return Job(duration_s=4 * 3600.0, earliest_start_s=start, deadline_s=start + 36 * 3600.0,
               zones=("DE",), power_w=10_000.0)  # fmt: skip


def test_on_a_flat_grid_only_pue_moves_the_job_to_cooler_hours(temperature_csv: Path) -> None:
    pue = load_pue(f"model:free-cooled:{temperature_csv}")
    times = YEAR_START_S + 3600.0 * np.arange(8760, dtype=np.float64)
    flat = IntensitySeries(times, np.full(8760, 300.0), 3600.0, "DE", "flat:test")
    job = job_on(200, hour=12)  # a mid-July noon: warm afternoon, cool night before deadline

    split, grid_plan, pue_plan = attribute_saving(job, {"DE": flat}, pue)

    assert grid_plan.start_s == job.earliest_start_s  # every hour the same to a PUE-blind plan
    assert split.choice_changed
    assert split.grid_saving_g == pytest.approx(0.0, abs=1e-6)
    assert split.pue_saving_g > 0
    hours = pue_plan.start_s + 3600.0 * np.arange(4)
    assert pue.over(hours).mean() == pytest.approx(pue.mean([hours[0]], [hours[0] + 4 * 3600])[0])
    assert pue.over(hours).mean() <= pue.over(job.earliest_start_s + 3600.0 * np.arange(4)).mean()


def test_a_summer_on_the_real_de_grid_splits_the_saving(
    temperature_csv: Path, shared_data: Path
) -> None:
    grid = load_csv(shared_data / "grid" / "hourly" / "DE_2023_hourly.csv.gz")
    free = load_pue(f"model:free-cooled:{temperature_csv}")

    splits = [attribute_saving(job_on(day), {"DE": grid}, free)[0] for day in range(182, 243)]

    changed = sum(s.choice_changed for s in splits)
    grid_saving = sum(s.grid_saving_g for s in splits)
    pue_saving = sum(s.pue_saving_g for s in splits)
    assert changed >= 5  # on warm days the cooler hours win over the cleanest grid hours
    assert all(s.pue_saving_g >= -1e-9 for s in splits)  # never worse than the PUE-blind plan
    # (a grid-only shift to a clean but hot noon can lose once PUE counts: grid saving < 0)
    for s in splits:
        assert s.total_saving_g == pytest.approx(s.grid_saving_g + s.pue_saving_g)
    assert grid_saving > pue_saving > 0  # the grid moves more; PUE adds its own share
    lines = splits[0].lines()
    assert lines[1].startswith("saving from the grid's hours:")
    assert lines[2].startswith("further saving from the facility's PUE(t):")


def test_a_constant_pue_never_changes_the_choice(shared_data: Path) -> None:
    grid = load_csv(shared_data / "grid" / "hourly" / "DE_2023_hourly.csv.gz")
    constant = PueSeries(np.zeros(1), np.array([1.4]), 1.0, "given", "constant")

    split, _, _ = attribute_saving(job_on(200), {"DE": grid}, constant)

    assert not split.choice_changed
    assert split.pue_saving_g == pytest.approx(0.0, abs=1e-6)
    assert split.to_dict()["reference_pue"] == 1.4
