"""Specification of the pure accounting: lifetime CO2e, the Pareto front and the choice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.forge.pareto import choose, lifetime_co2e_g, pareto_front

finite = st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False)
accs = st.floats(0.0, 1.0, allow_nan=False)


def test_lifetime_adds_training_search_share_and_inference() -> None:
    # 10 M predictions at 0.002 g per 1,000 = 20 g
    assert lifetime_co2e_g(5.0, 0.002, 10_000_000, search_share_co2e_g=1.5) == pytest.approx(26.5)


def test_negative_inference_volume_is_refused() -> None:
    with pytest.raises(ValueError, match="expected_inferences"):
        lifetime_co2e_g(1.0, 1.0, -1)


@given(train=finite, per_1k=finite, n=st.integers(0, 10**9), extra=st.integers(1, 10**6))
def test_lifetime_grows_with_the_inference_volume(
    train: float, per_1k: float, n: int, extra: int
) -> None:
    assert lifetime_co2e_g(train, per_1k, n + extra) >= lifetime_co2e_g(train, per_1k, n)


@given(st.lists(st.tuples(accs, finite), min_size=1, max_size=30))
def test_the_front_is_exactly_the_non_dominated_set(points: list[tuple[float, float]]) -> None:
    acc = np.array([p[0] for p in points])
    cost = np.array([p[1] for p in points])

    mask = pareto_front(acc, cost)

    assert mask.any()
    for i in range(len(points)):
        dominated = any(
            acc[j] >= acc[i] and cost[j] <= cost[i] and (acc[j] > acc[i] or cost[j] < cost[i])
            for j in range(len(points))
        )
        assert mask[i] == (not dominated)


@given(st.lists(st.tuples(accs, finite), min_size=1, max_size=30), accs)
def test_the_choice_is_the_cheapest_candidate_meeting_the_target(
    points: list[tuple[float, float]], target: float
) -> None:
    names = [f"c{i}" for i in range(len(points))]
    acc = [p[0] for p in points]
    life = [p[1] for p in points]

    choice = choose(names, acc, life, target)

    ok = [i for i, a in enumerate(acc) if a >= target]
    if not ok:
        assert choice.index is None
        assert "no candidate met the target" in choice.reason
        assert len(choice.closest) == min(3, len(points))
        assert acc[choice.closest[0]] == max(acc)
    else:
        assert choice.index is not None
        assert acc[choice.index] >= target
        assert life[choice.index] == min(life[i] for i in ok)
        assert pareto_front(acc, life)[choice.index]


def test_ties_on_co2e_prefer_the_more_accurate_model() -> None:
    choice = choose(["a", "b"], [0.91, 0.95], [1.0, 1.0], 0.9)

    assert choice.index == 1
    assert "'b'" in choice.reason


@pytest.mark.parametrize(
    ("factor", "loss", "text"),
    [
        (4.1, 0.89, "4.1x less lifetime CO2e, 0.89 accuracy points lost"),
        # the chosen model carries the whole search: it can cost more than the baseline alone
        (1 / 1.25, 0.0, "1.2x MORE lifetime CO2e, 0.00 accuracy points lost"),
        (2.0, -0.5, "2.0x less lifetime CO2e, 0.50 accuracy points gained"),
    ],
)
def test_the_comparison_with_the_baseline_never_calls_more_less(
    factor: float, loss: float, text: str
) -> None:
    from greenforge.forge.output import versus_baseline

    comp = {"lifetime_reduction_factor": factor, "accuracy_loss_points": loss}
    assert versus_baseline(comp) == text
