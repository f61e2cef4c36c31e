"""The HTML report rendered by a real browser: Debian's headless ``chromium`` (installed by
scripts/ci-services.sh) opens ``greenforge report`` output from file://, with no console errors,
every SVG plot drawn, the headline numbers equal to the store's, and a non-blank screenshot.

``GREENFORGE_UPDATE_SCREENSHOT=1`` also writes the run report's screenshot to
docs/report-screenshot.png (the README shows it)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from greenforge.cli.app import main
from greenforge.config import load_settings
from greenforge.records import (
    ComponentTotal,
    EmbodiedEmissions,
    Emissions,
    IntensityProvenance,
    Prediction,
    RunRecord,
    WindowRecord,
)
from greenforge.report.html import fmt_co2e_g, fmt_energy_j
from greenforge.report.store import RunStore
from greenforge.units import J_PER_KWH

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "report-screenshot.png"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "chromium is not installed: run scripts/ci-services.sh (it installs Debian's "
            "chromium) or `apt-get install -y --no-install-recommends chromium`."
        )
    return found


def _browse(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Runs headless chromium on ``page`` with ``extra`` flags; returns the finished process."""
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,2000",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        page.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _console_errors(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if ("Uncaught" in line or "CONSOLE" in line) and "file://" in line
    ]


_LAYOUT_PROBE = """<script>
(function () {
  const bad = [];
  document.querySelectorAll("svg").forEach(function (svg, k) {
    const box = svg.getBoundingClientRect();
    const texts = Array.from(svg.querySelectorAll("text")).map(function (t) {
      return [t.textContent, t.getBoundingClientRect()];
    });
    texts.forEach(function (t) {
      const r = t[1];
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 ||
          r.bottom > box.bottom + 1) { bad.push("plot " + k + ": outside: " + t[0]); }
    });
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        const a = texts[i][1], b = texts[j][1];
        const ox = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const oy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (ox > 0.5 && oy > 0.5) {
          bad.push("plot " + k + ": " + texts[i][0] + " overlaps " + texts[j][0]);
        }
      }
    }
  });
  document.body.setAttribute("data-texts", String(document.querySelectorAll("svg text").length));
  document.body.setAttribute("data-overlaps", JSON.stringify(bad));
})();
</script>"""
"""Measures every plot's text as the browser laid it out and writes what overlaps another label
or leaves its plot into ``data-overlaps`` (the report has no scripts: the test adds this to a
copy)."""


def _overlaps(dom: str) -> list[str]:
    """Returns what the layout probe found overlapping or outside its plot in ``dom``."""
    texts = re.search(r'data-texts="(\d+)"', dom)
    found = re.search(r'data-overlaps="([^"]*)"', dom)
    assert texts is not None, "the layout probe did not run"
    assert found is not None
    assert int(texts.group(1)) > 0
    out: list[str] = json.loads(html.unescape(found.group(1)))
    return out


def _check_page(page: Path, tmp_path: Path, shot: Path) -> str:
    """Returns the rendered DOM of ``page`` after checking console, plots, label layout and
    screenshot - all from one browser run on a copy of the page with the layout probe added
    (the report itself has no scripts)."""
    probe = tmp_path / f"probe-{page.name}"
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", _LAYOUT_PROBE + "</body>"),
        encoding="utf-8",
    )
    dom = _browse(probe, tmp_path / f"profile-{page.stem}", "--dump-dom", f"--screenshot={shot}")
    assert _console_errors(dom.stderr) == []
    assert _overlaps(dom.stdout) == []
    svgs = re.findall(r"<svg\b.*?</svg>", dom.stdout, flags=re.DOTALL)
    assert svgs, "the report has no plot"
    for svg in svgs:
        drawn = re.findall(r'<(?:rect|circle)\b[^>]*(?:x|cx)="[0-9.]+"', svg)
        assert len(drawn) >= 1, f"blank plot: {svg[:200]}"
        assert "<path" in svg
        assert "<text" in svg
    import matplotlib.image as mpimg
    import numpy as np

    pixels = np.asarray(mpimg.imread(shot))
    assert pixels.shape[0] >= 1000
    assert pixels.shape[1] >= 1000
    assert float(pixels[..., :3].std()) > 0.05, "the screenshot is blank"
    rgb = np.round(pixels[..., :3] * 255).astype(np.uint32)  # one int per colour: fast
    assert np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]).size > 20
    return dom.stdout


