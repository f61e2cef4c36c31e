"""Pure accounting for the forge search: lifetime CO2e, the Pareto front and the choice.

Lifetime CO2e of a candidate (grams)::

    lifetime = train_lineage + search_share + expected_inferences / 1000 * inference_per_1k

- ``train_lineage``: measured training/conversion CO2e of the candidate *and its ancestors*
  (a pruned student also paid for its teacher).
- ``inference_per_1k``: measured energy per 1,000 predictions at the serving batch size x the
  deployment zone's mean intensity (x PUE).
- ``search_share``: the whole search's measured CO2e that is not already in the chosen model's
  lineage (the other candidates' training and conversion, the inference measurement) is
  charged to the **chosen** model; the other
  candidates carry none (their figure is what their recipe alone would cost). The ranking uses
  ``train_lineage + inference`` - the search share is the same sunk cost whichever model wins.

Decisions under uncertainty: each candidate's ranking figure carries a *measurement-spread*
interval ``[low, high]`` (the meter's per-core power bound is common to every candidate and left
out: it cannot change their order). When the interval of a qualifying candidate overlaps the
best one's, they are *within measurement noise*; among these contenders the choice is made by a
stated, deterministic tie-break (:data:`TIE_BREAK`): the fewest precision-weighted FLOPs, then
the smallest size on disk (values within :data:`TIE_TOLERANCE` of the smallest count as equal:
an ONNX file a few bytes larger than its safetensors twin is the same model), then the higher
test accuracy, then the lower central estimate, then the name.

The headline ratio ``baseline / chosen`` gets the interval
``[baseline_low / chosen_high, baseline_high / chosen_low]`` (:func:`ratio_interval`), again
from the measurement spread only.
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


TIE_TOLERANCE = 0.05
"""FLOPs or sizes within this relative difference count as equal in the tie-break."""
TIE_BREAK = (
    "fewer precision-weighted FLOPs, then smaller size on disk (each within 5 % counts as "
    "equal), then the higher test accuracy, then the lower central estimate"
)


@dataclasses.dataclass(frozen=True)
class Choice:
    """The chosen index (or ``None``), why, and the closest misses when nothing qualified."""

    index: int | None
    reason: str
    closest: tuple[int, ...] = ()
    contenders: tuple[int, ...] = ()
    """Qualifying candidates within measurement noise of the best (the chosen one first)."""
    within_noise: bool = False
    tie_break: str | None = None


def ratio_interval(
    base: float,
    base_low: float,
    base_high: float,
    chosen: float,
    chosen_low: float,
    chosen_high: float,
) -> tuple[float, float, float]:
    """``(base / chosen, low, high)``: the ratio and its interval from the two intervals
    (``base_low / chosen_high`` .. ``base_high / chosen_low``; ``inf`` where a divisor is 0)."""

    def div(a: float, b: float) -> float:
        return a / b if b > 0 else (float("inf") if a > 0 else float("nan"))

    return div(base, chosen), div(base_low, chosen_high), div(base_high, chosen_low)


def choose(
    names: Sequence[str],
    accuracy: Sequence[float],
    lifetime_g: Sequence[float],
    target: float,
    n_closest: int = 3,
    *,
    low_g: Sequence[float] | None = None,
    high_g: Sequence[float] | None = None,
    flops: Sequence[float] | None = None,
    size_bytes: Sequence[float] | None = None,
) -> Choice:
    """Least lifetime CO2e among candidates reaching ``target`` accuracy (ties: higher accuracy,
    then the name). With intervals (``low_g``/``high_g``), qualifying candidates whose interval
    overlaps the best one's are within noise, and :data:`TIE_BREAK` (``flops``, ``size_bytes``)
    chooses among them.

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
    ranked = sorted(ok.tolist(), key=lambda j: (life[j], -acc[j], names[j]))
    best_i = ranked[0]
    i = best_i
    contenders: list[int] = [best_i]
    tie: str | None = None
    if low_g is not None and high_g is not None:
        lo = np.asarray(low_g, dtype=np.float64)
        hi = np.asarray(high_g, dtype=np.float64)
        contenders = [j for j in ranked if lo[j] <= hi[best_i] and lo[best_i] <= hi[j]]
        if best_i not in contenders:  # a degenerate interval: the best always contends
            contenders.insert(0, best_i)
    if len(contenders) > 1:
        fl = np.zeros(len(names)) if flops is None else np.asarray(flops, dtype=np.float64)
        sz = np.zeros(len(names)) if size_bytes is None else np.asarray(size_bytes, np.float64)
        pool = list(contenders)
        for key in (fl, sz):
            least = min(float(key[j]) for j in pool)
            pool = [j for j in pool if key[j] <= least * (1.0 + TIE_TOLERANCE)]
        i = min(pool, key=lambda j: (-acc[j], life[j], names[j]))
        contenders = [i, *(j for j in contenders if j != i)]
        tie = TIE_BREAK
    head = (
        f"{names[i]!r} has the least lifetime CO2e (training lineage + expected inference: "
        f"{life[i]:.4g} g) of the {ok.size} candidate(s) reaching the target accuracy "
        f"{target:.4f} (its test accuracy: {acc[i]:.4f})"
    )
    others = [j for j in ranked if j != i]
    if tie is not None:
        rest = ", ".join(repr(names[j]) for j in contenders if j != i)
        head = (
            f"{names[i]!r} is chosen (training lineage + expected inference: {life[i]:.4g} g, "
            f"test accuracy {acc[i]:.4f}) among the {ok.size} candidate(s) reaching the target "
            f"accuracy {target:.4f}: it is within measurement noise of {rest} (overlapping "
            f"intervals; the lowest central estimate is {names[best_i]!r}'s, "
            f"{life[best_i]:.4g} g), so the tie-break decided: {tie}"
        )
        reason = head
    elif others:
        runner = min(others, key=lambda j: (life[j], names[j]))
        with np.errstate(over="ignore", divide="ignore"):
            ratio = float(life[runner] / life[i]) if life[i] > 0 else float("inf")
        reason = (
            f"{head}; the next best qualifying candidate, {names[runner]!r}, has "
            f"{ratio:.2f}x its lifetime CO2e"
        )
    else:
        reason = head
    return Choice(i, reason, (), tuple(contenders), tie is not None, tie)
