"""What a forge search produced: typed results, shared by the search and its outputs.

:class:`ForgeResult` holds every :class:`CandidateResult`, the serving spec every candidate was
measured under (:class:`ServingSpec`), the machine's background load (:class:`NoiseReport`), the
decision with its tie-break (:class:`Decision`), the headline ratio with its interval
(:class:`Headline`) and the search's own cost (:class:`SearchSummary`). ``to_dict()`` is the
``forge.json`` document (schema :data:`SCHEMA_VERSION`).

Interval conventions (grams CO2e):

- ``*_low``/``*_high``: measurement spread (bootstrap 95 % of the median, widened when the
  machine was busy) *and* the meter's bounds (per-core power curve low/high).
- ``*_spread_low``/``*_spread_high``: measurement spread only. Decisions and ratios between
  candidates use these: every candidate is measured with the same meter, so its bound cancels.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from greenforge.forge.candidate import Candidate
    from greenforge.forge.datasets import TaskData
    from greenforge.forge.evaluate import Evaluation, Quality
    from greenforge.forge.task import ForgeTask

SCHEMA_VERSION = 2
Status = Literal["running", "chosen", "no-candidate", "failed"]


@dataclasses.dataclass(frozen=True)
class ServingSpec:
    """How every candidate is served while measured: runtimes, threads, batch sizes."""

    runtimes: tuple[str, ...] = ("native", "onnxruntime")
    """``native``: each candidate in the runtime it was made for; ``onnxruntime``: fp32 torch
    candidates are also exported to ONNX Runtime (``<name>+onnx``)."""
    threads: int = 1
    batch_sizes: tuple[int, ...] = (1, 64)
    skipped: tuple[str, ...] = ()
    """Exports not made, with the reason (e.g. bf16 in ONNX Runtime)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtimes": list(self.runtimes),
            "threads": self.threads,
            "batch_sizes": list(self.batch_sizes),
            "skipped": list(self.skipped),
        }


@dataclasses.dataclass(frozen=True)
class ProtocolReport:
    """How the interleaved inference measurement went."""

    rounds: int = 0
    stopped: str = ""
    wall_s: float = 0.0
    repeat_s: float = 0.0
    warmup_s: float = 0.0
    """Unmeasured warm-up before every repeat (CPU seconds, at least one unit; 0 = none)."""
    budget_s: float = 0.0
    rule: str = ""
    control_of: str | None = None
    """The candidate measured twice, as two independent copies, to check the protocol."""
    single_shot_rel_low: float = 0.0
    single_shot_rel_high: float = 0.0
    """How far one measurement of a step may fall below/above its typical value (fractions):
    the 2.5th/97.5th percentiles of every repeat relative to its workload's median (measured
    under the machine's load at the time, so not widened again). Training and conversion steps are measured once, so their CO2e
    carries this spread in the decision intervals and the headline."""
    control_spread: float | None = None
    """Largest relative difference between the two copies' median J/1k over the batch sizes
    (0.03 = 3 %); above :data:`CONTROL_TOLERANCE` the figures are not reliable to that level."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class NoiseReport:
    """The machine's background load while the forge measured (0..1 of the other CPU time)."""

    background_load: float = 0.0
    """Max of the load before and during the inference measurement."""
    busy: bool = False
    note: str = ""
    before_load: float = 0.0
    during_load: float = 0.0
    widen_factor: float = 1.0
    """Measurement half-widths were multiplied by this (1 when not busy)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Decision:
    """Whether the best candidates were within measurement noise, and the tie-break applied."""

    within_noise: bool = False
    tie_break: str | None = None
    contenders: tuple[str, ...] = ()
    """The chosen candidate and those whose interval overlaps the best one's."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "within_noise": self.within_noise,
            "tie_break": self.tie_break,
            "contenders": list(self.contenders),
        }


@dataclasses.dataclass(frozen=True)
class Headline:
    """Baseline lifetime CO2e / chosen lifetime CO2e, with its measurement interval."""

    ratio: float
    ratio_low: float
    ratio_high: float
    same_runtime: bool
    runtime_note: str
    runtime_factor: float | None = None
    """baseline (its runtime) / ``baseline+onnx`` lifetime: what the runtime alone saved."""
    compression_factor: float | None = None
    """Same-runtime baseline / chosen lifetime: what compression saved."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SearchStep:
    """One measured step of the search (training, conversion)."""

    label: str
    energy_j: float
    co2e_g: float
    duration_s: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


MEASUREMENT_STEP = "measure:inference"
MEASUREMENT_NOTE = (
    "the interleaved inference measurement's own CO2e is part of total_co2e_g and, like every "
    "other step of the search, charged to the chosen model's search share: deciding which "
    "model to serve is part of what making it cost (measure_budget_s caps it)"
)
CONTROL_SUFFIX = "~control"
"""Key of the baseline's independent copy in the interleaved measurement (not a candidate)."""
CONTROL_TOLERANCE = 0.10
"""Two copies of the same model must measure within 10 % of each other."""
SEARCH_NOTE = (
    "every training and conversion step and the inference measurement are metered with the "
    "attribution named (energy_basis says whether the figures are hardware readings or "
    "model:* estimates); unmeasured_s is the wall time outside those (data loading, accuracy "
    "evaluation, bookkeeping)"
)


