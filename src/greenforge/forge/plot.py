"""``pareto.png``: test accuracy vs lifetime CO2e of every forge candidate, readable at 100 %.

- x: test accuracy (%), the target as a vertical line; candidates far below it (or, without a
  target, far below the best) sit at the left edge (``<`` marker) instead of squeezing the rest.
- y: lifetime CO2e *without* the search share (the ranking basis) in gCO2e (or mg, µg, kg...:
  the unit in which the values read best, named on the axis), with error bars
  from ``lifetime_co2e_low_g``/``lifetime_co2e_high_g``; log scale when the data span more than
  one decade (a cluster of good candidates would be squashed flat otherwise), limits clipped
  to the data.
- Colours from the Okabe-Ito palette (colour-blind safe); below-target candidates hollow grey;
  marker shape = runtime (a dimension of the comparison, not a hidden difference).
- Labels only for the Pareto front, the chosen model and the baseline, placed by
  :func:`place_labels` so that they overlap neither each other nor the points.
- The legend sits outside the data area, on the right.

matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from greenforge.forge.result import ForgeResult

OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
GREY = "#8C8C8C"
RUNTIME_MARKERS: dict[str, str] = {"torch": "o", "onnxruntime": "s"}
OTHER_MARKER = "D"
LOG_SPAN_DECADES = 1.0
"""Above this many decades between the smallest and largest CO2e the y-axis is logarithmic."""
FAR_BELOW_POINTS = 8.0
"""Candidates more than this many accuracy points below the target are drawn at the left edge."""


# --------------------------------------------------------------------------- label layout


@dataclasses.dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in display pixels (``x0 < x1``, ``y0 < y1``)."""

    x0: float
    y0: float
    x1: float
    y1: float

    def overlap(self, other: Box) -> float:
        """Returns the overlapping area with ``other`` in square pixels (0 when apart)."""
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return w * h if w > 0 and h > 0 else 0.0

    def contains(self, x: float, y: float) -> bool:
        """Returns True when the pixel ``(x, y)`` lies inside the box (edges included)."""
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1

    def outside(self, bounds: Box) -> float:
        """Returns the area of this box that lies outside ``bounds`` (square pixels)."""
        return (self.x1 - self.x0) * (self.y1 - self.y0) - self.overlap(bounds)


def _box_at(x: float, y: float, size: tuple[float, float]) -> Box:
    return Box(x, y, x + size[0], y + size[1])


def _candidate_spots(
    anchor: tuple[float, float], size: tuple[float, float], gap: float
) -> list[tuple[float, float]]:
    """Lower-left corners around ``anchor`` on rings of growing radius, nearest first."""
    ax, ay = anchor
    w, h = size
    spots: list[tuple[float, float]] = []
    for ring in range(8):
        r = gap * (1 + 1.8 * ring)
        for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)):
            x = ax + r if dx > 0 else ax - r - w if dx < 0 else ax - w / 2
            y = ay + r if dy > 0 else ay - r - h if dy < 0 else ay - h / 2
            spots.append((x, y))
    return spots


LEADER_SAMPLES = 16
"""Points checked along a label's leader line for crossing other points or labels."""


def _leader_crossings(
    box: Box, anchor: tuple[float, float], others: Sequence[Box], own: Sequence[Box]
) -> int:
    """How many samples of the line from the label's centre to its anchor fall on ``others``
    (boxes that do not hold the anchor itself: its own point and bar are where it must end)."""
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    ax, ay = anchor
    hits = 0
    for k in range(1, LEADER_SAMPLES):
        t = k / LEADER_SAMPLES
        x, y = cx + t * (ax - cx), cy + t * (ay - cy)
        if box.contains(x, y):
            continue
        hits += sum(1 for o in others if o not in own and o.contains(x, y))
    return hits


