"""Pause/resume callbacks: a real Hugging Face Trainer and a real Lightning Trainer are paused
by the signal mid-training, checkpoint, and resume to the planned number of steps."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from greenforge.schedule import callbacks
from greenforge.schedule.checkpoint import ENV_CHECKPOINT_DIR, ENV_RESUME, PAUSE_EXIT_CODE

X = torch.arange(32, dtype=torch.float32).reshape(8, 4) / 32
Y = X.sum(dim=1, keepdim=True)


def test_unknown_attributes_are_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchCallback"):
        callbacks.NoSuchCallback  # noqa: B018


def test_no_checkpoint_is_offered_on_a_fresh_start(tmp_path: Path) -> None:
    (tmp_path / "checkpoint-3").mkdir()
    assert callbacks.trainer_resume_checkpoint(tmp_path, env={ENV_RESUME: "0"}) is None
    assert callbacks.trainer_resume_checkpoint(tmp_path / "missing", env={ENV_RESUME: "1"}) is None


# -- Hugging Face Trainer ----------------------------------------------------------------------
class TinyRegressor(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.linear(x)
        return {"loss": ((out - labels) ** 2).mean(), "logits": out}


def _hf_trainer(output_dir: Path, extra_callbacks: list[Any]) -> Any:
    from transformers import Trainer, TrainingArguments

    torch.manual_seed(0)
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=6,
        per_device_train_batch_size=2,
        save_strategy="no",
        report_to=[],
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    data = [{"x": X[i], "labels": Y[i]} for i in range(len(X))]
    return Trainer(model=TinyRegressor(), args=args, train_dataset=data, callbacks=extra_callbacks)


def test_the_trainer_callback_checkpoints_and_stops_on_the_signal_then_resumes(
    tmp_path: Path,
) -> None:
    from transformers import TrainerCallback

    class SignalAtStep3(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 3:
                os.kill(os.getpid(), signal.SIGUSR1)

    before = signal.getsignal(signal.SIGUSR1)
    pause = callbacks.GreenForgeTrainerCallback(signal_name="SIGUSR1")
    first = _hf_trainer(tmp_path, [SignalAtStep3(), pause])
    first.train()

    assert pause.paused
    assert first.state.global_step == 3
    assert (tmp_path / "checkpoint-3").is_dir()
    assert signal.getsignal(signal.SIGUSR1) is before
    with pytest.raises(SystemExit) as exited:
        pause.exit_if_paused()
    assert exited.value.code == PAUSE_EXIT_CODE

    resume_from = callbacks.trainer_resume_checkpoint(tmp_path, env={ENV_RESUME: "1"})
    assert resume_from is not None
    assert resume_from.endswith("checkpoint-3")
    again = callbacks.GreenForgeTrainerCallback(signal_name="SIGUSR1")
    second = _hf_trainer(tmp_path, [again])
    second.train(resume_from_checkpoint=resume_from)

    assert not again.paused
    assert second.state.global_step == 6
    again.exit_if_paused()  # not paused: returns


# -- Lightning ---------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning")
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")  # lightning 2.6 on torch 2.13
def test_the_lightning_callback_checkpoints_and_stops_on_the_signal_then_resumes(
    tmp_path: Path,
) -> None:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(pl.LightningModule):
        def __init__(self, signal_at: int | None) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 1)
            self.signal_at = signal_at

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            if self.global_step == self.signal_at:
                os.kill(os.getpid(), signal.SIGUSR1)
            loss: torch.Tensor = ((self.linear(x) - y) ** 2).mean()
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    def trainer(pause: Any) -> pl.Trainer:
        return pl.Trainer(
            max_steps=6,
            callbacks=[pause],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
            devices=1,
        )

    loader = DataLoader(TensorDataset(X, Y), batch_size=2)
    env = {ENV_CHECKPOINT_DIR: str(tmp_path), ENV_RESUME: "0"}
    pause = callbacks.GreenForgeLightningCallback(signal_name="SIGUSR1", env=env)
    first = trainer(pause)
    assert pause.resume_path() is None
    first.fit(Tiny(signal_at=2), loader)

    assert pause.paused
    assert first.global_step == 3
    assert pause.path.is_file()

    resumed = callbacks.GreenForgeLightningCallback(
        signal_name="SIGUSR1", env={**env, ENV_RESUME: "1"}
    )
    second = trainer(resumed)
    second.fit(Tiny(signal_at=None), loader, ckpt_path=resumed.resume_path())

    assert not resumed.paused
    assert second.global_step == 6
