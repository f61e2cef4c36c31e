"""Energy callbacks on real (tiny) Lightning and Hugging Face Trainer runs, on a fake meter."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from greenforge.budget import Budget
from greenforge.config import load_settings
from greenforge.integrations.callbacks import (
    CO2E_METRIC,
    ENERGY_METRIC,
    EnergyLightningCallback,
    EnergyTrainerCallback,
    EpochMeter,
)
from greenforge.report.sci import epoch_count
from greenforge.testing import FakeMeter, ManualClock, StaticIntensity
from greenforge.tracker import Tracker

LIGHTNING_WARNINGS = (
    # the tiny model and data set trip Lightning's "few workers / few batches" hints
    pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),  # lightning 2.6, torch 2.13
)


def with_lightning_warnings(test: Any) -> Any:
    for mark in LIGHTNING_WARNINGS:
        test = mark(test)
    return test


def tracker_options(clock: ManualClock) -> dict[str, Any]:
    return {
        "settings": load_settings(env={}),
        "zone": "DE",
        "meters": [FakeMeter(100.0, clock=clock)],
        "provider": StaticIntensity(360.0),
        "interval_s": 3600.0,
        "clock": clock,
        "persist": False,
    }


def data() -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(64, 4, generator=gen), torch.randn(64, 1, generator=gen))


def lightning_fit(tmp_path: Path, clock: ManualClock, callback: Any, logger: Any = False) -> Any:
    import lightning.pytorch as pl

    class Mlp(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            clock.advance(1.0)  # 100 J a step on the fake meter
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    trainer = pl.Trainer(
        max_epochs=2,
        logger=logger,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=str(tmp_path),
        callbacks=[callback],
    )
    trainer.fit(Mlp(), DataLoader(data(), batch_size=16))
    return trainer


@with_lightning_warnings
def test_lightning_measures_each_epoch_and_logs_it(tmp_path: Path) -> None:
    from lightning.pytorch.loggers import CSVLogger

    clock = ManualClock()
    tracker = Tracker(**tracker_options(clock)).start()
    callback = EnergyLightningCallback(tracker, verbose=False)
    logger = CSVLogger(str(tmp_path), name="csv")
    trainer = lightning_fit(tmp_path, clock, callback, logger)
    record = tracker.stop()
    assert [w.path for w in record.windows] == ["epoch-1", "epoch-2"]
    assert epoch_count(record) == 2
    assert [w.energy_j for w in record.windows] == pytest.approx([400.0, 400.0])
    assert trainer.callback_metrics[ENERGY_METRIC].item() == pytest.approx(400.0)
    assert CO2E_METRIC in trainer.callback_metrics
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get(ENERGY_METRIC)]
    assert [float(r[ENERGY_METRIC]) for r in rows] == pytest.approx([400.0, 400.0])
    assert callback.messages[0].startswith("greenforge: predicted total after 1 of 2 epochs")
    assert record.prediction is not None
    assert record.prediction.energy_j == pytest.approx(800.0)


@with_lightning_warnings
def test_lightning_stops_after_the_epoch_that_goes_over_budget(tmp_path: Path) -> None:
    clock = ManualClock()
    budget = Budget(energy_j=500.0, use_prediction=True)  # 800 J predicted after epoch 1
    callback = EnergyLightningCallback(verbose=False, budget=budget, **tracker_options(clock))
    trainer = lightning_fit(tmp_path, clock, callback)
    assert trainer.current_epoch == 1  # one epoch done, then stopped
    record = callback.record
    assert record is not None
    assert record.status == "completed"
    assert [w.path for w in record.windows] == ["epoch-1"]
    assert record.metadata["stopped_by_budget"] is True
    assert "stopping training after epoch-1" in callback.messages[-1]


class TinyRegressor(nn.Module):
    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        self.clock.advance(1.0)
        return {"loss": nn.functional.mse_loss(self.net(x), labels)}


def hf_train(tmp_path: Path, clock: ManualClock, callback: Any, *, attach: bool) -> Any:
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=16,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_strategy="epoch",
        disable_tqdm=True,
    )
    xs, ys = data().tensors
    rows = [{"x": x, "labels": y} for x, y in zip(xs, ys, strict=True)]
    trainer = Trainer(
        model=TinyRegressor(clock),
        args=args,
        train_dataset=rows,
        callbacks=None if attach else [callback],
    )
    if attach:
        callback.attach(trainer)
    trainer.train()
    return trainer


def test_hf_trainer_measures_each_epoch_and_logs_it(tmp_path: Path) -> None:
    clock = ManualClock()
    callback = EnergyTrainerCallback(verbose=False, **tracker_options(clock))
    trainer = hf_train(tmp_path, clock, callback, attach=True)
    record = callback.record
    assert record is not None
    assert [w.path for w in record.windows] == ["epoch-1", "epoch-2"]
    assert [w.energy_j for w in record.windows] == pytest.approx([400.0, 400.0])
    logged = [e for e in trainer.state.log_history if ENERGY_METRIC in e]
    assert [e[ENERGY_METRIC] for e in logged] == pytest.approx([400.0, 400.0])
    assert all(CO2E_METRIC in e for e in logged)
    assert callback.messages[0].startswith("greenforge: predicted total after 1 of 2 epochs")


def test_hf_trainer_stops_after_the_epoch_that_goes_over_budget(tmp_path: Path) -> None:
    clock = ManualClock()
    tracker = Tracker(**tracker_options(clock), budget=Budget(energy_j=300.0)).start()
    callback = EnergyTrainerCallback(tracker, verbose=False)
    trainer = hf_train(tmp_path, clock, callback, attach=False)
    record = tracker.stop()
    assert [w.path for w in record.windows] == ["epoch-1"]
    assert trainer.state.epoch == pytest.approx(1.0)
    assert [e[ENERGY_METRIC] for e in trainer.state.log_history if ENERGY_METRIC in e] == [
        pytest.approx(400.0)
    ]


def test_a_tracker_that_cannot_start_is_a_warning_not_a_failed_training() -> None:
    meter = EpochMeter(zone="NOT-A-ZONE", verbose=False, persist=False)
    with pytest.warns(RuntimeWarning, match="no energy measurement for this training"):
        meter.train_start(2)
    meter.epoch_start(1)
    assert meter.epoch_end() == ({}, False)
    meter.train_end()
    assert meter.record is None
