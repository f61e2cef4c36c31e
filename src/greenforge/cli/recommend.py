"""CLI command ``greenforge recommend``: where and on what to run a job, ranked by CO2e.

The command parses, calls :func:`greenforge.hardware.recommend.recommend` and prints; the
ranking itself lives in the package.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from greenforge.errors import ConfigError

if TYPE_CHECKING:
    from greenforge.hardware.recommend import Option, Recommendation, Workload

_console = Console()
_WIDE = 200
"""Output width when stdout is not a terminal (a pipe or a log keeps whole rows)."""


def _split(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or []:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return tuple(out)


def _hours(seconds: float) -> str:
    hours = seconds / 3600.0
    if hours < 1:
        return f"{seconds / 60:.0f} min"
    if hours < 100:
        return f"{hours:.3g} h"
    return f"{hours / 24:.3g} d"


def _kg(value: float) -> str:
    return f"{value:.3g}"


def _workload(
    run_id: str | None,
    gpu_hours: float | None,
    accelerator: str | None,
    flops: float | None,
    precision: str,
) -> Workload:
    from greenforge.hardware.recommend import Workload

    given = [n for n, v in (("--run", run_id), ("--gpu-hours", gpu_hours), ("--flops", flops)) if v]
    if len(given) != 1:
        raise ConfigError(
            "describe the job one way: --run ID (a stored run), --gpu-hours N --accelerator X "
            f"(e.g. --gpu-hours 100 --accelerator H100) or --flops X --precision bf16; got "
            f"{', '.join(given) or 'none'}."
        )
    if gpu_hours is not None:
        if accelerator is None:
            raise ConfigError("--gpu-hours needs --accelerator (e.g. --accelerator H100).")
        return Workload.gpu_hours(gpu_hours, accelerator, precision)
    if flops is not None:
        return Workload.flops(flops, precision)
    from greenforge.config import load_settings
    from greenforge.report.store import RunStore

    with RunStore.for_settings(load_settings(), read_only=True) as store:
        record = store.get(str(run_id))
    return Workload.from_run(record)


def _print(rec: Recommendation, shown: list[Option]) -> None:
    from greenforge.hardware.recommend import sources_for
    from greenforge.timeutil import utc_iso_seconds

    global _console
    if not _console.is_terminal:
        _console = Console(width=_WIDE)

    _console.print(f"job: {escape(rec.workload.description)}", highlight=False)
    hourly = any(o.start_s is not None for o in shown)
    table = Table(title="ranked by total CO2e (location-based)", title_justify="left")
    cols = ["#", "provider region (zone)", "instance", "run time", "kWh", "g/kWh", "PUE"]
    cols += ["kg CO2e: op + emb = total [low-high]"]
    if hourly:
        cols.append("best start")
    cols += ["| CFE", "CFE-matched kg"]
    for col in cols:
        table.add_column(escape(col), justify="left" if col in cols[1:3] else "right")
    for i, o in enumerate(shown, 1):
        count = f"{o.count:g} x " if o.count else ""
        row = [
            str(i),
            f"{o.provider} {o.region} ({o.zone})",
            f"{o.instance}, {count}{o.accelerator}" if o.count else o.instance,
            _hours(o.duration_s),
            f"{o.energy_kwh:.4g}",
            f"{o.intensity_g_per_kwh:.0f} {o.intensity_kind}",
            f"{o.pue:g}",
            f"{_kg(o.operational_kg)} + {_kg(o.embodied_kg)} = {_kg(o.total_kg)} "
            f"[{_kg(o.total_low_kg)}-{_kg(o.total_high_kg)}]",
        ]
        if hourly:
            row.append("" if o.start_s is None else utc_iso_seconds(o.start_s))
        row += [
            "-" if o.cfe_share is None else f"{o.cfe_share:.0%}",
            "-" if o.market_co2e_kg is None else _kg(o.market_co2e_kg),
        ]
        table.add_row(*(escape(c) for c in row))
    _console.print(table)
    _console.print(
        "location-based (GHG Protocol Scope 2): ranking and total. Market-based indicator, "
        "right of '|': operational x (1 - provider-reported hourly CFE) + embodied; only "
        "Google reports CFE per region ('-': not reported).",
        highlight=False,
    )
    for line in rec.notes:
        _console.print(f"note: {escape(line)}", highlight=False)
    _console.print("assumptions:", highlight=False)
    for line in rec.assumptions:
        _console.print(f"  - {escape(line)}", highlight=False)
    _console.print("sources:", highlight=False)
    for line in sources_for(shown):
        _console.print(f"  - {escape(line)}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("recommend")
    def recommend_command(
        run_id: str | None = typer.Option(
            None, "--run", help="A stored run (id or unique prefix): its measured energy."
        ),
        gpu_hours: float | None = typer.Option(
            None, "--gpu-hours", help="Accelerator-hours of --accelerator the job needs."
        ),
        accelerator: str | None = typer.Option(
            None, "--accelerator", help="The accelerator of --gpu-hours: H100, A100, TPU-v5e..."
        ),
        flops: float | None = typer.Option(
            None, "--flops", help="Total floating-point operations of the job (e.g. 3e21)."
        ),
        precision: str = typer.Option("bf16", "--precision", help="bf16, fp16, fp8 or tf32."),
        provider: list[str] = typer.Option(
            None, "--provider", help="Providers allowed: aws, gcp, azure (default all)."
        ),
        region: list[str] = typer.Option(
            None, "--region", help="Regions allowed (repeat or comma-separate; default all)."
        ),
        accelerators: list[str] = typer.Option(
            None, "--accelerators", help="Accelerators allowed (default: all with figures)."
        ),
        deadline: str | None = typer.Option(
            None,
            "--deadline",
            help="Latest end (ISO 8601 or +48h): use hourly intensity and the planner's best "
            "start; default: annual averages.",
        ),
        start: str = typer.Option("now", "--start", help="Earliest start (default now)."),
        max_price: float | None = typer.Option(
            None, "--max-price", help="Highest price per hour (needs price data: none embedded)."
        ),
        top: int = typer.Option(10, "--top", help="Rows to show (0: all)."),
        all_sizes: bool = typer.Option(
            False, "--all-sizes", help="Every instance size, not the best per region/accelerator."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the ranking as JSON."),
    ) -> None:
        """Recommend where and on what to run a job: cloud provider, region and
        instance/accelerator ranked by total CO2e (operational x PUE + embodied), with bounds,
        run time, carbon-free-energy shares where reported, and sources.

        Describe the job by a stored run (--run ID), accelerator-hours (--gpu-hours 100
        --accelerator H100) or FLOPs (--flops 3e21 --precision bf16)."""
        from greenforge.config import load_settings
        from greenforge.hardware.recommend import Constraints, recommend, sources_for
        from greenforge.timeutil import parse_time_s

        if top < 0:
            raise ConfigError(f"--top must be >= 0, got {top}.")
        workload = _workload(run_id, gpu_hours, accelerator, flops, precision)
        now_s = time.time()
        start_s = parse_time_s(start, now_s)
        constraints = Constraints(
            providers=tuple(p.lower() for p in _split(provider)) or ("aws", "gcp", "azure"),
            regions=_split(region),
            accelerators=_split(accelerators),
            start_s=start_s,
            deadline_s=None if deadline is None else parse_time_s(deadline, start_s),
            max_price_per_h=max_price,
            all_sizes=all_sizes,
        )
        rec = recommend(workload, constraints, load_settings())
        shown = list(rec.options if top == 0 else rec.options[:top])
        if as_json:
            out = rec.to_dict()
            out["options"] = [o.to_dict() for o in shown]
            out["options_total"] = len(rec.options)
            out["sources"] = list(sources_for(shown))
            typer.echo(json.dumps(out, indent=2))
            return
        _print(rec, shown)
