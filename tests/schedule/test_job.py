"""Specification of ``Job``: bad input is refused with a message that says what to do."""

from __future__ import annotations

import pytest

from greenforge.errors import ConfigError, InfeasibleError
from greenforge.schedule.job import DEFAULT_POWER_W, Job

H = 3600.0
T0 = 1_700_000_000.0


def make(**changes: object) -> Job:
    base: dict[str, object] = {
        "duration_s": 4 * H,
        "earliest_start_s": T0,
        "deadline_s": T0 + 24 * H,
        "zones": ("GB",),
    }
    base.update(changes)
    return Job(**base)  # type: ignore[arg-type]


def test_a_valid_job_knows_its_window_and_slack() -> None:
    job = make()
    assert job.window_s == 24 * H
    assert job.slack_s == 20 * H


@pytest.mark.parametrize("duration", [0.0, -1.0])
def test_non_positive_duration_is_refused(duration: float) -> None:
    with pytest.raises(ConfigError, match="duration must be > 0"):
        make(duration_s=duration)


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="finite"):
        make(deadline_s=float("inf"))


def test_slack_shorter_than_the_job_is_infeasible_and_says_which_deadline_would_do() -> None:
    with pytest.raises(InfeasibleError, match="move the deadline to at least"):
        make(deadline_s=T0 + 3 * H)


def test_deadline_before_earliest_start_is_infeasible() -> None:
    with pytest.raises(InfeasibleError, match="not after its earliest start"):
        make(deadline_s=T0 - H)


def test_deadline_in_the_past_is_refused_and_a_past_start_moves_to_now() -> None:
    job = make()
    with pytest.raises(InfeasibleError, match="in the past"):
        job.check_not_past(T0 + 25 * H)
    moved = job.check_not_past(T0 + H)
    assert moved.earliest_start_s == T0 + H
    assert job.check_not_past(T0 - H) is job


@pytest.mark.parametrize("zones", [(), ("",), ("GB", "GB")])
def test_bad_zone_lists_are_refused(zones: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match="zone"):
        make(zones=zones)


def test_a_single_zone_string_becomes_a_tuple() -> None:
    assert make(zones="DE").zones == ("DE",)


@pytest.mark.parametrize(
    "field", ["checkpoint_overhead_s", "checkpoint_overhead_j", "min_chunk_s", "migration_cost_s"]
)
def test_negative_costs_are_refused(field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        make(**{field: -1.0})


def test_min_chunk_longer_than_the_job_is_refused() -> None:
    with pytest.raises(ConfigError, match="min_chunk_s"):
        make(min_chunk_s=5 * H)


def test_power_defaults_to_one_kilowatt_and_says_so() -> None:
    assert make().effective_power_w == DEFAULT_POWER_W == 1000.0
    assert make().power_assumed
    assert make(power_w=300.0).effective_power_w == 300.0
    assert make(energy_j=4 * H * 250.0).effective_power_w == pytest.approx(250.0)
    assert not make(energy_j=1.0).power_assumed


def test_power_and_energy_together_or_non_positive_are_refused() -> None:
    with pytest.raises(ConfigError, match="either"):
        make(power_w=1.0, energy_j=1.0)
    with pytest.raises(ConfigError, match="power_w"):
        make(power_w=0.0)
    with pytest.raises(ConfigError, match="energy_j"):
        make(energy_j=-5.0)


def test_a_power_profile_gives_the_mean_power_and_is_checked() -> None:
    job = make(power_profile_w=(100.0, 300.0, 300.0, 100.0))
    assert job.effective_power_w == pytest.approx(200.0)
    assert not job.power_assumed
    assert job.power_segments() == ([0.0, H, 2 * H, 3 * H, 4 * H], [100.0, 300.0, 300.0, 100.0])
    with pytest.raises(ConfigError, match="covers"):
        make(power_profile_w=(100.0, 300.0))
    with pytest.raises(ConfigError, match="not both"):
        make(power_profile_w=(1.0,) * 4, power_w=5.0)
    with pytest.raises(ConfigError, match="power_profile_w"):
        make(power_profile_w=(0.0,) * 4)
