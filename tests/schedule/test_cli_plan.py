"""Specification of ``greenforge plan`` and ``greenforge backtest`` as a user runs them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from greenforge.cli.app import main

T0 = dt.datetime(2023, 3, 1, tzinfo=dt.timezone.utc)


def write_csv(path: Path, values: np.ndarray, start: dt.datetime = T0) -> Path:
    lines = ["timestamp,value"]
    for i, v in enumerate(values):
        t = start + dt.timedelta(hours=i)
        lines.append(f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{v:.3f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def daily(n_days: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hours = np.arange(24 * n_days)
    return 300 + 150 * np.cos((hours - 3) * 2 * np.pi / 24) + rng.normal(0, 20, hours.size)


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, object]:
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    data: dict[str, object] = json.loads(out)
    return data


def test_plan_without_a_file_uses_the_provider_forecast_and_labels_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = run_json(
        capsys, ["plan", "--zone", "GB", "--duration", "4h", "--deadline", "+24h", "--json"]
    )
    assert "provider forecast (embedded)" in str(plan["forecast"])
    assert str(plan["forecast_source"]).startswith("embedded:profile")
    zone_forecasts = plan["zone_forecasts"]
    assert isinstance(zone_forecasts, dict)
    assert "not a live forecast" in zone_forecasts["GB"]
    slots = plan["slots"]
    assert isinstance(slots, list)
    assert len(slots) == 1
    job = plan["job"]
    assert isinstance(job, dict)
    assert slots[0]["start_s"] >= job["earliest_start_s"]
    assert slots[0]["end_s"] <= job["deadline_s"]
    assert plan["power_assumed"] is True


def test_plan_prints_a_table_with_saving_and_advice(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "-z", "DE", "--duration", "1h30m", "--deadline", "+36h", "--power", "300"])
    out = capsys.readouterr().out
    assert code == 0
    assert "saving" in out
    assert "DE" in out
    assert "300 W" in out


def test_plan_on_a_file_covering_the_window_uses_it_as_the_forecast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = np.full(48, 400.0)
    values[30:34] = 50.0
    path = write_csv(tmp_path / "fc.csv", values)
    plan = run_json(
        capsys,
        [
            "plan",
            "--zone",
            "XX",
            "--duration",
            "4h",
            "--earliest",
            "2023-03-01T00:00Z",
            "--deadline",
            "+48h",
            "--file",
            str(path),
            "--json",
        ],
    )
    assert plan["start"] == "2023-03-02T06:00:00Z"
    assert plan["expected_co2e_g"] == pytest.approx(200.0)
    assert "file itself" in str(plan["forecast"])


def test_plan_forecasts_from_history_and_reports_regret_where_the_file_shows_the_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "hist.csv", daily(50))
    plan = run_json(
        capsys,
        [
            "plan",
            "--zone",
            "XX",
            "--duration",
            "3h",
            "--earliest",
            "2023-04-15T00:00Z",
            "--deadline",
            "+24h",
            "--file",
            str(path),
            "--forecast",
            "blend",
            "--interruptible",
            "--json",
        ],
    )
    assert str(plan["forecast_source"]).startswith("forecast:blend")
    assert plan["oracle_co2e_g"] is not None
    assert plan["regret_g"] is not None
    assert float(plan["regret_g"]) >= 0  # type: ignore[arg-type]


def test_a_forecaster_reads_measured_history_from_the_configured_provider(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = now - dt.timedelta(days=50) + dt.timedelta(hours=3)  # ends 2 h after now
    path = write_csv(tmp_path / "recent.csv", daily(50), start=start)
    monkeypatch.setenv("GREENFORGE_INTENSITY_PROVIDERS", "files")
    monkeypatch.setenv("GREENFORGE_INTENSITY_FILES", str(path))
    plan = run_json(
        capsys,
        [
            "plan",
            "--zone",
            "XX",
            "--duration",
            "2h",
            "--deadline",
            "+24h",
            "--forecast",
            "blend",
            "--json",
        ],
    )
    assert str(plan["forecast_source"]).startswith("forecast:blend from csv:")
    assert "measured history" in str(plan["forecast"])


def test_a_forecaster_refuses_a_typical_profile_as_history(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["plan", "-z", "GB", "-d", "2h", "--deadline", "+24h", "--forecast", "blend"])
    assert code == 2
    assert "needs measured history" in capsys.readouterr().err


def test_plan_with_a_quantile_forecast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "hist.csv", daily(60))
    plan = run_json(
        capsys,
        [
            "plan",
            "--zone",
            "XX",
            "--duration",
            "2h",
            "--earliest",
            "2023-04-27T00:00Z",
            "--deadline",
            "+24h",
            "--file",
            str(path),
            "--forecast",
            "blend",
            "--quantile",
            "0.9",
            "--json",
        ],
    )
    assert "blend@p90" in str(plan["forecast_source"])


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--duration", "soon", "--deadline", "+24h"], 2, "bad duration"),
        (["--duration", "4h", "--deadline", "2001-01-01T00:00Z"], 8, "deadline"),
        (["--duration", "4h", "--deadline", "+2h"], 8, "only 2 h"),
        (["--duration", "4h", "--deadline", "+24h", "--quantile", "0.9"], 2, "spread"),
        (["--duration", "4h", "--deadline", "+24h", "--forecast", "nope"], 2, "forecaster"),
    ],
)
def test_bad_plans_fail_with_a_clear_message_and_exit_code(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--zone", "GB", *argv]) == code
    assert message in capsys.readouterr().err


def test_plan_with_a_file_for_another_zone_names_the_zones_it_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_data: Path
) -> None:
    gb = shared_data / "grid" / "hourly" / "GB_2023_hourly.csv.gz"
    code = main(
        [
            "plan",
            "--zone",
            "DE",
            "--duration",
            "1h",
            "--earliest",
            "2023-05-01T00:00Z",
            "--deadline",
            "+12h",
            "--file",
            str(gb),
        ]
    )
    assert code == 2
    assert "GB" in capsys.readouterr().err


def test_backtest_reports_saving_oracle_and_captured_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "year.csv", daily(60, seed=2))
    data = run_json(
        capsys,
        [
            "backtest",
            "--file",
            str(path),
            "--zone",
            "XX",
            "--job-hours",
            "1,4",
            "--slack-hours",
            "12",
            "--forecast",
            "blend,oracle",
            "--json",
        ],
    )
    results = data["results"]
    assert isinstance(results, list)
    assert len(results) == 4
    for row in results:
        assert row["zone"] == "XX"
        assert {"saving_pct", "oracle_saving_pct", "captured", "mae_g_per_kwh"} <= set(row)
        if row["forecaster"] == "oracle":
            assert row["captured"] == pytest.approx(1.0)
    assert data["policy"] == "once"


def test_backtest_prints_a_table_and_accepts_paths_after_the_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_csv(tmp_path / "a.csv", daily(25, seed=4))
    b = write_csv(tmp_path / "b.csv", daily(25, seed=5), start=T0 + dt.timedelta(days=25))
    code = main(
        [
            "backtest",
            "--file",
            str(a),
            str(b),
            "--job-hours",
            "4",
            "--slack-hours",
            "24",
            "--interruptible",
            "--policy",
            "replan",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "captured" in out
    assert "replan" in out


def test_backtest_rejects_bad_hours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "x.csv", daily(20))
    assert main(["backtest", "--file", str(path), "--job-hours", "four"]) == 2
    assert "bad job hours" in capsys.readouterr().err
