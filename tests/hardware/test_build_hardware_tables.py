"""The embedded hardware tables are exactly what the build script makes from the reference data."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
EMBEDDED = REPO / "src" / "greenforge" / "hardware" / "data"


def load_script() -> ModuleType:
    path = REPO / "scripts" / "build_hardware_tables.py"
    spec = importlib.util.spec_from_file_location("build_hardware_tables", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rebuilding_from_shared_data_reproduces_the_committed_tables(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = load_script()
    monkeypatch.setattr(script, "SHARED", shared_data)
    monkeypatch.setattr(script, "OUT", tmp_path)

    assert script.main() == 0

    for name in ("cpu_tdp.csv", "cloud.json"):
        assert (tmp_path / name).read_bytes() == (EMBEDDED / name).read_bytes(), name


def test_aws_cpu_names_map_to_ccf_architectures() -> None:
    script = load_script()
    assert script.aws_arch("Intel Xeon Platinum 8259CL") == "Cascade Lake"
    assert script.aws_arch("AWS Graviton3E Processor") == "Graviton3E"
    assert script.aws_arch("2nd Gen AMD EPYC 7R32") == "EPYC 2nd Gen"
    assert script.aws_arch("Apple M2 with 8-core CPU") == ""
