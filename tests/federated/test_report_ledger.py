"""`greenforge report --ledger [FILE_OR_ID]`: the page of a real federated run's carbon ledger
carries the ledger's own totals, `--json` prints the same aggregates, bad input names itself
(the rendering in a browser: tests/integration/test_report_browser.py)."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
from tests.federated.ledgers import ZONES, small_ledger

from greenforge.cli.app import main
from greenforge.config import load_settings
from greenforge.errors import DataError
from greenforge.federated.ledger import Ledger, find_ledger
from greenforge.forge.output import mass_unit
from greenforge.report.federated_html import COMPONENTS, fmt_mass, ledger_report, ledger_summary
from greenforge.report.html import svg_hbars, svg_lines, svg_stacked_bars


def _report(tmp_path: Path, *argv: str) -> str:
    page = tmp_path / "ledger.html"
    assert main(["report", "--ledger", *argv, "--out", str(page)]) == 0
    return page.read_text(encoding="utf-8")


def test_the_page_shows_the_ledgers_totals_plots_and_tables(tmp_path: Path) -> None:
    ledger = small_ledger(rounds=6)
    total = ledger.total()

    text = _report(tmp_path)  # the newest ledger: the one just run

    assert "<script" not in text
    assert f'id="ledger-co2e">{fmt_mass(total.co2e_g)}<' in text
    unit, grams = mass_unit([total.co2e_g])
    bounds = f"{total.low_g / grams:.4g}-{total.high_g / grams:.4g} {unit}"
    assert f'id="ledger-bounds">{bounds}<' in text
    assert f'id="ledger-energy">{total.energy_j:.4g} J<' in text
    assert 'id="ledger-rounds">6<' in text
    assert 'id="ledger-selection">carbon (budget)<' in text
    assert "6 clients" in text
    # plots: per round by component, cumulative, zone CO2e, zone and client participation,
    # accuracy vs round
    assert text.count("<svg") == 6
    for _, name, _ in COMPONENTS:
        assert name.replace("'", "&#x27;") in text
    assert "fairness floor: 1 rounds (min share 0.25 x 6)" in text
    assert "clients&#x27; evaluation (aggregated)" in text  # the accuracy line
    # tables: one row per round, per client (with the server) and per zone
    tables = re.findall(r"<tbody>(.*?)</tbody>", text, flags=re.DOTALL)
    rows = [t.count("<tr>") for t in tables]
    assert rows[1:] == [6, len(ZONES) + 1, len(set(ZONES))]


def test_json_prints_the_ledgers_own_aggregates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = small_ledger(rounds=5, central=True)
    capsys.readouterr()

    assert main(["report", "--ledger", ledger.id[:6], "--json"]) == 0

    doc = json.loads(capsys.readouterr().out)
    loaded = Ledger.load(find_ledger(ledger.id, load_settings().resolved_home()))
    assert doc["total"] == loaded.total().to_dict()
    head = doc["headline"]
    total = ledger.total()
    assert (head["co2e_g"], head["low_g"], head["high_g"]) == (
        total.co2e_g,
        total.low_g,
        total.high_g,
    )
    assert head["rounds"] == 5
    assert head["clients"] == len(ZONES)
    assert head["bytes_up"] == total.bytes_up > 0
    assert head["network_share"] == pytest.approx(total.network_co2e_g / total.co2e_g)
    server = math.fsum(e.total_co2e_g for e in ledger.entries if e.client == "server")
    assert head["aggregation_share"] == pytest.approx(server / total.co2e_g)
    # per round: the ledger's totals, the cumulative figure, and components that add up
    by_round = {t.key: t.to_dict() for t in ledger.by("round")}
    cumulative = ledger.cumulative()
    for row, (r, c, lo, hi) in zip(doc["by_round"], cumulative, strict=True):
        assert row["round"] == r
        assert {k: row[k] for k in by_round[str(r)]} == by_round[str(r)]
        assert (row["cumulative_g"], row["cumulative_low_g"], row["cumulative_high_g"]) == (
            c,
            lo,
            hi,
        )
        parts = math.fsum(row[key] for key, _, _ in COMPONENTS)
        assert parts == pytest.approx(row["co2e_g"], rel=1e-12)
        assert row["clients"] == 2
    assert doc["by_round"][-1]["cumulative_g"] == pytest.approx(total.co2e_g)
    # per client and per zone, with participation and the fairness floor
    assert doc["participation"] == ledger.participation(ledger.zones())
    assert sum(doc["participation"].values()) == 5 * 2
    assert [z["key"] for z in doc["by_zone"]] == [t.key for t in ledger.by("zone")]
    assert sum(z["rounds"] for z in doc["by_zone"]) == 5 * 2
    assert sum(z["clients"] for z in doc["by_zone"]) == len(ZONES)
    assert doc["fairness"] == {"min_share": 0.25, "rounds": 5, "floor": 1, "below_floor": []}
    assert math.fsum(c["co2e_g"] for c in doc["by_client"]) == pytest.approx(total.co2e_g)
    assert all(c["low_g"] <= c["co2e_g"] <= c["high_g"] for c in doc["by_client"])
    # what the ledger recorded: selection, plans and the clients' aggregated accuracy
    assert doc["ledger"]["selection"]["policy"] == "carbon"
    assert [p["round"] for p in doc["plans"]] == [1, 2, 3, 4, 5]
    accuracy = [m for m in doc["metrics"] if m["phase"] == "evaluate"]
    assert [m["round"] for m in accuracy] == [1, 2, 3, 4, 5]
    assert all(m["values"]["accuracy"] == pytest.approx(0.5) for m in accuracy)
    central = Ledger.load(find_ledger(ledger.id, load_settings().resolved_home()))
    rounds, values = zip(*central.metric("accuracy")["central"], strict=True)
    assert rounds == (0, 1, 2, 3, 4, 5)  # 0: the initial model; the last round's is saved too
    assert values == pytest.approx([0.5 + 0.05 * r for r in rounds])
    assert doc == json.loads(json.dumps(ledger_summary(ledger)))


def test_a_ledger_file_or_the_newest_is_reported(tmp_path: Path) -> None:
    first = small_ledger(rounds=2, selection=False, evaluate=False)
    second = small_ledger(rounds=3)
    assert first.path is not None
    assert second.path is not None
    os.utime(first.path, (1e9, 1e9))  # older

    assert 'id="ledger-rounds">3<' in _report(tmp_path)
    copy = tmp_path / "kept" / "run.json"
    copy.parent.mkdir()
    copy.write_bytes(first.path.read_bytes())
    text = _report(tmp_path, str(copy))
    assert 'id="ledger-rounds">2<' in text
    assert first.id in text


def test_a_plain_ledger_without_selection_or_accuracy_says_so(tmp_path: Path) -> None:
    ledger = small_ledger(rounds=2, selection=False, evaluate=False, zones=ZONES[:3])

    page = ledger_report(ledger)

    assert 'id="ledger-selection">the strategy&#x27;s own<' in page
    assert "No minimum participation share recorded" in page
    assert "holds no accuracy metric" in page
    assert page.count("<svg") == 5
    assert ledger_summary(ledger)["fairness"] is None


def test_bad_input_names_the_value_and_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ["--out", str(tmp_path / "x.html")]
    assert main(["report", "--ledger", *out]) == 2
    assert "no federated ledgers yet" in capsys.readouterr().err

    missing = tmp_path / "nope.json"
    assert main(["report", "--ledger", str(missing), *out]) == 5
    err = capsys.readouterr().err
    assert "nope.json" in err
    assert "greenforge federated show" in err

    not_ledger = tmp_path / "forge.json"
    not_ledger.write_text(json.dumps({"schema": 1, "candidates": []}), encoding="utf-8")
    assert main(["report", "--ledger", str(not_ledger), *out]) == 5
    err = capsys.readouterr().err
    assert "forge.json" in err
    assert "is not a GreenForge federated ledger" in err
    assert "CarbonLedger" in err

    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello", encoding="utf-8")
    assert main(["report", "--ledger", str(garbage), *out]) == 5
    assert "cannot read ledger" in capsys.readouterr().err

    small_ledger(rounds=1, selection=False, evaluate=False, zones=ZONES[:2])
    assert main(["report", "--ledger", "zzzz", *out]) == 2
    assert "no ledger matches 'zzzz'" in capsys.readouterr().err
    assert main(["report", "--ledger", "a", "b", *out]) == 2
    assert "one ledger, not 2" in capsys.readouterr().err
    assert main(["report", "--ledger", "--forge", str(tmp_path), *out]) == 2
    assert "not --forge and --ledger" in capsys.readouterr().err
    assert main(["report", "--json", "--forge", str(tmp_path), *out]) == 2
    assert "use it with --ledger" in capsys.readouterr().err
    assert main(["report", "--ledger", "--per", "epoch", *out]) == 2
    assert not (tmp_path / "x.html").exists()


def test_an_empty_ledger_is_a_data_error(tmp_path: Path) -> None:
    ledger = Ledger("empty", path=tmp_path / "empty.json")
    with pytest.raises(DataError, match="no entries"):
        ledger_summary(ledger)


def test_round_metrics_keep_finite_numbers_and_persist(tmp_path: Path) -> None:
    ledger = Ledger("m", path=tmp_path / "m.json")
    ledger.add_metrics(1, "central", {"accuracy": 0.8, "greenforge.co2e_g": 1.0, "bad": [1.0]})
    ledger.add_metrics(1, "central", {"accuracy": 0.9, "nan": math.nan, "flag": True})
    ledger.add_metrics(2, "evaluate", {"accuracy": 0.7})
    ledger.add_metrics(3, "train", {"note": "text"})  # nothing numeric: nothing kept
    with pytest.raises(DataError, match="unknown phase 'test'"):
        ledger.add_metrics(1, "test", {"accuracy": 1.0})
    ledger.save()

    back = Ledger.load(tmp_path / "m.json")
    assert back.metrics == ledger.metrics
    assert back.metric("accuracy") == {"central": [(1, 0.9)], "evaluate": [(2, 0.7)]}
    assert back.metric("loss") == {}


def test_the_svg_helpers_draw_stacks_bounds_bands_and_marks() -> None:
    bars = svg_stacked_bars(
        [1.0, 2.0],
        [("a", "#000000", [1.0, 2.0]), ("b", "#E69F00", [0.5, math.nan])],
        bounds=[(1.2, 2.0), (1.5, 2.5)],
        title="t",
        x_label="round",
        y_label="CO2e (g)",
    )
    assert bars.count("<rect") == 3 + 2  # three stacked parts, two legend swatches
    assert bars.count("low-high: ") == 2
    lines = svg_lines(
        [("c", "#000000", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])],
        bands=[("band", "#009E73", [1.0, 2.0, 3.0], [0.5, 1.5, 2.5], [2.0, 3.0, 4.0])],
        title="t",
        x_label="round",
        y_label="g",
    )
    assert lines.count("<circle") == 3
    assert 'fill-opacity="0.3"' in lines
    hbars = svg_hbars(
        ["x", "y"],
        [("n", "#0072B2", [2.0, 4.0])],
        bounds=[(1.0, 3.0), None],
        marks=[(3.0, "floor", "#D55E00")],
        title="t",
        x_label="rounds",
    )
    assert hbars.count("low-high: ") == 1
    assert "<title>floor</title>" in hbars
    with pytest.raises(DataError):
        svg_stacked_bars([], [("a", "#000000", [])], title="t", x_label="x", y_label="y")