def _on_leaders(box: Box, leaders: Sequence[tuple[Box, tuple[float, float]]]) -> int:
    """How many samples of already placed labels' leader lines (label centre to anchor) fall
    inside ``box``: a label laid across another's leader hides which point that one names."""
    hits = 0
    for placed, (ax, ay) in leaders:
        cx, cy = (placed.x0 + placed.x1) / 2, (placed.y0 + placed.y1) / 2
        for k in range(1, LEADER_SAMPLES):
            t = k / LEADER_SAMPLES
            x, y = cx + t * (ax - cx), cy + t * (ay - cy)
            hits += 1 if box.contains(x, y) and not placed.contains(x, y) else 0
    return hits


def place_labels(
    anchors: Sequence[tuple[float, float]],
    sizes: Sequence[tuple[float, float]],
    obstacles: Sequence[Box],
    bounds: Box,
    *,
    gap: float = 6.0,
) -> list[tuple[float, float]]:
    """Returns each label's lower-left corner (display pixels) so that labels overlap neither
    each other nor the obstacles (the plotted points) and stay inside ``bounds``.

    Greedy and deterministic: labels are placed in order of their anchor's x, each at the
    nearest spot on rings around its anchor with the least overlap (labels weigh most, then
    leaving the bounds, then points, then a leader line that runs across another point or
    label, which would point the eye at the wrong candidate); ties go to the nearest spot. When
    no spot is free the least-overlapping one is kept (a crowded plot degrades gracefully).
    A spot on an earlier label's leader line costs as much as a leader crossing a point.
    """
    if len(anchors) != len(sizes):
        raise ValueError(f"{len(anchors)} anchors but {len(sizes)} label sizes.")
    order = sorted(range(len(anchors)), key=lambda i: (anchors[i][0], anchors[i][1]))
    placed: dict[int, Box] = {}
    for i in order:
        best: tuple[float, float, tuple[float, float]] | None = None
        own = [o for o in obstacles if o.contains(*anchors[i])]
        for rank, spot in enumerate(_candidate_spots(anchors[i], sizes[i], gap)):
            box = _box_at(spot[0], spot[1], sizes[i])
            crossings = _leader_crossings(box, anchors[i], [*obstacles, *placed.values()], own)
            crossings += _on_leaders(box, [(placed[j], anchors[j]) for j in placed])
            cost = (
                100.0 * sum(box.overlap(b) for b in placed.values())
                + 50.0 * box.outside(bounds)
                + 10.0 * sum(box.overlap(o) for o in obstacles)
                + 400.0 * crossings
            )
            if best is None or cost < best[0] or (cost == best[0] and rank < best[1]):
                best = (cost, rank, spot)
            if cost == 0.0:
                break
        assert best is not None
        placed[i] = _box_at(best[2][0], best[2][1], sizes[i])
    return [(placed[i].x0, placed[i].y0) for i in range(len(anchors))]


# --------------------------------------------------------------------------- the plot


@dataclasses.dataclass(frozen=True)
class _Point:
    name: str
    accuracy_pct: float
    co2e: float
    """Lifetime CO2e without the search share, in the plot's mass unit (as are the bounds)."""
    low: float
    high: float
    runtime: str
    pareto: bool
    below_target: bool
    chosen: bool
    baseline: bool
    clipped: bool = False


def _points(result: ForgeResult) -> tuple[list[_Point], str]:
    """The evaluated candidates in the mass unit that reads best, and that unit."""
    from greenforge.forge.output import candidate_rows, mass_unit

    rows = candidate_rows(result)
    unit, grams = mass_unit(r.lifetime_g for r in rows)
    out = []
    for row in rows:
        if not (math.isfinite(row.lifetime_g) and math.isfinite(row.accuracy_pct)):
            continue  # not measured: nothing to place
        value = max(row.lifetime_g, 1e-12) / grams
        low = row.lifetime_low_g / grams if math.isfinite(row.lifetime_low_g) else value
        high = row.lifetime_high_g / grams if math.isfinite(row.lifetime_high_g) else value
        out.append(
            _Point(
                row.name,
                row.accuracy_pct,
                value,
                max(min(low, value), 1e-12 / grams),
                max(high, value),
                row.runtime,
                row.pareto,
                row.below_target,
                row.chosen,
                row.baseline,
            )
        )
    return out, unit


