"""The models a forge search produces: :class:`Candidate`, and :class:`TrainOutcome`.

A candidate records how it was made (recipe, config, parent) and its own measured training cost;
the search evaluates it (accuracy, FLOPs, inference energy) and charges the lineage's cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from greenforge.forge.measure import Measurement


@dataclasses.dataclass
class Candidate:
    """One model the search produced, with how it was made and what making it cost.

    ``model`` is a ``torch.nn.Module`` (called on a float32 batch, returns logits) or any callable
    with the same behaviour (e.g. :class:`greenforge.forge.onnx.OnnxModel` for ONNX Runtime int8).
    ``train`` is the *own* measured training cost (``None`` when nothing was trained, e.g. a
    post-training quantization); the lineage (``parent`` chain) adds the ancestors' costs.
    """

    name: str
    recipe: str
    config: Mapping[str, Any]
    model: Any
    train: Measurement | None = None
    parent: str | None = None
    precision: str = "fp32"
    """Numeric format at inference: ``fp32``, ``bf16``, ``int8-dynamic``, ``int8-static`` ..."""
    runtime: str = "torch"
    """``torch`` or ``onnxruntime``."""
    notes: tuple[str, ...] = ()
    """Honest remarks shown in the report (e.g. "unstructured sparsity: dense compute unchanged")."""
    epochs_run: int | None = None
    val_accuracy: float | None = None
    flops_weight: float = 1.0
    """Relative cost of one MAC at this precision (fp32 = 1.0, bf16 = 0.5, int8 = 0.25)."""

    @property
    def train_co2e_g(self) -> float:
        return 0.0 if self.train is None else self.train.co2e_g


@dataclasses.dataclass(frozen=True)
class TrainOutcome:
    """What :meth:`ForgeContext.train` did and what it cost."""

    measurement: Measurement
    epochs_run: int
    val_accuracy: float
    reached_target: bool
    stopped_early: bool
