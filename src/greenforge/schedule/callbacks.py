"""Pause/resume callbacks for Hugging Face ``Trainer`` and PyTorch Lightning.

Both follow the protocol of :mod:`greenforge.schedule.checkpoint`: the pause signal (SIGTERM
by default, ``$GREENFORGE_PAUSE_SIGNAL``) makes the trainer save a checkpoint and stop after
the current step; the script then exits with code 99 (``callback.exit_if_paused()``). When the
executor restarts the job with ``GREENFORGE_RESUME=1``, training resumes from that checkpoint.
The signal handler exists only while training runs (installed at train start, restored at
train end). The classes are created on first use, so this module imports neither
``transformers`` nor ``lightning`` by itself.

Hugging Face::

    from greenforge.schedule.callbacks import GreenForgeTrainerCallback, trainer_resume_checkpoint

    pause = GreenForgeTrainerCallback()
    trainer = Trainer(model, args, train_dataset=ds, callbacks=[pause])
    trainer.train(resume_from_checkpoint=trainer_resume_checkpoint(args.output_dir))
    pause.exit_if_paused()

Lightning::

    from greenforge.schedule.callbacks import GreenForgeLightningCallback

    pause = GreenForgeLightningCallback()          # checkpoint in $GREENFORGE_CHECKPOINT_DIR
    trainer = L.Trainer(max_epochs=10, callbacks=[pause])
    trainer.fit(model, loader, ckpt_path=pause.resume_path())
    pause.exit_if_paused()
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from greenforge.errors import MissingExtraError
from greenforge.lazy import LazyClasses
from greenforge.schedule.checkpoint import (
    PauseSignal,
    checkpoint_dir,
    exit_paused,
    resume_requested,
)

LIGHTNING_CHECKPOINT_FILE = "greenforge-lightning.ckpt"


def trainer_resume_checkpoint(
    output_dir: str | Path, env: Mapping[str, str] | None = None
) -> str | None:
    """The last Trainer checkpoint in ``output_dir`` when resuming, else ``None``.

    Pass it to ``trainer.train(resume_from_checkpoint=...)``.
    """
    if not resume_requested(env) or not Path(output_dir).is_dir():
        return None
    try:
        from transformers.trainer_utils import get_last_checkpoint
    except ImportError:
        raise MissingExtraError("transformers", "torch", "the Trainer callback") from None
    found = get_last_checkpoint(str(output_dir))  # type: ignore[no-untyped-call]
    return None if found is None else str(found)


def _trainer_callback_class() -> type:
    try:
        from transformers import TrainerCallback
    except ImportError:
        raise MissingExtraError("transformers", "torch", "the Trainer callback") from None

    class GreenForgeTrainerCallback(TrainerCallback):
        """Save a checkpoint and stop training when the pause signal arrives."""

        def __init__(
            self, signal_name: str | None = None, env: Mapping[str, str] | None = None
        ) -> None:
            self.pause = PauseSignal(signal_name, env)
            self.paused = False

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            self.pause.install()
            return control

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if self.pause.requested:
                control.should_save = True
                control.should_training_stop = True
                self.paused = True
            return control

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            self.pause.uninstall()
            return control

        def exit_if_paused(self) -> None:
            """Exit with code 99 when training stopped for a pause."""
            if self.paused:
                exit_paused()

    return GreenForgeTrainerCallback


def _lightning_base() -> Any:
    try:
        from lightning.pytorch import Callback

        return Callback
    except ImportError:
        pass
    try:
        from pytorch_lightning import Callback as LegacyCallback

        return LegacyCallback
    except ImportError:
        raise MissingExtraError(
            "lightning", "lightning", "the Lightning callback (pip install lightning)"
        ) from None


def _lightning_callback_class() -> type:
    base = _lightning_base()

    class GreenForgeLightningCallback(base):  # type: ignore[misc,valid-type]
        """Save a checkpoint and stop ``fit`` when the pause signal arrives."""

        def __init__(
            self,
            directory: str | Path | None = None,
            *,
            signal_name: str | None = None,
            filename: str = LIGHTNING_CHECKPOINT_FILE,
            env: Mapping[str, str] | None = None,
        ) -> None:
            super().__init__()
            self._env: Mapping[str, str] = dict(os.environ if env is None else env)
            base = Path(directory) if directory is not None else checkpoint_dir(self._env)
            self.path = base / filename
            self.pause = PauseSignal(signal_name, self._env)
            self.paused = False

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            self.pause.install()

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            if self.pause.requested and not self.paused:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                trainer.save_checkpoint(str(self.path))
                trainer.should_stop = True
                self.paused = True

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.pause.uninstall()

        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            self.pause.uninstall()

        def resume_path(self) -> str | None:
            """The checkpoint to pass as ``fit(ckpt_path=...)`` when resuming, else ``None``."""
            if resume_requested(self._env) and self.path.is_file():
                return str(self.path)
            return None

        def exit_if_paused(self) -> None:
            """Exit with code 99 when ``fit`` stopped for a pause."""
            if self.paused:
                exit_paused()

    return GreenForgeLightningCallback


_LAZY = LazyClasses(
    __name__,
    {
        "GreenForgeTrainerCallback": _trainer_callback_class,
        "GreenForgeLightningCallback": _lightning_callback_class,
    },
)


def __getattr__(name: str) -> Any:
    return _LAZY(name)


__all__ = [
    "LIGHTNING_CHECKPOINT_FILE",
    "trainer_resume_checkpoint",
]
