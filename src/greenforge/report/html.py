"""Self-contained HTML reports of stored runs and forge directories.

One file, no network at view time: inline CSS and inline SVG plots drawn by the small helpers
here (no JavaScript), so it opens from ``file://`` and as an e-mail attachment. Every string
that came from a user or a record is escaped with :func:`html.escape`. Colours are the
Okabe-Ito palette (colour-blind safe); every plot has labelled axes with units.

The store keeps per-window totals, not per-interval readings, so the "over time" plots show one
bar per window (or one for the whole run when it has no windows), and say so.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenforge.errors import DataError
from greenforge.records import RunRecord, meter_summary
from greenforge.units import J_PER_KWH

if TYPE_CHECKING:
    from greenforge.forge.output import CandidateRow
    from greenforge.report.sci import FunctionalUnit

OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
    "grey": "#999999",
}
"""The Okabe-Ito colour-blind safe palette."""

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}.tw{overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}
.headline{display:flex;flex-wrap:wrap;gap:1em;margin:1em 0}
.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;min-width:12em}
.card .big{font-size:1.5em;font-weight:600}.card .small{color:#555;font-size:.85em}
.note{color:#555;font-size:.9em}svg{display:block;margin:.5em 0}
tr.chosen td{background:#fff4e0}
"""


def fmt_energy_j(energy_j: float) -> str:
    """Returns ``energy_j`` as ``"1234 J"`` (4 significant digits, in joules)."""
    return f"{energy_j:.4g} J"


def fmt_energy_kwh(energy_j: float) -> str:
    """Returns ``energy_j`` converted to kWh as ``"0.0003428 kWh"`` (4 significant digits)."""
    return f"{energy_j / J_PER_KWH:.4g} kWh"


def fmt_co2e_g(co2e_g: float | None) -> str:
    """Returns a mass of CO2e in grams as ``"12.34 g"`` (4 significant digits); ``-`` if None."""
    if co2e_g is None or not math.isfinite(co2e_g):
        return "-"
    return f"{co2e_g:.4g} g"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


# --------------------------------------------------------------------------- SVG helpers


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Returns about ``count`` round tick values (1, 2, 5 x 10^n steps) covering ``[low, high]``
    (in the data's unit)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        high = low + 1.0 if math.isfinite(low) else 1.0
        low = low if math.isfinite(low) else 0.0
    raw = (high - low) / max(count, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 5.0, 10.0) if m * mag >= raw)
    start = math.floor(low / step) * step
    n = min(math.ceil((high - start) / step - 1e-9), 50)  # never loops on tiny spans
    return [start + i * step for i in range(max(n, 1) + 1)]


def fmt_number(value: float, digits: int = 4) -> str:
    """Returns ``value`` with ``digits`` significant digits, without an exponent from 0.001 to
    10^7 (``12345``, ``0.0123``)."""
    if 10.0**digits <= abs(value) < 1e7:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def fmt_grams(value: float) -> str:
    """Returns a mass of CO2e as ``"1359 g"`` (:func:`fmt_number`, grams)."""
    return f"{fmt_number(value)} g"


def _tick_label(v: float) -> str:
    """Returns a tick value in at most 3 significant digits, without an exponent below 10^7
    (``2000``, not ``2e+03``)."""
    if 1000.0 <= abs(v) < 1e7:
        return f"{v:.0f}"
    return f"{v:.3g}"


class _Axes:
    """A plot area of ``width x height`` px with margins, mapping data to pixels."""

    left, right, top, bottom = 70.0, 70.0, 20.0, 50.0

    def __init__(self, width: float, height: float, x: Sequence[float], y: Sequence[float]):
        self.width, self.height = width, height
        self.xt = nice_ticks(min(x), max(x))
        self.yt = nice_ticks(min(0.0, min(y)), max(y))

    def px(self, x: float) -> float:
        lo, hi = self.xt[0], self.xt[-1]
        return self.left + (x - lo) / ((hi - lo) or 1.0) * (self.width - self.left - self.right)

    def py(self, y: float, ticks: Sequence[float] | None = None) -> float:
        t = ticks or self.yt
        lo, hi = t[0], t[-1]
        return (
            self.height
            - self.bottom
            - (y - lo) / ((hi - lo) or 1.0) * (self.height - self.top - self.bottom)
        )

    def frame(self, x_label: str, y_label: str, colour: str = "#222") -> list[str]:
        """Returns the SVG elements of both axes, their ticks and their labels."""
        out: list[str] = []
        x0, x1 = self.left, self.width - self.right
        y0, y1 = self.height - self.bottom, self.top
        out.append(f'<path d="M{x0:.1f},{y1:.1f} V{y0:.1f} H{x1:.1f}" stroke="#222" fill="none"/>')
        for t in self.xt:
            x = self.px(t)
            out.append(f'<path d="M{x:.1f},{y0:.1f} v5" stroke="#222"/>')
            out.append(
                f'<text x="{x:.1f}" y="{y0 + 18:.1f}" text-anchor="middle" font-size="11">'
                f"{_tick_label(t)}</text>"
            )
        for t in self.yt:
            y = self.py(t)
            out.append(f'<path d="M{x0 - 5:.1f},{y:.1f} h5" stroke="#222"/>')
            out.append(
                f'<text x="{x0 - 8:.1f}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                f"{_tick_label(t)}</text>"
            )
        out.append(
            f'<text x="{(x0 + x1) / 2:.1f}" y="{self.height - 10:.1f}" text-anchor="middle" '
            f'font-size="12">{_e(x_label)}</text>'
        )
        cy = (y0 + y1) / 2
        out.append(
            f'<text x="16" y="{cy:.1f}" text-anchor="middle" font-size="12" fill="{colour}" '
            f'transform="rotate(-90 16 {cy:.1f})">{_e(y_label)}</text>'
        )
        return out

    def right_axis(self, ticks: Sequence[float], label: str, colour: str) -> list[str]:
        """Returns a second y axis on the right (its own ticks) with its label."""
        x = self.width - self.right
        out = [
            f'<path d="M{x:.1f},{self.top:.1f} V{self.height - self.bottom:.1f}" '
            f'stroke="{colour}" fill="none"/>'
        ]
        for t in ticks:
            y = self.py(t, ticks)
            out.append(f'<path d="M{x:.1f},{y:.1f} h5" stroke="{colour}"/>')
            out.append(
                f'<text x="{x + 8:.1f}" y="{y + 4:.1f}" font-size="11" fill="{colour}">'
                f"{_tick_label(t)}</text>"
            )
        cx = self.width - 14
        cy = (self.top + self.height - self.bottom) / 2
        out.append(
            f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="middle" font-size="12" '
            f'fill="{colour}" transform="rotate(90 {cx:.1f} {cy:.1f})">{_e(label)}</text>'
        )
        return out


