"""Batch size across recurring training runs, in the manner of Zeus's batch-size optimizer.

A job that is trained again and again (nightly retraining, hyper-parameter sweeps) can learn its
batch size from its own history: each run reports its energy and time *to the target* (from
``greenforge.track``, or a GPU's NVML counter) and whether it reached the target. Zeus (You,
Chung and Chowdhury, NSDI 2023, section 4) treats this as a multi-armed bandit:

1. **exploration** (pruning): the default batch size first, then each other batch size in order
   of distance from it; a batch size that fails to reach the target (diverged, or stopped early
   because its cost passed the threshold) is pruned and never tried again;
2. **exploitation**: Gaussian Thompson sampling - for each batch size, draw a cost from a normal
   distribution around its observed mean cost (spread: the observed standard deviation over
   sqrt(n), or :data:`PRIOR_REL_SD` of the mean with one observation) and train with the
   cheapest draw;
3. **early stop**: :meth:`BatchSizeOptimizer.cost_threshold_j` (``beta`` x the best mean cost so
   far) is the cost at which a run is hopeless and should stop.

Costs are Zeus's ``eta*E + (1-eta)*MaxPower*T``. Observations live in a small JSON file
(written atomically), so the history survives between runs and processes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from greenforge.errors import ConfigError, DataError
from greenforge.tune.cost import check_eta, zeus_cost

PRIOR_REL_SD = 0.1
"""With one observation, the cost's spread is taken as this share of it."""
SCHEMA = 1


@dataclasses.dataclass(frozen=True)
class Observation:
    """One finished run: its batch size, energy (J) and time (s) to the target, whether it got
    there, and its Zeus cost (J)."""

    batch_size: int
    energy_j: float
    time_s: float
    reached: bool
    cost_j: float


class BatchSizeOptimizer:
    """Chooses the batch size of the next run of a recurring job (see the module docstring)."""

    def __init__(
        self,
        path: Path | str,
        batch_sizes: Sequence[int],
        default_batch_size: int,
        *,
        max_power_w: float,
        eta: float = 0.5,
        beta: float = 2.0,
        seed: int | None = None,
    ) -> None:
        sizes = sorted(dict.fromkeys(batch_sizes))
        if not sizes or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in sizes):
            raise ConfigError(f"batch_sizes {list(batch_sizes)!r} must be integers >= 1.")
        if default_batch_size not in sizes:
            raise ConfigError(
                f"default batch size {default_batch_size} is not among {sizes}: add it."
            )
        if not (math.isfinite(max_power_w) and max_power_w > 0):
            raise ConfigError(f"max_power_w {max_power_w!r} must be a power > 0 W.")
        if not (math.isfinite(beta) and beta > 1):
            raise ConfigError(f"beta {beta!r} must be > 1 (2 stops runs at twice the best cost).")
        self.path = Path(path)
        self.batch_sizes = sizes
        self.default = default_batch_size
        self.eta = check_eta(eta)
        self.max_power_w = float(max_power_w)
        self.beta = float(beta)
        self._rng = random.Random(seed)
        self.observations: list[Observation] = self._load()

    # -- state ---------------------------------------------------------------------------------

    def _load(self) -> list[Observation]:
        if not self.path.exists():
            return []
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            return [Observation(**o) for o in doc["observations"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{self.path}: not a batch-size history ({exc}); move it aside to start afresh."
            ) from None

    def _save(self) -> None:
        from greenforge.forge.output import write_text_atomic

        doc = {"schema": SCHEMA, "observations": [dataclasses.asdict(o) for o in self.observations]}
        write_text_atomic(self.path, json.dumps(doc, indent=1))

    @property
    def pruned(self) -> set[int]:
        """Returns the batch sizes that failed to reach the target (never tried again)."""
        return {o.batch_size for o in self.observations if not o.reached}

    def _costs(self) -> dict[int, list[float]]:
        out: dict[int, list[float]] = {}
        for o in self.observations:
            if o.reached and o.batch_size in self.batch_sizes:
                out.setdefault(o.batch_size, []).append(o.cost_j)
        return {b: c for b, c in out.items() if b not in self.pruned}

    # -- decisions -----------------------------------------------------------------------------

    def exploration_order(self) -> list[int]:
        """Returns the batch sizes in the order they are first tried: the default, then by
        distance from it (smaller first on a tie)."""
        i = self.batch_sizes.index(self.default)
        return sorted(self.batch_sizes, key=lambda b: (abs(self.batch_sizes.index(b) - i), b))

    def next_batch_size(self) -> int:
        """Returns the batch size to train the next run with."""
        tried = {o.batch_size for o in self.observations}
        for b in self.exploration_order():
            if b not in tried:
                return b
        costs = self._costs()
        if not costs:
            raise ConfigError(
                f"every batch size in {self.batch_sizes} failed to reach the target; add "
                f"others, or remove {self.path} to start afresh."
            )
        draws = {}
        for b, c in costs.items():
            mean = sum(c) / len(c)
            if len(c) > 1:
                sd = math.sqrt(sum((x - mean) ** 2 for x in c) / (len(c) - 1)) / math.sqrt(len(c))
            else:
                sd = PRIOR_REL_SD * mean
            draws[b] = self._rng.gauss(mean, max(sd, 1e-12))
        return min(draws, key=lambda b: (draws[b], b))

    def cost_threshold_j(self) -> float | None:
        """Returns the cost (J) above which a run should stop early: ``beta`` x the best mean
        cost so far (``None`` before any run reached the target)."""
        costs = self._costs()
        if not costs:
            return None
        return self.beta * min(sum(c) / len(c) for c in costs.values())

    def cost_j(self, energy_j: float, time_s: float) -> float:
        """Returns Zeus's cost (J) of a run's energy (J) and time (s)."""
        return zeus_cost(energy_j, time_s, self.eta, self.max_power_w)

    def report(self, batch_size: int, energy_j: float, time_s: float, reached: bool) -> None:
        """Records a finished run (``reached``: it met the target) and saves the history."""
        if batch_size not in self.batch_sizes:
            raise ConfigError(f"batch size {batch_size} is not among {self.batch_sizes}.")
        if not (
            math.isfinite(energy_j) and energy_j >= 0 and math.isfinite(time_s) and time_s >= 0
        ):
            raise ConfigError(
                f"energy_j {energy_j!r} and time_s {time_s!r} must be finite and >= 0."
            )
        cost = self.cost_j(energy_j, time_s)
        self.observations.append(Observation(batch_size, energy_j, time_s, bool(reached), cost))
        self._save()

    def best(self) -> int | None:
        """Returns the batch size with the least mean cost so far (``None`` before any)."""
        costs = self._costs()
        if not costs:
            return None
        return min(costs, key=lambda b: (sum(costs[b]) / len(costs[b]), b))

    def summary(self) -> dict[str, Any]:
        """Returns the history per batch size: runs, mean cost (J), pruned."""
        costs = self._costs()
        return {
            str(b): {
                "runs": sum(o.batch_size == b for o in self.observations),
                "mean_cost_j": sum(costs[b]) / len(costs[b]) if b in costs else None,
                "pruned": b in self.pruned,
            }
            for b in self.batch_sizes
        }


__all__ = ["PRIOR_REL_SD", "BatchSizeOptimizer", "Observation"]
