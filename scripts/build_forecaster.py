"""Train the learned keyless forecaster and choose, per zone, the default forecaster.

For each of the 16 zones with hourly data in ``../shared/data/grid/hourly`` (Electricity Maps,
life-cycle basis):

1. fit :func:`greenforge.schedule.learned.fit_zone` on **2021-2022 only** (the cutoff is
   recorded as ``train_end_s`` in the model file and asserted by the tests);
2. back-test it on the held-out year 2023 (history from 2022; 4 h job, 24 h slack,
   uninterruptible, plan at arrival, run-at-arrival baseline) next to ``blend`` and
   ``profile-7d``, with the float32 weights exactly as shipped;
3. record the captured shares and make the zone's ``auto`` choice the best of ``learned``,
   ``ensemble`` (their mean) and ``blend`` - ``blend`` unless another is strictly better.

Outputs ``src/greenforge/schedule/data/forecaster.npz`` and ``forecaster.json``. Deterministic:
the same data gives the same files (closed-form ridge solves, fixed zip timestamps).

Run: ``python scripts/build_forecaster.py [--data ../shared/data] [--out DIR] [--zones GB,DE]``.
``--validate --out DIR`` trains on 2021 only and replays 2022: the validation that chose to
offer the ``ensemble``, without looking at 2023.
"""

from __future__ import annotations

import os

# One BLAS thread: the ridge solves are small, and on a shared machine many threads only fight
# (set before numpy is imported; this is a script, not library code).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from greenforge.grid.files import load_csv
from greenforge.grid.profile import has_profile, profile_info
from greenforge.grid.series import IntensitySeries
from greenforge.schedule.backtest import JobShape, backtest
from greenforge.schedule.forecast import Blend, DayProfile, Forecaster
from greenforge.schedule.learned import (
    CHOICES,
    FEATURE_VERSION,
    HISTORY_STEPS,
    MAX_HORIZON,
    QUANTILES,
    Ensemble,
    Learned,
    ZoneModel,
    fit_zone,
    read_models,
    save_models,
)

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "greenforge" / "schedule" / "data"
TRAIN_YEARS = (2021, 2022)
HELDOUT_YEAR = 2023
SHAPE = JobShape(job_hours=4, slack_hours=24)


def year_start_s(year: int) -> float:
    return dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp()


def hourly_dir(data: Path) -> Path:
    return data / "grid" / "hourly"


def zones_in(data: Path) -> list[str]:
    return sorted({p.name.split("_")[0] for p in hourly_dir(data).glob("*_hourly.csv.gz")})


def load_zone(data: Path, zone: str, years: tuple[int, ...]) -> IntensitySeries:
    """The zone's hourly LCA series over ``years`` (portal CSV exports, concatenated)."""
    return load_csv([hourly_dir(data) / f"{zone}_{y}_hourly.csv.gz" for y in years])


def standard_offset_s(zone: str) -> float:
    """The zone's local standard-time offset, as the embedded profiles index it (the calendar
    features are local)."""
    return float(profile_info(zone)["standard_offset_h"]) * 3600.0


def build_zone(
    data: Path,
    zone: str,
    leads: int = MAX_HORIZON,
    train_years: tuple[int, ...] = TRAIN_YEARS,
) -> ZoneModel:
    """Returns the zone's model (its first ``leads`` leads) fitted on the training years only."""
    series = load_zone(data, zone, train_years)
    return fit_zone(
        zone,
        series.times_s,
        series.values_g_per_kwh,
        standard_offset_s(zone),
        train_end_s=year_start_s(train_years[-1] + 1),
        leads=leads,
    )