def _svg(width: float, height: float, title: str, body: Sequence[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{_e(title)}">'
        f"<title>{_e(title)}</title>" + "".join(body) + "</svg>"
    )


def svg_step_bars(
    spans_s: Sequence[tuple[float, float]],
    values: Sequence[float],
    *,
    title: str,
    x_label: str,
    y_label: str,
    colour: str = OKABE_ITO["blue"],
    background: Sequence[float] | None = None,
    background_label: str = "",
    width: float = 900.0,
    height: float = 300.0,
    bar_colours: Sequence[str] | None = None,
) -> str:
    """Returns an SVG of one bar per time span (``values`` in the y unit), optionally with a
    second series drawn behind it as pale bars on its own right-hand axis; ``bar_colours``
    (one per bar) overrides ``colour`` bar by bar."""
    xs = [s for s, _ in spans_s] + [e for _, e in spans_s]
    ax = _Axes(width, height, xs, [v for v in values if math.isfinite(v)] or [1.0])
    body: list[str] = []
    bg_colour = OKABE_ITO["orange"]
    if background is not None and any(math.isfinite(b) for b in background):
        bt = nice_ticks(0.0, max(b for b in background if math.isfinite(b)))
        for (s, e), b in zip(spans_s, background, strict=True):
            if not math.isfinite(b):
                continue
            x0, x1, y = ax.px(s), ax.px(e), ax.py(b, bt)
            body.append(
                f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0, 1.0):.1f}" '
                f'height="{ax.py(0.0, bt) - y:.1f}" fill="{bg_colour}" fill-opacity="0.25"/>'
            )
        body.extend(ax.right_axis(bt, background_label, "#8a5a00"))
    fills = list(bar_colours) if bar_colours is not None else [colour] * len(values)
    for (s, e), v, fill in zip(spans_s, values, fills, strict=True):
        if not math.isfinite(v):
            continue
        x0, x1, y = ax.px(s), ax.px(e), ax.py(v)
        w = max(x1 - x0 - 1.0, 1.0)
        body.append(
            f'<rect x="{x0 + 0.5:.1f}" y="{y:.1f}" width="{w:.1f}" height="{ax.py(0.0) - y:.1f}" '
            f'fill="{fill}" fill-opacity="0.85"><title>{_tick_label(v)}</title></rect>'
        )
    body.extend(ax.frame(x_label, y_label, colour))
    return _svg(width, height, title, body)


def svg_scatter(
    points: Sequence[Mapping[str, Any]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: float = 900.0,
    height: float = 380.0,
) -> str:
    """Returns an SVG scatter of ``points`` (keys ``x``, ``y``, optional ``x_low``/``x_high``
    error bars, ``kind`` in chosen/pareto/other, ``name``) with a legend; names show on hover
    only, so labels never overlap."""
    good = [p for p in points if math.isfinite(p["x"]) and math.isfinite(p["y"])]
    if not good:
        raise DataError("nothing to plot: no candidate has both a CO2e and an accuracy figure.")
    xs = [p["x"] for p in good] + [
        v for p in good for v in (p.get("x_low"), p.get("x_high")) if _finite(v)
    ]
    ax = _Axes(width, height, [0.0, *xs], [p["y"] for p in good])
    lo_y = min(p["y"] for p in good)
    ax.yt = nice_ticks(lo_y - 0.05 * abs(lo_y) - 1.0, max(p["y"] for p in good) + 1.0)
    style = {
        "chosen": (OKABE_ITO["vermillion"], "chosen"),
        "pareto": (OKABE_ITO["blue"], "Pareto front"),
        "other": (OKABE_ITO["grey"], "other candidates"),
    }
    body: list[str] = []
    for p in sorted(good, key=lambda p: p.get("kind") == "chosen"):
        colour, _ = style.get(str(p.get("kind")), style["other"])
        x, y = ax.px(p["x"]), ax.py(p["y"])
        lo, hi = _f(p.get("x_low")), _f(p.get("x_high"))
        if math.isfinite(lo) and math.isfinite(hi):
            body.append(
                f'<path d="M{ax.px(lo):.1f},{y:.1f} H{ax.px(hi):.1f}" '
                f'stroke="{colour}" stroke-width="1.5"/>'
            )
        r = 7 if p.get("kind") == "chosen" else 5
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colour}" stroke="#000" '
            f'stroke-width="0.6"><title>{_e(p.get("name", ""))}</title></circle>'
        )
    lx = ax.left + 12
    for i, (colour, label) in enumerate(style.values()):
        ly = ax.top + 12 + 16 * i
        body.append(f'<circle cx="{lx:.1f}" cy="{ly:.1f}" r="5" fill="{colour}"/>')
        body.append(f'<text x="{lx + 10:.1f}" y="{ly + 4:.1f}" font-size="11">{label}</text>')
    body.extend(ax.frame(x_label, y_label))
    return _svg(width, height, title, body)


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


CHAR_W = 0.62
"""Width of one character as a share of the font size (a generous sans-serif average): text
extents are estimated with it so that labels are laid out never to overlap."""


def text_width(text: str, font_size: float) -> float:
    """Returns the estimated width (px) of ``text`` drawn at ``font_size`` px."""
    return len(text) * CHAR_W * font_size


def _clip_label(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1] + "\u2026"


def _legend(
    entries: Sequence[tuple[str, str, str]], x0: float, y0: float, max_x: float
) -> tuple[list[str], float]:
    """Returns (SVG elements, height in px) of a legend laid out left to right from ``(x0, y0)``
    and wrapped before ``max_x``. ``entries``: (label, colour, kind) with kind ``bar``,
    ``line:N`` (the N-th line's dash pattern), ``dash`` or ``dot`` - the swatch drawn."""
    out: list[str] = []
    x, y = x0, y0
    for label, colour, kind in entries:
        w = 22 + text_width(label, 11) + 16
        if x > x0 and x + w > max_x:
            x, y = x0, y + 18
        if kind == "bar":
            out.append(
                f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="14" height="10" fill="{colour}" '
                'fill-opacity="0.85"/>'
            )
        elif kind == "dot":
            out.append(f'<circle cx="{x + 7:.1f}" cy="{y - 4:.1f}" r="5" fill="{colour}"/>')
        else:
            if kind == "dash":
                pattern = "5,3"
            elif kind.startswith("line:"):
                pattern = _DASHES[int(kind[5:]) % len(_DASHES)]
            else:
                pattern = ""
            dash = f' stroke-dasharray="{pattern}"' if pattern else ""
            out.append(
                f'<path d="M{x:.1f},{y - 4:.1f} h16" stroke="{colour}" stroke-width="2.5"{dash}/>'
            )
        out.append(f'<text x="{x + 22:.1f}" y="{y:.1f}" font-size="11">{_e(label)}</text>')
        x += w
    return out, (y - y0) + 18


