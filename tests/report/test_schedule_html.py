"""The back-test and plan pages without a browser: numbers from the JSON the schedule commands
write, the errors a user sees, and a plan file without its intensity (the rendering itself:
tests/integration/test_report_browser.py)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from greenforge.cli.app import main
from greenforge.errors import DataError
from greenforge.grid.series import IntensitySeries
from greenforge.report.html import fmt_co2e_g
from greenforge.report.schedule_html import (
    backtest_report,
    best_rows,
    fmt_pct,
    intensity_json,
    load_document,
    plan_report,
)
from greenforge.schedule.backtest import JobShape, backtest
from greenforge.schedule.forecast import create_forecaster
from greenforge.timeutil import utc_iso_seconds

T0 = 1_672_531_200.0  # 2023-01-01 00:00 UTC


def _series(zone: str, days: int = 21, flat: bool = False) -> IntensitySeries:
    n = 24 * days
    hours = np.arange(n)
    values = np.zeros(n) if flat else 300 + 150 * np.cos((hours - 3) * 2 * np.pi / 24)
    times = T0 + 3600.0 * hours.astype(np.float64)
    return IntensitySeries(times, values.astype(np.float64), 3600.0, zone, f"test:{zone}")


def _backtest_doc(flat_zone: bool = False) -> dict[str, Any]:
    data = {"AA": _series("AA"), "BB": _series("BB", flat=flat_zone)}
    result = backtest(data, [create_forecaster("profile-7d")], [JobShape(2, 12), JobShape(4, 12)])
    doc = result.to_dict()
    doc["policy"] = "once"
    doc["forecasters"] = {"profile-7d": "mean of the last 7 days at the same hour"}
    back: dict[str, Any] = json.loads(json.dumps(doc))  # as read back from the file
    return back


def test_the_backtest_headline_is_each_zones_best_row() -> None:
    doc = _backtest_doc()
    page = backtest_report(doc)
    best = best_rows(doc["results"])
    assert list(best) == ["AA", "BB"]
    for zone, row in best.items():
        assert row["saving_pct"] == max(
            r["saving_pct"] for r in doc["results"] if r["zone"] == zone
        )
        assert f'id="bt-saving-{zone}">{fmt_pct(row["saving_pct"])}<' in page
        assert f'id="bt-oracle-{zone}">{fmt_pct(row["oracle_saving_pct"])}<' in page
        assert f'id="bt-captured-{zone}">{fmt_pct(100 * row["captured"])}<' in page
    assert page.count("<svg") == 3
    assert "CO2e saving vs running each job at arrival (%)" in page
    assert "mean of the last 7 days" in page


def test_a_zone_with_nothing_to_save_shows_na_not_a_crash() -> None:
    doc = _backtest_doc(flat_zone=True)
    page = backtest_report(doc)
    assert 'id="bt-saving-BB">-<' in page
    assert "n/a" in page
    assert "nothing to save" in page


def test_documents_of_the_wrong_kind_are_named_with_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="greenforge backtest"):
        load_document(tmp_path / "missing.json", "backtest")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="is not JSON"):
        load_document(bad, "plan")
    plan_like = tmp_path / "plan.json"
    plan_like.write_text(json.dumps({"slots": [], "job": {}}), encoding="utf-8")
    with pytest.raises(DataError, match="not a back-test result"):
        load_document(plan_like, "backtest")
    with pytest.raises(DataError, match="no rows"):
        backtest_report({"results": []})
    with pytest.raises(DataError, match="no slots"):
        plan_report({"slots": [], "job": {}})


def _plan_doc(*args: str) -> dict[str, Any]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["plan", "--duration", "3h", "--deadline", "+30h", "--forecast",
                     "embedded-profile", "--json", *args])  # fmt: skip
    assert code == 0
    return json.loads(buf.getvalue())  # type: ignore[no-any-return]


def test_the_plan_page_shows_the_planners_figures_and_its_intensity() -> None:
    doc = _plan_doc("--zone", "DE", "--zone", "GB", "--power", "250")
    assert set(doc["intensity"]) >= {"DE", "GB"}
    page = plan_report(doc)
    assert f'id="plan-start">{doc["start"]}<' in page
    assert f'id="plan-expected">{fmt_co2e_g(doc["expected_co2e_g"])}<' in page
    assert f'id="plan-run-now">{fmt_co2e_g(doc["run_now_co2e_g"])}<' in page
    assert f'id="plan-saving">{fmt_pct(doc["saving_pct"])}<' in page
    assert "The intensity the planner used" in page
    assert "grid intensity (g CO2e/kWh)" in page
    assert "best start in GB" in page


def test_a_plan_without_its_intensity_is_drawn_on_the_typical_profile_and_says_so() -> None:
    doc = _plan_doc("--zone", "DE")
    del doc["intensity"]
    page = plan_report(doc)
    assert "carries no intensity series" in page
    assert "embedded:profile" in page


def test_intensity_json_cuts_each_series_to_the_window() -> None:
    out = intensity_json({"AA": _series("AA")}, T0 + 3 * 3600 + 10, T0 + 6 * 3600)
    assert out["AA"]["times_s"] == [T0 + 3600.0 * h for h in (3, 4, 5)]
    assert out["AA"]["step_s"] == 3600.0
    assert out["AA"]["source"] == "test:AA"
    assert intensity_json({"AA": _series("AA")}, T0 - 9e6, T0 - 8e6) == {}


def test_the_cli_writes_a_backtest_file_and_reports_one_kind_at_a_time(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    s = _series("XX")
    rows = ["timestamp,value"] + [
        f"{utc_iso_seconds(t)},{v:.2f}" for t, v in zip(s.times_s, s.values_g_per_kwh, strict=True)
    ]
    history.write_text("\n".join(rows) + "\n", encoding="utf-8")
    bt = tmp_path / "bt.json"
    assert main(["backtest", "--file", str(history), "--zone", "XX", "--job-hours", "2",
                 "--slack-hours", "12", "--forecast", "profile-7d", "--out", str(bt)]) == 0  # fmt: skip
    assert json.loads(bt.read_text())["results"][0]["zone"] == "XX"
    page = tmp_path / "bt.html"
    assert main(["report", "--backtest", str(bt), "--out", str(page)]) == 0
    assert 'id="bt-saving-XX">' in page.read_text(encoding="utf-8")
    assert main(["report", "--backtest", str(bt), "--plan", str(bt)]) != 0
    assert main(["report", "--plan", str(bt), "--out", str(page)]) != 0  # not a plan
