"""The built-in model zoo (``mlp``, ``cnn``, ``transformer``) and factory entry points.

Every builder takes ``(input_shape, num_classes, **options)`` and returns an ``nn.Module`` that
maps a float32 batch of ``input_shape`` to logits. A task can name its own factory as
``"pkg.module:function"`` with the same signature.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from greenforge.errors import ConfigError, UnknownNameError

ModelBuilder = Callable[..., nn.Module]
_ZOO: dict[str, ModelBuilder] = {}


def register_architecture(name: str, builder: ModelBuilder) -> None:
    _ZOO[name] = builder


def architecture_names() -> list[str]:
    return sorted(_ZOO)


def _bad_option(arch: str, exc: TypeError) -> ConfigError:
    return ConfigError(f"bad option for architecture {arch!r}: {exc}.")


def build_model(
    architecture: str, input_shape: Sequence[int], num_classes: int, **options: Any
) -> nn.Module:
    """Build ``architecture`` (a zoo name or ``pkg.module:function``) for the task."""
    if ":" in architecture:
        builder = load_entry_point(architecture, "model factory")
    elif architecture in _ZOO:
        builder = _ZOO[architecture]
    else:
        raise UnknownNameError("architecture", architecture, _ZOO)
    try:
        model = builder(tuple(input_shape), num_classes, **options)
    except TypeError as exc:
        raise _bad_option(architecture, exc) from None
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model factory {architecture!r} returned {type(model).__name__}, not a torch "
            "nn.Module; return the model."
        )
    return model


def load_entry_point(spec: str, what: str) -> Callable[..., Any]:
    """Import ``pkg.module:function``; a clear ConfigError when it cannot be found."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what} {spec!r}: write it as 'package.module:function'.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{what} {spec!r}: cannot import {module_name!r} ({exc}). Is it on PYTHONPATH?"
        ) from None
    fn = module
    for part in attr.split("."):
        if not hasattr(fn, part):
            raise ConfigError(f"{what} {spec!r}: {module_name!r} has no attribute {attr!r}.")
        fn = getattr(fn, part)
    if not callable(fn):
        raise ConfigError(f"{what} {spec!r} is not callable.")
    return fn


class MLP(nn.Module):
    """Flatten -> [Linear -> ReLU (-> Dropout)] x N -> Linear."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        hidden: Sequence[int] = (256, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not hidden or any(int(h) < 1 for h in hidden):
            raise ConfigError(f"mlp hidden sizes must be positive integers, got {list(hidden)!r}.")
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(h)
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class CNN(nn.Module):
    """[Conv3x3 -> BN -> ReLU (-> MaxPool every second block)] x N -> global avg pool -> MLP head."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
    ) -> None:
        super().__init__()
        if len(input_shape) == 2:
            in_ch, h, w = 1, input_shape[0], input_shape[1]
        elif len(input_shape) == 3:
            in_ch, h, w = input_shape
        else:
            raise ConfigError(
                f"architecture 'cnn' needs image inputs of shape (H, W) or (C, H, W), got "
                f"{tuple(input_shape)}; use 'mlp' or 'transformer' for flat features."
            )
        self.reshape = (in_ch, h, w)
        blocks: list[nn.Module] = []
        c = in_ch
        size = min(h, w)
        for i, out_ch in enumerate(channels):
            blocks += [
                nn.Conv2d(c, int(out_ch), 3, padding=1),
                nn.BatchNorm2d(int(out_ch)),
                nn.ReLU(),
            ]
            if i % 2 == 1 and size >= 4:
                blocks.append(nn.MaxPool2d(2))
                size //= 2
            c = int(out_ch)
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c * 4, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.reshape)
        out: torch.Tensor = self.head(self.pool(self.features(x)))
        return out


class TinyTransformer(nn.Module):
    """A small encoder: rows of an image (or single features) are tokens; mean-pooled head."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        ff: int = 128,
    ) -> None:
        super().__init__()
        if d_model % heads:
            raise ConfigError(f"transformer d_model {d_model} must be divisible by heads {heads}.")
        if len(input_shape) == 1:
            tokens, feat = input_shape[0], 1
        else:
            tokens, feat = math.prod(input_shape[:-1]), input_shape[-1]
        self.tokens, self.feat = tokens, feat
        self.embed = nn.Linear(feat, d_model)
        self.pos = nn.Parameter(torch.zeros(1, tokens, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, heads, ff, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.tokens, self.feat)
        h = self.encoder(self.embed(x) + self.pos)
        out: torch.Tensor = self.head(h.mean(dim=1))
        return out


register_architecture("mlp", MLP)
register_architecture("cnn", CNN)
register_architecture("transformer", TinyTransformer)


def count_parameters(model: Any) -> int:
    if isinstance(model, nn.Module):
        return sum(int(p.numel()) for p in model.parameters())
    n = getattr(model, "num_parameters", None)
    return int(n) if n is not None else 0
