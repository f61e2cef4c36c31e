"""The output directory of a forge search, and the rows and lines a user reads.

- ``forge.json`` - every candidate's figures and provenance (rewritten after every step).
- ``model.safetensors`` (+ ``model.json`` with the architecture and tensor shapes) - the chosen
  model; ``model.onnx`` as well when the chosen model runs in ONNX Runtime.
- ``pareto.png`` - accuracy vs lifetime CO2e with intervals, Pareto front and target
  (:mod:`greenforge.forge.plot`).
- ``README.md`` - a Hugging Face model card with ``co2_eq_emissions`` metadata and the chosen
  model's SCI per 1k predictions (``greenforge_sci``, components and bounds).

Every file is written atomically (a temporary file in the same folder, then renamed) with one
permission policy: created with mode ``0o666`` minus the process umask, like ``touch`` or a
shell redirect (``0644`` under the usual ``022`` umask).

:func:`candidate_rows` and :func:`summary_lines` are the one source of what the model card and
the terminal table show: one basis per column (lifetime CO2e *without* the search share; the
search share in its own column, carried by the chosen model only), intervals as
``12.3 [11.1-13.9]``, the runtime and serving threads as a dimension, and candidates below the
target marked.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenforge import jsonsafe
from greenforge.errors import DataError
from greenforge.forge.result import CONTROL_TOLERANCE

if TYPE_CHECKING:
    from greenforge.forge.context import ForgeContext
    from greenforge.forge.result import CandidateResult, ForgeResult, SearchSummary
    from greenforge.report.sci import SciScore

FILE_MODE = 0o666
"""Mode every output file is created with; the process umask is applied by the OS."""


# --------------------------------------------------------------------------- writing files


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Returns ``path`` after ``write(tmp)`` filled a temporary file that then replaced it.

    The temporary file is created (exclusively, in ``path``'s folder) with :data:`FILE_MODE`
    minus the umask, and that mode is restored after ``write`` (writers that recreate the file
    would otherwise leave their own), so every forge output has the same permissions. Readers
    never see a half-written file; on failure the temporary file is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue
        break
    else:  # pragma: no cover
        raise DataError(f"cannot create a temporary file beside {str(path)!r}.")
    try:
        mode = os.fstat(fd).st_mode & 0o777
        os.close(fd)
        write(tmp)
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Returns ``path`` after writing ``text`` (UTF-8) to it atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, data: Any) -> Path:
    """Returns ``path`` after writing ``data`` as JSON (non-finite floats as ``null``)."""
    text = jsonsafe.dumps(data)
    return write_text_atomic(path, text)


def sci_scores(result: ForgeResult) -> dict[str, SciScore]:
    """Returns each evaluated candidate's SCI (g CO2e per 1k predictions, with its components
    and bounds), keyed by name: :func:`greenforge.report.sci.sci_for_forge` of the result's
    document, so the table, the card, ``forge.json`` and the HTML report show one figure."""
    from greenforge.report.sci import sci_for_forge

    return sci_for_forge(result.to_dict())


def forge_document(result: ForgeResult) -> dict[str, Any]:
    """Returns ``forge.json``'s document: ``result.to_dict()`` and an ``sci`` object,
    ``{candidate: SciScore.to_dict()}`` (per 1k predictions), also printed by ``--json``."""
    from greenforge.report.sci import sci_for_forge

    doc = result.to_dict()
    doc["sci"] = {name: score.to_dict() for name, score in sci_for_forge(doc).items()}
    return doc


def write_forge_json(out_dir: Path, result: ForgeResult) -> Path:
    """Returns the path of ``forge.json`` after writing the result's document
    (:func:`forge_document`) to it."""
    return write_json_atomic(out_dir / "forge.json", forge_document(result))


def save_model(out_dir: Path, model: Any, name: str) -> dict[str, str]:
    """Returns ``{role: file name}`` after saving the chosen model: safetensors (+ ONNX)."""
    from safetensors.torch import save_file
    from torch import nn

    from greenforge.forge.evaluate import torch_module

    files: dict[str, str] = {}
    onnx_path = getattr(model, "path", None)
    if onnx_path is not None and Path(onnx_path).is_file():
        write_atomic(out_dir / "model.onnx", lambda tmp: shutil.copyfile(onnx_path, tmp))
        files["onnx"] = "model.onnx"
    module = torch_module(model)
    if isinstance(module, nn.Module):
        state = {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}
        write_atomic(
            out_dir / "model.safetensors",
            lambda tmp: save_file(state, str(tmp), metadata={"greenforge_candidate": name}),
        )
        files["safetensors"] = "model.safetensors"
        meta = {
            "candidate": name,
            "module": type(module).__name__,
            "repr": repr(module),
            "tensors": {k: list(v.shape) for k, v in state.items()},
            "note": "serve model.onnx with onnxruntime; the safetensors hold the torch weights "
            "it was exported (and, for int8, quantized) from"
            if "onnx" in files
            else "load with safetensors.torch.load_file into a module of this architecture",
        }
        write_json_atomic(out_dir / "model.json", meta)
        files["model_json"] = "model.json"
    return files


# --------------------------------------------------------------------------- what users read


MASS_UNITS: tuple[tuple[str, float], ...] = (
    ("t", 1e6),
    ("kg", 1e3),
    ("g", 1.0),
    ("mg", 1e-3),
    ("µg", 1e-6),
    ("ng", 1e-9),
)
"""Units a column of CO2e masses can be shown in, with grams per unit."""


def mass_unit(values_g: Iterable[float]) -> tuple[str, float]:
    """Returns ``(unit, grams per unit)`` in which the median finite, non-zero value of
    ``values_g`` reads between 1 and 1000 (``("g", 1.0)`` when there is none)."""
    finite = sorted(abs(v) for v in values_g if math.isfinite(v) and v != 0.0)
    if not finite:
        return "g", 1.0
    median = finite[len(finite) // 2]
    for unit, grams in MASS_UNITS:
        if median >= grams:
            return unit, grams
    return MASS_UNITS[-1]


def fmt_g(value: float, per_unit: float = 1.0) -> str:
    """Returns ``value / per_unit`` with 3 significant digits (``1,340`` from 1000 on, no
    exponent below a million); ``-`` when not finite."""
    if not math.isfinite(value):
        return "-"
    v = value / per_unit
    if 1000.0 <= abs(v) < 1e6:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def fmt_interval(value: float, low: float, high: float, per_unit: float = 1.0) -> str:
    """Returns ``"12.3 [11.1-13.9]"`` (each divided by ``per_unit``), or just ``"12.3"`` when
    the bounds are unknown."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return fmt_g(value, per_unit)
    return f"{fmt_g(value, per_unit)} [{fmt_g(low, per_unit)}-{fmt_g(high, per_unit)}]"


