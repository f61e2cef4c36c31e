"""Shared fixtures for the tracker tests: settings in a temp home, a manual clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenforge.config import Settings, load_settings
from greenforge.testing import ManualClock


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Fast sampling, frequent flushes, a store under tmp_path, no zone configured."""
    return load_settings(env={}, home=tmp_path / "home", interval_s=0.02, flush_interval_s=0.05)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