def _dodge(points: list[_Point], width: float) -> list[_Point]:
    """Points that share an accuracy, spread sideways by ``width`` each so that their error
    bars stay apart (the accuracy is a test-set fraction: many candidates tie exactly)."""
    groups: dict[float, list[int]] = {}
    for i, p in enumerate(points):
        groups.setdefault(round(p.accuracy_pct, 6), []).append(i)
    out = list(points)
    for members in groups.values():
        for k, i in enumerate(members):
            shift = (k - (len(members) - 1) / 2) * width
            out[i] = dataclasses.replace(points[i], accuracy_pct=points[i].accuracy_pct + shift)
    return out


def _style(p: _Point) -> dict[str, Any]:
    marker = RUNTIME_MARKERS.get(p.runtime, OTHER_MARKER)
    if p.clipped:
        marker = "<"
    if p.below_target:
        return {"marker": marker, "facecolors": "none", "edgecolors": GREY, "linewidths": 1.3}
    colour = OKABE_ITO["blue"] if p.pareto else OKABE_ITO["sky_blue"]
    return {"marker": marker, "facecolors": colour, "edgecolors": "black", "linewidths": 0.6}


def log_scale(lows_g: Sequence[float], highs_g: Sequence[float]) -> bool:
    """Returns True when the CO2e values span more than :data:`LOG_SPAN_DECADES` decades."""
    lo = min(lows_g)
    hi = max(highs_g)
    return lo > 0 and math.log10(hi / lo) > LOG_SPAN_DECADES


def _y_limits(points: Sequence[_Point], log: bool) -> tuple[float, float]:
    lo = min(p.low for p in points)
    hi = max(p.high for p in points)
    if log:
        return lo / 1.25, hi * 1.25
    span = hi - lo
    pad = 0.08 * span if span > 0 else 0.1 * abs(hi) or 1.0
    return max(lo - pad, 0.0) if lo >= 0 else lo - pad, hi + pad


def plot_pareto(out_dir: Path, result: ForgeResult) -> Path | None:
    """Returns the path of ``pareto.png`` after drawing it; ``None`` when nothing was evaluated."""
    from greenforge.forge.output import write_atomic

    fig = draw_pareto(result)
    if fig is None:
        return None
    path = out_dir / "pareto.png"
    write_atomic(path, lambda tmp: fig.savefig(str(tmp), format="png"))
    return path


