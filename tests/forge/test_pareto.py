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


candidates = st.lists(
    st.tuples(
        accs,
        st.floats(0.1, 1e3),  # central lifetime
        st.floats(0.0, 0.5),  # relative half-width
        st.floats(1.0, 1e6),  # FLOPs
        st.floats(1.0, 1e6),  # size
    ),
    min_size=1,
    max_size=12,
)


@given(candidates, st.floats(0.0, 1.0))
def test_a_choice_under_uncertainty_meets_the_target_and_is_a_contender(
    cands: list[tuple[float, float, float, float, float]], target: float
) -> None:
    names = [f"c{i}" for i in range(len(cands))]
    life = [c[1] for c in cands]
    low = [c[1] * (1 - c[2]) for c in cands]
    high = [c[1] * (1 + c[2]) for c in cands]

    choice = choose(
        names,
        [c[0] for c in cands],
        life,
        target,
        low_g=low,
        high_g=high,
        flops=[c[3] for c in cands],
        size_bytes=[c[4] for c in cands],
    )

    ok = [i for i, c in enumerate(cands) if c[0] >= target]
    if not ok:
        assert choice.index is None
        return
    assert choice.index in ok
    assert choice.contenders[0] == choice.index
    best = min(ok, key=lambda i: (life[i], -cands[i][0], names[i]))
    # every contender's interval overlaps the best one's; the others' do not
    for i in ok:
        overlaps = low[i] <= high[best] and low[best] <= high[i]
        assert (i in choice.contenders) == (overlaps or i == best)
    assert choice.within_noise == (len(choice.contenders) > 1)
    if not choice.within_noise:
        assert choice.index == best


@given(candidates, st.floats(0.0, 1.0), st.randoms())
def test_the_choice_does_not_depend_on_the_order_of_the_candidates(
    cands: list[tuple[float, float, float, float, float]], target: float, rnd: object
) -> None:
    import random

    assert isinstance(rnd, random.Random)
    names = [f"c{i}" for i in range(len(cands))]

    def pick(order: list[int]) -> str | None:
        c = [cands[i] for i in order]
        choice = choose(
            [names[i] for i in order],
            [x[0] for x in c],
            [x[1] for x in c],
            target,
            low_g=[x[1] * (1 - x[2]) for x in c],
            high_g=[x[1] * (1 + x[2]) for x in c],
            flops=[x[3] for x in c],
            size_bytes=[x[4] for x in c],
        )
        return None if choice.index is None else names[order[choice.index]]

    order = list(range(len(cands)))
    shuffled = order[:]
    rnd.shuffle(shuffled)
    assert pick(order) == pick(shuffled)


def test_within_noise_the_tie_break_prefers_fewer_flops_then_smaller_size() -> None:
    choice = choose(
        ["big", "small", "twin"],
        [0.95, 0.95, 0.95],
        [10.0, 10.5, 10.4],
        0.9,
        low_g=[9.0, 9.5, 9.4],
        high_g=[11.0, 11.5, 11.4],
        flops=[1000.0, 100.0, 100.0],
        size_bytes=[5000.0, 1000.0, 1020.0],  # 'twin' is within 5 % of 'small': equal size
    )

    assert choice.index == 2  # fewest FLOPs, equal size, lower central estimate
    assert choice.within_noise
    assert choice.tie_break is not None
    assert "within measurement noise" in choice.reason


@given(st.floats(1.0, 1e3), st.floats(0.0, 0.5), st.floats(1.0, 1e3), st.floats(0.0, 0.5))
def test_the_headline_ratio_lies_in_its_interval(b: float, bw: float, c: float, cw: float) -> None:
    from greenforge.forge.pareto import ratio_interval

    ratio, low, high = ratio_interval(b, b * (1 - bw), b * (1 + bw), c, c * (1 - cw), c * (1 + cw))

    assert low <= ratio * (1 + 1e-12)
    assert ratio <= high * (1 + 1e-12)


def test_within_noise_same_flops_and_size_the_more_accurate_model_wins() -> None:
    # two int8 twins of one student: same FLOPs and size, overlapping intervals; the one with
    # the lower central estimate is less accurate - the tie-break must not follow the noise
    choice = choose(
        ["static", "dynamic"],
        [0.9733, 0.9756],
        [1.00, 1.02],
        0.96,
        low_g=[0.95, 0.97],
        high_g=[1.05, 1.07],
        flops=[100.0, 100.0],
        size_bytes=[1000.0, 1010.0],
    )
    assert choice.index == 1
    assert choice.tie_break is not None
    assert "higher test accuracy" in choice.tie_break
