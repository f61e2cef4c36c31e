"""Specification of the forge search on a small task: outputs, accounting, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from greenforge.config import Settings
from greenforge.errors import ConfigError, DataError, UnknownNameError
from greenforge.forge.output import summary_lines
from greenforge.forge.search import run_forge
from greenforge.forge.task import load_task

from .conftest import write_task

SMALL = """
[task]
name = "blobs"
tolerance = 0.05
expected_inferences = 1000000
zone = "DE"
epochs = 4
batch_size = 32
lr = 0.01
serving_batch_size = 16
recipes = ["baseline", "distill", { recipe = "prune", source = "distill", amount = 0.5 },
           { recipe = "quantize", source = "baseline", mode = "int8-dynamic" }]

[recipe.distill]
student = { architecture = "mlp", hidden = [16] }
"""


def _run(tmp_path: Path, npz: Path, body: str, fake: dict[str, Any], **kw: Any) -> Any:
    task = load_task(write_task(tmp_path, body, npz))
    return run_forge(
        task,
        Settings(),
        out_dir=tmp_path / "out",
        measure_kwargs=fake,
        min_duration_s=0.01,
        measure_budget_s=1.0,
        threads=1,
        **kw,
    )


def test_a_search_chooses_the_least_lifetime_co2e_model_and_writes_everything(
    tmp_path: Path, blobs_npz: Path, fake_measure: dict[str, Any]
) -> None:
    result = _run(tmp_path, blobs_npz, SMALL, fake_measure)

    out = tmp_path / "out"
    doc = json.loads((out / "forge.json").read_text())
    assert doc["status"] == "chosen"
    assert doc["baseline"] == "baseline"
    assert doc["chosen"] == result.chosen
    names = [c["name"] for c in doc["candidates"]]
    assert names == [
        "baseline",
        "distill",
        "distill+prune50",
        "baseline+int8-dynamic",
        "baseline+onnx",
        "distill+onnx",
        "distill+prune50+onnx",
    ]
    for c in doc["candidates"]:
        for key in (
            "name",
            "accuracy",
            "train_co2e_g",
            "inference_co2e_g_per_1k",
            "lifetime_co2e_g",
            "parameters",
            "size_bytes",
            "flops",
            "inference_batch1",
            "inference_serving",
        ):
            assert key in c, key
        assert c["inference_serving"]["method"] == "fake"
    chosen = next(c for c in doc["candidates"] if c["name"] == result.chosen)
    qualifying = [c for c in doc["candidates"] if c["meets_target"]]
    assert chosen["meets_target"]
    best = min(c["lifetime_co2e_g"] - c["search_share_co2e_g"] for c in qualifying)
    if doc["decision"]["within_noise"]:  # the tie-break chose among overlapping intervals
        assert result.chosen in doc["decision"]["contenders"]
        assert doc["decision"]["tie_break"].startswith("fewer precision-weighted FLOPs")
    else:
        assert chosen["lifetime_co2e_g"] - chosen["search_share_co2e_g"] == pytest.approx(best)
    # the whole search, the inference measurement included, is charged to the chosen model:
    # its lineage + its share = the search total (the measurement is also shown apart)
    search = doc["search"]
    assert 0 < search["measurement_co2e_g"] < search["total_co2e_g"]
    assert chosen["train_co2e_g"] + chosen["search_share_co2e_g"] == pytest.approx(
        search["total_co2e_g"]
    )
    # the protocol's self-check: an independent copy of the baseline, measured in the same
    # rounds, is reported (never as a candidate)
    assert doc["protocol"]["control_of"] == "baseline"
    assert doc["protocol"]["control_spread"] >= 0.0
    assert "baseline~control" not in names
    assert any(
        line.startswith("self-check: two independent copies of baseline")
        for line in summary_lines(result)
    )
    # the serving spec, attribution, noise and decision are recorded with the results
    assert doc["schema"] == 2
    assert doc["serving"]["threads"] == 1
    assert doc["serving"]["batch_sizes"] == [1, 16]
    assert doc["training"]["threads"] == 1
    assert doc["attribution"]["name"] == "meters"
    assert 0.0 <= doc["noise"]["background_load"] <= 1.0
    assert doc["protocol"]["rounds"] >= 5
    assert doc["protocol"]["warmup_s"] == pytest.approx(0.002)  # recorded, not only in `rule`
    head = doc["headline"]
    assert head["ratio_low"] <= head["ratio"] <= head["ratio_high"]
    assert isinstance(head["same_runtime"], bool)
    for c in doc["candidates"]:
        assert c["lifetime_co2e_low_g"] <= c["lifetime_co2e_g"] - c["search_share_co2e_g"]
        assert c["lifetime_co2e_g"] - c["search_share_co2e_g"] <= c["lifetime_co2e_high_g"]
    assert (out / "model.safetensors").is_file()
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    card = (out / "README.md").read_text()
    assert card.startswith("---\n")
    for key in (
        "co2_eq_emissions:",
        "emissions:",
        "source:",
        "training_type:",
        'geographical_location: "DE"',
        "hardware_used:",
    ):
        assert key in card


def test_lineage_costs_include_the_ancestors(
    tmp_path: Path, blobs_npz: Path, fake_measure: dict[str, Any]
) -> None:
    result = _run(tmp_path, blobs_npz, SMALL, fake_measure)

    pruned = result.result("distill+prune50")
    own = {r.name: r.candidate.train_co2e_g for r in result.results}
    assert pruned.lineage == ("distill+prune50", "distill", "baseline")
    assert pruned.train_co2e_g == pytest.approx(
        own["distill+prune50"] + own["distill"] + own["baseline"]
    )


def test_structured_pruning_really_shrinks_the_candidate(
    tmp_path: Path, blobs_npz: Path, fake_measure: dict[str, Any]
) -> None:
    result = _run(tmp_path, blobs_npz, SMALL, fake_measure)

    student = result.result("distill").evaluation
    pruned = result.result("distill+prune50").evaluation
    assert pruned.parameters < student.parameters
    assert pruned.flops < student.flops


def test_an_unreachable_target_gives_an_honest_no_candidate_result(
    tmp_path: Path, blobs_npz: Path, fake_measure: dict[str, Any]
) -> None:
    body = SMALL.replace("tolerance = 0.05", "target_accuracy = 1.0").replace(
        "[recipe.distill]", "[recipe.unused]"
    )
    (tmp_path / "noisy.npz").write_bytes(blobs_npz.read_bytes())
    import numpy as np

    with np.load(blobs_npz) as z:
        x, y = z["x"], z["y"].copy()
    y[::7] = (y[::7] + 1) % 3  # label noise: 100 % test accuracy is out of reach
    np.savez(tmp_path / "noisy.npz", x=x, y=y)

    result = _run(tmp_path, tmp_path / "noisy.npz", body, fake_measure)

    doc = json.loads((tmp_path / "out" / "forge.json").read_text())
    assert result.chosen is None
    assert doc["status"] == "no-candidate"
    assert doc["chosen"] is None
    assert "no candidate met the target accuracy 1.0000" in doc["reason"]
    assert 1 <= len(doc["closest"]) <= 3
    assert not (tmp_path / "out" / "model.safetensors").exists()
    assert (tmp_path / "out" / "README.md").is_file()


def test_unknown_recipes_fail_before_anything_is_trained(
    tmp_path: Path, blobs_npz: Path, fake_measure: dict[str, Any]
) -> None:
    body = SMALL.replace('"distill", {', '"distil", {')

    with pytest.raises(UnknownNameError, match="Did you mean 'distill'"):
        _run(tmp_path, blobs_npz, body, fake_measure)
    assert not (tmp_path / "out" / "forge.json").exists()


def test_bad_recipe_options_name_the_recipe(
    tmp_path: Path, blobs_npz: Path, fake_measure: dict[str, Any]
) -> None:
    body = SMALL.replace("amount = 0.5", "amount = 2.0")

    with pytest.raises(ConfigError, match=r"recipe #3 \('prune'\).*amount 2.0"):
        _run(tmp_path, blobs_npz, body, fake_measure)


def test_a_model_that_does_not_fit_the_input_shape_is_reported(
    tmp_path: Path, blobs_npz: Path, fake_measure: dict[str, Any]
) -> None:
    body = SMALL + "\n[model]\n"
    task_path = write_task(tmp_path, SMALL, blobs_npz)
    text = task_path.read_text().replace('architecture = "mlp"', 'architecture = "cnn"')
    task_path.write_text(text)

    with pytest.raises(Exception, match="cnn") as info:
        run_forge(load_task(task_path), Settings(), measure_kwargs=fake_measure)
    assert isinstance(info.value, (ConfigError, DataError))
    del body


def test_partial_results_are_kept_when_a_later_step_fails(
    tmp_path: Path, blobs_npz: Path, fake_measure: dict[str, Any]
) -> None:
    # a quantize of a candidate that is never built: the failure is recorded, the rest kept
    body = SMALL.replace('source = "baseline", mode', 'source = "nonexistent", mode')

    result = _run(tmp_path, blobs_npz, body, fake_measure)

    doc = json.loads((tmp_path / "out" / "forge.json").read_text())
    assert [f["recipe"] for f in doc["failures"]] == ["quantize"]
    assert "'nonexistent' has not been built" in doc["failures"][0]["error"]
    assert len(doc["candidates"]) == 6  # three trained, each also in ONNX Runtime
    assert result.status in ("chosen", "no-candidate")


def test_the_search_reports_its_own_total_cost(
    tmp_path: Path, blobs_npz: Path, fake_measure: dict[str, Any]
) -> None:
    result = _run(tmp_path, blobs_npz, SMALL, fake_measure)

    steps = result.search.steps
    labels = [s.label for s in steps]
    assert "train:baseline" in labels
    assert "measure:inference" in labels
    assert "convert:baseline+onnx" in labels
    # ONNX's one-off start-up is the search's own step, once, before the first conversion
    # that needs it, not a share of whichever candidate came first
    assert labels.count("tooling:onnx") == 1
    assert labels.index("tooling:onnx") < labels.index("convert:baseline+int8-dynamic")
    tooling = steps[labels.index("tooling:onnx")]
    assert tooling.co2e_g > 0
    assert result.search.total_co2e_g == pytest.approx(sum(s.co2e_g for s in steps))
    assert result.search.total_co2e_g > 0


def test_a_modelled_search_is_labelled_modelled_not_measured(
    tmp_path: Path, blobs_npz: Path
) -> None:
    from greenforge.testing import FakeMeter

    modelled = {
        "meters": [FakeMeter(20.0, method="model:cpu-ccf-vcpu")],
        "intensity_g_per_kwh": 300.0,
        "intensity_source": "static:test",
    }
    body = SMALL.replace(
        'recipes = ["baseline", "distill", { recipe = "prune", source = "distill", amount = 0.5 },\n'
        '           { recipe = "quantize", source = "baseline", mode = "int8-dynamic" }]',
        'recipes = ["baseline"]',
    )
    _run(tmp_path, blobs_npz, body, modelled)

    doc = json.loads((tmp_path / "out" / "forge.json").read_text())
    assert doc["search"]["methods"] == "model:cpu-ccf-vcpu"
    assert doc["search"]["energy_basis"] == "modelled"
    card = (tmp_path / "out" / "README.md").read_text()
    assert "GreenForge forge: modelled with model:cpu-ccf-vcpu" in card
    assert "measured" not in card.split("---")[1]  # the co2_eq_emissions metadata


def test_the_serving_spec_is_part_of_the_task_file(tmp_path: Path, blobs_npz: Path) -> None:
    body = SMALL.replace(
        "serving_batch_size = 16",
        "serving_batch_size = 16\nserving_threads = 2\ntraining_threads = 1\n"
        'serving_runtimes = ["native"]\nmeasure_budget_s = 5.0',
    )

    spec = load_task(write_task(tmp_path, body, blobs_npz)).spec

    assert spec.serving_threads == 2
    assert spec.training_threads == 1
    assert spec.serving_runtimes == ("native",)
    assert spec.measure_budget_s == 5.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('serving_runtimes = ["tensorrt"]', "serving_runtimes"),
        ("serving_threads = 0", "serving_threads"),
        ("measure_budget_s = -1", "measure_budget_s"),
    ],
)
def test_bad_serving_settings_name_the_key(
    tmp_path: Path, blobs_npz: Path, line: str, message: str
) -> None:
    body = SMALL.replace("serving_batch_size = 16", f"serving_batch_size = 16\n{line}")

    with pytest.raises(ConfigError, match=message):
        load_task(write_task(tmp_path, body, blobs_npz))


def test_native_only_serving_makes_no_onnx_exports(
    tmp_path: Path, blobs_npz: Path, fake_measure: dict[str, Any]
) -> None:
    body = SMALL.replace(
        "serving_batch_size = 16", 'serving_batch_size = 16\nserving_runtimes = ["native"]'
    ).replace(
        'recipes = ["baseline", "distill", { recipe = "prune", source = "distill", amount = 0.5 },\n'
        '           { recipe = "quantize", source = "baseline", mode = "int8-dynamic" }]',
        'recipes = ["baseline"]',
    )

    result = _run(tmp_path, blobs_npz, body, fake_measure)

    assert [r.name for r in result.results] == ["baseline"]
    assert result.headline is not None
    assert result.headline.same_runtime


def test_single_shot_spread_is_the_repeats_spread_around_their_median() -> None:
    from greenforge.forge.protocol import InterleavedRun, WorkloadCost
    from greenforge.forge.search import _single_shot_spread

    def cost(key: str, values: tuple[float, ...]) -> WorkloadCost:
        return WorkloadCost(key, 1, 1, values, values, values, 1.0, 1.0, "fake")

    run = InterleavedRun(
        {"a": cost("a", (9.0, 10.0, 11.0)), "b": cost("b", (1.8, 2.0, 2.2))}, 3, "", 0.0, 0.0
    )
    low, high = _single_shot_spread(run)
    assert low == pytest.approx(0.1, rel=0.05)
    assert high == pytest.approx(0.1, rel=0.05)