def _record() -> RunRecord:
    start = 1_780_000_000.0
    windows = tuple(
        WindowRecord(
            f"epoch-{i}",
            f"epoch-{i}",
            start + 20.0 * i,
            start + 20.0 * (i + 1),
            900.0 + 120.0 * i,
            (900.0 + 120.0 * i) * 1.1 / J_PER_KWH * (250.0 + 60.0 * i),
        )
        for i in range(6)
    )
    energy = sum(w.energy_j for w in windows)
    co2e = sum(w.co2e_g or 0.0 for w in windows)
    return RunRecord(
        id="rep0001",
        name="train <resnet> & eval",
        status="completed",
        started_s=start,
        ended_s=start + 120.0,
        duration_s=120.0,
        components=(
            ComponentTotal("cpu", energy * 0.6, energy * 0.55, energy * 0.66, "rapl"),
            ComponentTotal("gpu", energy * 0.3, energy * 0.28, energy * 0.32, "nvml"),
            ComponentTotal("ram", energy * 0.1, energy * 0.05, energy * 0.15, "model"),
        ),
        emissions=Emissions(
            co2e_g=co2e,
            low_g=co2e * 0.85,
            high_g=co2e * 1.2,
            pue=1.1,
            pue_source="setting",
            intensity=IntensityProvenance(
                "embedded:yearly-2024:DE", "DE", time_resolved=True, kind="measured"
            ),
            mean_intensity_g_per_kwh=co2e / (energy * 1.1 / J_PER_KWH),
        ),
        embodied=EmbodiedEmissions(0.004, "cpu", 1200.0, 4 * 31_557_600.0, 0.5, "test figure"),
        windows=windows,
        prediction=Prediction(2, 6, energy * 1.05, co2e * 1.05, 125.0),
        metadata={
            "attribution": "process",
            "zone": "DE",
            "budget": {"co2e_g": 1.0, "energy_j": None, "exceeded": False, "reason": None},
        },
    )


