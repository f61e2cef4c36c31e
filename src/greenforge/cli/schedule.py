"""CLI commands ``greenforge plan`` and ``greenforge backtest`` (carbon-aware planning).

``schedule`` and ``queue`` (execution) live in :mod:`greenforge.cli.queue`.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from greenforge.cli import planning as opts
from greenforge.cli.planning import PlanArgs, floats, print_plan, print_plan_json, split
from greenforge.errors import ConfigError

_console = Console()


def _iso(t_s: float) -> str:
    return dt.datetime.fromtimestamp(t_s, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def plan_command(
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
) -> None:
    """Plan a job: the cleanest time (and zone) to run it before its deadline."""
    from greenforge.config import load_settings
    from greenforge.schedule.pipeline import make_plan

    args = PlanArgs.pick(locals())
    settings = load_settings()
    now_s = time.time()
    job, options = args.resolve(settings, now_s, replay=True)
    result = make_plan(job, settings, options, now_s=now_s)
    if as_json:
        print_plan_json(result)
    else:
        print_plan(result, _console)


def backtest_command(
    paths: list[Path] = typer.Argument(None, help="More intensity CSV files (as --file)."),
    file: list[Path] = typer.Option(
        None, "--file", "-f", help="Intensity CSV(s) to replay; several years/zones allowed."
    ),
    job_hours: str = typer.Option("4", "--job-hours", help="Job length(s) in hours: 1,4,8."),
    slack_hours: str = typer.Option("24", "--slack-hours", help="Slack(s) in hours: 12,24."),
    interruptible: bool = typer.Option(False, "--interruptible", help="Jobs may pause."),
    forecast: list[str] = typer.Option(
        None, "--forecast", help="Forecaster(s), comma-separated (default auto)."
    ),
    policy: str = typer.Option(
        "once", "--policy", help="once (plan at arrival) or replan (re-plan every step)."
    ),
    zone: str | None = typer.Option(
        None, "--zone", "-z", help="Zone name for generic timestamp,value files."
    ),
    since: str | None = typer.Option(None, "--from", help="First arrival (ISO 8601)."),
    until: str | None = typer.Option(None, "--until", help="Arrivals before this (ISO 8601)."),
    quantile: float | None = typer.Option(
        None, "--quantile", help="Plan on this quantile of forecast error."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    out_file: Path | None = typer.Option(
        None,
        "--out",
        help="Also write the --json document to FILE (for `greenforge report --backtest FILE`).",
    ),
) -> None:
    """Replay history: what would carbon-aware planning have saved, vs running now and oracle?"""
    from greenforge.config import load_settings
    from greenforge.schedule.backtest import JobShape, backtest
    from greenforge.schedule.forecast import DEFAULT_FORECASTER, create_forecaster
    from greenforge.timeutil import parse_time_s

    settings = load_settings()
    now = time.time()
    start_s = parse_time_s(since, now) if since else None
    end_s = parse_time_s(until, now) if until else None
    if start_s is not None and end_s is not None and start_s >= end_s:
        raise ConfigError(
            f"--from {since} is not before --until {until}: arrivals are replayed from --from "
            "up to (not including) --until. Swap them or widen the period."
        )
    from greenforge.schedule.pipeline import load_zone_files

    all_paths = [*(file or []), *(paths or [])]
    data = load_zone_files(
        all_paths, fill=settings.intensity_fill, basis=settings.intensity_basis, zone=zone
    )
    shapes = [
        JobShape(h, s)
        for h in floats(job_hours, "job hours")
        for s in floats(slack_hours, "slack hours")
    ]
    names = split(forecast) or [DEFAULT_FORECASTER]
    forecasters = [
        create_forecaster(n, quantile) if n != "oracle" else create_forecaster(n) for n in names
    ]
    result = backtest(
        data,
        forecasters,
        shapes,
        interruptible=interruptible,
        policy=policy,
        start_s=start_s,
        end_s=end_s,
    )
    if as_json or out_file is not None:
        from greenforge.jsonsafe import dumps

        out = result.to_dict()
        out["policy"] = policy
        out["forecasters"] = {f.name: f.description for f in forecasters}
        if out_file is not None:
            from greenforge.forge.output import write_text_atomic

            write_text_atomic(out_file, dumps(out))
        if as_json:
            typer.echo(dumps(out))
            return
    kind = "interruptible" if interruptible else "uninterruptible"
    table = Table(
        title=f"Back-test: {kind} jobs arriving every step, policy {policy!r}",
        title_justify="left",
    )
    for col in (
        "zone",
        "forecaster",
        "job h",
        "slack h",
        "arrivals",
        "saving %",
        "oracle %",
        "captured %",
        "MAE g/kWh",
        "MAPE %",
        "delay h",
    ):
        table.add_column(col, justify="left" if col in ("zone", "forecaster") else "right")
    notes: set[str] = set()
    for r in result.results:
        captured = "-" if r.captured is None else f"{100 * r.captured:.0f}"
        name = r.forecaster + (" (in-sample)" if r.in_sample else "")
        if r.saving_note:
            notes.add(f"{r.zone}: savings n/a - {r.saving_note}")
        table.add_row(
            r.zone,
            name,
            f"{r.job_hours:g}",
            f"{r.slack_hours:g}",
            str(r.arrivals),
            "n/a" if r.saving_pct is None else f"{r.saving_pct:.1f}",
            "n/a" if r.oracle_saving_pct is None else f"{r.oracle_saving_pct:.1f}",
            captured,
            f"{r.mae_g_per_kwh:.1f}",
            f"{r.mape_pct:.1f}",
            f"{r.mean_delay_h:.1f}",
        )
    _console.print(table)
    first = min(r.first_arrival_s for r in result.results)
    last = max(r.last_arrival_s for r in result.results)
    _console.print(
        f"arrivals {_iso(first)} to {_iso(last)}; saving = 100 x (1 - planned CO2e / CO2e of "
        "running each job at arrival); captured = saving / oracle saving.",
        highlight=False,
    )
    for note in sorted(notes):
        _console.print(escape(note), highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``plan`` and ``backtest`` to the root app."""
    app.command("plan")(plan_command)
    app.command("backtest")(backtest_command)
