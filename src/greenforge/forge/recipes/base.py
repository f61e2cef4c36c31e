"""The recipe contract of ``greenforge forge``: the :class:`Recipe` protocol and its registry.

A *recipe* turns the task (held by a :class:`~greenforge.forge.context.ForgeContext`) into one or
more :class:`~greenforge.forge.candidate.Candidate` models: ``baseline`` trains the fp32 reference
from scratch, ``distill`` trains a smaller student from a teacher, ``prune`` removes channels and
fine-tunes, ``quantize`` converts to int8, and so on. Recipes are registered by name
(:func:`register_recipe`) and created with :func:`create_recipe`; an unknown name raises
:class:`~greenforge.errors.UnknownNameError` listing the valid ones.

Every recipe has a typed, versioned config dataclass
(:class:`~greenforge.forge.recipes.config.RecipeConfig`) that round-trips to JSON.

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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from greenforge.errors import UnknownNameError

if TYPE_CHECKING:
    from greenforge.forge.candidate import Candidate
    from greenforge.forge.context import ForgeContext
    from greenforge.forge.recipes.config import RecipeConfig


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