@dataclasses.dataclass(frozen=True)
class CandidateRow:
    """One evaluated candidate as the table and the model card show it (grams CO2e)."""

    name: str
    recipe: str
    precision: str
    runtime: str
    threads: int
    accuracy_pct: float
    parameters: int
    mflop: float
    size_kb: float
    train_g: float
    serving_ms_per_1k: float
    inference_g_per_1k: float
    inference_low_g_per_1k: float
    inference_high_g_per_1k: float
    lifetime_g: float
    """Training lineage + expected inferences, without the search share (the ranking basis)."""
    lifetime_low_g: float
    lifetime_high_g: float
    search_share_g: float | None
    """Only the chosen model carries the search share; ``None`` for the others."""
    chosen: bool
    pareto: bool
    below_target: bool
    baseline: bool

    @property
    def flags(self) -> str:
        """``chosen``, ``Pareto`` and ``below target``, as they apply."""
        parts = [
            "chosen" if self.chosen else "",
            "Pareto" if self.pareto else "",
            "below target" if self.below_target else "",
        ]
        return ", ".join(p for p in parts if p)


def candidate_row(result: ForgeResult, r: CandidateResult) -> CandidateRow:
    """Returns the row of an evaluated candidate (``r.evaluation`` must be set)."""
    ev = r.evaluation
    assert ev is not None
    own = r.lifetime_co2e_g - r.search_share_co2e_g
    chosen = r.name == result.chosen
    return CandidateRow(
        name=r.name,
        recipe=r.candidate.recipe,
        precision=r.candidate.precision,
        runtime=r.candidate.runtime,
        threads=result.serving.threads,
        accuracy_pct=100.0 * r.accuracy,
        parameters=int(ev.parameters),
        mflop=ev.flops / 1e6,
        size_kb=ev.size_bytes / 1000.0,
        train_g=r.train_co2e_g,
        serving_ms_per_1k=1000.0 * ev.serving.latency_s_per_1k,
        inference_g_per_1k=r.inference_co2e_g_per_1k,
        inference_low_g_per_1k=r.inference_co2e_g_per_1k_low,
        inference_high_g_per_1k=r.inference_co2e_g_per_1k_high,
        lifetime_g=own,
        lifetime_low_g=r.lifetime_co2e_low_g,
        lifetime_high_g=r.lifetime_co2e_high_g,
        search_share_g=r.search_share_co2e_g if chosen else None,
        chosen=chosen,
        pareto=r.pareto,
        below_target=r.below_target,
        baseline=r.name == "baseline",
    )


