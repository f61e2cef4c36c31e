"""CLI: ``greenforge tune cpu`` (threads x batch size by measured energy) and
``greenforge tune gpu --check | --restore`` (NVML power limits: privilege check, reset).

The commands parse, call one function of :mod:`greenforge.tune` and print; the tuning logic
lives there. torch is imported only when ``tune cpu`` runs.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from greenforge.errors import ConfigError

tune_app = typer.Typer(
    name="tune",
    help="Tune the knobs that cut energy: CPU threads and batch size, GPU power limits.",
    no_args_is_help=True,
    add_completion=False,
)


def _ints(option: str, text: str | None) -> list[int] | None:
    if text is None:
        return None
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = int(part)
        except ValueError:
            raise ConfigError(
                f"{option} {text!r}: {part!r} is not an integer; give a list such as 1,2,4."
            ) from None
        if value < 1:
            raise ConfigError(f"{option} {text!r}: {value} must be >= 1.")
        out.append(value)
    if not out:
        raise ConfigError(f"{option} is empty; give a list such as 1,2,4.")
    return out


@tune_app.command("cpu")
def cpu(
    example: str = typer.Option(
        "digits", "--example", help="Bundled example to tune: digits or mnist5k (offline)."
    ),
    step: str | None = typer.Option(
        None,
        "--step",
        help="Your workload instead: pkg.module:factory, where factory(batch_size) returns a "
        "step() that does one step and returns the samples it processed.",
    ),
    mode: str = typer.Option(
        "training", "--mode", help="training (energy to solution) or serving (J per sample)."
    ),
    threads: str | None = typer.Option(
        None, "--threads", help="Thread counts to try, e.g. 1,2,4 (default: 1, 2, 4 ... CPUs)."
    ),
    batch: str = typer.Option("32,64,128", "--batch", help="Batch sizes to try, e.g. 32,64,128."),
    target_loss: float = typer.Option(
        0.2, "--target-loss", help="Example training: validation loss that counts as solved."
    ),
    samples: int | None = typer.Option(
        None, "--samples", min=1, help="--step training: samples to solution (fixed)."
    ),
    eta: float = typer.Option(
        0.5, "--eta", help="Zeus's knob in [0, 1]: 1 = least energy, 0 = least time."
    ),
    max_time: float | None = typer.Option(
        None, "--max-time", help="Longest allowed time to solution (s; per 1,000 if serving)."
    ),
    max_slowdown: float | None = typer.Option(
        None, "--max-slowdown", help="Allow at most this x the fastest setting's time, e.g. 1.2."
    ),
    default_threads: int | None = typer.Option(
        None, "--default-threads", min=1, help="The default to compare with (torch's default)."
    ),
    default_batch: int = typer.Option(
        64, "--default-batch", min=1, help="The default batch size to compare with."
    ),
    budget: float = typer.Option(
        20.0, "--budget", help="CPU seconds to spend measuring (the minimum rounds always run)."
    ),
    out: Path = typer.Option(
        Path("greenforge-tune"), "--out", help="Folder for tune.json and tradeoff.png."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print tune.json instead of a table."),
) -> None:
    """Measure energy and time of each CPU threads x batch size setting and keep the cheapest.

    Each setting is measured with the forge protocol (this process's own CPU time, all settings
    interleaved); the choice minimises eta*E + (1-eta)*MaxPower*T under the time limit.
    """
    from greenforge.errors import MissingExtraError
    from greenforge.jsonsafe import dumps

    if mode not in ("training", "serving"):
        raise ConfigError(f"--mode {mode!r}: use training or serving.")
    try:
        import torch

        from greenforge.forge.protocol import ProtocolConfig
        from greenforge.tune import cpu as tune_cpu
        from greenforge.tune import output
        from greenforge.tune.examples import tune_example
    except ImportError as exc:
        raise MissingExtraError(
            getattr(exc, "name", None) or "torch", "torch", "greenforge tune cpu"
        ) from None
    default = tune_cpu.Setting(default_threads or int(torch.get_num_threads()), default_batch)
    options = {
        "threads": _ints("--threads", threads),
        "eta": eta,
        "max_time_s": max_time,
        "max_slowdown": max_slowdown,
        "config": ProtocolConfig(budget_s=budget),
    }
    batch_sizes = _ints("--batch", batch) or []
    if step is None:
        result = tune_example(
            example,
            mode="training" if mode == "training" else "serving",
            batch_sizes=batch_sizes,
            target_loss=target_loss,
            default=default,
            **options,  # type: ignore[arg-type]
        )
    else:
        from greenforge.forge.models import load_entry_point

        if mode == "training" and samples is None:
            raise ConfigError("--step with --mode training needs --samples N (to solution).")
        result = tune_cpu.cpu_grid(
            load_entry_point(step, "--step"),
            batch_sizes=batch_sizes,
            mode="training" if mode == "training" else "serving",
            samples_to_solution=samples if mode == "training" else None,
            default=default,
            **options,  # type: ignore[arg-type]
        )
    from greenforge.forge.output import write_text_atomic

    write_text_atomic(out / "tune.json", dumps(result.to_dict()))
    output.plot_tradeoff(result, out / "tradeoff.png")
    if as_json:
        typer.echo(dumps(result.to_dict()))
        return
    from greenforge.cli.tables import compact_table

    table = compact_table(
        f"CPU {result.mode}: energy {result.objective}",
        output.COLUMNS,
        fold=("",),
        right=("threads", "batch", "samples", "time s", "power W", "cost J"),
    )
    for row in output.table_rows(result):
        table.add_row(*(escape(c) for c in row))
    console = Console()
    console.print(table)
    for line in output.summary_lines(result):
        console.print(escape(line), highlight=False)
    console.print(f"wrote {escape(str(out / 'tune.json'))}, {escape(str(out / 'tradeoff.png'))}")


@tune_app.command("gpu")
def gpu(
    check: bool = typer.Option(
        False, "--check", help="Show each GPU's power-limit range and whether it may be changed."
    ),
    restore: bool = typer.Option(
        False, "--restore", help="Reset every visible GPU's power limit to its default."
    ),
) -> None:
    """Check or reset NVIDIA GPU power limits (tuning itself runs inside training:
    greenforge.tune.PowerLimitOptimizer)."""
    from greenforge.tune import gpu as tune_gpu

    if check == restore:
        raise ConfigError("give one of --check or --restore.")
    console = Console()
    if restore:
        for line in tune_gpu.restore_defaults():
            console.print(escape(line), highlight=False)
        return
    gpus, problem = tune_gpu.check_gpus()
    for g in gpus:
        console.print(
            escape(
                f"GPU {g.index} ({g.name}): limit {g.original_w:g} W, range {g.min_w:g}-"
                f"{g.max_w:g} W, default {g.default_w:g} W"
            ),
            highlight=False,
        )
    if problem is not None:
        raise tune_gpu.PowerLimitPermissionError(problem)
    console.print("power limits can be changed by this user: tuning will work.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(tune_app, name="tune")


__all__ = ["register", "tune_app"]
