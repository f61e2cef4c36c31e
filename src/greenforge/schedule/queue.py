"""A persistent job queue (SQLite, WAL) so scheduled jobs survive a restart of the scheduler.

Each row holds the command, its plan (the clean slots and the expected saving), the job shape
(for re-planning), the state and the number of attempts. States::

    queued ──▶ waiting ──▶ running ──▶ done
       │          │           │  └──▶ failed
       │          │           └──▶ paused ──▶ waiting (next slot) ...
       └──────────┴──────────────────────────▶ cancelled

A worker claims a job by writing its pid (``owner_pid``) in the same transaction that moves
the job to ``waiting``; a job whose owner died (killed scheduler) is recovered by the next
worker (:meth:`JobQueue.recover_orphans`), so nothing is lost.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal

import psutil

from greenforge.errors import ConfigError, StoreError
from greenforge.redact import redact_argv

JobState = Literal["queued", "waiting", "running", "paused", "done", "failed", "cancelled"]
JOB_STATES: Final[tuple[JobState, ...]] = (
    "queued",
    "waiting",
    "running",
    "paused",
    "done",
    "failed",
    "cancelled",
)
ACTIVE_STATES: Final[frozenset[str]] = frozenset({"queued", "waiting", "running", "paused"})
FINAL_STATES: Final[frozenset[str]] = frozenset({"done", "failed", "cancelled"})
QUEUE_FILE: Final[str] = "queue.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    argv TEXT NOT NULL,
    cwd TEXT NOT NULL,
    executor TEXT NOT NULL,
    job TEXT NOT NULL,
    plan TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_slot INTEGER NOT NULL DEFAULT 0,
    created_s REAL NOT NULL,
    updated_s REAL NOT NULL,
    owner_pid INTEGER,
    exit_code INTEGER,
    run_ids TEXT NOT NULL DEFAULT '[]',
    external_ids TEXT NOT NULL DEFAULT '[]',
    message TEXT NOT NULL DEFAULT '',
    options TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
"""


@dataclasses.dataclass(frozen=True)
class PlannedSlot:
    """One clean window ``[start_s, end_s)`` (unix seconds) in ``zone``."""

    start_s: float
    end_s: float
    zone: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclasses.dataclass(frozen=True)
