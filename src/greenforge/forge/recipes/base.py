"""The recipe contract of ``greenforge forge``: recipes, their configs, candidates and the context.

A *recipe* turns the task (held by a :class:`ForgeContext`) into one or more :class:`Candidate`
models: ``baseline`` trains the fp32 reference from scratch, ``distill`` trains a smaller student
from a teacher, ``prune`` removes channels and fine-tunes, ``quantize`` converts to int8, and so
on. Recipes are registered by name (:func:`register_recipe`) and created with
:func:`create_recipe`; an unknown name raises :class:`~greenforge.errors.UnknownNameError` listing
the valid ones.

Every recipe has a typed, versioned config dataclass (:class:`RecipeConfig`) that round-trips to
JSON (``to_dict``/``from_dict``); bad values raise ``ValueError``/``TypeError`` naming the field.

Training energy is *measured*: recipes train through :meth:`ForgeContext.train`, which runs the
loop inside :func:`greenforge.forge.measure.measure` and records every measurement on the context
so the whole search's cost is reported.

Contract used by other recipe families (e.g. ``transfer``)::

    class MyConfig(RecipeConfig):          # a frozen dataclass
        VERSION: ClassVar[int] = 1
        epochs: int | None = None

    class MyRecipe:
        name = "my-recipe"
        config_type = MyConfig
        def __init__(self, config: MyConfig) -> None: self.config = config
        def run(self, ctx: ForgeContext) -> list[Candidate]: ...

    register_recipe("my-recipe", MyRecipe)     # factory(config) -> Recipe
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from greenforge.config import Settings
from greenforge.errors import ConfigError, DataError, UnknownNameError

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset

    from greenforge.forge.measure import Measurement

Precision = Literal["fp32", "bf16-autocast"]
"""Training precision: plain fp32, or mixed precision with ``torch.autocast`` in bfloat16."""
PRECISIONS: tuple[str, ...] = ("fp32", "bf16-autocast")

_C = TypeVar("_C", bound="RecipeConfig")


# --------------------------------------------------------------------------- configs


def _check_value(owner: str, name: str, hint: Any, value: Any) -> Any:
    """Validate (and lightly coerce) one config field against its annotation."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors: list[str] = []
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _check_value(owner, name, arm, value)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise TypeError(f"{owner}.{name}: {value!r} does not match {hint}. {' '.join(errors)}")
    if origin is Literal:
        if value not in args:
            raise ValueError(
                f"{owner}.{name}: {value!r} is not one of {', '.join(repr(a) for a in args)}."
            )
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{owner}.{name}: expected a list/tuple, got {value!r}.")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_value(owner, name, args[0], v) for v in value)
        if len(args) != len(value):
            raise TypeError(f"{owner}.{name}: expected {len(args)} items, got {value!r}.")
        return tuple(_check_value(owner, name, a, v) for a, v in zip(args, value, strict=True))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise TypeError(f"{owner}.{name}: expected a table/dict, got {value!r}.")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{owner}.{name}: expected true/false, got {value!r}.")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{owner}.{name}: expected an integer, got {value!r}.")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{owner}.{name}: expected a number, got {value!r}.")
        if not math.isfinite(float(value)):
            raise ValueError(f"{owner}.{name}: expected a finite number, got {value!r}.")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"{owner}.{name}: expected a string, got {value!r}.")
        return value
    if hint is Any:
        return value
    return value


