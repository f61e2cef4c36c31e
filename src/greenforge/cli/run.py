"""CLI: ``greenforge run -- CMD ARGS...`` and ``greenforge runs list|show|export``.

``greenforge run`` measures a command's whole process tree, prints a summary table (to stderr,
so the command's own stdout stays clean), stores the run and exits with the command's exit
code. ``runs list --json`` is a stable contract: a JSON array of objects with at least ``id``,
``status`` (running|completed|incomplete|failed), ``started_at`` (ISO 8601 UTC),
``duration_s``, ``energy_j`` and ``co2e_g``.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from greenforge.config import load_settings
from greenforge.errors import ConfigError
from greenforge.records import RunRecord
from greenforge.units import J_PER_KWH

if TYPE_CHECKING:
    from greenforge.report.store import RunStore

runs_app = typer.Typer(
    name="runs",
    help="List, show and export stored runs.",
    no_args_is_help=True,
    add_completion=False,
)


def _fmt_energy(energy_j: float) -> str:
    if energy_j >= 0.1 * J_PER_KWH:
        return f"{energy_j / J_PER_KWH:.4g} kWh"
    if energy_j >= 1000:
        return f"{energy_j / 1000:.4g} kJ"
    return f"{energy_j:.4g} J"


def _fmt_g(co2e_g: float | None) -> str:
    if co2e_g is None:
        return "-"
    if co2e_g >= 1000:
        return f"{co2e_g / 1000:.4g} kg"
    if co2e_g >= 1:
        return f"{co2e_g:.4g} g"
    return f"{co2e_g * 1000:.4g} mg"


_ATTRIBUTION = {
    "process": "process (the tracked process tree's share of the machine and of each GPU's use)",
    "machine": "machine (the whole machine's energy, other work included)",
}


def _zone_why(record: RunRecord) -> str:
    """`` (from AWS_REGION=eu-central-1)`` when the zone came from a cloud region."""
    why = record.metadata.get("zone_source")
    return f" (from {why})" if isinstance(why, str) and "=" in why else ""


def _pue_row(record: RunRecord) -> str:
    """The run's PUE and its source; a PUE(t) run's energy-weighted PUE and series."""
    e = record.emissions
    assert e is not None
    if not e.pue_source.startswith("PUE(t)"):
        return f"{e.pue:g} ({e.pue_source})"
    from greenforge.pue import run_pue_text  # (numpy: only for PUE(t) runs)

    return run_pue_text(e.pue, e.pue_source, record.metadata)


def render_record(record: RunRecord, console: Console) -> None:
    """A rich summary of one run: components, emissions with bounds, provenance, windows."""
    head = Table(title=escape(f"GreenForge run {record.id} ({record.name})"), show_header=False)
    head.add_column("what", style="bold")
    head.add_column("value")
    head.add_row("status", record.status)
    head.add_row("started", record.started_at)
    head.add_row("duration", f"{record.duration_s:.2f} s")
    head.add_row(
        "energy",
        f"{_fmt_energy(record.energy_j)} "
        f"(low {_fmt_energy(record.energy_low_j)}, high {_fmt_energy(record.energy_high_j)})",
    )
    e = record.emissions
    if e is not None:
        head.add_row(
            "CO2e (operational)",
            f"{_fmt_g(e.co2e_g)} (low {_fmt_g(e.low_g)}, high {_fmt_g(e.high_g)})",
        )
        kind = "time-resolved" if e.intensity.time_resolved else "annual/static average"
        if e.intensity.kind == "profile":
            kind = "hourly typical profile, not measured"
        head.add_row(
            "grid intensity",
            escape(
                f"{e.mean_intensity_g_per_kwh:.4g} g/kWh, zone {e.intensity.zone}"
                f"{_zone_why(record)}, "
                f"{e.intensity.source} ({e.intensity.signal}, {e.intensity.basis}, {kind})"
            ),
        )
        head.add_row("PUE", escape(_pue_row(record)))
    if record.embodied is not None:
        b = record.embodied
        head.add_row(
            "CO2e (embodied, separate)",
            escape(
                f"{_fmt_g(b.co2e_g)} ({b.device_embodied_kg:g} kg over "
                f"{b.lifetime_s / 31_557_600:g} y; {b.source})"
            ),
        )
    if "exit_code" in record.metadata:
        head.add_row("exit code", str(record.metadata["exit_code"]))
    attribution = record.metadata.get("attribution")
    if isinstance(attribution, str):
        head.add_row("attribution", escape(_ATTRIBUTION.get(attribution, attribution)))
    console.print(head)

    comps = Table(title="energy by component")
    for col in ("component", "energy", "low", "high", "method"):
        comps.add_column(col)
    for c in record.components:
        comps.add_row(
            escape(c.component),
            _fmt_energy(c.energy_j),
            _fmt_energy(c.low_j),
            _fmt_energy(c.high_j),
            escape(c.method),
        )
    console.print(comps)
    if record.windows:
        wins = Table(title="windows")
        for col in ("window", "duration", "energy", "CO2e"):
            wins.add_column(col)
        for w in record.windows:
            wins.add_row(
                escape(w.path), f"{w.duration_s:.2f} s", _fmt_energy(w.energy_j), _fmt_g(w.co2e_g)
            )
        console.print(wins)
    if record.prediction is not None:
        p = record.prediction
        console.print(
            f"prediction after {p.windows_seen}/{p.windows_total} windows: "
            f"{_fmt_energy(p.energy_j)}, {_fmt_g(p.co2e_g)}, {p.duration_s:.1f} s"
        )
    if record.meters:
        # one line a run: why each meter was used or skipped is `greenforge doctor`'s (and in
        # `runs show ID --json`), not repeated on every run
        from greenforge.records import meter_summary

        console.print(
            f"[dim]meters: {escape(meter_summary(record.meters))} (`greenforge doctor` for "
            "details)[/]",
            highlight=False,
        )
    for text in record.warnings:  # one line each, however narrow the terminal
        console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


def _store() -> RunStore:
    """The run store, read-only: listing, showing and exporting runs never write to it."""
    from greenforge.report.store import RunStore

    return RunStore.for_settings(load_settings(), read_only=True)


def _report_problems(store: RunStore) -> None:
    """One stderr line per record the store had to skip (the others are still shown)."""
    console = Console(stderr=True)
    for text in store.problems:
        console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False)


def run(
    ctx: typer.Context,
    command: list[str] = typer.Argument(None, help="The command to measure, after `--`."),
    zone: str | None = typer.Option(None, "--zone", help="Grid zone, e.g. DE, GB, US-CAL-CISO."),
    name: str | None = typer.Option(None, "--name", help="Run name (default: the command)."),
    interval: float | None = typer.Option(
        None, "--interval", help="Sampling interval in seconds (default: setting interval_s)."
    ),
    prometheus: bool = typer.Option(
        False, "--prometheus", help="Serve Prometheus /metrics on 127.0.0.1 while it runs."
    ),
    port: int | None = typer.Option(
        None, "--port", help="Port for --prometheus (implies it; default 0: a free one, printed)."
    ),
    pushgateway: str | None = typer.Option(
        None, "--pushgateway", help="Also push the metrics to this Pushgateway URL."
    ),
    pue: str | None = typer.Option(
        None,
        "--pue",
        help="Facility PUE: a number (1.2), a timestamp,pue CSV, or "
        "model:<design>:<temperature.csv>[:it_load] (PUE over time; see docs/pue.md). "
        "Default: setting pue / pue_series (GREENFORGE_PUE).",
    ),
) -> None:
    """Run CMD ARGS..., measure its whole process tree, store the run, keep its exit code."""
    from greenforge.tracker import run_command

    argv = list(command or []) + list(ctx.args)
    if not argv:
        raise ConfigError("no command to run: use `greenforge run [OPTIONS] -- CMD ARGS...`.")
    if argv[0].startswith("-"):
        raise ConfigError(
            f"unknown option {argv[0]!r} for `greenforge run`: see `greenforge run --help`; "
            "options go before `--`, the command after it."
        )
    settings = load_settings(interval_s=interval, pue=pue)
    with _forward_termination() as on_spawn:
        code, record = run_command(
            argv,
            settings,
            name=name,
            zone=zone,
            on_spawn=on_spawn,
            prometheus_port=port if port is not None else (0 if prometheus else None),
            pushgateway=pushgateway,
        )
    render_record(record, Console(stderr=True))
    raise typer.Exit(code)


@contextlib.contextmanager
def _forward_termination() -> Iterator[Callable[[subprocess.Popen[bytes]], None]]:
    """While the command runs, SIGTERM/SIGHUP/SIGINT sent to ``greenforge run`` go to the
    command (its whole process group when it has its own), so a scheduler's stop request ends
    the command and the run is still stored (``failed``). A signal that arrives before the
    command exists is held and sent to it as soon as it does: never lost, never a run
    stopped half-way."""
    import os

    children: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def send(child: subprocess.Popen[bytes], signum: int, via_terminal: bool) -> None:
        if child.returncode is not None:  # (no poll(): reaping is run_command's, with rusage)
            return
        try:
            own_group = hasattr(os, "killpg") and os.getpgid(child.pid) == child.pid
        except OSError:
            return
        if own_group:
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signum)
        elif not (via_terminal and signum == signal.SIGINT):  # Ctrl-C reached it already
            child.send_signal(signum)

    def forward(signum: int, _frame: object) -> None:
        if not children:
            pending.append(signum)
        for child in children:
            send(child, signum, via_terminal=True)

    def register(child: subprocess.Popen[bytes]) -> None:
        children.append(child)
        while pending:
            send(child, pending.pop(0), via_terminal=False)

    wanted = [getattr(signal, n) for n in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, n)]
    previous = {sig: signal.getsignal(sig) for sig in wanted}
    try:
        for sig in wanted:
            signal.signal(sig, forward)
    except ValueError:  # not the main thread (e.g. called from a test runner thread)
        previous = {}
    try:
        yield register
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@runs_app.command("list")
def runs_list(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array (stable contract)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Newest N runs only."),
) -> None:
    """List stored runs, newest first."""
    with _store() as store:
        records = store.list(limit=limit)
        _report_problems(store)
    if as_json:
        from greenforge.report.store import json_text

        sys.stdout.write(json_text([r.summary_dict() for r in records]))
        return
    if not records:
        Console(stderr=True).print(
            f"no runs stored yet in {escape(str(store.path))}: measure one with "
            "`greenforge run -- CMD ARGS...` or `greenforge.track()`.",
            highlight=False,
            soft_wrap=True,
        )
        return
    from greenforge.cli.tables import compact_table

    console = Console()
    # At 80 columns every column but the name fits whole, with the start to the minute (to the
    # millisecond from 100 columns up); the name folds.
    wide = console.width >= 100
    table = compact_table(
        f"runs ({len(records)})",
        ("id", "name", "status", "started (UTC)", "duration", "energy", "CO2e"),
        fold=("name",),
        right=("duration", "energy", "CO2e"),
    )
    for r in records:
        table.add_row(
            r.id,
            escape(r.name),
            r.status,
            r.started_at if wide else r.started_at[:16].replace("T", " "),
            f"{r.duration_s:.1f} s",
            _fmt_energy(r.energy_j),
            _fmt_g(r.co2e_g),
        )
    console.print(table)


@runs_app.command("show")
def runs_show(
    run_id: str = typer.Argument(..., metavar="ID", help="Run id or a unique prefix of it."),
    as_json: bool = typer.Option(False, "--json", help="Print the full record as JSON."),
    per: str | None = typer.Option(
        None,
        "--per",
        help="Also print the SCI score (g CO2e per unit): run, epoch, a count, or "
        "prediction:N / 1k-predictions:N / sample:N.",
    ),
) -> None:
    """Show one run in full (with --per, its Software Carbon Intensity score too)."""
    from greenforge.report.sci import parse_unit, sci_for_run

    unit = None if per is None else parse_unit(per)  # a bad --per fails before the store opens
    with _store() as store:
        record = store.get(run_id)
        _report_problems(store)
    score = None if unit is None else sci_for_run(record, unit)
    if as_json:
        from greenforge.report.store import json_text  # jsonsafe: non-finite -> null

        data = record.to_dict()
        if score is not None:
            data["sci"] = score.to_dict()
        sys.stdout.write(json_text(data))
        return
    console = Console()
    render_record(record, console)
    if score is not None:
        console.print(escape(score.line()), highlight=False, soft_wrap=True)
        console.print(
            f"[dim]{escape(score.basis)}; {escape(score.embodied_basis)}[/]",
            highlight=False,
            soft_wrap=True,
        )


@runs_app.command("export")
def runs_export(
    fmt: str = typer.Option("json", "--format", help="json (full records) or csv (one row a run)."),
    out: Path | None = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """Export every stored run as JSON or CSV."""
    from greenforge.report.store import export_records

    if fmt not in ("json", "csv"):
        raise ConfigError(f"unknown export format {fmt!r}: use --format json or --format csv.")
    with _store() as store:
        text = export_records(store.list(), fmt)
        _report_problems(store)
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write export to {str(out)!r}: {exc}") from None
    Console(stderr=True).print(f"exported runs to {out} ({fmt})", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command(
        "run",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(run)
    app.add_typer(runs_app, name="runs")


__all__ = ["register", "render_record", "runs_app"]
