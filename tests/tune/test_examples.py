"""The bundled digits workloads: samples to a target loss per batch size, and tune_example."""

from __future__ import annotations

import pytest

from greenforge.errors import ConfigError, InfeasibleError
from greenforge.forge.protocol import ProtocolConfig
from greenforge.tune.cpu import Setting
from greenforge.tune.examples import load_task, samples_to_target_loss, tune_example


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_task("digits")


def test_smaller_batches_reach_a_loss_in_fewer_samples(digits) -> None:  # type: ignore[no-untyped-def]
    small = samples_to_target_loss(digits, 16, 1.0, seeds=(0,))
    large = samples_to_target_loss(digits, 256, 1.0, seeds=(0,))

    assert 0 < small < large  # more updates per sample at the smaller batch


def test_an_unreachable_target_is_infeasible_and_a_bad_one_refused(digits) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InfeasibleError, match="did not reach validation loss 1e-06"):
        samples_to_target_loss(digits, 64, 1e-6, seeds=(0,), max_epochs=1)
    with pytest.raises(ConfigError, match="target loss 0"):
        samples_to_target_loss(digits, 64, 0.0)
    with pytest.raises(ConfigError, match="batch size 5000 is larger"):
        samples_to_target_loss(digits, 5000, 0.5)


def test_tune_example_serving_measures_the_grid_and_the_default() -> None:
    result = tune_example(
        "digits", mode="serving", threads=[1], batch_sizes=[16, 64], default=Setting(1, 32),
        idle_probe_s=0.0, config=ProtocolConfig(min_rounds=2, max_rounds=2, busy_max_rounds=2), repeat_steps=2,
    )  # fmt: skip

    assert [c.setting.batch_size for c in result.costs] == [16, 64, 32]
    assert result.costs[result.default or 0].setting == Setting(1, 32)
    assert result.saving is not None
