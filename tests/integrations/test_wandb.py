"""W&B integration with the real library in offline mode, read back from the runs' .wandb logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from greenforge.config import load_settings
from greenforge.integrations.experiments import COMPONENT, RUN, WINDOW, WINDOW_INDEX
from greenforge.integrations.wandb import log_run
from greenforge.report.sci import sci_for_forge
from greenforge.testing import FakeMeter, ManualClock, StaticIntensity
from greenforge.tracker import Tracker, track

from .wandb_log import read_run, run_ids

pytestmark = pytest.mark.integration


def options(clock: ManualClock) -> dict[str, Any]:
    return {
        "settings": load_settings(env={}),
        "zone": "DE",
        "meters": [FakeMeter({"cpu": 30.0, "ram": 10.0}, clock=clock)],
        "provider": StaticIntensity(360.0),
        "interval_s": 3600.0,
        "clock": clock,
        "persist": False,
    }


def three_epochs(tracker: Tracker, clock: ManualClock) -> None:
    for epoch in (1, 2, 3):
        with tracker.window(f"epoch-{epoch}"):
            clock.advance(10.0 * epoch)  # 40 W: 400, 800, 1200 J


def test_track_logs_the_run_into_a_new_offline_wandb_run(wandb_dir: Path) -> None:
    import wandb

    before = set(run_ids(wandb_dir))
    clock = ManualClock()
    with track(name="train-mlp", wandb=True, **options(clock)) as tracker:
        three_epochs(tracker, clock)
    record = tracker.record
    assert record is not None
    assert record.warnings == ()
    assert wandb.run is None  # the run the tracker started is finished

    (run_id,) = set(run_ids(wandb_dir)) - before
    run = read_run(wandb_dir, run_id)
    assert run.name == "train-mlp"
    assert "greenforge" in run.tags
    assert run.exit_code == 0
    assert run.summary[RUN + "energy_j"] == pytest.approx(2400.0)
    assert run.summary[COMPONENT + "cpu/energy_j"] == pytest.approx(1800.0)
    assert record.co2e_g is not None
    assert run.summary[RUN + "co2e_g"] == pytest.approx(record.co2e_g)
    rows = [row for row in run.history if WINDOW_INDEX in row]
    assert [row[WINDOW_INDEX] for row in rows] == [1, 2, 3]
    assert [row[WINDOW + "energy_j"] for row in rows] == pytest.approx([400.0, 800.0, 1200.0])
    assert run.config["greenforge.zone"] == "DE"
    assert run.config["greenforge.intensity_source"] == "static:DE"
    assert run.config["greenforge.method"] == "cpu=fake, ram=fake"
    (artifact,) = [a for a in run.artifacts if a["type"] == "greenforge-run"]
    assert artifact["files"] == [f"run-{record.id}.json"]


def test_log_run_goes_into_the_users_run(wandb_dir: Path) -> None:
    import wandb

    clock = ManualClock()
    with track(**options(clock)) as tracker:
        three_epochs(tracker, clock)
    assert tracker.record is not None
    user = wandb.init(name="user-run")
    try:
        user.log({"loss": 0.5})
        assert log_run(tracker.record) is user
    finally:
        user.finish()
    run = read_run(wandb_dir, user.id)
    assert run.summary["loss"] == 0.5
    assert run.summary[RUN + "energy_j"] == pytest.approx(2400.0)


def test_forge_wandb_logs_a_group_with_one_run_per_candidate(
    forge_logged: dict[str, Any], wandb_dir: Path
) -> None:
    assert forge_logged["code"] == 0
    assert "W&B: forge group" in forge_logged["printed"]
    doc = json.loads((forge_logged["out"] / "forge.json").read_text())
    runs = [read_run(wandb_dir, run_id) for run_id in forge_logged["wandb_runs"]]
    (forge,) = [r for r in runs if r.job_type == "forge"]
    candidates = {r.name: r for r in runs if r.job_type == "forge-candidate"}
    evaluated = [x["name"] for x in doc["candidates"] if x.get("accuracy") is not None]
    assert sorted(candidates) == sorted(evaluated)
    assert {r.group for r in runs} == {forge.group}
    assert forge.summary["greenforge.chosen"] == doc["chosen"]
    (files,) = [a["files"] for a in forge.artifacts if a["type"] == "forge"]
    assert sorted(files) == ["README.md", "forge.json", "pareto.png"]
    sci = sci_for_forge(doc)
    for name, run in candidates.items():
        entry = next(x for x in doc["candidates"] if x["name"] == name)
        assert ("chosen" in run.tags) == (name == doc["chosen"])
        assert run.summary["greenforge/accuracy"] == pytest.approx(entry["accuracy"])
        assert run.summary["greenforge/sci_g_per_1k_predictions"] == pytest.approx(sci[name].sci_g)
        assert run.config["greenforge.recipe"] == entry["recipe"]
    chosen = candidates[doc["chosen"]]
    (model,) = [a for a in chosen.artifacts if a["type"] == "model"]
    assert "model.safetensors" in model["files"]
    assert "chosen" in model["aliases"]


def test_keras_callback_logs_each_epoch_to_wandb_run(wandb_dir: Path) -> None:
    import wandb

    from greenforge.integrations.callbacks import ENERGY_METRIC, EnergyKerasCallback

    from .keras_fit import fit, tracker_options

    clock = ManualClock()
    energy = EnergyKerasCallback(verbose=False, **tracker_options(clock))
    user = wandb.init(name="keras-run")
    try:
        fit(clock, energy)
    finally:
        user.finish()
    assert energy.logged_to == {"wandb"}
    rows = [row for row in read_run(wandb_dir, user.id).history if ENERGY_METRIC in row]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert [row[ENERGY_METRIC] for row in rows] == pytest.approx([400.0, 400.0, 400.0])
