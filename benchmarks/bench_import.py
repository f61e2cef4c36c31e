"""Benchmark: what a tracked run and the CLI cost to start, beside CodeCarbon (targets: import +
``Tracker.start()`` + ``stop()`` <= 100 ms over bare Python; ``greenforge --help`` <= 250 ms).

Every sample is a fresh Python process (byte-code caches warm, in a private prefix), and the
cases run interleaved, in a rotating order, round after round, so machine load affects all
alike:

- ``python (bare)``: an interpreter that does nothing (the baseline subtracted below);
- ``greenforge``: ``import greenforge; Tracker(zone="DE").start(); .stop()`` with the real
  meters, the embedded grid tables and the run store in a temp dir;
- ``codecarbon``: ``OfflineEmissionsTracker(country_iso_code="DEU").start(); .stop()`` (when
  installed; the benchmark says so and goes on without it);
- ``greenforge@REF`` (``--compare-ref REF``): the same script on the source tree of a git ref
  (e.g. the commit before a change), for before/after numbers from one run;
- ``greenforge --help`` (``python -m greenforge``, also on ``REF``) / ``codecarbon --help``:
  CLI start-up, whole process.

Reported per case: the median and a bootstrap 95 % interval of the whole process's wall time
and CPU time (user + system) *over bare Python in the same round*, the in-process import /
start / stop times, and which heavy modules the run imported. Writes
``benchmarks/results/import.json``.

    python benchmarks/bench_import.py [--rounds 15] [--compare-ref HEAD~3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from greenforge.forge.protocol import bootstrap_median

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_RUN_MS = 100.0
TARGET_CLI_MS = 250.0
HEAVY = ("numpy", "httpx", "rich", "torch", "pandas")

BARE = "pass"

GREENFORGE = """
import time
c0 = time.process_time(); t0 = time.perf_counter()
import greenforge
t1 = time.perf_counter()
tracker = greenforge.Tracker(zone="DE", name="bench-import")
tracker.start()
t2 = time.perf_counter()
tracker.stop()
t3 = time.perf_counter(); c3 = time.process_time()
import sys, json
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "start_ms": (t2 - t1) * 1e3,
                  "stop_ms": (t3 - t2) * 1e3, "cpu_ms": (c3 - c0) * 1e3,
                  "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
"""

CODECARBON = """
import logging, time
c0 = time.process_time(); t0 = time.perf_counter()
from codecarbon import OfflineEmissionsTracker
t1 = time.perf_counter()
tracker = OfflineEmissionsTracker(country_iso_code="DEU", save_to_file=False, log_level="error")
tracker.start()
t2 = time.perf_counter()
tracker.stop()
t3 = time.perf_counter(); c3 = time.process_time()
import sys, json
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "start_ms": (t2 - t1) * 1e3,
                  "stop_ms": (t3 - t2) * 1e3, "cpu_ms": (c3 - c0) * 1e3,
                  "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
"""


def _script(body: str) -> str:
    return f"HEAVY = {HEAVY!r}\n{body}"


def sample(argv: Sequence[str], env: Mapping[str, str]) -> dict[str, Any]:
    """Run one fresh process; returns its wall and CPU time (ms) and what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, check=False)
    wall_ms = (time.perf_counter() - t0) * 1e3
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    cpu_ms = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1e3
    result: dict[str, Any] = {"wall_ms": wall_ms, "proc_cpu_ms": cpu_ms}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if lines:
        result.update(json.loads(lines[-1]))
    return result


def have_codecarbon() -> bool:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('codecarbon') is None)"
    return subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


