"""CLI commands: ``greenforge grid zones|show|forecast|compare`` (readable tables, ``--json``)."""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from greenforge.config import Settings, load_settings
from greenforge.errors import ConfigError
from greenforge.grid.series import IntensitySeries
from greenforge.timeutil import parse_time_s, utc_iso_seconds

grid_app = typer.Typer(
    help="Know the grid: carbon intensity of a zone, past, typical and forecast.",
    no_args_is_help=True,
)

_TABLE_ROWS = 48
_MAX_RANGE_S = 100 * 365.25 * 86400.0  # a typo'd year must not build millions of points


def series_json(series: IntensitySeries) -> dict[str, Any]:
    """The stable JSON shape of ``grid show`` / ``grid forecast``."""
    return {
        "zone": series.zone,
        "source": series.source,
        "signal": series.signal,
        "basis": series.basis,
        "kind": series.kind,
        "step_s": series.step_s,
        "points": [
            {
                "time": utc_iso_seconds(float(t)),
                "intensity_g_per_kwh": round(float(v), 3),
                "estimated": bool(e),
                "forecast": bool(f),
            }
            for t, v, e, f in zip(
                series.times_s,
                series.values_g_per_kwh,
                series.estimated_flags,
                series.forecast_flags,
                strict=True,
            )
        ],
    }


@contextlib.contextmanager
def _fallback_notes() -> Iterator[None]:
    """Show a fallback in the provider chain as one plain ``warning:`` line on stderr (not
    Python's warning format with a source file and line); other warnings pass through."""
    from greenforge.grid.chain import GridFallbackWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GridFallbackWarning)
        yield
    err = Console(stderr=True)
    shown: set[str] = set()
    for w in caught:
        if issubclass(w.category, GridFallbackWarning):
            text = str(w.message)
            if text not in shown:
                shown.add(text)
                # one line in a log or a pipe (rich would wrap it at 80 columns)
                err.print(
                    f"[yellow]warning:[/] {escape(text)}",
                    highlight=False,
                    soft_wrap=not err.is_terminal,
                )
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _settings(providers: str | None, basis: str | None, fill: str | None) -> Settings:
    return load_settings(intensity_providers=providers, intensity_basis=basis, intensity_fill=fill)


_ZONE_HELP = (
    "Grid zone, e.g. DE, GB, US-CAL-CISO (default: GREENFORGE_ZONE, the config file's zone, "
    "else the cloud region)."
)


def _print_series(series: IntensitySeries, title: str) -> None:
    console = Console()
    values = series.values_g_per_kwh
    # source and zone are data (file names, provider error text): never rich markup
    console.print(f"[bold]{title}[/]  zone [cyan]{escape(series.zone)}[/]")
    console.print(
        escape(
            f"source: {series.source}\nsignal: {series.signal} ({series.basis}), kind: "
            f"{series.kind}, step: {series.step_s:g} s, points: {len(series)}"
        ),
        highlight=False,
    )
    if series.kind == "annual":
        console.print("[yellow]annual average: no time variation is known for this zone[/]")
    elif series.kind == "profile":
        console.print("[yellow]typical profile (median of 2021-2023), not a measurement[/]")
    table = Table()
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("g CO2e/kWh", justify="right", no_wrap=True)
    table.add_column("flags")
    for i in range(min(len(series), _TABLE_ROWS)):
        flags = ",".join(
            name
            for name, on in (
                ("estimated", series.estimated_flags[i]),
                ("forecast", series.forecast_flags[i]),
            )
            if on
        )
        table.add_row(utc_iso_seconds(float(series.times_s[i])), f"{values[i]:.1f}", flags)
    console.print(table)
    if len(series) > _TABLE_ROWS:
        console.print(f"... {len(series) - _TABLE_ROWS} more points (use --json for all).")
    console.print(
        f"mean {float(np.mean(values)):.1f}, min {float(np.min(values)):.1f}, "
        f"max {float(np.max(values)):.1f} g/kWh",
        highlight=False,
    )


