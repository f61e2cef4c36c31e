"""Benchmark ``greenforge forge`` on the bundled digits and mnist5k examples.

Targets (issue 5), for 10 million expected predictions:
- the chosen model has >= 4x lower lifetime CO2e than the fp32 baseline (search included),
  at <= 1 point accuracy loss;
- int8 inference is >= 2x faster per prediction than fp32 on this CPU (same architecture,
  serving batch size; batch-1 figures are printed too).

Prints a table and writes ``benchmarks/results/forge.json``. Energy is measured by GreenForge's
tracker with the meters this machine offers (the method is printed).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from greenforge.config import load_settings
from greenforge.forge.search import run_forge
from greenforge.forge.task import example_task

RESULTS = Path(__file__).resolve().parent / "results"


def bench(example: str, threads: int | None) -> dict[str, Any]:
    task = example_task(example, expected_inferences=10_000_000)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-forge-") as tmp:
        result = run_forge(task, load_settings(), out_dir=Path(tmp), threads=threads)
    wall = time.perf_counter() - started
    comp = result.comparison()
    base = result.baseline
    assert base is not None
    assert base.evaluation is not None
    int8 = next(r for r in result.results if r.name == comp.get("int8_candidate"))
    assert int8.evaluation is not None
    return {
        "example": example,
        "wall_s": wall,
        "status": result.status,
        "chosen": result.chosen,
        "target_accuracy": result.target_accuracy,
        "baseline_accuracy": base.accuracy,
        "chosen_accuracy": None if result.chosen is None else result.result(result.chosen).accuracy,
        "baseline_lifetime_co2e_g": comp.get("baseline_lifetime_co2e_g"),
        "chosen_lifetime_co2e_g": comp.get("chosen_lifetime_co2e_g"),
        "lifetime_reduction_factor": comp.get("lifetime_reduction_factor"),
        "accuracy_loss_points": comp.get("accuracy_loss_points"),
        "search_co2e_g": result.search.total_co2e_g,
        "method": result.search.methods,
        "int8_candidate": int8.name,
        "fp32_ms_per_1k_serving": 1000 * base.evaluation.serving.latency_s_per_1k,
        "int8_ms_per_1k_serving": 1000 * int8.evaluation.serving.latency_s_per_1k,
        "int8_speedup_serving": comp.get("int8_speedup_serving"),
        "fp32_ms_per_1k_batch1": 1000 * base.evaluation.batch1.latency_s_per_1k,
        "int8_ms_per_1k_batch1": 1000 * int8.evaluation.batch1.latency_s_per_1k,
        "int8_speedup_batch1": comp.get("int8_speedup_batch1"),
        "serving_batch_size": task.spec.serving_batch_size,
        "candidates": [
            {
                "name": r.name,
                "accuracy": r.accuracy,
                "val_accuracy": r.candidate.val_accuracy,
                "meets_target": r.meets_target,
                "lifetime_co2e_g": r.lifetime_co2e_g,
                "train_co2e_g": r.train_co2e_g,
                "inference_co2e_g_per_1k": r.inference_co2e_g_per_1k,
            }
            for r in result.results
        ],
    }


def main() -> int:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else None
    rows = [bench(name, threads) for name in ("digits", "mnist5k")]
    table = Table(title="greenforge forge: 10 M predictions, deployment zone DE")
    cols = [
        ("example", "example", "{}"),
        ("chosen", "chosen", "{}"),
        ("wall s", "wall_s", "{:.0f}"),
        ("base acc %", "baseline_accuracy", "{:.2%}"),
        ("chosen acc %", "chosen_accuracy", "{:.2%}"),
        ("loss pts", "accuracy_loss_points", "{:.2f}"),
        ("base life g", "baseline_lifetime_co2e_g", "{:.3g}"),
        ("chosen life g", "chosen_lifetime_co2e_g", "{:.3g}"),
        ("reduction", "lifetime_reduction_factor", "{:.1f}x"),
        ("int8 speedup bN", "int8_speedup_serving", "{:.2f}x"),
        ("int8 speedup b1", "int8_speedup_batch1", "{:.2f}x"),
    ]
    for title, _, _ in cols:
        table.add_column(title)
    for row in rows:
        table.add_row(
            *["-" if row.get(key) is None else fmt.format(row[key]) for _, key, fmt in cols]
        )
    console = Console(width=160)
    console.print(table)
    ok = all(
        (r["lifetime_reduction_factor"] or 0) >= 4.0
        and (r["accuracy_loss_points"] if r["accuracy_loss_points"] is not None else 99) <= 1.0
        and (r["int8_speedup_serving"] or 0) >= 2.0
        for r in rows
    )
    console.print(
        f"targets (>= 4x lifetime CO2e, <= 1 point, int8 >= 2x): "
        f"{'met' if ok else 'NOT met'}; method: {rows[0]['method']}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "forge.json").write_text(
        json.dumps({"rows": rows, "targets_met": ok}, indent=2), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
