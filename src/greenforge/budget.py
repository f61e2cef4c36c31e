"""Budgets (CO2e and/or energy) and the Carbontracker-style prediction of a run's total.

Both are pure functions over numbers the tracker already has; the tracker calls them from its
sampling thread. A budget that is exceeded sets ``tracker.over_budget``, calls ``on_exceed``
once, and raises :class:`~greenforge.errors.BudgetExceededError` in the user's thread (at the
next window boundary, ``tracker.check_budget()`` or stop) only when ``raise_on_exceed=True``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from greenforge.errors import ConfigError
from greenforge.records import Prediction


@dataclasses.dataclass(frozen=True)
class BudgetStatus:
    """Why a budget tripped, with the figures that tripped it."""

    reason: str
    energy_j: float
    co2e_g: float | None
    predicted: bool
    """True when the *predicted* total (not the figure so far) went over."""


@dataclasses.dataclass(frozen=True)
class Budget:
    """A CO2e and/or energy limit for one run."""

    co2e_g: float | None = None
    energy_j: float | None = None
    on_exceed: Callable[[BudgetStatus], None] | None = None
    """Called once, from the sampling thread, when the budget is first exceeded."""
    raise_on_exceed: bool = False
    """Raise BudgetExceededError in the user's thread at the next window boundary."""
    use_prediction: bool = False
    """Also trip when the predicted total (after the first windows) exceeds the budget."""

    def __post_init__(self) -> None:
        if self.co2e_g is None and self.energy_j is None:
            raise ConfigError("a Budget needs co2e_g and/or energy_j (both are None).")
        for name in ("co2e_g", "energy_j"):
            value = getattr(self, name)
            # a bool is an int to Python, but Budget(co2e_g=True) is a mistake, not 1 g
            if value is not None and not (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value > 0
            ):
                raise ConfigError(
                    f"bad budget {name}={value!r}: use a finite number > 0 (a negative or zero "
                    "budget would stop every run at once)."
                )


def check_budget(
    budget: Budget,
    energy_j: float,
    co2e_g: float | None,
    prediction: Prediction | None = None,
) -> BudgetStatus | None:
    """The reason ``budget`` is exceeded by the figures so far (or the prediction), else None."""
    if budget.energy_j is not None and energy_j > budget.energy_j:
        return BudgetStatus(
            f"energy {energy_j:.6g} J exceeds the budget of {budget.energy_j:.6g} J",
            energy_j,
            co2e_g,
            False,
        )
    if budget.co2e_g is not None and co2e_g is not None and co2e_g > budget.co2e_g:
        return BudgetStatus(
            f"emissions {co2e_g:.6g} gCO2e exceed the budget of {budget.co2e_g:.6g} g",
            energy_j,
            co2e_g,
            False,
        )
    if budget.use_prediction and prediction is not None:
        if budget.energy_j is not None and prediction.energy_j > budget.energy_j:
            return BudgetStatus(
                f"predicted energy {prediction.energy_j:.6g} J (after {prediction.windows_seen} "
                f"of {prediction.windows_total} windows) exceeds the budget of "
                f"{budget.energy_j:.6g} J",
                energy_j,
                co2e_g,
                True,
            )
        if (
            budget.co2e_g is not None
            and prediction.co2e_g is not None
            and prediction.co2e_g > budget.co2e_g
        ):
            return BudgetStatus(
                f"predicted emissions {prediction.co2e_g:.6g} gCO2e (after "
                f"{prediction.windows_seen} of {prediction.windows_total} windows) exceed the "
                f"budget of {budget.co2e_g:.6g} g",
                energy_j,
                co2e_g,
                True,
            )
    return None


def predict_total(
    energies_j: Sequence[float],
    co2e_g: Sequence[float | None],
    durations_s: Sequence[float],
    windows_total: int,
) -> Prediction:
    """Project a run's total from its first windows: measured so far + mean x windows left.

    As Carbontracker does for epochs: the first ``k`` windows are measured, the remaining
    ``windows_total - k`` are assumed to cost the mean of those. The CO2e is ``None`` when a
    window's CO2e is unknown (no grid intensity yet).
    """
    seen = len(energies_j)
    if seen == 0:
        raise ConfigError("cannot predict a total before the first window has closed.")
    if len(co2e_g) != seen or len(durations_s) != seen:
        raise ConfigError("prediction inputs must have one value per window.")
    if windows_total < seen:
        raise ConfigError(
            f"windows_total={windows_total} is less than the {seen} windows already closed."
        )
    left = windows_total - seen

    def project(values: Sequence[float]) -> float:
        total = math.fsum(values)
        return total + total / seen * left

    return Prediction(
        windows_seen=seen,
        windows_total=windows_total,
        energy_j=project(energies_j),
        co2e_g=None if any(g is None for g in co2e_g) else project([g or 0.0 for g in co2e_g]),
        duration_s=project(durations_s),
    )
