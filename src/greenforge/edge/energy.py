"""Energy per inference: measured on this CPU (ONNX Runtime, the forge protocol) and modelled
for device profiles from published figures.

**Measured here** (:func:`measure_exports`): every exported ONNX file is served by ONNX Runtime
with the forge's serving options (:func:`greenforge.forge.protocol.ort_session_options`:
``threads`` intra-op threads, one inter-op thread, no spinning) and measured with the forge
protocol (:func:`greenforge.forge.evaluate.measure_serving`: interleaved fixed-work repeats,
a discarded warm-up round, the process's own attribution, a seeded bootstrap 95 % interval,
widened when the machine is busy). A reference workload - a 64x256x256 fp32 matrix multiply in
the same runtime and threads - is measured in the same rounds.

**Modelled for a device** (:func:`device_energy`), always labelled ``model:``:

    utilisation u  = (model FLOPs per CPU-second here) / (reference GEMM FLOPs per CPU-second here)
    time t         = FLOPs / (u x device sustained GFLOPS (int8: GOPS)) + per-call overhead
    energy         = t x device power while busy (dedicated device: load - idle, the idle power
                     is charged per day; shared device: load)

``u`` says how far a small model falls short of the hardware's sustained matrix-multiply rate
(memory traffic, per-layer overhead); it is measured here and assumed to carry over to the
device within a factor :data:`UTILISATION_SPREAD` either way. The device's GFLOPS and power
bounds come from :mod:`greenforge.edge.devices`; the bounds combine every low with every low.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from greenforge.edge.devices import Bound, DeviceProfile
from greenforge.errors import ConfigError, DataError

GEMM_ROWS = 64
GEMM_DIM = 256
GEMM_FLOPS = 2 * GEMM_ROWS * GEMM_DIM * GEMM_DIM
"""FLOPs of one reference matrix multiply (2 per multiply-accumulate)."""
GEMM_KEY = "~gemm-reference"
UTILISATION_SPREAD = 2.0
"""The measured utilisation is assumed to hold on a device within this factor either way."""
MODEL_METHOD = (
    "model:flops/(utilisation x device sustained rate) x device power "
    "(utilisation measured here against a reference GEMM)"
)


@dataclasses.dataclass(frozen=True)
class HostMeasurement:
    """One exported model measured on this CPU (per inference: J and s)."""

    candidate: str
    path: Path
    kind: str
    batch_size: int
    threads: int
    energy_j: float
    energy_low_j: float
    energy_high_j: float
    """Bootstrap 95 % interval (widened when busy) x the attribution's bounds."""
    cpu_s: float
    latency_s: float
    repeats: int
    method: str
    flops: int | None
    utilisation: float | None
    """Model FLOPs per CPU-second / reference GEMM FLOPs per CPU-second (both measured here)."""

    @property
    def ops_per_j(self) -> float | None:
        """FLOPs per joule on this CPU (measured energy)."""
        if not self.flops or self.energy_j <= 0:
            return None
        return self.flops / self.energy_j

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["path"] = str(self.path)
        out["ops_per_j"] = self.ops_per_j
        out["basis"] = "measured"
        return out


@dataclasses.dataclass(frozen=True)
class HostBench:
    """Every exported model measured together, with the reference GEMM and the noise."""

    measurements: tuple[HostMeasurement, ...]
    gemm_flops_per_cpu_s: float
    gemm_ops_per_j: float
    attribution: str
    provenance: str
    rounds: int
    stopped: str
    noise: str
    busy: bool

    def get(self, candidate: str) -> HostMeasurement:
        for m in self.measurements:
            if m.candidate == candidate:
                return m
        raise KeyError(candidate)

    def to_dict(self) -> dict[str, Any]:
        return {
            "measurements": [m.to_dict() for m in self.measurements],
            "gemm_reference": {
                "flops": GEMM_FLOPS,
                "flops_per_cpu_s": self.gemm_flops_per_cpu_s,
                "ops_per_j": self.gemm_ops_per_j,
            },
            "attribution": self.attribution,
            "provenance": self.provenance,
            "rounds": self.rounds,
            "stopped": self.stopped,
            "noise": self.noise,
            "busy": self.busy,
        }


