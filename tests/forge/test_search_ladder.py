"""Specification of the search that reaches the target: student ladders, KD on augmented
inputs with cached teacher logits, pruning schedules, and the search's CO2e budget."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

from greenforge.config import Settings
from greenforge.errors import BudgetExceededError, ConfigError, GreenForgeError
from greenforge.forge.augment import augment_inputs, kd_dataset, resolve_augment, shifted
from greenforge.forge.candidate import Candidate
from greenforge.forge.context import ForgeContext
from greenforge.forge.recipes.base import create_recipe
from greenforge.forge.recipes.distill import DistillConfig
from greenforge.forge.recipes.prune import PruneRecipeConfig
from greenforge.forge.spec import TaskSpec
from greenforge.forge.task import DEFAULT_RECIPES
from greenforge.testing import FakeMeter

from .conftest import blobs


def context(
    target: float = 0.9, budget: float | None = None, shuffle_labels: bool = False
) -> ForgeContext:
    x, y = blobs(n=300, features=8, classes=3, seed=0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if shuffle_labels:
        yt = yt[torch.randperm(len(yt), generator=torch.Generator().manual_seed(0))]
    spec = TaskSpec(
        "blobs",
        target_accuracy=target,
        epochs=3,
        batch_size=32,
        lr=1e-2,
        architecture_options={"hidden": (32, 32)},
        search_budget_co2e_g=budget,
    )
    return ForgeContext(
        TensorDataset(xt[:180], yt[:180]),
        TensorDataset(xt[180:240], yt[180:240]),
        TensorDataset(xt[240:], yt[240:]),
        3,
        (8,),
        spec,
        Settings(zone="DE"),
        measure_kwargs={
            "meters": [FakeMeter(20.0)],
            "intensity_g_per_kwh": 300.0,
            "intensity_source": "static:test",
        },
    )


def with_baseline(ctx: ForgeContext) -> Candidate:
    model = ctx.build_model()
    out = ctx.train(model, name="baseline")
    base = Candidate(
        "baseline", "baseline", {}, model, out.measurement, val_accuracy=out.val_accuracy
    )
    ctx.add(base)
    ctx.baseline = base
    return base


# --------------------------------------------------------------------------- configs


def test_ladder_and_schedule_configs_round_trip_through_json() -> None:
    distill = DistillConfig(
        students=([8], {"architecture": "mlp", "hidden": [4, 4]}), ladder="down", augment="noise"
    )
    prune = PruneRecipeConfig(amounts=(0.3, 0.5, 0.85), teacher="baseline", augment="auto")

    assert DistillConfig.from_json(distill.to_json()) == distill
    assert PruneRecipeConfig.from_json(prune.to_json()) == prune
    assert distill.to_dict()["students"] == [(8,), {"architecture": "mlp", "hidden": [4, 4]}]


@pytest.mark.parametrize(
    ("factory", "options", "fragment"),
    [
        (DistillConfig, {"students": [[0]]}, r"students\[0\] \[0\]"),
        (DistillConfig, {"students": [[8], "wide"]}, r"students\[1\] 'wide'"),
        (DistillConfig, {"students": [[8]], "student": {"hidden": [4]}}, "not both"),
        (DistillConfig, {"ladder": "sideways"}, "DistillConfig.ladder: 'sideways'"),
        (DistillConfig, {"augment": "blur"}, "DistillConfig.augment: 'blur'"),
        (DistillConfig, {"batch_size": 0}, "DistillConfig.batch_size 0"),
        (PruneRecipeConfig, {"amounts": [0.5, 0.3]}, r"amounts \[0.5, 0.3\] must increase"),
        (PruneRecipeConfig, {"amounts": [0.3, 1.2]}, r"amounts\[1\] 1.2"),
        (PruneRecipeConfig, {"amounts": [0.3], "kind": "unstructured"}, "structured"),
    ],
)
def test_bad_ladder_and_schedule_options_name_the_value(
    factory: Any, options: dict[str, Any], fragment: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=fragment):
        factory.from_dict(options)


@pytest.mark.parametrize("budget", [0.0, -1.0, float("nan"), True])
def test_a_bad_search_budget_is_refused_naming_it(budget: Any) -> None:
    with pytest.raises(ConfigError, match="search_budget_co2e_g"):
        TaskSpec("t", target_accuracy=0.9, search_budget_co2e_g=budget)


def test_default_recipes_build() -> None:
    for spec in DEFAULT_RECIPES:
        create_recipe(spec.recipe, **dict(spec.options))


# --------------------------------------------------------------------------- augmentation


def test_shifts_make_nine_copies_and_move_pixels() -> None:
    x = torch.zeros(2, 1, 8, 8)
    x[:, 0, 4, 4] = 1.0

    out = shifted(x, (1, 8, 8))

    assert out.shape == (18, 1, 8, 8)
    assert torch.equal(out[:2], x)
    lit = {tuple(int(v) for v in torch.nonzero(img[0])[0]) for img in out}
    assert lit == {(4 + dy, 4 + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}


def test_large_images_shift_by_two_pixels_and_edges_are_zero_filled() -> None:
    x = torch.ones(1, 1, 28, 28)

    out = shifted(x, (1, 28, 28))

    assert out.shape[0] == 9
    assert float(out[1:].sum(dim=(1, 2, 3)).min()) == 26 * 26


def test_auto_picks_shifts_for_images_and_noise_for_features() -> None:
    assert resolve_augment("auto", (1, 8, 8)) == "shift"
    assert resolve_augment("auto", (8,)) == "noise"
    with pytest.raises(ConfigError, match=r"'shift' needs image inputs.*\[8\]"):
        resolve_augment("shift", (8,))
    noisy = augment_inputs(torch.ones(3, 8) * torch.arange(3.0)[:, None], (8,), "noise")
    assert noisy.shape == (15, 8)
    assert torch.equal(noisy[:3], torch.ones(3, 8) * torch.arange(3.0)[:, None])


def test_teacher_logits_are_computed_once_and_measured() -> None:
    ctx = context()
    base = with_baseline(ctx)

    first = kd_dataset(ctx, base, "auto")
    again = kd_dataset(ctx, base, "auto")

    assert first is again
    assert len(first) == 180 * 5
    assert [label for label, _ in ctx.measurements].count("teacher-logits:baseline+noise") == 1


# --------------------------------------------------------------------------- ladders


def test_an_upward_ladder_stops_at_the_first_student_that_qualifies() -> None:
    ctx = context(target=0.5)
    with_baseline(ctx)

    made = create_recipe("distill", students=[[16], [4], [32]], epochs=2).run(ctx)

    assert len(made) == 1
    assert made[0].name == "distill"
    assert made[0].model.net[1].out_features == 4  # smallest first
    trained = [label for label, _ in ctx.measurements if label.startswith("train:distill")]
    assert len(trained) == 1
    assert any("meets" in note for note in made[0].notes)


def test_a_downward_ladder_keeps_the_smallest_that_qualifies() -> None:
    ctx = context(target=0.5)
    with_baseline(ctx)

    made = create_recipe("distill", students=[[16], [4]], ladder="down", epochs=2).run(ctx)

    assert made[0].model.net[1].out_features == 4
    assert len([m for m in ctx.measurements if m[0].startswith("train:distill")]) == 2
    assert made[0].train is not None  # the whole ladder's training is its cost
    assert made[0].train.energy_j == pytest.approx(
        sum(m.energy_j for label, m in ctx.measurements if label.startswith("train:distill"))
    )


def test_a_ladder_without_a_qualifying_student_keeps_the_most_accurate_and_says_so() -> None:
    ctx = context(target=0.99, shuffle_labels=True)
    with_baseline(ctx)

    made = create_recipe("distill", students=[[4], [8]], epochs=1).run(ctx)

    assert "no student reached the validation target" in made[0].notes[-1]


# --------------------------------------------------------------------------- pruning schedule


def test_a_pruning_schedule_keeps_the_largest_amount_that_meets_the_target() -> None:
    ctx = context(target=0.5)
    with_baseline(ctx)

    made = create_recipe(
        "prune", source="baseline", amounts=[0.3, 0.5], finetune_epochs=1, augment="auto"
    ).run(ctx)

    assert [c.name for c in made] == ["baseline+prune50"]
    # about half of the 32 channels are left (each step rounds to whole channels)
    assert made[0].model.net[1].out_features in (15, 16)
    assert made[0].parent == "baseline"


def test_a_pruning_schedule_that_never_qualifies_adds_nothing_and_says_why() -> None:
    ctx = context(target=0.99, shuffle_labels=True)
    with_baseline(ctx)

    with pytest.raises(GreenForgeError, match=r"no amount of \[30, 50\] %.*30 %: validation"):
        create_recipe("prune", source="baseline", amounts=[0.3, 0.5], finetune_epochs=1).run(ctx)


# --------------------------------------------------------------------------- budget


def test_a_spent_search_budget_skips_training_naming_the_step() -> None:
    ctx = context(budget=1e-12)
    with_baseline(ctx)  # nothing was spent before the baseline

    with pytest.raises(BudgetExceededError, match=r"search_budget_co2e_g.*'train:distill'"):
        create_recipe("distill", epochs=1).run(ctx)
    assert ctx.budget_left_co2e_g() is not None
    assert ctx.budget_left_co2e_g() < 0  # type: ignore[operator]


def test_a_ladder_stops_climbing_when_the_budget_is_spent_and_keeps_what_it_has() -> None:
    ctx = context(target=0.99, shuffle_labels=True)
    base = with_baseline(ctx)
    kd_dataset(ctx, base, "auto")  # cached: the ladder adds only its students' training
    ctx.task = dataclasses.replace(ctx.task, search_budget_co2e_g=ctx.spent_co2e_g * 1.000001)

    made = create_recipe("distill", students=[[4], [8]], epochs=1).run(ctx)

    assert made[0].model.net[1].out_features == 4
    assert any("search budget spent" in note for note in made[0].notes)
    assert len([m for m in ctx.measurements if m[0].startswith("train:distill")]) == 1


def test_without_a_budget_nothing_is_skipped() -> None:
    ctx = context()
    assert ctx.budget_left_co2e_g() is None
    ctx.check_budget("anything")


def test_the_documented_default_search_is_the_default() -> None:
    from pathlib import Path

    import tomllib

    text = (Path(__file__).parents[2] / "docs" / "forge.md").read_text(encoding="utf-8")
    block = text.split("A task without `recipes`", 1)[1].split("```toml\n", 1)[1].split("```")[0]

    documented = tomllib.loads(block)["recipes"]

    assert [d if isinstance(d, str) else d["recipe"] for d in documented] == [
        r.recipe for r in DEFAULT_RECIPES
    ]
    for doc, spec in zip(documented, DEFAULT_RECIPES, strict=True):
        if isinstance(doc, dict):
            assert {k: v for k, v in doc.items() if k != "recipe"} == dict(spec.options)


def test_large_training_splits_get_fewer_copies_axial_shifts_first() -> None:
    x = torch.zeros(10, 1, 8, 8)
    x[:, 0, 4, 4] = 1.0

    five = augment_inputs(x, (1, 8, 8), "shift", max_values=x.numel() * 5)
    none = augment_inputs(x, (1, 8, 8), "shift", max_values=x.numel())
    noise = augment_inputs(x.reshape(10, 64), (64,), "noise", max_values=640 * 3)

    assert five.shape[0] == 50
    lit = {tuple(int(v) for v in torch.nonzero(img[0])[0]) for img in five}
    assert lit == {(4, 4), (3, 4), (5, 4), (4, 3), (4, 5)}
    assert torch.equal(none, x)
    assert noise.shape == (30, 64)
