"""The output directory of a forge search.

- ``forge.json`` - every candidate's figures and provenance (rewritten after every step).
- ``model.safetensors`` (+ ``model.json`` with the architecture and tensor shapes) - the chosen
  model; ``model.onnx`` as well when the chosen model is an ONNX Runtime int8 model.
- ``pareto.png`` - accuracy vs lifetime CO2e, Pareto front and target.
- ``README.md`` - a Hugging Face model card with ``co2_eq_emissions`` metadata.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenforge.errors import DataError

if TYPE_CHECKING:
    from greenforge.forge.recipes.base import ForgeContext
    from greenforge.forge.search import ForgeResult


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".forge-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(_clean(data), fh, indent=2, sort_keys=False, allow_nan=False)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_forge_json(out_dir: Path, result: ForgeResult) -> Path:
    path = out_dir / "forge.json"
    write_json_atomic(path, result.to_dict())
    return path


def save_model(out_dir: Path, model: Any, name: str) -> dict[str, str]:
    """Save the chosen model: safetensors (+ ONNX for ONNX Runtime models)."""
    from safetensors.torch import save_file
    from torch import nn

    from greenforge.forge.evaluate import torch_module

    files: dict[str, str] = {}
    onnx_path = getattr(model, "path", None)
    if onnx_path is not None and Path(onnx_path).is_file():
        shutil.copyfile(onnx_path, out_dir / "model.onnx")
        files["onnx"] = "model.onnx"
    module = torch_module(model)
    if isinstance(module, nn.Module):
        state = {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}
        save_file(
            state, str(out_dir / "model.safetensors"), metadata={"greenforge_candidate": name}
        )
        files["safetensors"] = "model.safetensors"
        meta = {
            "candidate": name,
            "module": type(module).__name__,
            "repr": repr(module),
            "tensors": {k: list(v.shape) for k, v in state.items()},
            "note": "ONNX model is int8 (serve it with onnxruntime); the safetensors hold the "
            "fp32 weights it was quantized from"
            if "onnx" in files
            else "load with safetensors.torch.load_file into a module of this architecture",
        }
        write_json_atomic(out_dir / "model.json", meta)
        files["model_json"] = "model.json"
    return files


def plot_pareto(out_dir: Path, result: ForgeResult) -> Path | None:
    """Accuracy vs lifetime CO2e (log scale), Pareto front, target and choice."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    done = [r for r in result.results if r.evaluation is not None]
    if not done:
        return None
    fig = Figure(figsize=(8, 5.5), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    xs = [max(r.lifetime_co2e_g - r.search_share_co2e_g, 1e-12) for r in done]
    ys = [100 * r.accuracy for r in done]
    ax.scatter(xs, ys, c=["tab:green" if r.pareto else "tab:gray" for r in done], zorder=3)
    front = sorted((x, y) for x, y, r in zip(xs, ys, done, strict=True) if r.pareto)
    if front:
        ax.plot(
            [p[0] for p in front],
            [p[1] for p in front],
            "-",
            color="tab:green",
            alpha=0.6,
            label="Pareto front",
        )
    for x, y, r in zip(xs, ys, done, strict=True):
        ax.annotate(r.name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if r.name == result.chosen:
            ax.scatter(
                [x],
                [y],
                marker="*",
                s=260,
                c="gold",
                edgecolors="black",
                zorder=4,
                label=f"chosen: {r.name}",
            )
    if result.target_accuracy is not None:
        ax.axhline(
            100 * result.target_accuracy,
            color="tab:red",
            ls="--",
            lw=1,
            label=f"target {100 * result.target_accuracy:.2f} %",
        )
    ax.set_xscale("log")
    ax.set_xlabel(
        f"lifetime CO2e (g): training + {result.task.spec.expected_inferences:,} predictions "
        f"in {result.deploy_zone}"
    )
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"greenforge forge: {result.task.spec.name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = out_dir / "pareto.png"
    fig.savefig(str(path))
    return path


def versus_baseline(comp: dict[str, Any]) -> str:
    """``4.1x less lifetime CO2e, 0.89 accuracy points lost`` - or ``1.1x more`` / ``gained``
    when the chosen model (which carries the whole search) is worse or more accurate."""
    factor = float(comp["lifetime_reduction_factor"])
    if factor >= 1.0:
        co2 = f"{factor:.1f}x less lifetime CO2e"
    else:
        co2 = f"{1.0 / factor:.1f}x MORE lifetime CO2e" if factor > 0 else "more lifetime CO2e"
    loss = float(comp["accuracy_loss_points"])
    acc = f"{loss:.2f} accuracy points lost" if loss >= 0 else f"{-loss:.2f} accuracy points gained"
    return f"{co2}, {acc}"


def _basis(search: dict[str, Any]) -> str:
    """``measured`` / ``modelled`` / ``partly modelled``: how the search's energy was obtained."""
    from greenforge.forge.measure import energy_basis

    return str(search.get("energy_basis") or energy_basis(str(search.get("methods", ""))))


def model_card(result: ForgeResult) -> str:
    """A Hugging Face model card (README.md) with ``co2_eq_emissions`` metadata."""
    from greenforge.forge.search import machine_description

    search = result.search
    chosen = None if result.chosen is None else result.result(result.chosen)
    emissions_g = float(search.get("total_co2e_g", 0.0))
    types = []
    if chosen is not None:
        for name in chosen.lineage[::-1]:
            cand = next(r for r in result.results if r.name == name).candidate
            types.append(cand.recipe)
    training_type = " -> ".join(types) if types else "search (no model chosen)"
    basis = _basis(search)
    source = (
        f"GreenForge forge: {basis} with {search.get('methods', 'unknown')}; intensity "
        f"{search.get('intensity_source', 'unknown')}"
    )
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
        f"- Deployment: {result.task.spec.expected_inferences:,} predictions in zone "
        f"{result.deploy_zone} at {result.deploy_intensity_g_per_kwh:.1f} gCO2e/kWh "
        f"({result.deploy_intensity_source}).",
        "",
        "| candidate | recipe | precision | test acc. | params | train CO2e (g) "
        "| inference CO2e per 1k (g) | lifetime CO2e (g) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result.results:
        if r.evaluation is None:
            continue
        lines.append(
            f"| {r.name}{' (chosen)' if r.name == result.chosen else ''} | {r.candidate.recipe} "
            f"| {r.candidate.precision} | {100 * r.accuracy:.2f} % | {r.evaluation.parameters:,} "
            f"| {r.train_co2e_g:.4g} | {r.inference_co2e_g_per_1k:.4g} "
            f"| {r.lifetime_co2e_g:.4g} |"
        )
    comp = result.comparison()
    if "lifetime_reduction_factor" in comp:
        lines += [
            "",
            f"Versus the fp32 baseline alone: {versus_baseline(comp)}.",
        ]
    lines += ["", "Figures and provenance: `forge.json`. Accuracy vs CO2e: `pareto.png`.", ""]
    return "\n".join(lines)


def write_outputs(out_dir: Path, result: ForgeResult, ctx: ForgeContext) -> None:
    """Chosen model, plot and model card (forge.json is written by the search itself)."""
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
    (out_dir / "README.md").write_text(model_card(result), encoding="utf-8")
    files["model_card"] = "README.md"
    result.files = files
