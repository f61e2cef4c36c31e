"""Benchmark: what a tracker costs while it runs, beside CodeCarbon.

Three parts, each GreenForge and CodeCarbon side by side in one run (CodeCarbon when
installed; without it the benchmark says so and reports GreenForge alone):

1. **Windows** (fresh processes, interleaved): the cost of one window boundary (target
   <= 20 us) over 10,000 ``tracker.window(...)`` blocks, and ``stop()`` after 100 and after
   10,000 windows (target: the same). CodeCarbon's nearest equivalent is a task
   (``start_task``/``stop_task``), timed over fewer repeats (each reads every meter).
2. **Idle run** (fresh processes, interleaved): a tracker running ``--idle-s`` seconds while the
   workload sleeps: the tracker threads' steady CPU time as a share of wall time (from 1 s after
   start, so GreenForge's background setup is left out, as CodeCarbon's happens in start()),
   and the process's peak resident memory.
3. **Training** (``--epochs 0`` skips it; needs torch): the same training job (the digits CNN of ``greenforge.examples.train``, single-threaded) runs
with no tracker, with ``greenforge.track()`` at the default interval (windows per epoch, run
store in a temp dir) and with CodeCarbon's ``OfflineEmissionsTracker`` (``save_to_file=False``),
interleaved over several repeats in one process, rotating the order so machine load affects
all alike. Wall time includes each tracker's start and stop. Ratios are against the
no-tracker time of the same repeat; the overhead estimate is the median ratio (target
<= 0.5 % wall time).

Medians come with a bootstrap 95 % interval. Prints rich tables and writes
``benchmarks/results/tracker_overhead.json``.

    python benchmarks/bench_tracker_overhead.py [--repeats 5] [--epochs 40] [--idle-s 10]
        [--compare-ref REF]  # also the windows on a git ref's source: before/after in one run
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from greenforge.forge.protocol import bootstrap_median

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_OVERHEAD = 0.005
TARGET_BOUNDARY_US = 20.0
MANY_WINDOWS = 10_000
FEW_WINDOWS = 100
CC_TASKS = 50

GF_WINDOWS = """
import json, os, time
import greenforge
tracker = greenforge.Tracker(zone="DE", name="bench-windows")
tracker.start()
time.sleep(0.2)  # the background setup (grid table, store) is done
t0 = time.perf_counter()
for i in range(N):
    with tracker.window("step"):
        pass
t1 = time.perf_counter()
record = tracker.stop()
t2 = time.perf_counter()
assert len(record.windows) == N
print(json.dumps({"per_window_us": (t1 - t0) / N * 1e6, "stop_ms": (t2 - t1) * 1e3}))
"""

CC_TASKS_SCRIPT = """
import json, logging, time
from codecarbon import OfflineEmissionsTracker
tracker = OfflineEmissionsTracker(country_iso_code="DEU", save_to_file=False, log_level="error")
tracker.start()
time.sleep(0.2)
t0 = time.perf_counter()
for i in range(N):
    tracker.start_task(f"step-{i}")
    tracker.stop_task()
t1 = time.perf_counter()
tracker.stop()
t2 = time.perf_counter()
print(json.dumps({"per_window_us": (t1 - t0) / N * 1e6, "stop_ms": (t2 - t1) * 1e3}))
"""

IDLE = {
    "no tracker": "start = lambda: None\nstop = lambda: None\n",
    "greenforge": (
        "import greenforge\n"
        "tracker = greenforge.Tracker(zone='DE', name='bench-idle')\n"
        "start, stop = tracker.start, tracker.stop\n"
    ),
    "codecarbon": (
        "from codecarbon import OfflineEmissionsTracker\n"
        "tracker = OfflineEmissionsTracker(country_iso_code='DEU', save_to_file=False,"
        " log_level='error')\n"
        "start, stop = tracker.start, tracker.stop\n"
    ),
}

IDLE_TAIL = """
import json, time

def peak_rss_mib():
    # VmHWM: this process image's peak (ru_maxrss may still hold the forked parent's)
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024

c_start = time.process_time()
start()
time.sleep(1.0)  # past each tracker's one-off setup (greenforge's runs in its thread)
c0, t0 = time.process_time(), time.perf_counter()
time.sleep(IDLE_S)
c1, t1 = time.process_time(), time.perf_counter()
stop()
print(json.dumps({"thread_cpu_share": (c1 - c0) / (t1 - t0),
                  "start_to_stop_cpu_ms": (time.process_time() - c_start) * 1e3,
                  "peak_rss_mib": peak_rss_mib()}))
