"""The training loop behind :meth:`ForgeContext.train`: plain, distilled, mixed precision,
early stopping at the target. Pure torch; measurement is done by the caller."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from greenforge.errors import DataError


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    epochs: int
    lr: float
    temperature: float = 4.0
    alpha: float = 0.7
    precision: str = "fp32"
    stop_at_accuracy: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs!r}.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be > 0, got {self.lr!r}.")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}.")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}.")


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """Hinton et al.'s temperature-scaled distillation loss.

    ``alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, y)``
    (the ``T^2`` keeps the soft-target gradients on the same scale as the hard-target ones).
    """
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=-1),
        F.log_softmax(teacher_logits / t, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    hard = F.cross_entropy(student_logits, targets)
    return alpha * (t * t) * soft + (1.0 - alpha) * hard


def _forward(model: Any, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if hasattr(out, "logits"):
        out = out.logits
    if not isinstance(out, torch.Tensor):
        raise DataError(f"the model returned {type(out).__name__}, expected a logits tensor.")
    return out


@torch.no_grad()
def accuracy(model: Any, loader: Iterable[Any]) -> float:
    """Top-1 accuracy over a loader of ``(x, y)`` batches (eval mode for modules)."""
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    correct = 0
    count = 0
    try:
        for x, y in loader:
            logits = _forward(model, x)
            correct += int((logits.argmax(dim=-1) == y).sum())
            count += int(y.numel())
    finally:
        if was_training and isinstance(model, nn.Module):
            model.train()
    return correct / count if count else float("nan")


def fit(
    model: nn.Module,
    train_loader: Iterable[Any],
    val_loader: Iterable[Any],
    cfg: TrainSettings,
    *,
    teacher: Any | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    parameters: Sequence[nn.Parameter] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, float, bool]:
    """Train in place with AdamW. Returns ``(epochs run, last val accuracy, stopped early)``.

    ``train_loader`` yields ``(x, y)`` or ``(x, y, teacher_logits)``: with cached teacher logits
    (see :func:`greenforge.forge.augment.kd_dataset`) the KD loss uses them and the teacher is not
    run again.
    """
    params = (
        list(parameters)
        if parameters is not None
        else [p for p in model.parameters() if p.requires_grad]
    )
    if not params:
        raise ValueError("nothing to train: no parameter requires a gradient.")
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if teacher is not None and isinstance(teacher, nn.Module):
        teacher.eval()
    autocast = cfg.precision == "bf16-autocast"
    val_acc = float("nan")
    epochs_run = 0
    stopped = False
    for epoch in range(cfg.epochs):
        model.train()
        for batch in train_loader:
            x, y = batch[0], batch[1]
            cached = batch[2] if len(batch) > 2 else None
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = _forward(model, x)
                if teacher is not None and cached is None:
                    with torch.no_grad():
                        cached = _forward(teacher, x)
            logits = logits.float()
            if cached is not None:
                loss = kd_loss(logits, cached.float(), y, cfg.temperature, cfg.alpha)
            elif loss_fn is not None:
                loss = loss_fn(logits, y)
            else:
                loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise DataError(
                    f"training loss became {float(loss)} at epoch {epoch + 1}: check the data for "
                    "extreme values or lower the learning rate (lr)."
                )
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        sched.step()
        epochs_run = epoch + 1
        if progress is not None:
            progress(epochs_run, cfg.epochs)
        if cfg.stop_at_accuracy is not None or epochs_run == cfg.epochs:
            val_acc = accuracy(model, val_loader)
            if cfg.stop_at_accuracy is not None and val_acc >= cfg.stop_at_accuracy:
                stopped = epochs_run < cfg.epochs
                break
    model.eval()
    return epochs_run, val_acc, stopped
