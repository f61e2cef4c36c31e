"""``baseline``: the fp32 model trained from scratch - the reference every saving is measured
against; ``early-stop``: the same model, stopped at the first epoch that reaches the target
(energy-to-accuracy)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from greenforge.forge.candidate import Candidate, TrainOutcome
from greenforge.forge.context import ForgeContext, Precision
from greenforge.forge.recipes.base import register_recipe
from greenforge.forge.recipes.config import RecipeConfig


@dataclasses.dataclass(frozen=True)
class BaselineConfig(RecipeConfig):
    """Train the task's architecture in fp32 for ``epochs`` (default: the task's)."""

    VERSION: ClassVar[int] = 1
    epochs: int | None = None

    def validate(self) -> None:
        self._check_count()


class BaselineRecipe:
    name = "baseline"
    config_type = BaselineConfig

    def __init__(self, config: BaselineConfig) -> None:
        self.config = config

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        candidate, _ = train_from_scratch(
            ctx, recipe=self.name, config=self.config, name="baseline", epochs=self.config.epochs
        )
        return [candidate]


@dataclasses.dataclass(frozen=True)
class EarlyStopConfig(RecipeConfig):
    """Train the task's architecture, stopping once validation accuracy reaches the target
    (plus ``margin``); at most ``epochs`` (default: the task's)."""

    VERSION: ClassVar[int] = 1
    epochs: int | None = None
    margin: float = 0.005
    name: str = "early-stop"

    def validate(self) -> None:
        self._check_count()
        self._check_margin()


def stop_target(ctx: ForgeContext, margin: float) -> float | None:
    """The validation accuracy at which to stop: the target plus a safety margin."""
    return ctx.val_target(margin)


def train_from_scratch(
    ctx: ForgeContext,
    *,
    recipe: str,
    config: RecipeConfig,
    name: str,
    epochs: int | None,
    precision: Precision = "fp32",
    stop_at_accuracy: float | None = None,
    notes: tuple[str, ...] = (),
) -> tuple[Candidate, TrainOutcome]:
    """Build the task's architecture, train it (measured) and wrap it as one candidate."""
    model = ctx.build_model()
    out = ctx.train(
        model, name=name, epochs=epochs, precision=precision, stop_at_accuracy=stop_at_accuracy
    )
    candidate = Candidate(
        name=name,
        recipe=recipe,
        config=config.to_dict(),
        model=model,
        train=out.measurement,
        epochs_run=out.epochs_run,
        val_accuracy=out.val_accuracy,
        notes=notes,
    )
    return candidate, out


class EarlyStopRecipe:
    name = "early-stop"
    config_type = EarlyStopConfig

    def __init__(self, config: EarlyStopConfig) -> None:
        self.config = config

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        candidate, out = train_from_scratch(
            ctx,
            recipe=self.name,
            config=self.config,
            name=self.config.name,
            epochs=self.config.epochs,
            stop_at_accuracy=stop_target(ctx, self.config.margin),
        )
        if out.stopped_early:
            note = f"stopped after {out.epochs_run} epoch(s) at the target"
            candidate.notes = (note,)
        return [candidate]


register_recipe("baseline", BaselineRecipe)
register_recipe("early-stop", EarlyStopRecipe)
