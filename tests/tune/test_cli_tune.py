"""``greenforge tune cpu`` end to end on a user's step factory (real torch, real attribution)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenforge.cli.app import main

STEPS = """
import torch

model = torch.nn.Linear(64, 10)
pool = torch.randn(128, 64)


def factory(batch_size):
    def step():
        with torch.inference_mode():
            model(pool[:batch_size])
        return batch_size

    return step
"""


@pytest.fixture
def step_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "tune_steps_for_test.py").write_text(STEPS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "tune_steps_for_test:factory"
    sys.modules.pop("tune_steps_for_test", None)


def test_tune_cpu_writes_json_and_plot_and_prints_the_choice(
    step_module: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tuned"
    argv = ["tune", "cpu", "--step", step_module, "--mode", "serving", "--threads", "1",
            "--batch", "8,32", "--default-threads", "1", "--default-batch", "8",
            "--budget", "0.5", "--out", str(out)]  # fmt: skip

    assert main(argv) == 0

    text = capsys.readouterr().out
    assert "chosen: 1 thread(s), batch" in text
    assert "vs default (1 thread(s), batch 8)" in text
    doc = json.loads((out / "tune.json").read_text())
    assert {(s["threads"], s["batch_size"]) for s in doc["settings"]} == {(1, 8), (1, 32)}
    assert doc["mode"] == "serving"
    assert doc["saving"] is not None
    assert (out / "tradeoff.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--threads", "1,x"], "'x' is not an integer"),
        (["--mode", "fit"], "--mode 'fit'"),
        (["--mode", "training"], "--samples N"),
    ],
)
def test_bad_options_are_config_errors(
    step_module: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", "cpu", "--step", step_module, "--mode", "serving", *argv]) == 2
    assert message in capsys.readouterr().err
