"""Replaying recorded forecasts (e.g. a live provider's own) in the back-tester."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from greenforge.errors import DataError
from greenforge.grid.series import IntensitySeries
from greenforge.schedule.backtest import JobShape, backtest
from greenforge.schedule.forecast import ForecastInput, create_forecaster
from greenforge.schedule.replay import (
    RecordedForecaster,
    append_forecast_csv,
    load_forecast_csv,
)
from greenforge.timeutil import utc_iso_seconds

H = 3600.0
T0 = dt.datetime(2023, 3, 1, tzinfo=dt.timezone.utc).timestamp()


def actual_series(days: int = 20) -> IntensitySeries:
    hours = np.arange(24 * days)
    rng = np.random.default_rng(3)
    values = np.asarray(
        300 + 120 * np.cos(hours * 2 * np.pi / 24) + rng.normal(0, 20, hours.size), dtype=np.float64
    )
    return IntensitySeries(T0 + H * hours.astype(np.float64), values, H, "GB", "test:actual")


def write_recording(
    path: Path, series: IntensitySeries, every_h: int, reach_h: int, bias: float = 0.0
) -> None:
    """A forecast issued every ``every_h`` hours for the next ``reach_h`` hours: the actual
    values plus ``bias`` (a perfect forecaster when 0)."""
    rows = ["issued_at,target_time,value,zone"]
    for i in range(0, len(series), every_h):
        issued = series.times_s[i]
        for j in range(i, min(i + reach_h, len(series))):
            value = series.values_g_per_kwh[j] + bias
            rows.append(
                f"{utc_iso_seconds(issued)},{utc_iso_seconds(series.times_s[j])},{value:.4f},GB"
            )
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_a_perfect_recording_captures_what_the_oracle_does(tmp_path: Path) -> None:
    series = actual_series(days=40)  # blend needs 37 days of history
    path = tmp_path / "provider.csv"
    write_recording(path, series, every_h=1, reach_h=28)
    recorded = create_forecaster(f"recorded:{path}")
    assert recorded.name == "recorded:provider.csv"
    result = backtest(
        {"GB": series},
        [recorded, create_forecaster("oracle"), create_forecaster("blend")],
        [JobShape(4, 24)],
    )
    replay = result.get("GB", "recorded:provider.csv", 4, 24)
    oracle = result.get("GB", "oracle", 4, 24)
    assert replay.captured == pytest.approx(1.0)
    assert replay.planned_g_per_kw == pytest.approx(oracle.planned_g_per_kw)
    assert replay.mae_g_per_kwh == pytest.approx(0.0, abs=1e-3)
    assert not replay.in_sample


def test_each_decision_uses_the_latest_issue_before_it_never_a_later_one(
    tmp_path: Path,
) -> None:
    series = actual_series(days=3)
    path = tmp_path / "issues.csv"
    # issue k (every 6 h) predicts the constant k for 24 h: the value read says which issue
    rows = ["issued_at,target_time,value"]
    for k, i in enumerate(range(0, 48, 6)):
        for j in range(i, i + 24):
            rows.append(f"{series.times_s[i]:.0f},{series.times_s[j]:.0f},{k}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    forecaster = RecordedForecaster.from_csv(path)
    decisions = series.times_s[[0, 5, 6, 11, 13]]
    inp = ForecastInput(np.zeros((5, 0)), decisions, H, 6, "ANY")  # zone-less file: any zone
    fc = forecaster.predict(inp)
    assert fc[:, 0].tolist() == [0.0, 0.0, 1.0, 1.0, 2.0]


def test_finer_forecasts_are_averaged_into_the_data_step(tmp_path: Path) -> None:
    path = tmp_path / "half_hourly.csv"
    rows = ["issued,target,intensity"]
    for j in range(8):
        rows.append(f"{T0:.0f},{T0 + 1800 * j:.0f},{100 + 10 * j}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    inp = ForecastInput(np.zeros((1, 0)), np.array([T0]), H, 4, "GB")
    fc = RecordedForecaster.from_csv(path).predict(inp)
    np.testing.assert_allclose(fc[0], [105.0, 125.0, 145.0, 165.0])


def test_gaps_stale_issues_and_short_reach_are_errors_not_silent_fallbacks(
    tmp_path: Path,
) -> None:
    series = actual_series(days=4)
    path = tmp_path / "short.csv"
    write_recording(path, series, every_h=1, reach_h=12)
    with pytest.raises(DataError, match="has no value for"):
        backtest({"GB": series}, [RecordedForecaster.from_csv(path)], [JobShape(4, 24)])
    sparse = tmp_path / "sparse.csv"
    write_recording(sparse, series, every_h=12, reach_h=48)
    with pytest.raises(DataError, match="h old"):
        backtest({"GB": series}, [RecordedForecaster.from_csv(sparse)], [JobShape(4, 24)])
    inp = ForecastInput(np.zeros((1, 0)), np.array([T0 - H]), H, 4, "GB")
    with pytest.raises(DataError, match="no forecast issued at or before"):
        RecordedForecaster.from_csv(sparse).predict(inp)
    with pytest.raises(DataError, match="no forecasts for zone 'DE'"):
        RecordedForecaster.from_csv(sparse).predict(
            ForecastInput(np.zeros((1, 0)), np.array([T0]), H, 4, "DE")
        )


def test_bad_files_name_the_line_and_the_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("issued_at,target_time,value\n2023-03-01T00:00Z,2023-03-01T01:00Z,abc\n")
    with pytest.raises(DataError, match=r"bad.csv:2: bad value 'abc'"):
        load_forecast_csv(bad)
    bad.write_text("issued_at,target_time,value\nyesterday,2023-03-01T01:00Z,5\n")
    with pytest.raises(DataError, match=r"bad.csv:2: bad time 'yesterday'"):
        load_forecast_csv(bad)
    bad.write_text("issued_at,target_time,value\n2023-03-01T00:00Z,2023-03-01T01:00Z,-4\n")
    with pytest.raises(DataError, match="outside 0-5000"):
        load_forecast_csv(bad)
    bad.write_text("time,value\n2023-03-01T00:00Z,5\n")
    with pytest.raises(DataError, match="no 'issued_at' column"):
        load_forecast_csv(bad)
    with pytest.raises(DataError, match="cannot read forecast file"):
        load_forecast_csv(tmp_path / "missing.csv")


def test_append_records_a_providers_forecast_for_later_replay(tmp_path: Path) -> None:
    series = actual_series(days=1)
    path = tmp_path / "recorded.csv"
    assert append_forecast_csv(path, series, issued_s=T0) == 24
    assert append_forecast_csv(path, series, issued_s=T0 + H) == 24
    recorded = load_forecast_csv(path)["GB"]
    assert recorded.issued_s.tolist() == [T0, T0 + H]
    assert recorded.target_s.size == 48
    inp = ForecastInput(np.zeros((1, 0)), np.array([T0 + 2 * H]), H, 3, "GB")
    fc = RecordedForecaster(load_forecast_csv(path)).predict(inp)
    np.testing.assert_allclose(fc[0], series.values_g_per_kwh[2:5], rtol=1e-5)
