"""Pure accounting for the forge search: lifetime CO2e, the Pareto front and the choice.

Lifetime CO2e of a candidate (grams)::

    lifetime = train_lineage + search_share + expected_inferences / 1000 * inference_per_1k

- ``train_lineage``: measured training/conversion CO2e of the candidate *and its ancestors*
  (a pruned student also paid for its teacher).
- ``inference_per_1k``: measured energy per 1,000 predictions at the serving batch size x the
  deployment zone's mean intensity (x PUE).
- ``search_share``: the whole search's measured CO2e that is not already in the chosen model's
  lineage (the other candidates, the evaluations) is charged to the **chosen** model; the other
  candidates carry none (their figure is what their recipe alone would cost). The ranking uses
  ``train_lineage + inference`` - the search share is the same sunk cost whichever model wins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def lifetime_co2e_g(
    train_co2e_g: float,
    inference_co2e_g_per_1k: float,
    expected_inferences: float,
    search_share_co2e_g: float = 0.0,
) -> float:
    """Training (lineage) + search share + expected inferences x per-inference CO2e."""
    if expected_inferences < 0:
        raise ValueError(f"expected_inferences {expected_inferences!r} must be >= 0.")
    return (
        train_co2e_g + search_share_co2e_g + expected_inferences / 1000.0 * inference_co2e_g_per_1k
    )


def pareto_front(accuracy: npt.ArrayLike, cost: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Mask of candidates no other candidate dominates (higher-or-equal accuracy and
    lower-or-equal cost, strictly better in one)."""
    acc = np.asarray(accuracy, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    if acc.shape != c.shape:
        raise ValueError("accuracy and cost must have the same length.")
    ge_acc = acc[None, :] >= acc[:, None]
    le_cost = c[None, :] <= c[:, None]
    strictly = (acc[None, :] > acc[:, None]) | (c[None, :] < c[:, None])
    dominated: npt.NDArray[np.bool_] = np.any(ge_acc & le_cost & strictly, axis=1)
    return np.logical_not(dominated)


@dataclasses.dataclass(frozen=True)
class Choice:
    """The chosen index (or ``None``), why, and the closest misses when nothing qualified."""

    index: int | None
    reason: str
    closest: tuple[int, ...] = ()


def choose(
    names: Sequence[str],
    accuracy: Sequence[float],
    lifetime_g: Sequence[float],
    target: float,
    n_closest: int = 3,
) -> Choice:
    """Least lifetime CO2e among candidates reaching ``target`` accuracy (ties: higher accuracy).

    When none qualifies: ``index=None`` and the ``n_closest`` by accuracy.
    """
    acc = np.asarray(accuracy, dtype=np.float64)
    life = np.asarray(lifetime_g, dtype=np.float64)
    ok = np.flatnonzero(acc >= target)
    if ok.size == 0:
        order = np.argsort(-acc, kind="stable")[:n_closest]
        best = float(acc[order[0]]) if order.size else float("nan")
        return Choice(
            None,
            f"no candidate met the target accuracy {target:.4f}; the closest reached {best:.4f}",
            tuple(int(i) for i in order),
        )
    key = np.lexsort((-acc[ok], life[ok]))
    i = int(ok[key[0]])
    others = ok[ok != i]
    if others.size:
        runner = int(others[np.argmin(life[others])])
        with np.errstate(over="ignore", divide="ignore"):
            ratio = float(life[runner] / life[i]) if life[i] > 0 else float("inf")
        extra = (
            f"; the next best qualifying candidate, {names[runner]!r}, has "
            f"{ratio:.2f}x its lifetime CO2e"
        )
    else:
        extra = ""
    reason = (
        f"{names[i]!r} has the least lifetime CO2e (training lineage + expected inference: "
        f"{life[i]:.4g} g) of the "
        f"{ok.size} candidate(s) reaching the target accuracy {target:.4f} "
        f"(its test accuracy: {acc[i]:.4f}){extra}"
    )
    return Choice(i, reason)
