"""``greenforge plan --pue model:...`` reports the saving attributable to PUE(t) apart from the
grid's: a cleaner grid on the facility's hot hours pulls a PUE-blind plan there, and the split
shows the grid's part losing what the PUE's part wins back."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from greenforge.cli.app import main
from greenforge.report.schedule_html import plan_report

H = 3600


def _csv(path: Path, header: str, value: object, first: int) -> None:
    rows = [header]
    for h in range(-2, 30):
        t = dt.datetime.fromtimestamp(first + h * H, dt.timezone.utc)
        rows.append(f"{t:%Y-%m-%dT%H:%M:%SZ},{value(h)}")  # type: ignore[operator]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_plan_splits_the_saving_into_grid_and_pue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GREENFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "400")
    first = int(time.time() // H) * H + H  # start at the next full hour
    hot = range(3, 9)  # hours from `first`: 32 deg C and a cleaner grid (250 vs 300 g/kWh)
    _csv(tmp_path / "t.csv", "timestamp,temperature_c", lambda h: 32 if h in hot else 5, first)
    _csv(tmp_path / "grid.csv", "timestamp,value", lambda h: 250 if h in hot else 300, first)
    start = dt.datetime.fromtimestamp(first, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    argv = ["plan", "--zone", "DE", "--duration", "3h", "--earliest", start, "--deadline",
            "+12h", "--power", "1000", "--file", "grid.csv", "--pue", "model:free-cooled:t.csv"]  # fmt: skip
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    pue = doc["pue"]
    # the PUE-blind plan goes to the hot, clean hours and costs more than running now
    assert pue["grid_saving_g"] < 0 < pue["pue_saving_g"]
    assert pue["grid_saving_g"] + pue["pue_saving_g"] == pytest.approx(
        pue["run_now_co2e_g"] - pue["series_plan_co2e_g"]
    )
    assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"grid's hours {pue['grid_saving_g']:.4g} g" in out
    assert f"facility's PUE(t) {pue['pue_saving_g']:.4g} g" in out
    page = plan_report(doc)  # the plan's HTML report shows the same split
    assert f"the facility&#x27;s PUE(t) {pue['pue_saving_g']:.4g} g" in page
