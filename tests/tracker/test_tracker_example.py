"""The bundled example (what `make demo` measures) trains for real and records its epochs."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenforge.config import load_settings
from greenforge.examples import train
from greenforge.report.store import RunStore


def test_the_example_trains_and_stores_a_run_with_a_window_per_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GREENFORGE_HOME", str(tmp_path))
    monkeypatch.delenv("GREENFORGE_PARENT_RUN_ID", raising=False)
    # --threads 0 keeps torch's global thread setting as it is for the other tests
    assert train.main(["--zone", "DE", "--epochs", "2", "--width", "4", "--threads", "0"]) == 0
    out = capsys.readouterr().out
    assert "epoch  2:" in out
    assert "predicted total after 1/2 epochs" in out
    with RunStore.for_settings(load_settings(env={"GREENFORGE_HOME": str(tmp_path)})) as store:
        [record] = store.list()
    assert record.name == "examples.train"
    assert record.status == "completed"
    assert [w.path for w in record.windows] == [
        "epoch-1",
        "epoch-1/eval",
        "epoch-2",
        "epoch-2/eval",
    ]
    assert record.prediction is not None
    assert record.prediction.windows_seen == 2
    assert record.energy_j > 0


def test_the_example_rejects_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        train.main(["--epochs", "0"])


def test_the_example_says_co2e_unknown_rather_than_zero_without_intensity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GREENFORGE_HOME", str(tmp_path))
    monkeypatch.delenv("GREENFORGE_PARENT_RUN_ID", raising=False)
    monkeypatch.setenv("GREENFORGE_OFFLINE", "1")  # uk-neso answers from an empty cache only
    monkeypatch.setenv("GREENFORGE_INTENSITY_PROVIDERS", "uk-neso")
    assert train.main(["--zone", "GB", "--epochs", "1", "--width", "4", "--threads", "0"]) == 0
    out = capsys.readouterr().out
    assert "CO2e unknown" in out
    assert "0.000 mgCO2e" not in out