class PlanSummary:
    """What the queue keeps of a planner ``Plan``: the slots and the expected saving."""

    slots: tuple[PlannedSlot, ...]
    expected_co2e_g: float
    run_now_co2e_g: float
    saving_pct: float
    forecast_source: str
    advice: tuple[str, ...] = ()
    replans: int = 0
    """How many times the scheduler re-planned the job on a newer forecast while it waited."""
    replan_failures: int = 0
    """Re-plans that kept this plan because the forecast source failed."""
    replan_error: str = ""
    """The last such failure, empty if none."""

    @staticmethod
    def from_plan(plan: Any) -> PlanSummary:
        """From a :class:`greenforge.schedule.planner.Plan` (read by attribute)."""
        advice_raw = getattr(plan, "advice", ())
        if isinstance(advice_raw, str):
            advice: tuple[str, ...] = (advice_raw,) if advice_raw else ()
        else:
            advice = tuple(str(a) for a in (advice_raw or ()))
        return PlanSummary(
            slots=tuple(
                PlannedSlot(float(s.start_s), float(s.end_s), str(s.zone)) for s in plan.slots
            ),
            expected_co2e_g=float(plan.expected_co2e_g),
            run_now_co2e_g=float(plan.run_now_co2e_g),
            saving_pct=float(plan.saving_pct),
            forecast_source=str(plan.forecast_source),
            advice=advice,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> PlanSummary:
        return PlanSummary(
            slots=tuple(
                PlannedSlot(float(s["start_s"]), float(s["end_s"]), str(s["zone"]))
                for s in data["slots"]
            ),
            expected_co2e_g=float(data["expected_co2e_g"]),
            run_now_co2e_g=float(data["run_now_co2e_g"]),
            saving_pct=float(data["saving_pct"]),
            forecast_source=str(data["forecast_source"]),
            advice=tuple(str(a) for a in data.get("advice", ())),
            replans=int(data.get("replans", 0)),
            replan_failures=int(data.get("replan_failures", 0)),
            replan_error=str(data.get("replan_error", "")),
        )

    def metadata(self) -> dict[str, Any]:
        """The planned saving as recorded with each measured run."""
        return {
            "expected_co2e_g": self.expected_co2e_g,
            "run_now_co2e_g": self.run_now_co2e_g,
            "saving_pct": self.saving_pct,
            "forecast_source": self.forecast_source,
            "slots": [dataclasses.asdict(s) for s in self.slots],
            "replans": self.replans,
            "replan_failures": self.replan_failures,
            "replan_error": self.replan_error,
        }


@dataclasses.dataclass(frozen=True)
class QueuedJob:
    """One row of the queue."""

    id: int
    name: str
    argv: tuple[str, ...]
    cwd: str
    executor: str
    job: Mapping[str, Any]
    """The planner ``Job`` as a dict (kept for re-planning)."""
    plan: PlanSummary
    state: JobState
    attempts: int
    next_slot: int
    """Index of the next slot to run in ``plan.slots``."""
    created_s: float
    updated_s: float
    owner_pid: int | None
    exit_code: int | None
    run_ids: tuple[str, ...]
    external_ids: tuple[str, ...]
    """Executor-side ids (Slurm job ids, Ray object refs) of each attempt."""
    message: str
    options: Mapping[str, Any]
    """Executor options: pause signal, grace period, environment additions."""

    @property
    def next_start_s(self) -> float | None:
        """Start of the next slot to run, or ``None`` when no slot is left."""
        if self.next_slot < len(self.plan.slots):
            return self.plan.slots[self.next_slot].start_s
        return None

    def to_dict(self) -> dict[str, Any]:
        """The ``greenforge queue list --json`` contract."""
        return {
            "id": self.id,
            "name": self.name,
            "argv": redact_argv(self.argv),  # printed: no secrets (the queue keeps the real one)
            "cwd": self.cwd,
            "executor": self.executor,
            "state": self.state,
            "attempts": self.attempts,
            "next_slot": self.next_slot,
            "next_start_s": self.next_start_s,
            "created_s": self.created_s,
            "updated_s": self.updated_s,
            "exit_code": self.exit_code,
            "run_ids": list(self.run_ids),
            "external_ids": list(self.external_ids),
            "message": self.message,
            "plan": self.plan.to_dict(),
            "job": dict(self.job),
        }


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    if pid == os.getpid():
        return True
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class JobQueue:
    """The SQLite queue at ``path`` (created on first use, WAL journal)."""

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        pid_alive: Callable[[int | None], bool] = _pid_alive,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._pid_alive = pid_alive
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the job queue at {str(self.path)!r}: {exc}. "
                "Check GREENFORGE_HOME points to a writable directory."
            ) from None

    @staticmethod
    def for_home(home: Path) -> JobQueue:
        """The queue in a GreenForge home directory (``settings.resolved_home()``)."""
        return JobQueue(home / QUEUE_FILE)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"job queue {str(self.path)!r} failed: {exc}") from None
        finally:
            conn.close()

    # -- writing -----------------------------------------------------------------------------
    def enqueue(
        self,
        *,
        name: str,
        argv: Sequence[str],
        cwd: str | Path,
        executor: str,
        job: Mapping[str, Any],
        plan: PlanSummary,
        options: Mapping[str, Any] | None = None,
    ) -> QueuedJob:
        """Add a job in state ``queued``; returns the stored row."""
        if not argv:
            raise ConfigError("cannot queue an empty command: give it after `--`.")
        if not plan.slots:
            raise ConfigError("cannot queue a job whose plan has no slot.")
        now = self._clock()
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT INTO jobs (name, argv, cwd, executor, job, plan, state, created_s, "
                "updated_s, options) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    name,
                    json.dumps(list(argv)),
                    str(cwd),
                    executor,
                    json.dumps(dict(job)),
                    json.dumps(plan.to_dict()),
                    now,
                    now,
                    json.dumps(dict(options or {})),
                ),
            )
            job_id = int(cur.lastrowid or 0)
        return self.get(job_id)

    def update(self, job_id: int, **fields: Any) -> QueuedJob:
        """Set columns of one job (``plan`` may be a PlanSummary; lists are JSON-encoded)."""
        allowed = {
            "state",
            "attempts",
            "next_slot",
            "owner_pid",
            "exit_code",
            "message",
            "plan",
            "run_ids",
            "external_ids",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ConfigError(f"cannot update job field(s) {sorted(unknown)}.")
        if "state" in fields and fields["state"] not in JOB_STATES:
            raise ConfigError(f"unknown job state {fields['state']!r}: use one of {JOB_STATES}.")
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "plan":
                values[key] = json.dumps(value.to_dict())
            elif key in {"run_ids", "external_ids"}:
                values[key] = json.dumps(list(value))
            else:
                values[key] = value
        values["updated_s"] = self._clock()
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self._connect() as conn:
            cur = conn.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id)
            )
            if cur.rowcount == 0:
                raise self._missing(job_id)
        return self.get(job_id)

    def append_ids(
        self, job_id: int, *, run_id: str | None = None, external_id: str | None = None
    ) -> QueuedJob:
        """Record the run id / executor id of one attempt."""
        current = self.get(job_id)
        fields: dict[str, Any] = {}
        if run_id:
            fields["run_ids"] = [*current.run_ids, run_id]
        if external_id:
            fields["external_ids"] = [*current.external_ids, external_id]
        return self.update(job_id, **fields) if fields else current

    def cancel(self, job_id: int) -> QueuedJob:
        """Cancel a job that has not finished; a running one is stopped by its worker."""
        job = self.get(job_id)
        if job.state in FINAL_STATES:
            raise ConfigError(
                f"job {job_id} is already {job.state}; only queued, waiting, running or paused "
                "jobs can be cancelled."
            )
        return self.update(job_id, state="cancelled", message="cancelled by the user")

    def claim(self, job_id: int, owner_pid: int | None = None) -> QueuedJob | None:
        """Atomically take an active job for this worker; ``None`` if someone else holds it."""
        pid = os.getpid() if owner_pid is None else owner_pid
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT state, owner_pid FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                raise self._missing(job_id)
            holder = row["owner_pid"]
            if row["state"] not in ACTIVE_STATES or (
                holder is not None and holder != pid and self._pid_alive(holder)
            ):
                conn.execute("ROLLBACK")
                return None
            state = "waiting" if row["state"] in {"queued", "running"} else row["state"]
            conn.execute(
                "UPDATE jobs SET owner_pid = ?, state = ?, updated_s = ? WHERE id = ?",
                (pid, state, self._clock(), job_id),
            )
            conn.execute("COMMIT")
        return self.get(job_id)

    def release(self, job_id: int) -> None:
        """Give up ownership (the worker stops; the job stays in its state)."""
        with self._connect() as conn:
            conn.execute("UPDATE jobs SET owner_pid = NULL WHERE id = ?", (job_id,))

    def recover_orphans(self) -> builtins.list[int]:
        """Jobs held by a dead worker become claimable again; returns their ids."""
        recovered = []
        for job in self.list(states=("waiting", "running", "paused")):
            released_while_running = job.owner_pid is None and job.state == "running"
            if released_while_running or (
                job.owner_pid is not None and not self._pid_alive(job.owner_pid)
            ):
                state = "queued" if job.state == "running" else job.state
                who = "its worker" if job.owner_pid is None else f"worker {job.owner_pid}"
                message = f"recovered after {who} stopped"
                if job.state == "running":
                    message += "; the interrupted slot will be retried"
                self.update(job.id, state=state, owner_pid=None, message=message)
                recovered.append(job.id)
        return recovered

    # -- reading -----------------------------------------------------------------------------
    def get(self, job_id: int) -> QueuedJob:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise self._missing(job_id)
        return _row_to_job(row)

    def list(self, states: Sequence[str] | None = None) -> builtins.list[QueuedJob]:
        """Jobs in id order, optionally only those in ``states``."""
        if states is not None:
            bad = [s for s in states if s not in JOB_STATES]
            if bad:
                raise ConfigError(f"unknown job state(s) {bad}: use {', '.join(JOB_STATES)}.")
        with self._connect() as conn:
            if states is None:
                rows = conn.execute("SELECT * FROM jobs ORDER BY id").fetchall()
            else:
                marks = ", ".join("?" for _ in states)
                rows = conn.execute(
                    f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id", tuple(states)
                ).fetchall()
        return [_row_to_job(r) for r in rows]

    def due(self, now_s: float | None = None) -> builtins.list[QueuedJob]:
        """Active jobs not held by a live worker, ordered by their next slot start."""
        active = [
            j
            for j in self.list(states=("queued", "waiting", "paused"))
            if j.owner_pid is None or not self._pid_alive(j.owner_pid)
        ]
        if now_s is not None:
            active = [j for j in active if (j.next_start_s or now_s) <= now_s]
        return sorted(active, key=lambda j: (j.next_start_s or 0.0, j.id))

    def _missing(self, job_id: int) -> ConfigError:
        return ConfigError(
            f"no job with id {job_id} in the queue {str(self.path)!r}. "
            "Run `greenforge queue list` to see the job ids."
        )


def _row_to_job(row: sqlite3.Row) -> QueuedJob:
    return QueuedJob(
        id=int(row["id"]),
        name=str(row["name"]),
        argv=tuple(json.loads(row["argv"])),
        cwd=str(row["cwd"]),
        executor=str(row["executor"]),
        job=json.loads(row["job"]),
        plan=PlanSummary.from_dict(json.loads(row["plan"])),
        state=row["state"],
        attempts=int(row["attempts"]),
        next_slot=int(row["next_slot"]),
        created_s=float(row["created_s"]),
        updated_s=float(row["updated_s"]),
        owner_pid=None if row["owner_pid"] is None else int(row["owner_pid"]),
        exit_code=None if row["exit_code"] is None else int(row["exit_code"]),
        run_ids=tuple(json.loads(row["run_ids"])),
        external_ids=tuple(json.loads(row["external_ids"])),
        message=str(row["message"]),
        options=json.loads(row["options"]),
    )
