"""``greenforge forge --help`` as a user sees it: the task file's table names survive rich markup."""

from __future__ import annotations

import os
import subprocess
import sys


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