def candidate_rows(result: ForgeResult) -> list[CandidateRow]:
    """Returns the rows of every evaluated candidate, in the order they were made."""
    return [candidate_row(result, r) for r in result.results if r.evaluation is not None]


def runtime_label(row: CandidateRow) -> str:
    """Returns ``torch, 1 thr`` / ``onnxruntime, 1 thr``: the runtime a row was served in."""
    return f"{row.runtime}, {row.threads} thr" if row.threads else row.runtime


def search_basis(search: SearchSummary) -> str:
    """Returns ``measured`` / ``modelled`` / ``partly modelled``: how the search was metered."""
    from greenforge.forge.measure import energy_basis

    return search.energy_basis or energy_basis(search.methods)


def versus_baseline(comp: dict[str, Any]) -> str:
    """Returns ``4.1x less lifetime CO2e, 0.89 accuracy points lost`` - or ``1.1x more`` /
    ``gained`` when the chosen model (which carries the whole search) is worse or more accurate."""
    factor = float(comp["lifetime_reduction_factor"])
    if factor >= 1.0:
        co2 = f"{factor:.1f}x less lifetime CO2e"
    else:
        co2 = f"{1.0 / factor:.1f}x MORE lifetime CO2e" if factor > 0 else "more lifetime CO2e"
    loss = float(comp["accuracy_loss_points"])
    acc = f"{loss:.2f} accuracy points lost" if loss >= 0 else f"{-loss:.2f} accuracy points gained"
    return f"{co2}, {acc}"


def headline_line(result: ForgeResult) -> str | None:
    """Returns the headline sentence (baseline / chosen lifetime CO2e with its interval, and
    whether both ran in the same runtime), or ``None`` when there is no chosen model or baseline.
    """
    comp = result.comparison()
    if "lifetime_reduction_factor" not in comp:
        return None
    head = result.headline
    loss = float(comp["accuracy_loss_points"])
    acc = f"{loss:.2f} accuracy points lost" if loss >= 0 else f"{-loss:.2f} accuracy points gained"
    if head is None:
        return f"versus the fp32 baseline (search included): {versus_baseline(comp)}"
    ratio, low, high = float(head.ratio), float(head.ratio_low), float(head.ratio_high)
    interval = f" [{low:.1f}-{high:.1f}]" if math.isfinite(low) and math.isfinite(high) else ""
    if ratio >= 1.0:
        co2 = f"{ratio:.1f}x{interval} less lifetime CO2e"
    else:
        inv = f" [{1 / high:.1f}-{1 / low:.1f}]" if interval and low > 0 and high > 0 else ""
        co2 = f"{1 / ratio:.1f}x{inv} MORE lifetime CO2e" if ratio > 0 else "more lifetime CO2e"
    runtime = "same runtime" if head.same_runtime else "different runtimes"
    note = head.runtime_note.rstrip(".")
    return (
        f"versus the fp32 baseline (search charged to the chosen model): {co2}, {acc} "
        f"({runtime}{': ' + note if note else ''})"
    )


_BUSY_PREFIX = "the machine was busy: "


