"""MLflow integration against a real `mlflow server` on 127.0.0.1, read back with MlflowClient."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from greenforge.config import load_settings
from greenforge.integrations.experiments import COMPONENT, RUN, WINDOW
from greenforge.integrations.mlflow import (
    CHOSEN_TAG,
    HTTP_LIMITS,
    PARENT_RUN_TAG,
    bounded_http,
    log_run,
)
from greenforge.records import RunRecord
from greenforge.report.sci import sci_for_forge
from greenforge.testing import FakeMeter, ManualClock, StaticIntensity
from greenforge.tracker import Tracker, track

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


def client(url: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(url)


def test_track_logs_the_run_into_a_new_mlflow_run(
    mlflow_server: str, mlflow_experiment: str
) -> None:
    clock = ManualClock()
    with track(name="train-mlp", mlflow=True, **options(clock)) as tracker:
        three_epochs(tracker, clock)
    record = tracker.record
    assert record is not None
    assert record.warnings == ()

    c = client(mlflow_server)
    (run,) = c.search_runs([mlflow_experiment])
    assert run.info.run_name == "train-mlp"
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert metrics[RUN + "energy_j"] == pytest.approx(record.energy_j)
    assert metrics[RUN + "energy_j"] == pytest.approx(2400.0)
    assert metrics[COMPONENT + "cpu/energy_j"] == pytest.approx(1800.0)
    assert metrics[COMPONENT + "ram/energy_j"] == pytest.approx(600.0)
    assert record.co2e_g is not None
    assert metrics[RUN + "co2e_g"] == pytest.approx(record.co2e_g)
    assert metrics[COMPONENT + "cpu/co2e_g"] + metrics[COMPONENT + "ram/co2e_g"] == pytest.approx(
        record.co2e_g
    )
    assert metrics[RUN + "co2e_low_g"] <= metrics[RUN + "co2e_g"] <= metrics[RUN + "co2e_high_g"]
    assert metrics[RUN + "intensity_g_per_kwh"] == pytest.approx(360.0)
    assert metrics[RUN + "sci_g"] == pytest.approx(record.co2e_g)  # M = 0, R = 1 run
    history = c.get_metric_history(run.info.run_id, WINDOW + "energy_j")
    points = sorted((m.step, m.value) for m in history)
    assert [step for step, _ in points] == [1, 2, 3]
    assert [value for _, value in points] == pytest.approx([400.0, 800.0, 1200.0])
    params = run.data.params
    assert params["greenforge.zone"] == "DE"
    assert params["greenforge.intensity_source"] == "static:DE"
    assert params["greenforge.pue"] == "1"
    assert params["greenforge.attribution"] == record.metadata["attribution"]
    assert params["greenforge.method"] == "cpu=fake, ram=fake"
    assert "low/high" in params["greenforge.bounds"]
    assert run.data.tags["greenforge.run_id"] == record.id
    path = c.download_artifacts(run.info.run_id, f"greenforge/run-{record.id}.json")
    assert json.loads(Path(path).read_text())["energy_j"] == pytest.approx(2400.0)


def test_track_joins_the_active_run_and_leaves_it_open(
    mlflow_server: str, mlflow_experiment: str
) -> None:
    import mlflow

    clock = ManualClock()
    with mlflow.start_run(run_name="user-run") as active:
        mlflow.log_param("lr", "0.01")
        with track(name="block", mlflow=True, **options(clock)) as tracker:
            three_epochs(tracker, clock)
        assert mlflow.active_run() is not None
        assert client(mlflow_server).get_run(active.info.run_id).info.status == "RUNNING"
    run = client(mlflow_server).get_run(active.info.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.01"
    assert run.data.metrics[RUN + "energy_j"] == pytest.approx(2400.0)
    assert len(client(mlflow_server).search_runs([mlflow_experiment])) == 1


def test_log_run_twice_into_one_run_keeps_the_first_params_and_the_latest_tags(
    mlflow_server: str, mlflow_experiment: str
) -> None:
    import mlflow

    records: list[RunRecord] = []
    for zone, intensity in (("DE", 360.0), ("FR", 50.0)):
        clock = ManualClock()
        opts = {**options(clock), "zone": zone, "provider": StaticIntensity(intensity)}
        with track(**opts) as tracker:
            three_epochs(tracker, clock)
        assert tracker.record is not None
        records.append(tracker.record)
    with mlflow.start_run() as active:
        for record in records:
            assert log_run(record) == active.info.run_id
    run = client(mlflow_server).get_run(active.info.run_id)
    assert run.data.params["greenforge.zone"] == "DE"
    assert run.data.tags["greenforge.zone"] == "FR"
    assert "greenforge.zone" in run.data.tags["greenforge.params_note"]


def closed_port(monkeypatch: pytest.MonkeyPatch) -> str:
    """Points MLflow at a port nothing listens on, with MLflow's own HTTP defaults (7 retries,
    backoff 2, 120 s: minutes of retrying) unless GreenForge bounds its calls."""
    from .conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    for key in HTTP_LIMITS:
        monkeypatch.delenv(key, raising=False)
    return url


def test_an_unreachable_server_is_a_warning_and_the_workload_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed_port(monkeypatch)
    clock = ManualClock()
    ran = False
    started = time.monotonic()
    with track(mlflow=True, **options(clock)) as tracker:
        three_epochs(tracker, clock)
        ran = True
    assert time.monotonic() - started < 60.0  # bounded retries, not MLflow's minutes
    assert ran
    record = tracker.record
    assert record is not None
    assert record.energy_j == pytest.approx(2400.0)
    assert any(
        "MlflowExporter not started" in w and "MLFLOW_TRACKING_URI" in w for w in record.warnings
    )
    assert not any(key in os.environ for key in HTTP_LIMITS)  # only for greenforge's calls


def test_logging_to_a_dead_server_fails_within_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    closed_port(monkeypatch)
    clock = ManualClock()
    with track(**options(clock)) as tracker:
        three_epochs(tracker, clock)
    assert tracker.record is not None
    started = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)max retries|connection"):
        log_run(tracker.record)
    assert time.monotonic() - started < 60.0
    assert not any(key in os.environ for key in HTTP_LIMITS)


def test_the_users_own_mlflow_http_settings_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    with bounded_http():
        assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 5  # type: ignore[no-untyped-call]
        assert (
            os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == HTTP_LIMITS["MLFLOW_HTTP_REQUEST_TIMEOUT"]
        )
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ


def test_forge_mlflow_logs_each_candidate_as_a_nested_run(
    forge_logged: dict[str, Any], mlflow_server: str
) -> None:
    assert forge_logged["code"] == 0
    assert "MLflow: forge run" in forge_logged["printed"]
    doc = json.loads((forge_logged["out"] / "forge.json").read_text())
    c = client(mlflow_server)
    runs = c.search_runs([forge_logged["experiment_id"]])
    (parent,) = [r for r in runs if PARENT_RUN_TAG not in r.data.tags]
    nested = {r.info.run_name: r for r in runs if PARENT_RUN_TAG in r.data.tags}
    evaluated = [x["name"] for x in doc["candidates"] if x.get("accuracy") is not None]
    assert sorted(nested) == sorted(evaluated)
    assert all(r.data.tags[PARENT_RUN_TAG] == parent.info.run_id for r in nested.values())
    assert all(r.info.status == "FINISHED" for r in runs)
    assert parent.data.tags[CHOSEN_TAG] == doc["chosen"]
    assert {a.path for a in c.list_artifacts(parent.info.run_id, "forge")} == {
        "forge/forge.json",
        "forge/README.md",
        "forge/pareto.png",
    }
    assert parent.data.params["greenforge.zone"] == "FR"

    sci = sci_for_forge(doc)
    for name, run in nested.items():
        entry = next(x for x in doc["candidates"] if x["name"] == name)
        m = run.data.metrics
        assert run.data.tags[CHOSEN_TAG] == str(name == doc["chosen"]).lower()
        assert m["greenforge/accuracy"] == pytest.approx(entry["accuracy"])
        assert m["greenforge/size_bytes"] == entry["size_bytes"]
        assert m["greenforge/inference_energy_j_per_1k"] == pytest.approx(
            entry["inference_energy_j_per_1k"]
        )
        assert m["greenforge/sci_g_per_1k_predictions"] == pytest.approx(sci[name].sci_g)
        lifetime = entry["lifetime_co2e_g"] - (entry["search_share_co2e_g"] or 0.0)
        assert m["greenforge/lifetime_co2e_g"] == pytest.approx(lifetime)
        assert (
            m["greenforge/lifetime_co2e_low_g"]
            <= m["greenforge/lifetime_co2e_g"]
            <= m["greenforge/lifetime_co2e_high_g"]
        )
        assert run.data.params["greenforge.recipe"] == entry["recipe"]
    chosen = nested[doc["chosen"]]
    files = {a.path for a in c.list_artifacts(chosen.info.run_id, "model")}
    assert "model/model.safetensors" in files
    assert "model/README.md" in files


def test_keras_callback_logs_each_epoch_to_the_active_mlflow_run(
    mlflow_server: str, mlflow_experiment: str
) -> None:
    import mlflow

    from greenforge.integrations.callbacks import ENERGY_METRIC, EnergyKerasCallback

    from .keras_fit import fit, tracker_options

    clock = ManualClock()
    energy = EnergyKerasCallback(verbose=False, **tracker_options(clock))
    with mlflow.start_run() as active:
        fit(clock, energy)
    assert energy.logged_to == {"mlflow"}
    history = client(mlflow_server).get_metric_history(active.info.run_id, ENERGY_METRIC)
    points = sorted((m.step, m.value) for m in history)
    assert [step for step, _ in points] == [1, 2, 3]
    assert [value for _, value in points] == pytest.approx([400.0, 400.0, 400.0])