def draw_pareto(result: ForgeResult) -> Figure | None:
    """Returns the accuracy vs lifetime CO2e figure (drawn on its own Agg canvas: no pyplot, no
    global backend change); ``None`` when nothing was evaluated."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    points, unit = _points(result)
    if not points:
        return None
    target = None if result.target_accuracy is None else 100.0 * result.target_accuracy

    # x range: the data, but candidates far below the target sit at the left edge
    accs = [p.accuracy_pct for p in points]
    x_floor = max(min(accs), (max(accs) if target is None else target) - FAR_BELOW_POINTS)
    kept = [a for a in accs if a >= x_floor]
    if target is not None:
        kept.append(target)
    x_lo, x_hi = min(kept), max(kept)
    x_pad = max(0.08 * (x_hi - x_lo), 0.15)
    x_lo, x_hi = x_lo - x_pad, x_hi + x_pad
    points = [
        dataclasses.replace(p, accuracy_pct=x_lo + 0.5 * x_pad, clipped=True)
        if p.accuracy_pct < x_lo
        else p
        for p in points
    ]
    points = [
        dataclasses.replace(p, accuracy_pct=min(max(p.accuracy_pct, x_lo + 0.1 * x_pad), x_hi))
        for p in _dodge(points, 0.012 * (x_hi - x_lo))
    ]

    log = log_scale([p.low for p in points], [p.high for p in points])

    fig = Figure(figsize=(10.0, 5.8), dpi=100)
    canvas = FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.1, right=0.70, top=0.89, bottom=0.12)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlim(x_lo, x_hi)
    if log:
        ax.set_yscale("log")
    ax.set_ylim(*_y_limits(points, log))
    ax.grid(True, which="major", alpha=0.35, lw=0.6)
    if log:
        ax.grid(True, which="minor", alpha=0.12, lw=0.4)

    for p in points:
        colour = GREY if p.below_target else OKABE_ITO["blue"]
        ax.errorbar(
            [p.accuracy_pct],
            [p.co2e],
            yerr=[[p.co2e - p.low], [p.high - p.co2e]],
            fmt="none",
            ecolor=colour,
            elinewidth=1.0,
            capsize=3,
            alpha=0.8,
            zorder=2,
        )
        ax.scatter([p.accuracy_pct], [p.co2e], s=46, zorder=3, **_style(p))
    front = sorted((p for p in points if p.pareto and not p.clipped), key=lambda p: p.accuracy_pct)
    if len(front) > 1:
        ax.plot(
            [p.accuracy_pct for p in front],
            [p.co2e for p in front],
            "-",
            color=OKABE_ITO["bluish_green"],
            lw=1.4,
            alpha=0.9,
            zorder=1,
        )
    chosen = next((p for p in points if p.chosen), None)
    if chosen is not None:
        ax.scatter(
            [chosen.accuracy_pct],
            [chosen.co2e],
            marker="*",
            s=320,
            c=OKABE_ITO["vermillion"],
            edgecolors="black",
            linewidths=0.8,
            zorder=4,
        )
    if target is not None:
        ax.axvline(target, color=OKABE_ITO["orange"], ls="--", lw=1.4, zorder=1)

    spec = result.task.spec
    ax.set_xlabel("test accuracy (%)", fontsize=10)
    ax.set_ylabel(
        f"lifetime CO2e ({unit}CO2e" + (", log scale" if log else "") + ")\n"
        "training + expected inference, no search share",
        fontsize=10,
    )
    ax.tick_params(labelsize=9)
    serving_note = (
        f"; served with {result.serving.threads} thread(s), batch {spec.serving_batch_size}"
    )
    fig.suptitle(f"greenforge forge: {spec.name} - accuracy vs lifetime CO2e", fontsize=12, x=0.39)
    ax.set_title(
        f"{spec.expected_inferences:,} predictions in {result.deploy_zone}{serving_note}; "
        "bars: interval",
        fontsize=9,
        color="#333333",
    )

    # labels: Pareto front + chosen + baseline, placed clear of points and of each other
    canvas.draw()  # type: ignore[no-untyped-call]
    renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
    to_px = ax.transData.transform
    labelled = [p for p in points if p.pareto or p.chosen or p.baseline]
    anchors = [tuple(float(v) for v in to_px((p.accuracy_pct, p.co2e))) for p in labelled]
    texts = [f"{p.name} (chosen)" if p.chosen else p.name for p in labelled]
    sizes: list[tuple[float, float]] = []
    for p, text in zip(labelled, texts, strict=True):
        probe = ax.text(0, 0, text, fontsize=8.5, fontweight="bold" if p.chosen else "normal")
        bb = probe.get_window_extent(renderer=renderer)
        sizes.append((float(bb.width) + 4.0, float(bb.height) + 2.0))
        probe.remove()
    obstacles = []
    for p in points:
        x, y = (float(v) for v in to_px((p.accuracy_pct, p.co2e)))
        r = 11.0 if p.chosen else 6.0
        obstacles.append(Box(x - r, y - r, x + r, y + r))
        _, y_low = (float(v) for v in to_px((p.accuracy_pct, p.low)))
        _, y_high = (float(v) for v in to_px((p.accuracy_pct, p.high)))
        obstacles.append(Box(x - 4.0, min(y_low, y_high), x + 4.0, max(y_low, y_high)))  # bar
    ab = ax.get_window_extent(renderer=renderer)
    bounds = Box(float(ab.x0) + 2, float(ab.y0) + 2, float(ab.x1) - 2, float(ab.y1) - 2)
    spots = place_labels([(a[0], a[1]) for a in anchors], sizes, obstacles, bounds, gap=7.0)
    px_to_pt = 72.0 / fig.dpi
    for p, text, anchor, spot, size in zip(labelled, texts, anchors, spots, sizes, strict=True):
        cx, cy = spot[0] + size[0] / 2, spot[1] + size[1] / 2
        far = math.hypot(cx - anchor[0], cy - anchor[1]) > 0.5 * math.hypot(*size) + 10
        ax.annotate(
            text,
            (p.accuracy_pct, p.co2e),
            xytext=((cx - anchor[0]) * px_to_pt, (cy - anchor[1]) * px_to_pt),
            textcoords="offset points",
            ha="center",
            va="center",
            fontsize=8.5,
            fontweight="bold" if p.chosen else "normal",
            color="black" if not p.below_target else "#555555",
            arrowprops={"arrowstyle": "-", "color": "#777777", "lw": 0.6} if far else None,
            annotation_clip=False,
            zorder=5,
        )

    handles: list[Any] = []
    runtimes = sorted({p.runtime for p in points}, key=lambda rt: (rt != "torch", rt))
    for rt in runtimes:
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker=RUNTIME_MARKERS.get(rt, OTHER_MARKER),
                markerfacecolor="white",
                markeredgecolor="black",
                markersize=7,
                label=f"runtime: {rt}",
            )
        )
    marker = RUNTIME_MARKERS.get(runtimes[0], OTHER_MARKER)
    shown = [p for p in points if not p.chosen]
    kinds = (
        (
            OKABE_ITO["blue"],
            "black",
            "Pareto front",
            any(p.pareto and not p.below_target for p in shown),
        ),
        (
            OKABE_ITO["sky_blue"],
            "black",
            "off the front",
            any(not p.pareto and not p.below_target for p in shown),
        ),
        ("none", GREY, "below target (hollow)", any(p.below_target for p in shown)),
    )
    prefix = "meets target, " if target is not None else ""
    for face, edge, label, present in kinds:
        if present:
            handles.append(
                Line2D(
                    [],
                    [],
                    ls="none",
                    marker=marker,
                    markerfacecolor=face,
                    markeredgecolor=edge,
                    markersize=7,
                    label=label if face == "none" else prefix + label,
                )
            )
    if any(p.clipped for p in points):
        handles.append(
            Line2D([], [], ls="none", marker="<", markerfacecolor="none", markeredgecolor=GREY,
                   markersize=7, label=f"> {FAR_BELOW_POINTS:.0f} points below " + ("target" if target else "best"))
        )  # fmt: skip
    if len(front) > 1:
        handles.append(
            Line2D([], [], color=OKABE_ITO["bluish_green"], lw=1.4, label="Pareto front")
        )
    if chosen is not None:
        handles.append(
            Line2D([], [], ls="none", marker="*", markerfacecolor=OKABE_ITO["vermillion"],
                   markeredgecolor="black", markersize=14, label=f"chosen: {chosen.name}")
        )  # fmt: skip
    if target is not None:
        handles.append(
            Line2D([], [], color=OKABE_ITO["orange"], ls="--", lw=1.4,
                   label=f"target {target:.2f} %")
        )  # fmt: skip
    handles.append(Line2D([], [], color=GREY, lw=1.0, label="interval (low-high)"))
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        fontsize=8.5,
        frameon=False,
    )
    return fig