class _Gemm:
    """The reference workload: one fixed 64x256 @ 256x256 fp32 MatMul per call, in ONNX
    Runtime with the serving options (the input batch is ignored)."""

    def __init__(self, threads: int) -> None:
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        from greenforge.forge.protocol import ort_session_options

        rng = np.random.default_rng(0)
        w = numpy_helper.from_array(
            rng.standard_normal((GEMM_DIM, GEMM_DIM)).astype(np.float32), "w"
        )
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "w"], ["y"])],
            "gemm",
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, [GEMM_ROWS, GEMM_DIM])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [GEMM_ROWS, GEMM_DIM])],
            [w],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        self.session = ort.InferenceSession(
            model.SerializeToString(),
            ort_session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        self.a = rng.standard_normal((GEMM_ROWS, GEMM_DIM)).astype(np.float32)

    def __call__(self, x: Any) -> Any:
        return self.session.run(None, {"a": self.a})[0]


def _synthetic_pool(input_shape: Sequence[int], rows: int = 256) -> Any:
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.standard_normal((rows, *input_shape)).astype(np.float32))


def _synthetic_token_pool(input_shape: Sequence[int], vocab: int, rows: int = 256) -> Any:
    """Seeded random token ids (as float32: the ONNX model casts them to int64) for a text
    model's graph."""
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    ids = rng.integers(1, vocab, size=(rows, *input_shape))
    return torch.from_numpy(ids.astype(np.float32))


def measure_exports(
    files: Mapping[str, Path],
    *,
    settings: Any,
    threads: int = 1,
    batch_size: int = 1,
    budget_s: float = 3.0,
    inputs: Any | None = None,
    meters: Sequence[Any] | None = None,
    idle_probe_s: float = 0.2,
) -> HostBench:
    """Measures every ONNX file (``{candidate: path}``) on this CPU with the forge protocol at
    ``batch_size`` and ``threads``, with the reference GEMM in the same rounds; ``budget_s``
    CPU seconds at most (the protocol's minimum rounds always run). ``meters``: injected meters
    (tests); else the forge's attribution for this machine."""
    import torch

    from greenforge.edge.export import read_metadata
    from greenforge.forge.evaluate import measure_serving
    from greenforge.forge.onnx import OnnxModel
    from greenforge.forge.protocol import ProtocolConfig, select_attribution

    if not files:
        raise ConfigError("nothing to measure: export a candidate first (greenforge edge export).")
    if isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch size {batch_size!r} must be an integer >= 1.")
    if not (math.isfinite(budget_s) and budget_s > 0):
        raise ConfigError(f"measurement budget {budget_s!r} must be > 0 CPU seconds.")
    models: dict[str, Any] = {}
    meta: dict[str, dict[str, str]] = {}
    shape: tuple[int, ...] | None = None
    vocab: int | None = None
    for name, path in files.items():
        meta[name] = read_metadata(Path(path))
        models[name] = OnnxModel(Path(path), threads=threads)
        raw = meta[name].get("greenforge_input_shape")
        if raw and shape is None:
            import json

            shape = tuple(int(d) for d in json.loads(raw)[1:])
        if meta[name].get("greenforge_input_dtype") == "int64":
            vocab = int(meta[name].get("greenforge_vocab_size") or 2)
    if inputs is not None:
        pool = torch.as_tensor(inputs).float()
    elif shape is not None:
        pool = _synthetic_pool(shape) if vocab is None else _synthetic_token_pool(shape, vocab)
    else:
        raise DataError("the ONNX files carry no greenforge_input_shape: pass inputs.")
    models[GEMM_KEY] = _Gemm(threads)
    attribution = select_attribution(settings, meters)
    config = ProtocolConfig(budget_s=budget_s, wall_limit_s=max(4 * budget_s, 5.0))
    run = measure_serving(
        models,
        pool,
        [batch_size],
        attribution,
        threads=threads,
        config=config,
        idle_probe_s=idle_probe_s,
    )
    gemm = run.costs[(GEMM_KEY, batch_size)]
    gemm_cpu_s_per_call = gemm.cpu_s_per_1k / 1000.0 * batch_size
    gemm_rate = GEMM_FLOPS / gemm_cpu_s_per_call if gemm_cpu_s_per_call > 0 else math.inf
    gemm_j_per_call = gemm.energy_j_per_1k / 1000.0 * batch_size
    gemm_ops_per_j = GEMM_FLOPS / gemm_j_per_call if gemm_j_per_call > 0 else math.inf
    out: list[HostMeasurement] = []
    for name, path in files.items():
        cost = run.costs[(name, batch_size)]
        flops_text = meta[name].get("greenforge_flops", "")
        flops = int(flops_text) if flops_text.isdigit() else None
        cpu_s = cost.cpu_s_per_1k / 1000.0
        util = None
        if flops and cpu_s > 0 and math.isfinite(gemm_rate):
            util = (flops / cpu_s) / gemm_rate
        out.append(
            HostMeasurement(
                candidate=name,
                path=Path(path),
                kind=meta[name].get("greenforge_kind", ""),
                batch_size=batch_size,
                threads=threads,
                energy_j=cost.energy_j_per_1k / 1000.0,
                energy_low_j=cost.energy_j_per_1k_low / 1000.0,
                energy_high_j=cost.energy_j_per_1k_high / 1000.0,
                cpu_s=cpu_s,
                latency_s=cost.latency_s_per_1k / 1000.0,
                repeats=cost.repeats,
                method=cost.method,
                flops=flops,
                utilisation=util,
            )
        )
    return HostBench(
        measurements=tuple(out),
        gemm_flops_per_cpu_s=gemm_rate,
        gemm_ops_per_j=gemm_ops_per_j,
        attribution=attribution.name,
        provenance=attribution.provenance,
        rounds=run.run.rounds,
        stopped=run.run.stopped,
        noise=run.noise.note,
        busy=run.noise.busy,
    )


