"""Built-in grid providers, registered by name.

Each name maps to the module that implements it; the module (and its dependencies, such as
httpx for the live APIs) is imported only when that provider is first created, so starting a
tracker on the embedded data never pays for the HTTP stack. Importing a provider module
re-registers its real factory under the same name.
"""

from __future__ import annotations

import importlib

from greenforge.config import Settings
from greenforge.grid.provider import (
    IntensityProvider,
    ProviderFactory,
    register_provider,
    registered_factory,
)

BUILTIN: dict[str, str] = {
    "embedded": "embedded",
    "embedded-annual": "embedded",
    "files": "files",
    "electricitymaps": "electricitymaps",
    "watttime": "watttime",
    "uk-neso": "ukneso",
    "energidataservice": "energidata",
}


def _lazy(name: str, module: str) -> ProviderFactory:
    def factory(settings: Settings) -> IntensityProvider:
        importlib.import_module(f"greenforge.grid.providers.{module}")
        real = registered_factory(name)
        if real is factory:  # the module did not register this name: a packaging bug
            raise RuntimeError(f"grid provider module {module!r} does not register {name!r}")
        return real(settings)

    return factory


for _name, _module in BUILTIN.items():
    register_provider(_name, _lazy(_name, _module))
