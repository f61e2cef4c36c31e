"""``prune``: structured pruning (Torch-Pruning; neurons/channels removed, parameters and FLOPs
drop) followed by fine-tuning, optionally with the parent as a distillation teacher. Unstructured
magnitude pruning is available and labelled: it does not reduce dense compute."""

from __future__ import annotations

import copy
import dataclasses
from typing import ClassVar, Literal

from greenforge.errors import ConfigError
from greenforge.forge.candidate import Candidate
from greenforge.forge.context import ForgeContext
from greenforge.forge.recipes.base import register_recipe
from greenforge.forge.recipes.baseline import stop_target
from greenforge.forge.recipes.config import RecipeConfig


@dataclasses.dataclass(frozen=True)
class PruneRecipeConfig(RecipeConfig):
    """Prune ``source`` (a candidate name or ``best``) by ``amount`` and fine-tune."""

    VERSION: ClassVar[int] = 1
    source: str = "best"
    amount: float = 0.5
    kind: Literal["structured", "unstructured"] = "structured"
    finetune_epochs: int | None = None
    distill_from_parent: bool = True
    early_stop: bool = False
    margin: float = 0.01
    name: str | None = None

    def validate(self) -> None:
        if not 0.0 < self.amount < 1.0:
            raise ValueError(f"PruneRecipeConfig.amount {self.amount!r} must be in (0, 1).")
        self._check_count("finetune_epochs")
        self._check_margin()


class PruneRecipe:
    name = "prune"
    config_type = PruneRecipeConfig

    def __init__(self, config: PruneRecipeConfig) -> None:
        self.config = config

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        from torch import nn

        from greenforge.forge.compress import ChannelPruneConfig, UnstructuredPruneConfig, prune_
        from greenforge.forge.recipes.quantize import resolve_source

        cfg = self.config
        parent = resolve_source(ctx, cfg.source)
        if not isinstance(parent.model, nn.Module) or parent.precision != "fp32":
            raise ConfigError(
                f"prune: source {parent.name!r} is a {parent.precision} {parent.runtime} model; "
                "prune an fp32 torch candidate (prune before quantizing)."
            )
        model = copy.deepcopy(parent.model)
        x = next(iter(ctx.loader("train", batch_size=8)))[0]
        pcfg = (
            ChannelPruneConfig(amount=cfg.amount)
            if cfg.kind == "structured"
            else UnstructuredPruneConfig(amount=cfg.amount)
        )
        label = f"{'prune' if cfg.kind == 'structured' else 'sparse'}{round(cfg.amount * 100)}"
        name = cfg.name or f"{parent.name}+{label}"
        if name in ctx.candidates:
            return []
        _, prune_m = ctx.measure(f"prune:{name}", lambda: prune_(model, pcfg, x))
        finetune_epochs = cfg.finetune_epochs or max(1, ctx.epochs // 2)
        if cfg.kind == "unstructured":
            masks = [
                (m.weight, (m.weight != 0))
                for m in model.modules()
                if isinstance(m, (nn.Linear, nn.Conv2d))
            ]

            def keep_zero_hook() -> None:
                for w, mask in masks:
                    w.register_hook(lambda g, mask=mask: g * mask)  # type: ignore[no-untyped-call]

            keep_zero_hook()
        out = ctx.train(
            model,
            name=name,
            epochs=finetune_epochs,
            teacher=parent.model if cfg.distill_from_parent else None,
            stop_at_accuracy=stop_target(ctx, cfg.margin) if cfg.early_stop else None,
        )
        from greenforge.forge.measure import total

        notes: tuple[str, ...]
        if cfg.kind == "structured":
            notes = (
                f"{round(cfg.amount * 100)} % of channels/neurons removed (Torch-Pruning), "
                f"fine-tuned {out.epochs_run} epoch(s)",
            )
        else:
            notes = (
                f"{round(cfg.amount * 100)} % of weights zeroed (unstructured): dense compute "
                "and latency are unchanged; it pays only with sparse kernels or compressed "
                "storage",
            )
        return [
            Candidate(
                name=name,
                recipe=self.name,
                config=cfg.to_dict(),
                model=model,
                train=total([prune_m, out.measurement]),
                parent=parent.name,
                epochs_run=out.epochs_run,
                val_accuracy=out.val_accuracy,
                notes=notes,
            )
        ]


register_recipe("prune", PruneRecipe)
