"""CLI: ``greenforge schedule -- CMD`` and ``greenforge queue list|cancel|run``.

``schedule`` plans the command on the grid forecast, stores it in the persistent queue, waits
for its clean slot(s) (a live status on stderr), runs it measured through the tracker (the
planned saving is recorded in the run's metadata) and exits with the command's exit code.
``--detach`` only queues it for ``greenforge queue run``; ``--dry-run`` only prints the plan.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from greenforge.config import Settings, load_settings
from greenforge.errors import ConfigError
from greenforge.schedule.queue import JOB_STATES, JobQueue, PlannedSlot, QueuedJob

queue_app = typer.Typer(
    name="queue",
    help="The persistent queue of scheduled jobs: list, cancel, run.",
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


def _plan_table(plan: Any, title: str) -> Table:
    table = Table(title=title, show_header=True)
    for col in ("slot", "start (UTC)", "end (UTC)", "zone", "length"):
        table.add_column(col)
    for i, s in enumerate(plan.slots, start=1):
        table.add_row(str(i), _iso(s.start_s), _iso(s.end_s), s.zone, _human_s(s.duration_s))
    return table


def _print_plan(plan: Any, console: Console) -> None:
    console.print(_plan_table(plan, "clean slots"))
    console.print(
        f"expected {plan.expected_co2e_g:.4g} g CO2e vs {plan.run_now_co2e_g:.4g} g if run now: "
        f"saving {plan.saving_pct:.1f} %  [dim](forecast: {escape(plan.forecast_source)})[/]",
        highlight=False,
    )
    for line in plan.advice:
        console.print(f"[cyan]advice:[/] {escape(line)}", highlight=False)


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


def _refuse_contradictions(
    *,
    executor: str,
    pause_signal: str,
    dry_run: bool,
    detach: bool,
    partition: str | None,
    ray_address: str | None,
) -> None:
    """Refuse flags that cannot all hold (before any plan is printed or job queued): raises
    :class:`ConfigError` (exit 2) saying which flags and what to do instead."""
    import signal

    from greenforge.schedule.checkpoint import signal_from_name

    sig = signal_from_name(pause_signal)
    uncatchable = {getattr(signal, n) for n in ("SIGKILL", "SIGSTOP") if hasattr(signal, n)}
    if sig in uncatchable:
        raise ConfigError(
            f"--pause-signal {pause_signal}: {sig.name} cannot be caught, so a job could never "
            "save its state before it stops (and --grace would be pointless). Use SIGTERM "
            "(the default), SIGINT, SIGUSR1 or SIGUSR2."
        )
    if dry_run and detach:
        raise ConfigError(
            "--dry-run prints the plan and queues nothing, --detach queues the job: use one "
            "of them."
        )
    if partition is not None and executor != "slurm":
        raise ConfigError(
            f"--partition {partition!r} is a Slurm partition, but the executor is {executor!r}: "
            "add --executor slurm or drop --partition."
        )
    if ray_address is not None and executor != "ray":
        raise ConfigError(
            f"--ray-address is for the Ray executor, but the executor is {executor!r}: add "
            "--executor ray or drop --ray-address."
        )


def schedule(
    ctx: typer.Context,
    command: list[str] = typer.Argument(None, help="The command to run, after `--`."),
    zone: list[str] = typer.Option(
        None, "--zone", help="Grid zone; repeat for several allowed zones (first = home)."
    ),
    duration: str = typer.Option(..., "--duration", help="Expected running time: 4h, 90m ..."),
    deadline: str | None = typer.Option(
        None,
        "--deadline",
        help="Latest end: ISO time (2026-11-30T06:00Z), +12h (from --start if given, else "
        "now), or unix s. Default: 24 h of slack after the duration.",
    ),
    start: str | None = typer.Option(None, "--start", help="Earliest start (default: now)."),
    interruptible: bool = typer.Option(
        False, "--interruptible", help="The job can pause and resume (pause/resume protocol)."
    ),
    executor: str = typer.Option("local", "--executor", help="local, slurm or ray."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan, queue nothing."),
    detach: bool = typer.Option(
        False, "--detach", help="Queue the job and return; `greenforge queue run` runs it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON on stdout."),
    name: str | None = typer.Option(None, "--name", help="Job name (default: the command)."),
    power: float | None = typer.Option(None, "--power", help="Average power of the job (W)."),
    min_chunk: str | None = typer.Option(
        None, "--min-chunk", help="Shortest chunk of an interruptible job (e.g. 30m)."
    ),
    checkpoint_overhead: str | None = typer.Option(
        None, "--checkpoint-overhead", help="Extra time per resume (e.g. 2m)."
    ),
    pause_signal: str = typer.Option(
        "SIGTERM", "--pause-signal", help="Signal sent at the end of a slot."
    ),
    grace: str = typer.Option(
        "60s", "--grace", help="Time a paused job gets to save and exit before it is killed."
    ),
    partition: str | None = typer.Option(None, "--partition", help="Slurm partition."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Ray cluster address."),
    replan_every: str = typer.Option(
        "1h",
        "--replan-every",
        help="While waiting for the first slot, re-plan this often on the latest forecast "
        "(never past the deadline); 0 or off to keep the first plan.",
    ),
) -> None:
    """Run CMD at the cleanest time (and zone) before the deadline, measured."""
    from greenforge.grid.zones import resolve_zone
    from greenforge.schedule.executors import executor_names
    from greenforge.schedule.runner import enqueue_plan, plan_command
    from greenforge.timeutil import parse_duration_s, parse_time_s

    argv = list(command or []) + list(ctx.args)
    if not argv and not dry_run:
        raise ConfigError(
            "no command to schedule: use `greenforge schedule [OPTIONS] -- CMD ARGS...`."
        )
    names = executor_names()
    if executor not in names:
        from greenforge.errors import UnknownNameError

        raise UnknownNameError("executor", executor, names)
    _refuse_contradictions(
        executor=executor,
        pause_signal=pause_signal,
        dry_run=dry_run,
        detach=detach,
        partition=partition,
        ray_address=ray_address,
    )
    settings = load_settings()
    zones = [resolve_zone(settings, z) for z in zone] if zone else [resolve_zone(settings)]
    now_s = time.time()
    duration_s = parse_duration_s(duration)
    start_s = None if start is None else parse_time_s(start, now_s)
    # a relative deadline (+12h) and the default (24 h of slack after the duration) count
    # from the earliest start when --start is given, as in `greenforge plan`
    base_s = now_s if start_s is None else max(start_s, now_s)
    if deadline is None:
        deadline_s = base_s + duration_s + 86400.0
    else:
        deadline_s = parse_time_s(deadline, base_s if deadline.strip().startswith("+") else now_s)
    grace_s = parse_duration_s(grace)
    replan_every_s = _replan_every_s(replan_every)
    plan = plan_command(
        settings,
        zones=zones,
        duration_s=duration_s,
        deadline_s=deadline_s,
        now_s=now_s,
        interruptible=interruptible,
        earliest_start_s=start_s,
        power_w=power,
        checkpoint_overhead_s=0.0
        if checkpoint_overhead is None
        else parse_duration_s(checkpoint_overhead),
        min_chunk_s=0.0 if min_chunk is None else parse_duration_s(min_chunk),
        name=name or (Path(argv[0]).name if argv else "job"),
    )
    err = Console(stderr=True)
    if as_json:
        sys.stdout.write(json.dumps(plan.to_dict(), indent=2) + "\n")
    else:
        _print_plan(plan, err)
    if dry_run:
        return
    settings_queue = _queue(settings)
    queued = enqueue_plan(
        settings_queue,
        plan,
        argv,
        cwd=Path.cwd(),
        executor=executor,
        pause_signal=pause_signal,
        grace_s=grace_s,
        name=name,
        # stored with the job: a later `greenforge queue run` uses them too
        executor_options={"slurm": {"partition": partition}, "ray": {"address": ray_address}}.get(
            executor, {}
        ),
    )
    err.print(f"queued as job {queued.id} ({executor} executor)", highlight=False)
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
