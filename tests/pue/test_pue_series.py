"""PUE over time: load_pue's three kinds of spec, the series' lookups, and the facility model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.errors import ConfigError, DataError, UnknownNameError
from greenforge.grid.series import IntensitySeries
from greenforge.pue import (
    DESIGNS,
    PueSeries,
    apply_pue,
    energy_weighted_pue,
    load_pue,
    model_pue,
)
from greenforge.records import EnergyReading, Interval

T0 = 1_700_000_000.0


def test_a_number_is_a_constant_series() -> None:
    pue = load_pue("1.25")

    assert pue.kind == "constant"
    assert pue.over([0.0, T0, 4e9]).tolist() == [1.25, 1.25, 1.25]
    assert load_pue(1.1).at(T0) == 1.1


def test_a_facility_csv_is_read_sorted_and_held_between_points(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_text(
        "timestamp,pue\n2023-07-01T01:00Z,1.30\n2023-07-01T00:00Z,1.20\n1688176800,1.40\n"
    )  # the third row is 02:00 UTC in unix seconds

    pue = load_pue(str(path))

    t = pue.times_s[0]
    assert pue.kind == "file"
    assert pue.source == "file:site.csv"
    assert pue.step_s == 3600.0
    assert pue.over([t - 10, t + 1800, t + 3600, t + 9000, t + 99999]).tolist() == [
        1.2, 1.2, 1.3, 1.4, 1.4,
    ]  # fmt: skip
    assert pue.mean([t], [t + 7200])[0] == pytest.approx(1.25)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("timestamp,pue\n2023-07-01T00:00Z,0.9\n", "PUE 0.9"),
        ("timestamp,pue\n2023-07-01T00:00Z,abc\n", r"site.csv:2: cannot read"),
        ("time,watts\n2023-07-01T00:00Z,1.2\n", "header must name"),
        ("timestamp,pue\n", "no data rows"),
        ("timestamp,pue\n2023-07-01T00:00Z,1.2\n2023-07-01T00:00Z,1.3\n", "appears twice"),
    ],
)
def test_bad_facility_files_name_the_problem(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "site.csv"
    path.write_text(text)

    with pytest.raises(DataError, match=match):
        load_pue(str(path))


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("0.8", ConfigError, "between 1 and 3"),
        ("model:free-cooled", ConfigError, "model:<design>:<temperature.csv>"),
        ("model:free-cooled:t.csv:1.5", ConfigError, "IT load '1.5'"),
        ("model:water-cooled:t.csv", UnknownNameError, "air-cooled, free-cooled"),
        ("no-such-file.csv", ConfigError, "not found"),
        ("", ConfigError, "give a number"),
    ],
)
def test_bad_specs_say_what_to_write(spec: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        load_pue(spec)


def test_model_spec_reads_temperatures_and_it_load(temperature_csv: Path) -> None:
    free = load_pue(f"model:free-cooled:{temperature_csv}")
    air = load_pue(f"model:air-cooled:{temperature_csv}:0.6")
    light = load_pue(f"model:air-cooled:{temperature_csv}:0.3")

    assert free.times_s.size == 8760
    assert free.step_s == 3600.0
    assert free.kind == "model"
    assert "model:free-cooled(IT load 0.6)" in free.source
    assert np.all(free.values <= air.values + 1e-12)  # an economiser never costs more
    assert np.all(light.values > air.values)  # fixed losses weigh more at light load
    assert 1.3 < air.values.mean() < 1.6  # the survey average is 1.58
    assert 1.08 < free.values.mean() < 1.25  # free-cooled sites report 1.1-1.2


def test_free_cooling_hours_have_the_lowest_pue_and_hot_hours_the_highest() -> None:
    temps = np.array([-5.0, 10.0, 18.0, 22.5, 27.0, 35.0])

    free = model_pue(temps, 0.6, "free-cooled")
    air = model_pue(temps, 0.6, "air-cooled")

    assert free[0] == free[1] == free[2]  # below 18 deg C: no chiller at all
    assert free[2] < free[3] < free[4] < free[5]
    assert np.all(np.diff(air[1:]) > 0)  # a chiller works harder as it gets hotter
    assert free[5] < air[5]  # both chillers run fully; the economiser's air handlers use less


def test_model_hand_computation_at_35_deg_c_full_load() -> None:
    d = DESIGNS["air-cooled"]
    losses = sum(d.losses)
    heat = 1.0 + losses + d.lights

    expected = heat * (1 + d.fans) + heat / 2.96

    assert model_pue([35.0], 1.0, "air-cooled")[0] == pytest.approx(expected)


def test_bad_it_load_is_refused() -> None:
    with pytest.raises(ConfigError, match="IT load"):
        model_pue([20.0], 0.0, "air-cooled")


def test_apply_pue_multiplies_each_step_by_its_mean_pue() -> None:
    grid = IntensitySeries(np.array([T0, T0 + 3600]), np.array([100.0, 200.0]), 3600.0, "DE", "x")
    pue = PueSeries(np.array([T0, T0 + 1800]), np.array([1.2, 1.4]), 1800.0, "site", "file")

    out = apply_pue(grid, pue)

    assert out.values_g_per_kwh.tolist() == pytest.approx([100.0 * 1.3, 200.0 * 1.4])
    assert out.source == "x x PUE(t) site"


def test_energy_weighted_pue_of_a_run() -> None:
    pue = PueSeries(np.array([T0, T0 + 60]), np.array([1.1, 1.5]), 60.0, "site", "file")
    intervals = [
        Interval(T0, T0 + 60, (EnergyReading.exact("cpu", 3.0, "fake"),)),
        Interval(T0 + 60, T0 + 120, (EnergyReading.exact("cpu", 1.0, "fake"),)),
    ]

    assert energy_weighted_pue(pue, intervals, 9.9) == pytest.approx((3 * 1.1 + 1 * 1.5) / 4)
    assert energy_weighted_pue(pue, [], 9.9) == 9.9


def test_series_refuses_implausible_values() -> None:
    with pytest.raises(DataError, match="has PUE 4:"):
        PueSeries(np.array([T0]), np.array([4.0]), 3600.0, "x", "file")


@given(
    st.lists(st.floats(1.0, 3.0), min_size=1, max_size=30),
    st.floats(-5000.0, 120_000.0),
    st.floats(0.0, 50_000.0),
)
def test_mean_lies_within_the_values_and_equals_a_fine_riemann_sum(
    values: list[float], start_offset_s: float, width_s: float
) -> None:
    times = T0 + 3600.0 * np.arange(len(values), dtype=np.float64)
    pue = PueSeries(times, np.array(values), 3600.0, "prop", "file")
    a = T0 + start_offset_s

    m = float(pue.mean([a], [a + width_s])[0])

    assert min(values) - 1e-9 <= m <= max(values) + 1e-9
    if width_s > 1.0:
        grid = a + (np.arange(4000) + 0.5) * width_s / 4000
        # each jump inside the range moves a midpoint sum by at most jump / 4000
        tolerance = len(values) * (max(values) - min(values)) / 4000 + 1e-9
        assert m == pytest.approx(float(pue.over(grid).mean()), abs=tolerance)
