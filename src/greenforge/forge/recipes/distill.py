"""``distill``: a smaller student learns from a teacher (the baseline, or any earlier candidate
such as a fine-tuned pretrained model) with the temperature-scaled KD loss, stopping at the
target."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from greenforge.forge.candidate import Candidate
from greenforge.forge.context import ForgeContext
from greenforge.forge.recipes.base import register_recipe
from greenforge.forge.recipes.baseline import stop_target
from greenforge.forge.recipes.config import RecipeConfig


def default_student(architecture: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """A student of the same depth, about 4x narrower than the task's architecture."""
    if architecture == "mlp":
        hidden = list(options.get("hidden", (256, 256)))
        return {"architecture": "mlp", "hidden": [max(16, int(h) // 4) for h in hidden]}
    if architecture == "cnn":
        channels = list(options.get("channels", (32, 64)))
        return {
            "architecture": "cnn",
            "channels": [max(4, int(c) // 4) for c in channels],
            "hidden": max(16, int(options.get("hidden", 128)) // 4),
        }
    if architecture == "transformer":
        d = int(options.get("d_model", 64))
        heads = int(options.get("heads", 4))
        return {
            "architecture": "transformer",
            "d_model": max(heads * 4, d // 2),
            "heads": heads,
            "layers": 1,
            "ff": max(16, int(options.get("ff", 128)) // 2),
        }
    return {"architecture": "mlp", "hidden": [64]}


@dataclasses.dataclass(frozen=True)
class DistillConfig(RecipeConfig):
    """Distil ``teacher`` into ``student`` (zoo options; default: ~8x narrower)."""

    VERSION: ClassVar[int] = 1
    teacher: str = "baseline"
    student: dict[str, Any] | None = None
    temperature: float = 4.0
    alpha: float = 0.7
    epochs: int | None = None
    lr: float | None = None
    early_stop: bool = True
    margin: float = 0.01
    precision: str = "fp32"
    name: str = "distill"

    def validate(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"DistillConfig.temperature {self.temperature!r} must be > 0.")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"DistillConfig.alpha {self.alpha!r} must be in [0, 1].")
        self._check_count()
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"DistillConfig.lr {self.lr!r} must be > 0.")
        if self.precision not in ("fp32", "bf16-autocast"):
            raise ValueError(
                f"DistillConfig.precision {self.precision!r}: use 'fp32' or 'bf16-autocast'."
            )
        self._check_margin()


class DistillRecipe:
    name = "distill"
    config_type = DistillConfig

    def __init__(self, config: DistillConfig) -> None:
        self.config = config

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        cfg = self.config
        teacher = ctx.require_candidate(cfg.teacher)
        spec = dict(
            cfg.student or default_student(ctx.task.architecture, ctx.task.architecture_options)
        )
        arch = str(spec.pop("architecture", ctx.task.architecture))
        student = ctx.build_model(arch, **spec)
        out = ctx.train(
            student,
            name=cfg.name,
            epochs=cfg.epochs,
            lr=cfg.lr if cfg.lr else ctx.lr * 3,
            teacher=teacher.model,
            temperature=cfg.temperature,
            alpha=cfg.alpha,
            precision="bf16-autocast" if cfg.precision == "bf16-autocast" else "fp32",
            stop_at_accuracy=stop_target(ctx, cfg.margin) if cfg.early_stop else None,
        )
        return [
            Candidate(
                name=cfg.name,
                recipe=self.name,
                config=cfg.to_dict(),
                model=student,
                train=out.measurement,
                parent=teacher.name,
                epochs_run=out.epochs_run,
                val_accuracy=out.val_accuracy,
                notes=(f"student {arch} {spec}, teacher {teacher.name}, T={cfg.temperature}",),
            )
        ]


register_recipe("distill", DistillRecipe)