def svg_hbars(
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    *,
    title: str,
    x_label: str,
    value_format: Callable[[float], str] | None = None,
    width: float = 900.0,
    bounds: Sequence[tuple[float, float] | None] | None = None,
    bounds_label: str = "low-high",
    marks: Sequence[tuple[float, str, str]] = (),
) -> str:
    """Returns an SVG of horizontal bars: one row per label, one bar per series in it.

    ``series`` holds (legend name, colour, one value per label in the x unit; None is drawn as
    ``n/a``); ``value_format`` writes the value labels (default :func:`fmt_number`). Labels
    sit left of their rows (one row each, so they never overlap; long ones are shortened, the
    full text on hover), values at the bar ends, the legend above the plot. ``bounds``: one
    (low, high) per label (or None) of the first series, drawn as error bars (``bounds_label``
    in the legend); ``marks``: (x, legend name, colour) dashed vertical lines, such as a
    floor every bar should reach."""
    if not labels or not series:
        raise DataError("nothing to plot: no rows.")
    label = value_format or fmt_number
    values = [v for _, _, vs in series for v in vs if v is not None and math.isfinite(v)]
    whiskers = list(bounds) if bounds is not None else [None] * len(labels)
    values += [v for b in whiskers if b is not None for v in b if math.isfinite(v)]
    values += [x for x, _, _ in marks if math.isfinite(x)]
    shown = [_clip_label(lab, 48) for lab in labels]
    left = min(max(text_width(s, 11) for s in shown) + 24, 360.0)
    right = 70.0
    entries = [(name, colour, "bar") for name, colour, _ in series]
    if bounds is not None:
        entries.append((bounds_label, "#222", "line"))
    entries += [(name, colour, "dash") for _, name, colour in marks]
    legend, legend_h = _legend(entries, left, 18.0, width - right)
    with_legend = len(entries) > 1
    top = 18.0 + legend_h if with_legend else 16.0
    bar_h = 14.0
    row_h = bar_h * len(series) + 10.0
    height = top + row_h * len(labels) + 50.0
    xt = nice_ticks(min(0.0, *values) if values else 0.0, max(0.0, *values) if values else 1.0)
    lo, hi = xt[0], xt[-1]

    def px(v: float) -> float:
        return left + (v - lo) / ((hi - lo) or 1.0) * (width - left - right)

    body: list[str] = list(legend) if with_legend else []
    zero = px(0.0)
    y_axis_end = top + row_h * len(labels)
    for i, (full, short) in enumerate(zip(labels, shown, strict=True)):
        y_row = top + row_h * i + 5.0
        mid = y_row + bar_h * len(series) / 2
        body.append(
            f'<text x="{left - 8:.1f}" y="{mid + 4:.1f}" text-anchor="end" font-size="11">'
            f"<title>{_e(full)}</title>{_e(short)}</text>"
        )
        for k, (name, colour, vs) in enumerate(series):
            v = vs[i]
            y = y_row + bar_h * k
            if v is None or not math.isfinite(v):
                body.append(
                    f'<text x="{zero + 4:.1f}" y="{y + bar_h - 3:.1f}" font-size="10" '
                    f'fill="#555">n/a</text>'
                )
                continue
            x0, x1 = sorted((zero, px(v)))
            body.append(
                f'<rect x="{x0:.1f}" y="{y + 1:.1f}" width="{max(x1 - x0, 1.0):.1f}" '
                f'height="{bar_h - 2:.1f}" fill="{colour}" fill-opacity="0.85">'
                f"<title>{_e(name)}: {_e(label(v))}</title></rect>"
            )
            bound = whiskers[i] if k == 0 else None
            if bound is not None and all(math.isfinite(b) for b in bound):
                wl, wh = px(min(bound)), px(max(bound))
                cy = y + bar_h / 2
                body.append(
                    f'<path d="M{wl:.1f},{cy:.1f} H{wh:.1f} M{wl:.1f},{cy - 4:.1f} v8 '
                    f'M{wh:.1f},{cy - 4:.1f} v8" stroke="#222" stroke-width="1.2" fill="none">'
                    f"<title>{_e(bounds_label)}: {_e(label(min(bound)))} to "
                    f"{_e(label(max(bound)))}</title></path>"
                )
                x0, x1 = min(x0, wl), max(x1, wh)
            tx, anchor = (x1 + 4, "start") if v >= 0 else (x0 - 4, "end")
            body.append(
                f'<text x="{tx:.1f}" y="{y + bar_h - 3:.1f}" font-size="10" '
                f'text-anchor="{anchor}">{_e(label(v))}</text>'
            )
    body.append(
        f'<path d="M{zero:.1f},{top:.1f} V{y_axis_end:.1f}" stroke="#222" fill="none"/>'
        f'<path d="M{left:.1f},{y_axis_end:.1f} H{width - right:.1f}" stroke="#222" '
        'fill="none"/>'
    )
    for x, name, colour in marks:
        if math.isfinite(x):
            body.append(
                f'<path d="M{px(x):.1f},{top:.1f} V{y_axis_end:.1f}" stroke="{colour}" '
                f'stroke-width="1.5" stroke-dasharray="5,3"><title>{_e(name)}</title></path>'
            )
    for t in xt:
        x = px(t)
        body.append(f'<path d="M{x:.1f},{y_axis_end:.1f} v5" stroke="#222"/>')
        body.append(
            f'<text x="{x:.1f}" y="{y_axis_end + 18:.1f}" text-anchor="middle" font-size="11">'
            f"{_tick_label(t)}</text>"
        )
    body.append(
        f'<text x="{(left + width - right) / 2:.1f}" y="{height - 10:.1f}" '
        f'text-anchor="middle" font-size="12">{_e(x_label)}</text>'
    )
    return _svg(width, height, title, body)


_DASHES = ("", "8,3", "2,2", "8,3,2,3")
"""Dash patterns of successive lines, so that lines differ by more than colour."""