def summary_lines(result: ForgeResult) -> list[str]:
    """Returns the plain-text lines under the table: serving spec, headline, noise, decision."""
    lines: list[str] = []
    serving = result.serving
    runtimes = ", ".join(serving.runtimes)
    batches = ", ".join(str(b) for b in serving.batch_sizes)
    lines.append(
        f"serving spec: runtimes {runtimes}; {serving.threads} thread(s); batch sizes {batches}; "
        f"training used {result.training_threads} thread(s)"
    )
    if result.attribution_method:
        lines.append(
            f"attribution: {result.attribution} ({result.attribution_method}): each figure is "
            "this process's own share, not the machine's load"
        )
    lines.extend(f"warning: {w}" for w in result.warnings)
    if serving.skipped:
        lines.append("not measured in ONNX Runtime: " + "; ".join(serving.skipped))
    if result.chosen is not None:
        ch = result.result(result.chosen)
        lines.append(
            f"chosen model's lifetime CO2e with the whole search charged to it: "
            f"{fmt_g(ch.lifetime_co2e_g)} g (search share {fmt_g(ch.search_share_co2e_g)} g)"
        )
    noise = result.noise
    if noise.busy:
        note = noise.note.rstrip(".")
        if note.lower().startswith(_BUSY_PREFIX):
            note = note[len(_BUSY_PREFIX) :]
        lines.append(
            "busy machine: "
            + (
                note
                or f"other processes used {100 * noise.background_load:.0f} % of the CPU while "
                "the forge measured; intervals were widened"
            )
        )
    proto = result.protocol
    if proto.control_of is not None and proto.control_spread is not None:
        verdict = (
            "agree"
            if proto.control_spread <= CONTROL_TOLERANCE
            else f"DISAGREE (more than {CONTROL_TOLERANCE:.0%}): treat differences of that size "
            "as noise, or repeat on a quieter machine"
        )
        lines.append(
            f"self-check: two independent copies of {proto.control_of} measured "
            f"{100 * proto.control_spread:.1f} % apart ({verdict})"
        )
    decision = result.decision
    if decision.within_noise:
        others = [c for c in decision.contenders if c != result.chosen]
        lines.append(
            f"within measurement noise: {result.chosen} and {', '.join(others) or 'others'} "
            "have overlapping lifetime CO2e intervals; tie-break: "
            f"{decision.tie_break or 'fewer FLOPs, then smaller size'}"
        )
    head = headline_line(result)
    if head is not None:
        lines.append(head)
    if result.chosen is not None:
        score = sci_scores(result).get(result.chosen)
        if score is not None:
            lines.append(f"chosen model's {sci_line(score)}")
    return lines


def sci_line(score: SciScore) -> str:
    """Returns ``SCI 0.0123 g CO2e per 1k predictions [0.011-0.014] = (E ... kWh x I ... g/kWh
    + M 0 g) / R 1``: the score with its bounds and components (GSF SCI, ISO/IEC 21031)."""
    return (
        f"SCI {fmt_interval(score.sci_g, score.low_g, score.high_g)} g CO2e per {score.unit} "
        f"= (E {score.energy_kwh:.3g} kWh x I {score.intensity_g_per_kwh:.4g} g/kWh + M "
        f"{fmt_g(score.embodied_g)} g) / R {score.r:g}"
    )


# --------------------------------------------------------------------------- the model card


