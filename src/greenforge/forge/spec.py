"""What the user asked ``greenforge forge`` for: the :class:`TaskSpec`.

Built from ``--example`` or the task TOML (:mod:`greenforge.forge.task`); every value is checked
on construction and a bad one raises :class:`~greenforge.errors.ConfigError` naming it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from greenforge.errors import ConfigError

SERVING_RUNTIMES: tuple[str, ...] = ("native", "onnxruntime")
"""``native``: each candidate in its own runtime; ``onnxruntime``: fp32 models also in ORT."""


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What the user asked for (from ``--example`` or the task TOML)."""

    name: str
    target_accuracy: float | None = None
    """Absolute accuracy target in [0, 1]; or ``None`` and use ``tolerance``."""
    tolerance: float | None = None
    """Target = baseline test accuracy minus this (in [0, 1], e.g. 0.01 = one point)."""
    expected_inferences: int = 10_000_000
    """Predictions the model will serve in its lifetime."""
    zone: str | None = None
    """Deployment grid zone (inference CO2e); ``None`` = the settings' zone."""
    recipes: tuple[str, ...] = ()
    """Recipe names to run, in order (``baseline`` always runs first)."""
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    serving_batch_size: int = 64
    """Batch size the deployment serves at; its per-prediction energy drives lifetime CO2e."""
    architecture: str = "mlp"
    """Baseline architecture from the zoo (``mlp``, ``cnn``, ``transformer``) or ``pkg.mod:fn``."""
    architecture_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    serving_threads: int = 1
    """Threads a serving replica gets (torch intra-op; ONNX Runtime intra-op, one inter-op):
    every candidate's inference is measured with these."""
    serving_runtimes: tuple[str, ...] = SERVING_RUNTIMES
    """``native``: each candidate in the runtime it was made for; ``onnxruntime``: fp32 torch
    candidates are also exported and measured in ONNX Runtime (``<name>+onnx``)."""
    training_threads: int = 1
    """torch threads while training (recorded; 1 keeps training cost reproducible on a busy
    machine)."""
    measure_budget_s: float = 25.0
    """CPU seconds the interleaved inference measurement of all candidates may spend (its wall
    time is limited to 4x that); counted in CPU time so its own cost does not depend on other
    processes' load."""
    search_budget_co2e_g: float | None = None
    """Cap on the search's measured CO2e (g) for training and conversion steps: once spent,
    the remaining steps are skipped with the reason recorded (``None``: no cap). The final
    inference measurement (``measure_budget_s``) comes on top."""

    def __post_init__(self) -> None:
        budget = self.search_budget_co2e_g
        if budget is not None and (
            isinstance(budget, bool)
            or not isinstance(budget, (int, float))
            or not (math.isfinite(budget) and budget > 0)
        ):
            raise ConfigError(
                f"task {self.name!r}: search_budget_co2e_g must be a number of grams > 0, got "
                f"{budget!r}."
            )
        if isinstance(self.serving_runtimes, (list, str)):
            runtimes = (
                (self.serving_runtimes,)
                if isinstance(self.serving_runtimes, str)
                else self.serving_runtimes
            )
            object.__setattr__(self, "serving_runtimes", tuple(runtimes))
        valid = SERVING_RUNTIMES
        bad = [r for r in self.serving_runtimes if r not in valid]
        if bad or not self.serving_runtimes:
            raise ConfigError(
                f"task {self.name!r}: serving_runtimes {list(self.serving_runtimes)!r} must be a "
                f"non-empty list of {', '.join(repr(v) for v in valid)}."
            )
        if (
            isinstance(self.measure_budget_s, bool)
            or not isinstance(self.measure_budget_s, (int, float))
            or not (math.isfinite(self.measure_budget_s) and self.measure_budget_s > 0)
        ):
            raise ConfigError(
                f"task {self.name!r}: measure_budget_s must be > 0 seconds, got "
                f"{self.measure_budget_s!r}."
            )
        if self.target_accuracy is None and self.tolerance is None:
            raise ConfigError(
                f"task {self.name!r}: set target_accuracy (e.g. 0.95) or tolerance "
                "(baseline minus, e.g. 0.01)."
            )
        if self.target_accuracy is not None and not 0.0 < self.target_accuracy <= 1.0:
            raise ConfigError(
                f"task {self.name!r}: target_accuracy {self.target_accuracy!r} must be in (0, 1] "
                "(a fraction, e.g. 0.95 for 95 %)."
            )
        if self.tolerance is not None and not 0.0 <= self.tolerance < 1.0:
            raise ConfigError(
                f"task {self.name!r}: tolerance {self.tolerance!r} must be in [0, 1) "
                "(a fraction, e.g. 0.01 for one point)."
            )
        for field, value in (
            ("expected_inferences", self.expected_inferences),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("serving_batch_size", self.serving_batch_size),
            ("serving_threads", self.serving_threads),
            ("training_threads", self.training_threads),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < (0 if field == "expected_inferences" else 1)
            ):
                raise ConfigError(
                    f"task {self.name!r}: {field} must be a positive integer, got {value!r}."
                )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"task {self.name!r}: lr must be > 0, got {self.lr!r}.")
