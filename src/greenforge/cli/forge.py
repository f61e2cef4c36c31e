"""``greenforge forge``: the model with the least lifetime CO2e that meets the accuracy target.

Exit codes: 0 a model was chosen; 10 no candidate met the target (results are still written);
the usual GreenForge error codes otherwise (2 bad option/config, 3 missing extra, 5 bad data).
torch and the forge modules are imported only when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

if TYPE_CHECKING:
    from greenforge.forge.result import ForgeResult

NO_CANDIDATE_EXIT_CODE = 10


def _forge(
    example: str | None = typer.Option(
        None, "--example", help="Bundled example task: digits or mnist5k (offline)."
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help=escape("Task file (TOML) with [task], [data], [model], [recipe.*], [pretrained]."),
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Output directory (default: ./greenforge-forge/<task>)."
    ),
    zone: str | None = typer.Option(
        None, "--zone", help="Deployment grid zone (e.g. DE); overrides the task's."
    ),
    inferences: int | None = typer.Option(
        None, "--inferences", help="Expected predictions over the model's life.", min=0
    ),
    executor: str = typer.Option(
        "local", "--executor", help="local, or ray: evaluate candidates in parallel on Ray."
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", help="Override the task's training epochs.", min=1
    ),
    recipes: str | None = typer.Option(
        None,
        "--recipes",
        help="Comma-separated recipe names to run instead of the task's (baseline first).",
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="Threads for training AND for serving while measured (overrides the task's "
        "training_threads and serving_threads; default: the task's, serving 1).",
        min=1,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print forge.json instead of a table."),
    export_onnx: bool = typer.Option(
        False,
        "--export-onnx",
        help="Also export every candidate to ONNX (checked against torch, with metadata) "
        "into OUT/edge (see greenforge edge).",
    ),
    to_mlflow: bool = typer.Option(
        False,
        "--mlflow",
        help="Log every candidate to MLflow as a nested run (MLFLOW_TRACKING_URI).",
    ),
    to_wandb: bool = typer.Option(
        False, "--wandb", help="Log every candidate to Weights & Biases, as one run group."
    ),
) -> None:
    """Try recipes (distillation, pruning, int8, bf16, mixed precision, early stopping),
    measure every candidate, and keep the one with the least lifetime CO2e that meets the
    target."""
    from greenforge.config import load_settings
    from greenforge.errors import ConfigError

    if (example is None) == (config is None):
        raise ConfigError("give exactly one of --example NAME or --config task.toml.")
    if executor not in ("local", "ray"):
        raise ConfigError(f"unknown executor {executor!r}: use 'local' or 'ray'.")
    try:
        from greenforge.forge.search import run_forge
        from greenforge.forge.task import example_task, load_task
    except ImportError as exc:
        from greenforge.errors import MissingExtraError

        raise MissingExtraError(
            getattr(exc, "name", None) or "torch", "torch", "greenforge forge"
        ) from None
    settings = load_settings()
    if example is not None:
        task = example_task(example, zone=zone, expected_inferences=inferences, epochs=epochs)
    else:
        assert config is not None
        task = load_task(config, zone=zone, expected_inferences=inferences)
        if epochs is not None:
            import dataclasses

            task = dataclasses.replace(task, spec=dataclasses.replace(task.spec, epochs=epochs))
    if recipes is not None:
        import dataclasses

        from greenforge.forge.task import recipe_specs_from_names

        names = [n.strip() for n in recipes.split(",") if n.strip()]
        if not names:
            raise ConfigError("--recipes needs at least one recipe name, e.g. baseline,quantize.")
        specs = recipe_specs_from_names(names)
        task = dataclasses.replace(
            task,
            recipes=specs,
            spec=dataclasses.replace(task.spec, recipes=tuple(r.recipe for r in specs)),
        )
    out_dir = out or Path("greenforge-forge") / task.spec.name

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=as_json)
    if not console.is_terminal:
        console.width = max(console.width, 180)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    overall = progress.add_task("recipes", total=len(task.recipes))
    epoch_bars: dict[str, Any] = {}

    def on_event(kind: str, info: Any) -> None:
        if kind == "recipe":
            progress.update(
                overall, completed=info["index"], description=f"recipe {info['recipe']}"
            )
        elif kind == "evaluated":
            progress.console.print(
                f"  measured [bold]{info['name']}[/]: test accuracy {100 * info['accuracy']:.2f} %"
            )
        elif kind == "measure":
            # The measurement bills this process's CPU time; the display's refresh thread
            # (about 10 wake-ups a second) would land in the candidates' repeats.
            progress.stop()
            console.print(
                f"  measuring {info['candidates']} models' serving cost interleaved (at most "
                f"{info['budget_s']:g} CPU s); the progress display pauses meanwhile"
            )
        elif kind == "measured":
            progress.start()
        elif kind == "failed":
            progress.console.print(
                f"  [yellow]recipe {escape(str(info['recipe']))} failed:[/] "
                f"{escape(str(info['error']))}"
            )

    def on_progress(label: str, done: int, total: int) -> None:
        if label not in epoch_bars:
            epoch_bars[label] = progress.add_task(f"  train {label}", total=total)
        progress.update(epoch_bars[label], completed=done, total=total)

    with progress:
        result = run_forge(
            task,
            settings,
            out_dir=out_dir,
            executor=executor,  # type: ignore[arg-type]
            on_event=on_event,
            progress=on_progress,
            threads=threads,
        )
        progress.update(overall, completed=len(task.recipes))
    if as_json:
        typer.echo((out_dir / "forge.json").read_text(encoding="utf-8"))
    else:
        print_forge_summary(console, result, out_dir)
    if export_onnx:
        from greenforge.cli.edge import print_export_run
        from greenforge.edge.export import export_forge_result

        print_export_run(console, export_forge_result(result))
    targets = [name for name, on in (("mlflow", to_mlflow), ("wandb", to_wandb)) if on]
    if targets:
        from greenforge.integrations.experiments import export_forge

        for line in export_forge(out_dir, targets):
            console.print(escape(line))
    if result.chosen is None:
        raise typer.Exit(NO_CANDIDATE_EXIT_CODE)


def print_forge_summary(console: Any, result: ForgeResult, out_dir: Path) -> None:
    """Prints the candidates table and the summary lines of a finished search to ``console``."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from greenforge.forge.output import (
        candidate_rows,
        fmt_g,
        fmt_interval,
        mass_unit,
        search_basis,
        summary_lines,
    )

    spec = result.task.spec
    rows = candidate_rows(result)
    inf_u, inf_g = mass_unit(r.inference_g_per_1k for r in rows)
    # one unit for the masses that add up (training + inference = life; life + search)
    train_u, train_g = life_u, life_g = share_u, share_g = mass_unit(r.lifetime_g for r in rows)
    table = Table(
        title=Text(
            f"forge {spec.name}: {spec.expected_inferences:,} predictions in "
            f"{result.deploy_zone} ({result.deploy_intensity_g_per_kwh:.0f} gCO2e/kWh)"
        ),
        box=box.SIMPLE_HEAD,
        show_lines=False,
        caption=Text(
            "CO2e masses (g, mg, µg ...) as each header says; value [low-high] = interval "
            "(measurement spread + meter bounds). life = training lineage + expected inference, "
            "WITHOUT the search share (the ranking basis); search = the rest of the search, "
            "carried by the chosen model only. P = on the Pareto front; dim rows are below the "
            "accuracy target."
        ),
    )
    for col, justify in (
        ("candidate", "left"),
        (f"runtime, {result.serving.threads} thr", "left"),
        ("prec.", "left"),
        ("acc %", "right"),
        ("MFLOP", "right"),
        (f"train {train_u}", "right"),
        (f"ms/1k b{spec.serving_batch_size}", "right"),
        (f"{inf_u}/1k", "right"),
        (f"life {life_u}", "right"),
        (f"search {share_u}", "right"),
        ("", "left"),
    ):
        table.add_column(
            Text(col),
            justify=justify,  # type: ignore[arg-type]
            overflow="fold",
            no_wrap=col == "candidate",  # names are identifiers: never broken
        )
    for row in rows:
        flags = ("chosen " if row.chosen else "") + ("P " if row.pareto else "")
        flags += "below target" if row.below_target else ""
        cells = [
            row.name,
            row.runtime,
            row.precision,
            f"{row.accuracy_pct:.2f}",
            f"{row.mflop:.3g}",
            fmt_g(row.train_g, train_g),
            f"{row.serving_ms_per_1k:.3g}",
            fmt_interval(
                row.inference_g_per_1k,
                row.inference_low_g_per_1k,
                row.inference_high_g_per_1k,
                inf_g,
            ),
            fmt_interval(row.lifetime_g, row.lifetime_low_g, row.lifetime_high_g, life_g),
            "-" if row.search_share_g is None else fmt_g(row.search_share_g, share_g),
            flags.strip(),
        ]
        style = "bold green" if row.chosen else "dim" if row.below_target else None
        table.add_row(*(Text(c) for c in cells), style=style)
    console.print(table)
    s = result.search
    console.print(
        Text(
            f"search: {fmt_g(s.total_co2e_g)} gCO2e, {fmt_g(s.total_energy_j)} J "
            f"{search_basis(s)} ({s.methods}; intensity {s.intensity_source}) over "
            f"{s.wall_s:.0f} s"
        )
    )
    if result.target_accuracy is not None:
        console.print(f"target accuracy: {100 * result.target_accuracy:.2f} %")
    if result.chosen is None:
        console.print(
            f"[bold red]no candidate met the target.[/] {escape(result.reason)}; closest: "
            f"{escape(', '.join(result.closest))}"
        )
    else:
        console.print(f"[bold green]chosen:[/] {escape(result.reason)}")
    for line in summary_lines(result):
        console.print(Text(line))
    if result.failures:
        for f in result.failures:
            console.print(
                f"[yellow]failed recipe {escape(str(f['recipe']))}:[/] {escape(str(f['error']))}"
            )
    console.print(f"outputs: {escape(str(out_dir))}/ ({escape(', '.join(result.files.values()))})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("forge")(_forge)
