"""The figures every tracker integration logs (library-free): names, values, provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenforge.errors import ConfigError, DataError
from greenforge.integrations.experiments import (
    COMPONENT,
    PARAM,
    RUN,
    WINDOW,
    export_forge,
    forge_figures,
    run_figures,
    window_step,
)
from greenforge.records import (
    ComponentTotal,
    EmbodiedEmissions,
    Emissions,
    IntensityProvenance,
    RunRecord,
    WindowRecord,
)


def record(*, emissions: bool = True) -> RunRecord:
    e = Emissions(
        co2e_g=0.5,
        low_g=0.4,
        high_g=0.7,
        pue=1.2,
        pue_source="config",
        intensity=IntensityProvenance("embedded:yearly-2024", "DE", kind="annual"),
        mean_intensity_g_per_kwh=500.0,
    )
    return RunRecord(
        id="abc123",
        name="train",
        status="completed",
        started_s=1_700_000_000.0,
        ended_s=1_700_000_100.0,
        duration_s=100.0,
        components=(
            ComponentTotal("cpu", 2000.0, 1800.0, 2400.0, "rapl"),
            ComponentTotal("gpu 0", 1000.0, 950.0, 1050.0, "nvml-energy"),
        ),
        emissions=e if emissions else None,
        embodied=EmbodiedEmissions(0.05, "server", 1000.0, 1.3e8, 1.0, "catalog:x"),
        windows=(
            WindowRecord("epoch-2", "epoch-2", 1_700_000_050.0, 1_700_000_100.0, 1600.0, 0.3),
            WindowRecord("eval", "epoch-2/eval", 1_700_000_090.0, 1_700_000_100.0, 100.0),
            WindowRecord("epoch-1", "epoch-1", 1_700_000_000.0, 1_700_000_050.0, 1400.0, 0.2),
        ),
        metadata={"attribution": "process"},
    )


def test_run_totals_components_and_provenance() -> None:
    figures = run_figures(record())
    m = figures.metrics
    assert m[RUN + "energy_j"] == 3000.0
    assert (m[RUN + "energy_low_j"], m[RUN + "energy_high_j"]) == (2750.0, 3450.0)
    assert m[COMPONENT + "gpu_0/energy_j"] == 1000.0  # keys trackers accept
    assert (m[RUN + "co2e_low_g"], m[RUN + "co2e_g"], m[RUN + "co2e_high_g"]) == (0.4, 0.5, 0.7)
    assert m[COMPONENT + "cpu/co2e_g"] + m[COMPONENT + "gpu_0/co2e_g"] == pytest.approx(
        3000.0 * 1.2 * 500.0 / 3.6e6
    )
    assert m[RUN + "embodied_co2e_g"] == 0.05
    assert m[RUN + "sci_g"] == pytest.approx(0.55)  # (O + M) / 1 run
    p = figures.params
    assert p[PARAM + "method"] == "cpu=rapl, gpu 0=nvml-energy"
    assert p[PARAM + "attribution"] == "process"
    assert p[PARAM + "zone"] == "DE"
    assert p[PARAM + "intensity_source"] == "embedded:yearly-2024"
    assert (p[PARAM + "pue"], p[PARAM + "pue_source"]) == ("1.2", "config")
    assert "not added" in p[PARAM + "embodied_source"]
    assert all(len(v) <= 500 for v in p.values())


def test_top_level_windows_are_steps_in_start_order() -> None:
    steps = run_figures(record()).steps
    assert [(s.step, s.path) for s in steps] == [(1, "epoch-1"), (2, "epoch-2")]
    assert steps[1].metrics == {
        WINDOW + "energy_j": 1600.0,
        WINDOW + "co2e_g": 0.3,
        WINDOW + "duration_s": 50.0,
        WINDOW + "power_w": 32.0,
    }


@pytest.mark.parametrize(
    ("path", "position", "step"),
    [("epoch-7", 1, 7), ("Epoch_3", 2, 3), ("warmup", 4, 4), ("epoch-2-extra", 5, 5)],
)
def test_window_steps_follow_epoch_numbers(path: str, position: int, step: int) -> None:
    assert window_step(path, position) == step


def test_a_run_without_intensity_has_no_co2e_and_says_why() -> None:
    figures = run_figures(record(emissions=False))
    assert not any("co2e_g" in k and "embodied" not in k for k in figures.metrics)
    assert "no grid intensity" in figures.params[PARAM + "co2e"]


def test_forge_figures_need_a_forge_json(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no forge\.json"):
        forge_figures(tmp_path)
    (tmp_path / "forge.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DataError, match=r"not a forge\.json"):
        forge_figures(tmp_path)


def test_forge_candidates_lifetime_basis_and_sci(tmp_path: Path) -> None:
    doc = {
        "task": {"name": "t"},
        "chosen": "small",
        "deployment": {"zone": "FR", "intensity_g_per_kwh": 50.0, "pue": 1.0},
        "candidates": [
            {"name": "failed", "error": "boom"},
            {
                "name": "small",
                "recipe": "distill",
                "accuracy": 0.9,
                "lifetime_co2e_g": 12.0,
                "search_share_co2e_g": 2.0,
                "lifetime_co2e_low_g": 8.0,
                "lifetime_co2e_high_g": 11.0,
                "inference_co2e_g_per_1k": 0.01,
                "size_bytes": 1000,
            },
        ],
        "files": {"results": "forge.json", "safetensors": "model.safetensors"},
    }
    (tmp_path / "forge.json").write_text(json.dumps(doc), encoding="utf-8")
    (tmp_path / "model.safetensors").write_bytes(b"x")
    figures = forge_figures(tmp_path)
    (c,) = figures.candidates
    assert c.chosen
    assert c.metrics["greenforge/lifetime_co2e_g"] == 10.0
    assert c.metrics["greenforge/lifetime_with_search_co2e_g"] == 12.0
    assert c.metrics["greenforge/sci_g_per_1k_predictions"] == 0.01
    assert c.params[PARAM + "chosen"] == "true"
    assert figures.files == {"results": tmp_path / "forge.json"}
    assert figures.model_files == (tmp_path / "model.safetensors",)


def test_an_unknown_tracker_is_refused_with_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'comet'.*mlflow, wandb"):
        export_forge(tmp_path, ["comet"])