def _card_table(result: ForgeResult) -> list[str]:
    rows = candidate_rows(result)
    inf_u, inf_g = mass_unit(r.inference_g_per_1k for r in rows)
    train_u, train_g = life_u, life_g = share_u, share_g = mass_unit(r.lifetime_g for r in rows)
    lines = [
        f"| candidate | recipe | runtime | precision | test acc. | params | train CO2e ({train_u}) "
        f"| inference CO2e per 1k ({inf_u}) | lifetime CO2e ({life_u}), no search share "
        f"| search share ({share_u}) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = f"**{row.name}** (chosen)" if row.chosen else row.name
        acc = f"{row.accuracy_pct:.2f} %"
        if row.below_target:
            acc += " (below target)"
        per_1k = fmt_interval(
            row.inference_g_per_1k, row.inference_low_g_per_1k, row.inference_high_g_per_1k, inf_g
        )
        life = fmt_interval(row.lifetime_g, row.lifetime_low_g, row.lifetime_high_g, life_g)
        share = "-" if row.search_share_g is None else fmt_g(row.search_share_g, share_g)
        lines.append(
            f"| {name} | {row.recipe} | {runtime_label(row)} | {row.precision} | {acc} "
            f"| {row.parameters:,} | {fmt_g(row.train_g, train_g)} | {per_1k} | {life} "
            f"| {share} |"
        )
    return lines


def _sci_front_matter(result: ForgeResult) -> list[str]:
    """Returns the ``greenforge_sci`` metadata lines: the chosen model's SCI per 1k predictions
    with its components and bounds (none when no model was chosen)."""
    from greenforge.report.sci import SPEC

    score = None if result.chosen is None else sci_scores(result).get(result.chosen)
    if score is None:
        return []
    return [
        "greenforge_sci:",
        f"  candidate: {json.dumps(result.chosen)}",
        f"  functional_unit: {json.dumps(score.unit)}",
        f"  sci_g: {score.sci_g:.6g}",
        f"  low_g: {score.low_g:.6g}",
        f"  high_g: {score.high_g:.6g}",
        f"  energy_kwh: {score.energy_kwh:.6g}",
        f"  intensity_g_per_kwh: {score.intensity_g_per_kwh:.6g}",
        f"  operational_g: {score.operational_g:.6g}",
        f"  embodied_g: {score.embodied_g:.6g}",
        f"  r: {score.r:g}",
        f"  specification: {json.dumps(SPEC)}",
    ]


def _card_sci(result: ForgeResult) -> list[str]:
    """Returns the card's SCI section: every candidate's SCI per 1k predictions."""
    scores = sci_scores(result)
    if not scores:
        return []
    first = next(iter(scores.values()))
    lines = [
        "SCI (Software Carbon Intensity, `(E x I + M) per R`) per 1k predictions, with its "
        "bounds `[low-high]` and components:",
        "",
    ]
    for name, score in scores.items():
        mark = f"**{name}** (chosen)" if name == result.chosen else name
        lines.append(f"- {mark}: {sci_line(score)}")
    lines += ["", f"SCI basis: {first.basis}; {first.embodied_basis}.", ""]
    return lines


def model_card(result: ForgeResult) -> str:
    """Returns a Hugging Face model card (README.md) with ``co2_eq_emissions`` metadata."""
    from greenforge.forge.result import machine_description

    search = result.search
    chosen = None if result.chosen is None else result.result(result.chosen)
    emissions_g = search.total_co2e_g
    methods = search.methods or "unknown"
    intensity_source = search.intensity_source or "unknown"
    types = []
    if chosen is not None:
        for name in chosen.lineage[::-1]:
            cand = next(r for r in result.results if r.name == name).candidate
            types.append(cand.recipe)
    training_type = " -> ".join(types) if types else "search (no model chosen)"
    basis = search_basis(search)
    source = f"GreenForge forge: {basis} with {methods}; intensity {intensity_source}"
    n = result.task.spec.expected_inferences
    lines = [
        "---",
        "library_name: pytorch",
        "tags:",
        "  - greenforge",
        "  - green-ai",
        "co2_eq_emissions:",
        f"  emissions: {emissions_g:.6g}",
        f"  source: {json.dumps(source)}",
        f"  training_type: {json.dumps(training_type)}",
        f"  geographical_location: {json.dumps(result.training_zone or result.deploy_zone)}",
        f"  hardware_used: {json.dumps(machine_description())}",
        *_sci_front_matter(result),
        "---",
        "",
        f"# {result.task.spec.name}: {result.chosen or 'no model met the target'}",
        "",
        f"Forged by GreenForge from {result.data.source}.",
        "",
        f"- Status: **{result.status}** - {result.reason.rstrip('.')}.",
    ]
    if result.target_accuracy is not None:
        lines.append(f"- Target accuracy: {100 * result.target_accuracy:.2f} %.")
    lines += [
        f"- `co2_eq_emissions.emissions` ({emissions_g:.4g} g) is the whole search's {basis} "
        "CO2e (every candidate trained and evaluated), not only the chosen model's own training.",
        f"- Deployment: {n:,} predictions in zone {result.deploy_zone} at "
        f"{result.deploy_intensity_g_per_kwh:.1f} gCO2e/kWh ({result.deploy_intensity_source}).",
    ]
    lines += [f"- {line[0].upper()}{line[1:].rstrip('.')}." for line in summary_lines(result)]
    lines += [
        "",
        "Lifetime CO2e = the candidate's training lineage + "
        f"{n:,} predictions at its measured inference CO2e; the search's own CO2e is in its own "
        "column, carried by the chosen model only. Intervals `[low-high]`: measurement spread "
        "and meter bounds. Runtime: where the candidate was measured, with the serving threads.",
        "",
        *_card_table(result),
        "",
        *_card_sci(result),
        "Figures and provenance: `forge.json`. Accuracy vs CO2e: `pareto.png`.",
        "",
    ]
    return "\n".join(lines)


def write_outputs(out_dir: Path, result: ForgeResult, ctx: ForgeContext) -> None:
    """Writes the chosen model, plot and model card (forge.json is written by the search)."""
    from greenforge.forge.plot import plot_pareto

    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {"results": "forge.json"}
    if result.chosen is not None:
        try:
            files.update(save_model(out_dir, ctx.candidates[result.chosen].model, result.chosen))
        except OSError as exc:
            raise DataError(f"cannot save the chosen model to {out_dir}: {exc}") from None
    plot = plot_pareto(out_dir, result)
    if plot is not None:
        files["plot"] = plot.name
    write_text_atomic(out_dir / "README.md", model_card(result))
    files["model_card"] = "README.md"
    result.files = files
