"""Grid benchmarks: load 3 years x 16 zones of hourly portal CSV (< 1 s) and integrate a
1 s-resolution 24 h energy profile against an hourly series (< 10 ms).

Run: ``python benchmarks/bench_grid.py``. Prints a table and writes
``benchmarks/results/grid.json``. Needs the reference data beside the checkout
(``../shared/data``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from greenforge.grid.files import load_csv
from greenforge.grid.ops import integrate_energy_g, resample
from greenforge.grid.profile import profile_series

REPO = Path(__file__).resolve().parents[1]
HOURLY = REPO / ".." / "shared" / "data" / "grid" / "hourly"
RESULTS = REPO / "benchmarks" / "results"


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """(best wall, median wall, best CPU) seconds over ``repeat`` runs. CPU time (this
    process) shows the cost when other processes compete for the cores."""
    times = []
    cpu = []
    for _ in range(repeat):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(times), statistics.median(times), min(cpu)


def load_all() -> int:
    files = sorted(HOURLY.glob("*_hourly.csv.gz"))
    by_zone: dict[str, list[Path]] = {}
    for f in files:
        by_zone.setdefault(f.name.split("_")[0], []).append(f)
    points = 0
    for paths in by_zone.values():
        points += len(load_csv(paths))
    return points


def main() -> None:
    files = sorted(HOURLY.glob("*_hourly.csv.gz"))
    if len(files) != 48:
        raise SystemExit(f"expected 48 hourly files in {HOURLY}, found {len(files)}")
    points = load_all()
    load = best_of(load_all, 5)

    series = profile_series("DE", 1.7e9, 1.7e9 + 86400)
    rng = np.random.default_rng(0)
    energy_j = rng.uniform(50.0, 300.0, 86400)  # 1 s samples of a 50-300 W load
    integrate_energy_g(series, 1.7e9, 1.0, energy_j)
    integrate = best_of(lambda: integrate_energy_g(series, 1.7e9, 1.0, energy_j), 50)

    year = load_csv(sorted(HOURLY.glob("GB_*_hourly.csv.gz")))
    res = best_of(lambda: resample(year, 900.0), 10)

    rows = [
        ("load 48 portal CSV.gz (3 y x 16 zones)", f"{points} points", load, 1.0),
        ("integrate 1 s x 24 h energy vs hourly", "86400 samples", integrate, 0.010),
        ("resample 3 y hourly -> 15 min", f"{len(year)} points", res, None),
    ]
    table = Table(
        title=f"GreenForge grid benchmarks ({platform.processor() or platform.machine()})"
    )
    for col in ("operation", "size", "best", "median", "best CPU", "target", "ok"):
        table.add_column(col, justify="left" if col in ("operation", "size") else "right")
    results = []
    for name, size, (best, median, cpu), target in rows:
        ok = "" if target is None else ("yes" if best < target else "NO")
        table.add_row(
            name,
            size,
            f"{best * 1e3:.2f} ms",
            f"{median * 1e3:.2f} ms",
            f"{cpu * 1e3:.2f} ms",
            "-" if target is None else f"< {target * 1e3:g} ms",
            ok,
        )
        results.append(
            {
                "operation": name,
                "size": size,
                "best_s": best,
                "median_s": median,
                "best_cpu_s": cpu,
                "target_s": target,
            }
        )
    Console(width=130).print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "grid.json"
    load_avg = os.getloadavg()[0]
    print(f"1-min load average {load_avg:.2f} on {os.cpu_count()} CPUs (contention inflates times)")
    payload = {
        "python": platform.python_version(),
        "load_average_1min": load_avg,
        "cpus": os.cpu_count(),
        "results": results,
    }
    out.write_text(json.dumps(payload, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
