"""Model structure for fine-tuning: the head, the trunk's blocks, and freezing by strategy."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

from torch import nn
from torch.utils.hooks import RemovableHandle

from greenforge.errors import ConfigError, UnknownNameError

LIST_LIMIT = 8
"""How many names an error message lists before it says "(+N more)"."""
_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
)


def key_list(keys: Sequence[str]) -> str:
    """The first :data:`LIST_LIMIT` keys, quoted and comma-separated, plus "(+N more)"."""
    shown = ", ".join(repr(k) for k in keys[:LIST_LIMIT])
    more = f" (+{len(keys) - LIST_LIMIT} more)" if len(keys) > LIST_LIMIT else ""
    return shown + more


def is_under(key: str, prefix: str) -> bool:
    """True when ``key`` is the module/parameter ``prefix`` or a name inside it."""
    return bool(prefix) and (key == prefix or key.startswith(prefix + "."))


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _has_own_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def find_head(model: nn.Module) -> str:
    """Name of the output layer: the last module (in registration order) with parameters of its own.

    ``TextClassifier``/timm/torchvision-style models name theirs (``head``, ``fc``,
    ``classifier``); for a ``Sequential`` it is its last ``Linear``.
    """
    last = ""
    for name, module in model.named_modules():
        if name and _has_own_params(module):
            last = name
    if not last:
        raise ConfigError(
            f"{type(model).__name__} has no layer with parameters to use as a head; name it "
            'with [pretrained] head = "...".'
        )
    return last


def _is_block_list(module: nn.Module) -> bool:
    """A container of two or more repeated blocks (same class), e.g. ``encoder.layer``."""
    if not isinstance(module, (nn.ModuleList, nn.Sequential)):
        return False
    kinds = [type(c) for c in module.children() if _has_params(c)]
    return len(kinds) >= 2 and len(set(kinds)) == 1


def _units(
    name: str, module: nn.Module, head: str, force: bool = False
) -> list[tuple[str, nn.Module]]:
    """Split a module into trunk units: expand the root, the head's ancestors and anything that
    holds a list of repeated blocks; every other module with parameters is one unit."""
    expand = (
        force
        or not name
        or head.startswith(name + ".")
        or any(_is_block_list(m) for m in module.modules())
    )
    if not expand:
        return [(name, module)]
    out: list[tuple[str, nn.Module]] = []
    for child_name, child in module.named_children():
        full = f"{name}.{child_name}" if name else child_name
        if full != head and _has_params(child):
            out.extend(_units(full, child, head))
    return out


def find_blocks(model: nn.Module, head: str | None = None) -> list[list[str]]:
    """The model's trunk as an ordered list of blocks, each a list of module names.

    Wrappers with one child are followed, containers (``ModuleList``/``Sequential``, e.g.
    ``encoder.layer``, timm ``blocks``) are split into their children, and a block made only of
    normalisation layers joins the block before it (a final ``norm`` trains with the last block).
    The head is not part of the trunk.
    """
    head_name = find_head(model) if head is None else head
    found = _units("", model, head_name)
    for _ in range(64):  # a trunk of one wrapper module: look inside it (bounded depth)
        if len(found) != 1 or sum(1 for c in found[0][1].children() if _has_params(c)) < 2:
            break
        found = _units(found[0][0], found[0][1], head_name, force=True)
    units: list[list[str]] = []
    for name, module in found:
        norm_only = all(isinstance(m, _NORM_TYPES) for m in module.modules() if _has_own_params(m))
        if norm_only and units:
            units[-1].append(name)
        else:
            units.append([name])
    return units


@dataclasses.dataclass(frozen=True)
class FreezeReport:
    """Which parameters train after applying a strategy."""

    strategy: str
    head: str
    trainable_blocks: tuple[str, ...]
    trainable_params: int
    total_params: int
    trainable_names: tuple[str, ...]
    hooks: tuple[RemovableHandle, ...] = dataclasses.field(default=(), repr=False, compare=False)
    """Forward pre-hooks keeping frozen blocks in eval mode (removed by :func:`unfreeze_`)."""

    @property
    def trainable_fraction(self) -> float:
        return self.trainable_params / self.total_params if self.total_params else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "head": self.head,
            "trainable_blocks": list(self.trainable_blocks),
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
        }


def _keep_eval(module: nn.Module, args: Any) -> None:
    """Forward pre-hook on a frozen block: it runs in eval mode even while the model trains, so
    BatchNorm keeps its pretrained statistics and dropout does not perturb fixed features."""
    module.train(False)


def _frozen_roots(model: nn.Module, trainable: Sequence[str]) -> list[str]:
    """The largest sub-modules that only compute frozen features: every frozen module with
    parameters, and parameter-free ones (dropout...) placed before the first trainable sibling."""

    def on(name: str) -> bool:
        return any(is_under(name, t) for t in trainable)

    def ancestor(name: str) -> bool:
        return any(t.startswith(name + ".") for t in trainable)

    out: list[str] = []

    def walk(prefix: str, module: nn.Module) -> None:
        seen_trainable = False
        for child_name, child in module.named_children():
            full = f"{prefix}.{child_name}" if prefix else child_name
            if on(full):
                seen_trainable = True
            elif ancestor(full):
                seen_trainable = True
                walk(full, child)
            elif _has_params(child) or not seen_trainable:
                out.append(full)

    walk("", model)
    return out


def freeze_(
    model: nn.Module,
    strategy: Literal["head", "partial", "full"],
    *,
    head: str | None = None,
    unfreeze_last: int = 1,
) -> FreezeReport:
    """Set ``requires_grad`` in place for a transfer strategy.

    - ``head``: only the head trains (the backbone is a frozen feature extractor).
    - ``partial``: the head and the last ``unfreeze_last`` blocks of :func:`find_blocks` train.
    - ``full``: everything trains.

    Frozen blocks run in eval mode even while the model trains: BatchNorm keeps its pretrained
    running statistics and dropout is off, so a frozen backbone computes fixed features.
    """
    if strategy not in ("head", "partial", "full"):
        raise UnknownNameError("freeze strategy", str(strategy), ("head", "partial", "full"))
    head_name = find_head(model) if head is None else head
    _require_module(model, head_name)
    trainable_prefixes: list[str] = [head_name]
    blocks_on: list[str] = []
    if strategy == "partial":
        blocks = find_blocks(model, head_name)
        if unfreeze_last > len(blocks):
            raise ConfigError(
                f"unfreeze_last = {unfreeze_last} but {type(model).__name__} has only "
                f"{len(blocks)} blocks ({', '.join('+'.join(b) for b in blocks)}); use a smaller "
                'value, or strategy = "full" to train everything.'
            )
        for block in blocks[len(blocks) - unfreeze_last :]:
            blocks_on.extend(block)
        trainable_prefixes.extend(blocks_on)
    names: list[str] = []
    trainable = 0
    total = 0
    for name, p in model.named_parameters():
        on = strategy == "full" or any(is_under(name, pre) for pre in trainable_prefixes)
        p.requires_grad_(on)
        total += p.numel()
        if on:
            trainable += p.numel()
            names.append(name)
    hooks: list[RemovableHandle] = []
    if strategy != "full":
        for name in _frozen_roots(model, trainable_prefixes):
            hooks.append(model.get_submodule(name).register_forward_pre_hook(_keep_eval))
    return FreezeReport(
        strategy, head_name, tuple(blocks_on), trainable, total, tuple(names), tuple(hooks)
    )


def unfreeze_(model: nn.Module, report: FreezeReport | None = None) -> None:
    """Undo :func:`freeze_`: every parameter trains again, frozen blocks follow train() again."""
    for p in model.parameters():
        p.requires_grad_(True)
    if report is not None:
        for hook in report.hooks:
            hook.remove()


def _require_module(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError as exc:
        layers = [n for n, m in model.named_modules() if n and _has_own_params(m)]
        raise ConfigError(
            f"{type(model).__name__} has no module named {name!r} to use as the head. Layers "
            f"with parameters: {key_list(layers)}."
        ) from exc


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that will train (``requires_grad``)."""
    return [p for p in model.parameters() if p.requires_grad]
