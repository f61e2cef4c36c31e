"""Measure one candidate: test accuracy, size, FLOPs, and inference energy and latency.

- **Accuracy**: top-1 on the held-out test split (never used for training or early stopping).
- **Parameters**: of the model as served (for ONNX models, of the torch model it came from).
- **Size on disk**: bytes of the file the model would ship as (safetensors, or the ONNX file).
- **FLOPs**: counted with ``torch.utils.flop_counter.FlopCounterMode`` on one sample (2 FLOPs
  per multiply-accumulate, matmuls and convolutions). **Precision-weighted FLOPs** multiply by
  ``bits / 32`` (fp32 1, bf16 0.5, int8 0.25): an index of arithmetic + memory cost per
  prediction, for comparison only - the energy figures below are measured, not derived from it.
  Unstructured sparsity leaves FLOPs unchanged (dense kernels still multiply the zeros).
- **Inference**: :func:`measure_serving` measures *all* candidates together with the protocol
  of :mod:`greenforge.forge.protocol` (serving threads, interleaved fixed-work repeats, median
  with a bootstrap interval, the process's own CPU time x per-core power) at batch size 1 and at
  the serving batch size; figures are per 1,000 predictions.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from greenforge.forge.candidate import Candidate
from greenforge.forge.protocol import (
    BUSY_LOAD,
    BUSY_WIDEN,
    Attribution,
    InterleavedRun,
    LoadProbe,
    ProtocolConfig,
    Workload,
    WorkloadCost,
    bootstrap_median,
    measure_interleaved,
    thread_limit,
    widen,
)
from greenforge.forge.result import NoiseReport

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
    """Measured inference at one batch size (per 1,000 predictions; J and s)."""

    batch_size: int
    predictions: int
    """Predictions per repeat (fixed work)."""
    energy_j_per_1k: float
    """Median over the repeats."""
    latency_s_per_1k: float
    """Median wall time."""
    energy_j_per_1k_low: float
    """Bootstrap 95 % low end (widened when busy) x the meter's low bound."""
    energy_j_per_1k_high: float
    spread_low_j_per_1k: float
    """Bootstrap 95 % interval of the median (widened when busy), measurement spread only."""
    spread_high_j_per_1k: float
    cpu_s_per_1k: float
    repeats: int
    method: str
    energy_j_per_1k_range: tuple[float, float] | None = None
    """Lowest and highest repeat."""

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["energy_j_per_1k_range"] = (
            None if self.energy_j_per_1k_range is None else list(self.energy_j_per_1k_range)
        )
        return out

    @staticmethod
    def from_cost(
        batch_size: int, cost: WorkloadCost, background_load: float, seed: int = 0
    ) -> InferenceCost:
        """Summarise one workload's repeats: median, widened bootstrap interval, meter bounds."""
        est = widen(cost.estimate(seed), background_load)
        return InferenceCost(
            batch_size=batch_size,
            predictions=cost.predictions,
            energy_j_per_1k=est.median,
            latency_s_per_1k=bootstrap_median(cost.wall_s_per_1k, seed=seed).median,
            energy_j_per_1k_low=est.low * cost.bound_low,
            energy_j_per_1k_high=est.high * cost.bound_high,
            spread_low_j_per_1k=est.low,
            spread_high_j_per_1k=est.high,
            cpu_s_per_1k=bootstrap_median(cost.cpu_s_per_1k, seed=seed).median,
            repeats=est.n,
            method=cost.method,
            energy_j_per_1k_range=(min(cost.energy_j_per_1k), max(cost.energy_j_per_1k)),
        )