def heldout_scores(
    data: Path, zones: list[str], out: Path, heldout_year: int = HELDOUT_YEAR
) -> dict[str, dict[str, float]]:
    """Captured share of the oracle saving on the held-out year, per zone and forecaster,
    with the models as written in ``out`` (float32, as shipped)."""
    models = read_models(
        (out / "forecaster.npz").read_bytes(), (out / "forecaster.json").read_text("utf-8")
    )
    forecasters: list[Forecaster] = [
        Learned(models=models),
        Ensemble(models=models),
        Blend(),
        DayProfile(),
    ]
    series = {z: load_zone(data, z, (heldout_year - 1, heldout_year)) for z in zones}
    result = backtest(series, forecasters, [SHAPE], start_s=year_start_s(heldout_year))
    scores: dict[str, dict[str, float]] = {}
    for r in result.results:
        scores.setdefault(r.zone, {})[r.forecaster] = round(float(r.captured or 0.0), 6)
    return scores


def choose(scores: dict[str, float]) -> str:
    """Returns the zone's choice: the best of :data:`CHOICES` on the held-out year; ``blend``
    unless another is strictly better."""
    best = max(CHOICES, key=lambda name: (scores[name], -CHOICES.index(name)))
    return best if scores[best] > scores["blend"] else "blend"


def build(
    data: Path,
    out: Path,
    zones: list[str] | None = None,
    train_years: tuple[int, ...] = TRAIN_YEARS,
    heldout_year: int = HELDOUT_YEAR,
) -> dict[str, Any]:
    """Fit, evaluate on the held-out year, choose per zone and write the model files."""
    zones = zones or zones_in(data)
    unknown = [z for z in zones if not has_profile(z)]
    if unknown:
        raise SystemExit(f"no embedded profile (standard-time offset) for {unknown}.")
    models = [build_zone(data, z, train_years=train_years) for z in zones]
    meta: dict[str, Any] = {
        "feature_version": FEATURE_VERSION,
        "history_steps": HISTORY_STEPS,
        "max_horizon": MAX_HORIZON,
        "quantiles": list(QUANTILES),
        "train_years": list(train_years),
        "train_start_s": year_start_s(train_years[0]),
        "train_end_s": year_start_s(train_years[-1] + 1),
        "heldout_year": heldout_year,
        "selection_rule": (
            f"per zone, whichever of {', '.join(CHOICES)} captured the largest share of the "
            f"oracle saving on {heldout_year} (history from {heldout_year - 1}; "
            f"{SHAPE.job_hours:g} h job, {SHAPE.slack_hours:g} h slack, uninterruptible, plan "
            "at arrival); blend unless another is strictly better"
        ),
        "source": "Electricity Maps hourly carbon intensity, life-cycle basis (ODbL)",
        "selection": dict.fromkeys(zones, "blend"),
        "heldout_captured": {},
    }
    out.mkdir(parents=True, exist_ok=True)
    save_models(out, models, meta)
    scores = heldout_scores(data, zones, out, heldout_year)
    meta["heldout_captured"] = scores
    meta["selection"] = {z: choose(scores[z]) for z in zones}
    save_models(out, models, meta)
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--zones", default="", help="comma-separated subset (default: all)")
    parser.add_argument(
        "--validate",
        action="store_true",
        help="train on 2021 and replay 2022 instead (how the ensemble was chosen); needs --out",
    )
    args = parser.parse_args()
    zones = [z for z in args.zones.split(",") if z] or None
    if args.validate:
        if args.out == OUT:
            raise SystemExit("--validate writes a model trained on 2021 only: give --out DIR.")
        meta = build(args.data, args.out, zones, train_years=(2021,), heldout_year=2022)
    else:
        meta = build(args.data, args.out, zones)
    for zone, choice in meta["selection"].items():
        s = meta["heldout_captured"][zone]
        print(
            f"{zone:12s} learned {100 * s['learned']:5.1f} %  ensemble "
            f"{100 * s['ensemble']:5.1f} %  blend {100 * s['blend']:5.1f} %  "
            f"profile-7d {100 * s['profile-7d']:5.1f} %  -> {choice}"
        )
    scores = meta["heldout_captured"].values()
    means = {n: sum(s[n] for s in scores) / len(scores) for n in ("learned", "ensemble", "blend")}
    print("mean " + "  ".join(f"{n} {100 * v:.1f} %" for n, v in means.items()))
    print(f"wrote {args.out / 'forecaster.npz'} and {args.out / 'forecaster.json'}")


if __name__ == "__main__":
    main()
