"""Cheap input augmentation for knowledge distillation, with the teacher's logits cached.

A small student learns more from a teacher when it sees more inputs than the training split
holds: the teacher labels every augmented input (soft targets), so nothing needs to be labelled
by hand. The augmented set is built once per (teacher, augmentation), the teacher's logits are
computed once for all of it (measured as a search step, ``teacher-logits:<teacher>``) and every
student, rung of a ladder or pruning step reuses it, so distilling costs the student's own
training and not a teacher forward pass per batch.

Augmentations (``augment`` option of ``distill`` and ``prune``):

- ``shift``: image inputs (``(C, H, W)`` or ``(H, W)``, at least 4x4) shifted by ``s`` pixels in
  each direction (``s = 1`` below 16 px, else 2), zero-filled: the original plus 8 copies. Suits
  centred, zero-background images such as the 8x8 digits and MNIST.
- ``noise``: the original plus 4 copies with Gaussian noise of 10 % of each feature's standard
  deviation (any tensor input, e.g. tabular features).
- ``auto``: ``shift`` for image-shaped inputs, else ``noise``.
- ``none``: the training split as is (teacher logits still cached).

Memory: the augmented set and its logits live in memory, capped at
:data:`MAX_AUGMENTED_VALUES` numbers; a larger training split gets fewer copies.

Mixup is not offered: with cached logits the teacher would have to label every mixed batch
anew, which is the cost caching avoids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch.utils.data import TensorDataset

from greenforge.errors import ConfigError

if TYPE_CHECKING:
    from greenforge.forge.candidate import Candidate
    from greenforge.forge.context import ForgeContext

Augment = Literal["none", "auto", "shift", "noise"]
AUGMENTS: tuple[str, ...] = ("none", "auto", "shift", "noise")
NOISE_COPIES = 4
NOISE_SCALE = 0.1
MAX_AUGMENTED_VALUES = 100_000_000
"""Cap on the numbers an augmented set holds (400 MB of float32): larger training splits get
fewer copies (axial shifts first), or none."""
"""Noise standard deviation as a fraction of each feature's standard deviation."""


def _image_hw(input_shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(H, W) for image-shaped inputs, else ``None``."""
    if len(input_shape) in (2, 3) and min(input_shape[-2:]) >= 4:
        return int(input_shape[-2]), int(input_shape[-1])
    return None


def resolve_augment(kind: str, input_shape: tuple[int, ...]) -> str:
    """The augmentation ``kind`` means for these inputs (``auto`` resolved); ConfigError when
    ``shift`` is asked of non-image inputs."""
    if kind not in AUGMENTS:
        raise ConfigError(f"augment {kind!r} is not one of {', '.join(AUGMENTS)}.")
    image = _image_hw(input_shape) is not None
    if kind == "auto":
        return "shift" if image else "noise"
    if kind == "shift" and not image:
        raise ConfigError(
            f"augment 'shift' needs image inputs (C, H, W) of at least 4x4, got input_shape "
            f"{list(input_shape)}; use augment = 'noise' or 'auto'."
        )
    return kind


def shifted(x: torch.Tensor, input_shape: tuple[int, ...], copies: int = 8) -> torch.Tensor:
    """Returns ``x`` and up to 8 zero-filled shifted copies (``copies``; the four axial shifts
    come first when fewer are allowed), same dtype and shape."""
    hw = _image_hw(input_shape)
    if hw is None:
        raise ConfigError(f"cannot shift inputs of shape {list(input_shape)}.")
    h, w = hw
    step = 1 if min(h, w) < 16 else 2
    img = x.reshape(x.shape[0], -1, h, w)
    out = [x]
    offsets = [(dy, dx) for dy in (-step, 0, step) for dx in (-step, 0, step) if dy or dx]
    if copies < len(offsets):
        offsets = sorted(offsets, key=lambda o: o[0] != 0 and o[1] != 0)[: max(copies, 0)]
    for dy, dx in offsets:
        s = torch.zeros_like(img)
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        s[:, :, yd, xd] = img[:, :, ys, xs]
        out.append(s.reshape(x.shape))
    return torch.cat(out)


def noisy(x: torch.Tensor, seed: int, copies: int = NOISE_COPIES) -> torch.Tensor:
    """Returns ``x`` and ``copies`` (default :data:`NOISE_COPIES`) copies with Gaussian noise
    (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    std = x.float().std(dim=0, keepdim=True).nan_to_num(0.0) * NOISE_SCALE
    extra = [x + torch.randn(x.shape, generator=gen) * std for _ in range(max(copies, 0))]
    return torch.cat([x, *extra])


def augment_inputs(
    x: torch.Tensor,
    input_shape: tuple[int, ...],
    kind: str,
    seed: int = 0,
    max_values: int = MAX_AUGMENTED_VALUES,
) -> torch.Tensor:
    """Returns the augmented inputs (the originals first), for a resolved ``kind``; fewer copies
    when the set would hold more than ``max_values`` numbers (none when even one would)."""
    room = max_values // max(x.numel(), 1) - 1
    if kind == "shift":
        return shifted(x, input_shape, min(8, room))
    if kind == "noise":
        return noisy(x, seed, min(NOISE_COPIES, room))
    return x


def kd_dataset(ctx: ForgeContext, teacher: Candidate, augment: str) -> TensorDataset:
    """Returns ``(x, y, teacher_logits)`` over the augmented training split; built once per
    (teacher, augmentation) and kept on the context, the teacher's pass measured."""
    kind = resolve_augment(augment, ctx.input_shape)
    key = f"kd:{teacher.name}:{kind}"
    cached = ctx.artifacts.get(key)
    if isinstance(cached, TensorDataset):
        return cached
    xs, ys = [], []
    for batch in ctx.loader("train", batch_size=1024):
        if not isinstance(batch[0], torch.Tensor):
            raise ConfigError(
                "distillation with cached teacher logits needs tensor inputs; this task's "
                f"inputs are {type(batch[0]).__name__}."
            )
        xs.append(batch[0].float())
        ys.append(batch[1])
    x, y = torch.cat(xs), torch.cat(ys)

    def build() -> TensorDataset:
        from greenforge.forge.training import _forward

        xa = augment_inputs(x, ctx.input_shape, kind, ctx.seed)
        ya = y.repeat(xa.shape[0] // x.shape[0])
        model = teacher.model
        if isinstance(model, torch.nn.Module):
            model.eval()
        with torch.no_grad():
            logits = torch.cat(
                [_forward(model, xa[i : i + 1024]).float() for i in range(0, len(xa), 1024)]
            )
        return TensorDataset(xa, ya, logits)

    data, _ = ctx.measure(f"teacher-logits:{teacher.name}+{kind}", build)
    ctx.artifacts[key] = data
    assert isinstance(data, TensorDataset)
    return data
