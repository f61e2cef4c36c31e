"""The task TOML's ``[pretrained]`` table: which checkpoint to start from, and what trains."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from greenforge.errors import ConfigError
from greenforge.forge.recipes.config import RecipeConfig

PretrainedKind = Literal["hf", "safetensors", "state_dict", "timm"]
Strategy = Literal["head", "partial", "full", "lora"]
KINDS: tuple[str, ...] = ("hf", "safetensors", "state_dict", "timm")
STRATEGIES: tuple[str, ...] = ("head", "partial", "full", "lora")


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
