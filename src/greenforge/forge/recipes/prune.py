"""``prune``: structured pruning (Torch-Pruning; neurons/channels removed, parameters and FLOPs
drop) followed by fine-tuning, optionally with the parent as a distillation teacher. Unstructured
magnitude pruning is available and labelled: it does not reduce dense compute.

With ``amounts`` (e.g. ``[0.3, 0.5, 0.7, 0.85]``) pruning is a *schedule*: the source is pruned
step by step to each cumulative amount, fine-tuned (stopping at the validation target plus
``margin``), and the schedule stops at the first amount whose validation accuracy falls short;
the largest amount that still qualified becomes the one candidate. Selection uses the
validation split only."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar, Literal

from greenforge.errors import BudgetExceededError, ConfigError, GreenForgeError
from greenforge.forge.augment import Augment
from greenforge.forge.candidate import Candidate, TrainOutcome
from greenforge.forge.context import ForgeContext
from greenforge.forge.recipes.base import register_recipe
from greenforge.forge.recipes.baseline import stop_target
from greenforge.forge.recipes.config import RecipeConfig


@dataclasses.dataclass(frozen=True)
class PruneRecipeConfig(RecipeConfig):
    """Prune ``source`` (a candidate name or ``best``) by ``amount`` (or by the largest of the
    ``amounts`` schedule that keeps the validation target) and fine-tune."""

    VERSION: ClassVar[int] = 2
    source: str = "best"
    amount: float = 0.5
    amounts: tuple[float, ...] = ()
    """A schedule of cumulative amounts, tried in increasing order (structured only)."""
    kind: Literal["structured", "unstructured"] = "structured"
    finetune_epochs: int | None = None
    distill_from_parent: bool = True
    teacher: str | None = None
    """KD teacher while fine-tuning (a candidate name); default the parent."""
    augment: Augment = "none"
    """Fine-tune on augmented inputs with cached teacher logits (see ``distill``)."""
    early_stop: bool = False
    margin: float = 0.01
    name: str | None = None

    def validate(self) -> None:
        for i, value in enumerate((self.amount, *self.amounts)):
            if not 0.0 < value < 1.0:
                field = "amount" if i == 0 else f"amounts[{i - 1}]"
                raise ValueError(f"PruneRecipeConfig.{field} {value!r} must be in (0, 1).")
        if list(self.amounts) != sorted(set(self.amounts)):
            raise ValueError(
                f"PruneRecipeConfig.amounts {list(self.amounts)!r} must increase "
                "(e.g. [0.3, 0.5, 0.7, 0.85])."
            )
        if self.amounts and self.kind != "structured":
            raise ValueError("PruneRecipeConfig.amounts: a schedule needs kind = 'structured'.")
        self._check_count("finetune_epochs")
        self._check_margin()


class PruneRecipe:
    name = "prune"
    config_type = PruneRecipeConfig

    def __init__(self, config: PruneRecipeConfig) -> None:
        self.config = config

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        from torch import nn

        from greenforge.forge.recipes.quantize import resolve_source

        cfg = self.config
        parent = resolve_source(ctx, cfg.source)
        if not isinstance(parent.model, nn.Module) or parent.precision != "fp32":
            raise ConfigError(
                f"prune: source {parent.name!r} is a {parent.precision} {parent.runtime} model; "
                "prune an fp32 torch candidate (prune before quantizing)."
            )
        if cfg.amounts:
            return self._schedule(ctx, parent)
        name = cfg.name or f"{parent.name}+{_label(cfg.kind, cfg.amount)}"
        if name in ctx.candidates:
            return []
        model, step = self._step(
            ctx, parent, parent.model, cfg.amount, name, early_stop=cfg.early_stop
        )
        return [self._candidate(parent, model, [step], step[1], cfg.amount, name, ())]

    def _teacher(self, ctx: ForgeContext, parent: Candidate) -> tuple[Any, Any]:
        """The fine-tuning teacher model (or ``None``) and its cached KD data (or ``None``)."""
        from greenforge.forge.augment import kd_dataset

        cfg = self.config
        if cfg.teacher is None and not cfg.distill_from_parent:
            return None, None
        teacher = parent if cfg.teacher is None else ctx.require_candidate(cfg.teacher)
        if cfg.augment == "none":
            return teacher.model, None
        return teacher.model, kd_dataset(ctx, teacher, cfg.augment)

    def _step(
        self,
        ctx: ForgeContext,
        parent: Candidate,
        start: Any,
        fraction: float,
        name: str,
        *,
        early_stop: bool,
    ) -> tuple[Any, tuple[Any, ...]]:
        """Prune a copy of ``start`` by ``fraction`` of its channels and fine-tune it; returns
        the model and ``(prune measurement, train outcome)``."""
        from torch import nn

        from greenforge.forge.compress import ChannelPruneConfig, UnstructuredPruneConfig, prune_

        cfg = self.config
        ctx.check_budget(f"prune:{name}")
        model = copy.deepcopy(start)
        x = next(iter(ctx.loader("train", batch_size=8)))[0]
        pcfg = (
            ChannelPruneConfig(amount=fraction)
            if cfg.kind == "structured"
            else UnstructuredPruneConfig(amount=fraction)
        )
        _, prune_m = ctx.measure(f"prune:{name}", lambda: prune_(model, pcfg, x))
        if cfg.kind == "unstructured":
            masks = [
                (m.weight, (m.weight != 0))
                for m in model.modules()
                if isinstance(m, (nn.Linear, nn.Conv2d))
            ]
            for w, mask in masks:
                w.register_hook(lambda g, mask=mask: g * mask)  # type: ignore[no-untyped-call]
        teacher, data = self._teacher(ctx, parent)
        out = ctx.train(
            model,
            name=name,
            epochs=cfg.finetune_epochs or max(1, ctx.epochs // 2),
            teacher=teacher,
            stop_at_accuracy=stop_target(ctx, cfg.margin) if early_stop else None,
            data=data,
        )
        return model, (prune_m, out)

    def _schedule(self, ctx: ForgeContext, parent: Candidate) -> list[Candidate]:
        cfg = self.config
        threshold = ctx.val_target(cfg.margin)
        current: Any = parent.model
        kept: tuple[float, Any, TrainOutcome] | None = None
        done = 0.0
        steps: list[tuple[Any, ...]] = []
        notes: list[str] = []
        for amount in cfg.amounts:
            # cumulative amount of the source's channels -> fraction of what is left now
            fraction = 1.0 - (1.0 - amount) / (1.0 - done)
            try:
                model, step = self._step(
                    ctx,
                    parent,
                    current,
                    fraction,
                    f"{parent.name}+{_label(cfg.kind, amount)}",
                    early_stop=cfg.early_stop,
                )
            except BudgetExceededError as exc:
                if kept is None:
                    raise
                notes.append(str(exc))
                break
            steps.append(step)
            val = step[1].val_accuracy
            ok = threshold is None or val >= threshold
            notes.append(
                f"{round(amount * 100)} %: validation {val:.2%}"
                + ("" if threshold is None else f", {'meets' if ok else 'below'} {threshold:.2%}")
            )
            if not ok:
                break
            kept, current, done = (amount, model, step[1]), model, amount
        if kept is None:
            raise GreenForgeError(
                f"prune: no amount of {[round(a * 100) for a in cfg.amounts]} % kept "
                f"{parent.name!r} at the validation target; nothing added ({'; '.join(notes)})."
            )
        amount, model, last = kept
        name = cfg.name or f"{parent.name}+{_label(cfg.kind, amount)}"
        return [self._candidate(parent, model, steps, last, amount, name, tuple(notes))]

    def _candidate(
        self,
        parent: Candidate,
        model: Any,
        steps: list[tuple[Any, ...]],
        last: TrainOutcome,
        amount: float,
        name: str,
        extra: tuple[str, ...],
    ) -> Candidate:
        from greenforge.forge.measure import total

        cfg = self.config
        if cfg.kind == "structured":
            notes: tuple[str, ...] = (
                f"{round(amount * 100)} % of channels/neurons removed (Torch-Pruning), "
                f"fine-tuned {last.epochs_run} epoch(s)",
            )
        else:
            notes = (
                f"{round(amount * 100)} % of weights zeroed (unstructured): dense compute "
                "and latency are unchanged; it pays only with sparse kernels or compressed "
                "storage",
            )
        return Candidate(
            name=name,
            recipe=self.name,
            config=cfg.to_dict(),
            model=model,
            # every step tried (also one that fell short) is what finding this model cost
            train=total([m for s in steps for m in (s[0], s[1].measurement)]),
            parent=parent.name,
            epochs_run=last.epochs_run,
            val_accuracy=last.val_accuracy,
            notes=notes + extra,
        )


def _label(kind: str, amount: float) -> str:
    return f"{'prune' if kind == 'structured' else 'sparse'}{round(amount * 100)}"


register_recipe("prune", PruneRecipe)
