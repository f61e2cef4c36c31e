"""Crash safety: a workload killed with SIGKILL keeps its run, marked incomplete, with the
energy of its last flush (the first sample is flushed at once)."""

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
from greenforge.records import RunRecord
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


def killed_workload(tmp_path: Path, flush_interval_s: float, energy_j: float) -> RunRecord:
    """Run WORKLOAD (50 W) in a subprocess, wait until a flush with ``energy_j`` is stored,
    SIGKILL it; returns the record seen just before the kill (the run id is its ``id``)."""
    env = {
        **os.environ,
        "GREENFORGE_HOME": str(tmp_path),
        "GREENFORGE_INTERVAL_S": "0.05",
        "GREENFORGE_FLUSH_INTERVAL_S": str(flush_interval_s),
    }
    settings = load_settings(env={"GREENFORGE_HOME": str(tmp_path)})
    with subprocess.Popen(
        [sys.executable, "-c", WORKLOAD], env=env, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            run_id = proc.stdout.readline().strip()
            deadline = time.monotonic() + 60
            seen: RunRecord | None = None
            while seen is None and time.monotonic() < deadline:
                # a fresh read-only view each time: reading never writes
                with (
                    RunStore.for_settings(settings, read_only=True) as store,
                    contextlib.suppress(StoreError),  # until the first flush lands
                ):
                    record = store.get(run_id)
                    seen = record if record.energy_j >= energy_j else None
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert seen is not None, f"no flush with {energy_j} J was stored"
    assert seen.status == "running"
    return seen


def test_a_killed_workload_leaves_an_incomplete_run_with_its_energy(tmp_path: Path) -> None:
    before = killed_workload(tmp_path, flush_interval_s=0.1, energy_j=5.0)

    settings = load_settings(env={"GREENFORGE_HOME": str(tmp_path)})
    with RunStore.for_settings(settings) as reopened:
        listed = {r.id: r for r in reopened.list()}
    record = listed[before.id]
    assert record.status == "incomplete"
    assert record.energy_j >= before.energy_j >= 5.0  # at most one flush interval lost
    assert record.co2e_g == pytest.approx(record.energy_j / 3.6e6 * 250.0)
    assert record.ended_s is not None
    assert any("did not finish" in w for w in record.warnings)


def test_a_workload_killed_before_the_first_flush_interval_keeps_its_energy(
    tmp_path: Path,
) -> None:
    # the periodic flush never comes in this test: only the first sample's flush can hold energy
    seen = killed_workload(tmp_path, flush_interval_s=3600.0, energy_j=1e-9)

    settings = load_settings(env={"GREENFORGE_HOME": str(tmp_path)})
    with RunStore.for_settings(settings) as reopened:
        record = reopened.get(seen.id)
    assert record.status == "incomplete"
    assert record.energy_j >= seen.energy_j > 0
