"""Zeus's cost and the choice of a setting under a time constraint (pure, no I/O).

Zeus (You, Chung and Chowdhury, "Zeus: Understanding and Optimizing GPU Energy Consumption of
DNN Training", NSDI 2023, eq. 2) trades energy against time with one knob ``eta`` in [0, 1]::

    cost = eta * E + (1 - eta) * MaxPower * T

``E`` is the energy to solution (J), ``T`` the time to solution (s) and ``MaxPower`` (W) turns
time into joules: the most the tuned resource can draw (the GPU's largest power limit; here
for CPUs, the full-load power of the cores the process may use). ``eta = 1`` minimises energy
only, ``eta = 0`` time only. A time constraint (``max_time_s``, or ``max_slowdown`` x the
fastest setting's time) removes settings before the minimum is taken.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from greenforge.errors import ConfigError, InfeasibleError


def check_eta(eta: float) -> float:
    """Returns ``eta`` as a float, or raises :class:`ConfigError` unless 0 <= eta <= 1."""
    if isinstance(eta, bool) or not isinstance(eta, int | float) or not 0.0 <= eta <= 1.0:
        raise ConfigError(
            f"eta {eta!r} must be a number in [0, 1]: 1 minimises energy only, 0 time only, "
            "0.5 weighs both (Zeus's cost eta*E + (1-eta)*MaxPower*T)."
        )
    return float(eta)


def zeus_cost(energy_j: float, time_s: float, eta: float, max_power_w: float) -> float:
    """Returns Zeus's cost ``eta*E + (1-eta)*MaxPower*T`` in J."""
    return eta * energy_j + (1.0 - eta) * max_power_w * time_s


@dataclasses.dataclass(frozen=True)
class TimeConstraint:
    """Which settings are allowed: time to solution at most ``max_time_s`` (s) and at most
    ``max_slowdown`` x the fastest setting's (either may be ``None``: no such limit)."""

    max_time_s: float | None = None
    max_slowdown: float | None = None

    def __post_init__(self) -> None:
        if self.max_time_s is not None and not (
            math.isfinite(self.max_time_s) and self.max_time_s > 0
        ):
            raise ConfigError(f"max_time_s {self.max_time_s!r} must be a time > 0 s.")
        if self.max_slowdown is not None and not (
            math.isfinite(self.max_slowdown) and self.max_slowdown >= 1.0
        ):
            raise ConfigError(
                f"max_slowdown {self.max_slowdown!r} must be >= 1 (1.2 allows settings up to "
                "20 % slower than the fastest)."
            )

    def limit_s(self, fastest_s: float) -> float:
        """Returns the longest allowed time (s) given the fastest setting's time."""
        limit = math.inf
        if self.max_time_s is not None:
            limit = self.max_time_s
        if self.max_slowdown is not None:
            limit = min(limit, self.max_slowdown * fastest_s)
        return limit

    def describe(self) -> str:
        """Returns the constraint in words."""
        parts = []
        if self.max_time_s is not None:
            parts.append(f"time <= {self.max_time_s:g} s")
        if self.max_slowdown is not None:
            parts.append(f"time <= {self.max_slowdown:g} x the fastest")
        return " and ".join(parts) or "none"


@dataclasses.dataclass(frozen=True)
class Choice:
    """Which option minimises the cost: its index, the cost of each option (J), which were
    feasible, and the time limit applied (s, ``inf`` without one)."""

    index: int
    costs_j: tuple[float, ...]
    feasible: tuple[bool, ...]
    limit_s: float


def choose(
    energy_j: Sequence[float],
    time_s: Sequence[float],
    *,
    eta: float,
    max_power_w: float,
    constraint: TimeConstraint = TimeConstraint(),
    labels: Sequence[str] | None = None,
) -> Choice:
    """Returns the option with the least Zeus cost among those meeting ``constraint`` (ties:
    the lower energy, then the first). Raises :class:`InfeasibleError` when none meets it."""
    eta = check_eta(eta)
    if len(energy_j) != len(time_s) or not energy_j:
        raise ConfigError("choose needs one time per energy, and at least one option.")
    if not (math.isfinite(max_power_w) and max_power_w > 0):
        raise ConfigError(f"max_power_w {max_power_w!r} must be a power > 0 W.")
    costs = tuple(zeus_cost(e, t, eta, max_power_w) for e, t in zip(energy_j, time_s, strict=True))
    limit = constraint.limit_s(min(time_s))
    feasible = tuple(t <= limit for t in time_s)
    ok = [i for i, f in enumerate(feasible) if f]
    if not ok:
        names = list(labels) if labels is not None else [str(i) for i in range(len(time_s))]
        fastest = min(range(len(time_s)), key=time_s.__getitem__)
        raise InfeasibleError(
            f"no setting meets the time constraint ({constraint.describe()}): the fastest, "
            f"{names[fastest]}, takes {time_s[fastest]:.4g} s. Relax max_time_s, or add faster "
            "settings (more threads, larger batches)."
        )
    best = min(ok, key=lambda i: (costs[i], energy_j[i], i))
    return Choice(best, costs, feasible, limit)


__all__ = ["Choice", "TimeConstraint", "check_eta", "choose", "zeus_cost"]
