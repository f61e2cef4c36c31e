"""Fixtures of the hardware tests: the data build script, loaded fresh as a module."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_build_script() -> ModuleType:
    """``scripts/build_hardware_tables.py`` as a fresh module (monkeypatch its globals freely)."""
    path = REPO / "scripts" / "build_hardware_tables.py"
    spec = importlib.util.spec_from_file_location("build_hardware_tables", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def build_script() -> ModuleType:
    return load_build_script()
