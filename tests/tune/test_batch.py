"""The recurring-job batch-size optimizer: exploration from the default, pruning, Thompson
sampling settling on the cheapest, the early-stop threshold, and the history file."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenforge.errors import ConfigError, DataError
from greenforge.tune.batch import BatchSizeOptimizer

SIZES = [32, 64, 128, 256, 512]
# a job whose energy and time to target are least at batch 128; 512 diverges
ENERGY_J = {32: 900.0, 64: 700.0, 128: 500.0, 256: 650.0}
TIME_S = {32: 9.0, 64: 7.0, 128: 5.0, 256: 6.0}


def optimizer(path: Path, seed: int = 0) -> BatchSizeOptimizer:
    return BatchSizeOptimizer(path, SIZES, 64, max_power_w=100.0, eta=0.5, seed=seed)


def run_job(bso: BatchSizeOptimizer) -> int:
    b = bso.next_batch_size()
    if b == 512:
        bso.report(b, 50.0, 0.5, reached=False)  # diverged after a few steps
    else:
        bso.report(b, ENERGY_J[b], TIME_S[b], reached=True)
    return b


def test_explores_from_the_default_outwards_then_settles_on_the_cheapest(tmp_path: Path) -> None:
    bso = optimizer(tmp_path / "bs.json")

    first = [run_job(bso) for _ in range(5)]
    later = [run_job(bso) for _ in range(20)]

    assert first == [64, 32, 128, 256, 512]
    assert bso.pruned == {512}
    assert 512 not in later
    assert later.count(128) >= 15  # Thompson sampling exploits the cheapest
    assert bso.best() == 128
    assert bso.cost_threshold_j() == pytest.approx(2.0 * (0.5 * 500.0 + 0.5 * 100.0 * 5.0))


def test_the_history_survives_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "bs.json"
    bso = optimizer(path)
    for _ in range(6):
        run_job(bso)

    again = optimizer(path, seed=1)

    assert len(again.observations) == 6
    assert again.best() == 128
    assert again.summary()["512"] == {"runs": 1, "mean_cost_j": None, "pruned": True}


def test_all_pruned_is_a_clear_error(tmp_path: Path) -> None:
    bso = BatchSizeOptimizer(tmp_path / "bs.json", [8], 8, max_power_w=10.0)
    bso.report(8, 1.0, 1.0, reached=False)

    with pytest.raises(ConfigError, match="failed to reach the target"):
        bso.next_batch_size()


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="default batch size 48"):
        BatchSizeOptimizer(tmp_path / "a.json", SIZES, 48, max_power_w=1.0)
    with pytest.raises(ConfigError, match=r"beta 1\.0"):
        BatchSizeOptimizer(tmp_path / "a.json", SIZES, 64, max_power_w=1.0, beta=1.0)
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(DataError, match="not a batch-size history"):
        optimizer(tmp_path / "b.json")
