"""The pure core of carbon-aware client selection: which clients, in which time slot.

Inputs are arrays, outputs indices; no Flower, no clock, no I/O (tested with Hypothesis).

Fairness floor (every client a minimum participation share ``m``): after every round ``r``
each client has taken part in at least ``floor(m * r)`` rounds. Each missing participation is
a unit job with a deadline (the first round ``r'`` with ``floor(m * r') > count``); the
selection forces this round the earliest-deadline clients whose units the later rounds could
not all fit (``max_h #deadlines<=r+h - k*h``), which is feasible whenever ``m * N <= k``
(``N`` clients, ``k`` per round) - the strategy checks that up front.

The other places go by forecast CO2e (forecast intensity of the client's zone in the slot x
its expected energy), under one of the fairness rules from FedZero (Wiesner et al., 2024):

- ``alpha``: alpha-fair penalty, score x ((count + 1) / (mean count + 1)) ** alpha;
- ``blocklist``: clients above ``blocklist_factor`` x their fair share so far wait;
- ``budget`` (default): a per-round carbon budget instead of "the k cleanest". The round may
  spend ``budget_share`` x the forecast CO2e of ``k`` average clients (what random picks cost
  in expectation), less what the floor forces; within it the selection maximises statistical
  utility (Oort, Lai et al., 2021: the client's examples x its last training loss, unknown =
  the largest known so new clients get explored) by a Lagrangian ranking
  ``u/mean(u) - lam * co2e/mean(co2e)``, ``lam`` raised until the picks fit. "The k cleanest"
  ranks by absolute CO2e, which favours clients with little data (less energy) in clean
  zones - the same few almost every round - and slows the model down on label-skewed data;
  the budget keeps the carbon saving by construction and spends it where the model learns;
- ``none``: carbon only (the floor still holds).

With ``slots > 1`` (a slack window) the round goes to the slot whose picks have the least
forecast CO2e (earliest on ties); under ``budget`` every slot gets the budget of slot 0 (now,
when random picks would run) and the round goes to the slot whose picks have the most utility
within it (least CO2e, then earliest, on ties): a cleaner hour buys more useful clients for
the same carbon instead of the same clients for less, which kept the slack arm as fast as
random on the label-skewed example while it still saves what the budget guarantees.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from greenforge.errors import ConfigError

RULES = ("budget", "alpha", "blocklist", "none")
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclasses.dataclass(frozen=True)
class Fairness:
    """Minimum participation share and the rule for the places the floor leaves free."""

    min_share: float = 0.1
    rule: str = "budget"
    alpha: float = 1.0
    blocklist_factor: float = 1.5
    budget_share: float = 0.55

    def __post_init__(self) -> None:
        if not (isinstance(self.min_share, (int, float)) and 0.0 <= self.min_share <= 1.0):
            raise ConfigError(
                f"bad min_share {self.min_share!r}: a share of rounds between 0 and 1 "
                "(e.g. 0.1 = every client in at least 10 % of the rounds)."
            )
        if self.rule not in RULES:
            raise ConfigError(f"bad fairness rule {self.rule!r}: use one of {', '.join(RULES)}.")
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ConfigError(f"bad alpha {self.alpha!r}: use a value >= 0 (0 = carbon only).")
        if not (math.isfinite(self.blocklist_factor) and self.blocklist_factor >= 1):
            raise ConfigError(
                f"bad blocklist_factor {self.blocklist_factor!r}: use a value >= 1 (x fair share)."
            )

        if not (math.isfinite(self.budget_share) and 0 < self.budget_share <= 1):
            raise ConfigError(
                f"bad budget_share {self.budget_share!r}: a share in (0, 1] of the forecast "
                "CO2e of k average clients (e.g. 0.55 = aim at 45 % less than random picks)."
            )

    def floor(self, rounds: int) -> int:
        """Participations every client has after ``rounds`` rounds, at least."""
        return math.floor(self.min_share * rounds + 1e-9)


@dataclasses.dataclass(frozen=True)
class Choice:
    """A round's decision: the slot index, the picked clients and which the floor forced."""

    slot: int
    picks: tuple[int, ...]
    forced: tuple[int, ...]
    expected_g: float


def forced_clients(counts: Sequence[int], round_no: int, k: int, min_share: float) -> list[int]:
    """Clients that must take part in round ``round_no`` (1-based) to keep the floor.

    Every missing participation within the look-ahead window is a unit job due at the first
    round ``r'`` with ``floor(m * r') > done``; this round takes the earliest-deadline units
    that later rounds (``k`` places each) could not all fit.
    """
    if min_share <= 0:
        return []
    n = len(counts)
    window = min(2.0 / min_share, 10.0 * n + 10.0)  # rounds ahead that can crowd this one
    units: list[tuple[int, int]] = []  # (deadline, client)
    for i, c in enumerate(counts):
        done = int(c)
        while (t := (done + 1) / min_share) <= round_no + window:
            units.append((max(math.ceil(t - 1e-9), round_no), i))
            done += 1
    if not units:
        return []
    units.sort()
    need = 0
    for pos, (d, _) in enumerate(units):
        if pos + 1 < len(units) and units[pos + 1][0] == d:
            continue  # count all units due by d at once
        need = max(need, pos + 1 - k * (d - round_no))
    need = min(need, k, n)
    out: list[int] = []
    for _, i in units:  # earliest deadline first, each client once
        if len(out) >= need:
            break
        if i not in out:
            out.append(i)
    return out


