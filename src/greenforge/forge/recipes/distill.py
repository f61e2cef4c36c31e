"""``distill``: a smaller student learns from a teacher (the baseline, or any earlier candidate
such as a fine-tuned pretrained model) with the temperature-scaled KD loss, stopping at the
target.

With ``students`` the recipe climbs a *ladder*: it trains the students from the smallest up
(``ladder = "up"``, the default: stops at the first one whose validation accuracy reaches the
target plus ``margin``) or from the largest down (``"down"``: goes on while they qualify and keeps
the smallest that does). Only the selected student becomes a candidate; the others are listed in
its notes. Selection uses the validation split only; the test split stays for the final check.

By default the student sees the teacher's soft labels on an augmented copy of the training
split (``augment = "auto"``: pixel shifts for images, small noise for features; see
:mod:`greenforge.forge.augment`), with the teacher's logits computed once and cached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from greenforge.errors import BudgetExceededError
from greenforge.forge.augment import Augment
from greenforge.forge.candidate import Candidate, TrainOutcome
from greenforge.forge.context import ForgeContext
from greenforge.forge.recipes.base import register_recipe
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


def student_spec(owner: str, index: int, entry: Any) -> dict[str, Any]:
    """One ``students`` entry as zoo options: a list of hidden sizes is an ``mlp``; a table names
    its ``architecture`` (default ``mlp``) and options. ValueError names the bad entry."""
    if isinstance(entry, (list, tuple)):
        if not entry or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in entry):
            raise ValueError(
                f"{owner}.students[{index}] {list(entry)!r}: a student given as a list is the "
                "hidden sizes of an mlp, positive integers (e.g. [64])."
            )
        return {"architecture": "mlp", "hidden": [int(h) for h in entry]}
    if isinstance(entry, Mapping):
        out = dict(entry)
        arch = out.get("architecture", "mlp")
        if not isinstance(arch, str) or not arch:
            raise ValueError(f"{owner}.students[{index}].architecture {arch!r} must be a name.")
        out["architecture"] = arch
        return out
    raise ValueError(
        f"{owner}.students[{index}] {entry!r}: give hidden sizes ([64]) or a table "
        "({ architecture = 'cnn', channels = [8, 16] })."
    )


@dataclasses.dataclass(frozen=True)
class DistillConfig(RecipeConfig):
    """Distil ``teacher`` into ``student`` (zoo options; default: ~4x narrower), or into the
    first qualifying student of the ``students`` ladder."""

    VERSION: ClassVar[int] = 2
    teacher: str = "baseline"
    student: dict[str, Any] | None = None
    students: tuple[Any, ...] = ()
    """Ladder of students: hidden sizes of an mlp (``[64]``) or zoo tables, any order."""
    ladder: Literal["up", "down"] = "up"
    augment: Augment = "auto"
    temperature: float = 4.0
    alpha: float = 0.7
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
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
        self._check_count("batch_size")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"DistillConfig.lr {self.lr!r} must be > 0.")
        if self.precision not in ("fp32", "bf16-autocast"):
            raise ValueError(
                f"DistillConfig.precision {self.precision!r}: use 'fp32' or 'bf16-autocast'."
            )
        self._check_margin()
        if self.students and self.student is not None:
            raise ValueError("DistillConfig: set `student` or `students` (a ladder), not both.")
        for i, entry in enumerate(self.students):
            student_spec("DistillConfig", i, entry)
        # lists inside the tuple become tuples: the config stays hashable and round-trips
        object.__setattr__(
            self,
            "students",
            tuple(tuple(e) if isinstance(e, (list, tuple)) else dict(e) for e in self.students),
        )


@dataclasses.dataclass
class _Rung:
    spec: dict[str, Any]
    model: Any
    params: int
    out: TrainOutcome | None = None


def _describe(spec: Mapping[str, Any]) -> str:
    opts = {k: v for k, v in spec.items() if k != "architecture"}
    return f"{spec.get('architecture', 'mlp')} {opts}"


class DistillRecipe:
    name = "distill"
    config_type = DistillConfig

    def __init__(self, config: DistillConfig) -> None:
        self.config = config

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        from greenforge.forge.models import count_parameters

        cfg = self.config
        teacher = ctx.require_candidate(cfg.teacher)
        specs = [student_spec("DistillConfig", i, e) for i, e in enumerate(cfg.students)] or [
            dict(
                cfg.student or default_student(ctx.task.architecture, ctx.task.architecture_options)
            )
        ]
        rungs = []
        for spec in specs:
            opts = dict(spec)
            arch = str(opts.pop("architecture", ctx.task.architecture))
            model = ctx.build_model(arch, **opts)
            rungs.append(_Rung(spec, model, count_parameters(model)))
        rungs.sort(key=lambda r: r.params, reverse=cfg.ladder == "down")
        data = self._kd_data(ctx, teacher)
        threshold = ctx.val_target(cfg.margin)
        chosen: _Rung | None = None
        notes: list[str] = []
        for rung in rungs:
            try:
                rung.out = ctx.train(
                    rung.model,
                    name=cfg.name if len(rungs) == 1 else f"{cfg.name}:{rung.params}p",
                    epochs=cfg.epochs,
                    lr=cfg.lr if cfg.lr else ctx.lr * 3,
                    teacher=teacher.model,
                    temperature=cfg.temperature,
                    alpha=cfg.alpha,
                    precision="bf16-autocast" if cfg.precision == "bf16-autocast" else "fp32",
                    stop_at_accuracy=threshold if cfg.early_stop else None,
                    data=data,
                    batch_size=cfg.batch_size,
                )
            except BudgetExceededError as exc:
                if not any(r.out for r in rungs):
                    raise
                notes.append(str(exc))
                break
            ok = threshold is None or rung.out.val_accuracy >= threshold
            notes.append(
                f"student {_describe(rung.spec)} ({rung.params:,} parameters): validation "
                f"{rung.out.val_accuracy:.2%} after {rung.out.epochs_run} epoch(s)"
                + ("" if threshold is None else f", {'meets' if ok else 'below'} {threshold:.2%}")
            )
            if ok:
                chosen = rung
                if cfg.ladder == "up":
                    break
            elif cfg.ladder == "down":
                break
        trained = [r for r in rungs if r.out is not None]
        if chosen is None:
            chosen = max(trained, key=lambda r: (r.out.val_accuracy if r.out else 0.0, r.params))
            if threshold is not None:
                notes.append("no student reached the validation target; kept the most accurate")
        assert chosen.out is not None
        from greenforge.forge.measure import total

        augment = (
            "" if data is None else f", KD on {data.tensors[0].shape[0]:,} inputs ({cfg.augment})"
        )
        notes.insert(
            0,
            f"student {_describe(chosen.spec)}, teacher {teacher.name}, T={cfg.temperature}{augment}",
        )
        return [
            Candidate(
                name=cfg.name,
                recipe=self.name,
                config=cfg.to_dict(),
                model=chosen.model,
                # the whole ladder is what it cost to find this student
                train=total([r.out.measurement for r in trained if r.out is not None]),
                parent=teacher.name,
                epochs_run=chosen.out.epochs_run,
                val_accuracy=chosen.out.val_accuracy,
                notes=tuple(notes),
            )
        ]

    def _kd_data(self, ctx: ForgeContext, teacher: Candidate) -> Any:
        """Cached ``(x, y, teacher_logits)`` (augmented), or ``None`` for non-tensor inputs
        when no augmentation was asked for (the teacher then runs per batch)."""
        from greenforge.errors import ConfigError
        from greenforge.forge.augment import kd_dataset

        try:
            return kd_dataset(ctx, teacher, self.config.augment)
        except ConfigError:
            if self.config.augment in ("none", "auto"):
                return None
            raise


register_recipe("distill", DistillRecipe)