@dataclasses.dataclass(frozen=True)
class RecipeConfig:
    """Base of every recipe config: a frozen dataclass, versioned, round-tripping to JSON.

    Subclasses declare typed fields (int, float, bool, str, Literal, tuples, optionals) and may
    override :meth:`validate` for range checks (raise ``ValueError`` naming the field).
    """

    VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        owner = type(self).__name__
        for f in dataclasses.fields(self):
            value = _check_value(owner, f.name, hints[f.name], getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        self.validate()

    def validate(self) -> None:
        """Range checks; raise ``ValueError`` naming the field and the allowed range."""

    def _check_count(self, field: str = "epochs") -> None:
        """A count such as epochs (``None``: the default) must be >= 1."""
        value = getattr(self, field)
        if value is not None and value < 1:
            raise ValueError(f"{type(self).__name__}.{field} {value!r} must be >= 1.")

    def _check_margin(self, field: str = "margin") -> None:
        """A safety margin over the accuracy target must be in [0, 0.5)."""
        value = getattr(self, field)
        if not 0.0 <= value < 0.5:
            raise ValueError(f"{type(self).__name__}.{field} {value!r} must be in [0, 0.5).")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with the config type and version."""
        out: dict[str, Any] = {"type": type(self).__name__, "version": self.VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls: type[_C], data: Mapping[str, Any]) -> _C:
        """Inverse of :meth:`to_dict`; unknown keys or a newer version raise a clear error."""
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__}: expected a table/dict, got {data!r}.")
        body = dict(data)
        kind = body.pop("type", cls.__name__)
        version = body.pop("version", cls.VERSION)
        if kind != cls.__name__:
            raise ValueError(f"config type {kind!r} is not {cls.__name__}.")
        if not isinstance(version, int) or version > cls.VERSION:
            raise ValueError(
                f"{cls.__name__} version {version!r} is newer than this GreenForge supports "
                f"({cls.VERSION}); upgrade greenforge."
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(body) - names)
        if unknown:
            raise ValueError(
                f"{cls.__name__}: unknown option(s) {', '.join(map(repr, unknown))}. "
                f"Valid options: {', '.join(sorted(names)) or '(none)'}."
            )
        return cls(**body)

    @classmethod
    def from_json(cls: type[_C], text: str) -> _C:
        return cls.from_dict(json.loads(text))


# --------------------------------------------------------------------------- task and candidates


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What the user asked for (from ``--example`` or the task TOML)."""

    name: str
    target_accuracy: float | None = None
    """Absolute accuracy target in [0, 1]; or ``None`` and use ``tolerance``."""
    tolerance: float | None = None
    """Target = baseline test accuracy minus this (in [0, 1], e.g. 0.01 = one point)."""
    expected_inferences: int = 10_000_000
    """Predictions the model will serve in its lifetime."""
    zone: str | None = None
    """Deployment grid zone (inference CO2e); ``None`` = the settings' zone."""
    recipes: tuple[str, ...] = ()
    """Recipe names to run, in order (``baseline`` always runs first)."""
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    serving_batch_size: int = 64
    """Batch size the deployment serves at; its per-prediction energy drives lifetime CO2e."""
    architecture: str = "mlp"
    """Baseline architecture from the zoo (``mlp``, ``cnn``, ``transformer``) or ``pkg.mod:fn``."""
    architecture_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.target_accuracy is None and self.tolerance is None:
            raise ConfigError(
                f"task {self.name!r}: set target_accuracy (e.g. 0.95) or tolerance "
                "(baseline minus, e.g. 0.01)."
            )
        if self.target_accuracy is not None and not 0.0 < self.target_accuracy <= 1.0:
            raise ConfigError(
                f"task {self.name!r}: target_accuracy {self.target_accuracy!r} must be in (0, 1] "
                "(a fraction, e.g. 0.95 for 95 %)."
            )
        if self.tolerance is not None and not 0.0 <= self.tolerance < 1.0:
            raise ConfigError(
                f"task {self.name!r}: tolerance {self.tolerance!r} must be in [0, 1) "
                "(a fraction, e.g. 0.01 for one point)."
            )
        for field, value in (
            ("expected_inferences", self.expected_inferences),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("serving_batch_size", self.serving_batch_size),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < (0 if field == "expected_inferences" else 1)
            ):
                raise ConfigError(
                    f"task {self.name!r}: {field} must be a positive integer, got {value!r}."
                )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"task {self.name!r}: lr must be > 0, got {self.lr!r}.")