def choose(
    expected_g: npt.ArrayLike,
    counts: Sequence[int],
    round_no: int,
    k: int,
    fairness: Fairness,
    eligible: Sequence[bool] | None = None,
    utility: Sequence[float] | None = None,
) -> Choice:
    """Picks ``k`` clients and a slot for round ``round_no`` (1-based).

    ``expected_g[s, i]``: forecast CO2e (g) of client ``i`` in slot ``s`` (finite, >= 0);
    ``counts[i]``: rounds client ``i`` has taken part in so far; ``utility[i]``: its
    statistical utility for the ``budget`` rule (NaN = not known yet).
    """
    g = np.atleast_2d(np.asarray(expected_g, dtype=np.float64))
    n_slots, n = g.shape
    if len(counts) != n:
        raise ConfigError(f"{len(counts)} participation counts for {n} clients.")
    if not np.all(np.isfinite(g)) or np.any(g < 0):
        raise ConfigError("forecast CO2e must be finite and >= 0 for every client and slot.")
    if not 1 <= k <= n:
        raise ConfigError(f"bad clients per round {k!r}: use 1..{n} (the clients known).")
    ok = np.ones(n, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    c = np.asarray(counts, dtype=np.float64)
    forced = [i for i in forced_clients(counts, round_no, k, fairness.min_share) if ok[i]]
    rest = [i for i in range(n) if ok[i] and i not in forced]
    mean_c = float(c.mean()) if n else 0.0
    blocked = np.zeros(n, dtype=bool)
    if fairness.rule == "blocklist" and round_no > 1:
        fair = (round_no - 1) * k / n
        blocked = c > max(1.0, fairness.blocklist_factor * fair)
    penalty = np.ones(n)
    if fairness.rule == "alpha" and fairness.alpha > 0:
        penalty = ((c + 1.0) / (mean_c + 1.0)) ** fairness.alpha
    free = max(0, min(k - len(forced), len(rest)))
    u = _utilities(utility, n)
    # the budget: what k average clients would emit now (slot 0, where random picks run)
    budget = fairness.budget_share * k * float(g[0, ok].mean()) if ok.any() else 0.0
    best: Choice | None = None
    best_u = -math.inf
    for s in range(n_slots):
        score = g[s] * penalty
        if fairness.rule == "budget":
            cap = budget - float(g[s, forced].sum())
            order = _within_budget(rest, g[s], u, free, cap)
        else:
            order = sorted(rest, key=lambda i: (bool(blocked[i]), float(score[i]), i))
        picks = tuple(forced) + tuple(order[:free])
        total = float(g[s, list(picks)].sum()) if picks else 0.0
        # budget: within the same budget, the slot whose picks learn most (ties: least CO2e);
        # the other rules: the slot with least CO2e
        useful = float(u[list(order[:free])].sum()) if fairness.rule == "budget" else 0.0
        if (
            best is None
            or useful > best_u * (1.0 + 1e-9) + 1e-300
            or (useful >= best_u * (1.0 - 1e-9) and total < best.expected_g * (1.0 - 1e-12))
        ):
            best = Choice(s, picks, tuple(forced), total)
            best_u = useful
    if best is None:
        raise ConfigError("no time slot to choose from: give at least one slot.")
    return best


def _utilities(utility: Sequence[float] | None, n: int) -> FloatArray:
    """Statistical utility per client; unknown (NaN) = the largest known (explore them)."""
    u = np.ones(n) if utility is None else np.asarray(utility, dtype=np.float64).copy()
    known = np.isfinite(u) & (u >= 0)
    u[~known] = float(u[known].max()) if known.any() else 1.0
    return u


def _within_budget(
    rest: list[int], g: FloatArray, u: FloatArray, free: int, cap: float
) -> list[int]:
    """The ``free`` clients of ``rest`` with the most utility whose CO2e fits ``cap``.

    Lagrangian relaxation of the knapsack: rank by ``u/mean(u) - lam * g/mean(g)`` and raise
    ``lam`` (bisection) until the top ``free`` fit the cap; with no cap that fits, the
    ``free`` cleanest.
    """
    if free <= 0 or not rest:
        return []
    idx = np.asarray(rest)
    un = u[idx] / max(float(u[idx].mean()), 1e-300)
    gn = g[idx] / max(float(g[idx].mean()), 1e-300)
    capn = cap / max(float(g[idx].mean()), 1e-300)

    def top(lam: float) -> npt.NDArray[np.intp]:
        return np.lexsort((idx, gn, -(un - lam * gn)))[:free]

    if float(gn[top(0.0)].sum()) <= capn:
        return [int(i) for i in idx[top(0.0)]]
    lo, hi = 0.0, 1.0
    while float(gn[top(hi)].sum()) > capn and hi < 1e6:
        lo, hi = hi, hi * 4
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if float(gn[top(mid)].sum()) > capn else (lo, mid)
    return [int(i) for i in idx[top(hi)]]


def random_choice(rng: np.random.Generator, n: int, k: int) -> tuple[int, ...]:
    """``k`` distinct clients uniformly at random (the FedAvg baseline)."""
    if not 1 <= k <= n:
        raise ConfigError(f"bad clients per round {k!r}: use 1..{n} (the clients known).")
    return tuple(int(i) for i in rng.choice(n, size=k, replace=False))
