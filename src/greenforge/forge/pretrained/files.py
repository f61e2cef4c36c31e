"""Safe checkpoint files: read state dicts without running code, and fit them to a model.

Safetensors files load with ``safetensors.torch.load_file``, torch files with
``torch.load(..., weights_only=True)`` (a pickle holding anything but tensors is refused with a
:class:`~greenforge.errors.DataError`). A checkpoint that does not fit the model (missing or
unexpected keys, shape mismatches) raises a ``DataError`` naming the keys and what to do; only
the head (the output layer, re-initialised for the task's classes) may differ.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from greenforge.errors import DataError
from greenforge.forge.pretrained.heads import find_head, is_under, key_list


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
            f"{str(path)!r}: entries {key_list(bad)} are not tensors. A checkpoint must map "
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
    missing = sorted(k for k in own if k not in state_dict and not is_under(k, head_name))
    unexpected = sorted(k for k in state_dict if k not in own and not is_under(k, head_name))
    mismatched = sorted(
        k
        for k in own
        if k in state_dict
        and not is_under(k, head_name)
        and tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or mismatched:
        parts: list[str] = []
        if missing:
            parts.append(f"missing from the checkpoint: {key_list(missing)}")
        if unexpected:
            parts.append(f"unexpected in the checkpoint: {key_list(unexpected)}")
        if mismatched:
            shapes = [
                f"{k} (checkpoint {tuple(state_dict[k].shape)}, model {tuple(own[k].shape)})"
                for k in mismatched
            ]
            parts.append(f"shape mismatches: {key_list(shapes)}")
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
        raise DataError(f"loading {source!r} left keys unset: {key_list(left)}.")
    return LoadReport(source, tuple(sorted(to_load)), tuple(reinit), tuple(ignored))
