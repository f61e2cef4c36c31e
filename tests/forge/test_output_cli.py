"""``greenforge forge --help`` as a user sees it: the task file's table names survive rich markup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from greenforge.cli.app import main

from .conftest import write_task


def test_forge_help_shows_the_task_file_table_names() -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run(
        [sys.executable, "-m", "greenforge", "forge", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    for name in ("[task]", "[data]", "[model]", "[recipe.*]", "[pretrained]"):
        assert name in done.stdout, name
    assert "\\[" not in done.stdout  # escaped for rich, not shown escaped


def test_forge_json_prints_exactly_forge_json_on_stdout(
    tmp_path: Path, blobs_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = """
[task]
name = "tiny"
tolerance = 0.1
expected_inferences = 1000
epochs = 1
batch_size = 32
recipes = ["baseline"]
"""
    task = write_task(tmp_path, body, blobs_npz)
    out = tmp_path / "out"

    code = main(
        [
            "forge",
            "--config",
            str(task),
            "--out",
            str(out),
            "--zone",
            "FR",
            "--json",
            "--threads",
            "1",
        ]
    )

    assert code == 0
    printed = capsys.readouterr().out
    assert json.loads(printed) == json.loads((out / "forge.json").read_text())
