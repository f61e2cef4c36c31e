"""The run report's "cleanest and dirtiest zone and hour": the run's own energy profile charged
on the embedded figures in every zone and at every hour of its day, like for like."""

from __future__ import annotations

import math

import pytest

from greenforge.grid.steps import embedded_steps
from greenforge.records import (
    ComponentTotal,
    Emissions,
    IntensityProvenance,
    RunRecord,
    WindowRecord,
)
from greenforge.report.html import fmt_co2e_g, run_report
from greenforge.report.whatif import energy_profile, what_if
from greenforge.units import J_PER_KWH

START = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC


def _run(zone: str | None = "DE", windows: bool = True) -> RunRecord:
    wins = (
        tuple(
            WindowRecord(f"epoch-{i}", f"epoch-{i}", START + 600 * i, START + 600 * (i + 1),
                         1e5 * (i + 1), None)
            for i in range(3)
        )
        if windows
        else ()
    )  # fmt: skip
    energy = 7e5  # 1e5 + 2e5 + 3e5 in windows, 1e5 outside them
    emissions = (
        None
        if zone is None
        else Emissions(
            co2e_g=80.0,
            low_g=70.0,
            high_g=90.0,
            pue=1.2,
            pue_source="setting",
            intensity=IntensityProvenance(f"static:{zone}", zone),
            mean_intensity_g_per_kwh=80.0 / (energy * 1.2 / J_PER_KWH),
        )
    )
    return RunRecord(
        id="w1",
        name="what-if",
        status="completed",
        started_s=START,
        ended_s=START + 1800.0,
        duration_s=1800.0,
        components=(ComponentTotal("cpu", energy, energy, energy, "rapl"),),
        emissions=emissions,
        windows=wins,
    )


def test_the_energy_profile_keeps_the_runs_energy() -> None:
    profile = energy_profile(_run())
    assert math.fsum(j for _, _, j in profile) == pytest.approx(7e5)
    assert profile[-1][:2] == (START, START + 1800.0)  # the energy outside the windows
    assert profile[-1][2] == pytest.approx(1e5)
    assert energy_profile(_run(windows=False)) == [(START, START + 1800.0, 7e5)]


def test_each_zone_is_charged_the_runs_energy_at_its_own_intensity() -> None:
    w = what_if(_run(), zones=["DE", "SE", "PL"])
    assert w.zones_compared == 3
    kwh = 7e5 * 1.2 / J_PER_KWH
    for alt in (w.cleanest_zone, w.dirtiest_zone):
        steps = embedded_steps(alt.zone, START, START + 1800.0)
        expected = math.fsum(steps.co2e_g(s, e, j, 1.2) for s, e, j in energy_profile(_run()))
        assert alt.co2e_g == pytest.approx(expected)
        assert alt.mean_intensity_g_per_kwh == pytest.approx(alt.co2e_g / kwh)
    assert w.cleanest_zone.zone == "SE"
    assert w.dirtiest_zone.zone == "PL"
    assert w.as_ran is not None
    assert w.cleanest_zone.co2e_g <= w.as_ran.co2e_g <= w.dirtiest_zone.co2e_g


def test_the_hours_are_the_same_run_started_at_each_hour_of_its_utc_day() -> None:
    w = what_if(_run(), zones=["DE"])
    assert len(w.hours) == 24
    day = math.floor(START / 86_400) * 86_400
    minute = START % 3600
    assert [a.start_s for a in w.hours] == [day + 3600 * h + minute for h in range(24)]
    assert w.as_ran is not None
    assert w.as_ran.co2e_g in [a.co2e_g for a in w.hours]  # its own hour is one of them
    clean, dirty = w.cleanest_hour, w.dirtiest_hour
    assert clean is not None
    assert dirty is not None
    assert clean.co2e_g == min(a.co2e_g for a in w.hours) < dirty.co2e_g
    assert "profile" in w.as_ran.source  # DE has an hourly typical profile


def test_a_run_without_a_zone_compares_zones_but_not_hours_and_says_why() -> None:
    w = what_if(_run(zone=None), zones=["DE", "FR"])
    assert w.hours == ()
    assert w.cleanest_hour is None
    assert w.pue == 1.0
    assert "PUE 1 assumed" in w.note
    assert "no hour comparison" in w.note


def test_the_run_section_shows_the_comparison_with_its_numbers() -> None:
    record = _run()
    page = run_report([record])
    w = what_if(record)
    assert "Cleanest and dirtiest zone and hour" in page
    assert f'id="whatif-clean-zone-w1">{fmt_co2e_g(w.cleanest_zone.co2e_g)}<' in page
    assert f'id="whatif-dirty-zone-w1">{fmt_co2e_g(w.dirtiest_zone.co2e_g)}<' in page
    assert w.cleanest_hour is not None
    assert f'id="whatif-clean-hour-w1">{fmt_co2e_g(w.cleanest_hour.co2e_g)}<' in page
    assert "start hour on 2026-05-28 (h, UTC)" in page


def test_budget_and_prediction_show_the_share_used_and_predicted() -> None:
    import dataclasses

    from greenforge.records import Prediction

    record = dataclasses.replace(
        _run(),
        prediction=Prediction(1, 3, 2.1e6, 240.0, 5400.0),
        metadata={"budget": {"co2e_g": 200.0, "energy_j": 1.4e6, "exceeded": False,
                             "reason": None}},
    )  # fmt: skip
    page = run_report([record])
    assert f'id="budget-co2e-w1">{fmt_co2e_g(200.0)}<' in page
    assert "used 80 g (40 % of the budget)" in page
    assert "(50 % of the budget)" in page  # 7e5 J of 1.4e6 J
    assert f'id="prediction-co2e-w1">{fmt_co2e_g(240.0)}<' in page
    assert "(120 % of the budget)" in page
    assert "CO2e used, predicted and budgeted" in page
