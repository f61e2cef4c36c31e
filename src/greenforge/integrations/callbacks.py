"""Measurement callbacks for PyTorch Lightning, the Hugging Face ``Trainer`` and Keras 3.

Each callback measures a training run with a :class:`~greenforge.tracker.Tracker`: one window
per epoch (``epoch-1``, ``epoch-2`` ..., so ``greenforge runs show --per epoch`` counts them), a
budget check after each epoch (over budget, it asks the trainer to stop after that epoch), the
Carbontracker-style "predicted total after N epochs" message (the tracker's own prediction,
:attr:`Tracker.prediction`), and each epoch's ``greenforge/energy_j`` and ``greenforge/co2e_g``
logged through the trainer's own loggers (so into MLflow, W&B, CSV ... whichever it uses).

A callback given no tracker starts one at train start (``Tracker(**tracker_options)``) and
stops it at train end or on an exception; a tracker passed in is the caller's to start and
stop. A measurement failure is a warning, never a failed training. The classes are created on
first use, so this module imports none of ``lightning``, ``transformers`` or ``keras`` by itself.

Lightning::

    from greenforge.integrations.callbacks import EnergyLightningCallback

    energy = EnergyLightningCallback(zone="DE", budget=Budget(co2e_g=500.0))
    L.Trainer(max_epochs=10, callbacks=[energy]).fit(model, loader)
    print(energy.record.co2e_g)

Hugging Face (``attach`` lets the epoch figures reach the trainer's ``report_to`` loggers)::

    from greenforge.integrations.callbacks import EnergyTrainerCallback

    energy = EnergyTrainerCallback(zone="DE")
    trainer = energy.attach(Trainer(model, args, train_dataset=ds))
    trainer.train()

Keras 3 (any backend; ``KERAS_BACKEND=torch`` runs on the CPU torch wheel). Keras has no logger
objects, so the epoch figures go into the epoch's ``logs`` (``History``, ``CSVLogger`` and any
callback after this one see them) and, when the training already logs there, into the active
MLflow run (``mlflow.active_run()``) and the W&B run (``wandb.run``) at step = epoch::

    from greenforge.integrations.callbacks import EnergyKerasCallback

    energy = EnergyKerasCallback(zone="DE", budget=Budget(co2e_g=500.0))
    model.fit(x, y, epochs=10, callbacks=[energy])

Keras calls no callback when ``fit`` raises: an owned tracker is then stopped as ``failed`` by
``energy.close("failed")`` (or ``with energy: model.fit(...)``).
"""

from __future__ import annotations

import logging
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from greenforge.errors import BudgetExceededError, MissingExtraError
from greenforge.lazy import LazyClasses
from greenforge.units import J_PER_KWH

if TYPE_CHECKING:
    from greenforge.records import Prediction, RunRecord, RunStatus
    from greenforge.tracker import Tracker

log = logging.getLogger("greenforge.integrations.callbacks")

ENERGY_METRIC = "greenforge/energy_j"
CO2E_METRIC = "greenforge/co2e_g"


def prediction_message(prediction: Prediction) -> str:
    """Returns the "predicted total after N epochs" line (kWh, gCO2e, s) for a prediction."""
    co2e = "unknown" if prediction.co2e_g is None else f"{prediction.co2e_g:.4g}"
    return (
        f"greenforge: predicted total after {prediction.windows_seen} of "
        f"{prediction.windows_total} epochs: {prediction.energy_j / J_PER_KWH:.4g} kWh, "
        f"{co2e} gCO2e, {prediction.duration_s:.4g} s"
    )