@dataclasses.dataclass
class Candidate:
    """One model the search produced, with how it was made and what making it cost.

    ``model`` is a ``torch.nn.Module`` (called on a float32 batch, returns logits) or any callable
    with the same behaviour (e.g. :class:`greenforge.forge.onnx.OnnxModel` for ONNX Runtime int8).
    ``train`` is the *own* measured training cost (``None`` when nothing was trained, e.g. a
    post-training quantization); the lineage (``parent`` chain) adds the ancestors' costs.
    """

    name: str
    recipe: str
    config: Mapping[str, Any]
    model: Any
    train: Measurement | None = None
    parent: str | None = None
    precision: str = "fp32"
    """Numeric format at inference: ``fp32``, ``bf16``, ``int8-dynamic``, ``int8-static`` ..."""
    runtime: str = "torch"
    """``torch`` or ``onnxruntime``."""
    notes: tuple[str, ...] = ()
    """Honest remarks shown in the report (e.g. "unstructured sparsity: dense compute unchanged")."""
    epochs_run: int | None = None
    val_accuracy: float | None = None
    flops_weight: float = 1.0
    """Relative cost of one MAC at this precision (fp32 = 1.0, bf16 = 0.5, int8 = 0.25)."""

    @property
    def train_co2e_g(self) -> float:
        return 0.0 if self.train is None else self.train.co2e_g


@dataclasses.dataclass(frozen=True)
class TrainOutcome:
    """What :meth:`ForgeContext.train` did and what it cost."""

    measurement: Measurement
    epochs_run: int
    val_accuracy: float
    reached_target: bool
    stopped_early: bool


# --------------------------------------------------------------------------- context


