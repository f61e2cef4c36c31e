"""Planner benchmark: plan one job over a year of hourly data (target < 5 ms).

Cases on GB 2023 (8,760 hourly points, the reference data beside the checkout):
uninterruptible 4 h job with a window spanning the whole year; uninterruptible 4 h job with
24 h slack; interruptible 4 h job (30 min checkpoint overhead, 1 h minimum chunk) with 24 h
slack; a 2-zone interruptible job with migration cost; and the full ``plan_job`` with an
oracle (actual data) and advisory zones.

Run: ``python benchmarks/bench_planner.py``. Prints a table and writes
``benchmarks/results/planner.json``.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from greenforge.grid.files import load_csv
from greenforge.grid.series import IntensitySeries
from greenforge.schedule.job import Job
from greenforge.schedule.planner import plan_job

REPO = Path(__file__).resolve().parents[1]
HOURLY = REPO / ".." / "shared" / "data" / "grid" / "hourly"
RESULTS = REPO / "benchmarks" / "results"
H = 3600.0
TARGET_MS = 5.0


def timed(fn: Callable[[], object], repeat: int = 50) -> tuple[float, float]:
    """(best, median) wall time in ms."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return min(times), statistics.median(times)


def main() -> None:
    gb = load_csv(HOURLY / "GB_2023_hourly.csv.gz")
    de = load_csv(HOURLY / "DE_2023_hourly.csv.gz")
    fr_like = load_csv(HOURLY / "US-CAL-CISO_2023_hourly.csv.gz")
    t0 = gb.start_s
    year_end = gb.end_s
    mid = t0 + 180 * 24 * H
    forecasts: dict[str, IntensitySeries] = {"GB": gb, "DE": de, "US-CAL-CISO": fr_like}
    cases: list[tuple[str, Job, dict[str, IntensitySeries] | None]] = [
        (
            "uninterruptible 4 h, window = whole year",
            Job(duration_s=4 * H, earliest_start_s=t0, deadline_s=year_end, zones=("GB",)),
            None,
        ),
        (
            "uninterruptible 4 h, 24 h slack",
            Job(duration_s=4 * H, earliest_start_s=mid, deadline_s=mid + 28 * H, zones=("GB",)),
            None,
        ),
        (
            "interruptible 4 h, 24 h slack, 30 min overhead, 1 h min chunk",
            Job(
                duration_s=4 * H,
                earliest_start_s=mid,
                deadline_s=mid + 28 * H,
                zones=("GB",),
                interruptible=True,
                checkpoint_overhead_s=1800,
                min_chunk_s=H,
            ),
            None,
        ),
        (
            "interruptible 8 h, 2 zones, 1 h migration, 40 h slack",
            Job(
                duration_s=8 * H,
                earliest_start_s=mid,
                deadline_s=mid + 48 * H,
                zones=("GB", "DE"),
                interruptible=True,
                migration_cost_s=H,
            ),
            None,
        ),
        (
            "interruptible 12 h, 7-day window, 1 h overhead, 2 h min chunk",
            Job(
                duration_s=12 * H,
                earliest_start_s=mid,
                deadline_s=mid + 7 * 24 * H,
                zones=("GB",),
                interruptible=True,
                checkpoint_overhead_s=H,
                min_chunk_s=2 * H,
            ),
            None,
        ),
        (
            "uninterruptible 4 h, 24 h slack, with oracle + 2 advisory zones",
            Job(duration_s=4 * H, earliest_start_s=mid, deadline_s=mid + 28 * H, zones=("GB",)),
            {"GB": gb},
        ),
    ]
    table = Table(title="Planner: one job on a year of hourly data (GB 2023)")
    table.add_column("case")
    table.add_column("best ms", justify="right")
    table.add_column("median ms", justify="right")
    table.add_column("< 5 ms", justify="center")
    table.add_column("saving %", justify="right")
    rows = []
    for name, job, actual in cases:
        zones_fc = forecasts if actual is not None else {z: forecasts[z] for z in job.zones}
        plan = plan_job(job, zones_fc, actual=actual)

        def run(
            job: Job = job,
            fc: dict[str, IntensitySeries] = zones_fc,
            a: dict[str, IntensitySeries] | None = actual,
        ) -> None:
            plan_job(job, fc, actual=a)

        best, median = timed(run)
        ok = median < TARGET_MS
        table.add_row(
            name, f"{best:.2f}", f"{median:.2f}", "yes" if ok else "NO", f"{plan.saving_pct:.1f}"
        )
        rows.append(
            {
                "case": name,
                "best_ms": best,
                "median_ms": median,
                "meets_target": ok,
                "saving_pct": plan.saving_pct,
                "slots": len(plan.slots),
            }
        )
    Console().print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "benchmark": "planner",
        "target_ms": TARGET_MS,
        "machine": platform.platform(),
        "python": platform.python_version(),
        "cases": rows,
    }
    (RESULTS / "planner.json").write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
