"""The HTML report rendered by a real browser: Debian's headless ``chromium`` (installed by
scripts/ci-services.sh) opens ``greenforge report`` output from file://, with no console errors,
every SVG plot drawn, the headline numbers equal to the store's, and a non-blank screenshot.

``GREENFORGE_UPDATE_SCREENSHOT=1`` also writes the run report's screenshot to
docs/report-screenshot.png (the README shows it)."""

from __future__ import annotations

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


def _check_page(page: Path, tmp_path: Path, shot: Path) -> str:
    """Returns the rendered DOM of ``page`` after checking plots, console and screenshot."""
    dom = _browse(page, tmp_path / "profile-dom", "--dump-dom")
    assert _console_errors(dom.stderr) == []
    svgs = re.findall(r"<svg\b.*?</svg>", dom.stdout, flags=re.DOTALL)
    assert svgs, "the report has no plot"
    for svg in svgs:
        drawn = re.findall(r'<(?:rect|circle)\b[^>]*(?:x|cx)="[0-9.]+"', svg)
        assert len(drawn) >= 1, f"blank plot: {svg[:200]}"
        assert "<path" in svg
        assert "<text" in svg
    done = _browse(page, tmp_path / "profile-shot", f"--screenshot={shot}")
    assert _console_errors(done.stderr) == []
    import matplotlib.image as mpimg
    import numpy as np

    pixels = np.asarray(mpimg.imread(shot))
    assert pixels.shape[0] >= 1000
    assert pixels.shape[1] >= 1000
    assert float(pixels[..., :3].std()) > 0.05, "the screenshot is blank"
    assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) > 20
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
