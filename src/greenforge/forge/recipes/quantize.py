"""``quantize``: int8 (dynamic, or static with calibration) through ONNX Runtime, or bf16, of a
trained candidate. The conversion (export, calibration, quantization) is measured as the
candidate's own cost; nothing is retrained."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from greenforge.errors import ConfigError
from greenforge.forge.candidate import Candidate
from greenforge.forge.context import ForgeContext
from greenforge.forge.recipes.base import register_recipe
from greenforge.forge.recipes.config import RecipeConfig


def _is_trainable_torch(c: Candidate) -> bool:
    from torch import nn

    from greenforge.forge.compress import Bf16Model

    return (
        isinstance(c.model, nn.Module)
        and not isinstance(c.model, Bf16Model)
        and c.precision == "fp32"
    )


def resolve_source(ctx: ForgeContext, source: str) -> Candidate:
    """A named candidate, or ``best``: among fp32 torch candidates whose validation accuracy
    reaches the validation target (all of them while it is unknown), the one with the fewest FLOPs."""
    if source != "best":
        return ctx.require_candidate(source)
    from greenforge.forge.evaluate import count_flops

    pool = [c for c in ctx.candidates.values() if _is_trainable_torch(c)]
    if not pool:
        raise ConfigError(
            "source 'best': no trained fp32 candidate yet; list a training recipe "
            "(e.g. baseline, distill) before it."
        )
    target = ctx.val_target()
    ok = [c for c in pool if target is None or (c.val_accuracy or 0.0) >= target]
    if not ok:
        return max(pool, key=lambda c: c.val_accuracy or 0.0)
    x = next(iter(ctx.loader("val", batch_size=1)))[0]
    return min(ok, key=lambda c: (count_flops(c.model, x), -(c.val_accuracy or 0.0)))


@dataclasses.dataclass(frozen=True)
class QuantizeRecipeConfig(RecipeConfig):
    """Quantize ``source`` (a candidate name or ``best``) with ``mode``."""

    VERSION: ClassVar[int] = 1
    source: str = "best"
    mode: Literal["int8-dynamic", "int8-static"] = "int8-dynamic"
    backend: Literal["onnxruntime", "torchao"] = "onnxruntime"
    calibration_batches: int = 8
    per_channel: bool = True
    reduce_range: bool = True
    """7-bit int8 weights: safe on x86 CPUs without VNNI (their u8 x s8 kernels saturate with
    full-range weights); ``false`` only for graphs served on VNNI or ARM cores."""
    name: str | None = None

    def validate(self) -> None:
        if self.calibration_batches < 1:
            raise ValueError(
                f"QuantizeRecipeConfig.calibration_batches {self.calibration_batches!r} "
                "must be >= 1."
            )
        if self.mode == "int8-static" and self.backend != "onnxruntime":
            raise ValueError("QuantizeRecipeConfig: int8-static runs on backend 'onnxruntime'.")


class QuantizeRecipe:
    name = "quantize"
    config_type = QuantizeRecipeConfig

    def __init__(self, config: QuantizeRecipeConfig) -> None:
        self.config = config

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        from greenforge.forge.compress import (
            Int8DynamicConfig,
            Int8StaticConfig,
            quantize,
            tooling,
        )

        cfg = self.config
        parent = resolve_source(ctx, cfg.source)
        if not _is_trainable_torch(parent):
            raise ConfigError(
                f"quantize: source {parent.name!r} is already {parent.precision}; quantize an "
                "fp32 torch candidate."
            )
        qcfg: Any
        if cfg.mode == "int8-dynamic":
            qcfg = Int8DynamicConfig(
                backend=cfg.backend, per_channel=cfg.per_channel, reduce_range=cfg.reduce_range
            )
        else:
            qcfg = Int8StaticConfig(
                calibration_batches=cfg.calibration_batches,
                per_channel=cfg.per_channel,
                reduce_range=cfg.reduce_range,
            )
        calib = [x for x, _ in ctx.loader("train", batch_size=64)][: cfg.calibration_batches]
        name = cfg.name or f"{parent.name}+{cfg.mode}"
        if name in ctx.candidates:
            return []  # 'best' resolved to a source already quantized this way
        ctx.check_budget(f"convert:{name}")
        workdir = ctx.scratch(name)
        ctx.load_tooling(*tooling(qcfg))
        q, m = ctx.measure(
            f"convert:{name}",
            lambda: quantize(
                parent.model, qcfg, example_inputs=calib[0], workdir=workdir, calibration=calib
            ),
        )
        notes: tuple[str, ...] = (f"{cfg.mode} via {cfg.backend}",)
        return [
            Candidate(
                name=name,
                recipe=self.name,
                config=cfg.to_dict(),
                model=q,
                train=m,
                parent=parent.name,
                precision=cfg.mode,
                runtime="onnxruntime" if cfg.backend == "onnxruntime" else "torch",
                flops_weight=0.25,
                notes=notes,
                val_accuracy=ctx.accuracy(q, "val"),
            )
        ]


register_recipe("quantize", QuantizeRecipe)
