"""Flushes: the first sample is on disk at once, so a workload killed before the first flush
interval keeps the energy it used (at most one flush interval is ever lost)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import threading
import time

from greenforge.config import Settings
from greenforge.errors import ProviderError, StoreError
from greenforge.grid.series import IntensitySeries
from greenforge.meters.model import ProcessTreeCpu
from greenforge.records import RunRecord
from greenforge.report.store import RunStore
from greenforge.testing import FakeMeter, StaticIntensity
from greenforge.tracker import Tracker


def poll(store: RunStore, run_id: str, timeout_s: float = 60.0) -> RunRecord | None:
    """The run once a flush with energy in it is on disk (None if that never happens)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(StoreError):
            record = store.get(run_id)
            if record.energy_j > 0:
                return record
        time.sleep(0.05)
    return None


def test_the_first_flush_holds_the_first_sample(settings: Settings) -> None:
    flushed = dataclasses.replace(settings, flush_interval_s=3600.0)
    tracker = Tracker(flushed, zone="DE", meters=[FakeMeter(100.0)], provider=StaticIntensity())
    tracker.start()
    try:
        with RunStore.for_settings(flushed, read_only=True) as store:
            seen = poll(store, tracker.run_id)
    finally:
        tracker.stop()
    assert seen is not None
    assert seen.status == "running"
    assert seen.co2e_g is not None


def test_a_process_tree_attached_later_counts_the_whole_command() -> None:
    tree = ProcessTreeCpu()
    assert tree.sample() == 0.0  # nothing attached yet
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass",
        ]
    )
    try:
        # wait until it exited, but leave it unreaped so its CPU time can still be read
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        tree.attach(child.pid)
        used_s = tree.sample()
    finally:
        child.wait()
    assert used_s >= 0.3


class OutageThenSlow(StaticIntensity):
    """A grid API that fails at start, then answers only when released (a slow network)."""

    def __init__(self) -> None:
        super().__init__(200.0)
        self.calls = 0
        self.release = threading.Event()

    def history(self, zone: str, start_s: float, end_s: float) -> IntensitySeries:
        self.calls += 1
        if self.calls == 1:
            raise ProviderError("grid API down")
        self.release.wait(60)
        return super().history(zone, start_s, end_s)


def test_a_slow_grid_api_never_holds_up_sampling_or_flushes(settings: Settings) -> None:
    flushed = dataclasses.replace(settings, flush_interval_s=3600.0)
    provider = OutageThenSlow()
    tracker = Tracker(flushed, zone="DE", meters=[FakeMeter(100.0)], provider=provider)
    tracker.start()
    try:
        with RunStore.for_settings(flushed, read_only=True) as store:
            seen = poll(store, tracker.run_id)  # while the retry still hangs
    finally:
        provider.release.set()
        record = tracker.stop()
    assert seen is not None, "sampling waited for the grid API"
    assert seen.emissions is None  # no intensity yet: energy is kept, CO2e follows
    assert record.co2e_g is not None
    assert any("unavailable at start" in w for w in record.warnings)


def test_a_finished_root_never_reads_less_than_the_os_reported() -> None:
    tree = ProcessTreeCpu()
    tree.finish(1.5)  # e.g. wait4's rusage of a command reaped between two samples
    assert tree.sample() == 1.5
    tree.finish(1.0)  # never goes back
    assert tree.sample() == 1.5
