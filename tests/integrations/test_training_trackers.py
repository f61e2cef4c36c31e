"""The Lightning and Hugging Face energy callbacks log each epoch to the tracker the trainer
already uses: Lightning's ``MLFlowLogger`` and the Trainer's ``report_to=["mlflow"]``, against
the real MLflow server of conftest.py, read back with MlflowClient; Lightning's
``WandbLogger`` and ``report_to=["wandb"]`` in W&B offline mode, read back from the run files
(the Keras callback's MLflow/W&B logging is in test_mlflow.py and test_wandb.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from greenforge.integrations.callbacks import (
    CO2E_METRIC,
    ENERGY_METRIC,
    EnergyLightningCallback,
    EnergyTrainerCallback,
)
from greenforge.testing import ManualClock

from .keras_fit import tracker_options
from .wandb_log import read_run

EnergyCallback = Any

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),
]


def rows() -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(32, 4, generator=gen), torch.randn(32, 1, generator=gen))


def energy_history(url: str, run_id: str) -> list[tuple[int, float]]:
    from mlflow import MlflowClient

    return [(m.step, m.value) for m in MlflowClient(url).get_metric_history(run_id, ENERGY_METRIC)]


def lightning_fit(tmp_path: Path, logger: Any) -> EnergyCallback:
    """A real 2-epoch Lightning fit (2 steps an epoch) with ``logger``; returns its callback."""
    import lightning.pytorch as pl

    clock = ManualClock()

    class Mlp(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(4, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            clock.advance(1.0)  # 100 J a step on the fake meter: 2 steps, 200 J an epoch
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    energy = EnergyLightningCallback(verbose=False, **tracker_options(clock))
    pl.Trainer(
        max_epochs=2,
        logger=logger,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=str(tmp_path),
        callbacks=[energy],
    ).fit(Mlp(), DataLoader(rows(), batch_size=16))
    assert energy.record is not None
    assert [w.energy_j for w in energy.record.windows] == pytest.approx([200.0, 200.0])
    return energy


def test_lightning_epochs_reach_the_trainers_mlflow_logger(
    mlflow_server: str, mlflow_experiment: str, tmp_path: Path
) -> None:
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow import MlflowClient

    experiment = MlflowClient(mlflow_server).get_experiment(mlflow_experiment).name
    logger = MLFlowLogger(experiment_name=experiment, tracking_uri=mlflow_server)
    lightning_fit(tmp_path, logger)
    run_id = logger.run_id
    assert run_id is not None
    history = energy_history(mlflow_server, run_id)
    assert sorted(v for _, v in history) == pytest.approx([200.0, 200.0])
    assert CO2E_METRIC in MlflowClient(mlflow_server).get_run(run_id).data.metrics


def test_lightning_epochs_reach_the_trainers_wandb_logger(wandb_dir: Path, tmp_path: Path) -> None:
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(name="lightning-run", offline=True, save_dir=str(wandb_dir))
    try:
        lightning_fit(tmp_path, logger)
    finally:
        logger.experiment.finish()
    history = read_run(wandb_dir, logger.experiment.id).history
    assert [r[ENERGY_METRIC] for r in history if ENERGY_METRIC in r] == pytest.approx([200.0] * 2)
    assert sum(CO2E_METRIC in r for r in history) == 2


class TinyRegressor(nn.Module):
    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock
        self.net = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        self.clock.advance(1.0)
        return {"loss": nn.functional.mse_loss(self.net(x), labels)}


def hf_train(tmp_path: Path, report_to: str) -> EnergyCallback:
    """A real 2-epoch Hugging Face Trainer run reporting to ``report_to``; returns its callback."""
    from transformers import Trainer, TrainingArguments

    clock = ManualClock()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=16,
        report_to=[report_to],
        use_cpu=True,
        save_strategy="no",
        logging_strategy="epoch",
        disable_tqdm=True,
    )
    xs, ys = rows().tensors
    data = [{"x": x, "labels": y} for x, y in zip(xs, ys, strict=True)]
    energy = EnergyTrainerCallback(verbose=False, **tracker_options(clock))
    energy.attach(Trainer(model=TinyRegressor(clock), args=args, train_dataset=data)).train()
    assert energy.record is not None
    assert [w.energy_j for w in energy.record.windows] == pytest.approx([200.0, 200.0])
    return energy


def test_hf_trainer_epochs_reach_its_report_to_mlflow(
    mlflow_server: str, mlflow_experiment: str, tmp_path: Path
) -> None:
    import mlflow

    with mlflow.start_run() as active:  # the Trainer's MLflowCallback logs into the active run
        hf_train(tmp_path, "mlflow")
    history = energy_history(mlflow_server, active.info.run_id)
    assert sorted(v for _, v in history) == pytest.approx([200.0, 200.0])
    assert (
        CO2E_METRIC in mlflow.MlflowClient(mlflow_server).get_run(active.info.run_id).data.metrics
    )


def test_hf_trainer_epochs_reach_its_report_to_wandb(wandb_dir: Path, tmp_path: Path) -> None:
    import wandb

    user = wandb.init(name="hf-run")  # the Trainer's WandbCallback logs into wandb.run
    try:
        hf_train(tmp_path, "wandb")
    finally:
        user.finish()
    key = "train/" + ENERGY_METRIC  # the WandbCallback files trainer logs under train/
    history = read_run(wandb_dir, user.id).history
    assert [r[key] for r in history if key in r] == pytest.approx([200.0, 200.0])
    assert sum("train/" + CO2E_METRIC in r for r in history) == 2
