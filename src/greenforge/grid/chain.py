"""The explicit fallback chain of grid providers (``settings.intensity_providers``).

:func:`intensity_for` asks each provider in order and returns the first answer. A fallback
happens only through that configured chain; when one happens, the result's ``source`` says so
(``embedded:profile-2021-2023:DE (fallback after electricitymaps: ProviderError: ...)``) and a
:class:`GridFallbackWarning` is issued (Python's warning filter shows it once per message).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

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
