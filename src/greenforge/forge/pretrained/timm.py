"""timm vision backbones from local checkpoints, read safely before timm touches them."""

from __future__ import annotations

import importlib
from pathlib import Path

from torch import nn

from greenforge.errors import ConfigError, MissingExtraError
from greenforge.forge.pretrained.files import LoadReport, load_state_dict_file, load_weights_
from greenforge.forge.pretrained.heads import find_head, is_under


def load_timm(
    model_name: str, checkpoint: str | Path, num_classes: int, *, head: str | None = None
) -> tuple[nn.Module, LoadReport]:
    """A timm model from a local checkpoint, with a fresh ``num_classes`` classifier.

    The file is first read safely (``weights_only=True``/safetensors) and checked against the
    architecture; then ``timm.create_model(name, pretrained=False, checkpoint_path=...)`` loads
    it and ``reset_classifier(num_classes)`` replaces the head.
    """
    try:
        timm = importlib.import_module("timm")
    except ImportError as exc:
        raise MissingExtraError("timm", "timm", "timm checkpoints") from exc
    state = load_state_dict_file(checkpoint)
    try:
        probe: nn.Module = timm.create_model(model_name, pretrained=False)
    except RuntimeError as exc:
        raise ConfigError(f"timm does not know the model {model_name!r}: {exc}") from exc
    head_name = head or timm_head(probe)
    head_weight = state.get(f"{head_name}.weight")
    saved_classes = int(head_weight.shape[0]) if head_weight is not None else 0
    model: nn.Module = timm.create_model(model_name, pretrained=False, num_classes=saved_classes)
    load_weights_(model, state, head=head_name, source=f"timm:{checkpoint}")  # checks keys/shapes
    model = timm.create_model(
        model_name, pretrained=False, num_classes=saved_classes, checkpoint_path=str(checkpoint)
    )
    reset = getattr(model, "reset_classifier", None)
    if callable(reset):
        reset(num_classes)
    report = LoadReport(
        f"timm:{model_name}:{checkpoint}",
        tuple(sorted(k for k in state if not is_under(k, head_name))),
        tuple(k for k in model.state_dict() if is_under(k, head_name)),
        tuple(sorted(k for k in state if is_under(k, head_name))),
    )
    return model, report


def timm_head(model: nn.Module) -> str:
    """The classifier's module name in a timm model (``fc``, ``head``, ``head.fc``...)."""
    get = getattr(model, "get_classifier", None)
    if callable(get):
        clf = get()
        for name, module in model.named_modules():
            if module is clf and name:
                return str(name)
    return find_head(model)
