"""Classes built on first use, for modules whose classes subclass an optional library's.

A module that defines, say, a Lightning ``Callback`` subclass cannot import Lightning at import
time (``import greenforge`` stays light, and a missing extra must raise only when the class is
used). It lists a builder per class name and delegates its module ``__getattr__`` (PEP 562) to
:class:`LazyClasses`, which builds each class once and caches it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


class LazyClasses:
    """Returns each named class from its builder, built once (unknown names: AttributeError)."""

    def __init__(self, module: str, builders: Mapping[str, Callable[[], type]]) -> None:
        self._module = module
        self._builders = dict(builders)
        self._cache: dict[str, type] = {}

    def __call__(self, name: str) -> type:
        builder = self._builders.get(name)
        if builder is None:
            raise AttributeError(f"module {self._module!r} has no attribute {name!r}")
        if name not in self._cache:
            self._cache[name] = builder()
        return self._cache[name]
