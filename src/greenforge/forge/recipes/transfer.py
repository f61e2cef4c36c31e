"""Transfer recipes: fine-tune a pretrained starting point instead of training from scratch.

Each recipe reads the task's ``[pretrained]`` table (:class:`~greenforge.forge.pretrained.PretrainedSpec`),
loads the checkpoint safely, decides what trains, trains through :meth:`ForgeContext.train` (so
the energy is measured) and yields one :class:`Candidate`:

================== ==========================================================================
``transfer-head``    backbone frozen, a new head trains (cheapest; a feature extractor)
``transfer-partial`` the head and the last ``unfreeze_last`` blocks train
``transfer-full``    every parameter trains (default lr: the task's lr / 10)
``transfer-lora``    LoRA adapters (peft) + the head train; merged for deployment
``transfer``         the strategy named by ``[pretrained] strategy``
================== ==========================================================================

The checkpoint's own pretraining cost is not GreenForge's to measure; every candidate says so
in its notes (it was paid once, elsewhere, and is shared by everyone who reuses the weights).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Literal

from greenforge.errors import ConfigError, DataError
from greenforge.forge.candidate import Candidate
from greenforge.forge.context import ForgeContext
from greenforge.forge.recipes.base import register_recipe
from greenforge.forge.recipes.config import RecipeConfig

StrategyName = Literal["head", "partial", "full", "lora"]

DEFAULT_LR_FACTOR: dict[str, float] = {"head": 1.0, "partial": 0.1, "full": 0.1, "lora": 1.0}
"""Default learning rate per strategy, as a factor of the task's ``lr`` (pretrained weights
near the input need smaller steps than a fresh head or fresh adapters)."""


@dataclasses.dataclass(frozen=True)
class TransferConfig(RecipeConfig):
    """Options of the transfer recipes; ``None`` = the ``[pretrained]`` table's or task's value."""

    VERSION: ClassVar[int] = 1

    epochs: int | None = None
    lr: float | None = None
    unfreeze_last: int | None = None
    lora_r: int | None = None
    lora_alpha: int | None = None
    stop_at_target: bool = True
    """Stop at the first epoch whose validation accuracy reaches the target (energy-to-accuracy)."""
    margin: float = 0.005
    """Safety margin added to the validation target when stopping early."""
    name: str = ""
    """Candidate name; empty = the recipe's name."""

    def validate(self) -> None:
        for field in ("epochs", "unfreeze_last", "lora_r", "lora_alpha"):
            self._check_count(field)
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"TransferConfig.lr must be > 0, got {self.lr!r}.")
        self._check_margin()


def _spec_for(ctx: ForgeContext, recipe: str) -> Any:
    from greenforge.forge.pretrained import pretrained_spec

    if not ctx.pretrained:
        raise ConfigError(
            f"recipe {recipe!r} needs a pretrained starting point: add a [pretrained] table to "
            'the task file (kind = "safetensors" | "state_dict" | "hf" | "timm", path = ...). '
            "See docs/transfer.md."
        )
    spec = pretrained_spec(ctx.pretrained)
    base_dir = getattr(ctx, "base_dir", None) or Path.cwd()
    return spec.resolved(base_dir)


def _check_token_ids(ctx: ForgeContext, vocab_size: int | None) -> None:
    """A text model needs token ids; say so clearly when the task's data are something else."""
    import torch

    x0, _ = ctx.train_data[0]
    x = torch.as_tensor(x0)
    if x.dim() != 1 or not bool(torch.all(x == x.round())) or float(x.min()) < 0:
        raise DataError(
            f'[pretrained] kind = "hf" fine-tunes a text model on token ids, but the task\'s '
            f"samples have shape {list(x.shape)} and are not non-negative integers. Build the "
            "dataset with greenforge.forge.pretrained.text_splits(texts, labels, tokenizer) in "
            "a [data] entry point."
        )
    if vocab_size is not None and float(x.max()) >= vocab_size:
        raise DataError(
            f"the task's token ids reach {int(x.max())}, beyond the model's vocabulary "
            f"({vocab_size}); tokenize with the tokenizer in the [pretrained] directory."
        )


