"""Parameter-efficient fine-tuning with LoRA (via peft) for ``greenforge forge``.

LoRA freezes the pretrained weights and trains a low-rank update ``B @ A`` (rank ``r``, scaled
by ``alpha / r``) beside chosen ``Linear`` layers, so fine-tuning updates a few percent of the
parameters. For deployment :func:`merge_lora` folds the updates back into the weights
(``merge_and_unload``): the served model has exactly the original architecture and cost.

Typical use::

    lora = add_lora(model, LoraSpec(r=8), head="head")   # wraps with peft, head stays trainable
    ctx.train(lora.model, name="transfer-lora")          # trains adapters + head only
    deployed = merge_lora(lora.model)                    # plain nn.Module again

Targets: by default the attention query/value projections (``query``/``value`` in BERT,
``q_proj``/``v_proj`` in LLaMA-style models...); a model without attention gets every
``Linear`` outside the head. ``LoraSpec.targets`` overrides with module-name suffixes.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from typing import Any, ClassVar

from torch import nn

from greenforge.errors import ConfigError, MissingExtraError
from greenforge.forge.recipes.config import RecipeConfig

ATTENTION_PROJECTIONS: tuple[str, ...] = (
    "query",
    "value",
    "q_proj",
    "v_proj",
    "q_lin",
    "v_lin",
    "qkv",
    "c_attn",
    "Wqkv",
)
"""Last name components of attention projections LoRA adapts by default."""


@dataclasses.dataclass(frozen=True)
class LoraSpec(RecipeConfig):
    """LoRA hyper-parameters (peft ``LoraConfig``): rank, scaling, dropout, target layers."""

    VERSION: ClassVar[int] = 1

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    targets: tuple[str, ...] = ()
    """Module-name suffixes to adapt; empty = attention q/v projections, else every Linear."""

    def validate(self) -> None:
        if self.r < 1:
            raise ValueError(f"LoraSpec.r must be >= 1, got {self.r}.")
        if self.alpha < 1:
            raise ValueError(f"LoraSpec.alpha must be >= 1, got {self.alpha}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoraSpec.dropout must be in [0, 1), got {self.dropout}.")


@dataclasses.dataclass
class LoraModel:
    """A model wrapped with LoRA adapters, and what trains."""

    model: nn.Module
    """The peft model (call it like the original)."""
    targets: tuple[str, ...]
    trainable_params: int
    total_params: int
    spec: LoraSpec

    @property
    def trainable_fraction(self) -> float:
        return self.trainable_params / self.total_params if self.total_params else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "lora": self.spec.to_dict(),
            "targets": len(self.targets),
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
        }


def _linear_names(model: nn.Module, head: str) -> list[str]:
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
        and name
        and name != head
        and not name.startswith(head + ".")
        and not isinstance(module, nn.modules.linear.NonDynamicallyQuantizableLinear)
    ]


def lora_targets(model: nn.Module, *, head: str, targets: tuple[str, ...] = ()) -> list[str]:
    """Full names of the ``Linear`` layers LoRA adapts (see the module docstring for the rule)."""
    linears = _linear_names(model, head)
    if targets:
        chosen = [n for n in linears if any(n == t or n.endswith("." + t) for t in targets)]
        if not chosen:
            shown = ", ".join(linears[:12]) + (" ..." if len(linears) > 12 else "")
            raise ConfigError(
                f"lora targets {list(targets)} match no Linear layer of {type(model).__name__}. "
                f"Linear layers: {shown or '(none)'}."
            )
        return chosen
    attention = [n for n in linears if n.rsplit(".", 1)[-1] in ATTENTION_PROJECTIONS]
    chosen = attention or linears
    if not chosen:
        raise ConfigError(
            f"{type(model).__name__} has no Linear layer outside the head {head!r} for LoRA; "
            'use strategy = "head", "partial" or "full".'
        )
    return chosen


def _peft() -> Any:
    try:
        return importlib.import_module("peft")
    except ImportError as exc:
        raise MissingExtraError("peft", "torch", "LoRA fine-tuning") from exc


def add_lora(model: nn.Module, spec: LoraSpec | None = None, *, head: str) -> LoraModel:
    """Wrap ``model`` with LoRA adapters (``peft.get_peft_model``); the head stays trainable.

    Everything else is frozen by peft; the head (``head`` module name, new for the task's
    classes) trains in full beside the adapters.
    """
    s = spec or LoraSpec()
    peft = _peft()
    names = lora_targets(model, head=head, targets=s.targets)
    pattern = "|".join(re.escape(n) for n in names)
    config = peft.LoraConfig(
        r=s.r,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=f"(?:{pattern})",
        bias="none",
    )
    wrapped: nn.Module = peft.get_peft_model(model, config)
    head_module = model.get_submodule(head)
    for p in head_module.parameters():
        p.requires_grad_(True)
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    total = sum(p.numel() for p in wrapped.parameters())
    return LoraModel(wrapped, tuple(names), trainable, total, s)


def merge_lora(model: nn.Module | LoraModel) -> nn.Module:
    """Fold the LoRA updates into the weights and drop peft (``merge_and_unload``).

    The result is the original module class with updated weights, all parameters trainable.
    """
    inner = model.model if isinstance(model, LoraModel) else model
    merge = getattr(inner, "merge_and_unload", None)
    if not callable(merge):
        return inner
    merged: nn.Module = merge()
    for p in merged.parameters():  # a plain model again: later recipes may fine-tune it
        p.requires_grad_(True)
    return merged
