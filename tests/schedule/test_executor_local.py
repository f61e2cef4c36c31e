"""The scheduler with the local executor: waiting for slots, measuring, pause/resume, exit codes."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from greenforge.config import Settings, load_settings
from greenforge.errors import ConfigError, UnknownNameError
from greenforge.report.store import RunStore
from greenforge.schedule.executors import create_executor, executor_names
from greenforge.schedule.executors.base import (
    KILLED_EXIT_CODE,
    METADATA_KEY,
    SlotOutcome,
    SlotSpec,
    supervise,
)
from greenforge.schedule.executors.local import LocalExecutor
from greenforge.schedule.queue import JobQueue, PlannedSlot, PlanSummary, QueuedJob
from greenforge.schedule.runner import Scheduler

TORCH_LOOP = textwrap.dedent(
    """
    import sys, time
    from greenforge.schedule.checkpoint import Checkpointer

    ckpt = Checkpointer()
    ckpt.install()              # before the slow torch import: a pause signal is never lost
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.arange(32, dtype=torch.float32).reshape(8, 4) / 32
    y = x.sum(dim=1, keepdim=True)
    total = int(sys.argv[1])
    start = ckpt.restore(model, opt)
    with open("log.txt", "a") as log:
        log.write(f"start {start}\\n")
    for step in range(start, total):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
        time.sleep(0.1 if start == 0 else 0.0)  # only the first run must outlast its slot
        if ckpt.pause_requested:
            ckpt.save(model, opt, step=step + 1)
            with open("log.txt", "a") as log:
                log.write(f"paused {step + 1}\\n")
            ckpt.exit_paused()
    torch.save(model.state_dict(), "final.pt")
    ckpt.uninstall()
    """
)


def _reference_model(steps: int) -> torch.nn.Linear:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.arange(32, dtype=torch.float32).reshape(8, 4) / 32
    y = x.sum(dim=1, keepdim=True)
    for _ in range(steps):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    return model


class FakeTime:
    """A clock and a sleeper that only advance when slept on."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s
        self.slept_s: list[float] = []

    def clock(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.slept_s.append(seconds)
        self.now_s += seconds


def _settings() -> Settings:
    return load_settings(zone="GB")


def _plan(*slots: tuple[float, float], saving_pct: float = 40.0) -> PlanSummary:
    return PlanSummary(
        slots=tuple(PlannedSlot(a, b, "GB") for a, b in slots),
        expected_co2e_g=6.0,
        run_now_co2e_g=10.0,
        saving_pct=saving_pct,
        forecast_source="embedded:profile-2021-2023:GB",
    )


def _enqueue(
    queue: JobQueue,
    argv: list[str],
    cwd: Path,
    plan: PlanSummary,
    *,
    interruptible: bool = False,
    grace_s: float = 20.0,
) -> QueuedJob:
    return queue.enqueue(
        name="job",
        argv=argv,
        cwd=cwd,
        executor="local",
        job={"duration_s": 10.0, "interruptible": interruptible},
        plan=plan,
        options={"pause_signal": "SIGTERM", "grace_s": grace_s, "env": {}},
    )


def test_the_registry_lists_the_executors_and_names_the_valid_ones() -> None:
    assert executor_names() == ["local", "ray", "slurm"]
    assert isinstance(create_executor("local", _settings()), LocalExecutor)
    with pytest.raises(UnknownNameError, match="local, ray, slurm"):
        create_executor("kubernetes", _settings())


def test_the_scheduler_waits_for_the_slot_then_runs_and_records_the_saving(
    tmp_path: Path,
) -> None:
    settings = _settings()
    fake = FakeTime(time.time())
    queue = JobQueue.for_home(settings.resolved_home())
    start_s = fake.now_s + 3 * 3600
    job = _enqueue(
        queue,
        [sys.executable, "-c", "open('out.txt', 'w').write('ran')"],
        tmp_path,
        _plan((start_s, start_s + 60)),
    )
    waits: list[float] = []
    scheduler = Scheduler(
        queue,
        settings,
        clock=fake.clock,
        sleep=fake.sleep,
        on_wait=lambda j, slot, left_s: waits.append(left_s),
    )

    final = scheduler.run_job(job.id)

    assert final.state == "done"
    assert final.exit_code == 0
    assert (tmp_path / "out.txt").read_text() == "ran"
    assert sum(fake.slept_s) == pytest.approx(3 * 3600)
    assert max(fake.slept_s) <= scheduler.max_sleep_s
    assert waits[0] == pytest.approx(3 * 3600)
    assert waits == sorted(waits, reverse=True)
    with RunStore.for_settings(settings) as store:
        record = store.get(final.run_ids[0])
    meta = record.metadata[METADATA_KEY]
    assert meta["saving_pct"] == 40.0
    assert meta["expected_co2e_g"] == 6.0
    assert meta["run_now_co2e_g"] == 10.0
    assert meta["forecast_source"] == "embedded:profile-2021-2023:GB"
    assert meta["job_id"] == job.id
    assert record.status == "completed"
    assert record.energy_j > 0


def test_the_commands_exit_code_is_kept_and_the_job_fails(tmp_path: Path) -> None:
    settings = _settings()
    queue = JobQueue.for_home(settings.resolved_home())
    now = time.time()
    job = _enqueue(
        queue, [sys.executable, "-c", "raise SystemExit(3)"], tmp_path, _plan((now, now + 60))
    )

    final = Scheduler(queue, settings).run_job(job.id)

    assert final.state == "failed"
    assert final.exit_code == 3
    assert "exited 3" in final.message


def test_a_job_cancelled_while_waiting_never_runs(tmp_path: Path) -> None:
    settings = _settings()
    queue = JobQueue.for_home(settings.resolved_home())
    fake = FakeTime(time.time())
    job = _enqueue(
        queue,
        [sys.executable, "-c", "open('out.txt', 'w').write('ran')"],
        tmp_path,
        _plan((fake.now_s + 3600, fake.now_s + 7200)),
    )

    def cancel_then_sleep(seconds: float) -> None:
        queue.cancel(job.id)
        fake.sleep(seconds)

    final = Scheduler(queue, settings, clock=fake.clock, sleep=cancel_then_sleep).run_job(job.id)

    assert final.state == "cancelled"
    assert final.attempts == 0
    assert not (tmp_path / "out.txt").exists()


def test_exit_99_from_a_job_that_is_not_interruptible_is_a_failure(tmp_path: Path) -> None:
    settings = _settings()
    queue = JobQueue.for_home(settings.resolved_home())
    now = time.time()
    job = _enqueue(
        queue, [sys.executable, "-c", "raise SystemExit(99)"], tmp_path, _plan((now, now + 60))
    )

    final = Scheduler(queue, settings).run_job(job.id)

    assert final.state == "failed"
    assert final.exit_code == 99
    assert "not interruptible" in final.message


def test_a_job_that_pauses_in_its_last_slot_is_resumed_until_it_finishes(tmp_path: Path) -> None:
    settings = _settings()
    queue = JobQueue.for_home(settings.resolved_home())
    script = "import os, sys; sys.exit(0 if os.environ['GREENFORGE_RESUME'] == '1' else 99)"
    now = time.time()
    job = _enqueue(
        queue, [sys.executable, "-c", script], tmp_path, _plan((now, now + 60)), interruptible=True
    )

    final = Scheduler(queue, settings).run_job(job.id)

    assert final.state == "done"
    assert final.attempts == 2
    assert len(final.run_ids) == 2


def test_run_pending_runs_every_job_earliest_slot_first(tmp_path: Path) -> None:
    settings = _settings()
    queue = JobQueue.for_home(settings.resolved_home())
    fake = FakeTime(time.time())
    order = tmp_path / "order.txt"
    jobs = []
    for label, delay_s in (("late", 7200.0), ("early", 3600.0)):
        code = f"open({str(order)!r}, 'a').write({label!r} + ' ')"
        start = fake.now_s + delay_s
        jobs.append(
            _enqueue(queue, [sys.executable, "-c", code], tmp_path, _plan((start, start + 60)))
        )

    finished = Scheduler(queue, settings, clock=fake.clock, sleep=fake.sleep).run_pending()

    assert [j.id for j in finished] == [jobs[1].id, jobs[0].id]
    assert order.read_text().split() == ["early", "late"]
    assert all(j.state == "done" for j in finished)


def test_the_supervisor_kills_a_job_that_ignores_the_pause_signal(tmp_path: Path) -> None:
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    spec = SlotSpec(
        job_id=1,
        name="stubborn",
        argv=(sys.executable, "-c", script),
        cwd=str(tmp_path),
        slot_index=0,
        n_slots=2,
        start_s=time.time(),
        end_s=time.time() + 1.0,
        zone="GB",
        checkpoint_dir=str(tmp_path / "ckpt"),
        resume=False,
        grace_s=0.5,
    )
    assert supervise(spec) == KILLED_EXIT_CODE


def test_slot_specs_round_trip_through_json(tmp_path: Path) -> None:
    spec = SlotSpec(
        job_id=3,
        name="n",
        argv=("a", "b"),
        cwd="/",
        slot_index=1,
        n_slots=2,
        start_s=1.0,
        end_s=None,
        zone="DE",
        checkpoint_dir=str(tmp_path),
        resume=True,
        env={"A": "1"},
        metadata={"saving_pct": 3.0},
    )
    assert SlotSpec.from_json(spec.to_json()) == spec
    env = spec.protocol_env()
    assert env["GREENFORGE_RESUME"] == "1"
    assert env["GREENFORGE_CHECKPOINT_DIR"] == str(tmp_path)
    assert env["GREENFORGE_PAUSE_SIGNAL"] == "SIGTERM"
    assert "GREENFORGE_SLOT_END_S" not in env


def test_an_interruptible_torch_loop_pauses_at_slot_end_and_resumes_with_its_state(
    tmp_path: Path,
) -> None:
    settings = _settings()
    queue = JobQueue.for_home(settings.resolved_home())
    (tmp_path / "train.py").write_text(TORCH_LOOP, encoding="utf-8")
    total_steps = 40  # 4 s of steps after the import: the 4 s first slot ends mid-training
    now = time.time()
    job = _enqueue(
        queue,
        [sys.executable, "train.py", str(total_steps)],
        tmp_path,
        _plan((now, now + 4.0), (now + 4.5, now + 600.0)),
        interruptible=True,
    )

    final = Scheduler(queue, settings).run_job(job.id)

    assert final.state == "done", final.message
    assert final.attempts == 2
    log = (tmp_path / "log.txt").read_text().split("\n")
    assert log[0] == "start 0"
    paused_at = int(log[1].split()[1])
    assert 0 < paused_at < total_steps
    assert log[2] == f"start {paused_at}"
    resumed = torch.nn.Linear(4, 1)
    resumed.load_state_dict(torch.load(tmp_path / "final.pt", weights_only=True))
    reference = _reference_model(total_steps)
    for a, b in zip(reference.parameters(), resumed.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    with RunStore.for_settings(settings) as store:
        slots = [store.get(r).metadata[METADATA_KEY]["slot_index"] for r in final.run_ids]
    assert slots == [0, 1]


def test_a_slot_that_starts_after_its_end_is_skipped_not_run(tmp_path: Path) -> None:
    spec = SlotSpec(
        job_id=1,
        name="late",
        argv=(sys.executable, "-c", "open('ran.txt', 'w').write('yes')"),
        cwd=str(tmp_path),
        slot_index=0,
        n_slots=2,
        start_s=time.time() - 20,
        end_s=time.time() - 10,
        zone="GB",
        checkpoint_dir=str(tmp_path / "ckpt"),
        resume=False,
    )
    assert supervise(spec) == 99
    assert not (tmp_path / "ran.txt").exists()


class UnreachableCluster:
    """An executor whose cluster refuses every slot (as a Ray cluster without the zone)."""

    name = "unreachable"
    waits_for_start = False

    def run_slot(self, spec: SlotSpec) -> SlotOutcome:
        raise ConfigError(f"no node offers zone {spec.zone!r}")

    def cancel(self, external_id: str) -> None:
        pass


def test_a_job_whose_executor_fails_is_marked_failed_and_the_others_still_run(
    tmp_path: Path,
) -> None:
    settings = _settings()
    queue = JobQueue.for_home(settings.resolved_home())
    now = time.time()
    broken = queue.enqueue(
        name="broken",
        argv=["true"],
        cwd=tmp_path,
        executor="unreachable",
        job={"duration_s": 1.0, "interruptible": False},
        plan=_plan((now, now + 60)),
    )
    fine = _enqueue(queue, [sys.executable, "-c", "pass"], tmp_path, _plan((now + 1, now + 60)))
    scheduler = Scheduler(queue, settings, executors={"unreachable": UnreachableCluster()})

    finished = scheduler.run_pending()

    assert [(j.id, j.state) for j in finished] == [(broken.id, "failed"), (fine.id, "done")]
    assert "no node offers zone 'GB'" in queue.get(broken.id).message
