"""`import greenforge` stays light: no torch (nor other heavy extras), even when tracking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_import_and_a_tracked_run_do_not_import_torch(tmp_path: Path) -> None:
    env = {**os.environ, "GREENFORGE_HOME": str(tmp_path)}
    env.pop("GREENFORGE_ZONE", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=repr(HEAVY))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    result = json.loads(out)
    assert result["import"] == []
    assert result["run"] == []
    assert result["energy_j"] >= 0.0
