"""One exception tree for GreenForge.

::

    GreenForgeError                      exit code 1
    ├── ConfigError (ValueError)         exit code 2   bad setting / argument value
    │   └── UnknownZoneError             exit code 2   zone not known; lists close matches
    ├── UnknownNameError (KeyError)      exit code 2   registry lookup (meter, provider, recipe)
    ├── MissingExtraError (ImportError)  exit code 3   optional dependency not installed
    ├── MeterError                       exit code 4   a meter could not be read
    ├── DataError (ValueError)           exit code 5   malformed input file / data set
    ├── ProviderError                    exit code 6   a grid API failed (never contains keys)
    ├── StoreError                       exit code 7   the run store failed
    ├── InfeasibleError (ValueError)     exit code 8   a plan cannot meet its deadline
    └── BudgetExceededError              exit code 9   a run went over its CO2e/energy budget

Messages say what was wrong, with which value, and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable


class GreenForgeError(Exception):
    """Root of every error GreenForge raises on purpose."""

    exit_code: int = 1


class ConfigError(GreenForgeError, ValueError):
    """A setting or argument has a bad value."""

    exit_code = 2


class UnknownNameError(GreenForgeError, KeyError):
    """A name looked up in a registry is not registered."""

    exit_code = 2

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        import difflib  # (only to word an error)

        close = difflib.get_close_matches(name, self.valid, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        msg = f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(self.valid)}."
        super().__init__(msg)

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownZoneError(ConfigError):
    """A grid zone is not known to the data source."""

    def __init__(self, zone: str, known: Iterable[str], source: str = "") -> None:
        self.zone = zone
        known_list = sorted(set(known))
        upper = {k.upper(): k for k in known_list}
        import difflib  # (only to word an error)

        close = [upper[c] for c in difflib.get_close_matches(zone.upper(), list(upper), n=5)]
        prefix = [k for k in known_list if k.upper().startswith(zone.upper()[:2])][:8]
        suggestions = close or prefix
        where = f" in {source}" if source else ""
        hint = (
            f" Close matches: {', '.join(suggestions)}."
            if suggestions
            else " Run `greenforge grid zones` to list the known zones."
        )
        self.suggestions = suggestions
        super().__init__(f"unknown grid zone {zone!r}{where}.{hint}")


class MissingExtraError(GreenForgeError, ImportError):
    """An optional dependency is missing."""

    exit_code = 3

    def __init__(self, module: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"{module!r} is not installed{what}. Install it with: pip install 'greenforge[{extra}]'"
        )


class MeterError(GreenForgeError):
    """An energy meter could not be read."""

    exit_code = 4


class DataError(GreenForgeError, ValueError):
    """An input file or data set is malformed."""

    exit_code = 5


class ProviderError(GreenForgeError):
    """A grid-intensity provider failed. Messages never contain API keys."""

    exit_code = 6


class StoreError(GreenForgeError):
    """The run store could not be read or written."""

    exit_code = 7


class InfeasibleError(GreenForgeError, ValueError):
    """A job cannot be planned before its deadline."""

    exit_code = 8


class BudgetExceededError(GreenForgeError):
    """A run exceeded its CO2e or energy budget (raised only when the user asked to stop)."""

    exit_code = 9
