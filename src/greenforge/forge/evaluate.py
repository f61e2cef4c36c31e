"""Measure one candidate: test accuracy, size, FLOPs, and inference energy and latency.

- **Accuracy**: top-1 on the held-out test split (never used for training or early stopping).
- **Parameters**: of the model as served (for ONNX models, of the torch model it came from).
- **Size on disk**: bytes of the file the model would ship as (safetensors, or the ONNX file).
- **FLOPs**: counted with ``torch.utils.flop_counter.FlopCounterMode`` on one sample (2 FLOPs
  per multiply-accumulate, matmuls and convolutions). **Precision-weighted FLOPs** multiply by
  ``bits / 32`` (fp32 1, bf16 0.5, int8 0.25): an index of arithmetic + memory cost per
  prediction, for comparison only - the energy figures below are measured, not derived from it.
  Unstructured sparsity leaves FLOPs unchanged (dense kernels still multiply the zeros).
- **Inference**: the model predicts test inputs in a loop for at least ``min_duration_s`` at
  batch size 1 and at the serving batch size, inside :func:`greenforge.forge.measure.measure`;
  energy and latency per 1,000 predictions are the measured totals scaled by ``1000 / n``.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from greenforge.config import Settings
from greenforge.forge.measure import Measurement, measure
from greenforge.forge.recipes.base import Candidate

PRECISION_WEIGHT: dict[str, float] = {
    "fp32": 1.0,
    "bf16": 0.5,
    "fp16": 0.5,
    "int8-dynamic": 0.25,
    "int8-static": 0.25,
    "int8": 0.25,
}


@dataclasses.dataclass(frozen=True)
class InferenceCost:
    """Measured inference at one batch size."""

    batch_size: int
    predictions: int
    energy_j_per_1k: float
    latency_s_per_1k: float
    measurement: Measurement
    """The median repeat's measurement (the one the per-1k figures come from)."""
    repeats: int = 1
    energy_j_per_1k_range: tuple[float, float] | None = None
    """Lowest and highest energy per 1k over the repeats: the spread a reader should see."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "predictions": self.predictions,
            "energy_j_per_1k": self.energy_j_per_1k,
            "latency_s_per_1k": self.latency_s_per_1k,
            "repeats": self.repeats,
            "energy_j_per_1k_range": None
            if self.energy_j_per_1k_range is None
            else list(self.energy_j_per_1k_range),
            "method": self.measurement.method,
            "duration_s": self.measurement.duration_s,
            "energy_j": self.measurement.energy_j,
            "low_j": self.measurement.low_j,
            "high_j": self.measurement.high_j,
        }


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Everything measured about one candidate."""

    accuracy: float
    parameters: int
    size_bytes: int
    flops: int
    precision_weighted_flops: float
    batch1: InferenceCost
    serving: InferenceCost

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "parameters": self.parameters,
            "size_bytes": self.size_bytes,
            "flops": self.flops,
            "precision_weighted_flops": self.precision_weighted_flops,
            "inference_batch1": self.batch1.to_dict(),
            "inference_serving": self.serving.to_dict(),
        }


def torch_module(model: Any) -> nn.Module | None:
    """The torch module behind a served model (ONNX models keep their source as ``reference``)."""
    if isinstance(model, nn.Module):
        return model
    ref = getattr(model, "reference", None)
    return ref if isinstance(ref, nn.Module) else None


