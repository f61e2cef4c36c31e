"""Benchmark: tracker overhead on a CPU-bound PyTorch training loop (target <= 0.5 % wall time).

The same training job (the digits CNN of ``greenforge.examples.train``, single-threaded) runs
with no tracker, with ``greenforge.track()`` at the default interval (windows per epoch, run
store in a temp dir) and with CodeCarbon's ``OfflineEmissionsTracker`` (``save_to_file=False``),
interleaved over several repeats in one process, rotating the order so machine load affects
all alike. Wall time includes each tracker's start and stop. Ratios are against the
no-tracker time of the same repeat; the overhead estimate is the median ratio. Prints a rich
table and writes ``benchmarks/results/tracker_overhead.json``.

    python benchmarks/bench_tracker_overhead.py [--repeats 5] [--epochs 40]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_OVERHEAD = 0.005

Window = Callable[[str], AbstractContextManager[object]]
Job = Callable[[Window | None], None]


def make_job(epochs: int) -> Job:
    import torch

    from greenforge.examples.train import load_data, make_model, train_epoch

    x, y, _, _ = load_data(0)

    def job(window: Window | None) -> None:
        torch.manual_seed(0)
        generator = torch.Generator().manual_seed(0)
        model = make_model(32)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for epoch in range(epochs):
            if window is None:
                train_epoch(model, optimizer, x, y, 32, generator)
            else:
                with window(f"epoch-{epoch}"):
                    train_epoch(model, optimizer, x, y, 32, generator)

    return job


Timing = tuple[float, float]
"""(wall s, process CPU s: all threads of this process, so a tracker's own thread counts)."""


def run_none(job: Job) -> Timing:
    t0, c0 = time.perf_counter(), time.process_time()
    job(None)
    return time.perf_counter() - t0, time.process_time() - c0


SELF_MEASURED: list[dict[str, float]] = []
"""Per greenforge run: the tracker's own accounting of its cost (see Monitor.sampling_cpu_s)."""


def run_greenforge(job: Job) -> Timing:
    import greenforge

    t0, c0 = time.perf_counter(), time.process_time()
    with greenforge.track(zone="DE", name="bench-overhead") as run:
        job(run.window)
    wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    assert run.record is not None
    own = run.record.metadata["tracker_overhead_s"]
    SELF_MEASURED.append(
        {
            "wall_s": wall_s,
            "steady_fraction": (own["sampling_cpu"] + own["window_boundaries"]) / wall_s,
            "with_setup_fraction": (
                own["sampling_cpu"] + own["window_boundaries"] + own["setup_cpu"]
            )
            / wall_s,
        }
    )
    return wall_s, cpu_s


def run_codecarbon(job: Job) -> Timing:
    from codecarbon import OfflineEmissionsTracker

    t0, c0 = time.perf_counter(), time.process_time()
    tracker = OfflineEmissionsTracker(country_iso_code="DEU", save_to_file=False, log_level="error")
    tracker.start()
    job(None)
    tracker.stop()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # the benchmark is the application; stable timing on 2 cores
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as home:
        os.environ["GREENFORGE_HOME"] = home
        job = make_job(args.epochs)
        modes: dict[str, Callable[[Job], Timing]] = {
            "no tracker": run_none,
            "greenforge": run_greenforge,
        }
        try:
            import codecarbon  # noqa: F401

            modes["codecarbon"] = run_codecarbon
        except ImportError:
            Console().print("[yellow]codecarbon not installed: compared with no tracker only")
        names = list(modes)
        run_none(job)  # warm-up (allocator, kernels)
        times: dict[str, list[float]] = {n: [] for n in names}
        cpu: dict[str, list[float]] = {n: [] for n in names}
        for r in range(args.repeats):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                wall_s, cpu_s = modes[name](job)
                times[name].append(wall_s)
                cpu[name].append(cpu_s)

    base = times["no tracker"]
    table = Table(
        title=f"tracker overhead, digits CNN x {args.epochs} epochs, {args.repeats} repeats"
    )
    for col in (
        "tracker",
        "median wall",
        "min wall",
        "wall ratio (median)",
        "wall overhead",
        "CPU ratio (median)",
        "CPU overhead",
    ):
        table.add_column(col)
    summary: dict[str, dict[str, float]] = {}
    for name in names:
        ratios = [t / b for t, b in zip(times[name], base, strict=True)]
        cpu_ratios = [t / b for t, b in zip(cpu[name], cpu["no tracker"], strict=True)]
        median_ratio = statistics.median(ratios)
        cpu_ratio = statistics.median(cpu_ratios)
        summary[name] = {
            "median_s": statistics.median(times[name]),
            "min_s": min(times[name]),
            "median_ratio": median_ratio,
            "min_ratio": min(times[name]) / min(base),
            "overhead": median_ratio - 1.0,
            "cpu_median_ratio": cpu_ratio,
            "cpu_overhead": cpu_ratio - 1.0,
        }
        table.add_row(
            name,
            f"{statistics.median(times[name]):.3f} s",
            f"{min(times[name]):.3f} s",
            f"{median_ratio:.4f}",
            f"{(median_ratio - 1) * 100:+.2f} %",
            f"{cpu_ratio:.4f}",
            f"{(cpu_ratio - 1) * 100:+.2f} %",
        )
    console = Console()
    console.print(table)
    steady = statistics.median(m["steady_fraction"] for m in SELF_MEASURED)
    with_setup = statistics.median(m["with_setup_fraction"] for m in SELF_MEASURED)
    console.print(
        f"self-measured greenforge cost (sampling-thread CPU + window-boundary time) / wall: "
        f"{steady * 100:.3f} % steady state, {with_setup * 100:.3f} % including the one-off "
        "background setup (grid table, store)"
    )
    gf = summary["greenforge"]["overhead"]
    gf_cpu = summary["greenforge"]["cpu_overhead"]
    verdict = "meets" if gf <= TARGET_OVERHEAD else "MISSES"
    console.print(
        f"greenforge wall overhead {gf * 100:+.2f} % (CPU-time overhead {gf_cpu * 100:+.2f} %, "
        f"min-ratio {summary['greenforge']['min_ratio']:.4f})"
        f" {verdict} the {TARGET_OVERHEAD * 100:.1f} % target; load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (noise on a busy machine can exceed "
        "the effect being measured)"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "target_overhead": TARGET_OVERHEAD,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "load_average_1m": os.getloadavg()[0],
        "times_s": times,
        "cpu_s": cpu,
        "greenforge_self_measured": SELF_MEASURED,
        "summary": summary,
    }
    (RESULTS / "tracker_overhead.json").write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
