"""A scheduled command's secrets are kept out of what is printed and stored with its run."""

from __future__ import annotations

import json
import sys

import pytest

from greenforge.cli.app import main
from greenforge.schedule.executors.base import METADATA_KEY

TOKEN = "tok-sched-5150-secret"


def test_queue_list_and_the_stored_run_never_show_a_secret_argument(
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = [sys.executable, "-c", "import sys; sys.exit(0)", "--token", TOKEN]
    argv = ["schedule", "--zone", "GB", "--duration", "1s", "--deadline", "+2s", "--name", "s"]

    assert main([*argv, "--", *command]) == 0
    capsys.readouterr()
    assert main(["queue", "list", "--json"]) == 0
    listed = capsys.readouterr().out
    jobs = json.loads(listed)
    assert main(["runs", "show", jobs[0]["run_ids"][0], "--json"]) == 0
    shown = capsys.readouterr().out

    assert TOKEN not in listed
    assert TOKEN not in shown
    assert jobs[0]["argv"][-2:] == ["--token", "***"]
    assert json.loads(shown)["metadata"][METADATA_KEY]["command"][-1] == "***"
