"""Crash safety: a workload killed with SIGKILL keeps its run, marked incomplete."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from greenforge.config import load_settings
from greenforge.errors import StoreError
from greenforge.report.store import RunStore

WORKLOAD = """
import sys, time
from greenforge.testing import FakeMeter, StaticIntensity
from greenforge.tracker import Tracker

tracker = Tracker(zone="DE", meters=[FakeMeter(50.0)], provider=StaticIntensity(250.0))
tracker.start()
print(tracker.run_id, flush=True)
while True:
    time.sleep(0.01)
"""


def test_a_killed_workload_leaves_an_incomplete_run_with_its_energy(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GREENFORGE_HOME": str(tmp_path),
        "GREENFORGE_INTERVAL_S": "0.05",
        "GREENFORGE_FLUSH_INTERVAL_S": "0.1",
    }
    settings = load_settings(env={"GREENFORGE_HOME": str(tmp_path)})
    with subprocess.Popen(
        [sys.executable, "-c", WORKLOAD], env=env, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            run_id = proc.stdout.readline().strip()
            with RunStore.for_settings(settings) as store:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    with contextlib.suppress(StoreError):  # until the first flush lands
                        if store.get(run_id).energy_j >= 5.0:
                            break
                    time.sleep(0.05)
                before = store.get(run_id)
            assert before.status == "running"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with RunStore.for_settings(settings) as reopened:
        listed = {r.id: r for r in reopened.list()}
    record = listed[run_id]
    assert record.status == "incomplete"
    assert record.energy_j >= before.energy_j >= 5.0  # at most one flush interval lost
    assert record.co2e_g == pytest.approx(record.energy_j / 3.6e6 * 250.0)
    assert record.ended_s is not None
    assert any("did not finish" in w for w in record.warnings)