def source_of(ref: str, into: Path) -> Path:
    """The ``src`` tree of git ``ref`` unpacked under ``into`` (read-only use; no worktree)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "src.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def estimate(values: Sequence[float]) -> dict[str, float]:
    """Median, bootstrap 95 % interval and quartiles of ``values``."""
    est = bootstrap_median(list(values))
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return {"median": est.median, "ci95_low": est.low, "ci95_high": est.high, "q1": q1, "q3": q3}


def fmt(e: Mapping[str, float]) -> str:
    return f"{e['median']:.0f} [{e['ci95_low']:.0f}, {e['ci95_high']:.0f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--compare-ref", help="also time the tracker on this git ref's source")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 150))
    with tempfile.TemporaryDirectory() as tmp:
        home, pycache = Path(tmp) / "home", Path(tmp) / "pycache"
        env = {**os.environ, "GREENFORGE_HOME": str(home), "PYTHONPYCACHEPREFIX": str(pycache)}
        env.pop("GREENFORGE_ZONE", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # installed packages have warm byte-code
        py = sys.executable
        cases: dict[str, tuple[list[str], dict[str, str]]] = {
            "python (bare)": ([py, "-c", BARE], env),
            "greenforge": ([py, "-c", _script(GREENFORGE)], env),
        }
        if args.compare_ref:
            old_src = source_of(args.compare_ref, Path(tmp) / "ref")
            old_env = {**env, "PYTHONPATH": str(old_src), "GREENFORGE_HOME": str(home) + "-ref"}
            cases[f"greenforge@{args.compare_ref}"] = ([py, "-c", _script(GREENFORGE)], old_env)
        cc = have_codecarbon()
        if cc:
            cases["codecarbon"] = ([py, "-c", _script(CODECARBON)], env)
        else:
            console.print("[yellow]codecarbon is not installed: compared with bare Python only")
        cases["greenforge --help"] = ([py, "-m", "greenforge", "--help"], {**env, "COLUMNS": "100"})
        if args.compare_ref:
            cases[f"greenforge --help @{args.compare_ref}"] = (
                [py, "-m", "greenforge", "--help"],
                {**old_env, "COLUMNS": "100"},
            )
        cc_cli = shutil.which("codecarbon", path=str(Path(py).parent))
        if cc and cc_cli:
            cases["codecarbon --help"] = ([cc_cli, "--help"], {**env, "COLUMNS": "100"})
        names = list(cases)
        for name in names:  # warm the byte-code caches and the run store once
            sample(*cases[name])
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                runs[name].append(sample(*cases[name]))

    bare = runs["python (bare)"]
    summary: dict[str, dict[str, Any]] = {}
    table = Table(title=f"fresh-process start-up, {args.rounds} interleaved rounds (ms)")
    for col in (
        "case",
        "wall over bare: median [95% CI]",
        "CPU over bare",
        "import",
        "start",
        "stop",
        "heavy modules",
    ):
        table.add_column(col)
    for name in names:
        samples = runs[name]
        over_wall = [s["wall_ms"] - b["wall_ms"] for s, b in zip(samples, bare, strict=True)]
        over_cpu = [s["proc_cpu_ms"] - b["proc_cpu_ms"] for s, b in zip(samples, bare, strict=True)]
        row: dict[str, Any] = {
            "wall_ms": estimate([s["wall_ms"] for s in samples]),
            "wall_over_bare_ms": estimate(over_wall),
            "cpu_over_bare_ms": estimate(over_cpu),
        }
        for key in ("import_ms", "start_ms", "stop_ms", "cpu_ms"):
            if key in samples[0]:
                row[key] = estimate([s[key] for s in samples])
        if "heavy" in samples[0]:
            row["heavy_modules"] = sorted({m for s in samples for m in s["heavy"]})
        summary[name] = row
        table.add_row(
            name,
            fmt(row["wall_over_bare_ms"]) if name != "python (bare)" else fmt(row["wall_ms"]),
            fmt(row["cpu_over_bare_ms"]) if name != "python (bare)" else "-",
            f"{row['import_ms']['median']:.0f}" if "import_ms" in row else "-",
            f"{row['start_ms']['median']:.0f}" if "start_ms" in row else "-",
            f"{row['stop_ms']['median']:.0f}" if "stop_ms" in row else "-",
            ", ".join(row.get("heavy_modules", [])) or "-",
        )
    console.print(table)
    gf = summary["greenforge"]["wall_over_bare_ms"]["median"]
    cli = summary["greenforge --help"]["wall_over_bare_ms"]["median"]
    cli_total = summary["greenforge --help"]["wall_ms"]["median"]
    console.print(
        f"greenforge import+start+stop: {gf:.0f} ms over bare Python "
        f"({'meets' if gf <= TARGET_RUN_MS else 'MISSES'} the {TARGET_RUN_MS:.0f} ms target); "
        f"`greenforge --help`: {cli_total:.0f} ms in all, {cli:.0f} ms over bare Python "
        f"({'meets' if cli_total <= TARGET_CLI_MS else 'MISSES'} the {TARGET_CLI_MS:.0f} ms "
        f"target); load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    if "codecarbon" in summary:
        cc_wall = summary["codecarbon"]["wall_over_bare_ms"]["median"]
        cc_cpu = summary["codecarbon"]["cpu_over_bare_ms"]["median"]
        gf_cpu = summary["greenforge"]["cpu_over_bare_ms"]["median"]
        console.print(
            f"codecarbon / greenforge: {cc_wall / max(gf, 1e-9):.1f}x the wall time, "
            f"{cc_cpu / max(gf_cpu, 1e-9):.1f}x the CPU time"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "targets_ms": {"import_start_stop_over_bare": TARGET_RUN_MS, "cli_help": TARGET_CLI_MS},
        "rounds": args.rounds,
        "compare_ref": args.compare_ref,
        "codecarbon_installed": cc,
        "load_average_1m": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "cases": summary,
    }
    (RESULTS / "import.json").write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
