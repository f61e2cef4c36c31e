"""``greenforge edge export|bench|devices|compare``: serve where it emits least.

The CLI parses, calls one function of :mod:`greenforge.edge`, and prints (a table, or JSON with
``--json``). torch and ONNX Runtime are imported only when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

edge_app = typer.Typer(
    help="Edge AI: export forge candidates to ONNX, energy per inference here and modelled on "
    "devices, and edge vs cloud serving CO2e.",
    no_args_is_help=True,
)

MODEL_LABEL = "model:"
"""Prefix of every modelled (not measured) figure in the output."""


def _missing_extra(exc: ImportError) -> Exception:
    from greenforge.errors import MissingExtraError

    return MissingExtraError(getattr(exc, "name", None) or "onnxruntime", "onnx", "greenforge edge")


def _echo_json(data: Any) -> None:
    from greenforge import jsonsafe

    typer.echo(jsonsafe.dumps(data))


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 160)
    return console


def _fmt_j(value: float) -> str:
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9)):
        if abs(value) >= scale or unit == "nJ":
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} J"  # pragma: no cover


@edge_app.command("export")
def export_cmd(
    forge_dir: Path = typer.Argument(..., help="A forge output directory (with forge.json)."),
    candidate: list[str] = typer.Option(
        [],
        "--candidate",
        "-c",
        help="Candidate to export (repeatable; 'all' = every one it "
        "keeps weights for). Default: the chosen model.",
    ),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: FORGE_DIR/edge)."),
    inputs: Path | None = typer.Option(
        None,
        "--inputs",
        help="Check inputs (.npy rows); default: FORGE_DIR/edge/check-inputs.npy "
        "when there, else seeded synthetic rows.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Export forge candidates to ONNX, checked against torch, with metadata in the file.

    Each export prints the largest absolute difference of the logits from torch and the
    tolerance of its kind (fp32, bf16, int8-dynamic, int8-static); over it, nothing is written.
    """
    try:
        from greenforge.edge.source import export_dir
    except ImportError as exc:
        raise _missing_extra(exc) from None
    run = export_dir(forge_dir, candidate, out_dir=out, inputs=inputs)
    if as_json:
        _echo_json(run.to_dict())
    else:
        print_export_run(_console(), run)
    if not run.reports:
        raise typer.Exit(5)


def print_export_run(console: Any, run: Any) -> None:
    """Prints one line per exported candidate (max abs diff vs torch) and per failure."""
    for r in run.reports:
        console.print(f"[green]exported[/] {escape(r.line())}")
    for name, error in run.failures:
        console.print(f"[bold red]not exported[/] {escape(name)}: {escape(error)}")
    console.print(f"ONNX exports: {escape(str(run.out_dir))}/ (edge.json lists every export)")


@edge_app.command("devices")
def devices_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON (every figure's source)."),
) -> None:
    """List the device profiles (modelled from published figures, each with its source)."""
    from greenforge.edge.devices import device_names, get_device

    profiles = [get_device(n) for n in device_names()]
    if as_json:
        _echo_json([p.to_dict() for p in profiles])
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"{MODEL_LABEL} device profiles (published figures, not measured)"))
    for col in (
        "name",
        "kind",
        "GFLOPS fp32",
        "GOPS int8",
        "idle W",
        "load W",
        "embodied kg",
        "life y",
        "share",
    ):
        table.add_column(Text(col))
    for p in profiles:
        table.add_row(
            *(
                Text(c)
                for c in (
                    p.name,
                    p.kind,
                    f"{p.sustained_gflops_fp32.low:g}-{p.sustained_gflops_fp32.high:g}",
                    f"{p.sustained_gops_int8.low:g}-{p.sustained_gops_int8.high:g}",
                    f"{p.idle_w.low:.3g}-{p.idle_w.high:.3g}",
                    f"{p.load_w.low:.3g}-{p.load_w.high:.3g}",
                    f"{p.embodied_kg.low:.3g}-{p.embodied_kg.high:.3g}",
                    f"{p.lifetime_years:g}",
                    p.share,
                )
            )
        )
    console = _console()
    console.print(table)
    console.print("sources: `greenforge edge devices --json` (one per figure).")


