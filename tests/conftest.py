"""Shared test set-up: every test runs with its own GREENFORGE_HOME and no ambient settings."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path_factory.mktemp("gf-home")
    monkeypatch.setenv("GREENFORGE_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for var in (
        "GREENFORGE_ZONE",
        "GREENFORGE_CONFIG",
        "GREENFORGE_PUE",
        "GREENFORGE_INTENSITY_PROVIDERS",
        "ELECTRICITYMAPS_API_KEY",
        "WATTTIME_USERNAME",
        "WATTTIME_PASSWORD",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "RANK",
        "LOCAL_RANK",
        "WORLD_SIZE",
        "SLURM_JOB_ID",
        "SLURM_PROCID",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def shared_data() -> Path:
    """The reference data folder beside the checkout (../shared/data)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"reference data not found at {SHARED_DATA}; clone with ../shared beside it")
    return SHARED_DATA