@dataclasses.dataclass(frozen=True)
class SearchSummary:
    """The search's own measured cost, all of it charged to the chosen model (its search share);
    the inference measurement's part is also shown apart (``measurement_co2e_g``, see
    :data:`MEASUREMENT_NOTE`)."""

    total_energy_j: float = 0.0
    total_energy_low_j: float = 0.0
    total_energy_high_j: float = 0.0
    total_co2e_g: float = 0.0
    measured_s: float = 0.0
    wall_s: float = 0.0
    unmeasured_s: float = 0.0
    methods: str = ""
    energy_basis: str = "unmeasured"
    intensity_source: str = ""
    steps: tuple[SearchStep, ...] = ()
    note: str = SEARCH_NOTE
    measurement_energy_j: float = 0.0
    measurement_co2e_g: float = 0.0
    """The interleaved inference measurement's own CO2e (part of ``total_co2e_g``)."""
    measurement_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["steps"] = [s.to_dict() for s in self.steps]
        return out


@dataclasses.dataclass
class CandidateResult:
    """A candidate with its evaluation and accounting (grams CO2e; see the module docstring)."""

    candidate: Candidate
    evaluation: Evaluation | None = None
    lineage: tuple[str, ...] = ()
    train_co2e_g: float = 0.0
    inference_co2e_g_per_1k: float = float("nan")
    inference_co2e_g_per_1k_low: float = float("nan")
    inference_co2e_g_per_1k_high: float = float("nan")
    search_share_co2e_g: float = 0.0
    lifetime_co2e_g: float = float("nan")
    """Training lineage + search share + expected inferences (the chosen model carries the
    search share; the ranking basis is ``lifetime_co2e_g - search_share_co2e_g``)."""
    lifetime_co2e_low_g: float = float("nan")
    """Bounds of the lifetime *without* the search share (measurement spread + meter bounds)."""
    lifetime_co2e_high_g: float = float("nan")
    lifetime_co2e_spread_low_g: float = float("nan")
    """Bounds of the lifetime without the search share, measurement spread only."""
    lifetime_co2e_spread_high_g: float = float("nan")
    meets_target: bool = False
    below_target: bool = False
    """Evaluated and below the accuracy target."""
    pareto: bool = False
    error: str | None = None
    quality: Quality | None = None
    """Accuracy, size and FLOPs (known before the inference measurement)."""

    @property
    def name(self) -> str:
        return self.candidate.name

    @property
    def accuracy(self) -> float:
        """Test accuracy (fraction), NaN before evaluation."""
        if self.evaluation is not None:
            return self.evaluation.accuracy
        return float("nan") if self.quality is None else self.quality.accuracy

    @property
    def ranking_co2e_g(self) -> float:
        """Lifetime CO2e without the search share (g): what candidates are compared on."""
        return self.lifetime_co2e_g - self.search_share_co2e_g

    def to_dict(self, expected_inferences: int) -> dict[str, Any]:
        c = self.candidate
        out: dict[str, Any] = {
            "name": c.name,
            "recipe": c.recipe,
            "config": dict(c.config),
            "parent": c.parent,
            "lineage": list(self.lineage),
            "precision": c.precision,
            "runtime": c.runtime,
            "notes": list(c.notes),
            "epochs_run": c.epochs_run,
            "val_accuracy": c.val_accuracy,
            "accuracy": self.accuracy,
            "own_train": None if c.train is None else c.train.to_dict(),
            "own_train_co2e_g": c.train_co2e_g,
            "train_co2e_g": self.train_co2e_g,
            "inference_co2e_g_per_1k": self.inference_co2e_g_per_1k,
            "inference_co2e_g_per_1k_low": self.inference_co2e_g_per_1k_low,
            "inference_co2e_g_per_1k_high": self.inference_co2e_g_per_1k_high,
            "inference_lifetime_co2e_g": expected_inferences
            / 1000.0
            * self.inference_co2e_g_per_1k,
            "search_share_co2e_g": self.search_share_co2e_g,
            "lifetime_co2e_g": self.lifetime_co2e_g,
            "lifetime_co2e_low_g": self.lifetime_co2e_low_g,
            "lifetime_co2e_high_g": self.lifetime_co2e_high_g,
            "lifetime_co2e_spread_low_g": self.lifetime_co2e_spread_low_g,
            "lifetime_co2e_spread_high_g": self.lifetime_co2e_spread_high_g,
            "meets_target": self.meets_target,
            "below_target": self.below_target,
            "pareto": self.pareto,
            "error": self.error,
        }
        if self.quality is not None:
            out.update(self.quality.to_dict())
        if self.evaluation is not None:
            out.update(self.evaluation.to_dict())
            out["inference_energy_j_per_1k"] = self.evaluation.serving.energy_j_per_1k
            out["latency_s_per_1k"] = self.evaluation.serving.latency_s_per_1k
        return out