def count_flops(model: Any, sample: torch.Tensor) -> int:
    """FLOPs of one forward pass on a single sample (matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    module = torch_module(model)
    if module is None:
        return 0
    inner = getattr(module, "inner", None)
    target = inner if isinstance(inner, nn.Module) else module
    x = sample[:1].float()
    dtype = next((p.dtype for p in target.parameters()), torch.float32)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        target.eval()(x.to(dtype))
    return int(counter.get_total_flops())


def count_parameters(model: Any) -> int:
    module = torch_module(model)
    return 0 if module is None else sum(int(p.numel()) for p in module.parameters())


def size_on_disk(model: Any) -> int:
    """Bytes of the file the model ships as."""
    if hasattr(model, "size_bytes"):
        return int(model.size_bytes)
    module = torch_module(model)
    if module is None:
        return 0
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory(prefix="greenforge-size-") as tmp:
        path = Path(tmp) / "model.safetensors"
        state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
        save_file(state, str(path))
        return path.stat().st_size


def _predict_loop(
    model: Any, pool: torch.Tensor, batch_size: int, min_duration_s: float, min_batches: int
) -> int:
    n = 0
    batches = [pool[i : i + batch_size] for i in range(0, pool.shape[0], batch_size)]
    batches = [b for b in batches if b.shape[0] == batch_size] or [pool[:batch_size]]
    start = time.perf_counter()
    i = 0
    with torch.inference_mode():
        while i < min_batches or time.perf_counter() - start < min_duration_s:
            b = batches[i % len(batches)]
            model(b)
            n += int(b.shape[0])
            i += 1
    return n


def inference_cost(
    model: Any,
    pool: torch.Tensor,
    batch_size: int,
    settings: Settings,
    *,
    min_duration_s: float = 0.5,
    measure_fn: Callable[..., tuple[Any, Measurement]] | None = None,
    label: str = "inference",
    repeats: int = 3,
) -> InferenceCost:
    """Measure energy and latency of predicting ``pool`` rows at ``batch_size``.

    The loop runs ``repeats`` times for ``min_duration_s / repeats`` each; the figures are
    those of the median repeat (by energy per prediction), so one disturbed sample on a busy
    machine does not decide a candidate's lifetime CO2e. The spread is kept.
    """
    if repeats < 1:
        raise ValueError(f"repeats {repeats!r} must be >= 1.")
    if isinstance(model, nn.Module):
        model.eval()
    if pool.shape[0] < batch_size:
        reps = -(-batch_size // pool.shape[0])
        pool = pool.repeat(reps, *([1] * (pool.dim() - 1)))
    with torch.inference_mode():  # warm-up (allocations, ONNX Runtime first-run costs)
        for _ in range(3):
            model(pool[:batch_size])

    def run() -> int:
        return _predict_loop(model, pool, batch_size, min_duration_s / repeats, min_batches=3)

    runs: list[tuple[float, int, Measurement]] = []
    for _ in range(repeats):
        if measure_fn is None:
            n, m = measure(run, settings, name=label)
        else:
            n, m = measure_fn(label, run)
        runs.append((m.energy_j * 1000.0 / max(n, 1), n, m))
    runs.sort(key=lambda r: r[0])
    per_1k, n, m = runs[len(runs) // 2]
    scale = 1000.0 / max(n, 1)
    return InferenceCost(
        batch_size,
        n,
        per_1k,
        m.duration_s * scale,
        m,
        repeats=repeats,
        energy_j_per_1k_range=(runs[0][0], runs[-1][0]),
    )


def evaluate(
    candidate: Candidate,
    test_loader: Any,
    pool: torch.Tensor,
    serving_batch_size: int,
    settings: Settings,
    *,
    min_duration_s: float = 0.5,
    measure_fn: Callable[..., tuple[Any, Measurement]] | None = None,
) -> Evaluation:
    """Measure accuracy, size, FLOPs and inference cost of a candidate."""
    from greenforge.forge.training import accuracy

    model = candidate.model
    acc = accuracy(model, test_loader)
    flops = count_flops(model, pool)
    weight = PRECISION_WEIGHT.get(candidate.precision, candidate.flops_weight)
    b1 = inference_cost(
        model,
        pool,
        1,
        settings,
        min_duration_s=min_duration_s,
        measure_fn=measure_fn,
        label=f"infer:{candidate.name}:b1",
    )
    bs = inference_cost(
        model,
        pool,
        serving_batch_size,
        settings,
        min_duration_s=min_duration_s,
        measure_fn=measure_fn,
        label=f"infer:{candidate.name}:b{serving_batch_size}",
    )
    return Evaluation(
        accuracy=acc,
        parameters=count_parameters(model),
        size_bytes=size_on_disk(model),
        flops=flops,
        precision_weighted_flops=flops * weight,
        batch1=b1,
        serving=bs,
    )