@dataclasses.dataclass
class ForgeContext:
    """Everything a recipe needs: data, task, settings, the baseline, and measured training.

    ``train``/``val``/``test`` are ``torch.utils.data.Dataset`` objects yielding
    ``(x: float32 tensor of input_shape, y: int64 class index)``; for array data they are
    ``TensorDataset`` instances.
    """

    train_data: Dataset[Any]
    val_data: Dataset[Any]
    test_data: Dataset[Any]
    num_classes: int
    input_shape: tuple[int, ...]
    task: TaskSpec
    settings: Settings
    device: str = "cpu"
    pretrained: Mapping[str, Any] | None = None
    baseline: Candidate | None = None
    measure_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Passed to :func:`greenforge.forge.measure.measure` (e.g. injected meters in tests)."""
    measurements: list[tuple[str, Measurement]] = dataclasses.field(default_factory=list)
    """Every measurement taken during the search, labelled - the search's total cost."""
    candidates: dict[str, Candidate] = dataclasses.field(default_factory=dict)
    """Candidates built so far by name (recipes may compose, e.g. prune the distilled student)."""
    progress: Callable[[str, int, int], None] | None = None
    """Optional ``progress(label, done, total)`` callback (rich progress bars in the CLI)."""
    scratch_dir: Path | None = None
    """Where recipes may write intermediate files (ONNX exports); a temp dir by default."""

    @property
    def seed(self) -> int:
        return self.task.seed

    @property
    def epochs(self) -> int:
        return self.task.epochs

    @property
    def batch_size(self) -> int:
        return self.task.batch_size

    @property
    def lr(self) -> float:
        return self.task.lr

    @property
    def target_accuracy(self) -> float | None:
        """The absolute target; with a tolerance, known once the baseline is evaluated."""
        if self.task.target_accuracy is not None:
            return self.task.target_accuracy
        if math.isnan(self.baseline_test_accuracy):
            return None
        assert self.task.tolerance is not None
        return max(self.baseline_test_accuracy - self.task.tolerance, 0.0)

    baseline_test_accuracy: float = float("nan")
    """Set by the search after evaluating the baseline."""

    def val_target(self, margin: float = 0.0) -> float | None:
        """The target expressed on the *validation* split, for early stopping and selection.

        An absolute target is used as is; a tolerance target is the baseline's validation
        accuracy minus the tolerance (like compared with like: the test split stays unseen).
        ``margin`` is added for safety. ``None`` while the baseline is not trained yet.
        """
        if self.task.target_accuracy is not None:
            base = self.task.target_accuracy
        elif self.baseline is not None and self.baseline.val_accuracy is not None:
            assert self.task.tolerance is not None
            base = self.baseline.val_accuracy - self.task.tolerance
        else:
            return None
        return min(max(base + margin, 0.0), 1.0)

    # ------------------------------------------------------------------ helpers

    def scratch(self, name: str) -> Path:
        """A fresh directory for one recipe's intermediate files."""
        import re
        import tempfile

        if self.scratch_dir is None:
            self.scratch_dir = Path(tempfile.mkdtemp(prefix="greenforge-forge-"))
        safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", name)
        path = self.scratch_dir / safe
        n = 1
        while path.exists():
            n += 1
            path = self.scratch_dir / f"{safe}-{n}"
        path.mkdir(parents=True)
        return path

    def measure(self, label: str, fn: Callable[[], Any]) -> tuple[Any, Measurement]:
        """Run ``fn`` measured; record the measurement as part of the search's cost."""
        from greenforge.forge.measure import measure

        result, m = measure(fn, self.settings, name=label, **dict(self.measure_kwargs))
        self.measurements.append((label, m))
        return result, m

    @contextlib.contextmanager
    def seeded(self, offset: int = 0) -> Iterator[None]:
        """Seed torch's RNG inside the block only (global RNG state is restored after)."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + offset)
            yield

    def build_model(self, architecture: str | None = None, **options: Any) -> nn.Module:
        """A fresh model from the zoo (or the task's factory) for this task's input and classes."""
        from greenforge.forge.models import build_model

        arch = architecture or self.task.architecture
        opts = dict(self.task.architecture_options) if architecture is None else {}
        opts.update(options)
        with self.seeded():
            return build_model(arch, self.input_shape, self.num_classes, **opts)

    def loader(
        self,
        split: Literal["train", "val", "test"],
        shuffle: bool = False,
        batch_size: int | None = None,
    ) -> Any:
        """A DataLoader over one split (seeded shuffling)."""
        import torch
        from torch.utils.data import DataLoader

        data = {"train": self.train_data, "val": self.val_data, "test": self.test_data}[split]
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            data,
            batch_size=batch_size or self.batch_size,
            shuffle=shuffle,
            generator=gen if shuffle else None,
        )

    def accuracy(self, model: Any, split: Literal["train", "val", "test"] = "val") -> float:
        """Top-1 accuracy of ``model`` on a split (eval mode, no grad)."""
        from greenforge.forge.training import accuracy

        return accuracy(model, self.loader(split, batch_size=512))

    def train(
        self,
        model: nn.Module,
        *,
        name: str,
        epochs: int | None = None,
        lr: float | None = None,
        teacher: Any | None = None,
        temperature: float = 4.0,
        alpha: float = 0.7,
        precision: Precision = "fp32",
        stop_at_accuracy: float | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        parameters: Sequence[torch.nn.Parameter] | None = None,
    ) -> TrainOutcome:
        """Train ``model`` in place, measured; returns the measured cost and what happened.

        - ``teacher``: distil from it with the temperature-scaled KD loss
          ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE``.
        - ``precision="bf16-autocast"``: mixed precision with ``torch.autocast`` (bfloat16).
        - ``stop_at_accuracy``: stop after the first epoch whose validation accuracy reaches it
          (energy-to-accuracy early stopping).
        - ``parameters``: train only these (e.g. a new head); default all with ``requires_grad``.
        """
        from greenforge.forge.training import TrainSettings, fit

        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}.")
        cfg = TrainSettings(
            epochs=self.epochs if epochs is None else epochs,
            lr=self.lr if lr is None else lr,
            temperature=temperature,
            alpha=alpha,
            precision=precision,
            stop_at_accuracy=stop_at_accuracy,
            seed=self.seed,
        )

        def run() -> tuple[int, float, bool]:
            return fit(
                model,
                self.loader("train", shuffle=True),
                self.loader("val", batch_size=512),
                cfg,
                teacher=teacher,
                loss_fn=loss_fn,
                parameters=parameters,
                progress=None
                if self.progress is None
                else (
                    lambda done, total: self.progress(name, done, total)  # type: ignore[misc]
                ),
            )

        (epochs_run, val_acc, stopped), m = self.measure(f"train:{name}", run)
        reached = stop_at_accuracy is not None and val_acc >= stop_at_accuracy
        return TrainOutcome(m, epochs_run, val_acc, reached, stopped)

    def add(self, candidate: Candidate) -> Candidate:
        """Record a candidate so later recipes can build on it."""
        if candidate.name in self.candidates:
            raise ConfigError(
                f"two candidates are named {candidate.name!r}; give the recipe a distinct name."
            )
        self.candidates[candidate.name] = candidate
        return candidate

    def lineage(self, name: str) -> list[Candidate]:
        """The candidate and its ancestors (parent chain, nearest first)."""
        out: list[Candidate] = []
        seen: set[str] = set()
        current: str | None = name
        while current is not None and current not in seen:
            seen.add(current)
            cand = self.candidates.get(current)
            if cand is None:
                break
            out.append(cand)
            current = cand.parent
        return out

    def require_candidate(self, name: str) -> Candidate:
        """A previously built candidate, or a clear error naming the ones that exist."""
        if name not in self.candidates:
            raise ConfigError(
                f"recipe input {name!r} has not been built. Built so far: "
                f"{', '.join(self.candidates) or '(none)'}; list it earlier in `recipes`."
            )
        return self.candidates[name]


# --------------------------------------------------------------------------- recipes


@runtime_checkable
class Recipe(Protocol):
    """A way to make candidates: a name, a typed config, and ``run(ctx) -> list[Candidate]``."""

    @property
    def name(self) -> str:
        """The registered recipe name."""
        ...

    @property
    def config(self) -> RecipeConfig:
        """The recipe's typed config."""
        ...

    def run(self, ctx: ForgeContext) -> list[Candidate]:
        """Build candidate models (training through ``ctx.train`` so energy is measured)."""
        ...


RecipeFactory = Callable[..., Recipe]
"""``factory(config: RecipeConfig) -> Recipe``; the factory has a ``config_type`` attribute."""

_RECIPES: dict[str, RecipeFactory] = {}
_BUILTIN_LOADED = False


def register_recipe(name: str, factory: RecipeFactory) -> None:
    """Register a recipe factory (a class with ``config_type``) under ``name``."""
    if not hasattr(factory, "config_type"):
        raise TypeError(f"recipe factory for {name!r} needs a `config_type` attribute.")
    _RECIPES[name] = factory


def _load_builtin() -> None:
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    import importlib

    for module in ("baseline", "distill", "prune", "quantize", "precision", "transfer"):
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"greenforge.forge.recipes.{module}")


def recipe_names() -> list[str]:
    """Names of every registered recipe."""
    _load_builtin()
    return sorted(_RECIPES)


def recipe_factory(name: str) -> RecipeFactory:
    _load_builtin()
    if name not in _RECIPES:
        raise UnknownNameError("recipe", name, _RECIPES)
    return _RECIPES[name]


def create_recipe(name: str, **config: Any) -> Recipe:
    """Create a registered recipe with its config built from keyword options.

    Unknown names raise :class:`UnknownNameError` listing the valid ones; bad options raise
    ``ValueError``/``TypeError`` naming the option.
    """
    factory = recipe_factory(name)
    config_type: type[RecipeConfig] = factory.config_type  # type: ignore[attr-defined]
    return factory(config_type.from_dict(config))


def check_finite_data(x: Any, what: str) -> None:
    """Raise DataError when a tensor/array has NaN or infinite values."""
    import numpy as np

    arr = np.asarray(x)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise DataError(
            f"{what} has {bad} NaN/infinite value(s). Clean or impute them before forging."
        )
