"""`import greenforge` stays light: no torch (nor other heavy extras), even when tracking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HEAVY = ("torch", "sklearn", "onnxruntime", "transformers", "ray", "mlflow", "codecarbon")

PROBE = """
import json, sys
import greenforge
after_import = sorted(m for m in {heavy} if m in sys.modules)
tracker = greenforge.Tracker(zone="DE", name="light")
tracker.start()
record = tracker.stop()
after_run = sorted(m for m in {heavy} if m in sys.modules)
print(json.dumps({{"import": after_import, "run": after_run, "energy_j": record.energy_j}}))
"""


def _probe(script: str, home: Path) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter (no zone configured) and parse its last line."""
    env = {**os.environ, "GREENFORGE_HOME": str(home), "COLUMNS": "200"}
    env.pop("GREENFORGE_ZONE", None)
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=home,
    ).stdout
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def test_import_and_a_tracked_run_do_not_import_torch(tmp_path: Path) -> None:
    result = _probe(PROBE.format(heavy=repr(HEAVY)), tmp_path)
    assert result["import"] == []
    assert result["run"] == []
    assert result["energy_j"] >= 0.0


START_HEAVY = ("numpy", "httpx", "rich", "typer", "greenforge.grid.series", "greenforge.grid.ops")

START_PROBE = """
import json, sys
import greenforge
tracker = greenforge.Tracker(zone="DE", name="light")
tracker.start()
with tracker.window("epoch"):
    pass
record = tracker.stop()
print(json.dumps({{"loaded": sorted(m for m in {heavy} if m in sys.modules),
                   "co2e_g": record.co2e_g, "source": record.emissions.intensity.source}}))
"""


def test_a_tracked_run_on_the_embedded_tables_imports_no_numpy_http_or_rich(
    tmp_path: Path,
) -> None:
    # numpy (~45 ms), httpx and rich are most of a start's cost: the embedded tables are read
    # without numpy, the live providers and the CLI are imported only when used.
    result = _probe(START_PROBE.format(heavy=repr(START_HEAVY)), tmp_path)
    assert result["loaded"] == []
    assert result["co2e_g"] >= 0.0
    assert result["source"] == "embedded:profile-2021-2023:DE"


CLI_PROBE = """
import json, sys
from greenforge.cli.app import main
code = main(["--help"])
print(json.dumps({"code": code, "loaded": sorted(m for m in sys.modules
                  if m == "numpy" or m.startswith("greenforge.cli.") and m != "greenforge.cli.app")}))
"""


def test_cli_help_imports_no_command_module(tmp_path: Path) -> None:
    result = _probe(CLI_PROBE, tmp_path)
    assert result == {"code": 0, "loaded": []}


def test_the_lazy_command_table_matches_every_commands_own_help() -> None:
    import inspect

    from greenforge.cli.app import _LAZY_COMMANDS, load_all_commands

    group = load_all_commands()
    assert sorted(group.commands) == sorted(_LAZY_COMMANDS)
    for name, (_, short_help) in _LAZY_COMMANDS.items():
        first = inspect.cleandoc(group.commands[name].help or "").split("\n\n")[0]
        assert short_help == first.replace("\n", " "), name
