"""The HTML report without a browser: escaping, plots, runs without windows or intensity, and
the errors a user sees (the rendering itself: tests/integration/test_report_browser.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.errors import DataError
from greenforge.records import ComponentTotal, RunRecord
from greenforge.report.html import (
    fmt_co2e_g,
    fmt_energy_j,
    forge_report,
    nice_ticks,
    run_report,
    svg_step_bars,
)


def _bare(name: str = "<b>x</b>") -> RunRecord:
    return RunRecord(
        id="r<1>",
        name=name,
        status="completed",
        started_s=1_700_000_000.0,
        ended_s=1_700_000_010.0,
        duration_s=10.0,
        components=(ComponentTotal("cpu", 123.0, 100.0, 150.0, "model:cpu-tdp"),),
        emissions=None,
    )


@given(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(1e-6, 1e6, allow_nan=False),
)
def test_ticks_are_increasing_and_cover_the_range(low: float, span: float) -> None:
    ticks = nice_ticks(low, low + span)
    assert ticks == sorted(ticks)
    slack = 1e-9 * max(1.0, abs(low) + span)
    assert ticks[0] <= low + slack
    assert ticks[-1] >= low + span - slack
    assert 2 <= len(ticks) <= 12


def test_a_run_without_windows_or_intensity_still_reports_and_says_so() -> None:
    page = run_report([_bare()])
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<b>x</b>" not in page
    assert "r&lt;1&gt;" in page
    assert fmt_energy_j(123.0) in page
    assert "bar is the whole run" in page
    assert "No SCI" in page
    assert "<script" not in page


def test_no_runs_is_an_error_that_says_what_to_do() -> None:
    with pytest.raises(DataError, match="runs list"):
        run_report([])


def test_a_missing_or_broken_forge_json_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no forge\.json"):
        forge_report(tmp_path)
    (tmp_path / "forge.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(DataError, match=r"not a forge\.json"):
        forge_report(tmp_path)


def test_a_forge_json_without_candidates_reports_without_a_plot(tmp_path: Path) -> None:
    (tmp_path / "forge.json").write_text(json.dumps({"status": "failed"}), encoding="utf-8")
    page = forge_report(tmp_path)
    assert "<svg" not in page
    assert "status: failed" in page


def test_step_bars_draw_one_bar_per_finite_value() -> None:
    svg = svg_step_bars(
        [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)],
        [1.0, float("nan"), 3.0],
        title="t",
        x_label="time (s)",
        y_label="power (W)",
    )
    assert svg.count("<rect") == 2
    assert "time (s)" in svg
    assert "power (W)" in svg


def test_formats_are_stable() -> None:
    assert fmt_energy_j(2750.0) == "2750 J"
    assert fmt_co2e_g(0.123456) == "0.1235 g"
    assert fmt_co2e_g(None) == "-"


@pytest.mark.parametrize("value", [0.0, 1e-15, 1e12])
def test_step_bars_survive_degenerate_scales(value: float) -> None:
    svg = svg_step_bars([(0.0, 1e-9)], [value], title="t", x_label="x (s)", y_label="y (W)")
    assert svg.count("<rect") == 1
    assert "nan" not in svg


def test_the_sci_section_uses_the_unit_the_user_names() -> None:
    import dataclasses
    import html
    import re

    from greenforge.records import EmbodiedEmissions, Emissions, IntensityProvenance
    from greenforge.report.sci import FunctionalUnit, parse_unit, sci_for_run

    record = dataclasses.replace(
        _bare("train"),
        id="abc",
        emissions=Emissions(
            co2e_g=0.5,
            low_g=0.4,
            high_g=0.7,
            pue=1.2,
            pue_source="config",
            intensity=IntensityProvenance("static:DE", "DE", kind="annual"),
            mean_intensity_g_per_kwh=500.0,
        ),
        embodied=EmbodiedEmissions(0.1, "server", 1000.0, 1.3e8, 1.0, "catalog:x"),
    )
    for text, label in (("run", "per run"), ("1k-predictions:5000", "per 1k predictions")):
        unit = parse_unit(text) if text != "run" else FunctionalUnit("run")
        score = sci_for_run(record, unit)
        page = html.unescape(run_report([record], per=None if text == "run" else unit))
        shown = re.search(r'<span id="sci-abc">([^<]+)</span> CO2e (per [^(]+) \(', page)
        assert shown is not None
        assert (shown[1], shown[2].strip()) == (fmt_co2e_g(score.sci_g), label)
        assert f"/ R {score.r:g}" in page
        assert f"M {fmt_co2e_g(score.embodied_g)}" in page
    assert score.sci_g == pytest.approx((0.5 + score.embodied_g) / 5.0)