def _ratio(a: float, b: float) -> float:
    if b > 0:
        return a / b
    return math.inf if a > 0 else math.nan


@dataclasses.dataclass
class ForgeResult:
    """The outcome of a search."""

    task: ForgeTask
    data: TaskData
    results: list[CandidateResult]
    status: Status
    target_accuracy: float | None
    chosen: str | None
    reason: str
    closest: list[str]
    deploy_zone: str
    deploy_intensity_g_per_kwh: float
    deploy_intensity_source: str
    pue: float
    search: SearchSummary
    out_dir: Path | None
    executor: str
    failures: list[dict[str, str]]
    files: dict[str, str] = dataclasses.field(default_factory=dict)
    training_zone: str | None = None
    """Where the search ran (its training CO2e uses this zone's intensity)."""
    pue_source: str = "default:local-machine"
    training_intensity_g_per_kwh: float = float("nan")
    training_intensity_source: str = ""
    serving: ServingSpec = dataclasses.field(default_factory=ServingSpec)
    training_threads: int = 1
    attribution: str = "process"
    attribution_method: str = ""
    attribution_provenance: str = ""
    warnings: list[str] = dataclasses.field(default_factory=list)
    noise: NoiseReport = dataclasses.field(default_factory=NoiseReport)
    protocol: ProtocolReport = dataclasses.field(default_factory=ProtocolReport)
    decision: Decision = dataclasses.field(default_factory=Decision)
    headline: Headline | None = None

    def result(self, name: str) -> CandidateResult:
        """The candidate result called ``name`` (KeyError when there is none)."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def find(self, name: str) -> CandidateResult | None:
        """The candidate result called ``name``, or ``None``."""
        return next((r for r in self.results if r.name == name), None)

    @property
    def baseline(self) -> CandidateResult | None:
        return self.find("baseline")

    def baseline_lifetime_g(self, r: CandidateResult) -> float:
        """Training lineage + expected inferences of ``r`` (no search share), grams."""
        return r.train_co2e_g + self.task.spec.expected_inferences / 1000.0 * (
            r.inference_co2e_g_per_1k
        )

    def comparison(self) -> dict[str, Any]:
        """Chosen (with the whole search charged to it) vs the fp32 baseline alone, with the
        runtime's share ("baseline" -> "baseline+onnx") kept apart from compression's."""
        base = self.baseline
        out: dict[str, Any] = {}
        if base is None or base.evaluation is None:
            return out
        out["baseline_lifetime_co2e_g"] = self.baseline_lifetime_g(base)
        out["baseline_accuracy"] = base.accuracy
        out["baseline_runtime"] = base.candidate.runtime
        onnx = self.find("baseline+onnx")
        if onnx is not None and onnx.evaluation is not None:
            out["baseline_onnx_lifetime_co2e_g"] = self.baseline_lifetime_g(onnx)
            out["runtime_saving_factor"] = _ratio(
                out["baseline_lifetime_co2e_g"], out["baseline_onnx_lifetime_co2e_g"]
            )
        if self.chosen is not None:
            ch = self.result(self.chosen)
            out["chosen_runtime"] = ch.candidate.runtime
            out["same_runtime"] = ch.candidate.runtime == base.candidate.runtime
            out["chosen_lifetime_co2e_g"] = ch.lifetime_co2e_g
            out["lifetime_reduction_factor"] = _ratio(
                out["baseline_lifetime_co2e_g"], ch.lifetime_co2e_g
            )
            same = base if out["same_runtime"] else onnx
            if same is not None and same.evaluation is not None:
                out["compression_baseline"] = same.name
                out["compression_saving_factor"] = _ratio(
                    self.baseline_lifetime_g(same), ch.lifetime_co2e_g
                )
            out["accuracy_loss_points"] = 100.0 * (base.accuracy - ch.accuracy)
        int8 = [
            r
            for r in self.results
            if r.evaluation is not None
            and r.candidate.precision.startswith("int8")
            and r.candidate.parent == "baseline"
        ]
        if int8 and base.evaluation is not None:
            q = int8[0]
            assert q.evaluation is not None
            out["int8_candidate"] = q.name
            out["int8_runtime"] = q.candidate.runtime
            out["int8_speedup_batch1"] = _ratio(
                base.evaluation.batch1.latency_s_per_1k, q.evaluation.batch1.latency_s_per_1k
            )
            out["int8_speedup_serving"] = _ratio(
                base.evaluation.serving.latency_s_per_1k, q.evaluation.serving.latency_s_per_1k
            )
            if q.candidate.runtime != base.candidate.runtime:
                out["int8_speedup_note"] = (
                    f"baseline runs in {base.candidate.runtime}, {q.name} in "
                    f"{q.candidate.runtime}: the speed-up includes the runtime's"
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``forge.json`` document."""
        spec = self.task.spec
        return {
            "schema": SCHEMA_VERSION,
            "status": self.status,
            "task": {
                "name": spec.name,
                "target_accuracy": spec.target_accuracy,
                "tolerance": spec.tolerance,
                "expected_inferences": spec.expected_inferences,
                "serving_batch_size": spec.serving_batch_size,
                "serving_threads": spec.serving_threads,
                "serving_runtimes": list(spec.serving_runtimes),
                "training_threads": spec.training_threads,
                "measure_budget_s": spec.measure_budget_s,
                "epochs": spec.epochs,
                "batch_size": spec.batch_size,
                "lr": spec.lr,
                "seed": spec.seed,
                "architecture": spec.architecture,
                "architecture_options": {
                    k: list(v) if isinstance(v, tuple) else v
                    for k, v in spec.architecture_options.items()
                },
                "recipes": [r.to_dict() for r in self.task.recipes],
            },
            "data": {
                "name": self.data.name,
                "source": self.data.source,
                "num_classes": self.data.num_classes,
                "input_shape": list(self.data.input_shape),
                "train": len(self.data.train),  # type: ignore[arg-type]
                "val": len(self.data.val),  # type: ignore[arg-type]
                "test": len(self.data.test),  # type: ignore[arg-type]
            },
            "target_accuracy": self.target_accuracy,
            "deployment": {
                "zone": self.deploy_zone,
                "intensity_g_per_kwh": self.deploy_intensity_g_per_kwh,
                "intensity_source": self.deploy_intensity_source,
                "pue": self.pue,
                "pue_source": self.pue_source,
                "expected_inferences": spec.expected_inferences,
                "serving_batch_size": spec.serving_batch_size,
            },
            "training": {
                "zone": self.training_zone,
                "intensity_g_per_kwh": self.training_intensity_g_per_kwh,
                "intensity_source": self.training_intensity_source,
                "threads": self.training_threads,
            },
            "serving": self.serving.to_dict(),
            "attribution": {
                "name": self.attribution,
                "method": self.attribution_method,
                "provenance": self.attribution_provenance,
            },
            "warnings": list(self.warnings),
            "noise": self.noise.to_dict(),
            "protocol": self.protocol.to_dict(),
            "accounting": (
                "lifetime_co2e_g = train_co2e_g (the candidate's and its ancestors' measured "
                "training/conversion) + search_share_co2e_g (the rest of the search, charged to "
                "the chosen model only) + expected_inferences/1000 x inference_co2e_g_per_1k "
                "(median of interleaved repeats at the serving batch size and serving threads, "
                "deployment-zone intensity); lifetime_co2e_low_g/high_g bound the lifetime "
                "without the search share (measurement spread and meter bounds); "
                "*_spread_* is the measurement spread only, used for decisions and ratios"
            ),
            "baseline": "baseline",
            "chosen": self.chosen,
            "reason": self.reason,
            "closest": self.closest,
            "decision": self.decision.to_dict(),
            "headline": None if self.headline is None else self.headline.to_dict(),
            "candidates": [r.to_dict(spec.expected_inferences) for r in self.results],
            "failures": self.failures,
            "search": self.search.to_dict(),
            "comparison": self.comparison(),
            "executor": self.executor,
            "machine": machine_description(),
            "files": self.files,
        }


def machine_description() -> str:
    """CPU model and logical CPU count (for the model card's hardware_used)."""
    from greenforge.hardware.cpuinfo import read_cpuinfo

    cpu = read_cpuinfo()
    return f"{cpu.model_name} ({cpu.logical_cpus} logical CPUs)"