class EpochMeter:
    """The library-free part of both callbacks: epoch windows, budget, prediction, metrics."""

    def __init__(
        self, tracker: Tracker | None = None, *, verbose: bool = True, **tracker_options: Any
    ) -> None:
        self.tracker = tracker
        self.owns_tracker = tracker is None
        self.tracker_options = tracker_options
        self.verbose = verbose
        self.record: RunRecord | None = None
        """The owned tracker's record once training ended (``None`` for a passed-in one)."""
        self.messages: list[str] = []
        """The prediction messages shown so far."""
        self.stopped_by_budget = False
        self._open: str | None = None
        self._predicted = 0

    def train_start(self, epochs_total: int | None) -> None:
        """Start the owned tracker (predicting over ``epochs_total`` epochs when known)."""
        expected = epochs_total if epochs_total is not None and epochs_total >= 1 else None
        if self.tracker is None:
            from greenforge.tracker import Tracker

            options = {"expected_windows": expected, **self.tracker_options}
            try:
                self.tracker = Tracker(**options).start()
            except Exception as exc:
                self._warn(f"no energy measurement for this training: {exc}")
                self.tracker = None
                self.owns_tracker = False
        elif self.tracker.expected_windows is None and expected is not None:
            self.tracker.expected_windows = expected

    def epoch_start(self, epoch: int) -> None:
        """Open the window ``epoch-<epoch>`` (1-based)."""
        if self.tracker is None:
            return
        try:
            self._open = self.tracker.begin(f"epoch-{epoch}")
        except BudgetExceededError:
            raise
        except Exception as exc:
            self._open = None
            self._warn(f"epoch {epoch} not measured: {exc}")

    def epoch_end(self) -> tuple[dict[str, float], bool]:
        """Close the epoch window; returns its metrics (J, g) and True when over budget."""
        tracker, name = self.tracker, self._open
        if tracker is None or name is None:
            return {}, False
        self._open = None
        try:
            window = tracker.end(name)
            over = tracker.check_budget()
        except BudgetExceededError:
            raise
        except Exception as exc:
            self._warn(f"epoch {name} not measured: {exc}")
            return {}, False
        metrics = {ENERGY_METRIC: window.energy_j}
        if window.co2e_g is not None:
            metrics[CO2E_METRIC] = window.co2e_g
        prediction = tracker.prediction
        if prediction is not None and prediction.windows_seen > self._predicted:
            self._predicted = prediction.windows_seen
            self._say(prediction_message(prediction))
        if over:
            self.stopped_by_budget = True
            status = tracker.budget_status
            reason = status.reason if status is not None else "over budget"
            self._say(f"greenforge: stopping training after {name}: {reason}")
        return metrics, over

    def train_end(self, status: RunStatus = "completed") -> None:
        """Close an open epoch window and stop the owned tracker (warns on failure)."""
        tracker = self.tracker
        if tracker is None:
            return
        if self._open is not None:
            self._open = None
            try:
                tracker.end()
            except Exception as exc:
                self._warn(f"last epoch not closed: {exc}")
        if not self.owns_tracker:
            return
        self.tracker = None
        try:
            self.record = tracker.stop(status, stopped_by_budget=self.stopped_by_budget)
        except BudgetExceededError:
            raise
        except Exception as exc:
            self._warn(f"energy measurement not stopped cleanly: {exc}")

    def _say(self, message: str) -> None:
        self.messages.append(message)
        log.info("%s", message)
        if self.verbose:
            print(message, file=sys.stderr)

    def _warn(self, message: str) -> None:
        if self.tracker is not None:
            self.tracker.warn(message)
        else:
            warnings.warn(f"greenforge: {message}", RuntimeWarning, stacklevel=3)


class _MeteredCallback:
    """What both callbacks show of their :class:`EpochMeter`."""

    meter: EpochMeter

    @property
    def record(self) -> RunRecord | None:
        """The run record of the tracker this callback owned, once training ended."""
        return self.meter.record

    @property
    def messages(self) -> list[str]:
        """The prediction and budget messages shown so far."""
        return self.meter.messages


def _lightning_callback_class() -> type:
    from greenforge.schedule.callbacks import _lightning_base

    base = _lightning_base()

    class EnergyLightningCallback(_MeteredCallback, base):  # type: ignore[misc,valid-type]
        """Measure each epoch of ``Trainer.fit``; stop it when the budget is exceeded."""

        def __init__(
            self, tracker: Tracker | None = None, *, verbose: bool = True, **tracker_options: Any
        ) -> None:
            super().__init__()
            self.meter = EpochMeter(tracker, verbose=verbose, **tracker_options)

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            max_epochs = trainer.max_epochs
            self.meter.train_start(max_epochs if isinstance(max_epochs, int) else None)

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.meter.epoch_start(int(trainer.current_epoch) + 1)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            metrics, over = self.meter.epoch_end()
            for key, value in metrics.items():
                try:
                    pl_module.log(key, float(value), on_step=False, on_epoch=True)
                except Exception as exc:
                    self.meter._warn(f"{key} not logged to the trainer: {exc}")
            if over:
                trainer.should_stop = True

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.meter.train_end("completed")

        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            self.meter.train_end("failed")

    return EnergyLightningCallback


def _trainer_callback_class() -> type:
    try:
        from transformers import TrainerCallback
    except ImportError:
        raise MissingExtraError("transformers", "torch", "the Trainer energy callback") from None

    class EnergyTrainerCallback(_MeteredCallback, TrainerCallback):
        """Measure each epoch of ``Trainer.train``; stop it when the budget is exceeded."""

        def __init__(
            self, tracker: Tracker | None = None, *, verbose: bool = True, **tracker_options: Any
        ) -> None:
            self.meter = EpochMeter(tracker, verbose=verbose, **tracker_options)
            self.trainer: Any = None

        def attach(self, trainer: Any) -> Any:
            """Add this callback to ``trainer`` and return it; the epoch figures then go
            through ``trainer.log`` (so to every ``report_to`` logger, MLflow, W&B ...)."""
            self.trainer = trainer
            trainer.add_callback(self)
            return trainer

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            epochs = state.num_train_epochs or args.num_train_epochs
            self.meter.train_start(math.ceil(epochs) if epochs else None)
            return control

        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            self.meter.epoch_start(int((state.epoch or 0) + 1e-6) + 1)
            return control

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            metrics, over = self.meter.epoch_end()
            if metrics:
                try:
                    if self.trainer is not None:
                        self.trainer.log(dict(metrics))
                    else:
                        state.log_history.append(
                            {**metrics, "epoch": state.epoch, "step": state.global_step}
                        )
                except Exception as exc:
                    self.meter._warn(f"epoch figures not logged to the trainer: {exc}")
            if over:
                control.should_training_stop = True
            return control

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            self.meter.train_end("completed")
            return control

    return EnergyTrainerCallback


