"""``mixed-precision``: train with ``torch.autocast`` in bfloat16 (CPU or GPU), stopping at the
target; ``bf16``: a bfloat16 copy of a trained candidate for inference."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from greenforge.forge.candidate import Candidate
from greenforge.forge.context import ForgeContext
from greenforge.forge.recipes.base import register_recipe
from greenforge.forge.recipes.baseline import stop_target, train_from_scratch
from greenforge.forge.recipes.config import RecipeConfig


@dataclasses.dataclass(frozen=True)
class MixedPrecisionConfig(RecipeConfig):
    """Mixed-precision (bf16 autocast) training of the task's architecture."""

    VERSION: ClassVar[int] = 1
    epochs: int | None = None
    early_stop: bool = True
    margin: float = 0.005
    name: str = "mixed-precision"

    def validate(self) -> None:
        self._check_count()
        self._check_margin()


class MixedPrecisionRecipe:
    name = "mixed-precision"
    config_type = MixedPrecisionConfig

    def __init__(self, config: MixedPrecisionConfig) -> None:
        self.config = config

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        candidate, _ = train_from_scratch(
            ctx,
            recipe=self.name,
            config=self.config,
            name=self.config.name,
            epochs=self.config.epochs,
            precision="bf16-autocast",
            stop_at_accuracy=stop_target(ctx, self.config.margin)
            if self.config.early_stop
            else None,
            notes=("trained with bf16 autocast; served in fp32",),
        )
        return [candidate]


@dataclasses.dataclass(frozen=True)
class Bf16RecipeConfig(RecipeConfig):
    """Serve a trained candidate (``source``; ``best`` = fewest MACs meeting the target) in bf16."""

    VERSION: ClassVar[int] = 1
    source: str = "best"
    name: str | None = None


class Bf16Recipe:
    name = "bf16"
    config_type = Bf16RecipeConfig

    def __init__(self, config: Bf16RecipeConfig) -> None:
        self.config = config

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        from greenforge.forge.compress import Bf16Config, quantize
        from greenforge.forge.recipes.quantize import resolve_source

        parent = resolve_source(ctx, self.config.source)
        if (self.config.name or f"{parent.name}+bf16") in ctx.candidates:
            return []
        x = next(iter(ctx.loader("train", batch_size=8)))[0]
        q, m = ctx.measure(
            f"convert:{parent.name}+bf16",
            lambda: quantize(
                parent.model, Bf16Config(), example_inputs=x, workdir=ctx.scratch("bf16")
            ),
        )
        return [
            Candidate(
                name=self.config.name or f"{parent.name}+bf16",
                recipe=self.name,
                config=self.config.to_dict(),
                model=q,
                train=m,
                parent=parent.name,
                precision="bf16",
                flops_weight=0.5,
                notes=("bf16 weights/activations; speed depends on CPU bf16 support",),
            )
        ]


register_recipe("mixed-precision", MixedPrecisionRecipe)
register_recipe("bf16", Bf16Recipe)
