"""When a round happens: a simulated clock (round r at hour h(r) of the intensity series) or
the wall clock (deployment).

The carbon-aware strategy asks the clock for the start of the next round's slot, may defer the
round to a later slot (``wait_until``), and calls ``round_done`` after the round. The simulated
clock jumps (a simulation of a year of hourly rounds runs in minutes); the wall clock sleeps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from greenforge.errors import ConfigError

HOUR_S = 3600.0


class RoundClock(Protocol):
    """Time source of a federated run."""

    @property
    def simulated(self) -> bool:
        """True when rounds happen at simulated hours (intensity looked up there)."""

    def now_s(self) -> float:
        """Unix seconds now (simulated or real)."""

    def wait_until(self, t_s: float) -> None:
        """Return at ``t_s`` (the simulated clock jumps, the wall clock sleeps)."""

    def round_done(self) -> None:
        """Called after each round."""


class SimulatedClock:
    """Round ``r`` (1-based) starts at ``start_s + (r - 1) * round_s`` plus any deferral.

    ``round_s`` is how much simulated time a round takes (default one hour, the step of the
    embedded intensity profiles).
    """

    simulated = True

    def __init__(self, start_s: float, round_s: float = HOUR_S) -> None:
        if not (math.isfinite(start_s) and math.isfinite(round_s) and round_s > 0):
            raise ConfigError(
                f"bad simulated clock start {start_s!r} / round length {round_s!r} s: use a "
                "unix time and a round length > 0 s (e.g. 3600)."
            )
        self.start_s = float(start_s)
        self.round_s = float(round_s)
        self._now_s = float(start_s)

    def now_s(self) -> float:
        return self._now_s

    def wait_until(self, t_s: float) -> None:
        self._now_s = max(self._now_s, float(t_s))

    def round_done(self) -> None:
        self._now_s += self.round_s


class WallClock:
    """Real time; ``wait_until`` sleeps (``sleep`` and ``time`` are injectable for tests)."""

    simulated = False

    def __init__(
        self,
        time_fn: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._time = time_fn
        self._sleep = sleep

    def now_s(self) -> float:
        return self._time()

    def wait_until(self, t_s: float) -> None:
        while (left := t_s - self._time()) > 0:
            self._sleep(min(left, 60.0))

    def round_done(self) -> None:
        return None
