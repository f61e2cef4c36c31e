"""Forge tasks: the bundled examples and the TOML task file.

A task file (all keys but ``[data]`` and ``target_accuracy``/``tolerance`` are optional)::

    [task]
    name = "my-task"
    tolerance = 0.01              # target = baseline accuracy - 1 point; or target_accuracy = 0.9
    expected_inferences = 10_000_000
    zone = "DE"                   # deployment grid zone
    epochs = 20
    batch_size = 64
    lr = 0.001
    seed = 0
    serving_batch_size = 64
    serving_threads = 1           # threads a serving replica gets (every candidate measured so)
    serving_runtimes = ["native", "onnxruntime"]  # also measure fp32 models in ONNX Runtime
    training_threads = 1
    measure_budget_s = 25.0       # CPU seconds for the interleaved inference measurement
    search_budget_co2e_g = 0.02   # cap on the search's training/conversion CO2e (optional)
    recipes = ["baseline", "distill", { recipe = "prune", source = "distill", amount = 0.5 },
               { recipe = "quantize", mode = "int8-static" }]

    [data]
    kind = "npz"                  # npz | csv | entry_point
    path = "data.npz"             # relative to the task file
    input_shape = [1, 8, 8]       # optional reshape of each sample
    scale = 16.0                  # optional: features are divided by it

    [model]
    architecture = "mlp"          # mlp | cnn | transformer | "pkg.module:factory"
    hidden = [256, 256]           # options passed to the architecture

    [recipe.distill]              # default options for a recipe named in `recipes`
    temperature = 4.0

    [pretrained]                  # passed to the transfer recipes (see docs/transfer.md)
    kind = "safetensors"
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from greenforge.errors import ConfigError
from greenforge.forge.spec import TaskSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclasses.dataclass(frozen=True)
class RecipeSpec:
    """One entry of the recipe list: a registered recipe name and its options."""

    recipe: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, **dict(self.options)}


@dataclasses.dataclass(frozen=True)
class ForgeTask:
    """What to forge: the task spec, where the data comes from, and the recipes."""

    spec: TaskSpec
    data: Mapping[str, Any]
    """``{"example": name}`` or the ``[data]`` table."""
    recipes: tuple[RecipeSpec, ...]
    base_dir: Path = Path()
    pretrained: Mapping[str, Any] | None = None


DEFAULT_RECIPES: tuple[RecipeSpec, ...] = (
    RecipeSpec("baseline"),
    # A ladder of students, smallest first: the first whose validation accuracy reaches the
    # target plus one point is kept. KD on shifted copies of the training images (teacher
    # logits computed once) is what lets these small students match the teacher.
    RecipeSpec(
        "distill",
        {
            "students": [[64], [128], [256]],
            "ladder": "up",
            "augment": "auto",
            "early_stop": False,
            "margin": 0.01,
        },
    ),
    # Prune the student step by step; keep the largest amount that still meets the target.
    RecipeSpec(
        "prune",
        {
            "source": "distill",
            "amounts": [0.3, 0.5, 0.7],
            "teacher": "baseline",
            "augment": "auto",
            "finetune_epochs": 1,
            "margin": 0.01,
        },
    ),
    RecipeSpec("quantize", {"source": "best", "mode": "int8-dynamic"}),
    RecipeSpec("quantize", {"source": "best", "mode": "int8-static"}),
    # The student itself in int8: qualifies whenever the student does, even if its pruned
    # child falls short of the target on the test split.
    RecipeSpec("quantize", {"source": "distill", "mode": "int8-dynamic"}),
)

EXAMPLE_SPECS: dict[str, dict[str, Any]] = {
    "digits": {
        "epochs": 30,
        "search_budget_co2e_g": 0.02,
        "batch_size": 64,
        "lr": 1e-3,
        "architecture": "mlp",
        "architecture_options": {"hidden": (1024, 1024)},
    },
    "mnist5k": {
        "epochs": 12,
        "search_budget_co2e_g": 0.02,
        "batch_size": 64,
        "lr": 1e-3,
        "architecture": "mlp",
        "architecture_options": {"hidden": (1024, 1024)},
    },
}
EXAMPLE_ZONE = "DE"
"""The examples' deployment zone is part of the example task (shown in every output)."""


