"""Inference cost is the median of repeated measurements, with the spread kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from greenforge.config import load_settings
from greenforge.forge.evaluate import inference_cost
from greenforge.forge.measure import Measurement


def scripted_measure(energies_j: list[float]) -> Callable[..., tuple[Any, Measurement]]:
    """A measure_fn that runs the loop for real but reports scripted energies."""
    queue = list(energies_j)

    def measure_fn(label: str, fn: Callable[[], int]) -> tuple[int, Measurement]:
        fn()
        energy = queue.pop(0)
        # report exactly 1,000 predictions so energy per 1k equals the scripted energy
        return 1000, Measurement(energy, energy, energy, 0.01, 0.0, "fake", "static", 0.0)

    return measure_fn


def test_the_median_repeat_decides_and_the_spread_is_reported() -> None:
    model = nn.Linear(4, 2)
    pool = torch.zeros(8, 4)
    settings = load_settings(env={}, config_file=None, zone="DE")

    cost = inference_cost(
        model,
        pool,
        2,
        settings,
        min_duration_s=0.003,
        measure_fn=scripted_measure([30.0, 1.0, 2.0]),  # one disturbed sample: 30 J
    )

    assert cost.repeats == 3
    assert cost.energy_j_per_1k == 2.0
    assert cost.energy_j_per_1k_range == (1.0, 30.0)
    assert cost.to_dict()["energy_j_per_1k_range"] == [1.0, 30.0]


def test_repeats_must_be_positive() -> None:
    settings = load_settings(env={}, config_file=None, zone="DE")
    with pytest.raises(ValueError, match="repeats 0"):
        inference_cost(nn.Linear(2, 2), torch.zeros(2, 2), 1, settings, repeats=0)
