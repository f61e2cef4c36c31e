"""``baseline``: the fp32 model trained from scratch - the reference every saving is measured
against; ``early-stop``: the same model, stopped at the first epoch that reaches the target
(energy-to-accuracy)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from greenforge.forge.recipes.base import (
    Candidate,
    ForgeContext,
    RecipeConfig,
    register_recipe,
)


@dataclasses.dataclass(frozen=True)
class BaselineConfig(RecipeConfig):
    """Train the task's architecture in fp32 for ``epochs`` (default: the task's)."""

    VERSION: ClassVar[int] = 1
    epochs: int | None = None

    def validate(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"BaselineConfig.epochs {self.epochs!r} must be >= 1.")


class BaselineRecipe:
    name = "baseline"
    config_type = BaselineConfig

    def __init__(self, config: BaselineConfig) -> None:
        self.config = config

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        model = ctx.build_model()
        out = ctx.train(model, name="baseline", epochs=self.config.epochs)
        return [
            Candidate(
                name="baseline",
                recipe=self.name,
                config=self.config.to_dict(),
                model=model,
                train=out.measurement,
                epochs_run=out.epochs_run,
                val_accuracy=out.val_accuracy,
            )
        ]


@dataclasses.dataclass(frozen=True)
class EarlyStopConfig(RecipeConfig):
    """Train the task's architecture, stopping once validation accuracy reaches the target
    (plus ``margin``); at most ``epochs`` (default: the task's)."""

    VERSION: ClassVar[int] = 1
    epochs: int | None = None
    margin: float = 0.005
    name: str = "early-stop"

    def validate(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"EarlyStopConfig.epochs {self.epochs!r} must be >= 1.")
        if not 0.0 <= self.margin < 0.5:
            raise ValueError(f"EarlyStopConfig.margin {self.margin!r} must be in [0, 0.5).")


def stop_target(ctx: ForgeContext, margin: float) -> float | None:
    """The validation accuracy at which to stop: the target plus a safety margin."""
    return ctx.val_target(margin)


class EarlyStopRecipe:
    name = "early-stop"
    config_type = EarlyStopConfig

    def __init__(self, config: EarlyStopConfig) -> None:
        self.config = config

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        model = ctx.build_model()
        out = ctx.train(
            model,
            name=self.config.name,
            epochs=self.config.epochs,
            stop_at_accuracy=stop_target(ctx, self.config.margin),
        )
        notes = (
            (f"stopped after {out.epochs_run} epoch(s) at the target",) if out.stopped_early else ()
        )
        return [
            Candidate(
                name=self.config.name,
                recipe=self.name,
                config=self.config.to_dict(),
                model=model,
                train=out.measurement,
                epochs_run=out.epochs_run,
                val_accuracy=out.val_accuracy,
                notes=notes,
            )
        ]


register_recipe("baseline", BaselineRecipe)
register_recipe("early-stop", EarlyStopRecipe)
