"""What every experiment-tracker integration (MLflow, Weights & Biases) logs, library-free.

One place decides the metric and parameter names and values, so MLflow and W&B show the same
figures under the same names:

- a tracked run (:func:`run_figures`): totals as metrics under ``greenforge/run/...`` (energy
  with low/high, operational CO2e with low/high, embodied CO2e apart, mean intensity, PUE, SCI
  per run, the prediction) and ``greenforge/component/<name>/...`` (energy with low/high and
  CO2e per component), one step per top-level window
  under ``greenforge/window/...`` (step = N for ``epoch-N`` windows, else the window's
  position), and the provenance as ``greenforge.*`` parameters (method, attribution, intensity
  source, zone, PUE, bounds, SCI basis);
- a forge output directory (:func:`forge_figures`): one :class:`CandidateFigures` per evaluated
  candidate (lifetime CO2e with low/high, accuracy, size, energy and SCI per 1k predictions)
  and the search's own figures and provenance.

Names use ``/`` to group metrics (both tools show groups) and ``.`` in parameter keys. The
figures come from the record and ``forge.json`` as they are (SCI through
:mod:`greenforge.report.sci`), never recomputed differently.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from greenforge.errors import ConfigError, DataError, GreenForgeError
from greenforge.records import RunRecord
from greenforge.units import J_PER_KWH

RUN = "greenforge/run/"
COMPONENT = "greenforge/component/"
"""Per-component totals: ``greenforge/component/<name>/energy_j`` ... (a key never doubles as
another key's folder, which MLflow's file store cannot hold)."""
WINDOW = "greenforge/window/"
WINDOW_INDEX = "greenforge/window/index"
"""The x axis of the window metrics (W&B ``define_metric`` step metric)."""
CANDIDATE = "greenforge/"
PARAM = "greenforge."
MAX_PARAM_CHARS = 500
"""Parameter values are cut to this length (MLflow limits them; a reader wants them short)."""
COMPONENT_CO2E_BASIS = (
    "component CO2e = component energy x PUE x the run's energy-weighted mean intensity "
    "(the shares add up to the operational CO2e)"
)
BOUNDS = (
    "low/high: energy = sum of each meter's bounds; operational CO2e = those bounds through the "
    "same PUE and intensity; the embodied share has no bound of its own"
)
LIFETIME_BASIS = (
    "lifetime_co2e_g = training lineage + expected inferences x inference CO2e per prediction, "
    "without the search share (low/high bound it); lifetime_with_search_co2e_g adds the rest "
    "of the search, charged to the chosen model only"
)
_EPOCH = re.compile(r"epoch[\s_-]*(\d+)$", re.IGNORECASE)
_SAFE_KEY = re.compile(r"[^A-Za-z0-9_\-.]")


@dataclasses.dataclass(frozen=True)
class WindowStep:
    """One top-level window as a step: ``metrics`` (J, g, s, W) at ``step``."""

    step: int
    path: str
    end_s: float
    """When the window ended (unix seconds)."""
    metrics: dict[str, float]


@dataclasses.dataclass(frozen=True)
class RunFigures:
    """What a tracker integration logs for one run: totals, provenance and window steps."""

    metrics: dict[str, float]
    """Run and per-component totals (J, kWh, g, g/kWh, s), finite values only."""
    params: dict[str, str]
    """Provenance, ``greenforge.*`` keys, values cut to :data:`MAX_PARAM_CHARS`."""
    steps: tuple[WindowStep, ...]
    """Top-level windows in start order (nested ones are in the record's JSON artefact)."""


@dataclasses.dataclass(frozen=True)
class CandidateFigures:
    """One forge candidate: metrics (g, J, bytes, fraction) and parameters."""

    name: str
    chosen: bool
    metrics: dict[str, float]
    params: dict[str, str]
    record: dict[str, Any]
    """The candidate's entry of ``forge.json``, as it is."""


@dataclasses.dataclass(frozen=True)
class ForgeFigures:
    """A finished forge output directory, as the integrations log it."""

    name: str
    """The task's name."""
    chosen: str | None
    metrics: dict[str, float]
    """The search's totals and the chosen-vs-baseline ratio (g, J, s)."""
    params: dict[str, str]
    candidates: tuple[CandidateFigures, ...]
    files: dict[str, Path]
    """Files of the output directory that exist: ``forge.json``, ``model_card``, ``plot``."""
    model_files: tuple[Path, ...]
    """The chosen model's files (safetensors, ONNX, model.json) that exist."""


def _finite(values: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def _text(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 3] + "..."


def _params(values: Mapping[str, object]) -> dict[str, str]:
    return {PARAM + k: _text(v) for k, v in values.items() if v is not None and v != ""}


def metric_key(text: str) -> str:
    """Returns ``text`` with characters tracker keys refuse replaced by ``_``."""
    return _SAFE_KEY.sub("_", text)


def window_step(path: str, position: int) -> int:
    """Returns the step of a top-level window: N for ``epoch-N``, else ``position`` (1-based)."""
    match = _EPOCH.match(path)
    return int(match.group(1)) if match else position


def run_figures(record: RunRecord) -> RunFigures:
    """Returns the metrics (J, g, s ...), provenance and window steps of a tracked run."""
    from greenforge.report.sci import FunctionalUnit, sci_for_run

    m: dict[str, Any] = {
        "energy_j": record.energy_j,
        "energy_low_j": record.energy_low_j,
        "energy_high_j": record.energy_high_j,
        "energy_kwh": record.energy_kwh,
        "duration_s": record.duration_s,
    }
    per_component: dict[str, Any] = {}
    for c in record.components:
        key = metric_key(c.component)
        per_component[f"{key}/energy_j"] = c.energy_j
        per_component[f"{key}/energy_low_j"] = c.low_j
        per_component[f"{key}/energy_high_j"] = c.high_j
    e = record.emissions
    params: dict[str, object] = {
        "run_id": record.id,
        "name": record.name,
        "status": record.status,
        "started_at": record.started_at,
        "method": ", ".join(f"{c.component}={c.method}" for c in record.components),
        "attribution": record.metadata.get("attribution"),
        "meters": "; ".join(record.meters),
        "bounds": BOUNDS,
    }
    if e is not None:
        m.update(
            {
                "co2e_g": e.co2e_g,
                "co2e_low_g": e.low_g,
                "co2e_high_g": e.high_g,
                "intensity_g_per_kwh": e.mean_intensity_g_per_kwh,
                "pue": e.pue,
            }
        )
        for c in record.components:
            per_component[f"{metric_key(c.component)}/co2e_g"] = (
                c.energy_j * e.pue * e.mean_intensity_g_per_kwh / J_PER_KWH
            )
        sci = sci_for_run(record, FunctionalUnit("run"))
        m.update({"sci_g": sci.sci_g, "sci_low_g": sci.low_g, "sci_high_g": sci.high_g})
        params.update(
            {
                "zone": e.intensity.zone,
                "intensity_source": e.intensity.source,
                "intensity_signal": e.intensity.signal,
                "intensity_basis": e.intensity.basis,
                "intensity_kind": e.intensity.kind,
                "time_resolved": str(e.intensity.time_resolved).lower(),
                "pue": f"{e.pue:g}",
                "pue_source": e.pue_source,
                "component_co2e_basis": COMPONENT_CO2E_BASIS,
                "sci_basis": f"per run: {sci.basis}; {sci.embodied_basis}",
            }
        )
    else:
        params["co2e"] = "none: no grid intensity was known for this run"
    if record.embodied is not None:
        b = record.embodied
        m["embodied_co2e_g"] = b.co2e_g
        params["embodied_source"] = f"{b.device}: {b.source} (reported apart, not added)"
    if record.prediction is not None:
        p = record.prediction
        m.update(
            {
                "predicted_energy_j": p.energy_j,
                "predicted_co2e_g": p.co2e_g,
                "predicted_duration_s": p.duration_s,
            }
        )
        params["prediction"] = f"after {p.windows_seen} of {p.windows_total} windows"
    metrics = {RUN + k: v for k, v in _finite(m).items()}
    metrics.update({COMPONENT + k: v for k, v in _finite(per_component).items()})
    return RunFigures(metrics, _params(params), window_steps(record))


def window_steps(record: RunRecord) -> tuple[WindowStep, ...]:
    """Returns one step per top-level window of ``record`` (J, g, s, W), in start order."""
    top = sorted((w for w in record.windows if "/" not in w.path), key=lambda w: w.start_s)
    steps: list[WindowStep] = []
    for position, w in enumerate(top, start=1):
        values: dict[str, Any] = {
            "energy_j": w.energy_j,
            "co2e_g": w.co2e_g,
            "duration_s": w.duration_s,
            "power_w": w.energy_j / w.duration_s if w.duration_s > 0 else None,
        }
        steps.append(
            WindowStep(
                window_step(w.path, position),
                w.path,
                w.end_s,
                {WINDOW + k: v for k, v in _finite(values).items()},
            )
        )
    return tuple(steps)


# --------------------------------------------------------------------------- forge


def read_forge_json(forge_dir: Path) -> dict[str, Any]:
    """Returns the parsed ``forge.json`` of a forge output directory (DataError if absent)."""
    path = Path(forge_dir) / "forge.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"no forge.json in {forge_dir}: pass the --out directory of a finished "
            "`greenforge forge` run."
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("candidates"), list):
        raise DataError(f"{path} is not a forge.json (no candidates list): rerun the forge.")
    return doc


def _candidate(
    c: Mapping[str, Any], chosen: str | None, sci: Mapping[str, Any]
) -> CandidateFigures:
    name = str(c.get("name"))
    m: dict[str, Any] = {
        k: c.get(k)
        for k in (
            "accuracy",
            "val_accuracy",
            "lifetime_co2e_g",
            "lifetime_co2e_low_g",
            "lifetime_co2e_high_g",
            "train_co2e_g",
            "search_share_co2e_g",
            "inference_co2e_g_per_1k",
            "inference_co2e_g_per_1k_low",
            "inference_co2e_g_per_1k_high",
            "inference_energy_j_per_1k",
            "latency_s_per_1k",
            "size_bytes",
            "parameters",
            "flops",
            "epochs_run",
        )
    }
    share = c.get("search_share_co2e_g")
    life = c.get("lifetime_co2e_g")
    if isinstance(life, int | float) and isinstance(share, int | float) and math.isfinite(share):
        # the ranking basis (and what low/high bound): without the search share, which only
        # the chosen model carries (forge.json's 'accounting')
        m["lifetime_co2e_g"] = life - share
        m["lifetime_with_search_co2e_g"] = life
    score = sci.get(name)
    if score is not None:
        m.update(
            {
                "sci_g_per_1k_predictions": score.sci_g,
                "sci_low_g_per_1k_predictions": score.low_g,
                "sci_high_g_per_1k_predictions": score.high_g,
            }
        )
    params: dict[str, object] = {
        "candidate": name,
        "recipe": c.get("recipe"),
        "precision": c.get("precision"),
        "runtime": c.get("runtime"),
        "parent": c.get("parent"),
        "lineage": " > ".join(str(x) for x in c.get("lineage") or []),
        "config": c.get("config") or None,
        "chosen": str(name == chosen).lower(),
        "pareto": str(bool(c.get("pareto"))).lower(),
        "below_target": str(bool(c.get("below_target"))).lower(),
        "error": c.get("error"),
        "lifetime_basis": LIFETIME_BASIS,
    }
    if score is not None:
        params["sci_basis"] = f"per 1k predictions: {score.basis}; {score.embodied_basis}"
    return CandidateFigures(
        name,
        name == chosen,
        {CANDIDATE + k: v for k, v in _finite(m).items()},
        _params(params),
        dict(c),
    )


def _section(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


def forge_figures(forge_dir: Path) -> ForgeFigures:
    """Returns what the integrations log of a finished forge output directory."""
    from greenforge.report.sci import sci_for_forge

    forge_dir = Path(forge_dir)
    doc = read_forge_json(forge_dir)
    chosen = doc.get("chosen") if isinstance(doc.get("chosen"), str) else None
    sci = sci_for_forge(doc)
    candidates = tuple(
        _candidate(c, chosen, sci)
        for c in doc["candidates"]
        if isinstance(c, Mapping)
        and (c.get("accuracy") is not None or c.get("inference_co2e_g_per_1k") is not None)
    )
    task = _section(doc, "task")
    deploy = _section(doc, "deployment")
    attribution = _section(doc, "attribution")
    search = _section(doc, "search")
    training = _section(doc, "training")
    name = str(task.get("name") or forge_dir.name)
    metrics = {
        CANDIDATE + "search/" + k: v
        for k, v in _finite(
            {
                "co2e_g": search.get("total_co2e_g"),
                "energy_j": search.get("total_energy_j"),
                "wall_s": search.get("wall_s"),
                "target_accuracy": doc.get("target_accuracy"),
                "candidates": len(candidates),
            }
        ).items()
    }
    params = _params(
        {
            "task": name,
            "status": doc.get("status"),
            "chosen": chosen,
            "reason": doc.get("reason"),
            "zone": deploy.get("zone"),
            "intensity_source": deploy.get("intensity_source"),
            "intensity_g_per_kwh": deploy.get("intensity_g_per_kwh"),
            "pue": deploy.get("pue"),
            "pue_source": deploy.get("pue_source"),
            "expected_inferences": deploy.get("expected_inferences"),
            "serving_batch_size": deploy.get("serving_batch_size"),
            "training_zone": training.get("zone"),
            "training_intensity_source": training.get("intensity_source"),
            "attribution": attribution.get("name"),
            "method": attribution.get("method") or search.get("methods"),
            "bounds": "low/high = measurement spread + meter bounds (forge.json 'accounting')",
            "accounting": doc.get("accounting"),
        }
    )
    files: dict[str, Path] = {}
    listed = _section(doc, "files")
    for role, default in (
        ("results", "forge.json"),
        ("model_card", "README.md"),
        ("plot", "pareto.png"),
    ):
        path = forge_dir / str(listed.get(role, default))
        if path.is_file():
            files[role] = path
    model_files = tuple(
        forge_dir / str(listed[role])
        for role in ("safetensors", "onnx", "model_json")
        if role in listed and (forge_dir / str(listed[role])).is_file()
    )
    return ForgeFigures(name, chosen, metrics, params, candidates, files, model_files)


# --------------------------------------------------------------------------- one entry point

TARGETS = ("mlflow", "wandb")


def export_forge(forge_dir: Path, targets: Sequence[str]) -> list[str]:
    """Logs a finished forge output directory to each tracker named in ``targets``
    (``mlflow``, ``wandb``); returns one line per target saying where it went."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ConfigError(
            f"unknown experiment tracker {unknown[0]!r}: use one of {', '.join(TARGETS)}."
        )
    lines: list[str] = []
    for target in TARGETS:
        if target not in targets:
            continue
        module = importlib.import_module(f"greenforge.integrations.{target}")
        try:
            lines.append(module.log_forge(Path(forge_dir)).line())
        except GreenForgeError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"could not log the forge in {forge_dir} to {target} ({type(exc).__name__}: "
                f"{exc}); the results are on disk: fix the {target} set-up and log them with "
                f"greenforge.integrations.{target}.log_forge({str(forge_dir)!r})."
            ) from None
    return lines
