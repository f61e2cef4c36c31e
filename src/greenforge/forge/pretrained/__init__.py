"""Pretrained starting points for ``greenforge forge``: load checkpoints safely, decide what trains.

A task's ``[pretrained]`` table (:class:`PretrainedSpec`) names a checkpoint and a strategy::

    [pretrained]
    kind = "state_dict"        # "hf" | "safetensors" | "state_dict" | "timm"
    path = "weights/base.pt"   # file (or, for "hf", a model directory)
    strategy = "head"          # "head" | "partial" | "full" | "lora"
    unfreeze_last = 1          # partial: how many of the last blocks train
    lora_r = 8                 # lora: adapter rank (alpha, dropout, targets too)

Loading never executes code from a file: safetensors files load with
``safetensors.torch.load_file``, torch files with ``torch.load(..., weights_only=True)`` (a
pickle holding anything but tensors is refused with a :class:`~greenforge.errors.DataError`),
Hugging Face directories with ``local_files_only=True`` (never the network), timm checkpoints
only after the same safe check. A checkpoint that does not fit the model (missing or unexpected
keys, shape mismatches) raises a ``DataError`` naming the keys and what to do; only the *head*
(the output layer, re-initialised for the task's classes) may differ.

The package is split by role: :mod:`.spec` (the ``[pretrained]`` table), :mod:`.files` (safe
checkpoint files, fitting them to a model), :mod:`.heads` (head, blocks, freezing), :mod:`.text`
(Hugging Face text models) and :mod:`.timm` (timm backbones); :func:`load_pretrained` picks the
loader for a spec's ``kind``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from greenforge.errors import ConfigError, UnknownNameError
from greenforge.forge.pretrained.files import LoadReport, load_state_dict_file, load_weights_
from greenforge.forge.pretrained.heads import (
    FreezeReport,
    find_blocks,
    find_head,
    freeze_,
    trainable_parameters,
    unfreeze_,
)
from greenforge.forge.pretrained.spec import (
    KINDS,
    STRATEGIES,
    PretrainedKind,
    PretrainedSpec,
    Strategy,
    pretrained_spec,
)
from greenforge.forge.pretrained.text import (
    HF_TOKENIZER_FILES,
    HF_WEIGHT_FILES,
    TextClassifier,
    TextSplits,
    check_hf_dir,
    load_hf_encoder,
    load_hf_sequence_classifier,
    load_hf_text_classifier,
    load_tokenizer,
    minilm_dir,
    scratch_text_classifier,
    text_splits,
    tokenize_texts,
)
from greenforge.forge.pretrained.timm import load_timm, timm_head

__all__ = [
    "HF_TOKENIZER_FILES",
    "HF_WEIGHT_FILES",
    "KINDS",
    "LOADERS",
    "STRATEGIES",
    "FreezeReport",
    "LoadReport",
    "LoadedPretrained",
    "PretrainedKind",
    "PretrainedSpec",
    "Strategy",
    "TextClassifier",
    "TextSplits",
    "check_hf_dir",
    "find_blocks",
    "find_head",
    "freeze_",
    "load_hf_encoder",
    "load_hf_sequence_classifier",
    "load_hf_text_classifier",
    "load_pretrained",
    "load_state_dict_file",
    "load_timm",
    "load_tokenizer",
    "load_weights_",
    "minilm_dir",
    "pretrained_spec",
    "scratch_text_classifier",
    "text_splits",
    "tokenize_texts",
    "trainable_parameters",
    "unfreeze_",
]


@dataclasses.dataclass
class LoadedPretrained:
    """A pretrained model ready to fine-tune, with its tokenizer (text) and load report."""

    model: nn.Module
    report: LoadReport
    tokenizer: Any | None = None
    head: str = ""


ModelBuilder = Callable[[], nn.Module]
Loader = Callable[[PretrainedSpec, int, "ModelBuilder | None"], LoadedPretrained]


def _load_file(
    spec: PretrainedSpec, num_classes: int, build: ModelBuilder | None
) -> LoadedPretrained:
    if build is None:
        raise ConfigError(
            f'[pretrained] kind = "{spec.kind}" loads weights into the task\'s architecture; '
            "the task has no model builder. Set the task's architecture."
        )
    state = load_state_dict_file(spec.path)
    model = build()
    head = spec.head or find_head(model)
    report = load_weights_(model, state, head=head, source=f"{spec.kind}:{spec.path}")
    return LoadedPretrained(model, report, None, head)


def _load_hf(
    spec: PretrainedSpec, num_classes: int, build: ModelBuilder | None
) -> LoadedPretrained:
    model, tokenizer = load_hf_text_classifier(spec.path, num_classes, pooling=spec.pooling)
    loaded = tuple(sorted(k for k in model.state_dict() if k.startswith("backbone.")))
    report = LoadReport(f"hf:{spec.path}", loaded, ("head.bias", "head.weight"))
    return LoadedPretrained(model, report, tokenizer, spec.head or "head")


def _load_timm(
    spec: PretrainedSpec, num_classes: int, build: ModelBuilder | None
) -> LoadedPretrained:
    model, report = load_timm(spec.timm_model, spec.path, num_classes, head=spec.head or None)
    return LoadedPretrained(model, report, None, spec.head or timm_head(model))


LOADERS: dict[str, Loader] = {
    "safetensors": _load_file,
    "state_dict": _load_file,
    "hf": _load_hf,
    "timm": _load_timm,
}


def load_pretrained(
    spec: PretrainedSpec | Mapping[str, Any],
    *,
    num_classes: int,
    build_model: ModelBuilder | None = None,
) -> LoadedPretrained:
    """Load the starting point a ``[pretrained]`` spec names (registry keyed by ``kind``)."""
    s = pretrained_spec(spec)
    loader = LOADERS.get(s.kind)
    if loader is None:  # pragma: no cover - the spec's Literal already rejects it
        raise UnknownNameError("pretrained kind", s.kind, LOADERS)
    return loader(s, num_classes, build_model)
