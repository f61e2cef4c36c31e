"""The explicit fallback chain of grid providers (``settings.intensity_providers``).

:func:`intensity_for` asks each provider in order and returns the first answer. A fallback
happens only through that configured chain; when one happens, the result's ``source`` says so
(``embedded:profile-2021-2023:DE (fallback after electricitymaps: ProviderError: ...)``) and a
:class:`GridFallbackWarning` is issued (Python's warning filter shows it once per message).

Network budget: every live provider draws the time it spends on the network (requests and the
waits between retries) from one :class:`NetworkBudget` per :class:`Settings` object
(:func:`network_budget`), of ``settings.http_budget_s`` seconds. A command loads its settings
once, so two slow APIs together cost it at most that long: once the budget is spent, the live
providers answer from their cache or fail at once, and the chain falls back (visibly, in the
result's ``source``) to the next provider, such as the embedded data.
"""

from __future__ import annotations

import threading
import time
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence

from greenforge.config import Settings
from greenforge.errors import (
    ConfigError,
    DataError,
    GreenForgeError,
    ProviderError,
    UnknownNameError,
    UnknownZoneError,
)
from greenforge.grid.provider import IntensityProvider, create_provider
from greenforge.grid.series import IntensitySeries


class GridFallbackWarning(UserWarning):
    """A grid provider failed and the next one in the configured chain answered."""


class NetworkBudget:
    """Seconds of network time that one command may spend on grid APIs (thread-safe).

    A request takes its deadline from the budget before it starts (:meth:`take`), so requests
    made at the same time (say from a tracker's background thread) cannot overspend it
    together, and gives back what it did not use (:meth:`refund`); a wait between retries is
    spent (:meth:`spend`).
    """

    def __init__(self, total_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not total_s >= 0:
            raise ConfigError(f"bad network budget {total_s!r}: must be >= 0 seconds.")
        self.total_s = float(total_s)
        self.clock = clock
        self._spent_s = 0.0
        self._lock = threading.Lock()

    @property
    def spent_s(self) -> float:
        """Seconds spent so far."""
        return self._spent_s

    def remaining_s(self) -> float:
        """Seconds left (never negative)."""
        with self._lock:
            return max(self.total_s - self._spent_s, 0.0)

    def spend(self, seconds: float) -> None:
        """Count ``seconds`` (>= 0) of network time against the budget."""
        with self._lock:
            self._spent_s += max(float(seconds), 0.0)

    def take(self, seconds: float) -> float:
        """Reserve up to ``seconds`` (what is left, at most); returns the seconds granted."""
        with self._lock:
            granted = min(max(float(seconds), 0.0), max(self.total_s - self._spent_s, 0.0))
            self._spent_s += granted
            return granted

    def refund(self, seconds: float) -> None:
        """Give back reserved seconds that were not used."""
        with self._lock:
            self._spent_s = max(self._spent_s - max(float(seconds), 0.0), 0.0)

    def __repr__(self) -> str:
        return f"NetworkBudget(spent {self._spent_s:.2f} s of {self.total_s:g} s)"


_BUDGETS: dict[int, NetworkBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def network_budget(settings: Settings) -> NetworkBudget:
    """The :class:`NetworkBudget` of this :class:`Settings` object (``http_budget_s`` seconds).

    One per object, shared by every provider created from it; a fresh object (a new command,
    or ``dataclasses.replace(settings)`` in a long-lived process) starts a fresh budget.
    """
    key = id(settings)
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(key)
        if budget is None:
            budget = NetworkBudget(settings.http_budget_s)
            _BUDGETS[key] = budget
            weakref.finalize(settings, _BUDGETS.pop, key, None)
        return budget


_FALLBACK_ERRORS = (ProviderError, UnknownZoneError, DataError)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(exc).__name__}: {text}"


def intensity_for(
    settings: Settings,
    zone: str,
    start_s: float,
    end_s: float,
    *,
    forecast: bool = False,
    providers: Mapping[str, IntensityProvider] | None = None,
) -> IntensitySeries:
    """Intensity of ``zone`` over ``[start_s, end_s)`` from the first provider of
    ``settings.intensity_providers`` that answers.

    ``forecast=True`` asks ``forecast()`` instead of ``history()``. ``providers`` injects ready
    instances by name (tests, or callers holding an HTTP client); the rest are created with
    :func:`~greenforge.grid.provider.create_provider`. Raises the zone error when no provider
    knows the zone, else a :class:`ProviderError` listing every failure.
    """
    if end_s < start_s:
        raise ConfigError(
            f"bad time range: end {end_s!r} precedes start {start_s!r} (unix seconds)."
        )
    chain: Sequence[str] = settings.intensity_providers
    if not chain:
        raise ConfigError("intensity_providers is empty: name at least one (e.g. 'embedded').")
    failures: list[tuple[str, GreenForgeError]] = []
    for name in chain:
        try:
            provider = (
                providers[name]
                if providers is not None and name in providers
                else create_provider(name, settings)
            )
            series = (
                provider.forecast(zone, start_s, end_s)
                if forecast
                else provider.history(zone, start_s, end_s)
            )
        except UnknownNameError:
            raise
        except _FALLBACK_ERRORS as exc:
            failures.append((name, exc))
            continue
        except ConfigError as exc:
            # a provider that is not configured (e.g. no API key) is skipped like a failure
            failures.append((name, exc))
            continue
        except OSError as exc:  # an I/O failure a provider did not wrap
            failures.append((name, ProviderError(f"{type(exc).__name__}: {exc}")))
            continue
        if failures:
            after = "; ".join(f"{n}: {_short(e)}" for n, e in failures)
            tried = ", ".join(repr(n) for n, _ in failures)
            warnings.warn(
                f"grid provider(s) {tried} failed for zone {zone!r}; using {name!r}. "
                "The result's source names the error.",
                GridFallbackWarning,
                stacklevel=2,
            )
            series = series.replace(source=f"{series.source} (fallback after {after})")
        return series
    if all(isinstance(e, UnknownZoneError) for _, e in failures):
        raise failures[0][1]
    # The final error keeps each provider's whole message: it ends with what to do (set a key,
    # go online once, fix the zone), which a shortened text would cut off.
    detail = "; ".join(f"{n}: {type(e).__name__}: {e}" for n, e in failures)
    raise ProviderError(
        f"no grid provider answered for zone {zone!r} ({detail}). Check the zone and the "
        "provider settings, or add 'embedded' to intensity_providers as an offline fallback."
    )