# --------------------------------------------------------------------------- devices


@dataclasses.dataclass(frozen=True)
class DeviceEstimate:
    """Modelled time and energy of one inference on a device (never measured)."""

    device: str
    label: str
    rate: str
    """``fp32`` or ``int8``: which sustained rate of the profile applies."""
    utilisation: Bound
    time_s: Bound
    energy_j: Bound
    """Per inference: busy power x time (dedicated devices: above idle)."""
    flops: int
    method: str = MODEL_METHOD

    @property
    def ops_per_j(self) -> float:
        """FLOPs per joule (central figures), modelled."""
        return self.flops / self.energy_j.central if self.energy_j.central > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "label": self.label,
            "rate": self.rate,
            "utilisation": self.utilisation.to_dict(),
            "time_s": self.time_s.to_dict(),
            "energy_j": self.energy_j.to_dict(),
            "flops": self.flops,
            "ops_per_j": self.ops_per_j,
            "method": self.method,
            "basis": "modelled",
        }


def utilisation_bound(utilisation: float) -> Bound:
    """The measured utilisation with the transfer bounds (÷/x :data:`UTILISATION_SPREAD`,
    capped at 1)."""
    if not (math.isfinite(utilisation) and utilisation > 0):
        raise DataError(
            f"utilisation {utilisation!r} must be > 0: the model's FLOPs are unknown or it "
            "was not measured."
        )
    u = min(utilisation, 1.0)
    return Bound(
        u / UTILISATION_SPREAD,
        u,
        min(u * UTILISATION_SPREAD, 1.0),
        f"measured on this CPU, x/÷{UTILISATION_SPREAD:g} when carried to another device",
    )


def device_energy(
    profile: DeviceProfile, flops: int, kind: str, utilisation: float
) -> DeviceEstimate:
    """Modelled time (s) and energy (J) of one inference of a ``flops``-FLOP model of ``kind``
    on ``profile`` (method: module docstring)."""
    if isinstance(flops, bool) or not isinstance(flops, int) or flops <= 0:
        raise DataError(
            f"FLOPs per prediction {flops!r} must be a positive integer to model a device."
        )
    int8 = kind.startswith("int8")
    rate = profile.sustained_gops_int8 if int8 else profile.sustained_gflops_fp32
    u = utilisation_bound(utilisation)
    over = profile.overhead_s
    t = Bound(
        flops / (u.high * rate.high * 1e9) + over.low,
        flops / (u.central * rate.central * 1e9) + over.central,
        flops / (u.low * rate.low * 1e9) + over.high,
        f"FLOPs / (utilisation x {rate.source}) + overhead ({over.source})",
    )
    power = profile.marginal_w if profile.share == "dedicated" else profile.load_w
    e = Bound(
        t.low * power.low,
        t.central * power.central,
        t.high * power.high,
        f"{MODEL_METHOD}; power {power.source}",
    )
    return DeviceEstimate(profile.name, profile.label, "int8" if int8 else "fp32", u, t, e, flops)


__all__ = [
    "GEMM_FLOPS",
    "MODEL_METHOD",
    "UTILISATION_SPREAD",
    "DeviceEstimate",
    "HostBench",
    "HostMeasurement",
    "device_energy",
    "measure_exports",
    "utilisation_bound",
]
