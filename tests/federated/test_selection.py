"""Carbon-aware selection: the pure core's fairness floor (property-tested) and the strategy on
a real Flower round trip (fairness bound, carbon saving, slack, budget)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from flwr.serverapp.strategy import FedAvg
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.federated.apps import initial_arrays, make_app

from greenforge.errors import ConfigError
from greenforge.federated.clock import SimulatedClock
from greenforge.federated.local import InProcessGrid
from greenforge.federated.selection import Fairness, choose, forced_clients, random_choice
from greenforge.federated.strategy import CarbonAwareSelection, CarbonLedger

START_S = 1678060800.0  # 2023-03-06T00:00Z
CLEAN_DIRTY = ["CA-ON", "BR-CS", "GB", "DE", "IN-WE", "ZA", "AU-NSW", "JP-TK"]


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(2, 12),
    data=st.data(),
    rule=st.sampled_from(["budget", "alpha", "blocklist", "none"]),
    rounds=st.integers(1, 40),
)
def test_every_client_keeps_the_floor_after_every_round(
    n: int, data: st.DataObject, rule: str, rounds: int
) -> None:
    k = data.draw(st.integers(1, n))
    m = data.draw(st.floats(0.0, k / n))
    slots = data.draw(st.integers(1, 3))
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    fairness = Fairness(min_share=m, rule=rule, alpha=1.0)
    counts = [0] * n
    for r in range(1, rounds + 1):
        g = rng.lognormal(0.0, 2.0, size=(slots, n))
        choice = choose(g, counts, r, k, fairness)
        assert len(choice.picks) == k
        assert len(set(choice.picks)) == k
        assert set(choice.forced) <= set(choice.picks)
        assert 0 <= choice.slot < slots
        for i in choice.picks:
            counts[i] += 1
        assert min(counts) >= fairness.floor(r), (r, counts)


def test_carbon_only_picks_the_cleanest_and_the_slot_with_least_co2e() -> None:
    g = np.array([[5.0, 1.0, 3.0, 2.0], [0.5, 0.4, 9.0, 9.0]])
    choice = choose(g, [0, 0, 0, 0], 1, 2, Fairness(min_share=0.0, rule="none"))
    assert choice.slot == 1
    assert set(choice.picks) == {0, 1}
    assert choice.expected_g == pytest.approx(0.9)


def test_alpha_fair_spreads_participation_more_than_carbon_only() -> None:
    g = np.array([[1.0, 1.5, 2.0, 20.0, 30.0, 40.0]])

    def spread(fairness: Fairness) -> int:
        counts = [0] * 6
        for r in range(1, 31):
            for i in choose(g, counts, r, 2, fairness).picks:
                counts[i] += 1
        return max(counts) - min(counts)

    assert spread(Fairness(min_share=0.0, rule="alpha", alpha=3.0)) < spread(
        Fairness(min_share=0.0, rule="none")
    )


def test_budget_takes_the_most_useful_clients_that_fit_the_round_budget() -> None:
    g = np.array([[1.0, 1.0, 2.0, 2.0, 4.0, 8.0, 8.0, 8.0]])
    utility = [1.0, 1.0, 1.0, 1.0, 5.0, 9.0, 9.0, 9.0]
    fairness = Fairness(min_share=0.0, rule="budget", budget_share=0.7)
    choice = choose(g, [0] * 8, 1, 2, fairness, utility=utility)
    assert set(choice.picks) == {0, 4}  # client 4 is worth its CO2e; 5-7 do not fit
    assert choice.expected_g <= 0.7 * 2 * g.mean()
    # unknown utility counts as the largest known: never-seen clients get explored
    choice = choose(g, [0] * 8, 1, 2, fairness, utility=[1.0, 0.1, 0.1, 0.1] + [math.nan] * 4)
    assert set(choice.picks) == {0, 4}
    with pytest.raises(ConfigError, match="bad budget_share"):
        Fairness(budget_share=1.5)


def test_budget_slack_spends_the_budget_of_now_in_the_hour_it_buys_most_learning() -> None:
    # client 2 is the most useful but too dirty now; in slot 1 (its zone's sun) it fits the
    # budget of now (0.55 x 2 x mean CO2e of slot 0 = 3.575), with a cheap client beside it
    g = np.array([[1.0, 1.0, 10.0, 1.0], [1.0, 1.0, 2.0, 1.0]])
    fairness = Fairness(min_share=0.0, rule="budget")
    choice = choose(g, [0] * 4, 1, 2, fairness, utility=[1.0, 1.0, 10.0, 1.0])
    assert choice.slot == 1
    assert 2 in choice.picks
    assert choice.expected_g <= 0.55 * 2 * g[0].mean()
    # the same utility in every slot: the slot with least CO2e
    flat = np.array([[2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0], [1.5, 1.5, 1.5, 1.5]])
    choice = choose(flat, [0] * 4, 1, 2, fairness)
    assert choice.slot == 1
    assert choice.expected_g == pytest.approx(2.0)


def test_forced_clients_come_before_their_deadline() -> None:
    # m = 0.5: by round 2 everyone needs one participation; 4 clients, 2 per round
    assert forced_clients([0, 0, 0, 0], 1, 2, 0.5) == [0, 1]
    assert forced_clients([1, 1, 0, 0], 2, 2, 0.5) == [2, 3]
    assert forced_clients([5, 5], 3, 1, 0.0) == []


def test_random_choice_is_seeded_and_distinct() -> None:
    a = random_choice(np.random.default_rng(3), 10, 4)
    b = random_choice(np.random.default_rng(3), 10, 4)
    assert a == b
    assert len(set(a)) == 4


def test_bad_fairness_settings_name_the_value() -> None:
    with pytest.raises(ConfigError, match=r"min_share 1\.5"):
        Fairness(min_share=1.5)
    with pytest.raises(ConfigError, match="fairness rule 'fair'"):
        Fairness(rule="fair")
    with pytest.raises(ConfigError, match="clients per round 5"):
        choose(np.ones((1, 3)), [0, 0, 0], 1, 5, Fairness())


def _selection(policy: str, **kw: object) -> CarbonAwareSelection:
    ledger = CarbonLedger(
        FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=1, min_train_nodes=1),
        server_zone="DE",
        clock=SimulatedClock(START_S),
        save=False,
    )
    return CarbonAwareSelection(ledger, clients_per_round=2, policy=policy, **kw)  # type: ignore[arg-type]


def test_carbon_aware_strategy_keeps_the_fairness_bound_and_saves_co2e() -> None:
    rounds = 8
    fairness = Fairness(min_share=0.125, rule="alpha", alpha=0.5)
    carbon = _selection("carbon", fairness=fairness)
    carbon.start(InProcessGrid(make_app(CLEAN_DIRTY), 8), initial_arrays(), num_rounds=rounds)
    random = _selection("random", seed=1)
    random.start(InProcessGrid(make_app(CLEAN_DIRTY), 8), initial_arrays(), num_rounds=rounds)

    part = carbon.ledger.participation([f"client-{i}" for i in range(8)])
    assert sum(part.values()) == 2 * rounds
    floor = math.floor(0.125 * rounds)
    assert min(part.values()) >= floor  # the fairness bound: every client >= floor(m * R)
    assert part["client-0"] > floor  # CA-ON (cleanest) gets the free places
    assert carbon.ledger.metadata["clients"]["client-0"] == "CA-ON"

    # intensity-weighted: the carbon-aware run's mean intensity is well below random's
    def mean_intensity(s: CarbonAwareSelection) -> float:
        es = s.ledger.clients("train")
        return sum(e.intensity_g_per_kwh for e in es) / len(es)

    assert mean_intensity(carbon) < 0.8 * mean_intensity(random)
    # each round's simulated hour advances by one hour (no slack)
    assert [p.slot_s for p in carbon.ledger.plans] == [START_S + 3600 * i for i in range(rounds)]


def test_slack_defers_rounds_to_cleaner_hours() -> None:
    # from 12:00 UTC both zones get cleaner over the next hours (solar in California)
    zones = ["CL-SEN", "US-CAL-CISO", "CL-SEN", "US-CAL-CISO"]
    s = CarbonAwareSelection(
        CarbonLedger(
            FedAvg(
                fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=1, min_train_nodes=1
            ),
            server_zone="DE",
            clock=SimulatedClock(START_S + 12 * 3600),
            save=False,
        ),
        clients_per_round=2,
        fairness=Fairness(min_share=0.0, rule="none"),
        slack_h=12,
    )
    s.start(InProcessGrid(make_app(zones), 4), initial_arrays(), num_rounds=2)
    first = s.ledger.plans[0]
    assert first.deferred_s >= 3 * 3600
    assert s.ledger.plans[1].slot_s >= first.slot_s + 3600
    entries = [e for e in s.ledger.clients("train") if e.round == 1]
    assert all(e.hour_s == first.slot_s for e in entries)


def test_carbon_budget_stops_training() -> None:
    s = _selection("carbon", fairness=Fairness(min_share=0.0), budget_co2e_g=1e-9)
    result = s.start(InProcessGrid(make_app(CLEAN_DIRTY[:4]), 4), initial_arrays(), num_rounds=3)
    assert "carbon budget" in s.ledger.stopped
    assert s.ledger.entries == []
    assert not result.train_metrics_clientapp


def test_selection_refuses_settings_it_cannot_honour() -> None:
    with pytest.raises(ConfigError, match="fraction_train"):
        CarbonAwareSelection(FedAvg(fraction_train=0.5), clients_per_round=2)
    with pytest.raises(ConfigError, match="min_train_nodes"):
        CarbonAwareSelection(FedAvg(min_train_nodes=5), clients_per_round=2)
    s = _selection("carbon", fairness=Fairness(min_share=0.5))
    with pytest.raises(ConfigError, match="lower min_share"):
        s.start(InProcessGrid(make_app(CLEAN_DIRTY), 8), initial_arrays(), num_rounds=1)


def test_wall_clock_deferral_sleeps_until_the_chosen_slot() -> None:
    now = [START_S + 12 * 3600]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    from greenforge.federated.clock import WallClock

    clock = WallClock(time_fn=lambda: now[0], sleep=sleep)
    s = CarbonAwareSelection(
        CarbonLedger(
            FedAvg(
                fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=1, min_train_nodes=1
            ),
            server_zone="DE",
            clock=clock,
            save=False,
        ),
        clients_per_round=2,
        fairness=Fairness(min_share=0.0, rule="none"),
        slack_h=12,
    )
    s.start(InProcessGrid(make_app(["US-CAL-CISO"] * 3), 3), initial_arrays(), num_rounds=1)
    plan = s.ledger.plans[0]
    assert plan.deferred_s >= 3 * 3600
    assert sum(slept) == pytest.approx(plan.deferred_s)
    assert s.ledger.metadata["clock"] == "wall"
