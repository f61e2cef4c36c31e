"""The HTML report's forge table reads forge.json into the same rows the `greenforge forge`
table shows (forge.output.candidate_rows), and renders a real forge directory."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from greenforge.config import Settings
from greenforge.forge.output import candidate_rows
from greenforge.forge.search import run_forge
from greenforge.forge.task import load_task
from greenforge.report.html import candidate_rows_from_json, forge_report
from greenforge.testing import FakeMeter

from .conftest import blobs, write_task

TASK = """
[task]
name = "blobs-report"
tolerance = 0.05
expected_inferences = 100000
zone = "DE"
epochs = 2
batch_size = 32
lr = 0.01
serving_batch_size = 16
recipes = ["baseline", { recipe = "quantize", source = "baseline", mode = "int8-dynamic" }]
"""


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12)
    return a == b


def test_forge_json_rows_equal_the_forge_tables_rows(tmp_path: Path) -> None:
    x, y = blobs()
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    task = load_task(write_task(tmp_path, TASK, tmp_path / "blobs.npz"))
    out = tmp_path / "out"
    result = run_forge(
        task,
        Settings(),
        out_dir=out,
        measure_kwargs={
            "meters": [FakeMeter(20.0)],
            "intensity_g_per_kwh": 300.0,
            "intensity_source": "static:test",
        },
        min_duration_s=0.02,
        threads=1,
    )
    data = json.loads((out / "forge.json").read_text(encoding="utf-8"))
    from_json = candidate_rows_from_json(
        data["candidates"], data["chosen"], int(data["serving"]["threads"])
    )
    expected = candidate_rows(result)
    assert [r.name for r in from_json] == [r.name for r in expected]
    for got, want in zip(from_json, expected, strict=True):
        for field in type(want).__dataclass_fields__:
            assert _same(getattr(got, field), getattr(want, field)), (want.name, field)
    page = forge_report(out)
    assert "data:image/png;base64," in page  # the forge's own pareto.png, embedded
    assert "<svg" in page
