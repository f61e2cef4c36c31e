"""Back-test speed and memory: a year of hourly data for one zone, and long 5-minute data.

Cases, each run ``--repeats`` times, interleaved (case A, B, C, A, B, C, ...) so that load on a
shared machine hits all of them alike:

- ``load``: read one year of hourly portal data (``DE_2023_hourly.csv.gz``);
- ``once`` / ``replan`` / ``interruptible``: back-test 2023 for DE (history from 2022) with the
  default ``blend`` forecaster, a 4 h job with 24 h slack (target: about 1 s);
- ``cli``: ``greenforge backtest --file ... --json`` end to end, in a fresh process;
- ``memory``: peak resident memory of a process that loads and back-tests (oracle) a year of
  5-minute data (105,120 rows), the shape of input that used to take 11.8 GB.

With ``--baseline REV`` (default ``31f40fa``, before issue 9) the same in-process cases also
run on that revision's ``grid/files.py`` and ``schedule/backtest.py`` (read with ``git show``),
side by side. Each figure: median, and a 95 % bootstrap interval of the median.

Run: ``python benchmarks/bench_backtest_speed.py [--repeats 7] [--baseline REV|none]``.
Writes ``benchmarks/results/backtest_speed.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from greenforge.grid import files
from greenforge.schedule import backtest as bt
from greenforge.schedule.forecast import create_forecaster

REPO = Path(__file__).resolve().parents[1]
HOURLY = REPO / ".." / "shared" / "data" / "grid" / "hourly"
RESULTS = REPO / "benchmarks" / "results"
YEAR_2023_S = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc).timestamp()
TARGET_S = 1.0


def median_interval(samples: list[float], seed: int = 0) -> tuple[float, float, float]:
    """(median, low, high): the median and a 95 % bootstrap interval of it."""
    data = np.asarray(samples)
    rng = np.random.default_rng(seed)
    boots = np.median(rng.choice(data, size=(2000, data.size), replace=True), axis=1)
    return (
        float(np.median(data)),
        float(np.quantile(boots, 0.025)),
        float(np.quantile(boots, 0.975)),
    )


def load_revision(rev: str) -> tuple[ModuleType, ModuleType] | None:
    """That revision's files.py and backtest.py as modules, or None (no git / no revision)."""
    out = Path(tempfile.mkdtemp(prefix="gf-baseline-"))
    modules = []
    for name, rel in (
        ("gf_base_files", "src/greenforge/grid/files.py"),
        ("gf_base_backtest", "src/greenforge/schedule/backtest.py"),
    ):
        try:
            text = subprocess.run(
                ["git", "-C", str(REPO), "show", f"{rev}:{rel}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        path = out / f"{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        modules.append(module)
    return modules[0], modules[1]


def five_minute_year(path: Path) -> Path:
    """A generic CSV of one year of 5-minute data (a daily wave plus noise)."""
    rng = np.random.default_rng(1)
    n = 365 * 288
    t0 = dt.datetime(2023, 1, 1)
    values = 300 + 100 * np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0, 20, n)
    with path.open("w") as fh:
        fh.write("timestamp,value\n")
        for i in range(n):
            fh.write(f"{t0 + dt.timedelta(minutes=5 * i):%Y-%m-%dT%H:%M}Z,{values[i]:.2f}\n")
    return path


_MEMORY_CHILD = """
import resource, sys
sys.path[:0] = [sys.argv[3]] if len(sys.argv) > 3 else []
if sys.argv[2] == "current":
    from greenforge.grid.files import load_csv
    from greenforge.schedule.backtest import JobShape, backtest
else:
    import {files} as f, {bt} as b
    load_csv, JobShape, backtest = f.load_csv, b.JobShape, b.backtest
from greenforge.schedule.forecast import create_forecaster
s = load_csv(sys.argv[1])
backtest({{s.zone: s}}, [create_forecaster("oracle")], [JobShape(4, 24)])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mb(csv_path: Path, which: str, base_dir: str | None) -> float:
    code = _MEMORY_CHILD.format(files="gf_base_files", bt="gf_base_backtest")
    argv = [sys.executable, "-c", code, str(csv_path), which, *([base_dir] if base_dir else [])]
    proc = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600)
    return int(proc.stdout.strip().splitlines()[-1]) / 1024.0


def _loader(module: Any, path: Path) -> Callable[[], object]:
    return lambda: module.load_csv(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", default="31f40fa", help="git revision, or 'none'")
    args = parser.parse_args()
    paths = [HOURLY / f"DE_{y}_hourly.csv.gz" for y in (2022, 2023)]
    if not all(p.exists() for p in paths):
        raise SystemExit(f"needs the reference data in {HOURLY}")
    base = None if args.baseline == "none" else load_revision(args.baseline)
    blend = create_forecaster("blend")

    def backtest_case(mod_files: Any, mod_bt: Any, **kw: Any) -> Callable[[], object]:
        series = mod_files.load_csv(paths)
        shape = mod_bt.JobShape(4, 24)
        return lambda: mod_bt.backtest({"DE": series}, [blend], [shape], start_s=YEAR_2023_S, **kw)

    impls: list[tuple[str, Any, Any]] = [("current", files, bt)]
    if base is not None:
        impls.append((f"baseline {args.baseline}", base[0], base[1]))
    cases: dict[tuple[str, str], Callable[[], object]] = {}
    for label, f_mod, b_mod in impls:
        cases[("load 1 y hourly CSV.gz", label)] = _loader(f_mod, paths[1])
        cases[("backtest 1 y hourly, once", label)] = backtest_case(f_mod, b_mod)
        cases[("backtest 1 y hourly, replan", label)] = backtest_case(f_mod, b_mod, policy="replan")
        cases[("backtest 1 y hourly, interruptible", label)] = backtest_case(
            f_mod, b_mod, interruptible=True
        )
    cli = [sys.executable, "-m", "greenforge", "backtest", "--json", "--from", "2023-01-01"]
    cli += [arg for p in paths for arg in ("--file", str(p))]
    cases[("CLI backtest (fresh process)", "current")] = lambda: subprocess.run(
        cli, capture_output=True, check=True
    )
    for fn in cases.values():  # warm-up (imports, caches)
        fn()
    samples: dict[tuple[str, str], list[float]] = {k: [] for k in cases}
    for _ in range(args.repeats):
        for key, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        five = five_minute_year(Path(tmp) / "five_min_2023.csv")
        base_dir = str(sys.modules["gf_base_files"].__file__).rsplit("/", 1)[0] if base else None
        memory = {"current": peak_rss_mb(five, "current", None)}
        if base is not None:
            memory[f"baseline {args.baseline}"] = peak_rss_mb(five, "baseline", base_dir)

    table = Table(title=f"Back-test speed ({args.repeats} interleaved repeats; median [95 % CI])")
    for col in ("case", "implementation", "median", "95 % interval", "target"):
        table.add_column(col, justify="left" if col in ("case", "implementation") else "right")
    rows: list[dict[str, Any]] = []
    for (case, label), values in samples.items():
        med, lo, hi = median_interval(values)
        target = TARGET_S if case.startswith("backtest 1 y hourly, once") else None
        table.add_row(
            case,
            label,
            f"{med * 1e3:.0f} ms",
            f"{lo * 1e3:.0f}-{hi * 1e3:.0f} ms",
            "-" if target is None else f"<= {target:g} s",
        )
        rows.append(
            {
                "case": case,
                "implementation": label,
                "median_s": med,
                "ci95_s": [lo, hi],
                "samples_s": values,
                "target_s": target,
            }
        )
    for label, mb in memory.items():
        table.add_row("peak RSS: load + backtest 1 y of 5-min data", label, f"{mb:.0f} MiB", "", "")
    console = Console(width=140)
    console.print(table)
    load_avg = os.getloadavg()[0]
    console.print(f"1-min load average {load_avg:.2f} on {os.cpu_count()} CPUs")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "backtest_speed.json"
    payload = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1min": load_avg,
        "repeats": args.repeats,
        "results": rows,
        "peak_rss_mib_five_minute_year": memory,
        "self_max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    out.write_text(json.dumps(payload, indent=1))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