KERAS_TARGETS = ("mlflow", "wandb")
"""Trackers the Keras callback logs the epoch figures to directly, when the training uses them."""


def active_trackers(names: Sequence[str] = KERAS_TARGETS) -> dict[str, Any]:
    """Returns the experiment-tracker runs the training already logs to, by name: the active
    MLflow run's module (``mlflow``) and ``wandb.run`` (``wandb``). A library the program has
    not imported has no run, so nothing is imported here."""
    found: dict[str, Any] = {}
    mlflow = sys.modules.get("mlflow") if "mlflow" in names else None
    active_run = getattr(mlflow, "active_run", None)
    if active_run is not None and active_run() is not None:
        found["mlflow"] = mlflow
    wandb = sys.modules.get("wandb") if "wandb" in names else None
    if wandb is not None and getattr(wandb, "run", None) is not None:
        found["wandb"] = wandb.run
    return found


def log_epoch_to_trackers(
    meter: EpochMeter, metrics: Mapping[str, float], epoch: int, names: Sequence[str]
) -> list[str]:
    """Logs one epoch's figures (J, g) at step ``epoch`` to the active MLflow run and W&B run
    among ``names``; returns the trackers logged to (a failure is a warning)."""
    done: list[str] = []
    if not metrics:
        return done
    for name, target in active_trackers(names).items():
        try:
            if name == "mlflow":
                from greenforge.integrations.mlflow import bounded_http

                with bounded_http():
                    target.log_metrics(dict(metrics), step=epoch)
            else:
                target.log({**metrics, "epoch": epoch})
        except Exception as exc:
            meter._warn(f"epoch {epoch} figures not logged to {name}: {exc}")
        else:
            done.append(name)
    return done


def _keras_callback_class() -> type:
    try:
        import keras
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "keras"
        if missing != "keras":  # keras is there, its backend is not
            from greenforge.errors import ConfigError

            raise ConfigError(
                f"Keras is installed but its backend is not ({missing!r} cannot be imported): "
                "set KERAS_BACKEND=torch (before keras is first imported) to run it on torch, "
                f"or install {missing}."
            ) from None
        raise MissingExtraError("keras", "keras", "the Keras energy callback") from None

    class EnergyKerasCallback(_MeteredCallback, keras.callbacks.Callback):  # type: ignore[misc]
        """Measure each epoch of ``model.fit``; stop it when the budget is exceeded.

        ``log_to`` names the trackers the epoch figures go to when the training uses them
        (default ``("mlflow", "wandb")``; ``()`` only the Keras ``logs``, e.g. beside
        ``mlflow.keras.autolog``, which logs those already).
        """

        def __init__(
            self,
            tracker: Tracker | None = None,
            *,
            verbose: bool = True,
            log_to: Sequence[str] = KERAS_TARGETS,
            **tracker_options: Any,
        ) -> None:
            super().__init__()
            unknown = [n for n in log_to if n not in KERAS_TARGETS]
            if unknown:
                from greenforge.errors import ConfigError

                raise ConfigError(
                    f"unknown tracker {unknown[0]!r} in log_to: use any of "
                    f"{', '.join(KERAS_TARGETS)}, or () for the Keras logs only."
                )
            self.meter = EpochMeter(tracker, verbose=verbose, **tracker_options)
            self.log_to = tuple(log_to)
            self.logged_to: set[str] = set()
            """The trackers the epoch figures went to so far."""

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            epochs = self.params.get("epochs") if isinstance(self.params, dict) else None
            self.meter.train_start(epochs if isinstance(epochs, int) else None)

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.meter.epoch_start(int(epoch) + 1)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            metrics, over = self.meter.epoch_end()
            if logs is not None:
                logs.update(metrics)
            self.logged_to.update(
                log_epoch_to_trackers(self.meter, metrics, int(epoch) + 1, self.log_to)
            )
            if over:
                self.model.stop_training = True

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            self.meter.train_end("completed")

        def close(self, status: RunStatus = "failed") -> None:
            """Stop an owned tracker that ``fit`` left running (it raised); idempotent."""
            self.meter.train_end(status)

        def __enter__(self) -> EnergyKerasCallback:
            return self

        def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
            self.close("completed" if exc_type is None else "failed")

    return EnergyKerasCallback


_LAZY = LazyClasses(
    __name__,
    {
        "EnergyTrainerCallback": _trainer_callback_class,
        "EnergyLightningCallback": _lightning_callback_class,
        "EnergyKerasCallback": _keras_callback_class,
    },
)


def __getattr__(name: str) -> Any:
    return _LAZY(name)