def svg_step_lines(
    lines: Sequence[tuple[str, str, Sequence[tuple[float, float]], Sequence[float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    shade: Sequence[tuple[float, float, str]] = (),
    shade_label: str = "",
    marks: Sequence[tuple[float, str, str]] = (),
    width: float = 900.0,
    height: float = 340.0,
) -> str:
    """Returns an SVG of step lines (one per series) with shaded spans and vertical marks.

    ``lines``: (legend name, colour, (x start, x end) of each step, value of each step), x and
    y in the axis units; each line also gets its own dash pattern. ``shade``: (x start, x end,
    colour) spans drawn behind, named ``shade_label`` in the legend. ``marks``: (x, legend name,
    colour) dashed vertical lines. Names live in the legend above the plot, never on it, so
    nothing overlaps."""
    xs = [x for _, _, spans, _ in lines for span in spans for x in span]
    xs += [x for s, e, _ in shade for x in (s, e)] + [x for x, _, _ in marks]
    ys = [v for _, _, _, vs in lines for v in vs if math.isfinite(v)]
    if not xs or not ys:
        raise DataError("nothing to plot: no finite values.")
    ax = _Axes(width, 0.0, xs, ys)
    entries = [(name, colour, f"line:{i}") for i, (name, colour, *_) in enumerate(lines)]
    if shade:
        entries.append((shade_label, shade[0][2], "bar"))
    entries += [(name, colour, "dash") for _, name, colour in marks]
    legend, legend_h = _legend(entries, ax.left, 16.0, width - ax.right)
    ax.top = 16.0 + legend_h
    ax.height = height + legend_h
    body: list[str] = list(legend)
    y_top, y_bottom = ax.py(ax.yt[-1]), ax.py(ax.yt[0])
    for s, e, colour in shade:
        x0, x1 = ax.px(s), ax.px(e)
        body.append(
            f'<rect x="{x0:.1f}" y="{y_top:.1f}" width="{max(x1 - x0, 1.0):.1f}" '
            f'height="{y_bottom - y_top:.1f}" fill="{colour}" fill-opacity="0.35"/>'
        )
    for i, (name, colour, spans, vs) in enumerate(lines):
        d: list[str] = []
        for (x0, x1), v in zip(spans, vs, strict=True):
            if not math.isfinite(v):
                continue
            cmd = "L" if d else "M"
            d.append(f"{cmd}{ax.px(x0):.1f},{ax.py(v):.1f} H{ax.px(x1):.1f}")
        dash = _DASHES[i % len(_DASHES)]
        if d:
            body.append(
                f'<path d="{" ".join(d)}" stroke="{colour}" stroke-width="2.2" fill="none"'
                + (f' stroke-dasharray="{dash}"' if dash else "")
                + f"><title>{_e(name)}</title></path>"
            )
    for x, name, colour in marks:
        px = ax.px(x)
        body.append(
            f'<path d="M{px:.1f},{y_top:.1f} V{y_bottom:.1f}" stroke="{colour}" '
            f'stroke-width="1.5" stroke-dasharray="5,3"><title>{_e(name)}</title></path>'
        )
    body.extend(ax.frame(x_label, y_label))
    return _svg(width, ax.height, title, body)


def integer_ticks(last: int, most: int = 12) -> list[float]:
    """Returns ticks 0, s, 2s ... up to at least ``last + 1`` with a 1/2/5 x 10^n step ``s``
    giving at most about ``most`` ticks: an axis of rounds 1..``last`` with room either side."""
    span = max(last + 1, 1)
    step, k = 1, 0
    while span / step > most:
        k += 1
        step = (1, 2, 5)[k % 3] * 10 ** (k // 3)
    n = math.ceil(span / step)
    return [float(i * step) for i in range(n + 1)]


def svg_stacked_bars(
    xs: Sequence[float],
    stacks: Sequence[tuple[str, str, Sequence[float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    bounds: Sequence[tuple[float, float]] | None = None,
    bounds_label: str = "low-high",
    x_ticks: Sequence[float] | None = None,
    width: float = 900.0,
    height: float = 320.0,
) -> str:
    """Returns an SVG of vertical bars at ``xs`` (x unit; each 0.7 x unit wide), each a stack
    of the ``stacks`` series (legend name, colour, one non-negative value per x in the y unit),
    with optional (low, high) error bars of each bar's total. ``x_ticks`` sets the x axis (its
    first and last tick are its ends); names live in the legend above the plot."""
    if not xs or not stacks:
        raise DataError("nothing to plot: no bars.")
    totals = [
        math.fsum(v for _, _, vs in stacks if math.isfinite(v := vs[i]) and v > 0)
        for i in range(len(xs))
    ]
    ys = [*totals, *(v for b in bounds or () for v in b if math.isfinite(v))]
    ax = _Axes(width, 0.0, [min(xs) - 0.5, max(xs) + 0.5], [0.0, *ys])
    if x_ticks:
        ax.xt = list(x_ticks)
    entries = [(name, colour, "bar") for name, colour, _ in stacks]
    if bounds is not None:
        entries.append((bounds_label, "#222", "line"))
    legend, legend_h = _legend(entries, ax.left, 16.0, width - ax.right)
    ax.top = 16.0 + legend_h
    ax.height = height + legend_h
    body: list[str] = list(legend)
    half = 0.35 * (ax.px(1.0) - ax.px(0.0))
    for i, x in enumerate(xs):
        base = 0.0
        for name, colour, vs in stacks:
            v = vs[i]
            if not (math.isfinite(v) and v > 0):
                continue
            y0, y1 = ax.py(base), ax.py(base + v)
            body.append(
                f'<rect x="{ax.px(x) - half:.1f}" y="{y1:.1f}" width="{2 * half:.1f}" '
                f'height="{max(y0 - y1, 0.5):.1f}" fill="{colour}" fill-opacity="0.85">'
                f"<title>{_e(name)}: {_tick_label(v)}</title></rect>"
            )
            base += v
        if bounds is not None and all(math.isfinite(b) for b in bounds[i]):
            lo, hi = ax.py(min(bounds[i])), ax.py(max(bounds[i]))
            cx, cap = ax.px(x), max(half / 2, 2.0)
            body.append(
                f'<path d="M{cx:.1f},{lo:.1f} V{hi:.1f} M{cx - cap:.1f},{lo:.1f} h{2 * cap:.1f} '
                f'M{cx - cap:.1f},{hi:.1f} h{2 * cap:.1f}" stroke="#222" stroke-width="1.2" '
                f'fill="none"><title>{_e(bounds_label)}: {_tick_label(min(bounds[i]))} to '
                f"{_tick_label(max(bounds[i]))}</title></path>"
            )
    body.extend(ax.frame(x_label, y_label))
    return _svg(width, ax.height, title, body)


def svg_lines(
    lines: Sequence[tuple[str, str, Sequence[float], Sequence[float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    bands: Sequence[tuple[str, str, Sequence[float], Sequence[float], Sequence[float]]] = (),
    x_ticks: Sequence[float] | None = None,
    width: float = 900.0,
    height: float = 320.0,
) -> str:
    """Returns an SVG of lines with a dot at each point, over shaded bands.

    ``lines``: (legend name, colour, xs, ys); ``bands``: (legend name, colour, xs, lows,
    highs), such as an interval around a line. Each line gets its own dash pattern; names live
    in the legend above the plot, never on it."""
    xs = [x for _, _, lx, _ in lines for x in lx] + [x for _, _, bx, _, _ in bands for x in bx]
    ys = [y for _, _, _, ly in lines for y in ly if math.isfinite(y)]
    ys += [v for *_, lo, hi in bands for v in (*lo, *hi) if math.isfinite(v)]
    if not xs or not ys:
        raise DataError("nothing to plot: no finite values.")
    ax = _Axes(width, 0.0, xs, ys)
    if x_ticks:
        ax.xt = list(x_ticks)
    entries = [(name, colour, "bar") for name, colour, *_ in bands]
    entries += [(name, colour, f"line:{i}") for i, (name, colour, *_) in enumerate(lines)]
    legend, legend_h = _legend(entries, ax.left, 16.0, width - ax.right)
    ax.top = 16.0 + legend_h
    ax.height = height + legend_h
    body: list[str] = list(legend)
    for name, colour, bx, lows, highs in bands:
        pts = [
            (x, lo, hi)
            for x, lo, hi in zip(bx, lows, highs, strict=True)
            if math.isfinite(lo) and math.isfinite(hi)
        ]
        if pts:
            up = " L".join(f"{ax.px(x):.1f},{ax.py(hi):.1f}" for x, _, hi in pts)
            down = " L".join(f"{ax.px(x):.1f},{ax.py(lo):.1f}" for x, lo, _ in reversed(pts))
            body.append(
                f'<path d="M{up} L{down} Z" fill="{colour}" fill-opacity="0.3" stroke="none">'
                f"<title>{_e(name)}</title></path>"
            )
    for i, (name, colour, lx, ly) in enumerate(lines):
        pts2 = [(x, y) for x, y in zip(lx, ly, strict=True) if math.isfinite(y)]
        if not pts2:
            continue
        d = " L".join(f"{ax.px(x):.1f},{ax.py(y):.1f}" for x, y in pts2)
        dash = _DASHES[i % len(_DASHES)]
        body.append(
            f'<path d="M{d}" stroke="{colour}" stroke-width="2.2" fill="none"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + f"><title>{_e(name)}</title></path>"
        )
        body.extend(
            f'<circle cx="{ax.px(x):.1f}" cy="{ax.py(y):.1f}" r="3" fill="{colour}">'
            f"<title>{_e(name)}: {_tick_label(x)}, {_tick_label(y)}</title></circle>"
            for x, y in pts2
        )
    body.extend(ax.frame(x_label, y_label))
    return _svg(width, ax.height, title, body)


# --------------------------------------------------------------------------- page


def _page(title: str, sections: Sequence[str]) -> str:
    made = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><p class='note'>Made by GreenForge on {made}. "
        "Self-contained: no scripts, no network.</p>" + "".join(sections) + "</body></html>\n"
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    """``rows`` hold already escaped HTML."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    # a wide table (the forge's 13 columns) scrolls in its box instead of widening the page
    return f'<div class="tw"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def _pue_fact(pue: float, pue_source: str, metadata: Mapping[str, Any]) -> str:
    """The run's PUE and its source; for a PUE(t) run its energy-weighted PUE and series."""
    from greenforge.pue import run_pue_text

    return run_pue_text(pue, pue_source, metadata)


def _card(label: str, value: str, small: str = "", ident: str = "") -> str:
    id_attr = f' id="{ident}"' if ident else ""
    return (
        f'<div class="card"><div class="small">{_e(label)}</div>'
        f'<div class="big"{id_attr}>{_e(value)}</div><div class="small">{_e(small)}</div></div>'
    )


def _run_section(record: RunRecord, per: FunctionalUnit | None = None) -> str:
    from greenforge.report.sci import FunctionalUnit, sci_for_run

    rid = _e(record.id)
    parts = [f'<section id="run-{rid}"><h2>Run {rid}: {_e(record.name)}</h2>']
    e = record.emissions
    cards = [
        _card(
            "energy",
            fmt_energy_j(record.energy_j),
            f"{fmt_energy_kwh(record.energy_j)}; low {fmt_energy_j(record.energy_low_j)}, "
            f"high {fmt_energy_j(record.energy_high_j)}",
            f"energy-{rid}",
        )
    ]
    if e is not None:
        cards.append(
            _card(
                "CO2e (operational)",
                fmt_co2e_g(e.co2e_g),
                f"low {fmt_co2e_g(e.low_g)}, high {fmt_co2e_g(e.high_g)}",
                f"co2e-{rid}",
            )
        )
        cards.append(
            _card(
                "grid intensity (energy-weighted mean)",
                f"{e.mean_intensity_g_per_kwh:.4g} g/kWh",
                f"zone {e.intensity.zone}; {e.intensity.source}",
            )
        )
    cards.append(_card("duration", f"{record.duration_s:.2f} s", f"status {record.status}"))
    parts.append('<div class="headline">' + "".join(cards) + "</div>")

    facts: list[tuple[str, str]] = [("started", record.started_at)]
    if e is not None:
        facts += [
            ("zone", e.intensity.zone),
            ("intensity source", f"{e.intensity.source} ({e.intensity.signal})"),
            ("intensity kind", e.intensity.kind or "-"),
            ("method / basis", f"{e.intensity.basis}; time-resolved: {e.intensity.time_resolved}"),
            ("PUE", _pue_fact(e.pue, e.pue_source, record.metadata)),
        ]
    attribution = record.metadata.get("attribution")
    if attribution is not None:
        facts.append(("attribution", str(attribution)))
    methods = sorted({c.method for c in record.components})
    facts.append(("energy methods", ", ".join(methods) or "-"))
    parts.append(_table(["what", "value"], [[_e(k), _e(v)] for k, v in facts], set()))

    parts.append(_over_time(record))

    comp_rows = [
        [_e(c.component), _e(fmt_energy_j(c.energy_j)), _e(fmt_energy_j(c.low_j)),
         _e(fmt_energy_j(c.high_j)), _e(c.method)]
        for c in record.components
    ]  # fmt: skip
    if record.embodied is not None:
        b = record.embodied
        comp_rows.append(
            [_e(f"embodied ({b.device})"), "-", "-", "-",
             _e(f"{fmt_co2e_g(b.co2e_g)} CO2e: {b.device_embodied_kg:g} kg x share {b.share:g}; "
                f"{b.source}")]
        )  # fmt: skip
    parts.append("<h3>Components</h3>")
    parts.append(_table(["component", "energy", "low", "high", "method"], comp_rows, {1, 2, 3}))

    if record.windows:
        parts.append("<h3>Windows / epochs</h3>")
        rows = [
            [_e(w.path), f"{w.duration_s:.2f} s", _e(fmt_energy_j(w.energy_j)),
             _e(fmt_co2e_g(w.co2e_g))]
            for w in record.windows
        ]  # fmt: skip
        parts.append(_table(["window", "duration", "energy", "CO2e"], rows, {1, 2, 3}))

    parts.append(_budget_section(record))

    parts.append(_what_if_section(record))

    parts.append("<h3>SCI (Software Carbon Intensity)</h3>")
    if e is None:
        parts.append("<p>No SCI: the run has no grid intensity (measure with a zone).</p>")
    else:
        s = sci_for_run(record, per or FunctionalUnit("run"))
        parts.append(
            f'<p><span id="sci-{rid}">{_e(fmt_co2e_g(s.sci_g))}</span> CO2e per {_e(s.unit)} '
            f"(low {_e(fmt_co2e_g(s.low_g))}, high {_e(fmt_co2e_g(s.high_g))}): "
            f"(E {s.energy_kwh:.4g} kWh x I {s.intensity_g_per_kwh:.4g} g/kWh = "
            f"O {_e(fmt_co2e_g(s.operational_g))} + M {_e(fmt_co2e_g(s.embodied_g))}) "
            f"/ R {s.r:g}.</p>"
            f"<p class='note'>{_e(s.basis)}; {_e(s.embodied_basis)}</p>"
        )

    parts.append("<h3>How these numbers were obtained</h3><ul>")
    how = [
        "Energy: the sum over components of each meter's reading (or model); low/high are the "
        "meters' stated bounds. Methods: " + (", ".join(methods) or "-") + ".",
        "Operational CO2e: energy x PUE x grid intensity, summed over the measurement's "
        "intervals (time-resolved where the intensity source was), with low/high bounds.",
        "Embodied CO2e (manufacturing) is reported apart and enters only the SCI's M.",
    ]
    if record.meters:
        how.append("Meters: " + meter_summary(record.meters) + ".")
    how.extend(f"warning: {w}" for w in record.warnings)
    parts.extend(f"<li>{_e(h)}</li>" for h in how)
    parts.append("</ul></section>")
    return "".join(parts)


def _share(used: float | None, budget: float | None) -> str:
    if used is None or budget is None or not budget > 0:
        return ""
    return f" ({100.0 * used / budget:.0f} % of the budget)"


def _budget_section(record: RunRecord) -> str:
    """Returns the "budget and prediction" block (empty when the run had neither): what was
    used against each budget, the tracker's predicted total, and a bar chart of both."""
    budget = record.metadata.get("budget")
    budget = budget if isinstance(budget, Mapping) else None
    p = record.prediction
    if budget is None and p is None:
        return ""
    rid = _e(record.id)
    e = record.emissions
    used_g = e.co2e_g if e is not None else None
    out = ["<h3>Budget and prediction</h3><ul>"]
    if budget is not None:
        b_g, b_j = _opt(budget.get("co2e_g")), _opt(budget.get("energy_j"))
        if b_g is not None:
            out.append(
                f'<li>CO2e budget <span id="budget-co2e-{rid}">{_e(fmt_co2e_g(b_g))}</span>: '
                f"used {_e(fmt_co2e_g(used_g))}{_e(_share(used_g, b_g))}</li>"
            )
        if b_j is not None:
            out.append(
                f'<li>energy budget <span id="budget-energy-{rid}">{_e(fmt_energy_j(b_j))}'
                f"</span>: used {_e(fmt_energy_j(record.energy_j))}"
                f"{_e(_share(record.energy_j, b_j))}</li>"
            )
        out.append(
            f"<li>exceeded: {'yes' if budget.get('exceeded') else 'no'}"
            f"{'; ' + _e(budget['reason']) if budget.get('reason') else ''}</li>"
        )
    if p is not None:
        share = _share(p.co2e_g, _opt(budget.get("co2e_g")) if budget else None)
        out.append(
            f"<li>predicted total after {p.windows_seen}/{p.windows_total} windows: "
            f'<span id="prediction-co2e-{rid}">{_e(fmt_co2e_g(p.co2e_g))}</span>{_e(share)}, '
            f"{_e(fmt_energy_j(p.energy_j))}, {p.duration_s:.1f} s</li>"
        )
    out.append("</ul>")
    rows: list[tuple[str, float | None]] = [("used (this run)", used_g)]
    if p is not None:
        rows.append((f"predicted total ({p.windows_seen}/{p.windows_total} windows seen)",
                     p.co2e_g))  # fmt: skip
    if budget is not None and _opt(budget.get("co2e_g")) is not None:
        rows.append(("budget", _opt(budget.get("co2e_g"))))
    if len(rows) > 1 and any(v is not None for _, v in rows):
        out.append(
            svg_hbars(
                [label for label, _ in rows],
                [("CO2e", OKABE_ITO["blue"], [v for _, v in rows])],
                title="CO2e used, predicted and budgeted",
                x_label="operational CO2e (g)",
                value_format=fmt_grams,
            )
        )
    return "".join(out)


def _utc(t_s: float) -> str:
    return _dt.datetime.fromtimestamp(t_s, tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _what_if_section(record: RunRecord) -> str:
    """Returns the "cleanest and dirtiest zone and hour" block of a run's section."""
    from greenforge.errors import GreenForgeError
    from greenforge.grid.zones import zone_name
    from greenforge.report.whatif import what_if

    rid = _e(record.id)
    out = ["<h3>Cleanest and dirtiest zone and hour (the planner's view)</h3>"]
    if record.energy_j <= 0:
        return out[0] + "<p>No comparison: the run recorded no energy.</p>"
    try:
        w = what_if(record)
    except GreenForgeError as exc:
        return out[0] + f"<p>No comparison: {_e(exc)}</p>"

    def name(zone: str) -> str:
        try:
            return f"{zone} ({zone_name(zone)})"
        except GreenForgeError:
            return zone

    rows = [
        ("cleanest zone", name(w.cleanest_zone.zone), w.cleanest_zone, "whatif-clean-zone"),
        ("dirtiest zone", name(w.dirtiest_zone.zone), w.dirtiest_zone, "whatif-dirty-zone"),
    ]
    if w.as_ran is not None:
        rows.insert(0, ("as it ran", f"{w.as_ran.zone}, {_utc(w.as_ran.start_s)}", w.as_ran,
                        "whatif-as-ran"))  # fmt: skip
    clean_h, dirty_h = w.cleanest_hour, w.dirtiest_hour
    if clean_h is not None and dirty_h is not None:
        rows.append(("cleanest hour", f"{clean_h.zone}, start {_utc(clean_h.start_s)}", clean_h,
                     "whatif-clean-hour"))  # fmt: skip
        rows.append(("dirtiest hour", f"{dirty_h.zone}, start {_utc(dirty_h.start_s)}", dirty_h,
                     "whatif-dirty-hour"))  # fmt: skip
    out.append(
        _table(
            ["alternative", "where / when", "CO2e", "mean intensity (g/kWh)", "intensity source"],
            [
                [_e(label), _e(where), f'<span id="{ident}-{rid}">{_e(fmt_co2e_g(a.co2e_g))}</span>',
                 f"{a.mean_intensity_g_per_kwh:.4g}", _e(a.source)]
                for label, where, a, ident in rows
            ],
            {2, 3},
        )
    )  # fmt: skip
    out.append(
        svg_hbars(
            [f"{label}: {where}" for label, where, _, _ in rows],
            [("CO2e", OKABE_ITO["green"], [a.co2e_g for _, _, a, _ in rows])],
            title="this run's CO2e in other zones and hours",
            x_label="operational CO2e of this run (g)",
            value_format=fmt_grams,
        )
    )
    if w.hours and clean_h is not None and dirty_h is not None:
        day = math.floor(record.started_s / 86_400.0) * 86_400.0
        spans = [((a.start_s - day) / 3600.0, (a.start_s - day) / 3600.0 + 1.0) for a in w.hours]
        actual_hour = math.floor((record.started_s - day) / 3600.0)
        colours = [
            OKABE_ITO["blue"] if a is clean_h
            else OKABE_ITO["vermillion"] if a is dirty_h
            else OKABE_ITO["black"] if i == actual_hour
            else OKABE_ITO["grey"]
            for i, a in enumerate(w.hours)
        ]  # fmt: skip
        out.append(
            svg_step_bars(
                spans, [a.co2e_g for a in w.hours],
                title=f"this run's CO2e by start hour in {w.zone}",
                x_label=f"start hour on {_utc(day)[:10]} (h, UTC)",
                y_label="CO2e of this run (g)", colour="#222", bar_colours=colours,
            )
        )  # fmt: skip
        out.append(
            "<p class='note'>Bars: the run started at each hour of its day. Blue: cleanest "
            "hour; vermillion: dirtiest; black: the hour it started; grey: the others.</p>"
        )
    out.append(f"<p class='note'>{_e(w.note)}</p>")
    return "".join(out)


def _opt(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) else None


def _over_time(record: RunRecord) -> str:
    """Returns the power and CO2e over time plots (one bar per top-level window, or the whole
    run), with the grid intensity behind the CO2e bars."""
    wins = [w for w in record.windows if "/" not in w.path and w.duration_s > 0]
    e = record.emissions
    if wins:
        spans = [(w.start_s - record.started_s, w.end_s - record.started_s) for w in wins]
        power = [w.energy_j / w.duration_s for w in wins]
        co2 = [math.nan if w.co2e_g is None else w.co2e_g for w in wins]
        shown = (
            "One bar per top-level window (the store keeps per-window totals, not the "
            "per-interval readings): mean power = window energy / duration."
        )
    else:
        spans = [(0.0, max(record.duration_s, 1e-9))]
        power = [record.energy_j / max(record.duration_s, 1e-9)]
        co2 = [math.nan if e is None else e.co2e_g]
        shown = (
            "The run has no windows and the store keeps totals, not per-interval readings: "
            "the bar is the whole run's mean power."
        )
    pue = e.pue if e is not None else 1.0
    intensity = [
        c / (w_j * pue / J_PER_KWH) if math.isfinite(c) and w_j > 0 else math.nan
        for c, w_j in zip(
            co2, [w.energy_j for w in wins] if wins else [record.energy_j], strict=True
        )
    ]
    out = [f"<h3>Power and CO2e over time</h3><p class='note'>{_e(shown)}</p>"]
    out.append(
        svg_step_bars(
            spans, power, title="mean power per window", x_label="time since start (s)",
            y_label="mean power (W)", colour=OKABE_ITO["blue"],
        )
    )  # fmt: skip
    if any(math.isfinite(c) for c in co2):
        out.append(
            svg_step_bars(
                spans, co2, title="CO2e per window with grid intensity behind",
                x_label="time since start (s)", y_label="CO2e (g)",
                colour=OKABE_ITO["green"], background=intensity,
                background_label="grid intensity (g CO2e/kWh)",
            )
        )  # fmt: skip
        out.append(
            "<p class='note'>Green bars: operational CO2e (g); pale orange bars: the grid "
            "intensity each window was charged at (g/kWh, right axis).</p>"
        )
    return "".join(out)


def run_report(records: Sequence[RunRecord], *, per: FunctionalUnit | None = None) -> str:
    """Returns the HTML document (a str) reporting ``records``, one section each; ``per`` is
    SCI's functional unit R (default: per run)."""
    if not records:
        raise DataError("no runs to report: name at least one run id (see `greenforge runs list`).")
    title = (
        f"GreenForge report: run {records[0].id}"
        if len(records) == 1
        else f"GreenForge report: {len(records)} runs"
    )
    return _page(title, [_run_section(r, per) for r in records])


# --------------------------------------------------------------------------- forge


def load_forge_json(forge_dir: Path) -> dict[str, Any]:
    """Returns the parsed ``forge.json`` of a forge output directory."""
    path = forge_dir / "forge.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"no forge.json in {forge_dir}: pass the --out directory of a `greenforge forge` run."
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}. Re-run the forge to rewrite it.") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a forge.json document (not a JSON object).")
    return data


def _mapping(v: object) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _f(v: object) -> float:
    return float(v) if isinstance(v, (int, float)) else math.nan


def forge_report(forge_dir: Path) -> str:
    """Returns the HTML document (a str) reporting the forge output directory ``forge_dir``."""
    from greenforge.forge.output import fmt_g, fmt_interval, runtime_label
    from greenforge.report.sci import sci_for_forge

    data = load_forge_json(forge_dir)
    chosen = data.get("chosen")
    raw = data.get("candidates")
    cands = [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []
    task = _mapping(data.get("task"))
    parts = [f"<section id='forge'><h2>Forge: {_e(task.get('name', forge_dir.name))}</h2>"]

    head = data.get("headline")
    cards: list[str] = [_card("chosen", str(chosen), str(data.get("reason", "")), "forge-chosen")]
    if isinstance(head, Mapping) and _finite(head.get("ratio")):
        lo, hi = _f(head.get("ratio_low")), _f(head.get("ratio_high"))
        interval = f"[{lo:.1f}-{hi:.1f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
        cards.append(
            _card(
                "lifetime CO2e, baseline / chosen",
                f"{_f(head['ratio']):.1f}x",
                f"interval {interval}; {'same' if head.get('same_runtime') else 'different'} "
                "runtime",
                "forge-ratio",
            )
        )
    parts.append('<div class="headline">' + "".join(cards) + "</div>")

    serving = _mapping(data.get("serving"))
    threads = int(_f(serving.get("threads"))) if _finite(serving.get("threads")) else 0
    table_rows = candidate_rows_from_json(cands, chosen, threads)
    rows = [
        [
            _e(r.name), _e(r.recipe), _e(r.precision), _e(runtime_label(r)),
            f"{r.accuracy_pct:.2f}", str(r.parameters), f"{r.mflop:.3g}", f"{r.size_kb:.4g}",
            _e(fmt_g(r.train_g)), f"{r.serving_ms_per_1k:.3g}",
            _e(fmt_interval(r.inference_g_per_1k, r.inference_low_g_per_1k,
                            r.inference_high_g_per_1k)),
            _e(fmt_interval(r.lifetime_g, r.lifetime_low_g, r.lifetime_high_g)),
            _e(r.flags),
        ]
        for r in table_rows
    ]  # fmt: skip
    parts.append("<h3>Candidates</h3>")
    parts.append(
        _table(
            ["candidate", "recipe", "precision", "runtime", "accuracy (%)", "parameters",
             "MFLOP", "size (kB)", "train (g CO2e)", "serving (ms/1k)",
             "inference (g CO2e/1k) [low-high]", "lifetime (g CO2e) [low-high]", "flags"],
            rows, {4, 5, 6, 7, 8, 9, 10, 11},
        )
    )  # fmt: skip
    parts.append(
        "<p class='note'>Lifetime = training lineage + expected inferences, without the "
        "search share (the ranking basis); the chosen model also carries the search share.</p>"
    )

    points: list[dict[str, Any]] = [
        {
            "name": r.name,
            "x": r.lifetime_g,
            "x_low": r.lifetime_low_g,
            "x_high": r.lifetime_high_g,
            "y": r.accuracy_pct,
            "kind": "chosen" if r.chosen else ("pareto" if r.pareto else "other"),
        }
        for r in table_rows
    ]
    parts.append("<h3>Accuracy vs lifetime CO2e (Pareto)</h3>")
    if any(math.isfinite(p["x"]) and math.isfinite(p["y"]) for p in points):
        parts.append(
            svg_scatter(
                points,
                title="accuracy vs lifetime CO2e",
                x_label="lifetime CO2e without search share (g), bars: low-high",
                y_label="accuracy (%)",
            )
        )
    png = forge_dir / "pareto.png"
    if png.is_file():
        b64 = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(
            f'<p class="note">The forge\'s own plot (pareto.png):</p><img alt="Pareto plot" '
            f'style="max-width:100%" src="data:image/png;base64,{b64}">'
        )

    scores = sci_for_forge(data)
    if scores:
        parts.append("<h3>SCI per 1k predictions</h3>")
        sci_rows = [
            [_e(n), _e(fmt_co2e_g(s.sci_g)), _e(fmt_co2e_g(s.low_g)), _e(fmt_co2e_g(s.high_g)),
             f"{s.energy_kwh:.4g}"]
            for n, s in scores.items()
        ]  # fmt: skip
        parts.append(
            _table(["candidate", "SCI (g CO2e/1k)", "low", "high", "E (kWh/1k)"], sci_rows,
                   {1, 2, 3, 4})
        )  # fmt: skip
        first = next(iter(scores.values()))
        parts.append(f"<p class='note'>{_e(first.basis)}; {_e(first.embodied_basis)}</p>")

    parts.append("<h3>Decision, noise and self-check</h3><ul>")
    for line in _forge_lines(data):
        parts.append(f"<li>{_e(line)}</li>")
    parts.append("</ul><h3>How these numbers were obtained</h3>")
    parts.append(f"<p>{_e(data.get('accounting', '-'))}</p>")
    deploy = _mapping(data.get("deployment"))
    parts.append(
        "<p class='note'>"
        + _e(
            f"deployment zone {deploy.get('zone')}, {deploy.get('intensity_g_per_kwh')} g/kWh "
            f"({deploy.get('intensity_source')}), PUE {deploy.get('pue')} "
            f"({deploy.get('pue_source')}); machine {data.get('machine', '?')}"
        )
        + "</p></section>"
    )
    return _page(f"GreenForge report: forge {task.get('name', forge_dir.name)}", parts)


def candidate_rows_from_json(
    candidates: Sequence[Mapping[str, Any]], chosen: object, threads: int
) -> list[CandidateRow]:
    """Returns the ``greenforge forge`` table's rows (:class:`CandidateRow`, grams CO2e) of the
    evaluated candidates in ``forge.json``'s ``candidates`` list (those with an accuracy or an
    inference figure), in their order."""
    from greenforge.forge.output import CandidateRow

    def n(c: Mapping[str, Any], key: str) -> float:
        return _f(c.get(key))

    rows: list[CandidateRow] = []
    for c in candidates:
        if c.get("inference_co2e_g_per_1k") is None and c.get("accuracy") is None:
            continue
        is_chosen = c.get("name") == chosen
        share = n(c, "search_share_co2e_g") if _finite(c.get("search_share_co2e_g")) else 0.0
        rows.append(
            CandidateRow(
                name=str(c.get("name")),
                recipe=str(c.get("recipe", "")),
                precision=str(c.get("precision", "")),
                runtime=str(c.get("runtime", "")),
                threads=threads,
                accuracy_pct=100.0 * n(c, "accuracy"),
                parameters=int(n(c, "parameters")) if _finite(c.get("parameters")) else 0,
                mflop=n(c, "flops") / 1e6,
                size_kb=n(c, "size_bytes") / 1000.0,
                train_g=n(c, "train_co2e_g"),
                serving_ms_per_1k=1000.0 * n(c, "latency_s_per_1k"),
                inference_g_per_1k=n(c, "inference_co2e_g_per_1k"),
                inference_low_g_per_1k=n(c, "inference_co2e_g_per_1k_low"),
                inference_high_g_per_1k=n(c, "inference_co2e_g_per_1k_high"),
                lifetime_g=n(c, "lifetime_co2e_g") - share,
                lifetime_low_g=n(c, "lifetime_co2e_low_g"),
                lifetime_high_g=n(c, "lifetime_co2e_high_g"),
                search_share_g=share if is_chosen else None,
                chosen=is_chosen,
                pareto=bool(c.get("pareto")),
                below_target=bool(c.get("below_target")),
                baseline=c.get("name") == "baseline",
            )
        )
    return rows


def _forge_lines(data: Mapping[str, Any]) -> list[str]:
    """Returns the decision, noise and self-check lines from ``forge.json`` fields."""
    lines: list[str] = [f"status: {data.get('status')}; {data.get('reason', '')}"]
    decision = data.get("decision")
    if isinstance(decision, Mapping) and decision.get("within_noise"):
        lines.append(
            "within measurement noise: "
            + ", ".join(str(c) for c in decision.get("contenders", []))
            + f"; tie-break: {decision.get('tie_break') or 'fewer FLOPs, then smaller size'}"
        )
    noise = data.get("noise")
    if isinstance(noise, Mapping):
        lines.append(
            f"background load {100 * _f(noise.get('background_load')):.0f} %; busy: "
            f"{noise.get('busy')}; intervals widened x{_f(noise.get('widen_factor')):g}"
            + (f"; {noise['note']}" if noise.get("note") else "")
        )
    proto = data.get("protocol")
    if isinstance(proto, Mapping) and proto.get("control_of") is not None:
        lines.append(
            f"self-check: two copies of {proto.get('control_of')} measured "
            f"{100 * _f(proto.get('control_spread')):.1f} % apart"
        )
    lines.extend(f"warning: {w}" for w in data.get("warnings", []) or [])
    return lines


__all__ = [
    "OKABE_ITO",
    "candidate_rows_from_json",
    "fmt_co2e_g",
    "fmt_energy_j",
    "fmt_energy_kwh",
    "fmt_grams",
    "fmt_number",
    "forge_report",
    "integer_ticks",
    "load_forge_json",
    "nice_ticks",
    "run_report",
    "svg_hbars",
    "svg_lines",
    "svg_scatter",
    "svg_stacked_bars",
    "svg_step_bars",
    "svg_step_lines",
    "text_width",
]
