"""The Lightning and Hugging Face energy callbacks log each epoch to the tracker the trainer
already uses: Lightning's ``MLFlowLogger`` and the Trainer's ``report_to=["mlflow"]``, against
the real MLflow server of conftest.py, read back with MlflowClient (the Keras callback's
MLflow/W&B logging is in test_mlflow.py and test_wandb.py)."""

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


def test_lightning_epochs_reach_the_trainers_mlflow_logger(
    mlflow_server: str, mlflow_experiment: str, tmp_path: Path
) -> None:
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow import MlflowClient

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

    experiment = MlflowClient(mlflow_server).get_experiment(mlflow_experiment).name
    logger = MLFlowLogger(experiment_name=experiment, tracking_uri=mlflow_server)
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
    run_id = logger.run_id
    assert run_id is not None
    history = energy_history(mlflow_server, run_id)
    assert sorted(v for _, v in history) == pytest.approx([200.0, 200.0])
    metrics = MlflowClient(mlflow_server).get_run(run_id).data.metrics
    assert CO2E_METRIC in metrics


class TinyRegressor(nn.Module):
    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock
        self.net = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        self.clock.advance(1.0)
        return {"loss": nn.functional.mse_loss(self.net(x), labels)}


def test_hf_trainer_epochs_reach_its_report_to_mlflow(
    mlflow_server: str, mlflow_experiment: str, tmp_path: Path
) -> None:
    import mlflow
    from transformers import Trainer, TrainingArguments

    clock = ManualClock()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=16,
        report_to=["mlflow"],
        use_cpu=True,
        save_strategy="no",
        logging_strategy="epoch",
        disable_tqdm=True,
    )
    xs, ys = rows().tensors
    data = [{"x": x, "labels": y} for x, y in zip(xs, ys, strict=True)]
    energy = EnergyTrainerCallback(verbose=False, **tracker_options(clock))
    with mlflow.start_run() as active:  # the Trainer's MLflowCallback logs into the active run
        energy.attach(Trainer(model=TinyRegressor(clock), args=args, train_dataset=data)).train()
    assert energy.record is not None
    assert [w.energy_j for w in energy.record.windows] == pytest.approx([200.0, 200.0])
    history = energy_history(mlflow_server, active.info.run_id)
    assert sorted(v for _, v in history) == pytest.approx([200.0, 200.0])
    assert (
        CO2E_METRIC in mlflow.MlflowClient(mlflow_server).get_run(active.info.run_id).data.metrics
    )
