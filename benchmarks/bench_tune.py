"""CPU threads x batch size for training a small model here: energy to solution per setting, and
the chosen setting's saving vs the default (issue 12).

The model is the digits MLP (64-256-256-10, Adam 1e-3). "Solution" = validation cross-entropy
<= ``--target-loss``; the samples each batch size needs are found by training from scratch
(median over 3 seeds), and each setting's energy per training sample is measured with the forge
measurement protocol - every setting interleaved in the same rounds, this process's own CPU
time x per-core power (so other processes on the shared machine do not bill this one), the
protocol's round-adjusted median with a seeded bootstrap 95 % interval. Energy to solution = samples x J/sample.

The default is torch's default thread count with batch 64, measured side by side with the grid;
its saving is the median of the per-round ratios default/chosen (paired, bootstrap interval).
The choice minimises Zeus's cost at ``--eta`` (and the table shows the choice at eta 0 and 1).

Usage::

    python benchmarks/bench_tune.py [--threads 1,2] [--batch 16,32,64,128,256] [--budget 60]

Prints a table and writes ``benchmarks/results/tune_cpu_<example>.json`` and ``.png``.
Exit code 0 whatever the outcome (benchmarks report; they never fail the test run).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from greenforge.forge.protocol import ProtocolConfig
from greenforge.jsonsafe import dumps
from greenforge.tune.cost import choose
from greenforge.tune.cpu import Setting, cpu_grid
from greenforge.tune.examples import load_task, samples_to_target_loss, training_steps
from greenforge.tune.output import plot_tradeoff, summary_lines, table_rows

RESULTS = Path(__file__).resolve().parent / "results"


def _ints(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--example", default="digits")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batch", default="16,32,64,128,256")
    parser.add_argument("--target-loss", type=float, default=0.2)
    parser.add_argument("--eta", type=float, default=0.5)
    parser.add_argument("--budget", type=float, default=60.0, help="CPU seconds measuring")
    args = parser.parse_args()

    console = Console(width=120)
    started = time.time()
    task = load_task(args.example)
    default = Setting(int(torch.get_num_threads()), 64)
    batches = _ints(args.batch)
    sizes = list(dict.fromkeys([*batches, default.batch_size]))
    solution = {}
    for b in sizes:
        t0 = time.perf_counter()
        solution[b] = samples_to_target_loss(task, b, args.target_loss)
        console.print(
            f"batch {b}: {solution[b]} samples to validation loss {args.target_loss:g} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
    config = ProtocolConfig(repeat_s=0.05, min_rounds=5, max_rounds=15, budget_s=args.budget,
                            wall_limit_s=600.0)  # fmt: skip
    result = cpu_grid(
        training_steps(task),
        threads=_ints(args.threads),
        batch_sizes=batches,
        mode="training",
        samples_to_solution=solution,
        eta=args.eta,
        default=default,
        config=config,
    )

    table = Table(title=f"CPU training, {args.example} MLP: energy to val loss {args.target_loss}")
    for col in ("threads", "batch", "samples", "energy J [95 %]", "time s", "W", "cost J", ""):
        table.add_column(col, justify="left" if col in ("", "energy J [95 %]") else "right")
    for row in table_rows(result):
        table.add_row(*row)
    console.print(table)
    for line in summary_lines(result):
        console.print(line, highlight=False)
    at_eta = {}
    for eta in (0.0, 1.0):
        c = choose([x.energy_j for x in result.costs], [x.time_s for x in result.costs], eta=eta,
                   max_power_w=result.max_power_w)  # fmt: skip
        at_eta[str(eta)] = dataclasses.asdict(result.costs[c.index].setting)
        console.print(f"choice at eta {eta:g}: {result.costs[c.index].setting.key}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "bench_tune",
        "example": args.example,
        "target_loss": args.target_loss,
        "samples_to_solution": {str(k): v for k, v in solution.items()},
        "result": result.to_dict(),
        "choice_at_eta": at_eta,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "wall_s": time.time() - started,
    }
    path = RESULTS / f"tune_cpu_{args.example}.json"
    path.write_text(dumps(doc))
    plot = plot_tradeoff(result, RESULTS / f"tune_cpu_{args.example}.png")
    console.print(f"wrote {path} and {plot}")


if __name__ == "__main__":
    main()
