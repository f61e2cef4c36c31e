"""Federated benchmark (issue 11): FedAvg with random clients vs carbon-aware selection vs
carbon-aware selection with slack, on the digits example, over seeds 0-4 (by default).

Each seed is one federation (32 clients, two per zone with an embedded hourly profile,
Dirichlet(0.5) label skew, 8 clients per round, 30 rounds, a 64-unit MLP) run three times
under the same simulated clock (round r at hour r - 1 from 2023-03-06 00:00 UTC) and the
embedded 2021-2023 hourly profiles. The target accuracy of a seed is 0.98 x the best test
accuracy FedAvg-random reaches in that seed's 30 rounds. Requirement: carbon-aware arms reach
it within 10 % more rounds than FedAvg-random, with >= 30 % less training CO2e to get there
(clients' compute + network + server aggregation), every client at or above the floor
(min share 0.1 -> >= 3 of 30 rounds).

Energy is measured per client step by the tracker (on this machine: the CPU-time model, as
the tracker chooses), so the CO2e of an arm also moves with machine load; the intervals are
the ledger's bounds. ``--backend inprocess`` (default here: 9 runs in minutes on a shared
2-core box) runs the same ClientApp/strategies through GreenForge's in-process Grid;
``--backend ray`` uses Flower's simulation engine (a local Ray on 127.0.0.1).

Run: ``python benchmarks/bench_federated.py [--seeds 0 1 2 3 4] [--rounds 30] [--backend ray]``.
Prints a table and writes ``benchmarks/results/federated.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from greenforge import jsonsafe
from greenforge.federated.example import ARMS, Comparison, ExampleConfig, compare

RESULTS = Path(__file__).resolve().parent / "results" / "federated.json"


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    return f"{mean:.3g} [{min(values):.3g}-{max(values):.3g}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--per-round", type=int, default=8)
    parser.add_argument("--backend", default="inprocess", choices=("inprocess", "ray"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    comparisons: list[Comparison] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as home:
        os.environ.setdefault("GREENFORGE_HOME", home)  # ledgers of the benchmark stay apart
        for seed in args.seeds:
            cfg = ExampleConfig(
                seed=seed,
                rounds=args.rounds,
                clients=args.clients,
                clients_per_round=args.per_round,
                backend=args.backend,
            )
            comparisons.append(compare(cfg, ledger_dir=Path(home) / "federated"))
    wall = time.perf_counter() - t0

    table = Table(
        title=f"digits, {args.clients} clients, {args.per_round}/round, {args.rounds} rounds, "
        f"seeds {args.seeds} ({args.backend})"
    )
    for col in (
        "arm",
        "rounds to target per seed",
        "rounds ratio vs random",
        "CO2e to target mg, mean [min-max]",
        "saving vs random per seed",
        "CO2e all rounds mg",
        "final acc % per seed",
        "participation min-max",
    ):
        table.add_column(col, justify="right")
    rows = []
    for arm in ARMS:
        sums = [next(s for s in c.summaries if s.arm == arm) for c in comparisons]
        co2e = [1000 * s.co2e_to_target_g for s in sums if s.co2e_to_target_g is not None]
        total = [1000 * s.co2e_total_g for s in sums]
        savings = [s.saving_vs_random for s in sums]
        ratios = [s.rounds_ratio for s in sums]
        reached = [s.rounds_to_target for s in sums]
        row: dict[str, object] = {
            "arm": arm,
            "rounds_to_target": reached,
            "rounds_ratio": ratios,
            "co2e_to_target_mg": co2e,
            "saving_vs_random": savings,
            "co2e_all_rounds_mg": total,
            "final_accuracy": [s.final_accuracy for s in sums],
            "participation_min": min(s.min_participation for s in sums),
            "participation_max": max(s.max_participation for s in sums),
        }
        rows.append(row)
        table.add_row(
            arm,
            " ".join("-" if n is None else str(n) for n in reached),
            " ".join("-" if r is None else f"{r:.2f}" for r in ratios),
            _spread(co2e),
            " ".join("-" if s is None else f"{100 * s:.0f}%" for s in savings),
            _spread(total),
            " ".join(f"{100 * s.final_accuracy:.1f}" for s in sums),
            f"{row['participation_min']}-{row['participation_max']}",
        )
    console = Console(width=160)
    console.print(table)
    floor = int(0.1 * args.rounds + 1e-9)
    console.print(
        f"targets per seed: {[round(100 * c.target, 1) for c in comparisons]} % test accuracy "
        f"(0.98 x FedAvg-random's best); fairness floor {floor} rounds; wall {wall:.0f} s"
    )
    doc = {
        "benchmark": "federated",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "backend": args.backend,
        "seeds": args.seeds,
        "wall_s": wall,
        "rows": rows,
        "comparisons": [c.to_dict() for c in comparisons],
        "config": dataclasses.asdict(comparisons[0].config) if comparisons else {},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(jsonsafe.dumps(doc), encoding="utf-8")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
