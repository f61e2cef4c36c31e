"""The persistent job queue: rows, states, ownership, and surviving a killed scheduler."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from greenforge.errors import ConfigError
from greenforge.schedule.queue import JobQueue, PlannedSlot, PlanSummary


def _plan(start_s: float, length_s: float = 60.0, zone: str = "GB") -> PlanSummary:
    return PlanSummary(
        slots=(PlannedSlot(start_s, start_s + length_s, zone),),
        expected_co2e_g=10.0,
        run_now_co2e_g=20.0,
        saving_pct=50.0,
        forecast_source="test:GB",
        advice=("a note",),
    )


def _enqueue(queue: JobQueue, start_s: float = 1000.0, cwd: Path = Path()) -> int:
    job = queue.enqueue(
        name="train",
        argv=["python", "train.py"],
        cwd=cwd,
        executor="local",
        job={"duration_s": 60.0, "interruptible": False},
        plan=_plan(start_s),
    )
    return job.id


def test_an_enqueued_job_is_stored_with_command_plan_and_state(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "q.sqlite", clock=lambda: 500.0)
    job_id = _enqueue(queue)

    job = queue.get(job_id)
    assert job.state == "queued"
    assert job.argv == ("python", "train.py")
    assert job.attempts == 0
    assert job.next_start_s == 1000.0
    assert job.plan.saving_pct == 50.0
    assert job.created_s == 500.0
    assert job.to_dict()["plan"]["slots"][0]["zone"] == "GB"


def test_the_queue_uses_a_write_ahead_log(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "q.sqlite")
    with contextlib.closing(sqlite3.connect(queue.path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_second_queue_object_sees_the_same_jobs(tmp_path: Path) -> None:
    first = JobQueue(tmp_path / "q.sqlite")
    job_id = _enqueue(first)
    assert [j.id for j in JobQueue(tmp_path / "q.sqlite").list()] == [job_id]


def test_plan_summaries_round_trip_through_dicts() -> None:
    plan = _plan(123.0)
    assert PlanSummary.from_dict(plan.to_dict()) == plan
    assert plan.metadata()["saving_pct"] == 50.0


def test_list_filters_by_state_and_rejects_unknown_states(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "q.sqlite")
    a, b = _enqueue(queue), _enqueue(queue)
    queue.update(b, state="done")
    assert [j.id for j in queue.list(states=["queued"])] == [a]
    with pytest.raises(ConfigError, match="finished"):
        queue.list(states=["finished"])


def test_cancel_moves_an_active_job_to_cancelled_but_not_a_finished_one(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "q.sqlite")
    job_id = _enqueue(queue)
    assert queue.cancel(job_id).state == "cancelled"
    with pytest.raises(ConfigError, match="already cancelled"):
        queue.cancel(job_id)


def test_an_unknown_job_id_says_how_to_find_the_ids(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "q.sqlite")
    with pytest.raises(ConfigError, match="queue list"):
        queue.get(42)


def test_an_empty_command_cannot_be_queued(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "q.sqlite")
    with pytest.raises(ConfigError, match="empty command"):
        queue.enqueue(name="x", argv=[], cwd=".", executor="local", job={}, plan=_plan(0.0))


def test_a_job_held_by_a_live_worker_cannot_be_claimed_by_another(tmp_path: Path) -> None:
    alive = {111}
    queue = JobQueue(tmp_path / "q.sqlite", pid_alive=lambda pid: pid in alive)
    job_id = _enqueue(queue)

    first = queue.claim(job_id, owner_pid=111)
    assert first is not None
    assert first.state == "waiting"
    assert queue.claim(job_id, owner_pid=222) is None
    assert queue.due() == []


def test_jobs_of_a_dead_worker_are_recovered(tmp_path: Path) -> None:
    alive = {111}
    queue = JobQueue(tmp_path / "q.sqlite", pid_alive=lambda pid: pid in alive)
    waiting, running = _enqueue(queue), _enqueue(queue)
    queue.claim(waiting, owner_pid=111)
    queue.claim(running, owner_pid=111)
    queue.update(running, state="running")
    alive.clear()

    assert sorted(queue.recover_orphans()) == [waiting, running]
    assert queue.get(waiting).state == "waiting"
    assert queue.get(running).state == "queued"
    assert "retried" in queue.get(running).message
    assert [j.id for j in queue.due()] == [waiting, running]


def test_a_job_left_running_by_an_interrupted_worker_is_recovered(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "q.sqlite")
    job_id = _enqueue(queue)
    queue.claim(job_id)
    queue.update(job_id, state="running")
    queue.release(job_id)  # e.g. Ctrl-C: the worker let go while the slot ran

    assert queue.recover_orphans() == [job_id]
    assert queue.get(job_id).state == "queued"


def test_due_orders_by_next_slot_and_filters_by_time(tmp_path: Path) -> None:
    queue = JobQueue(tmp_path / "q.sqlite")
    late = _enqueue(queue, start_s=2000.0)
    early = _enqueue(queue, start_s=1000.0)
    assert [j.id for j in queue.due()] == [early, late]
    assert [j.id for j in queue.due(now_s=1500.0)] == [early]


def _worker(cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "greenforge", "queue", "run"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_a_job_survives_a_killed_scheduler_and_runs_after_restart(tmp_path: Path) -> None:
    from greenforge.config import load_settings

    queue = JobQueue.for_home(load_settings().resolved_home())
    marker = tmp_path / "ran.txt"
    job = queue.enqueue(
        name="marker",
        argv=[sys.executable, "-c", f"open({str(marker)!r}, 'w').write('yes')"],
        cwd=tmp_path,
        executor="local",
        job={"duration_s": 1.0, "interruptible": False},
        plan=_plan(time.time() + 3600.0, length_s=1.0),
    )

    first = _worker(tmp_path)
    try:
        deadline = time.monotonic() + 60
        while queue.get(job.id).owner_pid != first.pid:
            assert first.poll() is None, first.stderr.read() if first.stderr else b""
            assert time.monotonic() < deadline, "the scheduler never claimed the job"
            time.sleep(0.1)
    finally:
        first.kill()
        first.wait()
        if first.stderr is not None:
            first.stderr.close()

    after_kill = queue.get(job.id)
    assert after_kill.state == "waiting"
    assert not marker.exists()

    # the clean window arrives while no scheduler runs
    queue.update(job.id, plan=_plan(time.time() - 1.0, length_s=1.0))
    second = _worker(tmp_path)
    _, err = second.communicate(timeout=120)

    assert second.returncode == 0, err.decode()
    final = queue.get(job.id)
    assert final.state == "done"
    assert final.attempts == 1
    assert len(final.run_ids) == 1
    assert marker.read_text() == "yes"
