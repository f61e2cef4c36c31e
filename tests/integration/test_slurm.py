"""The Slurm executor against a real single-node Slurm cluster started by this module.

The fixture writes a private ``slurm.conf`` (localhost, free ports, state in a temp dir),
makes sure ``munged`` runs, starts ``slurmctld`` and ``slurmd`` and stops them afterwards.
It skips only when the Slurm binaries are not installed (``scripts/ci-services.sh`` installs
them in CI); the generated script is checked in tests/schedule/test_executor_slurm.py anyway.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from greenforge.cli.app import main
from greenforge.config import load_settings
from greenforge.report.store import RunStore
from greenforge.schedule.executors.base import METADATA_KEY, SlotSpec
from greenforge.schedule.executors.slurm import SlurmExecutor
from greenforge.schedule.queue import JobQueue, PlannedSlot, PlanSummary
from greenforge.schedule.runner import Scheduler

pytestmark = pytest.mark.integration

BINARIES = ("slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "sinfo", "munged", "munge")
MISSING = [b for b in BINARIES if shutil.which(b) is None]

COUNTER_JOB = textwrap.dedent(
    """
    import json, os, signal, sys, time
    state = os.path.join(os.environ["GREENFORGE_CHECKPOINT_DIR"], "state.json")
    paused = []
    signal.signal(signal.SIGTERM, lambda *_: paused.append(True))
    count = 0
    if os.environ["GREENFORGE_RESUME"] == "1" and os.path.exists(state):
        count = json.load(open(state))["count"]
    with open("starts.txt", "a") as log:
        log.write(f"{time.time()} {count}\\n")
    while count < int(sys.argv[1]):
        time.sleep(0.1 if os.environ['GREENFORGE_RESUME'] == '0' else 0.01)
        count += 1
        if paused:
            json.dump({"count": count}, open(state, "w"))
            sys.exit(99)
    open("result.txt", "w").write(str(count))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _munge_works() -> bool:
    try:
        token = subprocess.run(["munge", "-n"], capture_output=True, timeout=10, check=False)
        if token.returncode != 0:
            return False
        back = subprocess.run(
            ["unmunge"], input=token.stdout, capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return back.returncode == 0


def _ensure_munged() -> None:
    if _munge_works():
        return
    if os.geteuid() == 0:
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=False, timeout=30)
    else:
        subprocess.run(["munged"], check=False, timeout=30)
    deadline = time.monotonic() + 20
    while not _munge_works():
        if time.monotonic() > deadline:
            pytest.fail("munged did not start; run scripts/ci-services.sh as root first")
        time.sleep(0.2)


def _write_conf(root: Path) -> Path:
    user = getpass.getuser()
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    conf = root / "slurm.conf"
    conf.write_text(
        textwrap.dedent(
            f"""\
            ClusterName=greenforge-test
            SlurmctldHost=localhost
            SlurmctldPort={_free_port()}
            SlurmdPort={_free_port()}
            SlurmUser={user}
            SlurmdUser={user}
            AuthType=auth/munge
            StateSaveLocation={root / "state"}
            SlurmdSpoolDir={root / "spool"}
            SlurmctldPidFile={root / "slurmctld.pid"}
            SlurmdPidFile={root / "slurmd.pid"}
            SlurmctldLogFile={root / "log" / "slurmctld.log"}
            SlurmdLogFile={root / "log" / "slurmd.log"}
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            SchedulerType=sched/backfill
            SchedulerParameters=sched_interval=1,bf_interval=1
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core
            ReturnToService=2
            MpiDefault=none
            SwitchType=switch/none
            MinJobAge=600
            NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
            PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
            """
        ),
        encoding="utf-8",
    )
    return conf


