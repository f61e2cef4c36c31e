"""`greenforge plan`, `schedule --dry-run` and `queue add` are thin layers over one pipeline:
the same options give the same plan, the same table and the same JSON."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pytest

from greenforge.cli.app import main
from greenforge.config import load_settings
from greenforge.schedule.queue import JobQueue

H = 3600


@pytest.fixture(autouse=True)
def _eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def _future_file(tmp_path: Path) -> tuple[Path, str, str]:
    """An hourly forecast file covering the next two days, and a window inside it."""
    first = int(time.time() // H) * H + H  # the next hour: the window lies in the future
    hours = np.arange(-2, 50)
    values = 300 + 150 * np.cos((hours - 3) * 2 * np.pi / 24)
    lines = ["timestamp,value"] + [
        f"{dt.datetime.fromtimestamp(float(first + h * H), dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ},{v:.2f}"
        for h, v in zip(hours, values, strict=True)
    ]
    path = tmp_path / "forecast.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    earliest = dt.datetime.fromtimestamp(first, dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    deadline = dt.datetime.fromtimestamp(first + 40 * H, dt.timezone.utc)
    return path, earliest, deadline.strftime("%Y-%m-%dT%H:%MZ")


def _options(tmp_path: Path) -> list[str]:
    path, earliest, deadline = _future_file(tmp_path)
    return [
        "--zone",
        "XX",
        "--duration",
        "5h",
        "--earliest",
        earliest,
        "--deadline",
        deadline,
        "--interruptible",
        "--checkpoint-overhead",
        "10m",
        "--min-chunk",
        "1h",
        "--power",
        "400",
        "--file",
        str(path),
        "--pue",
        "1.3",
        "--name",
        "train",
    ]


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[str, str]:
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr()
    return out.out, out.err


def test_plan_schedule_dry_run_and_queue_add_print_the_same_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = _options(tmp_path)
    command = ["--", "python", "train.py"]

    plan_json, _ = _run(capsys, ["plan", *options, "--json"])
    dry_json, _ = _run(capsys, ["schedule", *options, "--dry-run", "--json", *command])
    add_json, add_err = _run(capsys, ["queue", "add", *options, "--json", *command])

    plan = json.loads(plan_json)
    assert json.loads(dry_json) == plan
    assert json.loads(add_json) == plan
    assert "queued as job 1 (local executor)" in add_err
    assert plan["job"]["name"] == "train"
    assert plan["forecast"] == "the file itself (as a forecast)"
    assert plan["zone_forecasts"]["XX"].startswith("file: ")
    assert plan["pue"]["mean_pue"] == pytest.approx(1.3)
    assert len(plan["slots"]) >= 1

    plan_table, _ = _run(capsys, ["plan", *options])
    _, dry_table = _run(capsys, ["schedule", *options, "--dry-run", *command])  # on stderr
    add_table, _ = _run(capsys, ["queue", "add", *options, *command])
    assert "Plan for a 5 h job" in plan_table
    assert "forecast in XX: file: " in plan_table
    # the same words; where a long advice line wraps is the console's business
    assert dry_table.split() == plan_table.split()
    assert add_table.split() == plan_table.split()

    queued = json.loads(_run(capsys, ["queue", "list", "--json"])[0])
    assert [j["plan"]["slots"] for j in queued] == [
        [{"start_s": s["start_s"], "end_s": s["end_s"], "zone": s["zone"]} for s in plan["slots"]]
    ] * 2
    # the job keeps how it was planned, so the scheduler's re-plans use the same data
    stored = JobQueue.for_home(load_settings().resolved_home()).list()
    planning = stored[0].options["planning"]
    assert planning["files"] == [options[options.index("--file") + 1]]
    assert planning["pue"] == "1.3"


def test_start_is_a_deprecated_alias_of_earliest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = _options(tmp_path)
    earliest = options[options.index("--earliest") + 1]
    renamed = [o if o != "--earliest" else "--start" for o in options]

    new, _ = _run(capsys, ["plan", *options, "--json"])
    old, err = _run(capsys, ["plan", *renamed, "--json"])
    assert json.loads(old) == json.loads(new)
    assert "--start is deprecated; use --earliest" in err
    assert main(["plan", *options, "--start", "+3h"]) == 2
    assert f"--earliest {earliest!r} disagree" in capsys.readouterr().err.replace("\n", " ")
    assert main(["plan", "--help"]) == 0
    assert "--start" not in capsys.readouterr().out


def test_schedule_takes_the_forecast_options_of_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--zone", "GB", "--duration", "2h", "--deadline", "+24h"]
    argv = ["schedule", *base, "--forecast", "embedded-profile@p90", "--dry-run", "--json"]
    plan = json.loads(_run(capsys, [*argv, "--", "true"])[0])
    assert plan["forecast"] == "embedded typical profile"
    assert "embedded:profile" in plan["forecast_source"]


def test_a_job_that_will_run_is_never_planned_on_a_past_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_data: Path
) -> None:
    gb = shared_data / "grid" / "hourly" / "GB_2023_hourly.csv.gz"
    past = ["--zone", "GB", "--duration", "2h", "--earliest", "2023-05-01T00:00Z"]
    past += ["--deadline", "+24h", "--file", str(gb)]
    assert main(["plan", *past, "--json"]) == 0  # a replay of past data
    capsys.readouterr()
    assert main(["queue", "add", *past, "--", "true"]) == 8
    assert "in the past" in capsys.readouterr().err


def test_queue_add_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queue", "add", "--zone", "GB", "--duration", "1h"]) == 2
    assert "no command to queue" in capsys.readouterr().err


def test_pue_takes_a_number_or_a_series_and_reports_constant_vs_series(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = [o for o in _options(tmp_path) if o not in ("--pue", "1.3")]
    first = int(time.time() // H) * H
    rows = ["timestamp,pue"] + [  # hot (1.9) from hour 10 to 18 UTC, else 1.1
        f"{dt.datetime.fromtimestamp(first + h * H, dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ},"
        f"{1.9 if 10 <= (first // H + h) % 24 < 18 else 1.1}"
        for h in range(60)
    ]
    pue_csv = tmp_path / "pue.csv"
    pue_csv.write_text("\n".join(rows) + "\n", encoding="utf-8")

    table, _ = _run(capsys, ["plan", *options, "--pue", str(pue_csv)])
    assert "with the series vs" in " ".join(table.split())
    doc = json.loads(_run(capsys, ["plan", *options, "--pue", str(pue_csv), "--json"])[0])
    assert doc["pue"]["constant"] is False
    assert doc["pue"]["max_pue"] == pytest.approx(1.9)
    assert doc["pue"]["series_plan_co2e_g"] <= doc["pue"]["constant_plan_co2e_g"] + 1e-9
    flat = json.loads(_run(capsys, ["plan", *options, "--pue", "1.5", "--json"])[0])
    bare = json.loads(_run(capsys, ["plan", *options, "--json"])[0])
    assert flat["slots"] == bare["slots"]
    assert flat["expected_co2e_g"] == pytest.approx(1.5 * bare["expected_co2e_g"])
    assert flat["pue"]["constant"] is True
    assert bare["pue"] is None

    assert main(["plan", *options, "--pue", "0.7"]) == 2
    assert "0.7" in capsys.readouterr().err


def test_plan_charges_the_configured_facility_pue_unless_pue_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    options = [o for o in _options(tmp_path) if o not in ("--pue", "1.3")]
    bare = json.loads(_run(capsys, ["plan", *options, "--json"])[0])
    monkeypatch.setenv("GREENFORGE_PUE", "1.5")
    configured = json.loads(_run(capsys, ["plan", *options, "--json"])[0])
    assert configured["pue"]["constant"] is True
    assert configured["expected_co2e_g"] == pytest.approx(1.5 * bare["expected_co2e_g"])
    given = json.loads(_run(capsys, ["plan", *options, "--pue", "1.2", "--json"])[0])
    assert given["expected_co2e_g"] == pytest.approx(1.2 * bare["expected_co2e_g"])
