"""CLI commands ``greenforge plan`` and ``greenforge backtest`` (carbon-aware planning).

``schedule`` and ``queue`` (execution) live in :mod:`greenforge.cli.queue`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from greenforge.errors import ConfigError, DataError, UnknownZoneError
from greenforge.grid.series import IntensitySeries

if TYPE_CHECKING:
    from greenforge.config import Settings
    from greenforge.schedule.planner import Plan

_console = Console()


def _split(values: Sequence[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def _floats(text: str, what: str) -> list[float]:
    """Comma-separated numbers (hours, watts)."""
    out: list[float] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(
                f"bad {what} {part!r}: give numbers, comma-separated, e.g. 1,4,8."
            ) from None
        out.append(value)
    if not out:
        raise ConfigError(f"no {what} given: e.g. --{what.replace(' ', '-')} 4.")
    return out


def _iso(t_s: float) -> str:
    return dt.datetime.fromtimestamp(t_s, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def load_zone_files(
    paths: Sequence[Path],
    fill: str = "none",
    basis: str = "lca",
    zone: str | None = None,
) -> dict[str, IntensitySeries]:
    """Load intensity CSV files, one series per zone (files of one zone are concatenated).

    Portal exports name their zone; generic ``timestamp,value`` files take ``zone`` (else they
    are zone ``unknown``).
    """
    from greenforge.grid.files import load_csv_by_zone

    if not paths:
        raise ConfigError("no intensity files given: pass --file PATH (one or more).")
    return load_csv_by_zone(paths, fill=fill, basis=basis, zone=zone)  # reads each file once


def _history_forecast(
    series: IntensitySeries,
    forecaster_name: str,
    quantile: float | None,
    decision_s: float,
    end_s: float,
) -> IntensitySeries:
    """Forecast ``[decision, end)`` from the values of ``series`` before ``decision``."""
    from greenforge.schedule.forecast import create_forecaster, forecast_after

    forecaster = create_forecaster(forecaster_name, quantile)
    step = series.step_s
    # decisions fall on the data's grid: the last step that starts at or before decision_s
    phase = float(series.times_s[0])
    decision = phase + np.floor((decision_s - phase) / step + 1e-9) * step
    past = series.values_g_per_kwh[series.times_s < decision - 1e-6]
    horizon = int(np.ceil((end_s - decision) / step - 1e-9))
    if past.size and series.times_s[past.size - 1] + step < decision - 1e-6:
        raise DataError(
            f"the history for {series.zone!r} ends at {_iso(series.end_s)}, before the "
            f"decision time {_iso(decision)}; give data up to the job's earliest start."
        )
    values = forecast_after(forecaster, past, decision, step, horizon, series.zone)
    times = decision + step * np.arange(horizon, dtype=np.float64)
    return IntensitySeries(
        times_s=times,
        values_g_per_kwh=values,
        step_s=step,
        zone=series.zone,
        source=f"forecast:{forecaster.name} from {series.source}",
        signal=series.signal,
        basis=series.basis,
        kind="forecast",
        forecast=np.ones(horizon, dtype=np.bool_),
    )


def _provider_history(
    settings: Settings,
    zone: str,
    forecaster_name: str,
    quantile: float | None,
    decision_s: float,
    deadline_s: float,
) -> IntensitySeries:
    """Measured history before ``decision_s`` from the configured provider chain."""
    from greenforge.grid.chain import intensity_for
    from greenforge.schedule.forecast import create_forecaster

    forecaster = create_forecaster(forecaster_name, quantile)
    if forecaster.needs_future:
        raise ConfigError(
            "the oracle needs the actual intensity of the window: pass it with --file."
        )
    step = 3600.0  # providers answer hourly (or finer: then this asks for a little more)
    end = np.floor(decision_s / step) * step
    horizon = int(np.ceil((deadline_s - end) / step))
    need_s = (forecaster.history_steps(horizon, step) + 2) * step
    history = intensity_for(settings, zone, end - need_s, end)
    if history.kind not in ("measured", "mixed"):
        raise ConfigError(
            f"forecaster {forecaster_name!r} needs measured history of {zone!r}, but the "
            f"configured providers ({', '.join(settings.intensity_providers)}) gave a "
            f"{history.kind} series ({history.source}). Pass --file with the zone's recent "
            "intensity, configure a live provider, or use --forecast provider / "
            "embedded-profile."
        )
    return history


def _covers(series: IntensitySeries, start_s: float, end_s: float) -> bool:
    return series.start_s <= start_s + 1e-6 and series.end_s >= end_s - 1e-6


def plan_command(
    zone: list[str] = typer.Option(
        None, "--zone", "-z", help="Zone(s) the job may run in (repeat or comma-separate)."
    ),
    duration: str = typer.Option(..., "--duration", "-d", help="Job length: 90m, 4h, 1h30m."),
    deadline: str = typer.Option(
        ..., "--deadline", help="Latest end: ISO 8601 (2026-12-01T06:00Z) or relative (+24h)."
    ),
    earliest: str = typer.Option("now", "--earliest", help="Earliest start (default now)."),
    interruptible: bool = typer.Option(
        False, "--interruptible", help="The job may pause and resume (checkpoints)."
    ),
    checkpoint_overhead: str = typer.Option(
        "0s", "--checkpoint-overhead", help="Extra running time per resumption (e.g. 5m)."
    ),
    checkpoint_energy_j: float = typer.Option(
        0.0, "--checkpoint-energy-j", help="Extra energy per resumption (J)."
    ),
    min_chunk: str = typer.Option("0s", "--min-chunk", help="Shortest run between pauses."),
    migration_cost: str = typer.Option(
        "0s", "--migration-cost", help="Extra time to resume in another zone."
    ),
    power_w: float | None = typer.Option(
        None, "--power", help="Average job power in W (default: 1 kW assumed, CO2e scales)."
    ),
    power_profile: str | None = typer.Option(
        None,
        "--power-profile",
        help="Power (W) along the job's progress, one value per --profile-step: 300,300,120.",
    ),
    profile_step: str = typer.Option("1h", "--profile-step", help="Step of --power-profile."),
    file: list[Path] = typer.Option(
        None, "--file", "-f", help="Intensity CSV(s): a forecast of the window, or history."
    ),
    forecast: str | None = typer.Option(
        None,
        "--forecast",
        help="Forecaster (blend, profile-7d, seasonal-naive-1d, embedded-profile, oracle, ...). "
        "Default: the configured provider forecast; with --file, the file itself if it covers "
        "the window, else blend.",
    ),
    quantile: float | None = typer.Option(
        None, "--quantile", help="Plan on this quantile of the forecast error (e.g. 0.9)."
    ),
    compare: list[str] = typer.Option(
        None, "--compare", help="Other zones to compare in the advice (not used for the plan)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Plan a job: the cleanest time (and zone) to run it before its deadline."""
    from greenforge.config import load_settings
    from greenforge.grid.zones import resolve_zone
    from greenforge.schedule.forecast import DEFAULT_FORECASTER
    from greenforge.schedule.job import Job
    from greenforge.schedule.planner import plan_job
    from greenforge.timeutil import parse_duration_s, parse_time_s

    settings = load_settings()
    # the same resolution as every command (`de` -> `DE`; none given: env, config, cloud)
    zones = [resolve_zone(settings, z) for z in _split(zone)] or [resolve_zone(settings)]
    now_s = time.time()
    earliest_s = parse_time_s(earliest, now_s)
    deadline_s = parse_time_s(deadline, earliest_s if earliest != "now" else now_s)
    job = Job(
        duration_s=parse_duration_s(duration),
        earliest_start_s=earliest_s,
        deadline_s=deadline_s,
        zones=tuple(zones),
        interruptible=interruptible,
        checkpoint_overhead_s=_seconds(checkpoint_overhead, parse_duration_s),
        checkpoint_overhead_j=checkpoint_energy_j,
        min_chunk_s=_seconds(min_chunk, parse_duration_s),
        migration_cost_s=_seconds(migration_cost, parse_duration_s),
        power_w=power_w,
        power_profile_w=tuple(_floats(power_profile, "power profile")) if power_profile else None,
        profile_step_s=parse_duration_s(profile_step),
    )
    extra = [z for z in (resolve_zone(settings, c) for c in _split(compare)) if z not in job.zones]
    nearby = [] if compare else _nearby_zones(job.zones[0], job.zones)
    forecasts: dict[str, IntensitySeries] = {}
    actual: dict[str, IntensitySeries] | None = None
    label: str
    if not file:
        job = job.check_not_past(now_s)
        if forecast in (None, "provider"):
            from greenforge.grid.chain import intensity_for

            if quantile is not None:
                raise ConfigError(
                    "--quantile needs a forecast with a spread: use --forecast embedded-profile "
                    "(its stored quantiles) or a history --file with a forecaster."
                )

            for z in (*job.zones, *extra):
                forecasts[z] = intensity_for(
                    settings, z, job.earliest_start_s, job.deadline_s, forecast=True
                )
            label = "provider forecast (" + ", ".join(settings.intensity_providers) + ")"
        elif forecast.partition("@")[0] == "embedded-profile":
            from greenforge.grid.profile import profile_series

            q = 0.5 if quantile is None else quantile
            for z in (*job.zones, *extra):
                forecasts[z] = profile_series(
                    z,
                    job.earliest_start_s,
                    job.deadline_s,
                    basis=settings.intensity_basis,
                    q=q,
                    forecast=True,
                )
            label = "embedded typical profile"
        else:
            for z in (*job.zones, *extra):
                history = _provider_history(
                    settings, z, forecast, quantile, job.earliest_start_s, job.deadline_s
                )
                forecasts[z] = _history_forecast(
                    history, forecast, quantile, job.earliest_start_s, job.deadline_s
                )
            label = f"forecaster {forecast} on the provider's measured history"
    else:
        data = load_zone_files(
            file,
            fill=settings.intensity_fill,
            basis=settings.intensity_basis,
            zone=job.zones[0] if len(job.zones) == 1 else None,
        )
        for z in job.zones:
            if z not in data:
                raise UnknownZoneError(
                    z, data.keys(), source=f"the files given (they hold {', '.join(data)})"
                )
        name = forecast
        cover = all(_covers(data[z], job.earliest_start_s, job.deadline_s) for z in job.zones)
        if name is None:
            name = "file" if cover else DEFAULT_FORECASTER
        if name in ("file", "oracle"):
            if not cover:
                raise DataError(
                    "the files do not cover the job's window "
                    f"({_iso(job.earliest_start_s)} to {_iso(job.deadline_s)}); pass a "
                    "forecaster (--forecast blend) to forecast from them as history."
                )
            forecasts = dict(data)
            label = "the file itself (as a forecast)" if name == "file" else "oracle (the file)"
        else:
            for z, series in data.items():
                if z in job.zones or z in extra:
                    forecasts[z] = _history_forecast(
                        series, name, quantile, job.earliest_start_s, job.deadline_s
                    )
            label = f"forecaster {name} on the history before the earliest start"
            if cover:
                actual = {z: data[z] for z in job.zones}
        for z in extra:
            if z not in forecasts:
                from greenforge.grid.profile import profile_series

                forecasts[z] = profile_series(z, job.earliest_start_s, job.deadline_s)
    if nearby:
        from greenforge.grid.profile import profile_series

        for z in nearby:
            if z not in forecasts:
                forecasts[z] = profile_series(
                    z, job.earliest_start_s, job.deadline_s, basis=settings.intensity_basis
                )
    plan = plan_job(job, forecasts, actual=actual)
    if as_json:
        from greenforge.report.schedule_html import intensity_json

        out = plan.to_dict()
        out["forecast"] = label
        out["intensity"] = intensity_json(forecasts, job.earliest_start_s, job.deadline_s)
        typer.echo(json.dumps(out, indent=2))
        return
    _print_plan(plan, label)


