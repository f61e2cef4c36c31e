"""Specification of the ``greenforge forge`` command (real tracker, real meters, tiny task)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from greenforge.cli.app import main
from greenforge.cli.forge import NO_CANDIDATE_EXIT_CODE

from .conftest import write_task

TINY = """
[task]
name = "tiny"
tolerance = 0.1
expected_inferences = 100000
epochs = 2
batch_size = 32
lr = 0.01
recipes = ["baseline", { recipe = "quantize", source = "baseline", mode = "int8-dynamic" }]
"""


def test_forge_with_a_task_file_writes_the_results(
    tmp_path: Path, blobs_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = write_task(tmp_path, TINY, blobs_npz)
    out = tmp_path / "out"

    code = main(
        ["forge", "--config", str(task), "--out", str(out), "--zone", "FR", "--threads", "1"]
    )

    assert code == 0
    doc = json.loads((out / "forge.json").read_text())
    assert doc["deployment"]["zone"] == "FR"
    assert doc["chosen"] in {"baseline", "baseline+int8-dynamic", "baseline+onnx"}
    assert doc["candidates"][0]["inference_serving"]["method"].startswith("model:")
    printed = capsys.readouterr().out
    assert "chosen:" in printed
    assert "baseline+int8-dynamic" in printed


def test_no_candidate_meeting_the_target_exits_with_code_10(
    tmp_path: Path, blobs_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    with np.load(blobs_npz) as z:
        x, y = z["x"], z["y"].copy()
    y[::5] = (y[::5] + 1) % 3
    np.savez(blobs_npz, x=x, y=y)
    task = write_task(tmp_path, TINY.replace("tolerance = 0.1", "target_accuracy = 1.0"), blobs_npz)

    code = main(
        [
            "forge",
            "--config",
            str(task),
            "--out",
            str(tmp_path / "o"),
            "--zone",
            "DE",
            "--threads",
            "1",
        ]
    )

    assert code == NO_CANDIDATE_EXIT_CODE
    assert "no candidate met the target" in capsys.readouterr().out
    assert json.loads((tmp_path / "o" / "forge.json").read_text())["status"] == "no-candidate"


def test_example_and_config_are_mutually_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forge"]) == 2
    assert "exactly one of --example" in capsys.readouterr().err


def test_an_unknown_example_lists_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forge", "--example", "cifar"]) == 2
    assert "digits" in capsys.readouterr().err


def test_a_bad_task_file_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[task]\ncolour = 'green'\n[data]\npath = 'x.npz'\n")

    assert main(["forge", "--config", str(path)]) == 2
    assert "unknown key(s) ['colour'] in the task table" in capsys.readouterr().err


def test_importing_the_forge_command_does_not_import_torch() -> None:
    code = "import sys, greenforge.cli.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_digits_example_runs_offline_with_chosen_recipes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "digits"

    code = main(
        [
            "forge",
            "--example",
            "digits",
            "--epochs",
            "1",
            "--recipes",
            "baseline,quantize",
            "--out",
            str(out),
            "--threads",
            "1",
        ]
    )

    doc = json.loads((out / "forge.json").read_text())
    assert code in (0, NO_CANDIDATE_EXIT_CODE)
    assert [c["name"] for c in doc["candidates"]] == [
        "baseline",
        "baseline+int8-dynamic",
        "baseline+onnx",
    ]
    assert doc["deployment"]["zone"] == "DE"
    assert doc["data"]["input_shape"] == [1, 8, 8]
    assert doc["candidates"][1]["precision"] == "int8-dynamic"
    assert "forge digits" in capsys.readouterr().out


def test_a_bad_pretrained_table_fails_before_any_training(
    tmp_path: Path, blobs_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = TINY + '\n[pretrained]\nkind = "bogus"\npath = "x.pt"\n'
    task = write_task(tmp_path, body, blobs_npz)
    out = tmp_path / "out"

    code = main(["forge", "--config", str(task), "--out", str(out), "--zone", "FR"])

    assert code == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "[pretrained]" in err
    assert "'bogus'" in err
    assert not out.exists()  # nothing was trained


def test_failed_recipe_messages_are_printed_verbatim_not_as_markup(
    tmp_path: Path, blobs_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = TINY.replace(
        'recipes = ["baseline", { recipe = "quantize", source = "baseline", mode = "int8-dynamic" }]',
        'recipes = ["baseline", "transfer-head"]',
    )
    body += '\n[pretrained]\nkind = "state_dict"\npath = "ckpt[v2].pt"\n'
    task = write_task(tmp_path, body, blobs_npz)

    out = str(tmp_path / "o")
    code = main(["forge", "--config", str(task), "--out", out, "--zone", "FR", "--threads", "1"])

    assert code in (0, NO_CANDIDATE_EXIT_CODE)
    printed = capsys.readouterr().out.replace("\n", "")
    assert "failed recipe transfer-head" in printed
    assert "ckpt[v2].pt" in printed  # rich markup would have swallowed "[v2]"


def test_an_output_directory_that_cannot_be_created_is_refused_before_training(
    tmp_path: Path, blobs_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = write_task(tmp_path, TINY, blobs_npz)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")

    code = main(["forge", "--config", str(task), "--out", str(blocker / "out"), "--zone", "FR"])

    assert code == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "cannot create the output directory" in err
    assert "a-file" in err


def test_the_progress_display_pauses_while_serving_is_measured(
    tmp_path: Path,
    blobs_npz: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The measurement bills this process's CPU time: rich's refresh thread must not run
    beside it (it would land in the candidates' repeats), and the user is told why."""
    import threading

    from greenforge.forge.evaluate import measure_serving as real

    seen: list[list[str]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        others = [t for t in threading.enumerate() if t is not threading.main_thread()]
        for t in others:  # a stopped refresh thread ends within one refresh period
            t.join(timeout=1.0)
        seen.append([type(t).__name__ for t in others if t.is_alive()])
        return real(*args, **kwargs)

    monkeypatch.setattr("greenforge.forge.search.measure_serving", spy)
    task = write_task(tmp_path, TINY, blobs_npz)

    out = str(tmp_path / "out")
    code = main(["forge", "--config", str(task), "--out", out, "--zone", "FR", "--threads", "1"])

    assert code == 0
    assert len(seen) == 1
    assert seen == [[]]  # no thread of ours runs beside the measurement
    printed = capsys.readouterr().out
    assert "the progress display pauses meanwhile" in printed
