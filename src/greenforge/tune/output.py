"""The trade-off curve of a tuning run: a table (:func:`table_rows`, :func:`summary_lines`) and a
plot (:func:`plot_tradeoff`, energy vs time with labelled axes and units).

matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from greenforge.tune.cpu import TuneResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLUMNS = (
    "threads",
    "batch",
    "samples",
    "energy J [95 % interval]",
    "time s",
    "power W",
    "cost J",
    "",
)


LOG_SPAN = 10.0
"""An axis is logarithmic when its largest value is more than this times its smallest."""


def fmt_interval(value: float, low: float, high: float) -> str:
    """Returns ``value [low-high]`` with 3 significant figures."""
    return f"{value:.3g} [{low:.3g}-{high:.3g}]"


def table_rows(result: TuneResult) -> list[tuple[str, ...]]:
    """Returns one row per setting (columns :data:`COLUMNS`), fastest first: the trade-off
    curve. The last column marks the chosen setting, the default and infeasible ones."""
    rows: list[tuple[str, ...]] = []
    order = sorted(range(len(result.costs)), key=lambda i: result.costs[i].time_s)
    for i in order:
        c = result.costs[i]
        marks = []
        if i == result.chosen:
            marks.append("chosen")
        if i == result.default:
            marks.append("default")
        if not c.feasible:
            marks.append("too slow")
        rows.append(
            (
                str(c.setting.threads),
                str(c.setting.batch_size),
                str(c.samples),
                fmt_interval(c.energy_j, c.energy_low_j, c.energy_high_j),
                f"{c.time_s:.3g}",
                f"{c.power_w:.3g}",
                f"{c.cost_j:.3g}",
                ", ".join(marks),
            )
        )
    return rows


def summary_lines(result: TuneResult) -> list[str]:
    """Returns the lines printed under the table: the choice, the saving, how it was measured."""
    best = result.best.setting
    lines = [
        f"energy and time are {result.objective}; cost = {result.eta:g} x E + "
        f"{1 - result.eta:g} x {result.max_power_w:.3g} W x T (Zeus; MaxPower: "
        f"{result.max_power_source}); time constraint: {result.constraint.describe()}",
        f"chosen: {best.threads} thread(s), batch {best.batch_size}",
    ]
    s = result.saving
    if result.default is not None and result.default == result.chosen:
        lines.append("the default setting is already the cheapest: keep it")
    elif s is not None and result.default is not None:
        d = result.costs[result.default].setting
        lines.append(
            f"vs default ({d.threads} thread(s), batch {d.batch_size}): energy "
            f"{s.energy_saving_pct:.1f} % less [{s.energy_saving_low_pct:.1f} to "
            f"{s.energy_saving_high_pct:.1f} %], default/chosen energy ratio "
            f"{fmt_interval(s.energy_ratio, s.energy_ratio_low, s.energy_ratio_high)}, "
            f"time ratio {s.time_ratio:.3g}"
        )
    load = f"background load {result.background_load:.0%}"
    if result.busy:
        load += " (busy: intervals widened)"
    lines.append(
        f"measured: {result.method}, {result.rounds} interleaved rounds ({result.stopped}); {load}"
    )
    return lines


def _figure(result: TuneResult) -> Figure:
    from matplotlib.figure import Figure

    from greenforge.forge.plot import GREY, OKABE_ITO

    fig = Figure(figsize=(7.5, 5.0), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    xs = [c.time_s for c in result.costs]
    ys = [c.energy_j for c in result.costs]
    yerr = [
        [max(c.energy_j - c.energy_low_j, 0.0) for c in result.costs],
        [max(c.energy_high_j - c.energy_j, 0.0) for c in result.costs],
    ]
    ax.errorbar(xs, ys, yerr=yerr, fmt="none", ecolor=GREY, elinewidth=1, capsize=2, zorder=1)
    batches = sorted({c.setting.batch_size for c in result.costs})
    palette = list(OKABE_ITO.values())[1:]
    for k, b in enumerate(batches):
        pts = [c for c in result.costs if c.setting.batch_size == b]
        ax.plot(
            [c.time_s for c in pts],
            [c.energy_j for c in pts],
            marker="o",
            linestyle="-",
            color=palette[k % len(palette)],
            label=f"batch {b}",
            zorder=2,
        )
    for i, c in enumerate(result.costs):
        label = f"{c.setting.threads} thr"
        ax.annotate(label, (c.time_s, c.energy_j), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)  # fmt: skip
        if i == result.chosen:
            ax.scatter([c.time_s], [c.energy_j], s=180, facecolors="none",
                       edgecolors=OKABE_ITO["black"], linewidths=2, zorder=3,
                       label="chosen (least cost)")  # fmt: skip
        if i == result.default:
            ax.scatter([c.time_s], [c.energy_j], s=90, marker="x", color=OKABE_ITO["vermillion"],
                       zorder=3, label="default")  # fmt: skip
    if math.isfinite(result.limit_s):
        ax.axvline(result.limit_s, color=GREY, linestyle="--", label="time limit")
    what = "to solution" if result.mode == "training" else "per 1,000 samples"
    for values, set_scale in ((xs, ax.set_xscale), (ys, ax.set_yscale)):
        positive = [v for v in values if v > 0]
        if positive and max(positive) > LOG_SPAN * min(positive):
            set_scale("log")  # a decade or more apart: a linear axis squashes the cheap ones
    ax.set_xlabel(f"wall time {what} (s)")
    ax.set_ylabel(f"energy {what} (J)")
    ax.set_title(
        f"CPU {result.mode}: energy vs time per setting (eta = {result.eta:g})", fontsize=10
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_tradeoff(result: TuneResult, path: Path) -> Path:
    """Writes the trade-off plot (energy vs wall time, one line per batch size, the chosen and
    default settings marked, the time limit dashed) to ``path`` (PNG) and returns it."""
    from greenforge.forge.output import write_atomic

    fig = _figure(result)
    write_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
    return Path(path)


__all__ = ["COLUMNS", "fmt_interval", "plot_tradeoff", "summary_lines", "table_rows"]