def _stop(pid_file: Path) -> None:
    """Stop a daemon by its pid file: SIGTERM, then SIGKILL if it lingers."""
    try:
        proc = psutil.Process(int(pid_file.read_text().strip()))
    except (OSError, ValueError, psutil.NoSuchProcess):
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except psutil.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running single-node Slurm; yields the environment its client commands need."""
    if MISSING:
        pytest.skip(f"Slurm is not installed (missing {', '.join(MISSING)})")
    _ensure_munged()
    root = tmp_path_factory.mktemp("slurm")
    conf = _write_conf(root)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    try:
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([daemon, "-f", str(conf)], env=env, check=True, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            info = subprocess.run(
                ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, check=False
            )
            if info.stdout.strip() == "idle":
                break
            if time.monotonic() > deadline:
                log = (root / "log" / "slurmctld.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"Slurm did not become idle ({info.stdout}{info.stderr}): {log}")
            time.sleep(0.3)
        yield env
    finally:
        try:
            _stop(root / "slurmd.pid")
        finally:
            _stop(root / "slurmctld.pid")


def _executor(env: dict[str, str]) -> SlurmExecutor:
    return SlurmExecutor(load_settings(zone="GB"), env=env, poll_s=0.3)


def test_a_slot_is_held_by_slurm_until_its_begin_time_and_measured(
    slurm_env: dict[str, str], tmp_path: Path
) -> None:
    workdir = tmp_path / "my project"  # paths with spaces reach Slurm intact
    workdir.mkdir()
    start_s = time.time() + 2.0
    spec = SlotSpec(
        job_id=1,
        name="when",
        argv=(sys.executable, "-c", "import time; open('t.txt', 'w').write(str(time.time()))"),
        cwd=str(workdir),
        slot_index=0,
        n_slots=1,
        start_s=start_s,
        end_s=None,
        zone="GB",
        checkpoint_dir=str(tmp_path / "ckpt dir"),
        resume=False,
        metadata={"saving_pct": 12.5},
    )

    outcome = _executor(slurm_env).run_slot(spec)

    assert outcome.exit_code == 0, outcome.message
    assert outcome.external_id is not None
    assert outcome.external_id.isdigit()
    assert float((workdir / "t.txt").read_text()) >= start_s - 1.0  # --begin has 1 s steps
    assert (tmp_path / "ckpt dir" / "slurm-slot-0.out").is_file()
    assert outcome.run_id is not None
    with RunStore.for_settings(load_settings()) as store:
        record = store.get(outcome.run_id)
    assert record.metadata[METADATA_KEY]["saving_pct"] == 12.5


def test_an_interruptible_job_pauses_and_resumes_across_two_batch_jobs(
    slurm_env: dict[str, str], tmp_path: Path
) -> None:
    settings = load_settings(zone="GB")
    queue = JobQueue.for_home(settings.resolved_home())
    (tmp_path / "count.py").write_text(COUNTER_JOB, encoding="utf-8")
    now = time.time()
    plan = PlanSummary(
        slots=(PlannedSlot(now + 1, now + 7, "GB"), PlannedSlot(now + 8, now + 120, "GB")),
        expected_co2e_g=1.0,
        run_now_co2e_g=2.0,
        saving_pct=50.0,
        forecast_source="test",
    )
    job = queue.enqueue(
        name="count",
        argv=[sys.executable, "count.py", "80"],
        cwd=tmp_path,
        executor="slurm",
        job={"duration_s": 6.0, "interruptible": True},
        plan=plan,
        options={"pause_signal": "SIGTERM", "grace_s": 20.0, "env": {}},
    )
    scheduler = Scheduler(queue, settings, executors={"slurm": _executor(slurm_env)})

    final = scheduler.run_job(job.id)

    assert final.state == "done", final.message
    assert final.attempts == 2
    assert len(set(final.external_ids)) == 2
    starts = [line.split() for line in (tmp_path / "starts.txt").read_text().splitlines()]
    assert starts[0][1] == "0"
    assert 0 < int(starts[1][1]) < 80  # resumed from the saved count
    assert float(starts[1][0]) >= now + 7.0
    assert (tmp_path / "result.txt").read_text() == "80"
    state = json.loads((scheduler.checkpoint_dir(job.id) / "state.json").read_text())
    assert state["count"] == int(starts[1][1])


def test_a_waiting_slot_can_be_held_released_and_cancelled(
    slurm_env: dict[str, str], tmp_path: Path
) -> None:
    executor = _executor(slurm_env)
    spec = SlotSpec(
        job_id=2,
        name="later",
        argv=("true",),
        cwd=str(tmp_path),
        slot_index=0,
        n_slots=1,
        start_s=time.time() + 3600,
        end_s=None,
        zone="GB",
        checkpoint_dir=str(tmp_path / "ckpt"),
        resume=False,
    )
    job_id = executor.submit(spec)

    executor.hold(job_id)
    held = executor.job_info(job_id)
    executor.release(job_id)
    released = executor.job_info(job_id)
    executor.cancel(job_id)
    deadline = time.monotonic() + 20
    while (info := executor.job_info(job_id)) is not None and info["JobState"] != "CANCELLED":
        assert time.monotonic() < deadline
        time.sleep(0.2)

    assert held is not None
    assert held["JobState"] == "PENDING"
    assert held["Reason"] in {"JobHeldUser", "JobHeldAdmin"}
    assert released is not None
    assert released["Reason"] not in {"JobHeldUser", "JobHeldAdmin"}


def test_queue_cancel_reaches_a_slot_that_slurm_is_holding(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_CONF", slurm_env["SLURM_CONF"])
    settings = load_settings(zone="GB")
    queue = JobQueue.for_home(settings.resolved_home())
    later = time.time() + 3600
    job = queue.enqueue(
        name="later",
        argv=["true"],
        cwd=tmp_path,
        executor="slurm",
        job={"duration_s": 60.0, "interruptible": False},
        plan=PlanSummary(
            slots=(PlannedSlot(later, later + 60, "GB"),),
            expected_co2e_g=1.0,
            run_now_co2e_g=2.0,
            saving_pct=50.0,
            forecast_source="test",
        ),
    )
    scheduler = Scheduler(queue, settings, executors={"slurm": _executor(slurm_env)})
    finals: list[str] = []
    worker = threading.Thread(target=lambda: finals.append(scheduler.run_job(job.id).state))
    worker.start()
    deadline = time.monotonic() + 30
    while not queue.get(job.id).external_ids:
        assert time.monotonic() < deadline, "the slot was never submitted"
        time.sleep(0.1)
    slurm_id = queue.get(job.id).external_ids[0]

    assert main(["queue", "cancel", str(job.id)]) == 0
    worker.join(timeout=60)

    assert finals == ["cancelled"]
    info = _executor(slurm_env).job_info(slurm_id)
    assert info is None or info["JobState"] == "CANCELLED"
