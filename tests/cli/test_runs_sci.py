"""``greenforge runs show ID --per UNIT``: the SCI line, its JSON object and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenforge.cli.app import main
from greenforge.config import load_settings
from greenforge.records import (
    ComponentTotal,
    Emissions,
    IntensityProvenance,
    RunRecord,
    WindowRecord,
)
from greenforge.report.store import RunStore


@pytest.fixture(autouse=True)
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GREENFORGE_HOME", str(tmp_path / "home"))
    record = RunRecord(
        id="sci0001",
        name="train",
        status="completed",
        started_s=1_700_000_000.0,
        ended_s=1_700_003_600.0,
        duration_s=3600.0,
        components=(ComponentTotal("cpu", 3.6e6, 3.2e6, 4.0e6, "rapl"),),
        emissions=Emissions(
            co2e_g=480.0,
            low_g=420.0,
            high_g=540.0,
            pue=1.2,
            pue_source="setting",
            intensity=IntensityProvenance("embedded:yearly-2024:DE", "DE"),
            mean_intensity_g_per_kwh=400.0,
        ),
        windows=(
            WindowRecord("epoch-1", "epoch-1", 1_700_000_000.0, 1_700_001_800.0, 1.8e6),
            WindowRecord("epoch-2", "epoch-2", 1_700_001_800.0, 1_700_003_600.0, 1.8e6),
        ),
    )
    with RunStore.for_settings(load_settings()) as store:
        store.save(record)
    return record.id


def test_runs_show_per_prints_the_sci_line_with_components(
    stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "show", stored, "--per", "epoch"]) == 0
    out = capsys.readouterr().out
    assert "SCI 240 g CO2e per epoch (low 210, high 270)" in out
    assert "E 1.2 kWh x I 400 g/kWh + M 0 g) / R 2" in out
    assert "M = 0: the record has no embodied figure" in out


def test_runs_show_json_has_an_sci_object_only_with_per(
    stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "show", stored, "--json"]) == 0
    assert "sci" not in json.loads(capsys.readouterr().out)
    assert main(["runs", "show", stored, "--json", "--per", "1k-predictions:4000"]) == 0
    sci = json.loads(capsys.readouterr().out)["sci"]
    assert sci["unit"] == "1k predictions"
    assert sci["r"] == 4.0
    assert sci["sci_g"] == pytest.approx(120.0)
    assert sci["low_g"] <= sci["sci_g"] <= sci["high_g"]
    assert sci["energy_kwh"] == pytest.approx(1.2)


@pytest.mark.parametrize("per", ["0", "banana"])
def test_a_bad_per_exits_2_naming_it(
    stored: str, per: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "show", stored, "--per", per]) == 2
    assert f"--per '{per}'" in capsys.readouterr().err
