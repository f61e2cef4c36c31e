"""Zeus's cost and the choice under a time constraint (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.errors import ConfigError, InfeasibleError
from greenforge.tune.cost import TimeConstraint, check_eta, choose, zeus_cost

ENERGY_J = [100.0, 60.0, 50.0]
TIME_S = [10.0, 14.0, 30.0]


def test_cost_is_eta_energy_plus_max_power_time() -> None:
    assert zeus_cost(100.0, 10.0, 0.25, 200.0) == pytest.approx(0.25 * 100 + 0.75 * 200 * 10)


def test_eta_one_picks_least_energy_and_eta_zero_least_time() -> None:
    assert choose(ENERGY_J, TIME_S, eta=1.0, max_power_w=10.0).index == 2
    assert choose(ENERGY_J, TIME_S, eta=0.0, max_power_w=10.0).index == 0


def test_balanced_eta_matches_a_hand_computation() -> None:
    # costs at eta 0.5, MaxPower 4 W: 0.5*E + 2*T = 70, 58, 85
    choice = choose(ENERGY_J, TIME_S, eta=0.5, max_power_w=4.0)

    assert choice.costs_j == pytest.approx((70.0, 58.0, 85.0))
    assert choice.index == 1


def test_time_constraint_removes_slow_settings_before_the_minimum() -> None:
    slowdown = choose(ENERGY_J, TIME_S, eta=1.0, max_power_w=1.0,
                      constraint=TimeConstraint(max_slowdown=1.5))  # fmt: skip
    absolute = choose(ENERGY_J, TIME_S, eta=1.0, max_power_w=1.0,
                      constraint=TimeConstraint(max_time_s=12.0))  # fmt: skip

    assert (slowdown.index, slowdown.feasible, slowdown.limit_s) == (1, (True, True, False), 15.0)
    assert absolute.index == 0


def test_no_feasible_setting_names_the_fastest() -> None:
    with pytest.raises(InfeasibleError, match=r"fastest, a, takes 10 s"):
        choose(ENERGY_J, TIME_S, eta=1.0, max_power_w=1.0,
               constraint=TimeConstraint(max_time_s=5.0), labels=["a", "b", "c"])  # fmt: skip


@pytest.mark.parametrize("eta", [-0.1, 1.5, True, "0.5"])
def test_bad_eta_is_a_config_error_naming_it(eta: object) -> None:
    with pytest.raises(ConfigError, match="eta"):
        check_eta(eta)  # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "value"), [("max_time_s", 0.0), ("max_slowdown", 0.9)])
def test_bad_constraint_is_refused(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        TimeConstraint(**{field: value})


@given(
    st.lists(st.tuples(st.floats(0.1, 1e4), st.floats(0.1, 1e4)), min_size=1, max_size=12),
    st.floats(0.0, 1.0),
    st.floats(1.0, 3.0),
)
def test_choice_is_feasible_and_no_feasible_option_costs_less(
    options: list[tuple[float, float]], eta: float, slowdown: float
) -> None:
    energy = [e for e, _ in options]
    times = [t for _, t in options]

    choice = choose(energy, times, eta=eta, max_power_w=50.0,
                    constraint=TimeConstraint(max_slowdown=slowdown))  # fmt: skip

    assert choice.feasible[choice.index]
    assert times[choice.index] <= slowdown * min(times) + 1e-9
    assert all(
        choice.costs_j[choice.index] <= c
        for c, ok in zip(choice.costs_j, choice.feasible, strict=True)
        if ok
    )