def _matches(pattern: str | None, *texts: str) -> bool:
    """``True`` when ``pattern`` (case-insensitive; a substring, or a glob with ``*``/``?``)
    matches any of ``texts``; no pattern matches everything."""
    if not pattern:
        return True
    import fnmatch

    want = pattern.strip().lower()
    if any(c in want for c in "*?["):
        return any(fnmatch.fnmatchcase(t.lower(), want) for t in texts)
    return any(want in t.lower() for t in texts)


_ZONES_NOTE = (
    "2-letter and grid zones: Electricity Maps yearly average, life-cycle (lca). A 3-letter "
    "code is Ember's figure for the same country: direct combustion, its own latest year, so "
    "ZW and ZWE differ by design; prefer the 2-letter zone."
)


@grid_app.command("zones")
def zones_cmd(
    pattern: str | None = typer.Argument(
        None,
        metavar="[PATTERN]",
        help="Only zones whose code or name contains PATTERN (case-insensitive; * and ? glob).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    cloud: bool = typer.Option(False, "--cloud", help="List cloud regions and their zones."),
    show_all: bool = typer.Option(
        False, "--all", help="One row per code: list 3-letter Ember codes as rows of their own."
    ),
) -> None:
    """List the zones GreenForge knows offline (annual average; hourly profile where marked)."""
    from greenforge.grid.profile import has_profile
    from greenforge.grid.zones import annual_intensity, cloud_regions, country_aliases, known_zones

    if cloud:
        regions = [
            r
            for r in cloud_regions()
            if _matches(pattern, r.provider, r.region, r.location, r.zone)
        ]
        if as_json:
            typer.echo(
                json.dumps(
                    [
                        {
                            "provider": r.provider,
                            "region": r.region,
                            "zone": r.zone,
                            "location": r.location,
                            "provider_factor_g_per_kwh": r.provider_factor_g_per_kwh,
                        }
                        for r in regions
                    ],
                    indent=1,
                )
            )
            return
        table = Table(title=f"Cloud regions -> grid zones ({len(regions)})")
        table.add_column("provider", no_wrap=True)
        table.add_column("region", no_wrap=True)
        table.add_column("location", overflow="fold")
        table.add_column("zone", no_wrap=True)
        for reg in regions:
            table.add_row(reg.provider, reg.region, escape(reg.location), reg.zone)
        Console().print(table)
        return
    aliases = country_aliases()
    rows: list[dict[str, Any]] = []
    by_zone: dict[str, dict[str, Any]] = {}
    for zone in known_zones():
        a = annual_intensity(zone)
        row = {
            "zone": zone,
            "name": a.name,
            "annual_g_per_kwh": a.intensity_g_per_kwh,
            "year": a.year,
            "dataset": a.dataset,
            "basis": a.basis,
            "hourly_profile": has_profile(zone),
            "same_country_as": aliases.get(zone),
        }
        by_zone[zone] = row
        if _matches(pattern, zone, a.name):
            rows.append(row)
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        raise ConfigError(
            f"no zone matches {pattern!r}: try part of a country name or code "
            "(e.g. `greenforge grid zones germ`), or `greenforge grid zones` for all."
        )
    if not show_all:
        # one row a country: the 3-letter Ember code is shown beside its 2-letter zone
        shown = {r["zone"] for r in rows}
        rows = [r for r in rows if r["same_country_as"] not in shown]
    also: dict[str, dict[str, Any]] = {}
    for a3, a2 in aliases.items():
        also[a2] = by_zone[a3]
    table = Table(title=f"Grid zones ({len(rows)}; * = typical hourly profile)")
    table.add_column("zone", no_wrap=True, min_width=4)
    table.add_column("name", overflow="fold", min_width=10)
    table.add_column("g/kWh", justify="right", no_wrap=True)
    table.add_column("basis", no_wrap=True)
    table.add_column("year", no_wrap=True)
    table.add_column("Ember code", overflow="fold")
    for r in rows:
        mark = "*" if r["hourly_profile"] else ""
        other = also.get(r["zone"]) if not show_all else None
        if other is None or other["zone"] == r["zone"]:
            alias = ""
        elif other["dataset"] == r["dataset"]:
            alias = f"{other['zone']} (same figure)"
        else:
            alias = f"{other['zone']} {other['annual_g_per_kwh']:.0f} ({other['year']})"
        table.add_row(
            f"{r['zone']}{mark}",
            escape(str(r["name"])),
            f"{r['annual_g_per_kwh']:.0f}",
            str(r["basis"]),
            str(r["year"]),
            alias,
        )
    console = Console()
    console.print(table)
    console.print(_ZONES_NOTE, highlight=False, soft_wrap=not console.is_terminal)


def _range(
    at: str | None, start: str | None, end: str | None, default_h: float
) -> tuple[float, float]:
    if at is not None and (start is not None or end is not None):
        raise ConfigError("use either --at TIME or --from/--to, not both.")
    now = time.time()
    if at is not None:
        t = parse_time_s(at, now)
        return t, t + 1.0
    s = parse_time_s(start, now) if start is not None else None
    e = parse_time_s(end, now) if end is not None else None
    if s is None and e is None:
        return now - default_h * 3600.0, now
    if s is None:
        assert e is not None
        s = e - default_h * 3600.0
    if e is None:
        e = s + default_h * 3600.0
    if e <= s:
        raise ConfigError(
            f"--to ({utc_iso_seconds(e)}) must be after --from ({utc_iso_seconds(s)})."
        )
    if e - s > _MAX_RANGE_S:
        raise ConfigError(
            f"--from {utc_iso_seconds(s)} to --to {utc_iso_seconds(e)} spans "
            f"{(e - s) / (365.25 * 86400):.0f} years: at most 100 years at a time. "
            "Check the years."
        )
    return s, e


@grid_app.command("show")
def show_cmd(
    zone: str | None = typer.Argument(None, help=_ZONE_HELP),
    at: str | None = typer.Option(None, "--at", help="One time (ISO 8601, UTC if no offset)."),
    start: str | None = typer.Option(None, "--from", help="Start time (default: 24 h ago)."),
    end: str | None = typer.Option(None, "--to", help="End time (default: now)."),
    files: list[Path] = typer.Option(
        [], "--file", help="Portal or timestamp,value CSV(s) instead of the configured provider."
    ),
    basis: str | None = typer.Option(None, "--basis", help="lca (default) or direct."),
    fill: str | None = typer.Option(
        None, "--fill", help="Gap policy for files: none, ffill, interpolate, profile."
    ),
    providers: str | None = typer.Option(
        None, "--providers", help="Provider chain, e.g. electricitymaps,embedded."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Intensity of ZONE over a period (or at one time)."""
    from greenforge.grid.chain import intensity_for
    from greenforge.grid.providers.files import FilesProvider
    from greenforge.grid.zones import resolve_zone

    settings = _settings(providers, basis, fill)
    if files:
        # the file names its zone; a zone given anywhere (same order as below) still wins
        given = zone is not None or settings.zone is not None or settings.cloud_region
        fz = resolve_zone(settings, zone) if given else None
        provider = FilesProvider(
            files, basis=settings.intensity_basis, fill=settings.intensity_fill, zone=fz
        )
        if at is None and start is None and end is None:
            series = provider.series()
        else:
            s, e = _range(at, start, end, 24.0)
            series = provider.history(fz or provider.series().zone, s, e)
    else:
        z = resolve_zone(settings, zone)
        s, e = _range(at, start, end, 24.0)
        with _fallback_notes():
            series = intensity_for(settings, z, s, e)
    if as_json:
        typer.echo(json.dumps(series_json(series), indent=1))
    else:
        _print_series(series, "Grid intensity")


@grid_app.command("forecast")
def forecast_cmd(
    zone: str | None = typer.Argument(None, help=_ZONE_HELP),
    hours: float = typer.Option(48.0, "--hours", help="Horizon in hours."),
    providers: str | None = typer.Option(None, "--providers", help="Provider chain."),
    basis: str | None = typer.Option(None, "--basis", help="lca (default) or direct."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Forecast of ZONE for the next --hours (embedded: the typical profile, labelled so)."""
    from greenforge.grid.chain import intensity_for
    from greenforge.grid.zones import resolve_zone

    if not (0 < hours <= 24 * 14):
        raise ConfigError(f"bad --hours {hours!r}: use 0 < hours <= 336 (two weeks).")
    settings = _settings(providers, basis, None)
    z = resolve_zone(settings, zone)
    now = time.time()
    with _fallback_notes():
        series = intensity_for(settings, z, now, now + hours * 3600.0, forecast=True)
    if as_json:
        typer.echo(json.dumps(series_json(series), indent=1))
    else:
        _print_series(series, f"Forecast, next {hours:g} h")


@grid_app.command("compare")
def compare_cmd(
    zones: list[str] = typer.Argument(..., help="Two or more zones."),
    start: str | None = typer.Option(None, "--from", help="Start time (default: 24 h ago)."),
    end: str | None = typer.Option(None, "--to", help="End time (default: now)."),
    providers: str | None = typer.Option(None, "--providers", help="Provider chain."),
    basis: str | None = typer.Option(None, "--basis", help="lca (default) or direct."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Compare zones' mean intensity over a period (cleanest first)."""
    from greenforge.grid.chain import intensity_for
    from greenforge.grid.ops import mean_intensity
    from greenforge.grid.zones import resolve_zone

    settings = _settings(providers, basis, None)
    s, e = _range(None, start, end, 24.0)
    rows: list[dict[str, Any]] = []
    for zone in zones:
        z = resolve_zone(settings, zone)
        with _fallback_notes():
            series = intensity_for(settings, z, s, e)
        rows.append(
            {
                "zone": z,
                "mean_g_per_kwh": round(float(mean_intensity(series, [s], [e])[0]), 3),
                "min_g_per_kwh": round(float(np.min(series.values_g_per_kwh)), 3),
                "max_g_per_kwh": round(float(np.max(series.values_g_per_kwh)), 3),
                "kind": series.kind,
                "source": series.source,
            }
        )
    rows.sort(key=lambda r: float(r["mean_g_per_kwh"]))
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    # a source is one long token (no spaces): in a cell it would be split mid-word, so the
    # table numbers the sources (zone suffix dropped: it is in the zone column) and lists them
    # in full below
    sources: dict[str, int] = {}
    table = Table(title=f"Zones compared, {utc_iso_seconds(s)} to {utc_iso_seconds(e)}")
    table.add_column("zone", no_wrap=True)
    for col in ("mean", "min", "max"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("source", justify="right", no_wrap=True)
    for r in rows:
        src = str(r["source"]).removesuffix(f":{r['zone']}")
        number = sources.setdefault(src, len(sources) + 1)
        table.add_row(
            escape(str(r["zone"])),
            f"{r['mean_g_per_kwh']:.1f}",
            f"{r['min_g_per_kwh']:.1f}",
            f"{r['max_g_per_kwh']:.1f}",
            str(r["kind"]),
            f"[{number}]",
        )
    console = Console()
    console.print(table)
    for src, number in sources.items():
        console.print(escape(f"[{number}] {src}"), highlight=False, soft_wrap=True)
    console.print(
        "g CO2e/kWh; annual = yearly average, profile = typical day, not measured.",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(grid_app, name="grid")
