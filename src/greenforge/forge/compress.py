"""Compression with a torchao-style API: ``prune_(model, Config)`` and ``quantize(model, Config)``.

- :class:`ChannelPruneConfig` - structured pruning with Torch-Pruning: whole neurons/channels are
  removed (the layers really get smaller: parameters and FLOPs drop). The output layer is kept.
- :class:`UnstructuredPruneConfig` - magnitude pruning that zeroes weights in place. It does
  **not** reduce dense compute or latency (the tensors keep their shape); it only pays for
  compressed storage or sparse kernels. Candidates built with it say so in their notes.
- :class:`Int8DynamicConfig` / :class:`Int8StaticConfig` - int8 through ONNX Runtime
  (``onnxruntime.quantization.quantize_dynamic`` / ``quantize_static`` with a
  ``CalibrationDataReader``); the result is an :class:`~greenforge.forge.onnx.OnnxModel`.
  Weights are quantized to 7 bits by default (``reduce_range=True``): ONNX Runtime's u8 x s8
  kernels on x86 CPUs without VNNI (AVX2, e.g. this box's AMD EPYC) add pairs of
  uint8 x int8 products into int16 with saturation (``vpmaddubsw``), and full-range 8-bit weights
  overflow it - per-channel weights use the full range in every channel, so they saturate most
  (the "Choosing parameters for CPU inference" note of ``quantize_static``'s docstring and
  ONNX Runtime's quantization docs). 7-bit weights cannot overflow and cost ~1 bit of weight
  precision on every CPU; set ``reduce_range=False`` only for graphs served on VNNI or ARM cores.
- :class:`Bf16Config` - bfloat16 weights and activations in torch (returns a wrapper that casts
  the float32 input).

torchao's int8 path (``torchao.quantization.quantize_`` with
``Int8DynamicActivationInt8WeightConfig``) is available as ``Int8DynamicConfig(backend="torchao")``;
on CPUs without its fused kernels it is slower than fp32 - measure before choosing it (forge does).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from greenforge.errors import ConfigError
from greenforge.forge.recipes.config import RecipeConfig


@dataclasses.dataclass(frozen=True)
class ChannelPruneConfig(RecipeConfig):
    """Remove ``amount`` of the channels/neurons of every prunable layer (not the output)."""

    VERSION: ClassVar[int] = 1
    amount: float = 0.5
    importance: Literal["l1", "l2"] = "l2"
    round_to: int | None = None

    def validate(self) -> None:
        if not 0.0 < self.amount < 1.0:
            raise ValueError(f"ChannelPruneConfig.amount {self.amount!r} must be in (0, 1).")
        if self.round_to is not None and self.round_to < 1:
            raise ValueError(f"ChannelPruneConfig.round_to {self.round_to!r} must be >= 1.")


@dataclasses.dataclass(frozen=True)
class UnstructuredPruneConfig(RecipeConfig):
    """Zero the ``amount`` smallest-magnitude weights of each Linear/Conv layer."""

    VERSION: ClassVar[int] = 1
    amount: float = 0.5

    def validate(self) -> None:
        if not 0.0 < self.amount < 1.0:
            raise ValueError(f"UnstructuredPruneConfig.amount {self.amount!r} must be in (0, 1).")


def _output_layer(model: nn.Module) -> nn.Module | None:
    last: nn.Module | None = None
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            last = m
    return last


def prune_(
    model: nn.Module,
    config: ChannelPruneConfig | UnstructuredPruneConfig,
    example_inputs: torch.Tensor,
) -> nn.Module:
    """Prune ``model`` in place (structured: channels removed; unstructured: weights zeroed)."""
    if isinstance(config, UnstructuredPruneConfig):
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Linear, nn.Conv2d)):
                    w = m.weight
                    k = int(w.numel() * config.amount)
                    if k < 1:
                        continue
                    threshold = w.abs().flatten().kthvalue(k).values
                    w.mul_((w.abs() > threshold).to(w.dtype))
        return model
    if not isinstance(config, ChannelPruneConfig):
        raise TypeError(f"prune_ expects a prune config, got {type(config).__name__}.")
    import torch_pruning as tp

    imp = tp.importance.GroupMagnitudeImportance(p=1 if config.importance == "l1" else 2)
    ignored = [m for m in (_output_layer(model),) if m is not None]
    ignored += [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    was_training = model.training
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = tp.pruner.MetaPruner(
            model,
            example_inputs,
            importance=imp,
            pruning_ratio=config.amount,
            ignored_layers=ignored,
            round_to=config.round_to,
        )
        pruner.step()
    model.train(was_training)
    return model


@dataclasses.dataclass(frozen=True)
class Int8DynamicConfig(RecipeConfig):
    """int8 weights, activations quantized on the fly (no calibration)."""

    VERSION: ClassVar[int] = 1
    backend: Literal["onnxruntime", "torchao"] = "onnxruntime"
    per_channel: bool = True
    reduce_range: bool = True
    """7-bit weights, so the u8 x s8 kernels of non-VNNI x86 CPUs cannot saturate."""


@dataclasses.dataclass(frozen=True)
class Int8StaticConfig(RecipeConfig):
    """int8 weights and activations, activation ranges calibrated on training batches."""

    VERSION: ClassVar[int] = 1
    calibration_batches: int = 8
    calibration_batch_size: int = 64
    per_channel: bool = True
    reduce_range: bool = True
    """7-bit weights, so the u8 x s8 kernels of non-VNNI x86 CPUs cannot saturate."""
    method: Literal["minmax", "entropy", "percentile"] = "minmax"

    def validate(self) -> None:
        if self.calibration_batches < 1 or self.calibration_batch_size < 1:
            raise ValueError(
                "Int8StaticConfig.calibration_batches and calibration_batch_size must be >= 1."
            )


@dataclasses.dataclass(frozen=True)
class Bf16Config(RecipeConfig):
    """bfloat16 weights and activations (torch)."""

    VERSION: ClassVar[int] = 1


class Bf16Model(nn.Module):
    """A bf16 copy of a model that takes and returns float32 tensors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = copy.deepcopy(model).to(torch.bfloat16).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(x.to(torch.bfloat16))
        return out.float()