def test_a_run_report_renders_in_chromium_with_the_stores_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("GREENFORGE_HOME", str(home))
    with RunStore.for_settings(load_settings(env={"GREENFORGE_HOME": str(home)})) as store:
        store.save(_record())
    with RunStore.for_settings(load_settings(), read_only=True) as store:
        stored = store.get("rep0001")
    page = tmp_path / "run.html"
    assert main(["report", "rep0001", "--out", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text
    assert "http://" not in text.replace("http://www.w3.org", "")
    assert "train &lt;resnet&gt; &amp; eval" in text  # user strings are escaped
    shot = tmp_path / "run.png"
    dom = _check_page(page, tmp_path, shot)
    assert stored.emissions is not None
    assert f'id="energy-rep0001">{fmt_energy_j(stored.energy_j)}<' in dom
    assert f'id="co2e-rep0001">{fmt_co2e_g(stored.emissions.co2e_g)}<' in dom
    assert "epoch-5" in dom
    assert "Budget and prediction" in dom
    assert stored.prediction is not None
    assert f'id="budget-co2e-rep0001">{fmt_co2e_g(1.0)}<' in dom
    assert f'id="prediction-co2e-rep0001">{fmt_co2e_g(stored.prediction.co2e_g)}<' in dom
    assert "Cleanest and dirtiest zone and hour" in dom
    assert "SCI" in dom
    if os.environ.get("GREENFORGE_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def _forge_json() -> dict[str, object]:
    def cand(name: str, acc: float, life: float, pareto: bool, **kw: object) -> dict[str, object]:
        return {
            "name": name,
            "recipe": kw.get("recipe", name),
            "precision": kw.get("precision", "fp32"),
            "runtime": "torch",
            "accuracy": acc,
            "parameters": 12000,
            "flops": 2.4e6,
            "size_bytes": 48000,
            "train_co2e_g": life * 0.4,
            "latency_s_per_1k": 0.012,
            "inference_co2e_g_per_1k": life / 2000.0,
            "inference_co2e_g_per_1k_low": life / 2200.0,
            "inference_co2e_g_per_1k_high": life / 1800.0,
            "search_share_co2e_g": kw.get("share", 0.0),
            "lifetime_co2e_g": life + float(kw.get("share", 0.0)),  # type: ignore[arg-type]
            "lifetime_co2e_low_g": life * 0.9,
            "lifetime_co2e_high_g": life * 1.1,
            "pareto": pareto,
            "below_target": acc < 0.9,
        }

    return {
        "schema": 1,
        "status": "chosen",
        "task": {"name": "digits <mlp>"},
        "deployment": {
            "zone": "DE",
            "intensity_g_per_kwh": 380.0,
            "intensity_source": "embedded",
            "pue": 1.2,
            "pue_source": "setting",
        },
        "chosen": "int8",
        "reason": "least lifetime CO2e meeting the target",
        "decision": {"within_noise": True, "tie_break": None, "contenders": ["int8", "prune"]},
        "headline": {"ratio": 3.2, "ratio_low": 2.8, "ratio_high": 3.7, "same_runtime": True},
        "noise": {"background_load": 0.1, "busy": False, "note": "", "widen_factor": 1.0},
        "protocol": {"control_of": "baseline", "control_spread": 0.03},
        "accounting": "lifetime_co2e_g = train + search share + inferences",
        "candidates": [
            cand("baseline", 0.95, 40.0, False),
            cand("prune", 0.94, 14.0, True),
            cand("int8", 0.94, 12.5, True, precision="int8", share=1.5),
            cand("distill", 0.88, 9.0, True),
        ],
    }


def test_a_forge_report_renders_in_chromium(tmp_path: Path) -> None:
    forge_dir = tmp_path / "forge-out"
    forge_dir.mkdir()
    (forge_dir / "forge.json").write_text(json.dumps(_forge_json()), encoding="utf-8")
    page = tmp_path / "forge.html"
    assert main(["report", "--forge", str(forge_dir), "--out", str(page)]) == 0
    dom = _check_page(page, tmp_path, tmp_path / "forge.png")
    assert 'id="forge-ratio">3.2x<' in dom
    assert 'id="forge-chosen">int8<' in dom
    assert "digits &lt;mlp&gt;" in dom
    assert "SCI per 1k predictions" in dom
    assert "self-check" in dom


def test_report_needs_runs_or_a_forge_dir(tmp_path: Path) -> None:
    assert main(["report", "--out", str(tmp_path / "x.html")]) != 0
    assert main(["report", "--forge", str(tmp_path), "--out", str(tmp_path / "x.html")]) != 0


def test_the_console_check_sees_a_page_error(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>undefinedFn();</script></body></html>", encoding="utf-8")
    done = _browse(page, tmp_path / "profile-bad", "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in _console_errors(done.stderr))


def test_the_layout_probe_sees_overlapping_labels(tmp_path: Path) -> None:
    page = tmp_path / "overlap.html"
    page.write_text(
        '<html><body><svg width="300" height="100"><text x="10" y="50">first label</text>'
        '<text x="30" y="52">second label</text><text x="290" y="90">outside</text></svg>'
        "</body></html>",
        encoding="utf-8",
    )
    shot = tmp_path / "overlap.png"
    with pytest.raises(AssertionError):
        _check_page(page, tmp_path, shot)
    probe = tmp_path / "probe-overlap.html"
    dom = _browse(probe, tmp_path / "profile-again", "--dump-dom")
    found = _overlaps(dom.stdout)
    assert any("first label overlaps second label" in f for f in found)
    assert any("outside: outside" in f for f in found)


def _two_zone_backtest(path: Path) -> dict[str, object]:
    """Writes a back-test result of two zones, as `greenforge backtest --out` does."""
    import numpy as np

    from greenforge.grid.series import IntensitySeries
    from greenforge.jsonsafe import dumps
    from greenforge.schedule.backtest import JobShape, backtest
    from greenforge.schedule.forecast import create_forecaster

    hours = np.arange(24 * 21, dtype=np.float64)
    t = 1_672_531_200.0 + 3600.0 * hours
    data = {
        "DE": IntensitySeries(t, 380 + 120 * np.cos((hours - 3) * np.pi / 12), 3600.0, "DE",
                              "test:DE"),
        "FR <nuclear>": IntensitySeries(t, 60 + 15 * np.sin(hours * np.pi / 12), 3600.0,
                                        "FR <nuclear>", "test:FR"),
    }  # fmt: skip
    forecasters = [create_forecaster("profile-7d"), create_forecaster("seasonal-naive-1d")]
    result = backtest(data, forecasters, [JobShape(2, 12), JobShape(4, 24)])
    doc = result.to_dict()
    doc["policy"] = "once"
    doc["forecasters"] = {f.name: f.description for f in forecasters}
    path.write_text(dumps(doc), encoding="utf-8")
    back: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return back


def test_a_backtest_report_renders_in_chromium_with_the_files_numbers(tmp_path: Path) -> None:
    from greenforge.report.schedule_html import best_rows, fmt_pct

    doc = _two_zone_backtest(tmp_path / "bt.json")
    page = tmp_path / "backtest.html"
    assert main(["report", "--backtest", str(tmp_path / "bt.json"), "--out", str(page)]) == 0
    dom = _check_page(page, tmp_path, tmp_path / "backtest.png")
    results = doc["results"]
    assert isinstance(results, list)
    best = best_rows(results)
    assert set(best) == {"DE", "FR <nuclear>"}
    for zone, row in best.items():
        z = html.escape(zone)
        assert f'id="bt-saving-{z}">{fmt_pct(row["saving_pct"])}<' in dom
        assert f'id="bt-oracle-{z}">{fmt_pct(row["oracle_saving_pct"])}<' in dom
        assert f'id="bt-captured-{z}">{fmt_pct(100 * row["captured"])}<' in dom
    assert dom.count("<svg") == 3
    assert "FR &lt;nuclear&gt;" in dom


def test_a_plan_report_renders_in_chromium_with_the_plans_numbers(tmp_path: Path) -> None:
    import contextlib
    import io

    from greenforge.report.schedule_html import fmt_pct

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["plan", "--zone", "DE", "--zone", "GB", "--duration", "5h", "--deadline",
                     "+40h", "--forecast", "embedded-profile", "--power", "400", "--json"])  # fmt: skip
    assert code == 0
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(buf.getvalue(), encoding="utf-8")
    doc = json.loads(buf.getvalue())
    page = tmp_path / "plan.html"
    assert main(["report", "--plan", str(plan_file), "--out", str(page)]) == 0
    dom = _check_page(page, tmp_path, tmp_path / "plan.png")
    assert f'id="plan-start">{doc["start"]}<' in dom
    assert f'id="plan-expected">{fmt_co2e_g(doc["expected_co2e_g"])}<' in dom
    assert f'id="plan-run-now">{fmt_co2e_g(doc["run_now_co2e_g"])}<' in dom
    assert f'id="plan-saving">{fmt_pct(doc["saving_pct"])}<' in dom
    assert dom.count("<svg") == 2
    assert "chosen slot(s)" in dom


def test_a_ledger_report_renders_in_chromium_with_the_ledgers_numbers(tmp_path: Path) -> None:
    from tests.federated.ledgers import ZONES, small_ledger

    from greenforge.report.federated_html import fmt_mass

    ledger = small_ledger(rounds=12, per_round=3, min_share=0.3, central=True)
    page = tmp_path / "ledger.html"
    assert main(["report", "--ledger", ledger.id, "--out", str(page)]) == 0
    dom = _check_page(page, tmp_path, tmp_path / "ledger.png")
    total = ledger.total()
    assert f'id="ledger-co2e">{fmt_mass(total.co2e_g)}<' in dom
    assert 'id="ledger-rounds">12<' in dom
    assert f"{len(ZONES)} clients" in dom
    assert dom.count("<svg") == 6
    assert "fairness floor: 3 rounds (min share 0.3 x 12)" in dom