class TransferRecipe:
    """Fine-tune the ``[pretrained]`` checkpoint with one strategy."""

    name = "transfer"
    strategy: ClassVar[StrategyName | None] = None
    """``None``: the ``[pretrained] strategy``."""
    config_type = TransferConfig

    def __init__(self, config: TransferConfig) -> None:
        self.config: RecipeConfig = config  # the Recipe protocol's (mutable) attribute type
        self.options = config

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        from greenforge.forge.lora import LoraSpec, add_lora, merge_lora
        from greenforge.forge.pretrained import (
            LoadedPretrained,
            freeze_,
            load_pretrained,
            trainable_parameters,
            unfreeze_,
        )

        cfg = self.options
        spec = _spec_for(ctx, self.name)
        strategy: str = self.strategy or spec.strategy
        overrides: dict[str, Any] = {}
        if cfg.unfreeze_last is not None:
            overrides["unfreeze_last"] = cfg.unfreeze_last
        if cfg.lora_r is not None:
            overrides["lora_r"] = cfg.lora_r
        if cfg.lora_alpha is not None:
            overrides["lora_alpha"] = cfg.lora_alpha
        spec = dataclasses.replace(spec, strategy=strategy, **overrides)
        name = cfg.name or self.name

        def load() -> LoadedPretrained:
            with ctx.seeded():
                return load_pretrained(spec, num_classes=ctx.num_classes, build_model=build)

        def build() -> Any:
            return ctx.build_model()

        loaded, _ = ctx.measure(f"load:{name}", load)
        if spec.kind == "hf":
            config = getattr(getattr(loaded.model, "backbone", None), "config", None)
            _check_token_ids(ctx, getattr(config, "vocab_size", None))
        model = loaded.model
        head = loaded.head
        details: dict[str, Any] = {"load": loaded.report.to_dict()}
        if loaded.tokenizer is not None:
            details["tokenizer"] = spec.path  # serve the model with this directory's tokenizer
        freeze_report = None
        if strategy == "lora":
            lora = add_lora(
                model,
                LoraSpec(
                    r=spec.lora_r,
                    alpha=spec.lora_alpha,
                    dropout=spec.lora_dropout,
                    targets=spec.lora_targets,
                ),
                head=head,
            )
            train_model = lora.model
            trainable, total = lora.trainable_params, lora.total_params
            details["lora"] = lora.to_dict()
        else:
            freeze_report = freeze_(
                model,
                "head" if strategy == "head" else "partial" if strategy == "partial" else "full",
                head=head,
                unfreeze_last=spec.unfreeze_last,
            )
            train_model = model
            trainable, total = freeze_report.trainable_params, freeze_report.total_params
            details["freeze"] = freeze_report.to_dict()
        lr = cfg.lr if cfg.lr is not None else ctx.lr * DEFAULT_LR_FACTOR[strategy]
        stop = ctx.val_target(cfg.margin) if cfg.stop_at_target else None
        with ctx.seeded(1):
            out = ctx.train(
                train_model,
                name=name,
                epochs=cfg.epochs,
                lr=lr,
                stop_at_accuracy=stop,
                parameters=trainable_parameters(train_model),
            )
        if strategy == "lora":
            model = merge_lora(train_model)
        else:
            unfreeze_(model, freeze_report)
        model.eval()
        notes = [
            f"{strategy} fine-tuning from {spec.kind} checkpoint {Path(spec.path).name}: "
            f"{trainable:,} of {total:,} parameters trained ({100.0 * trainable / total:.2f} %)",
            "the checkpoint's own pretraining energy is not included (paid once, elsewhere)",
        ]
        if strategy == "lora":
            notes.append("LoRA adapters merged into the weights: inference cost of the full model")
        if out.stopped_early:
            notes.append(f"stopped after {out.epochs_run} epoch(s) at the validation target")
        return [
            Candidate(
                name=name,
                recipe=self.name,
                config={
                    **cfg.to_dict(),
                    "strategy": strategy,
                    "lr_used": lr,
                    "pretrained": spec.to_dict(),
                    **details,
                },
                model=model,
                train=out.measurement,
                epochs_run=out.epochs_run,
                val_accuracy=out.val_accuracy,
                notes=tuple(notes),
            )
        ]


class TransferHeadRecipe(TransferRecipe):
    name = "transfer-head"
    strategy = "head"


class TransferPartialRecipe(TransferRecipe):
    name = "transfer-partial"
    strategy = "partial"


class TransferFullRecipe(TransferRecipe):
    name = "transfer-full"
    strategy = "full"


class TransferLoraRecipe(TransferRecipe):
    name = "transfer-lora"
    strategy = "lora"


TRANSFER_RECIPES: dict[str, type[TransferRecipe]] = {
    r.name: r
    for r in (
        TransferRecipe,
        TransferHeadRecipe,
        TransferPartialRecipe,
        TransferFullRecipe,
        TransferLoraRecipe,
    )
}

for _name, _factory in TRANSFER_RECIPES.items():
    register_recipe(_name, _factory)
