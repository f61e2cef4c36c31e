"""The Keras energy callback on a real (tiny) Keras 3 fit on the torch backend."""

from __future__ import annotations

import sys

import pytest

from greenforge.budget import Budget
from greenforge.errors import ConfigError
from greenforge.integrations.callbacks import CO2E_METRIC, ENERGY_METRIC, EnergyKerasCallback
from greenforge.report.sci import epoch_count
from greenforge.testing import ManualClock
from greenforge.tracker import Tracker

from .keras_fit import fit, tracker_options


def test_keras_measures_each_epoch_into_the_logs_and_predicts() -> None:
    clock = ManualClock()
    energy = EnergyKerasCallback(verbose=False, **tracker_options(clock))
    history = fit(clock, energy)
    record = energy.record
    assert record is not None
    assert record.status == "completed"
    assert [w.path for w in record.windows] == ["epoch-1", "epoch-2", "epoch-3"]
    assert epoch_count(record) == 3
    assert [w.energy_j for w in record.windows] == pytest.approx([400.0, 400.0, 400.0])
    assert history.history[ENERGY_METRIC] == pytest.approx([400.0, 400.0, 400.0])
    assert history.history[CO2E_METRIC] == pytest.approx([400.0 / 3.6e6 * 360.0] * 3)
    assert energy.messages[0].startswith("greenforge: predicted total after 1 of 3 epochs")
    assert record.prediction is not None
    assert record.prediction.energy_j == pytest.approx(1200.0)
    assert energy.logged_to == set()  # no MLflow or W&B run in this test
    assert "tensorflow" not in sys.modules


def test_keras_stops_after_the_epoch_that_goes_over_budget() -> None:
    clock = ManualClock()
    budget = Budget(energy_j=500.0, use_prediction=True)  # 1200 J predicted after epoch 1
    energy = EnergyKerasCallback(verbose=False, budget=budget, **tracker_options(clock))
    history = fit(clock, energy)
    assert history.epoch == [0]
    record = energy.record
    assert record is not None
    assert [w.path for w in record.windows] == ["epoch-1"]
    assert record.metadata["stopped_by_budget"] is True
    assert "stopping training after epoch-1" in energy.messages[-1]


def test_a_passed_in_tracker_stays_the_callers() -> None:
    clock = ManualClock()
    tracker = Tracker(**tracker_options(clock)).start()
    energy = EnergyKerasCallback(tracker, verbose=False)
    fit(clock, energy, epochs=2)
    assert energy.record is None
    assert tracker.expected_windows == 2
    record = tracker.stop()
    assert [w.path for w in record.windows] == ["epoch-1", "epoch-2"]


def test_a_fit_that_raises_is_stopped_as_failed_by_the_with_block() -> None:
    clock = ManualClock()
    energy = EnergyKerasCallback(verbose=False, **tracker_options(clock))
    with pytest.raises(RuntimeError, match="training broke"), energy:
        fit(clock, energy, fail_at_epoch=2)
    record = energy.record
    assert record is not None
    assert record.status == "failed"
    assert [w.path for w in record.windows][:1] == ["epoch-1"]


def test_an_unknown_tracker_name_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"'comet'.*mlflow, wandb"):
        EnergyKerasCallback(log_to=("comet",))
