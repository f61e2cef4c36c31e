"""Specification of ``--executor ray``: candidates evaluated in parallel on a (local) Ray."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenforge.config import Settings
from greenforge.forge.search import run_forge
from greenforge.forge.task import load_task

from .conftest import write_task

TASK = """
[task]
name = "ray-blobs"
tolerance = 0.05
expected_inferences = 1000000
zone = "DE"
epochs = 3
batch_size = 32
lr = 0.01
recipes = ["baseline", "distill", { recipe = "quantize", source = "distill" }]

[recipe.distill]
student = { architecture = "mlp", hidden = [16] }
"""


@pytest.fixture
def local_ray() -> Iterator[None]:
    pytest.importorskip("ray")
    from greenforge.ray_local import init_ray

    # started the way GreenForge starts a local Ray: 127.0.0.1 only, no dashboard
    ray = init_ray(num_cpus=2, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.integration
@pytest.mark.usefixtures("local_ray")
def test_ray_evaluates_candidates_and_gives_the_same_choice_rules(
    tmp_path: Path, blobs_npz: Path, fake_measure: dict[str, Any]
) -> None:
    task = load_task(write_task(tmp_path, TASK, blobs_npz))

    result = run_forge(
        task,
        Settings(),
        out_dir=tmp_path / "out",
        executor="ray",
        measure_kwargs=fake_measure,
        min_duration_s=0.02,
        threads=1,
    )

    assert result.executor == "ray"
    assert [r.name for r in result.results] == [
        "baseline",
        "distill",
        "distill+int8-dynamic",
        "baseline+onnx",
        "distill+onnx",
    ]
    assert all(r.evaluation is not None for r in result.results)
    # quality on the workers, inference of all candidates measured together on the driver
    assert all(
        r.evaluation.serving.method == "fake" for r in result.results if r.evaluation is not None
    )
    labels = [s.label for s in result.search.steps]
    assert "measure:inference" in labels
    assert result.status in ("chosen", "no-candidate")
    assert (tmp_path / "out" / "forge.json").is_file()
