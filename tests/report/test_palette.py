"""Every colour a report plot draws with is from the Okabe-Ito palette (colour-blind safe) or a
neutral grey, and every plot names both axes with a unit in brackets."""

from __future__ import annotations

import re

from greenforge.report.html import OKABE_ITO, run_report, svg_hbars, svg_step_lines

from .test_whatif import _run

NEUTRAL = {"#222", "#555", "#000", "#8a5a00", "none"}
"""Axis ink, note grey, and the darker orange of the right-hand intensity axis text."""


def _colours(svg: str) -> set[str]:
    return set(re.findall(r'(?:fill|stroke)="([^"]+)"', svg))


def test_plots_use_the_okabe_ito_palette_and_label_axes_with_units() -> None:
    page = run_report([_run()])
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)
    svgs.append(
        svg_hbars(["a", "b"], [("x", OKABE_ITO["blue"], [1.0, -2.0]),
                               ("y", OKABE_ITO["orange"], [None, 3.0])],
                  title="t", x_label="saving (%)")
    )  # fmt: skip
    svgs.append(
        svg_step_lines(
            [("DE", OKABE_ITO["blue"], [(0.0, 1.0), (1.0, 2.0)], [300.0, 200.0])],
            title="t", x_label="time (h)", y_label="intensity (g/kWh)",
            shade=[(0.5, 1.5, OKABE_ITO["yellow"])], shade_label="chosen",
            marks=[(0.0, "now", OKABE_ITO["black"])],
        )
    )  # fmt: skip
    allowed = {c.upper() for c in OKABE_ITO.values()} | {c.upper() for c in NEUTRAL}
    for svg in svgs:
        assert _colours(svg)
        assert {c.upper() for c in _colours(svg)} <= allowed, svg[:120]
        labels = re.findall(r'font-size="12"[^>]*>([^<]+)</text>', svg)
        assert labels, svg[:120]
        assert all(re.search(r"\([^)]+\)", label) for label in labels), labels


def test_tick_labels_have_no_exponent_below_ten_million() -> None:
    svg = svg_hbars(["a"], [("x", OKABE_ITO["blue"], [4076.0])], title="t", x_label="CO2e (g)")
    assert ">2000<" in svg
    assert "e+" not in svg
