"""``greenforge run`` loses nothing: a killed parent takes its command along, a command that
cannot start is a shell-like error, and the record spans the command's whole life."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from greenforge.cli.app import main
from greenforge.config import load_settings
from greenforge.report.store import RunStore

PY = sys.executable
GREENFORGE = [PY, "-c", "import sys; from greenforge.cli.app import main; sys.exit(main())"]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GREENFORGE_HOME", str(tmp_path / "home"))
    for var in ("GREENFORGE_ZONE", "RANK", "LOCAL_RANK", "SLURM_PROCID", "GREENFORGE_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


def runs(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["runs", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, list)
    return data


def wait_until(predicate: object, timeout_s: float = 60.0) -> bool:
    """Poll ``predicate()`` until true or the (generous) deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_a_sigkilled_greenforge_run_takes_its_command_along_and_the_run_is_incomplete(
    home: Path,
) -> None:
    env = {**os.environ, "GREENFORGE_INTERVAL_S": "0.05", "GREENFORGE_FLUSH_INTERVAL_S": "0.2"}
    parent = subprocess.Popen(
        [*GREENFORGE, "run", "--zone", "DE", "--", "sleep", "60"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        gf = psutil.Process(parent.pid)
        assert wait_until(lambda: any(c.name() == "sleep" for c in gf.children()))
        [child] = [c for c in gf.children() if c.name() == "sleep"]
        settings = load_settings(env={"GREENFORGE_HOME": str(home)})

        def flushed() -> bool:
            with RunStore.for_settings(settings, read_only=True) as store:
                return any(r.energy_j > 0 for r in store.list())

        assert wait_until(flushed)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()

    assert os.getpgid(child.pid) == child.pid  # not in a terminal: its own process group
    _, alive = psutil.wait_procs([child], timeout=10)
    for proc in alive:  # clean up before failing
        with contextlib.suppress(psutil.Error):
            proc.kill()
    assert not alive, "the command kept running after greenforge run was killed"

    with RunStore.for_settings(load_settings(env={"GREENFORGE_HOME": str(home)})) as store:
        [record] = store.list()
    assert record.status == "incomplete"
    assert record.energy_j > 0
    assert any("did not finish" in w for w in record.warnings)


def test_sigterm_reaches_the_commands_whole_process_group(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    script = f"sleep 60 & echo $! > {marker}; wait"
    env = {**os.environ, "GREENFORGE_INTERVAL_S": "0.05"}
    parent = subprocess.Popen(
        [*GREENFORGE, "run", "--zone", "DE", "--", "sh", "-c", script],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: marker.exists() and marker.read_text().strip() != "")
        grandchild = psutil.Process(int(marker.read_text()))
        parent.send_signal(signal.SIGTERM)
        _, err = parent.communicate(timeout=60)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 128 + signal.SIGTERM  # the shell's exit code, kept
    _, alive = psutil.wait_procs([grandchild], timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    assert not alive, "a grandchild kept running after SIGTERM to greenforge run"
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "mode", "code", "needle"),
    [
        (None, 0o755, 127, "command not found"),
        ("#!/bin/sh\necho hi\n", 0o644, 126, "permission denied"),
        ("\x7fELF this is not a program for any machine\n", 0o755, 126, "not a valid program"),
        ("#!/no/such/interpreter\n", 0o755, 127, "command not found"),
    ],
)
def test_a_command_that_cannot_start_is_a_shell_like_error_and_stores_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    mode: int,
    code: int,
    needle: str,
) -> None:
    program = tmp_path / "prog"
    if content is not None:
        program.write_text(content)
        program.chmod(mode)

    assert main(["run", "--zone", "DE", "--", str(program)]) == code

    err = " ".join(capsys.readouterr().err.split())  # however the terminal wrapped it
    assert needle in err
    assert "Traceback" not in err
    assert runs(capsys) == []


def test_the_duration_covers_the_whole_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--zone", "DE", "--interval", "0.05", "--", "sleep", "0.2"]) == 0
    [run] = runs(capsys)
    assert float(run["duration_s"]) >= 0.2  # type: ignore[arg-type]


def test_process_attribution_is_the_default_and_charges_only_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    burner = subprocess.Popen([PY, "-c", "while True: pass"])
    try:
        assert main(["run", "--zone", "DE", "--interval", "0.1", "--", "sleep", "1"]) == 0
        assert (
            main(
                [
                    "run",
                    "--zone",
                    "DE",
                    "--interval",
                    "0.1",
                    "--",
                    PY,
                    "-c",
                    "import time; t = time.process_time()\nwhile time.process_time() - t < 1: pass",
                ]
            )
            == 0
        )
    finally:
        burner.kill()
        burner.wait()
    capsys.readouterr()
    assert main(["runs", "export", "--format", "json"]) == 0
    busy, sleeper = json.loads(capsys.readouterr().out)  # newest first
    cpu_j = {
        r["name"]: sum(c["energy_j"] for c in r["components"] if c["component"].startswith("cpu"))
        for r in (busy, sleeper)
    }
    assert sleeper["metadata"]["attribution"] == "process"
    # the sleeper used next to no CPU time: next to nothing of the busy machine is its cost
    assert cpu_j["sleep"] < 0.05 * cpu_j[busy["name"]]
    assert cpu_j["sleep"] < 1.0


def test_runs_show_and_csv_export_say_which_attribution_was_used(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--zone", "DE", "--", PY, "-c", "pass"]) == 0
    [run] = runs(capsys)
    assert main(["runs", "show", str(run["id"])]) == 0
    assert "process" in capsys.readouterr().out
    assert main(["runs", "export", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[:2]
    assert "attribution" in header.split(",")
    assert "process" in row.split(",")


@pytest.mark.parametrize("in_container", [True, False])
def test_machine_attribution_in_a_container_warns_once_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], in_container: bool
) -> None:
    from greenforge.meters import rapl

    monkeypatch.setenv("GREENFORGE_ATTRIBUTION", "machine")
    monkeypatch.setattr(rapl, "in_container", lambda: in_container)  # the host is the edge here

    assert main(["run", "--zone", "DE", "--", PY, "-c", "pass"]) == 0

    lines = [line for line in capfd.readouterr().err.splitlines() if "container" in line]
    if in_container:
        assert len(lines) == 1
        assert "attribution = 'process'" in lines[0]
    else:
        assert lines == []


def test_a_sigkilled_greenforge_run_takes_the_commands_whole_tree_along(
    home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "grandchild.pid"
    script = f"sleep 60 & echo $! > {marker}; wait"  # sh dies of SIGTERM, sleep would not
    parent = subprocess.Popen(
        [*GREENFORGE, "run", "--zone", "DE", "--", "sh", "-c", script],
        env={**os.environ, "GREENFORGE_INTERVAL_S": "0.05"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: marker.exists() and marker.read_text().strip() != "")
        grandchild = psutil.Process(int(marker.read_text()))
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    _, alive = psutil.wait_procs([grandchild], timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    assert not alive, "a grandchild kept running unmeasured after greenforge run was killed"


def test_a_normal_end_leaves_no_watchdog_behind(capsys: pytest.CaptureFixture[str]) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    assert main(["run", "--zone", "DE", "--", "sleep", "0.1"]) == 0
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert after <= before


def test_a_stop_signal_before_the_command_exists_is_held_and_delivered_to_it() -> None:
    from greenforge.cli.run import _forward_termination

    with _forward_termination() as register:
        os.kill(os.getpid(), signal.SIGTERM)  # e.g. while the tracker starts: not lost
        child = subprocess.Popen(["sleep", "60"], process_group=0)
        register(child)
        assert child.wait(timeout=30) == -signal.SIGTERM


def test_a_command_that_ends_between_two_samples_is_charged_its_cpu_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.05: pass"
    for _ in range(5):  # each command ends long before the first periodic sample (30 s)
        assert main(["run", "--zone", "DE", "--interval", "30", "--", PY, "-c", burn]) == 0
    capsys.readouterr()
    assert main(["runs", "export", "--format", "json"]) == 0
    for run in json.loads(capsys.readouterr().out):
        cpu_j = sum(c["energy_j"] for c in run["components"] if c["component"].startswith("cpu"))
        assert cpu_j > 0, "the command's CPU time was lost"
