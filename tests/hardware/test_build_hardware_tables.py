"""The embedded hardware tables are exactly what the build script makes from the reference data."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
EMBEDDED = REPO / "src" / "greenforge" / "hardware" / "data"


def test_rebuilding_from_shared_data_reproduces_the_committed_tables(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build_script: ModuleType
) -> None:
    script = build_script
    monkeypatch.setattr(script, "SHARED", shared_data)
    monkeypatch.setattr(script, "OUT", tmp_path)

    assert script.main() == 0

    for name in ("cpu_tdp.csv", "cloud.json", "accelerators.json"):
        assert (tmp_path / name).read_bytes() == (EMBEDDED / name).read_bytes(), name


def test_aws_cpu_names_map_to_ccf_architectures(build_script: ModuleType) -> None:
    script = build_script
    assert script.aws_arch("Intel Xeon Platinum 8259CL") == "Cascade Lake"
    assert script.aws_arch("AWS Graviton3E Processor") == "Graviton3E"
    assert script.aws_arch("2nd Gen AMD EPYC 7R32") == "EPYC 2nd Gen"
    assert script.aws_arch("Apple M2 with 8-core CPU") == ""