def example_task(
    name: str,
    *,
    zone: str | None = None,
    expected_inferences: int | None = None,
    epochs: int | None = None,
) -> ForgeTask:
    """A bundled example task: tolerance 1 point below the fp32 baseline, 10 M predictions."""
    from greenforge.errors import UnknownNameError

    if name not in EXAMPLE_SPECS:
        raise UnknownNameError("example", name, EXAMPLE_SPECS)
    opts = dict(EXAMPLE_SPECS[name])
    if epochs is not None:
        opts["epochs"] = epochs
    spec = TaskSpec(
        name=name,
        tolerance=0.01,
        expected_inferences=10_000_000 if expected_inferences is None else expected_inferences,
        zone=zone or EXAMPLE_ZONE,
        recipes=tuple(r.recipe for r in DEFAULT_RECIPES),
        **opts,
    )
    return ForgeTask(
        spec=spec, data={"example": name, "test_fraction": 0.25}, recipes=DEFAULT_RECIPES
    )


_TASK_KEYS = {
    "name",
    "target_accuracy",
    "tolerance",
    "expected_inferences",
    "zone",
    "recipes",
    "epochs",
    "batch_size",
    "lr",
    "seed",
    "serving_batch_size",
    "serving_threads",
    "serving_runtimes",
    "training_threads",
    "measure_budget_s",
    "search_budget_co2e_g",
}
_TOP_KEYS = {"task", "data", "model", "recipe", "pretrained"}


def _recipe_list(raw: Any, defaults: Mapping[str, Any]) -> tuple[RecipeSpec, ...]:
    if raw is None:
        return DEFAULT_RECIPES
    if not isinstance(raw, list) or not raw:
        raise ConfigError(
            "task table: `recipes` must be a non-empty list of recipe names or tables."
        )
    out: list[RecipeSpec] = []
    for item in raw:
        if isinstance(item, str):
            out.append(RecipeSpec(item, dict(defaults.get(item, {}))))
        elif isinstance(item, dict) and isinstance(item.get("recipe"), str):
            opts = dict(defaults.get(item["recipe"], {}))
            opts.update({k: v for k, v in item.items() if k != "recipe"})
            out.append(RecipeSpec(item["recipe"], opts))
        else:
            raise ConfigError(
                f'task table: `recipes` entry {item!r}: use a name ("distill") or a table '
                '({ recipe = "prune", amount = 0.5 }).'
            )
    if out[0].recipe != "baseline":
        out.insert(0, RecipeSpec("baseline", dict(defaults.get("baseline", {}))))
    return tuple(out)


def load_task(
    path: Path, *, zone: str | None = None, expected_inferences: int | None = None
) -> ForgeTask:
    """Parse a task TOML file; every bad key or value raises ConfigError naming it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"task file {str(path)!r} does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"task file {str(path)!r} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"task file {path.name}: unknown table(s) {unknown}; valid: {sorted(_TOP_KEYS)}."
        )
    task = dict(data.get("task", {}))
    bad = sorted(set(task) - _TASK_KEYS)
    if bad:
        raise ConfigError(
            f"task file {path.name}: unknown key(s) {bad} in the task table; valid: {sorted(_TASK_KEYS)}."
        )
    if "data" not in data:
        raise ConfigError(f"task file {path.name}: a data table ([data]) is required.")
    model = dict(data.get("model", {}))
    arch = str(model.pop("architecture", "mlp"))
    defaults = data.get("recipe", {})
    if not isinstance(defaults, dict):
        raise ConfigError(
            f"task file {path.name}: the recipe table must hold one table per recipe."
        )
    recipes = _recipe_list(task.pop("recipes", None), defaults)
    if zone is not None:
        task["zone"] = zone
    if expected_inferences is not None:
        task["expected_inferences"] = expected_inferences
    task.setdefault("name", path.stem)
    try:
        spec = TaskSpec(
            **task,
            recipes=tuple(r.recipe for r in recipes),
            architecture=arch,
            architecture_options=_tuples(model),
        )
    except TypeError as exc:
        raise ConfigError(f"task file {path.name}: {exc}") from None
    pretrained = data.get("pretrained")
    if pretrained is not None:
        if not isinstance(pretrained, dict):
            raise ConfigError(f"task file {path.name}: [pretrained] must be a table.")
        from greenforge.forge.pretrained import pretrained_spec

        # bad values (an unknown kind, a negative rank) fail now, not after the baseline trained
        pretrained_spec(pretrained)
    return ForgeTask(
        spec,
        dict(data["data"]),
        recipes,
        path.resolve().parent,
        dict(pretrained) if isinstance(pretrained, dict) else None,
    )


def _tuples(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def recipe_specs_from_names(names: Sequence[str]) -> tuple[RecipeSpec, ...]:
    return _recipe_list(list(names), {})