@edge_app.command("bench")
def bench_cmd(
    forge_dir: Path = typer.Argument(..., help="A forge output directory (with forge.json)."),
    candidate: list[str] = typer.Option(
        [], "--candidate", "-c", help="Candidate (repeatable; default: the chosen model)."
    ),
    device: list[str] = typer.Option(
        [], "--device", "-d", help="Device profile to model (repeatable; default: all)."
    ),
    threads: int = typer.Option(1, "--threads", min=1, help="ONNX Runtime intra-op threads."),
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="Predictions per call."),
    budget_s: float = typer.Option(
        3.0, "--budget-s", help="CPU seconds the measurement may spend (minimum rounds always run)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Energy per inference: measured here (ONNX Runtime, forge protocol), modelled on devices.

    Device figures are labelled model: and come from published power and throughput figures
    (greenforge edge devices --json lists the sources), never from a measurement.
    """
    from greenforge.config import load_settings

    try:
        from greenforge.edge.workflow import bench
    except ImportError as exc:
        raise _missing_extra(exc) from None
    result = bench(
        forge_dir,
        settings=load_settings(),
        candidates=candidate,
        devices=device,
        threads=threads,
        batch_size=batch_size,
        budget_s=budget_s,
    )
    if as_json:
        _echo_json(result.to_dict())
        return
    from rich.table import Table
    from rich.text import Text

    host = result.host
    table = Table(
        title=Text(f"energy per inference (batch {batch_size}, {threads} thread(s))"),
        caption=Text(
            "value [low-high]. 'measured' = this CPU, forge protocol; 'model:' = device "
            "profile from published figures (sources: greenforge edge devices --json)."
        ),
    )
    for col in ("candidate", "where", "basis", "energy / inference", "latency", "GFLOP/J"):
        table.add_column(Text(col))
    for m in host.measurements:
        ops = m.ops_per_j
        table.add_row(
            *(
                Text(c)
                for c in (
                    m.candidate,
                    "this CPU",
                    "measured",
                    f"{_fmt_j(m.energy_j)} [{_fmt_j(m.energy_low_j)}-{_fmt_j(m.energy_high_j)}]",
                    f"{m.latency_s * 1e6:.3g} µs",
                    "-" if ops is None else f"{ops / 1e9:.3g}",
                )
            )
        )
        for e in result.devices.get(m.candidate, ()):
            en = e.energy_j
            table.add_row(
                *(
                    Text(c)
                    for c in (
                        "",
                        e.device,
                        f"{MODEL_LABEL}{e.rate}",
                        f"{_fmt_j(en.central)} [{_fmt_j(en.low)}-{_fmt_j(en.high)}]",
                        f"{e.time_s.central * 1e6:.3g} µs",
                        f"{e.ops_per_j / 1e9:.3g}",
                    )
                )
            )
    console = _console()
    console.print(table)
    console.print(
        Text(
            f"utilisation here vs a reference GEMM ({host.gemm_flops_per_cpu_s / 1e9:.3g} GFLOP "
            "per CPU-second) carries to devices within x/÷2; device time = FLOPs / (utilisation "
            "x sustained rate) + overhead, energy = time x busy power."
        )
    )
    console.print(Text(f"measurement: {host.attribution} ({host.provenance}); {host.noise}"))


@edge_app.command("compare")
def compare_cmd(
    forge_dir: Path = typer.Argument(..., help="A forge output directory (with forge.json)."),
    predictions_per_day: int = typer.Option(
        ..., "--predictions-per-day", min=1, help="Predictions served per day."
    ),
    edge_device: str = typer.Option(..., "--edge-device", help="Edge profile, e.g. rpi5."),
    edge_zone: str = typer.Option(..., "--edge-zone", help="Grid zone of the edge, e.g. DE."),
    cloud_region: str = typer.Option(
        ..., "--cloud-region", help="Cloud region, e.g. eu-central-1."
    ),
    cloud_provider: str = typer.Option("aws", "--cloud-provider", help="aws, gcp or azure."),
    cloud_device: str = typer.Option(
        "cloud-cpu", "--cloud-device", help="Cloud profile: cloud-cpu or cloud-gpu."
    ),
    candidate: str | None = typer.Option(
        None, "--candidate", "-c", help="Candidate (default: the chosen model)."
    ),
    overhead_bytes: int | None = typer.Option(
        None, "--overhead-bytes", min=0, help="Protocol bytes per request/response (default 800)."
    ),
    budget_s: float = typer.Option(
        3.0, "--budget-s", help="CPU seconds for measuring the model's utilisation here."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Edge vs cloud CO2e per day for N predictions, with intervals and a recommendation.

    The recommendation names a side only when the intervals do not overlap; otherwise it says
    the answer is within the uncertainty.
    """
    from greenforge.config import load_settings

    try:
        from greenforge.edge.workflow import compare_dir
    except ImportError as exc:
        raise _missing_extra(exc) from None
    result = compare_dir(
        forge_dir,
        settings=load_settings(),
        predictions_per_day=predictions_per_day,
        edge_device=edge_device,
        edge_zone=edge_zone,
        cloud_region=cloud_region,
        cloud_provider=cloud_provider,
        cloud_device=cloud_device,
        candidate=candidate,
        overhead_bytes=overhead_bytes,
        budget_s=budget_s,
    )
    if as_json:
        _echo_json(result.to_dict())
        return
    print_comparison(_console(), result)


def _g(b: Any) -> str:
    return f"{b.central:.3g} [{b.low:.3g}-{b.high:.3g}]"


def print_comparison(console: Any, result: Any) -> None:
    """Prints the edge vs cloud table and the recommendation."""
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=Text(
            f"{MODEL_LABEL} edge vs cloud, {result.predictions_per_day:,} predictions/day "
            "(gCO2e per day)"
        ),
        caption=Text(
            "value [low-high]; every figure is modelled from published device figures and "
            "this CPU's measured utilisation (model:), never measured on the device."
        ),
    )
    for col in (
        "side",
        "device",
        "zone (g/kWh)",
        "PUE",
        "energy J/day",
        "operational",
        "network",
        "embodied",
        "total",
    ):
        table.add_column(Text(col))
    for s in (result.edge, result.cloud):
        table.add_row(
            *(
                Text(c)
                for c in (
                    s.where,
                    s.device,
                    f"{s.site.zone} ({s.site.intensity_g_per_kwh:.0f})",
                    f"{s.site.pue:.3g}",
                    _g(s.device_energy_j),
                    _g(s.operational_g),
                    _g(s.network_g),
                    _g(s.embodied_g),
                    _g(s.total_g),
                )
            )
        )
    console.print(table)
    style = "bold yellow" if result.verdict == "within uncertainty" else "bold green"
    console.print(Text(f"recommendation: {result.recommendation}", style=style))
    if result.break_even_predictions_per_day is not None:
        console.print(
            Text(
                f"break-even (central): {result.break_even_predictions_per_day:,.0f} predictions/day"
            )
        )
    console.print(Text(f"network: {result.payload.basis}; {result.network_source}"))
    for s in (result.edge, result.cloud):
        console.print(
            Text(
                f"{s.where}: {s.share_basis}; intensity {s.site.intensity_source}; PUE "
                f"{s.site.pue_source}"
            )
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(edge_app, name="edge")


__all__ = ["edge_app", "print_comparison", "print_export_run", "register"]
