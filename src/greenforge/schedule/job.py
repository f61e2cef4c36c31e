"""``Job``: what the planner needs to know about a piece of work to shift it.

Times are unix seconds (UTC), durations seconds, energy joules, power watts. A job's energy is
``power_w x running time`` (plus ``checkpoint_overhead_j`` per interruption). When the power is
unknown the planner assumes 1 kW (:data:`DEFAULT_POWER_W`): the *choice* of slots does not
depend on the power, but every CO2e figure scales with it, and the plan says so.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

from greenforge.errors import ConfigError, InfeasibleError
from greenforge.timeutil import utc_iso_seconds

DEFAULT_POWER_W = 1000.0
"""Power assumed when a job gives neither ``power_w`` nor ``energy_j`` (1 kW-equivalent)."""


def _finite(name: str, value: float) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"job {name} must be a number of seconds/joules/watts, got {value!r}."
        ) from None
    if not math.isfinite(out):
        raise ConfigError(f"job {name} must be finite, got {value!r}.")
    return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class Job:
    """A job to place in time (and space) before its deadline.

    ``zones`` lists the grid zones the job may run in; the first is its home zone, where
    "run now" is measured. Interruptible jobs may be split into chunks of at least
    ``min_chunk_s``; every resumption costs ``checkpoint_overhead_s`` of extra running time and
    ``checkpoint_overhead_j`` of extra energy, and resuming in another zone adds
    ``migration_cost_s`` / ``migration_cost_j`` on top.
    """

    duration_s: float
    earliest_start_s: float
    deadline_s: float
    zones: tuple[str, ...]
    interruptible: bool = False
    checkpoint_overhead_s: float = 0.0
    checkpoint_overhead_j: float = 0.0
    min_chunk_s: float = 0.0
    migration_cost_s: float = 0.0
    migration_cost_j: float = 0.0
    power_w: float | None = None
    energy_j: float | None = None
    power_profile_w: tuple[float, ...] | None = None
    """Power along the job's progress: value ``i`` holds for work time
    ``[i * profile_step_s, (i + 1) * profile_step_s)`` (e.g. data loading, then training)."""
    profile_step_s: float = 3600.0
    name: str = "job"

    def __post_init__(self) -> None:
        for field in (
            "duration_s",
            "earliest_start_s",
            "deadline_s",
            "checkpoint_overhead_s",
            "checkpoint_overhead_j",
            "min_chunk_s",
            "migration_cost_s",
            "migration_cost_j",
        ):
            object.__setattr__(self, field, _finite(field, getattr(self, field)))
        if self.duration_s <= 0:
            raise ConfigError(
                f"job duration must be > 0 s, got {self.duration_s!r} s. "
                "Give the expected running time, e.g. duration_s=4 * 3600."
            )
        for field in (
            "checkpoint_overhead_s",
            "checkpoint_overhead_j",
            "min_chunk_s",
            "migration_cost_s",
            "migration_cost_j",
        ):
            if getattr(self, field) < 0:
                raise ConfigError(f"job {field} must be >= 0, got {getattr(self, field)!r}.")
        if self.min_chunk_s > self.duration_s:
            raise ConfigError(
                f"job min_chunk_s ({self.min_chunk_s:g} s) is longer than the job "
                f"({self.duration_s:g} s); use at most the duration."
            )
        if self.power_w is not None:
            power = _finite("power_w", self.power_w)
            if power <= 0:
                raise ConfigError(f"job power_w must be > 0 W, got {self.power_w!r}.")
            object.__setattr__(self, "power_w", power)
        if self.energy_j is not None:
            energy = _finite("energy_j", self.energy_j)
            if energy <= 0:
                raise ConfigError(f"job energy_j must be > 0 J, got {self.energy_j!r}.")
            if self.power_w is not None:
                raise ConfigError("give either power_w or energy_j for a job, not both.")
            object.__setattr__(self, "energy_j", energy)
        if self.power_profile_w is not None:
            self._check_profile()
        zones = tuple(self.zones) if not isinstance(self.zones, str) else (self.zones,)
        if not zones or any(not isinstance(z, str) or not z.strip() for z in zones):
            raise ConfigError(
                f"job zones must be a non-empty tuple of zone names, got {self.zones!r}; "
                "e.g. zones=('GB',)."
            )
        if len(set(zones)) != len(zones):
            raise ConfigError(f"job zones repeat a zone: {zones!r}.")
        object.__setattr__(self, "zones", zones)
        if self.deadline_s <= self.earliest_start_s:
            raise InfeasibleError(
                f"job deadline ({_iso(self.deadline_s)}) is not after its earliest start "
                f"({_iso(self.earliest_start_s)}); move the deadline later."
            )
        slack = self.deadline_s - self.earliest_start_s
        if slack < self.duration_s:
            raise InfeasibleError(
                f"job needs {_hours(self.duration_s)} but only {_hours(slack)} lie between its "
                f"earliest start ({_iso(self.earliest_start_s)}) and deadline "
                f"({_iso(self.deadline_s)}); move the deadline to at least "
                f"{_iso(self.earliest_start_s + self.duration_s)}."
            )

    def _check_profile(self) -> None:
        if self.power_w is not None or self.energy_j is not None:
            raise ConfigError("give either power_profile_w or power_w / energy_j, not both.")
        step = _finite("profile_step_s", self.profile_step_s)
        if step <= 0:
            raise ConfigError(f"job profile_step_s must be > 0 s, got {self.profile_step_s!r}.")
        profile = tuple(_finite("power_profile_w", p) for p in self.power_profile_w or ())
        if not profile or any(p < 0 for p in profile) or not any(p > 0 for p in profile):
            raise ConfigError(
                f"job power_profile_w must be a non-empty list of powers >= 0 W (not all 0), "
                f"got {self.power_profile_w!r}."
            )
        if len(profile) * step < self.duration_s - 1e-6:
            raise ConfigError(
                f"job power_profile_w covers {len(profile) * step:g} s of work but the job "
                f"lasts {self.duration_s:g} s; give {math.ceil(self.duration_s / step)} values "
                f"of {step:g} s each."
            )
        object.__setattr__(self, "power_profile_w", profile)
        object.__setattr__(self, "profile_step_s", step)

    def power_segments(self) -> tuple[list[float], list[float]]:
        """``(bounds_s, power_w)``: power ``power_w[j]`` over work time
        ``[bounds_s[j], bounds_s[j + 1])``, covering ``[0, duration_s]``."""
        if self.power_profile_w is None:
            return [0.0, self.duration_s], [self.effective_power_w]
        bounds = [0.0]
        powers: list[float] = []
        for i, p in enumerate(self.power_profile_w):
            start = i * self.profile_step_s
            if start >= self.duration_s - 1e-9:
                break
            bounds.append(min((i + 1) * self.profile_step_s, self.duration_s))
            powers.append(p)
        return bounds, powers

    @property
    def window_s(self) -> float:
        """Time between earliest start and deadline."""
        return self.deadline_s - self.earliest_start_s

    @property
    def slack_s(self) -> float:
        """How much the job can be delayed: window minus duration."""
        return self.window_s - self.duration_s

    @property
    def effective_power_w(self) -> float:
        """Mean power: ``power_w``, else ``energy_j / duration_s``, else the mean of the power
        profile over the duration, else 1 kW."""
        if self.power_w is not None:
            return self.power_w
        if self.power_profile_w is not None:
            bounds, powers = self.power_segments()
            widths = [b - a for a, b in itertools.pairwise(bounds)]
            return sum(p * w for p, w in zip(powers, widths, strict=True)) / self.duration_s
        if self.energy_j is not None:
            return self.energy_j / self.duration_s
        return DEFAULT_POWER_W

    @property
    def power_assumed(self) -> bool:
        """True when no power, energy or power profile was given (CO2e figures are per 1 kW)."""
        return self.power_w is None and self.energy_j is None and self.power_profile_w is None

    def check_not_past(self, now_s: float) -> Job:
        """Raise when the deadline has passed; move a past earliest start up to ``now_s``."""
        if self.deadline_s <= now_s:
            raise InfeasibleError(
                f"job deadline {_iso(self.deadline_s)} is in the past (now {_iso(now_s)}); "
                "give a future deadline, e.g. --deadline +24h."
            )
        if self.earliest_start_s >= now_s:
            return self
        return dataclasses.replace(self, earliest_start_s=now_s)


def _iso(t_s: float) -> str:
    """ISO UTC, or plain seconds for a time no calendar can show (a bad input's message)."""
    try:
        return utc_iso_seconds(t_s)
    except (OverflowError, OSError, ValueError):
        return f"{t_s:g} s"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.4g} h"
