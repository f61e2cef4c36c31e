"""The tuners as a PyTorch Lightning callback: ``TuneLightningCallback``.

::

    from greenforge.tune import CpuThreadTuner, PowerLimitOptimizer
    from greenforge.tune.lightning import TuneLightningCallback

    tune = TuneLightningCallback(cpu_threads=CpuThreadTuner((1, 2, 4)))      # CPU training
    tune = TuneLightningCallback(power_limits=PowerLimitOptimizer(eta=0.5))  # GPU training
    L.Trainer(callbacks=[tune]).fit(model, loader)

Training start starts the tuners, each batch is a step (its samples: the first tensor's length),
each epoch an epoch window of the power-limit optimizer, and training end - or an exception -
closes them (torch threads and GPU power limits restored). The class is built on first use, so
this module imports Lightning only then.
"""

from __future__ import annotations

from typing import Any

from greenforge.lazy import LazyClasses
from greenforge.tune.callback import CpuThreadTuner
from greenforge.tune.gpu import PowerLimitOptimizer


def batch_samples(batch: Any) -> int:
    """Returns the samples in a batch: the length of its first tensor (0 when unknown)."""
    first = batch
    while isinstance(first, list | tuple) and first:
        first = first[0]
    if isinstance(first, dict) and first:
        first = next(iter(first.values()))
    shape = getattr(first, "shape", None)
    return int(shape[0]) if shape else 0


def _callback_class() -> type:
    from greenforge.schedule.callbacks import _lightning_base

    base = _lightning_base()

    class TuneLightningCallback(base):  # type: ignore[misc,valid-type]
        """Runs a :class:`CpuThreadTuner` and/or a :class:`PowerLimitOptimizer` in
        ``Trainer.fit``."""

        def __init__(
            self,
            *,
            cpu_threads: CpuThreadTuner | None = None,
            power_limits: PowerLimitOptimizer | None = None,
        ) -> None:
            super().__init__()
            self.cpu_threads = cpu_threads
            self.power_limits = power_limits

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            if self.cpu_threads is not None:
                self.cpu_threads.start()
            if self.power_limits is not None:
                self.power_limits.start()

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if self.power_limits is not None:
                self.power_limits.on_epoch_begin()

        def on_train_batch_start(
            self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
        ) -> None:
            if self.cpu_threads is not None:
                self.cpu_threads.on_step_begin()
            if self.power_limits is not None:
                self.power_limits.on_step_begin()

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            if self.cpu_threads is not None:
                self.cpu_threads.on_step_end(batch_samples(batch))
            if self.power_limits is not None:
                self.power_limits.on_step_end()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self.power_limits is not None:
                self.power_limits.on_epoch_end()

        def _close(self) -> None:
            if self.cpu_threads is not None:
                self.cpu_threads.close()
            if self.power_limits is not None:
                self.power_limits.close()

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self._close()

        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            self._close()

    return TuneLightningCallback


_LAZY = LazyClasses(__name__, {"TuneLightningCallback": _callback_class})


def __getattr__(name: str) -> Any:
    return _LAZY(name)