class _Calibration:
    """``onnxruntime.quantization.CalibrationDataReader`` over float32 batches."""

    def __init__(self, input_name: str, batches: Iterable[torch.Tensor]) -> None:
        self.input_name = input_name
        self._it: Iterator[torch.Tensor] = iter(batches)

    def get_next(self) -> dict[str, Any] | None:
        batch = next(self._it, None)
        if batch is None:
            return None
        return {self.input_name: batch.detach().float().numpy()}

    def rewind(self) -> None:  # pragma: no cover - onnxruntime may call it
        pass


def quantize(
    model: nn.Module,
    config: Int8DynamicConfig | Int8StaticConfig | Bf16Config,
    *,
    example_inputs: torch.Tensor,
    workdir: Path,
    calibration: Iterable[torch.Tensor] = (),
) -> Any:
    """A quantized copy of ``model`` (the input model is left unchanged).

    ONNX Runtime configs return an :class:`~greenforge.forge.onnx.OnnxModel`; ``Bf16Config``
    and the torchao backend return ``nn.Module`` objects.
    """
    from greenforge.forge import onnx as gf_onnx

    if isinstance(config, Bf16Config):
        return Bf16Model(model)
    if isinstance(config, Int8DynamicConfig) and config.backend == "torchao":
        return _torchao_int8_dynamic(model)
    if not isinstance(config, (Int8DynamicConfig, Int8StaticConfig)):
        raise TypeError(f"quantize expects a quantization config, got {type(config).__name__}.")
    workdir.mkdir(parents=True, exist_ok=True)
    fp32_path = workdir / "model-fp32.onnx"
    gf_onnx.export(model, example_inputs, fp32_path)
    out_path = workdir / "model-int8.onnx"
    if isinstance(config, Int8DynamicConfig):
        quantize_onnx_dynamic(fp32_path, out_path, config)
        precision = "int8-dynamic"
    else:
        batches = list(calibration)[: config.calibration_batches]
        if not batches:
            raise ConfigError("int8 static quantization needs calibration batches.")
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        method = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }[config.method]
        with _quiet_root_logger():
            pre_path = _pre_process(fp32_path)
            quantize_static(
                str(pre_path),
                str(out_path),
                _Calibration(gf_onnx.INPUT_NAME, batches),
                quant_format=QuantFormat.QDQ,
                per_channel=config.per_channel,
                reduce_range=config.reduce_range,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=method,
            )
        precision = "int8-static"
    return gf_onnx.OnnxModel(out_path, precision=precision, reference=model)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime logs a pre-processing hint on the root logger; keep it quiet meanwhile."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _pre_process(fp32_path: Path) -> Path:
    """``quant_pre_process`` (shape inference, graph clean-up) next to ``fp32_path``."""
    from onnxruntime.quantization import quant_pre_process

    pre_path = fp32_path.with_name(fp32_path.stem + "-pre.onnx")
    quant_pre_process(str(fp32_path), str(pre_path), skip_symbolic_shape=True)
    return pre_path


def quantize_onnx_dynamic(
    fp32_path: Path, out_path: Path, config: Int8DynamicConfig | None = None
) -> Path:
    """Dynamic int8 quantization of an fp32 ONNX file (any input dtype, e.g. int64 token ids)
    with ``config``'s weight settings (per-channel, 7-bit weights by default); returns
    ``out_path``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    cfg = config or Int8DynamicConfig()
    with _quiet_root_logger():
        pre_path = _pre_process(Path(fp32_path))
        quantize_dynamic(
            str(pre_path),
            str(out_path),
            weight_type=QuantType.QInt8,
            per_channel=cfg.per_channel,
            reduce_range=cfg.reduce_range,
        )
    return Path(out_path)


def _torchao() -> tuple[Any, Any]:
    """torchao's ``Int8DynamicActivationInt8WeightConfig`` and ``quantize_`` (a clear error
    naming the extra when torchao is not installed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except ImportError:
        from greenforge.errors import MissingExtraError

        raise MissingExtraError("torchao", "torchao", "int8 quantization in torch") from None
    return Int8DynamicActivationInt8WeightConfig, quantize_


def _torchao_int8_dynamic(model: nn.Module) -> nn.Module:
    config_type, quantize_ = _torchao()
    q = copy.deepcopy(model).eval()
    quantize_(q, config_type())
    return q


def tooling(config: Int8DynamicConfig | Int8StaticConfig) -> tuple[str, Callable[[], object]]:
    """The name and loader of the library ``quantize(..., config)`` needs, for
    :meth:`~greenforge.forge.context.ForgeContext.load_tooling`: torchao or ONNX Runtime."""
    if isinstance(config, Int8DynamicConfig) and config.backend == "torchao":
        return "torchao", _torchao
    from greenforge.forge import onnx as gf_onnx

    return "onnx", gf_onnx.load_tooling
