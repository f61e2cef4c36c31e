"""Typed, versioned recipe configs: :class:`RecipeConfig` and its field checks.

Every recipe (and the option blocks of ``transfer``: pretrained, LoRA, compression) declares a
frozen dataclass deriving from :class:`RecipeConfig`. Fields are checked against their annotations
when the config is built (int, float, bool, str, ``Literal``, tuples, optionals, tables), so a bad
value raises ``ValueError``/``TypeError`` naming the config, the field and the value; configs
round-trip to JSON with ``to_dict``/``from_dict`` (a newer version or unknown key is a clear error).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar

_C = TypeVar("_C", bound="RecipeConfig")


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