def _nearby_zones(home: str, allowed: Sequence[str]) -> list[str]:
    """Embedded-profile zones of the same country as ``home`` (``US-*`` for ``US-TEX-ERCO``),
    compared in the advice when the user names no ``--compare`` zones."""
    from greenforge.grid.profile import profile_zones

    country = home.split("-")[0].upper()
    return [z for z in profile_zones() if z.split("-")[0] == country and z not in allowed]


def _seconds(text: str, parse: Callable[[str], float]) -> float:
    """A duration that may be zero (``0s``): overheads and costs."""
    raw = text.strip().lower()
    if raw in ("0", "0s", "0m", "0h", ""):
        return 0.0
    return parse(text)


def _print_plan(plan: Plan, label: str) -> None:
    table = Table(title=f"Plan for a {plan.job.duration_s / 3600:.3g} h job", title_justify="left")
    table.add_column("start")
    table.add_column("end")
    table.add_column("zone")
    table.add_column("hours", justify="right")
    for slot in plan.slots:
        table.add_row(
            _iso(slot.start_s), _iso(slot.end_s), slot.zone, f"{slot.duration_s / 3600:.3g}"
        )
    _console.print(table)
    per = " (assuming 1 kW)" if plan.power_assumed else f" at {plan.power_w:g} W"
    _console.print(f"forecast: {escape(label)} - {escape(plan.forecast_source)}", highlight=False)
    _console.print(
        f"expected {plan.expected_co2e_g:.4g} gCO2e{per}; running now: "
        f"{plan.run_now_co2e_g:.4g} g; saving {plan.saving_pct:.1f} %; "
        f"delay {plan.delay_s / 3600:.3g} h",
        highlight=False,
    )
    if plan.oracle_co2e_g is not None and plan.actual_co2e_g is not None:
        _console.print(
            f"actual {plan.actual_co2e_g:.4g} g (run now {plan.run_now_actual_co2e_g:.4g} g); "
            f"oracle {plan.oracle_co2e_g:.4g} g; regret {plan.regret_g:.4g} g",
            highlight=False,
        )
    for line in plan.advice:
        _console.print(f"- {escape(line)}", highlight=False)


def backtest_command(
    paths: list[Path] = typer.Argument(None, help="More intensity CSV files (as --file)."),
    file: list[Path] = typer.Option(
        None, "--file", "-f", help="Intensity CSV(s) to replay; several years/zones allowed."
    ),
    job_hours: str = typer.Option("4", "--job-hours", help="Job length(s) in hours: 1,4,8."),
    slack_hours: str = typer.Option("24", "--slack-hours", help="Slack(s) in hours: 12,24."),
    interruptible: bool = typer.Option(False, "--interruptible", help="Jobs may pause."),
    forecast: list[str] = typer.Option(
        None, "--forecast", help="Forecaster(s), comma-separated (default blend)."
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
    all_paths = [*(file or []), *(paths or [])]
    data = load_zone_files(
        all_paths, fill=settings.intensity_fill, basis=settings.intensity_basis, zone=zone
    )
    shapes = [
        JobShape(h, s)
        for h in _floats(job_hours, "job hours")
        for s in _floats(slack_hours, "slack hours")
    ]
    names = _split(forecast) or [DEFAULT_FORECASTER]
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
