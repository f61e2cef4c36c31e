"""``greenforge doctor``: what can be measured on this machine, what cannot, and how to enable it.

Prints (rich tables) every meter with its status, the meters a run would use and why, the
detected CPU with its catalog match and power model, the grid-zone setting, PUE and embodied
figures. ``--json`` prints the same as one JSON object. Always exits 0: problems are findings.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from greenforge.errors import GreenForgeError


def collect(zone: str | None = None) -> dict[str, Any]:
    """Everything doctor reports, as a JSON-able dict (pure reads, no side effects)."""
    from greenforge.config import Settings, load_settings
    from greenforge.hardware.catalog import (
        cpu_power_model,
        default_pue,
        embodied_for,
        match_cpu,
    )
    from greenforge.hardware.cpuinfo import read_cpuinfo
    from greenforge.meters.select import select_meters

    out: dict[str, Any] = {"problems": []}
    try:
        settings = load_settings()
    except GreenForgeError as exc:
        out["problems"].append(f"settings: {exc}")
        settings = Settings()
    out["settings"] = {
        "attribution": settings.attribution,
        "cloud_provider": settings.cloud_provider,
        "cloud_region": settings.cloud_region,
        "cloud_instance_type": settings.cloud_instance_type,
        "cpu_tdp_w": settings.cpu_tdp_w,
        "ram_w_per_gb": settings.ram_w_per_gb,
    }

    cpu = read_cpuinfo()
    match = match_cpu(cpu.model_name)
    cpu_out: dict[str, Any] = {
        "model_name": cpu.model_name,
        "vendor": cpu.vendor,
        "logical_cpus": cpu.logical_cpus,
        "packages": cpu.packages,
        "virtual_machine": cpu.hypervisor,
        "microarchitecture": cpu.microarchitecture,
        "catalog_match": match.kind,
        "catalog_label": match.label,
        "tdp_w": match.tdp_w if match.kind != "none" else None,
        "tdp_range_w": [match.tdp_low_w, match.tdp_high_w] if match.kind != "none" else None,
    }
    try:
        model = cpu_power_model(settings, cpu)
        cpu_out["power_model"] = {
            "method": model.method,
            "idle_w": model.idle_w,
            "max_w": model.max_w,
            "idle_w_bounds": [model.idle_low_w, model.idle_high_w],
            "max_w_bounds": [model.max_low_w, model.max_high_w],
            "provenance": model.provenance,
            "warning": model.warning or None,
        }
    except GreenForgeError as exc:
        cpu_out["power_model"] = None
        out["problems"].append(f"cpu model: {exc}")
    out["cpu"] = cpu_out

    try:
        # Under process attribution a run scopes the meters to its process tree; show that
        # choice (with doctor's own process standing in for the tracked one), not machine.
        pid = os.getpid() if settings.attribution == "process" else None
        selection = select_meters(settings, pid=pid)
        out["chosen"] = selection.names
        out["reasons"] = selection.reasons
        out["warnings"] = selection.warnings
        out["meters"] = [dataclasses.asdict(a) for a in selection.availability]
    except GreenForgeError as exc:
        out["problems"].append(f"meters: {exc}")
        out["chosen"], out["reasons"], out["warnings"], out["meters"] = [], [], [], []

    zone_out: dict[str, Any] = {"zone": None, "status": "", "ok": False}
    zone_source: str | None = None
    try:
        from greenforge.grid.zones import resolve_zone_source

        resolved, zone_source = resolve_zone_source(settings, explicit=zone)
        zone_out.update(
            zone=resolved, ok=True, status=f"grid zone {resolved!r} (from {zone_source})"
        )
    except GreenForgeError as exc:
        zone_out["status"] = str(exc)
    except ImportError as exc:  # the grid package is optional at this layer
        zone_out["status"] = f"zone resolution unavailable: {exc}"
    out["zone"] = zone_out

    from greenforge.meters.select import attribution_warning

    warning = attribution_warning(settings)
    if warning is not None:
        out["warnings"].append(warning)
    from greenforge.report.store import default_store_path, store_health

    store = store_health(default_store_path(settings))
    out["store"] = store
    if not store["ok"]:
        out["problems"].append(f"run store: {store['status']}")
    if store["corrupt_copies"]:
        out["warnings"].append(
            "corrupt run store(s) were moved aside (runs stored before are in them): "
            + ", ".join(store["corrupt_copies"])
        )
    pue, pue_source = default_pue(settings, zone_source=zone_source)
    out["pue"] = {"pue": pue, "source": pue_source}
    embodied = embodied_for(settings)
    out["embodied"] = None if embodied is None else {"kgco2e": embodied[0], "source": embodied[1]}
    return out


def _print(report: dict[str, Any], console: Console) -> None:
    meters = Table(title="Energy meters on this machine", show_lines=False)
    meters.add_column("meter")
    meters.add_column("status")
    meters.add_column("detail", overflow="fold")
    meters.add_column("how to enable / refine", overflow="fold")
    chosen = set(report["chosen"])
    for m in report["meters"]:
        if m["name"] in chosen:
            status = "[green]used[/]"
        elif m["available"]:
            status = "[cyan]available[/]"
        else:
            status = "[yellow]not available[/]"
        meters.add_row(m["name"], status, escape(m["detail"]), escape(m["how_to_enable"]))
    console.print(meters)

    cpu = report["cpu"]
    table = Table(title="CPU", show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    table.add_row("model", cpu["model_name"] or "(unknown)")
    table.add_row(
        "visible",
        f"{cpu['logical_cpus']} logical CPU(s), {cpu['packages']} package(s)"
        + (", virtual machine" if cpu["virtual_machine"] else ""),
    )
    table.add_row("micro-architecture", cpu["microarchitecture"] or "(unknown)")
    table.add_row("catalog match", f"{cpu['catalog_match']}: {cpu['catalog_label']}")
    pm = cpu.get("power_model")
    if pm:
        table.add_row("power model", f"{pm['method']}: {pm['idle_w']:.1f}-{pm['max_w']:.1f} W")
        table.add_row("provenance", escape(pm["provenance"]))
        if pm["warning"]:
            table.add_row("[yellow]warning[/]", escape(pm["warning"]))
    console.print(table)

    other = Table(title="Run settings", show_header=False)
    other.add_column("field")
    other.add_column("value", overflow="fold")
    zone = report["zone"]
    status = escape(zone["status"])
    other.add_row("grid zone", status if zone["ok"] else f"[yellow]{status}[/]")
    other.add_row("PUE", f"{report['pue']['pue']:g} ({report['pue']['source']})")
    emb = report["embodied"]
    other.add_row(
        "embodied",
        "not known (set embodied_kg or cloud_instance_type)"
        if emb is None
        else escape(f"{emb['kgco2e']:.4g} kgCO2e ({emb['source']})"),
    )
    other.add_row("attribution", report["settings"]["attribution"])
    store = report["store"]
    other.add_row(
        "run store",
        escape(f"{store['path']}: {store['status']}")
        if store["ok"]
        else f"[yellow]{escape(store['status'])}[/]",
    )
    console.print(other)

    console.print("[bold]Meter choice[/]")
    for reason in report["reasons"]:
        console.print(f"  - {reason}", highlight=False, markup=False)
    for text in report["warnings"] + report["problems"]:
        console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("doctor")
    def doctor(
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
        zone: str | None = typer.Option(None, "--zone", help="Check this grid zone."),
    ) -> None:
        """Show which energy meters work here, which do not, and how to enable them."""
        report = collect(zone)
        if json_out:
            typer.echo(json.dumps(report, indent=2, default=str))
        else:
            _print(report, Console(width=max(Console().width, 120)))