@dataclasses.dataclass(frozen=True)
class Quality:
    """What a candidate is, independent of the machine: accuracy, size, FLOPs."""

    accuracy: float
    parameters: int
    size_bytes: int
    flops: int
    precision_weighted_flops: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Everything measured about one candidate: its quality and its inference cost."""

    quality: Quality
    batch1: InferenceCost
    serving: InferenceCost

    @property
    def accuracy(self) -> float:
        return self.quality.accuracy

    @property
    def parameters(self) -> int:
        return self.quality.parameters

    @property
    def size_bytes(self) -> int:
        return self.quality.size_bytes

    @property
    def flops(self) -> int:
        return self.quality.flops

    @property
    def precision_weighted_flops(self) -> float:
        return self.quality.precision_weighted_flops

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.quality.to_dict(),
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


def assess(candidate: Candidate, test_loader: Any, pool: torch.Tensor) -> Quality:
    """Accuracy (fraction), parameters, bytes on disk and FLOPs of a candidate."""
    from greenforge.forge.training import accuracy

    model = candidate.model
    flops = count_flops(model, pool)
    weight = PRECISION_WEIGHT.get(candidate.precision, candidate.flops_weight)
    return Quality(
        accuracy=accuracy(model, test_loader),
        parameters=count_parameters(model),
        size_bytes=size_on_disk(model),
        flops=flops,
        precision_weighted_flops=flops * weight,
    )


def predict_workload(key: str, model: Any, pool: torch.Tensor, batch_size: int) -> Workload:
    """A workload predicting ``batch_size`` rows of ``pool`` per unit (cycling through it)."""
    if isinstance(model, nn.Module):
        model.eval()
    if pool.shape[0] < batch_size:
        reps = -(-batch_size // pool.shape[0])
        pool = pool.repeat(reps, *([1] * (pool.dim() - 1)))
    batches = [pool[i : i + batch_size] for i in range(0, pool.shape[0], batch_size)]
    batches = [b.contiguous() for b in batches if b.shape[0] == batch_size] or [pool[:batch_size]]
    state = {"i": 0}

    def run(units: int) -> int:
        i = state["i"]
        with torch.inference_mode():
            for j in range(units):
                model(batches[(i + j) % len(batches)])
        state["i"] = (i + units) % len(batches)
        return units * batch_size

    return Workload(key, run)


@dataclasses.dataclass(frozen=True)
class ServingRun:
    """Inference costs of every model at every batch size, and how the measurement went."""

    costs: dict[tuple[str, int], InferenceCost]
    run: InterleavedRun
    noise: NoiseReport


def measure_serving(
    models: Mapping[str, Any],
    pool: torch.Tensor,
    batch_sizes: Sequence[int],
    attribution: Attribution,
    *,
    threads: int,
    config: ProtocolConfig = ProtocolConfig(),
    probe: LoadProbe | None = None,
    idle_probe_s: float = 0.5,
) -> ServingRun:
    """Measure every model at every batch size together (interleaved), under ``threads`` torch
    threads (ONNX models must already have sessions with ``threads``). Returns per-1k costs
    with intervals, widened when the background load is above the busy threshold."""
    probe = probe if probe is not None else LoadProbe()
    before = probe.idle_sample(idle_probe_s) if idle_probe_s > 0 else 0.0
    workloads = [
        predict_workload(f"{name}@b{bs}", model, pool, bs)
        for name, model in models.items()
        for bs in dict.fromkeys(batch_sizes)
    ]
    with thread_limit(threads):
        run = measure_interleaved(workloads, attribution, config, probe=probe)
    load = max(before, run.background_load)
    busy = load > BUSY_LOAD
    factor = 1.0 + BUSY_WIDEN * min(load, 1.0) if busy else 1.0
    note = (
        f"the machine was busy: other processes used {load:.0%} of its CPU time while the forge "
        f"measured; intervals widened x{factor:.2g}. The figures are this process's own CPU "
        "time, so they stay comparable, but repeat on a quiet machine for a precise number."
        if busy
        else f"background load {load:.0%} of the CPU time (quiet)"
    )
    noise = NoiseReport(
        background_load=load,
        busy=busy,
        note=note,
        before_load=before,
        during_load=run.background_load,
        widen_factor=factor,
    )
    costs = {
        (name, bs): InferenceCost.from_cost(bs, run.costs[f"{name}@b{bs}"], load, config.seed)
        for name in models
        for bs in dict.fromkeys(batch_sizes)
    }
    return ServingRun(costs, run, noise)