"""

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


def fresh(script: str, env: dict[str, str]) -> dict[str, float]:
    """Run ``script`` in a fresh interpreter; returns the JSON object it printed last."""
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark process failed: {out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def median_ci(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    est = bootstrap_median(values)
    return (
        f"{est.median * scale:.{digits}f} "
        f"[{est.low * scale:.{digits}f}, {est.high * scale:.{digits}f}]"
    )


def interleaved(
    cases: dict[str, str],
    env: dict[str, str],
    repeats: int,
    envs: dict[str, dict[str, str]] | None = None,
) -> dict[str, list[dict[str, float]]]:
    """Each case ``repeats`` times in fresh processes, in a rotating order (``envs`` overrides
    the environment of some cases)."""
    names = list(cases)
    out: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            out[name].append(fresh(cases[name], (envs or {}).get(name, env)))
    return out


def windows_and_idle(
    repeats: int, idle_s: float, have_cc: bool, console: Console, compare_ref: str | None = None
) -> dict[str, Any]:
    """Parts 1 and 2: window boundaries, stop after many windows, idle thread CPU and memory."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GREENFORGE_HOME": tmp, "PYTHONPYCACHEPREFIX": f"{tmp}/pyc"}
        env.pop("GREENFORGE_ZONE", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        win_cases = {
            f"greenforge, {MANY_WINDOWS} windows": f"N = {MANY_WINDOWS}\n{GF_WINDOWS}",
            f"greenforge, {FEW_WINDOWS} windows": f"N = {FEW_WINDOWS}\n{GF_WINDOWS}",
        }
        envs: dict[str, dict[str, str]] = {}
        if compare_ref:  # the same windows on the source of a git ref (before/after)
            ref_dir = Path(tmp) / "ref"
            ref_dir.mkdir()
            subprocess.run(
                f"git -C {ROOT} archive {compare_ref} src | tar -x -C {ref_dir}",
                shell=True,
                check=True,
            )
            name = f"greenforge@{compare_ref}, {MANY_WINDOWS} windows"
            win_cases[name] = f"N = {MANY_WINDOWS}\n{GF_WINDOWS}"
            envs[name] = {**env, "PYTHONPATH": str(ref_dir / "src"), "GREENFORGE_HOME": f"{tmp}/r"}
        if have_cc:
            win_cases[f"codecarbon, {CC_TASKS} tasks"] = f"N = {CC_TASKS}\n{CC_TASKS_SCRIPT}"
        idle_cases = {
            name: code + IDLE_TAIL.replace("IDLE_S", repr(idle_s))
            for name, code in IDLE.items()
            if have_cc or name != "codecarbon"
        }
        for name, script in (*win_cases.items(), *idle_cases.items()):
            warm = script.replace(f"N = {MANY_WINDOWS}", "N = 10").replace(repr(idle_s), "0.1")
            fresh(warm, envs.get(name, env))
        windows = interleaved(win_cases, env, repeats, envs)
        idle = interleaved(idle_cases, env, repeats)

    table = Table(title=f"window boundaries and stop, fresh processes, {repeats} repeats")
    for col in ("case", "per window (2 boundaries), us", "stop(), ms"):
        table.add_column(col)
    summary: dict[str, Any] = {"windows": {}, "idle": {}}
    for name, samples in windows.items():
        per = [s["per_window_us"] for s in samples]
        stop = [s["stop_ms"] for s in samples]
        table.add_row(name, median_ci(per), median_ci(stop))
        summary["windows"][name] = {
            "per_window_us": dataclasses.asdict(bootstrap_median(per)),
            "stop_ms": dataclasses.asdict(bootstrap_median(stop)),
        }
    console.print(table)
    table = Table(title=f"idle run of {idle_s:.0f} s, fresh processes, {repeats} repeats")
    for col in ("tracker", "tracker threads' CPU / wall, %", "peak RSS, MiB"):
        table.add_column(col)
    for name, samples in idle.items():
        share = [s["thread_cpu_share"] for s in samples]
        rss = [s["peak_rss_mib"] for s in samples]
        table.add_row(name, median_ci(share, 100.0, 3), median_ci(rss))
        summary["idle"][name] = {
            "thread_cpu_share": dataclasses.asdict(bootstrap_median(share)),
            "peak_rss_mib": dataclasses.asdict(bootstrap_median(rss)),
        }
    console.print(table)
    gf_many = bootstrap_median([s["per_window_us"] for s in next(iter(windows.values()))]).median
    verdict = "meets" if gf_many / 2 <= TARGET_BOUNDARY_US else "MISSES"
    console.print(
        f"greenforge: {gf_many / 2:.1f} us per window boundary ({verdict} the "
        f"{TARGET_BOUNDARY_US:.0f} us target)"
    )
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40, help="0 skips the training part")
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--compare-ref", help="also time the windows on this git ref's source")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 120))
    have_cc = importlib.util.find_spec("codecarbon") is not None
    if not have_cc:
        console.print("[yellow]codecarbon is not installed: GreenForge is measured alone")
    parts = windows_and_idle(args.repeats, args.idle_s, have_cc, console, args.compare_ref)
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "codecarbon_installed": have_cc,
        "repeats": args.repeats,
        "idle_s": args.idle_s,
        "load_average_1m": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        **parts,
    }
    if args.epochs <= 0:
        (RESULTS / "tracker_overhead.json").write_text(json.dumps(payload, indent=2) + "\n")
        return 0

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
        if have_cc:
            modes["codecarbon"] = run_codecarbon
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
    payload["training"] = {
        "target_overhead": TARGET_OVERHEAD,
        "epochs": args.epochs,
        "times_s": times,
        "cpu_s": cpu,
        "greenforge_self_measured": SELF_MEASURED,
        "summary": summary,
    }
    (RESULTS / "tracker_overhead.json").write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
