"""What ``greenforge plan``, ``schedule`` and ``queue add`` share: the planning options (one
name each), turning them into a :class:`~greenforge.schedule.job.Job` and
:class:`~greenforge.schedule.pipeline.PlanOptions`, and printing the plan (one table, one JSON).

The planning itself is :func:`greenforge.schedule.pipeline.make_plan`; nothing here decides
anything but how text becomes numbers and numbers become text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from greenforge.errors import ConfigError, InfeasibleError

if TYPE_CHECKING:
    from greenforge.config import Settings
    from greenforge.schedule.job import Job
    from greenforge.schedule.pipeline import PlanOptions, PlanResult

# -- the options, defined once ----------------------------------------------------------------
ZoneOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--zone", "-z", help="Zone(s) the job may run in (repeat or comma-separate; first = home)."
    ),
]
DurationOpt = Annotated[str, typer.Option("--duration", "-d", help="Job length: 90m, 4h, 1h30m.")]
DeadlineOpt = Annotated[
    str | None,
    typer.Option(
        "--deadline",
        help="Latest end: ISO 8601 (2026-12-01T06:00Z), unix s, or relative (+24h, from "
        "--earliest if given, else now). Default: 24 h of slack after the duration.",
    ),
]
EarliestOpt = Annotated[
    str | None, typer.Option("--earliest", help="Earliest start: ISO 8601, +2h, now (default).")
]
StartOpt = Annotated[
    str | None, typer.Option("--start", hidden=True, help="Deprecated: use --earliest.")
]
InterruptibleOpt = Annotated[
    bool, typer.Option("--interruptible", help="The job may pause and resume (checkpoints).")
]
CheckpointOverheadOpt = Annotated[
    str, typer.Option("--checkpoint-overhead", help="Extra running time per resumption (5m).")
]
CheckpointEnergyOpt = Annotated[
    float, typer.Option("--checkpoint-energy-j", help="Extra energy per resumption (J).")
]
MinChunkOpt = Annotated[
    str, typer.Option("--min-chunk", help="Shortest run between pauses (e.g. 1h).")
]
MigrationCostOpt = Annotated[
    str, typer.Option("--migration-cost", help="Extra time to resume in another zone (10m).")
]
MigrationEnergyOpt = Annotated[
    float, typer.Option("--migration-energy-j", help="Extra energy to resume in another zone (J).")
]
PowerOpt = Annotated[
    float | None,
    typer.Option("--power", help="Average job power in W (default: 1 kW assumed, CO2e scales)."),
]
PowerProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--power-profile",
        help="Power (W) along the job's progress, one value per --profile-step: 300,300,120.",
    ),
]
ProfileStepOpt = Annotated[str, typer.Option("--profile-step", help="Step of --power-profile.")]
FileOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--file", "-f", help="Intensity CSV(s): a forecast of the window, or history before it."
    ),
]
ForecastOpt = Annotated[
    str | None,
    typer.Option(
        "--forecast",
        help="Forecaster (auto, learned, ensemble, blend, profile-7d, embedded-profile, "
        "oracle, ...). Default: the configured provider forecast (without a key: the embedded "
        "typical profile); with --file, the file itself if it covers the window, else auto "
        "(per zone, the forecaster that won on held-out 2023).",
    ),
]
QuantileOpt = Annotated[
    float | None,
    typer.Option("--quantile", help="Plan on this quantile of the forecast (e.g. 0.9)."),
]
CompareOpt = Annotated[
    list[str] | None,
    typer.Option("--compare", help="Other zones to compare in the advice (not used to run)."),
]
PueOpt = Annotated[
    str | None,
    typer.Option(
        "--pue",
        help="Facility PUE: a number (1.4) or a PUE series spec (greenforge.pue); intensity is "
        "multiplied by it before planning.",
    ),
]
NameOpt = Annotated[
    str | None, typer.Option("--name", help="Job name (default: the command, else 'job').")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the plan as JSON on stdout.")]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlanArgs:
    """The planning options as typed on the command line (text, before parsing)."""

    zone: Sequence[str] | None
    duration: str
    deadline: str | None = None
    earliest: str | None = None
    start: str | None = None
    interruptible: bool = False
    checkpoint_overhead: str = "0s"
    checkpoint_energy_j: float = 0.0
    min_chunk: str = "0s"
    migration_cost: str = "0s"
    migration_energy_j: float = 0.0
    power: float | None = None
    power_profile: str | None = None
    profile_step: str = "1h"
    file: Sequence[Path] | None = None
    forecast: str | None = None
    quantile: float | None = None
    compare: Sequence[str] | None = None
    pue: str | None = None
    name: str | None = None

    @classmethod
    def pick(cls, params: Mapping[str, Any]) -> PlanArgs:
        """Returns the planning options among a command's parameters (``locals()``): every
        command that plans names them the same way."""
        return cls(**{f.name: params[f.name] for f in dataclasses.fields(cls)})

    def resolve(
        self, settings: Settings, now_s: float, *, replay: bool, default_name: str = "job"
    ) -> tuple[Job, PlanOptions]:
        """Returns the job and the pipeline options these arguments describe.

        ``replay`` accepts a past window when files are given (``plan``, a dry run); a job that
        will run never may. Raises :class:`ConfigError` naming a bad value.
        """
        from greenforge.grid.zones import resolve_zone
        from greenforge.schedule.job import Job
        from greenforge.schedule.pipeline import PlanOptions
        from greenforge.timeutil import parse_duration_s, parse_time_s, utc_iso_seconds

        earliest = self.earliest
        if self.start is not None:
            if earliest is not None and earliest != self.start:
                raise ConfigError(
                    f"--start {self.start!r} and --earliest {earliest!r} disagree: --start is "
                    "the old name of --earliest; give only --earliest."
                )
            typer.echo("note: --start is deprecated; use --earliest.", err=True)
            earliest = self.start
        zones = [resolve_zone(settings, z) for z in split(self.zone)] or [resolve_zone(settings)]
        duration_s = parse_duration_s(self.duration)
        earliest_s = now_s if earliest is None else parse_time_s(earliest, now_s)
        base_s = now_s if earliest is None else earliest_s  # relative deadlines count from here
        if self.deadline is None:
            deadline_s = base_s + duration_s + 86400.0
        else:
            deadline_s = parse_time_s(self.deadline, base_s)
        files = tuple(self.file or ())
        if deadline_s <= now_s and not (replay and files):
            raise InfeasibleError(
                f"the deadline {utc_iso_seconds(deadline_s)} is in the past (now "
                f"{utc_iso_seconds(now_s)}); give a future deadline, e.g. --deadline +24h"
                + ("." if replay else " (replays of past data: `greenforge plan --file`).")
            )
        profile = floats(self.power_profile, "power profile") if self.power_profile else None
        job = Job(
            duration_s=duration_s,
            earliest_start_s=earliest_s,
            deadline_s=deadline_s,
            zones=tuple(zones),
            interruptible=self.interruptible,
            checkpoint_overhead_s=seconds(self.checkpoint_overhead),
            checkpoint_overhead_j=self.checkpoint_energy_j,
            min_chunk_s=seconds(self.min_chunk),
            migration_cost_s=seconds(self.migration_cost),
            migration_cost_j=self.migration_energy_j,
            power_w=self.power,
            power_profile_w=tuple(profile) if profile else None,
            profile_step_s=parse_duration_s(self.profile_step),
            name=self.name or default_name,
        )
        options = PlanOptions(
            forecast=self.forecast,
            quantile=self.quantile,
            files=files,
            compare=tuple(resolve_zone(settings, c) for c in split(self.compare)),
            # --pue wins; else the facility PUE the user configured (GREENFORGE_PUE, the
            # config file), the same one `run` and `track` charge
            pue=self.pue if self.pue is not None else settings.pue or settings.pue_series,
            allow_past=replay,
        )
        return job, options


# -- parsing helpers ---------------------------------------------------------------------------
def split(values: Sequence[str] | None) -> list[str]:
    """Repeated and comma-separated values, flattened (``-z GB,DE -z FR``)."""
    out: list[str] = []
    for v in values or []:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def floats(text: str, what: str) -> list[float]:
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


def seconds(text: str) -> float:
    """A duration that may be zero (``0``, ``0s``): overheads and costs."""
    from greenforge.timeutil import parse_duration_s

    raw = text.strip().lower()
    if raw in ("0", "0s", "0m", "0h", ""):
        return 0.0
    return parse_duration_s(text)


# -- output ------------------------------------------------------------------------------------
def _when(t_s: float) -> str:
    return dt.datetime.fromtimestamp(t_s, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def plan_document(result: PlanResult) -> dict[str, Any]:
    """The ``--json`` document: the plan, its forecast label, the PUE effect and the intensity
    the planner saw over the window (for ``greenforge report``)."""
    from greenforge.report.schedule_html import intensity_json

    out = result.to_dict()
    job = result.plan.job
    out["intensity"] = intensity_json(result.intensity, job.earliest_start_s, job.deadline_s)
    return out


def print_plan_json(result: PlanResult) -> None:
    """The plan as JSON on stdout."""
    typer.echo(json.dumps(plan_document(result), indent=2))


def print_plan(result: PlanResult, console: Console) -> None:
    """The plan as a table and a few lines (the same for ``plan``, ``schedule``, ``queue add``)."""
    from greenforge.schedule.planner import LOW_SAVING_PCT

    plan = result.plan
    table = Table(title=f"Plan for a {plan.job.duration_s / 3600:.3g} h job", title_justify="left")
    for col in ("#", "start (UTC)", "end (UTC)", "zone", "hours"):
        table.add_column(col, justify="right" if col in ("#", "hours") else "left")
    for i, slot in enumerate(plan.slots, start=1):
        table.add_row(
            str(i),
            _when(slot.start_s),
            _when(slot.end_s),
            escape(slot.zone),
            f"{slot.duration_s / 3600:.3g}",
        )
    console.print(table)
    per = " (assuming 1 kW)" if plan.power_assumed else f" at {plan.power_w:g} W"
    lines = [f"forecast: {result.forecast_label} - {plan.forecast_source}"]
    lines.extend(f"forecast in {z}: {text}" for z, text in result.zone_forecasts.items())
    lines += [
        f"expected {plan.expected_co2e_g:.4g} gCO2e{per}; running now: "
        f"{plan.run_now_co2e_g:.4g} g; saving {plan.saving_pct:.1f} %; "
        f"delay {plan.delay_s / 3600:.3g} h",
    ]
    if plan.saving_pct >= LOW_SAVING_PCT and plan.reason:  # else the advice says why
        lines.append(f"why: {plan.reason}")
    if result.pue is not None:
        lines.append(result.pue.line())
    if plan.oracle_co2e_g is not None and plan.actual_co2e_g is not None:
        lines.append(
            f"actual {plan.actual_co2e_g:.4g} g (run now {plan.run_now_actual_co2e_g:.4g} g); "
            f"oracle {plan.oracle_co2e_g:.4g} g; regret {plan.regret_g:.4g} g"
        )
    lines.extend(f"- {a}" for a in plan.advice)
    for line in lines:
        console.print(escape(line), highlight=False)


__all__ = ["PlanArgs", "plan_document", "print_plan", "print_plan_json"]
