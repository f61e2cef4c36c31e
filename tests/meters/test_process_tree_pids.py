"""The process tree is found from /proc/<pid>/task/<tid>/children, not a scan of every process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from greenforge.meters.model import ProcessTreeCpu, descendant_pids

TREE = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)"


def test_descendants_match_psutils_full_scan() -> None:
    proc = subprocess.Popen([sys.executable, "-c", TREE])
    try:
        deadline = time.monotonic() + 20
        while len(psutil.Process(proc.pid).children(recursive=True)) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        mine = os.getpid()
        expected = {p.pid for p in psutil.Process(mine).children(recursive=True)}
        found = descendant_pids(mine)
        assert found is not None
        assert set(found) == expected
        assert len(expected) >= 2  # the child and its grandchild
        tree = ProcessTreeCpu(proc.pid)
        tree.sample()
        assert tree.rss_bytes() > 0
    finally:
        for p in psutil.Process(proc.pid).children(recursive=True):
            p.kill()
        proc.kill()
        proc.wait()


def test_without_children_files_it_says_so(tmp_path: Path) -> None:
    (tmp_path / "42" / "task" / "42").mkdir(parents=True)  # a kernel without the files
    assert descendant_pids(42, proc_root=str(tmp_path)) is None
    (tmp_path / "42" / "task" / "42" / "children").write_text("43 ")
    (tmp_path / "43" / "task" / "43").mkdir(parents=True)
    (tmp_path / "43" / "task" / "43" / "children").write_text("")
    assert descendant_pids(42, proc_root=str(tmp_path)) == [43]
