"""Specification of the device profiles (every figure sourced and bounded) and of the energy
per inference measured here with the forge protocol."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from greenforge.config import Settings
from greenforge.edge.devices import device_names, get_device
from greenforge.edge.energy import GEMM_FLOPS, device_energy, measure_exports
from greenforge.edge.export import export_candidate
from greenforge.errors import UnknownNameError

from .conftest import info_for

ASKED = {"rpi4", "rpi5", "jetson-orin-nano", "snapdragon-8-gen-2", "cloud-cpu", "cloud-gpu"}


def test_the_profiles_the_issue_names_exist_with_a_source_for_every_figure() -> None:
    assert set(device_names()) >= ASKED
    assert set(device_names("cloud")) == {"cloud-cpu", "cloud-gpu"}
    for name in device_names():
        p = get_device(name)
        doc = p.to_dict()
        assert doc["method"] == "model:published-figures"
        for field, source in p.sources().items():
            assert source.strip(), f"{name}.{field} has no source"
            b = getattr(p, field)
            assert 0 <= b.low <= b.central <= b.high
        assert p.marginal_w.high > 0
        assert p.lifetime_years > 0


def test_an_unknown_device_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError) as err:
        get_device("rpi6")

    assert "rpi5" in str(err.value)
    assert "cloud-gpu" in str(err.value)


def test_energy_per_inference_is_measured_here_with_the_forge_protocol(
    candidates: dict[str, tuple[Any, str]], test_rows: np.ndarray[Any, Any], tmp_path: Path
) -> None:
    files = {}
    for name in ("baseline", "distill"):
        model, precision = candidates[name]
        files[name] = tmp_path / f"{name}.onnx"
        export_candidate(model, info_for(name, precision), files[name], inputs=test_rows)

    bench = measure_exports(
        files,
        settings=Settings(),
        budget_s=0.1,
        inputs=test_rows,
        idle_probe_s=0.0,
    )

    assert bench.rounds >= 5  # the protocol's minimum rounds
    assert bench.attribution == "process"  # this process's CPU time x per-core power
    assert bench.gemm_flops_per_cpu_s > 0
    assert bench.to_dict()["gemm_reference"]["flops"] == GEMM_FLOPS
    for m in bench.measurements:
        assert m.to_dict()["basis"] == "measured"
        assert 0 < m.energy_j <= m.energy_high_j
        assert 0 <= m.energy_low_j <= m.energy_j  # a busy machine widens the low end to 0
        assert m.flops == 1234  # from the file's metadata
        assert m.utilisation is not None
        assert m.utilisation > 0
        assert m.ops_per_j == pytest.approx(1234 / m.energy_j)
        est = device_energy(get_device("rpi5"), 1234, m.kind, m.utilisation)
        assert est.to_dict()["basis"] == "modelled"
        assert est.method.startswith("model:")
        assert est.energy_j.low <= est.energy_j.central <= est.energy_j.high
        assert math.isfinite(est.ops_per_j)
