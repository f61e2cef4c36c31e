"""Plan a command, keep it in the persistent queue, wait for its clean slots and run them.

* Plans come from the one pipeline, :func:`greenforge.schedule.pipeline.make_plan`.
* :func:`enqueue_plan` stores the job, its plan and the planning options (forecast, files,
  PUE) in the :class:`~greenforge.schedule.queue.JobQueue`, so re-plans use the same data.
* :class:`Scheduler` runs queued jobs slot by slot on their executor, with an injected clock
  and sleeper (tests never wait hours), following the pause/resume protocol of
  :mod:`greenforge.schedule.checkpoint`. A job whose worker died is picked up by the next one.
  While a job waits for its first slot, the scheduler can re-plan it on the latest forecast
  every ``replan_every_s`` (never past its deadline); the run metadata records how often.

``python -m greenforge.schedule.runner supervise SPEC`` and ``... slot SPEC OUTCOME`` are the
entry points executors start (see :mod:`greenforge.schedule.executors.base`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from greenforge.config import Settings
from greenforge.errors import ConfigError, GreenForgeError, InfeasibleError
from greenforge.grid.provider import IntensityProvider
from greenforge.schedule.checkpoint import DEFAULT_PAUSE_SIGNAL, PAUSE_EXIT_CODE, signal_from_name
from greenforge.schedule.executors.base import (
    Executor,
    SlotOutcome,
    SlotSpec,
    SubmittingExecutor,
    create_executor,
    run_measured_slot,
    supervise,
)
from greenforge.schedule.job import Job
from greenforge.schedule.pipeline import PlanOptions, make_plan
from greenforge.schedule.planner import Plan
from greenforge.schedule.queue import (
    FINAL_STATES,
    JobQueue,
    PlannedSlot,
    PlanSummary,
    QueuedJob,
)
from greenforge.timeutil import utc_iso_seconds

DEFAULT_GRACE_S: Final[float] = 60.0
DEFAULT_REPLAN_EVERY_S: Final[float] = 3600.0
"""How often ``greenforge schedule`` re-plans a waiting job on a newer forecast."""


class ReplanWarning(UserWarning):
    """A live re-plan could not get a forecast; the job keeps the plan it had."""


# -- planning (the plan itself: greenforge.schedule.pipeline.make_plan) ---------------------
def job_to_dict(job: Job) -> dict[str, Any]:
    """The job as stored in the queue."""
    out = dataclasses.asdict(job)
    out["zones"] = list(job.zones)
    return out


def job_from_dict(data: Mapping[str, Any]) -> Job:
    """The planner ``Job`` stored in the queue by :func:`job_to_dict`."""
    fields = dict(data)
    fields["zones"] = tuple(fields["zones"])
    profile = fields.get("power_profile_w")
    if profile is not None:
        fields["power_profile_w"] = tuple(profile)
    return Job(**fields)


def enqueue_plan(
    queue: JobQueue,
    plan: Plan,
    argv: Sequence[str],
    *,
    cwd: str | Path,
    executor: str = "local",
    pause_signal: str = DEFAULT_PAUSE_SIGNAL,
    grace_s: float = DEFAULT_GRACE_S,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
    executor_options: Mapping[str, Any] | None = None,
    planning: PlanOptions | None = None,
) -> QueuedJob:
    """Store a planned command in the queue (state ``queued``); returns its row.

    ``executor_options`` (a Slurm ``partition``, a Ray ``address``) are stored with the job, so
    a scheduler that picks it up later (``greenforge queue run``) uses them too; ``planning``
    (the options the plan was made with) likewise, so its re-plans use the same forecast.
    """
    signal_from_name(pause_signal)  # validate now, not at the end of the first slot
    if grace_s <= 0:
        raise ConfigError(f"bad grace period {grace_s!r} s: must be > 0.")
    return queue.enqueue(
        name=name or plan.job.name,
        argv=list(argv),
        cwd=str(cwd),
        executor=executor,
        job=job_to_dict(plan.job),
        plan=PlanSummary.from_plan(plan),
        options={
            "pause_signal": pause_signal,
            "grace_s": grace_s,
            "env": dict(env or {}),
            "executor_options": {k: v for k, v in (executor_options or {}).items() if v},
            "planning": (planning or PlanOptions()).to_dict(),
        },
    )


# -- running -----------------------------------------------------------------------------------
WaitReporter = Callable[[QueuedJob, PlannedSlot, float], None]
"""``on_wait(job, slot, seconds_left)``: called before every sleep while waiting for a slot."""
EventReporter = Callable[[QueuedJob, str], None]


class Scheduler:
    """Runs queued jobs slot by slot (one job at a time per scheduler; run several for more).

    ``executors`` injects ready executors by name (tests); others are created from the registry
    with ``executor_options[name]``. ``clock``/``sleep`` are injected so tests do not wait.

    With ``replan_every_s``, a job that waits in the scheduler for its first slot (executors
    that do not wait themselves: local, ray) is re-planned that often on the latest forecast
    (``providers`` injects grid providers by name, as in :func:`make_plan`), from the
    current time to its unchanged deadline. If the forecast source fails, the current plan is
    kept, a :class:`ReplanWarning` is issued and the failure is counted in the plan (and so in
    the run metadata: ``replans``, ``replan_failures``, ``replan_error``). Slurm holds its own
    submitted slot (``--begin``), so a Slurm job keeps the plan it was submitted with.
    """

    def __init__(
        self,
        queue: JobQueue,
        settings: Settings,
        *,
        executors: Mapping[str, Executor] | None = None,
        executor_options: Mapping[str, Mapping[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: WaitReporter | None = None,
        on_event: EventReporter | None = None,
        max_sleep_s: float = 30.0,
        replan_every_s: float | None = None,
        providers: Mapping[str, IntensityProvider] | None = None,
    ) -> None:
        if replan_every_s is not None and not (
            math.isfinite(replan_every_s) and replan_every_s > 0
        ):
            raise ConfigError(
                f"bad re-plan interval {replan_every_s!r} s: must be > 0 (or None for no re-plans)."
            )
        self.queue = queue
        self.settings = settings
        self._executors: dict[str, Executor] = dict(executors or {})
        self.executor_options = {k: dict(v) for k, v in (executor_options or {}).items()}
        self.clock = clock
        self.sleep = sleep
        self.on_wait = on_wait
        self.on_event = on_event
        self.max_sleep_s = max_sleep_s
        self.replan_every_s = replan_every_s
        self.providers = providers

    def executor(self, name: str, job_options: Mapping[str, Any] | None = None) -> Executor:
        """The executor ``name``; ``job_options`` (stored with a job) override the
        scheduler's ``executor_options`` for that job. Injected executors are used as given."""
        if name in self._executors:
            return self._executors[name]
        options = {**self.executor_options.get(name, {}), **dict(job_options or {})}
        key = f"{name}:{json.dumps(options, sort_keys=True, default=str)}"
        if key not in self._executors:
            self._executors[key] = create_executor(name, self.settings, **options)
        return self._executors[key]

    def checkpoint_dir(self, job_id: int) -> Path:
        return self.settings.resolved_home() / "checkpoints" / f"job-{job_id}"

    def _event(self, job: QueuedJob, text: str) -> None:
        if self.on_event is not None:
            self.on_event(job, text)

    def _wait_for(self, job_id: int, slot: PlannedSlot) -> bool:
        """Sleep until ``slot`` starts; False if the job was cancelled meanwhile."""
        while True:
            job = self.queue.get(job_id)
            if job.state == "cancelled":
                return False
            left_s = slot.start_s - self.clock()
            if left_s <= 0:
                return True
            if self.on_wait is not None:
                self.on_wait(job, slot, left_s)
            self.sleep(min(left_s, self.max_sleep_s))

    def _wait_replanning(self, job_id: int, every_s: float) -> QueuedJob | None:
        """Wait for the first slot, re-planning every ``every_s``; the job (with its latest
        plan) once the slot starts, or None if it was cancelled meanwhile."""
        next_replan_s = self.clock() + every_s
        while True:
            job = self.queue.get(job_id)
            if job.state == "cancelled":
                return None
            slot = job.plan.slots[0]
            now_s = self.clock()
            left_s = slot.start_s - now_s
            if left_s <= 0:
                return job
            if now_s >= next_replan_s:
                self._replan(job, now_s)
                next_replan_s = now_s + every_s
                continue
            if self.on_wait is not None:
                self.on_wait(job, slot, left_s)
            self.sleep(min(left_s, self.max_sleep_s, next_replan_s - now_s))

    def _replan(self, job: QueuedJob, now_s: float) -> QueuedJob:
        """Plan ``job`` again from ``now_s`` on the latest forecast; keep its plan on failure."""
        try:
            planner_job = job_from_dict(job.job)
        except (TypeError, ValueError, KeyError, GreenForgeError):
            return job  # a job stored without its planner fields cannot be re-planned
        start_s = max(now_s, planner_job.earliest_start_s)
        old = job.plan
        try:
            planner_job = dataclasses.replace(planner_job, earliest_start_s=start_s)
            options = PlanOptions.from_dict(job.options.get("planning") or {})
            plan = make_plan(
                planner_job, self.settings, options, now_s=now_s, providers=self.providers
            ).plan
        except InfeasibleError as exc:  # too late to plan again: the current plan still fits
            self._event(job, f"re-plan skipped, keeping the current plan: {exc}")
            return job
        except GreenForgeError as exc:
            text = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"re-planning job {job.id} failed ({text}); keeping its current plan "
                f"(slot 1 at {utc_iso_seconds(old.slots[0].start_s)}).",
                ReplanWarning,
                stacklevel=2,
            )
            summary = dataclasses.replace(
                old, replan_failures=old.replan_failures + 1, replan_error=text
            )
            job = self.queue.update(job.id, plan=summary)
            self._event(job, f"re-plan failed, keeping the current plan: {text}")
            return job
        new = PlanSummary.from_plan(plan)
        if (
            not new.slots
            or new.slots[0].start_s < start_s - 1e-6
            or max(s.end_s for s in new.slots) > planner_job.deadline_s + 1e-6
        ):  # the planner guarantees this; never adopt a plan that would break the deadline
            return job
        summary = dataclasses.replace(
            new,
            replans=old.replans + 1,
            replan_failures=old.replan_failures,
            replan_error=old.replan_error,
        )
        job = self.queue.update(job.id, plan=summary)
        self._event(
            job,
            f"re-planned on the latest forecast: slot 1 at "
            f"{utc_iso_seconds(summary.slots[0].start_s)}, expected "
            f"{summary.expected_co2e_g:.1f} g vs {summary.run_now_co2e_g:.1f} g run now "
            f"(saving {summary.saving_pct:.1f} %)",
        )
        return job

    def run_job(self, job_id: int) -> QueuedJob:
        """Run one job to its end (done, failed, cancelled); returns its final row."""
        claimed = self.queue.claim(job_id)
        if claimed is None:
            current = self.queue.get(job_id)
            if current.state in FINAL_STATES:
                return current
            raise ConfigError(
                f"job {job_id} is being run by another scheduler (pid {current.owner_pid})."
            )
        try:
            return self._run_claimed(job_id)
        finally:
            self.queue.release(job_id)

    def _run_claimed(self, job_id: int) -> QueuedJob:
        while True:
            job = self.queue.get(job_id)
            if job.state in FINAL_STATES:
                return job
            executor = self.executor(job.executor, job.options.get("executor_options"))
            slots = job.plan.slots
            index = job.next_slot
            if index < len(slots):
                slot = slots[index]
                last = index == len(slots) - 1
            else:  # the job asked for more time than planned: finish it now, unpaused
                now = self.clock()
                slot = PlannedSlot(now, now, slots[-1].zone)
                last = True
            interruptible = bool(job.job.get("interruptible", False))
            if not executor.waits_for_start:
                self._event(
                    job,
                    f"waiting for slot {index + 1} at {utc_iso_seconds(slot.start_s)}",
                )
                if index == 0 and job.attempts == 0 and self.replan_every_s is not None:
                    replanned = self._wait_replanning(job_id, self.replan_every_s)
                    if replanned is None:
                        return self.queue.get(job_id)
                    job = replanned
                    slots = job.plan.slots
                    slot = slots[0]
                    last = len(slots) == 1
                if not self._wait_for(job_id, slot):
                    return self.queue.get(job_id)
            job = self.queue.update(
                job_id,
                state="running",
                attempts=job.attempts + 1,
                message=f"slot {index + 1} of {max(len(slots), index + 1)} in {slot.zone}",
            )
            self._event(job, f"running slot {index + 1} in {slot.zone}")
            spec = SlotSpec(
                job_id=job.id,
                name=job.name,
                argv=job.argv,
                cwd=job.cwd,
                slot_index=index,
                n_slots=len(slots),
                start_s=slot.start_s,
                end_s=slot.end_s if interruptible and not last else None,
                zone=slot.zone,
                checkpoint_dir=str(self.checkpoint_dir(job.id)),
                resume=job.attempts > 1,
                pause_signal=str(job.options.get("pause_signal", DEFAULT_PAUSE_SIGNAL)),
                grace_s=float(job.options.get("grace_s", DEFAULT_GRACE_S)),
                env=dict(job.options.get("env", {})),
                metadata=job.plan.metadata(),
                home=str(self.settings.resolved_home()),
            )
            try:
                if isinstance(executor, SubmittingExecutor):
                    previous = self._submitted_before(executor, spec, job)
                    if previous is not None:  # a dead worker's submission: wait for it
                        external_id = previous
                        self._event(job, f"slot {index + 1} already submitted as {external_id}")
                    else:
                        external_id = executor.submit(spec)
                        self.queue.append_ids(job_id, external_id=external_id)
                        self._event(job, f"slot {index + 1} submitted as {external_id}")
                    outcome = executor.wait_for(spec, external_id)
                    outcome = dataclasses.replace(outcome, external_id=None)  # recorded above
                else:
                    outcome = executor.run_slot(spec)
            except GreenForgeError as exc:
                self.queue.update(job_id, state="failed", message=f"executor failed: {exc}")
                raise
            job = self._record(job_id, index, outcome, interruptible)
            self._event(job, f"slot {index + 1} ended with exit code {outcome.exit_code}")
            if job.state != "paused":
                return job

    @staticmethod
    def _submitted_before(executor: Executor, spec: SlotSpec, job: QueuedJob) -> str | None:
        """The external id of this slot's earlier submission whose outcome was never recorded
        (its worker died), if the executor can tell (``submitted_for``); else ``None``."""
        check = getattr(executor, "submitted_for", None)
        if not job.external_ids or not callable(check):
            return None
        last = job.external_ids[-1]
        return last if check(spec, last) else None

    def _record(
        self, job_id: int, index: int, outcome: SlotOutcome, interruptible: bool
    ) -> QueuedJob:
        self.queue.append_ids(job_id, run_id=outcome.run_id, external_id=outcome.external_id)
        current = self.queue.get(job_id)
        if current.state == "cancelled":
            return self.queue.update(job_id, exit_code=outcome.exit_code)
        if outcome.exit_code == 0:
            return self.queue.update(
                job_id, state="done", exit_code=0, next_slot=index + 1, message="finished"
            )
        if outcome.paused and interruptible:
            return self.queue.update(
                job_id,
                state="paused",
                exit_code=PAUSE_EXIT_CODE,
                next_slot=index + 1,
                message=f"paused after slot {index + 1}; resumes at the next slot",
            )
        detail = f"; {outcome.message}" if outcome.message else ""
        if outcome.paused:
            detail += " (exit 99 = paused, but the job is not interruptible)"
        return self.queue.update(
            job_id,
            state="failed",
            exit_code=outcome.exit_code,
            message=f"slot {index + 1} exited {outcome.exit_code}{detail}",
        )

    def run_pending(self, *, max_jobs: int | None = None) -> list[QueuedJob]:
        """Recover orphans, then run every active job, earliest slot first, until none is
        left (or ``max_jobs`` have run). Returns the jobs run, in order."""
        self.queue.recover_orphans()
        finished: list[QueuedJob] = []
        while max_jobs is None or len(finished) < max_jobs:
            due = self.queue.due()
            if not due:
                break
            try:
                job = self.run_job(due[0].id)
            except GreenForgeError as exc:
                # the job is marked failed with the reason; the other jobs still run
                job = self.queue.get(due[0].id)
                if job.state not in FINAL_STATES:
                    job = self.queue.update(job.id, state="failed", message=str(exc))
                self._event(job, f"failed: {exc}")
            finished.append(job)
        return finished


# -- process entry points ----------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``supervise SPEC`` | ``slot SPEC OUTCOME`` (used by the executors)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "supervise":
        spec = SlotSpec.from_json(Path(args[1]).read_text(encoding="utf-8"))
        return supervise(spec)
    if len(args) == 3 and args[0] == "slot":
        spec = SlotSpec.from_json(Path(args[1]).read_text(encoding="utf-8"))
        outcome = run_measured_slot(spec)
        Path(args[2]).write_text(outcome.to_json(), encoding="utf-8")
        return outcome.exit_code
    print(
        "usage: python -m greenforge.schedule.runner supervise SPEC | slot SPEC OUTCOME",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":  # pragma: no cover - exercised through subprocesses
    sys.exit(main())
