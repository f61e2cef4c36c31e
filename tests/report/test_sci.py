"""SCI scores: the spec's formula, functional units, bounds, and the errors a user sees."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.errors import ConfigError, DataError
from greenforge.records import (
    ComponentTotal,
    EmbodiedEmissions,
    Emissions,
    IntensityProvenance,
    RunRecord,
    WindowRecord,
)
from greenforge.report.sci import (
    NO_EMBODIED,
    FunctionalUnit,
    parse_unit,
    sci_for_forge,
    sci_for_run,
)
from greenforge.units import J_PER_KWH


def record(
    energy_j: float = 3.6e6,
    pue: float = 1.0,
    intensity: float = 400.0,
    rel: float = 0.1,
    embodied_g: float | None = None,
    windows: tuple[WindowRecord, ...] = (),
) -> RunRecord:
    co2e = energy_j * pue / J_PER_KWH * intensity
    return RunRecord(
        id="r1",
        name="train",
        status="completed",
        started_s=1_700_000_000.0,
        ended_s=1_700_003_600.0,
        duration_s=3600.0,
        components=(ComponentTotal("cpu", energy_j, energy_j * 0.9, energy_j * 1.1, "rapl"),),
        emissions=Emissions(
            co2e_g=co2e,
            low_g=co2e * (1 - rel),
            high_g=co2e * (1 + rel),
            pue=pue,
            pue_source="setting",
            intensity=IntensityProvenance("embedded:yearly-2024:DE", "DE"),
            mean_intensity_g_per_kwh=intensity,
        ),
        embodied=None
        if embodied_g is None
        else EmbodiedEmissions(embodied_g, "cpu", 1000.0, 4 * 31_557_600.0, 1.0, "test"),
        windows=windows,
    )


def test_the_specs_worked_example_one_kwh_at_400_plus_its_embodied_hour() -> None:
    # SPEC.md: 1000 kg embodied over 4 years, reserved one hour -> about 28 g (time share)
    m = 1000e3 / (4 * 365 * 24)
    score = sci_for_run(record(embodied_g=m), FunctionalUnit("run"))
    assert score.energy_kwh == pytest.approx(1.0)
    assert score.intensity_g_per_kwh == 400.0
    assert score.embodied_g == pytest.approx(28.5, abs=0.1)
    assert score.sci_g == pytest.approx(400.0 + m)
    assert score.r == 1.0
    assert score.unit == "run"
    assert "ISO/IEC 21031" in score.basis
    assert score.embodied_basis.startswith("M = TE 1000 kg x TS (run time / 4 y lifetime)")


def test_energy_includes_pue_and_e_times_i_is_the_trackers_operational_figure() -> None:
    score = sci_for_run(record(pue=1.5), FunctionalUnit("run"))
    assert score.energy_kwh == pytest.approx(1.5)
    assert score.energy_kwh * score.intensity_g_per_kwh == pytest.approx(score.operational_g)
    assert "PUE 1.5" in score.basis


def test_a_missing_embodied_figure_is_zero_and_says_so() -> None:
    score = sci_for_run(record(), FunctionalUnit("run"))
    assert score.embodied_g == 0.0
    assert score.embodied_basis == NO_EMBODIED


@given(
    energy_j=st.floats(1.0, 1e9),
    intensity=st.floats(1.0, 1500.0),
    rel=st.floats(0.0, 0.9),
    embodied=st.floats(0.0, 1e4),
    count=st.floats(1e-3, 1e9),
)
def test_sci_scales_as_one_over_r_and_lies_within_its_bounds(
    energy_j: float, intensity: float, rel: float, embodied: float, count: float
) -> None:
    rec = record(energy_j=energy_j, intensity=intensity, rel=rel, embodied_g=embodied)
    per_run = sci_for_run(rec, FunctionalUnit("run"))
    per_unit = sci_for_run(rec, FunctionalUnit("unit", count))
    assert per_unit.sci_g == pytest.approx(per_run.sci_g / count, rel=1e-9)
    assert per_unit.low_g <= per_unit.sci_g <= per_unit.high_g
    assert math.isfinite(per_unit.sci_g)


def test_1k_predictions_is_the_count_over_a_thousand() -> None:
    unit = parse_unit("1k-predictions:5000")
    assert unit == FunctionalUnit("1k-predictions", 5000.0)
    score = sci_for_run(record(), unit)
    assert score.r == 5.0
    assert score.unit == "1k predictions"
    assert score.sci_g == pytest.approx(400.0 / 5)
    assert parse_unit("prediction:10") == FunctionalUnit("prediction", 10.0)
    assert parse_unit("sample:60000") == FunctionalUnit("sample", 60000.0)
    assert parse_unit("250") == FunctionalUnit("unit", 250.0)
    assert parse_unit("RUN") == FunctionalUnit("run")


def test_epoch_counts_top_level_epoch_windows() -> None:
    wins = tuple(
        WindowRecord(n, p, 0.0, 1.0, 1.0)
        for n, p in [("epoch-1", "epoch-1"), ("eval", "epoch-1/eval"), ("epoch_2", "epoch_2")]
    )
    score = sci_for_run(record(windows=wins), FunctionalUnit("epoch"))
    assert score.r == 2.0
    assert score.unit == "epoch"
    with pytest.raises(ConfigError, match="no epoch windows"):
        sci_for_run(record(), FunctionalUnit("epoch"))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0", "count must be a number > 0"),
        ("-3", "count must be a number > 0"),
        ("nan", "count must be a number > 0"),
        ("banana", "unknown functional unit --per 'banana'"),
        ("prediction", "needs a count: write --per prediction:N"),
        ("prediction:lots", "bad count in --per 'prediction:lots'"),
        ("run:3", "'run' takes no count"),
        ("banana:3", "unknown functional unit"),
    ],
)
def test_a_bad_unit_is_named_with_what_to_do(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=r"use|write|must") as err:
        parse_unit(text)
    assert words in str(err.value)


def test_a_run_without_intensity_has_no_sci() -> None:
    import dataclasses

    with pytest.raises(DataError, match="no operational emissions"):
        sci_for_run(dataclasses.replace(record(), emissions=None), FunctionalUnit("run"))


def test_forge_candidates_score_per_1k_predictions_with_m_stated_zero() -> None:
    forge = {
        "deployment": {"zone": "DE", "intensity_g_per_kwh": 400.0, "pue": 1.2},
        "candidates": [
            {
                "name": "baseline",
                "inference_co2e_g_per_1k": 0.02,
                "inference_co2e_g_per_1k_low": 0.018,
                "inference_co2e_g_per_1k_high": 0.023,
            },
            {"name": "broken", "inference_co2e_g_per_1k": None},
        ],
    }
    scores = sci_for_forge(forge)
    assert list(scores) == ["baseline"]
    s = scores["baseline"]
    assert s.unit == "1k predictions"
    assert s.sci_g == 0.02
    assert s.low_g == 0.018
    assert s.high_g == 0.023
    assert s.energy_kwh * s.intensity_g_per_kwh == pytest.approx(0.02)
    assert s.embodied_g == 0.0
    assert "M = 0" in s.embodied_basis
