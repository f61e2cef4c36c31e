"""CLI: ``greenforge schedule -- CMD`` and ``greenforge queue add|list|cancel|run``.

``schedule`` plans the command on the grid forecast, stores it in the persistent queue, waits
for its clean slot(s) (a live status on stderr), runs it measured through the tracker (the
planned saving is recorded in the run's metadata) and exits with the command's exit code.
``--detach`` (or ``queue add``) only queues it for ``greenforge queue run``; ``--dry-run`` only
prints the plan. Planning options and output are shared with ``greenforge plan``
(:mod:`greenforge.cli.planning`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from greenforge.cli import planning as opts
from greenforge.cli.planning import PlanArgs, print_plan, print_plan_json
from greenforge.config import Settings, load_settings
from greenforge.errors import ConfigError
from greenforge.schedule.queue import JOB_STATES, JobQueue, PlannedSlot, QueuedJob

if TYPE_CHECKING:
    from greenforge.schedule.pipeline import PlanOptions, PlanResult

ExecutorOpt = Annotated[str, typer.Option("--executor", help="local, slurm or ray.")]
PauseSignalOpt = Annotated[
    str, typer.Option("--pause-signal", help="Signal sent at the end of a slot.")
]
GraceOpt = Annotated[
    str,
    typer.Option("--grace", help="Time a paused job gets to save and exit before it is killed."),
]
PartitionOpt = Annotated[str | None, typer.Option("--partition", help="Slurm partition.")]
RayAddressOpt = Annotated[str | None, typer.Option("--ray-address", help="Ray cluster address.")]

queue_app = typer.Typer(
    name="queue",
    help="The persistent queue of scheduled jobs: add, list, cancel, run.",
    no_args_is_help=True,
    add_completion=False,
)
_PAUSED_EXIT = 99
_CANCELLED_EXIT = 130


def _queue(settings: Settings) -> JobQueue:
    return JobQueue.for_home(settings.resolved_home())


def _iso(t_s: float | None) -> str:
    if t_s is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t_s))


def _human_s(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def _exit_code_of(job: QueuedJob) -> int:
    if job.state == "done":
        return 0
    if job.state == "cancelled":
        return _CANCELLED_EXIT
    if job.state == "paused":
        return _PAUSED_EXIT
    return job.exit_code if job.exit_code not in (None, 0) else 1


def _replan_every_s(text: str) -> float | None:
    """``--replan-every``: a duration, or ``0``/``off`` for no re-planning."""
    from greenforge.timeutil import parse_duration_s

    if text.strip().lower() in {"0", "off", "never", "none"}:
        return None
    value = parse_duration_s(text)
    return value if value > 0 else None


def _scheduler(settings: Settings, console: Console, replan_every_s: float | None = None) -> Any:
    from greenforge.schedule.runner import Scheduler

    status = console.status("", spinner="dots")
    state = {"started": False}

    def on_wait(job: QueuedJob, slot: PlannedSlot, left_s: float) -> None:
        text = (
            f"job {job.id} ({escape(job.name)}): waiting for clean slot {job.next_slot + 1} of "
            f"{len(job.plan.slots)} at {_iso(slot.start_s)} in {slot.zone} "
            f"(in {_human_s(left_s)}; planned saving {job.plan.saving_pct:.1f} %)"
        )
        status.update(text)
        if not state["started"]:
            status.start()
            state["started"] = True

    def on_event(job: QueuedJob, text: str) -> None:
        if state["started"]:
            status.stop()
            state["started"] = False
        console.print(f"[dim]job {job.id}:[/] {escape(text)}", highlight=False)

    return Scheduler(
        _queue(settings),
        settings,
        on_wait=on_wait,
        on_event=on_event,
        replan_every_s=replan_every_s,
    )


@dataclasses.dataclass(frozen=True)
class _RunArgs:
    """How a queued job runs (``schedule`` and ``queue add``), as typed."""

    executor: str
    pause_signal: str
    grace: str
    partition: str | None
    ray_address: str | None

    def executor_options(self) -> dict[str, Any]:
        """Options stored with the job, so a later ``queue run`` uses them too."""
        by_executor: dict[str, dict[str, Any]] = {
            "slurm": {"partition": self.partition},
            "ray": {"address": self.ray_address},
        }
        return by_executor.get(self.executor, {})


def _refuse_contradictions(run: _RunArgs, *, dry_run: bool, detach: bool) -> None:
    """Refuse flags that cannot all hold (before any plan is printed or job queued): raises
    :class:`ConfigError` (exit 2) saying which flags and what to do instead."""
    import signal

    from greenforge.schedule.checkpoint import signal_from_name
    from greenforge.schedule.executors import executor_names

    names = executor_names()
    if run.executor not in names:
        from greenforge.errors import UnknownNameError

        raise UnknownNameError("executor", run.executor, names)
    sig = signal_from_name(run.pause_signal)
    uncatchable = {getattr(signal, n) for n in ("SIGKILL", "SIGSTOP") if hasattr(signal, n)}
    if sig in uncatchable:
        raise ConfigError(
            f"--pause-signal {run.pause_signal}: {sig.name} cannot be caught, so a job could "
            "never save its state before it stops (and --grace would be pointless). Use SIGTERM "
            "(the default), SIGINT, SIGUSR1 or SIGUSR2."
        )
    if dry_run and detach:
        raise ConfigError(
            "--dry-run prints the plan and queues nothing, --detach queues the job: use one "
            "of them."
        )
    if run.partition is not None and run.executor != "slurm":
        raise ConfigError(
            f"--partition {run.partition!r} is a Slurm partition, but the executor is "
            f"{run.executor!r}: add --executor slurm or drop --partition."
        )
    if run.ray_address is not None and run.executor != "ray":
        raise ConfigError(
            f"--ray-address is for the Ray executor, but the executor is {run.executor!r}: add "
            "--executor ray or drop --ray-address."
        )


def _plan(
    args: PlanArgs,
    settings: Settings,
    argv: list[str],
    as_json: bool,
    console: Console,
    *,
    replay: bool,
) -> tuple[PlanResult, PlanOptions]:
    """Plan through the one pipeline and print it (JSON on stdout, or the table)."""
    from greenforge.schedule.pipeline import make_plan

    now_s = time.time()
    default_name = Path(argv[0]).name if argv else "job"
    job, options = args.resolve(settings, now_s, replay=replay, default_name=default_name)
    result = make_plan(job, settings, options, now_s=now_s)
    if as_json:
        print_plan_json(result)
    else:
        print_plan(result, console)
    return result, options


def _enqueue(
    settings: Settings,
    result: PlanResult,
    options: PlanOptions,
    argv: list[str],
    run: _RunArgs,
    err: Console,
) -> QueuedJob:
    """Store the planned command in the queue and say so on stderr."""
    from greenforge.schedule.runner import enqueue_plan
    from greenforge.timeutil import parse_duration_s

    queued = enqueue_plan(
        _queue(settings),
        result.plan,
        argv,
        cwd=Path.cwd(),
        executor=run.executor,
        pause_signal=run.pause_signal,
        grace_s=parse_duration_s(run.grace),
        name=result.plan.job.name,
        executor_options=run.executor_options(),
        planning=options,
    )
    err.print(f"queued as job {queued.id} ({run.executor} executor)", highlight=False)
    return queued


def schedule(
    ctx: typer.Context,
    command: list[str] = typer.Argument(None, help="The command to run, after `--`."),
    zone: opts.ZoneOpt = None,
    duration: opts.DurationOpt = ...,  # type: ignore[assignment]
    deadline: opts.DeadlineOpt = None,
    earliest: opts.EarliestOpt = None,
    start: opts.StartOpt = None,
    interruptible: opts.InterruptibleOpt = False,
    checkpoint_overhead: opts.CheckpointOverheadOpt = "0s",
    checkpoint_energy_j: opts.CheckpointEnergyOpt = 0.0,
    min_chunk: opts.MinChunkOpt = "0s",
    migration_cost: opts.MigrationCostOpt = "0s",
    migration_energy_j: opts.MigrationEnergyOpt = 0.0,
    power: opts.PowerOpt = None,
    power_profile: opts.PowerProfileOpt = None,
    profile_step: opts.ProfileStepOpt = "1h",
    file: opts.FileOpt = None,
    forecast: opts.ForecastOpt = None,
    quantile: opts.QuantileOpt = None,
    compare: opts.CompareOpt = None,
    pue: opts.PueOpt = None,
    name: opts.NameOpt = None,
    as_json: opts.JsonOpt = False,
    executor: ExecutorOpt = "local",
    pause_signal: PauseSignalOpt = "SIGTERM",
    grace: GraceOpt = "60s",
    partition: PartitionOpt = None,
    ray_address: RayAddressOpt = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan, queue nothing."),
    detach: bool = typer.Option(
        False, "--detach", help="Queue the job and return (as `queue add`); `queue run` runs it."
    ),
    replan_every: str = typer.Option(
        "1h",
        "--replan-every",
        help="While waiting for the first slot, re-plan this often on the latest forecast "
        "(never past the deadline); 0 or off to keep the first plan.",
    ),
) -> None:
    """Run CMD at the cleanest time (and zone) before the deadline, measured."""
    argv = list(command or []) + list(ctx.args)
    args = PlanArgs.pick(locals())
    run = _RunArgs(executor, pause_signal, grace, partition, ray_address)
    if not argv and not dry_run:
        raise ConfigError(
            "no command to schedule: use `greenforge schedule [OPTIONS] -- CMD ARGS...`."
        )
    _refuse_contradictions(run, dry_run=dry_run, detach=detach)
    replan_every_s = _replan_every_s(replan_every)
    settings = load_settings()
    err = Console(stderr=True)
    # the table goes to stderr: stdout belongs to the command (and to --json)
    result, options = _plan(args, settings, argv, as_json, err, replay=dry_run)
    if dry_run:
        return
    queued = _enqueue(settings, result, options, argv, run, err)
    if detach:
        return
    try:
        final = _scheduler(settings, err, replan_every_s).run_job(queued.id)
    except KeyboardInterrupt:
        err.print(
            f"interrupted: job {queued.id} stays in the queue. `greenforge queue run` runs it, "
            f"`greenforge queue cancel {queued.id}` drops it.",
            highlight=False,
        )
        raise
    err.print(f"job {final.id} {final.state}: {escape(final.message)}", highlight=False)
    raise typer.Exit(_exit_code_of(final))


@queue_app.command(
    "add", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def queue_add(
    ctx: typer.Context,
    command: list[str] = typer.Argument(None, help="The command to run, after `--`."),
    zone: opts.ZoneOpt = None,
    duration: opts.DurationOpt = ...,  # type: ignore[assignment]
    deadline: opts.DeadlineOpt = None,
    earliest: opts.EarliestOpt = None,
    start: opts.StartOpt = None,
    interruptible: opts.InterruptibleOpt = False,
    checkpoint_overhead: opts.CheckpointOverheadOpt = "0s",
    checkpoint_energy_j: opts.CheckpointEnergyOpt = 0.0,
    min_chunk: opts.MinChunkOpt = "0s",
    migration_cost: opts.MigrationCostOpt = "0s",
    migration_energy_j: opts.MigrationEnergyOpt = 0.0,
    power: opts.PowerOpt = None,
    power_profile: opts.PowerProfileOpt = None,
    profile_step: opts.ProfileStepOpt = "1h",
    file: opts.FileOpt = None,
    forecast: opts.ForecastOpt = None,
    quantile: opts.QuantileOpt = None,
    compare: opts.CompareOpt = None,
    pue: opts.PueOpt = None,
    name: opts.NameOpt = None,
    as_json: opts.JsonOpt = False,
    executor: ExecutorOpt = "local",
    pause_signal: PauseSignalOpt = "SIGTERM",
    grace: GraceOpt = "60s",
    partition: PartitionOpt = None,
    ray_address: RayAddressOpt = None,
) -> None:
    """Plan CMD and put it in the queue (`greenforge queue run` runs it); prints the plan."""
    argv = list(command or []) + list(ctx.args)
    args = PlanArgs.pick(locals())
    run = _RunArgs(executor, pause_signal, grace, partition, ray_address)
    if not argv:
        raise ConfigError("no command to queue: use `greenforge queue add [OPTIONS] -- CMD ...`.")
    _refuse_contradictions(run, dry_run=False, detach=True)
    settings = load_settings()
    result, options = _plan(args, settings, argv, as_json, Console(), replay=False)
    _enqueue(settings, result, options, argv, run, Console(stderr=True))


@queue_app.command("list")
def queue_list(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array of jobs."),
    state: list[str] = typer.Option(
        None, "--state", help=f"Only jobs in this state (repeatable): {', '.join(JOB_STATES)}."
    ),
) -> None:
    """List queued and past jobs."""
    jobs = _queue(load_settings()).list(states=state or None)
    if as_json:
        sys.stdout.write(json.dumps([j.to_dict() for j in jobs], indent=2) + "\n")
        return
    from greenforge.cli.tables import compact_table

    table = compact_table(
        f"jobs ({len(jobs)})",
        ("id", "name", "state", "executor", "next slot (UTC)", "saving", "tries", "note"),
        fold=("name", "note"),
        right=("id", "saving", "tries"),
    )
    for j in jobs:
        table.add_row(
            str(j.id),
            escape(j.name),
            j.state,
            j.executor,
            _iso(j.next_start_s)[:16].replace("T", " ")  # to the minute: fits 80 columns
            if j.state not in ("done", "failed", "cancelled")
            else "-",
            f"{j.plan.saving_pct:.1f} %",
            str(j.attempts),
            escape(j.message),
        )
    Console().print(table)


@queue_app.command("cancel")
def queue_cancel(
    job_id: int = typer.Argument(..., metavar="ID", help="Job id (see `greenforge queue list`)."),
) -> None:
    """Cancel a job that has not finished (a running local slot ends with its slot)."""
    settings = load_settings()
    job = _queue(settings).cancel(job_id)
    if job.executor == "slurm" and job.external_ids:
        from greenforge.schedule.executors import create_executor

        create_executor("slurm", settings).cancel(job.external_ids[-1])
    Console(stderr=True).print(f"job {job.id} cancelled", highlight=False)


@queue_app.command("run")
def queue_run(
    max_jobs: int | None = typer.Option(None, "--max-jobs", min=1, help="Stop after N jobs."),
    watch: bool = typer.Option(
        False, "--watch", help="Keep running, picking up new jobs (stop with Ctrl-C)."
    ),
    poll: str = typer.Option("30s", "--poll", help="How often --watch looks for new jobs."),
    replan_every: str = typer.Option(
        "1h",
        "--replan-every",
        help="Re-plan a job waiting for its first slot this often (0 or off: never).",
    ),
) -> None:
    """Run the queued jobs (waiting for their slots); resumes jobs of a stopped scheduler."""
    from greenforge.timeutil import parse_duration_s

    settings = load_settings()
    err = Console(stderr=True)
    poll_s = parse_duration_s(poll)
    scheduler = _scheduler(settings, err, _replan_every_s(replan_every))
    failures = 0
    while True:
        done = scheduler.run_pending(max_jobs=max_jobs)
        for job in done:
            err.print(f"job {job.id} {job.state}: {escape(job.message)}", highlight=False)
            failures += job.state == "failed"
        if not watch or (max_jobs is not None and len(done) >= max_jobs):
            break
        time.sleep(poll_s)
    raise typer.Exit(1 if failures else 0)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command(
        "schedule",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(schedule)
    app.add_typer(queue_app, name="queue")


__all__ = ["queue_app", "register"]
