"""Specification of the recipe contract: typed configs, the registry and the context."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.config import Settings
from greenforge.errors import ConfigError, UnknownNameError
from greenforge.forge.candidate import Candidate
from greenforge.forge.compress import ChannelPruneConfig, Int8StaticConfig
from greenforge.forge.context import ForgeContext
from greenforge.forge.recipes.base import create_recipe, recipe_names, register_recipe
from greenforge.forge.recipes.config import RecipeConfig
from greenforge.forge.recipes.distill import DistillConfig
from greenforge.forge.recipes.prune import PruneRecipeConfig
from greenforge.forge.spec import TaskSpec


@dataclasses.dataclass(frozen=True)
class ToyConfig(RecipeConfig):
    VERSION: ClassVar[int] = 2
    amount: float = 0.5
    epochs: int | None = None
    mode: Literal["a", "b"] = "a"
    hidden: tuple[int, ...] = (8,)
    name: str = "toy"


@given(
    amount=st.floats(0.0, 1.0, allow_nan=False),
    epochs=st.one_of(st.none(), st.integers(1, 1000)),
    mode=st.sampled_from(["a", "b"]),
    hidden=st.lists(st.integers(1, 4096), max_size=4),
    name=st.text(max_size=20),
)
def test_every_config_round_trips_through_json(
    amount: float, epochs: int | None, mode: str, hidden: list[int], name: str
) -> None:
    config = ToyConfig(
        amount=amount,
        epochs=epochs,
        mode=mode,  # type: ignore[arg-type]
        hidden=tuple(hidden),
        name=name,
    )

    again = ToyConfig.from_json(config.to_json())

    assert again == config
    assert config.to_dict()["version"] == 2
    assert config.to_dict()["type"] == "ToyConfig"


def test_config_lists_from_toml_become_tuples() -> None:
    assert ToyConfig.from_dict({"hidden": [4, 2]}).hidden == (4, 2)


@pytest.mark.parametrize(
    ("options", "error", "fragment"),
    [
        ({"amount": "lots"}, TypeError, "ToyConfig.amount"),
        ({"amount": float("nan")}, ValueError, "finite"),
        ({"epochs": 2.5}, TypeError, "ToyConfig.epochs"),
        ({"mode": "c"}, ValueError, "'a', 'b'"),
        ({"hidden": 3}, TypeError, "list/tuple"),
        ({"colour": "red"}, ValueError, "unknown option(s) 'colour'"),
        ({"version": 3}, ValueError, "newer"),
    ],
)
def test_bad_config_values_raise_naming_the_field(
    options: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        ToyConfig.from_dict(options)


def test_recipe_configs_validate_their_ranges() -> None:
    with pytest.raises(ValueError, match="amount"):
        ChannelPruneConfig(amount=1.5)
    with pytest.raises(ValueError, match="temperature"):
        DistillConfig(temperature=0.0)
    with pytest.raises(ValueError, match="calibration_batches"):
        Int8StaticConfig(calibration_batches=0)
    with pytest.raises(ValueError, match="amount"):
        PruneRecipeConfig(amount=0.0)


def test_builtin_recipes_are_registered() -> None:
    names = recipe_names()

    for expected in (
        "baseline",
        "early-stop",
        "mixed-precision",
        "distill",
        "prune",
        "quantize",
        "bf16",
    ):
        assert expected in names


def test_unknown_recipe_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError) as info:
        create_recipe("distil")

    assert "distill" in str(info.value)
    assert "Did you mean 'distill'" in str(info.value)


def test_create_recipe_builds_the_typed_config() -> None:
    recipe = create_recipe("prune", source="distill", amount=0.3)

    assert recipe.config == PruneRecipeConfig(source="distill", amount=0.3)


def test_a_third_party_recipe_plugs_into_the_registry() -> None:
    class Noop:
        name = "noop-test"
        config_type = ToyConfig

        def __init__(self, config: ToyConfig) -> None:
            self.config = config

        def run(self, ctx: ForgeContext) -> list[Candidate]:
            return []

    register_recipe("noop-test", Noop)

    recipe = create_recipe("noop-test", amount=0.25)

    assert isinstance(recipe, Noop)
    assert recipe.config.amount == 0.25


def test_factories_without_a_config_type_are_refused() -> None:
    with pytest.raises(TypeError, match="config_type"):
        register_recipe("broken", lambda config: config)


def test_task_spec_needs_a_target_and_sane_values() -> None:
    with pytest.raises(ConfigError, match="target_accuracy"):
        TaskSpec(name="t")
    with pytest.raises(ConfigError, match="in \\(0, 1\\]"):
        TaskSpec(name="t", target_accuracy=95.0)
    with pytest.raises(ConfigError, match="batch_size"):
        TaskSpec(name="t", tolerance=0.01, batch_size=0)


def _context(target: float | None, tolerance: float | None) -> ForgeContext:
    import torch
    from torch.utils.data import TensorDataset

    ds = TensorDataset(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
    return ForgeContext(ds, ds, ds, 2, (2,), TaskSpec("t", target, tolerance), Settings())


def test_a_tolerance_target_is_known_once_the_baseline_is_measured() -> None:
    ctx = _context(None, 0.02)
    assert ctx.target_accuracy is None
    assert ctx.val_target() is None

    ctx.baseline = Candidate("baseline", "baseline", {}, model=None, val_accuracy=0.9)
    ctx.baseline_test_accuracy = 0.95

    assert ctx.target_accuracy == pytest.approx(0.93)
    assert ctx.val_target() == pytest.approx(0.88)
    assert ctx.val_target(margin=0.01) == pytest.approx(0.89)


def test_an_absolute_target_is_used_as_is() -> None:
    ctx = _context(0.8, None)

    assert ctx.target_accuracy == 0.8
    assert ctx.val_target(0.05) == pytest.approx(0.85)


def test_duplicate_candidate_names_are_refused() -> None:
    ctx = _context(0.8, None)
    ctx.add(Candidate("a", "baseline", {}, model=None))

    with pytest.raises(ConfigError, match="'a'"):
        ctx.add(Candidate("a", "baseline", {}, model=None))


def test_lineage_follows_parents() -> None:
    ctx = _context(0.8, None)
    ctx.add(Candidate("baseline", "baseline", {}, model=None))
    ctx.add(Candidate("distill", "distill", {}, model=None, parent="baseline"))
    ctx.add(Candidate("distill+int8", "quantize", {}, model=None, parent="distill"))

    assert [c.name for c in ctx.lineage("distill+int8")] == ["distill+int8", "distill", "baseline"]


def test_missing_recipe_inputs_name_what_exists() -> None:
    ctx = _context(0.8, None)
    ctx.add(Candidate("baseline", "baseline", {}, model=None))

    with pytest.raises(ConfigError, match=r"'student'.*baseline"):
        ctx.require_candidate("student")
