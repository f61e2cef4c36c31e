"""Is the forge's headline stable when the machine is busy? (issue 8)

Runs ``greenforge forge --example EXAMPLE`` as a user would (the installed CLI, a fresh
process each time), once on the machine as it is and once with a CPU burner beside it (one
busy-loop process per logical CPU), alternating ``quiet, burner, quiet, burner ...`` for
``--pairs`` pairs. For every run it reads ``forge.json`` and prints the chosen candidate, the
headline ratio (fp32 baseline lifetime CO2e / chosen lifetime CO2e) with its interval, the
background load the forge itself detected, and the spread between same-architecture
candidates (same parameters, precision and runtime, e.g. ``baseline`` and ``early-stop``).

Required (issue 8):
- the same chosen candidate in every run, or each choice "within measurement noise" of the
  other (it is among the other run's contenders);
- headline ratios within +-25 % of each other (max / min <= 1.25 / 0.75 around their mean);
- same-architecture candidates within 10 % of each other in serving energy per prediction
  (candidates with the same parameters, FLOPs, precision and runtime, and the forge's own
  self-check: an independent copy of the baseline measured in the same rounds).

Usage::

    python benchmarks/bench_forge_stability.py [--example digits] [--pairs 1]

Prints a table and writes ``benchmarks/results/forge_stability_<example>.json``. Exit code 0 whatever
the outcome (benchmarks report; they never fail the test run); the verdict is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
SAME_ARCH_TOLERANCE = 0.10
RATIO_TOLERANCE = 0.25


@contextlib.contextmanager
def burner(processes: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start ``processes`` busy-loop Python processes; stop them on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        time.sleep(0.5)  # let them reach full speed before the forge starts
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def greenforge_cli() -> list[str]:
    """The command that runs the installed CLI next to this interpreter (else on PATH)."""
    beside = Path(sys.executable).with_name("greenforge")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("greenforge")
    if found is None:
        raise SystemExit("greenforge is not installed: run `make venv` first.")
    return [found]


def run_forge(example: str, out_dir: Path, extra: Sequence[str]) -> tuple[dict[str, Any], float]:
    """Run the forge CLI; returns forge.json and the wall time in seconds."""
    started = time.perf_counter()
    proc = subprocess.run(
        [*greenforge_cli(), "forge", "--example", example, "--out", str(out_dir), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"greenforge forge exited {proc.returncode}")
    data: dict[str, Any] = json.loads((out_dir / "forge.json").read_text(encoding="utf-8"))
    return data, wall


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def headline(data: Mapping[str, Any]) -> tuple[float | None, float | None, float | None]:
    """The headline ratio and its interval (low, high) from forge.json."""
    head = data.get("headline")
    if isinstance(head, Mapping):
        return _num(head.get("ratio")), _num(head.get("ratio_low")), _num(head.get("ratio_high"))
    comp = data.get("comparison") or {}
    return _num(comp.get("lifetime_reduction_factor")), None, None


def contenders(data: Mapping[str, Any]) -> set[str]:
    """The chosen candidate and those the forge called within noise of it."""
    out = {str(data.get("chosen"))}
    decision = data.get("decision")
    if isinstance(decision, Mapping):
        out.update(str(c) for c in decision.get("contenders") or ())
    return out


def serving_j_per_1k(cand: Mapping[str, Any]) -> float | None:
    serving = cand.get("inference_serving")
    if isinstance(serving, Mapping):
        return _num(serving.get("energy_j_per_1k"))
    return _num(cand.get("inference_energy_j_per_1k"))


def same_architecture_spreads(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Groups of candidates with the same parameters, FLOPs, precision and runtime."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for cand in data.get("candidates", []):
        if serving_j_per_1k(cand) is None or cand.get("parameters") is None:
            continue
        key = (
            cand.get("parameters"),
            cand.get("flops"),
            cand.get("precision"),
            cand.get("runtime"),
        )
        groups.setdefault(key, []).append(cand)
    out = []
    protocol = data.get("protocol")
    if isinstance(protocol, Mapping) and _num(protocol.get("control_spread")) is not None:
        # the forge's own self-check: an independent copy of the baseline measured beside it
        of = str(protocol.get("control_of"))
        out.append(
            {
                "candidates": [of, f"{of}~control"],
                "j_per_1k": [],
                "spread": float(protocol["control_spread"]),
            }
        )
    for group in groups.values():
        if len(group) < 2:
            continue
        values = [serving_j_per_1k(c) or 0.0 for c in group]
        lo, hi = min(values), max(values)
        out.append(
            {
                "candidates": [str(c.get("name")) for c in group],
                "j_per_1k": values,
                "spread": (hi - lo) / lo if lo > 0 else float("inf"),
            }
        )
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def summarise(label: str, data: Mapping[str, Any], wall_s: float) -> dict[str, Any]:
    ratio, low, high = headline(data)
    raw_noise = data.get("noise")
    noise: Mapping[str, Any] = raw_noise if isinstance(raw_noise, Mapping) else {}
    chosen = data.get("chosen")
    chosen_acc = None
    for cand in data.get("candidates", []):
        if cand.get("name") == chosen:
            chosen_acc = _num(cand.get("accuracy"))
    search = _mapping(data.get("search"))
    protocol = _mapping(data.get("protocol"))
    by_name = {c.get("name"): c for c in data.get("candidates", [])}
    return {
        "condition": label,
        "search_co2e_g": _num(search.get("total_co2e_g")),
        "measurement_co2e_g": _num(search.get("measurement_co2e_g")),
        "rounds": protocol.get("rounds"),
        "stopped": protocol.get("stopped"),
        "baseline_j_per_1k": serving_j_per_1k(by_name.get("baseline") or {}),
        "chosen_j_per_1k": serving_j_per_1k(by_name.get(chosen) or {}),
        "wall_s": wall_s,
        "chosen": chosen,
        "contenders": sorted(contenders(data)),
        "ratio": ratio,
        "ratio_low": low,
        "ratio_high": high,
        "chosen_accuracy": chosen_acc,
        "accuracy_loss_points": _num((data.get("comparison") or {}).get("accuracy_loss_points")),
        "background_load": _num(noise.get("background_load")),
        "busy": noise.get("busy"),
        "same_architecture": same_architecture_spreads(data),
    }


def verdict(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    mean = statistics.fmean(ratios) if ratios else float("nan")
    ratio_ok = bool(ratios) and all(abs(r / mean - 1.0) <= RATIO_TOLERANCE for r in ratios)
    chosen_ok = all(
        a["chosen"] == b["chosen"]
        or (a["chosen"] in b["contenders"] and b["chosen"] in a["contenders"])
        for a in rows
        for b in rows
    )
    spreads = [g["spread"] for r in rows for g in r["same_architecture"]]
    arch_ok = all(s <= SAME_ARCH_TOLERANCE for s in spreads)
    return {
        "ratio_mean": mean,
        "ratio_max_deviation": max((abs(r / mean - 1.0) for r in ratios), default=float("nan")),
        "ratios_within_25pct": ratio_ok,
        "same_choice_or_within_noise": chosen_ok,
        "same_architecture_max_spread": max(spreads, default=0.0),
        "same_architecture_within_10pct": arch_ok,
        "all_met": ratio_ok and chosen_ok and arch_ok,
    }


def _fmt(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", default="digits", choices=["digits", "mnist5k"])
    parser.add_argument("--pairs", type=int, default=1, help="quiet/burner pairs to run")
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 1)
    parser.add_argument("forge_args", nargs="*", help="extra arguments for greenforge forge")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-forge-stability-") as tmp:
        for i in range(args.pairs):
            for condition in ("quiet", "burner"):
                out = Path(tmp) / f"{condition}-{i}"
                if condition == "burner":
                    with burner(args.burners):
                        data, wall = run_forge(args.example, out, args.forge_args)
                else:
                    data, wall = run_forge(args.example, out, args.forge_args)
                rows.append(summarise(condition, data, wall))
    table = Table(title=f"forge stability: {args.example}, quiet vs {args.burners} busy loops")
    for col in (
        "run",
        "chosen",
        "ratio [interval]",
        "acc loss pts",
        "bg load",
        "same-arch spread",
        "base J/1k",
        "chosen J/1k",
        "search g (measuring)",
        "rounds",
        "wall s",
    ):
        table.add_column(col)
    for row in rows:
        spread = max((g["spread"] for g in row["same_architecture"]), default=None)
        interval = (
            f" [{row['ratio_low']:.1f}-{row['ratio_high']:.1f}]"
            if row["ratio_low"] is not None and row["ratio_high"] is not None
            else ""
        )
        table.add_row(
            row["condition"],
            str(row["chosen"]),
            _fmt(row["ratio"], "{:.1f}x") + interval,
            _fmt(row["accuracy_loss_points"], "{:.2f}"),
            _fmt(row["background_load"], "{:.0%}"),
            _fmt(spread, "{:.1%}"),
            _fmt(row["baseline_j_per_1k"], "{:.4g}"),
            _fmt(row["chosen_j_per_1k"], "{:.3g}"),
            _fmt(row["search_co2e_g"], "{:.3g}") + _fmt(row["measurement_co2e_g"], " ({:.2g})"),
            str(row["rounds"]),
            f"{row['wall_s']:.0f}",
        )
    console = Console(width=150)
    console.print(table)
    v = verdict(rows)
    console.print(
        f"ratios within +-25 %: {v['ratios_within_25pct']} (max deviation "
        f"{v['ratio_max_deviation']:.1%}); same choice or within noise: "
        f"{v['same_choice_or_within_noise']}; same-architecture within 10 %: "
        f"{v['same_architecture_within_10pct']} (max {v['same_architecture_max_spread']:.1%}) -> "
        f"{'all met' if v['all_met'] else 'NOT met'}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"forge_stability_{args.example}.json").write_text(
        json.dumps({"example": args.example, "runs": rows, "verdict": v}, indent=2),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
