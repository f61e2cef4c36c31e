"""A tiny real Keras 3 fit on the torch backend, with a manual clock that moves 1 s a batch."""

from __future__ import annotations

from typing import Any

import keras  # on the torch backend: tests/integrations/conftest.py sets KERAS_BACKEND
import numpy as np

from greenforge.config import load_settings
from greenforge.testing import FakeMeter, ManualClock, StaticIntensity


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


class Tick(keras.callbacks.Callback):  # type: ignore[misc]
    """Moves the clock 1 s per batch (100 J a batch on the 100 W fake meter)."""

    def __init__(self, clock: ManualClock, fail_at_epoch: int | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.fail_at_epoch = fail_at_epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.clock.advance(1.0)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.fail_at_epoch is not None and epoch + 1 == self.fail_at_epoch:
            raise RuntimeError("training broke")


def fit(
    clock: ManualClock, callback: Any, *, epochs: int = 3, fail_at_epoch: int | None = None
) -> Any:
    """Fits a one-layer model for ``epochs`` epochs of 4 batches; returns its History."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=16,
        verbose=0,
        callbacks=[Tick(clock, fail_at_epoch), callback],
    )
