"""PUE over time: a facility's overhead as a series, from the user's data or a facility model.

PUE (power usage effectiveness, ISO/IEC 30134-2) = total facility power / IT power. It is not a
constant: the cooling plant works harder on hot afternoons, and electrical losses weigh more at
light IT load. :func:`load_pue` reads one of::

    1.2                                   a constant
    facility-pue.csv                      the user's measurements: timestamp,pue
    model:free-cooled:temperature.csv     the facility model below, driven by outdoor
    model:air-cooled:temperature.csv:0.4  temperatures (timestamp,temperature_c), IT load 0.4

and returns a :class:`PueSeries`; ``PueSeries.over(times_s)`` gives PUE at each time (numpy).
The tracker accepts a :class:`PueSeries` as ``pue=`` (CO2e uses PUE(t) interval by interval) and
:func:`apply_pue` turns a grid intensity into facility intensity for the planner;
:func:`attribute_saving` splits a plan's saving into the grid's part and the PUE's part.

**The facility model** (per unit of design IT power; ``L`` = IT load as a fraction of the
design capacity, ``T`` = outdoor dry-bulb temperature in deg C)::

    losses(L) = e0 + e1 L + e2 L^2          UPS, PDU, transformers (no-load + proportional +
                                            square-law terms: N. Rasmussen, "Electrical
                                            Efficiency Modeling for Data Centers", APC/Schneider
                                            White Paper 113)
    heat      = L + losses + lights         what the cooling must remove
    fans      = f x heat                    CRAH/CRAC and heat-rejection fans
    chiller   = m(T) x heat / COP(T)        mechanical cooling
    COP(T)    = COP35 x (1 + k (35 - T)), clipped to [COP35, COP_MAX]
    PUE       = (L + losses + lights + fans + chiller) / L

- ``COP35 = 2.96``: ASHRAE Standard 90.1-2019, Table 6.8.1-3, minimum full-load efficiency of
  an air-cooled chiller (Path A, 10.1 EER) at the rating condition of 35 deg C (95 deg F)
  outdoor air (AHRI 550/590).
- ``k = 0.03`` per K: a chiller's efficiency rises by about 3 % per kelvin of cooler condenser
  air (a linear reading of the DOE-2 / EnergyPlus ``Chiller:Electric:EIR`` curve EIR-f(T);
  EnergyPlus Engineering Reference), capped at ``COP_MAX = 6``.
- ``m(T)``, the share of the heat removed mechanically: 1 for the **air-cooled** design (CRAC
  units and an air-cooled chiller, no economiser); for the **free-cooled** design (air-side
  economiser) 0 below 18 deg C, rising linearly to 1 at 27 deg C - the recommended supply-air
  range of ASHRAE TC 9.9, *Thermal Guidelines for Data Processing Environments* (5th ed.,
  2021): outdoor air at or below the range's low end cools the room on its own; above its high
  end the chiller does all the work. Humidity limits are not modelled (this overstates
  free-cooling hours in humid climates).
- Electrical losses ``(e0, e1, e2) = (0.02, 0.03, 0.02)`` (93 % efficient at full load, about
  90 % at 30 % load, the shape of White Paper 113's UPS/PDU curves); lights and miscellaneous
  ``0.01``; fans ``f = 0.08`` (air-cooled CRAC) or ``0.04`` (economiser air handlers).

At 60 % IT load the model gives an annual PUE of about 1.4 (air-cooled) and 1.15 (free-cooled)
in a temperate climate (10 deg C mean), between the industry average of 1.58 (Uptime Institute
Global Data Center Survey 2023) and hyperscale free-cooled sites (Google's fleet: 1.10 trailing
twelve months, 2023 Environmental Report). It is a planning model, not a substitute for a
facility's own meter data - which :func:`load_pue` reads from a CSV.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from greenforge.errors import ConfigError, DataError, UnknownNameError

if TYPE_CHECKING:
    from greenforge.grid.series import IntensitySeries
    from greenforge.grid.steps import StepIntensity
    from greenforge.schedule.job import Job
    from greenforge.schedule.planner import Plan

FloatArray = npt.NDArray[np.float64]
PueKind = Literal["constant", "file", "model"]

PUE_MIN = 1.0
PUE_MAX = 3.0
"""Plausible PUE values (the same range :class:`greenforge.config.Settings` accepts)."""
TEMPERATURE_RANGE_C = (-60.0, 60.0)
DEFAULT_IT_LOAD = 0.6
"""IT load (fraction of design capacity) of the model when the spec gives none."""
MAX_ROWS = 1_000_000
HOUR_S = 3600.0


# --------------------------------------------------------------------------- the series


@dataclasses.dataclass(frozen=True, eq=False)
class PueSeries:
    """PUE at ``times_s`` (unix s), each value holding until the next point (the last for
    ``step_s``; outside the coverage the edge value holds), with where it came from."""

    times_s: FloatArray
    values: FloatArray
    step_s: float
    source: str
    kind: PueKind

    def __post_init__(self) -> None:
        t = np.asarray(self.times_s, dtype=np.float64)
        v = np.asarray(self.values, dtype=np.float64)
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "values", v)
        if t.ndim != 1 or t.shape != v.shape or t.size == 0:
            raise DataError("a PUE series needs as many values as times (at least one).")
        if t.size > 1 and np.any(np.diff(t) <= 0):
            raise DataError(f"PUE series {self.source!r}: timestamps not increasing.")
        if not (math.isfinite(self.step_s) and self.step_s > 0):
            raise DataError(f"PUE series step must be > 0 s, got {self.step_s!r}.")
        if np.any(~np.isfinite(v)) or np.any(v < PUE_MIN) or np.any(v > PUE_MAX):
            bad = float(v[~np.isfinite(v) | (v < PUE_MIN) | (v > PUE_MAX)][0])
            raise DataError(
                f"PUE series {self.source!r} has PUE {bad:g}: PUE is total facility power / IT "
                f"power, between {PUE_MIN:g} and {PUE_MAX:g}."
            )

    @property
    def start_s(self) -> float:
        """Returns the start of the coverage (unix s)."""
        return float(self.times_s[0])

    @property
    def end_s(self) -> float:
        """Returns the end of the coverage (unix s)."""
        return float(self.times_s[-1] + self.step_s)

    def over(self, times_s: npt.ArrayLike) -> FloatArray:
        """Returns PUE at each of ``times_s`` (the point holding at that time)."""
        t = np.asarray(times_s, dtype=np.float64)
        i = np.clip(np.searchsorted(self.times_s, t, side="right") - 1, 0, self.values.size - 1)
        out: FloatArray = self.values[i]
        return out

    def at(self, t_s: float) -> float:
        """Returns PUE at ``t_s``."""
        return float(self.over([t_s])[0])

    def _integral(self, t: FloatArray) -> FloatArray:
        knots = np.append(self.times_s, self.end_s)
        cum = np.concatenate([[0.0], np.cumsum(self.values * np.diff(knots))])
        i = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, self.values.size - 1)
        inside = cum[i] + (t - knots[i]) * self.values[i]
        before = (t - knots[0]) * self.values[0]
        after = cum[-1] + (t - knots[-1]) * self.values[-1]
        out: FloatArray = np.where(t < knots[0], before, np.where(t > knots[-1], after, inside))
        return out

    def mean(self, starts_s: npt.ArrayLike, ends_s: npt.ArrayLike) -> FloatArray:
        """Returns the time-weighted mean PUE over each ``[start, end)`` (vectorised)."""
        a = np.asarray(starts_s, dtype=np.float64)
        b = np.asarray(ends_s, dtype=np.float64)
        width = b - a
        with np.errstate(invalid="ignore", divide="ignore"):
            m = (self._integral(b) - self._integral(a)) / width
        # inside one step the mean is that step's value: exact, where the integral difference
        # of a tiny range far from the first knot would lose digits to cancellation
        last = self.values.size - 1
        ia = np.clip(np.searchsorted(self.times_s, a, side="right") - 1, 0, last)
        ib = np.clip(np.searchsorted(self.times_s, b, side="left") - 1, 0, last)
        m = np.where(ia == ib, self.values[ia], m)
        out: FloatArray = np.where(width > 0, m, self.over(a))
        return out

    def describe(self) -> str:
        """Returns one line: the source and the range of values."""
        if self.kind == "constant":
            return f"PUE {self.values[0]:g} ({self.source})"
        return (
            f"PUE {self.values.min():.3g}-{self.values.max():.3g}, mean "
            f"{float(self.values.mean()):.3g} over {self.values.size} points ({self.source})"
        )


def constant_pue(value: float, source: str = "constant") -> PueSeries:
    """Returns a series holding ``value`` at all times."""
    return PueSeries(np.zeros(1), np.array([_check_pue(value, source)]), 1.0, source, "constant")


def _check_pue(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"PUE {value!r} ({what}) must be a number between 1 and 3.")
    if not (math.isfinite(value) and PUE_MIN <= value <= PUE_MAX):
        raise ConfigError(
            f"PUE {value!r} ({what}) must be between {PUE_MIN:g} and {PUE_MAX:g}: total "
            "facility power / IT power (1.1 a free-cooled hyperscale site, 1.6 a typical one)."
        )
    return float(value)


# --------------------------------------------------------------------------- the model


@dataclasses.dataclass(frozen=True)
class FacilityDesign:
    """Parameters of :func:`model_pue` for one facility design (see the module docstring)."""

    name: str
    description: str
    fans: float
    free_below_c: float | None
    """Below this outdoor temperature the economiser does all the cooling (None: no
    economiser)."""
    mechanical_above_c: float | None
    losses: tuple[float, float, float] = (0.02, 0.03, 0.02)
    lights: float = 0.01
    cop_35c: float = 2.96
    cop_per_k: float = 0.03
    cop_max: float = 6.0

    def mechanical_share(self, temperature_c: FloatArray) -> FloatArray:
        """Returns the share of the heat removed by the chiller at each temperature (0..1)."""
        if self.free_below_c is None or self.mechanical_above_c is None:
            return np.ones_like(temperature_c)
        span = self.mechanical_above_c - self.free_below_c
        out: FloatArray = np.clip((temperature_c - self.free_below_c) / span, 0.0, 1.0)
        return out

    def cop(self, temperature_c: FloatArray) -> FloatArray:
        """Returns the chiller's coefficient of performance at each outdoor temperature."""
        raw = self.cop_35c * (1.0 + self.cop_per_k * (35.0 - temperature_c))
        out: FloatArray = np.clip(raw, self.cop_35c, self.cop_max)
        return out


DESIGNS: dict[str, FacilityDesign] = {
    "air-cooled": FacilityDesign(
        "air-cooled",
        "CRAC units and an air-cooled chiller, no economiser: the chiller runs all year",
        fans=0.08,
        free_below_c=None,
        mechanical_above_c=None,
    ),
    "free-cooled": FacilityDesign(
        "free-cooled",
        "air-side economiser: outdoor air below 18 deg C cools the room alone, the chiller "
        "takes over linearly up to 27 deg C (ASHRAE TC 9.9 recommended supply range)",
        fans=0.04,
        free_below_c=18.0,
        mechanical_above_c=27.0,
    ),
}


def design(name: str) -> FacilityDesign:
    """Returns the facility design ``name``; an unknown name lists the valid ones."""
    if name not in DESIGNS:
        raise UnknownNameError("facility design", name, DESIGNS)
    return DESIGNS[name]


def model_pue(
    temperature_c: npt.ArrayLike, it_load: npt.ArrayLike, facility: FacilityDesign | str
) -> FloatArray:
    """Returns the modelled PUE at each outdoor temperature (deg C) and IT load (fraction of
    the design capacity, 0 < L <= 1)."""
    d = design(facility) if isinstance(facility, str) else facility
    temp = np.asarray(temperature_c, dtype=np.float64)
    load = np.broadcast_to(np.asarray(it_load, dtype=np.float64), temp.shape)
    if np.any(~np.isfinite(load)) or np.any(load <= 0) or np.any(load > 1):
        raise ConfigError(
            f"IT load {it_load!r} must be a fraction of the design IT capacity in (0, 1]."
        )
    e0, e1, e2 = d.losses
    losses = e0 + e1 * load + e2 * load**2
    heat = load + losses + d.lights
    chiller = d.mechanical_share(temp) * heat / d.cop(temp)
    out: FloatArray = (heat + d.fans * heat + chiller) / load
    return out


# --------------------------------------------------------------------------- files


def _rows(path: Path, value_names: Sequence[str], what: str) -> tuple[FloatArray, FloatArray]:
    """Returns (times_s, values) of a ``timestamp,<value>`` CSV, sorted; errors name file:line."""
    from greenforge.timeutil import parse_time_s

    if not path.is_file():
        raise ConfigError(f"{what} file {str(path)!r} not found: give a CSV path.")
    times: list[float] = []
    values: list[float] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        t_col = next((i for i, h in enumerate(header) if h in ("timestamp", "time", "datetime")), None)  # fmt: skip
        v_col = next((i for i, h in enumerate(header) if h in value_names), None)
        if t_col is None or v_col is None:
            raise DataError(
                f"{path}:1: the header must name a timestamp column and one of "
                f"{', '.join(value_names)}; found {header!r}."
            )
        for line, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(times) >= MAX_ROWS:
                raise DataError(f"{path}: more than {MAX_ROWS:,} rows; split the file.")
            try:
                t = parse_time_s(row[t_col], 0.0)
                v = float(row[v_col])
            except (ConfigError, ValueError, IndexError):
                raise DataError(
                    f"{path}:{line}: cannot read {row!r} as a timestamp (ISO 8601 or unix "
                    f"seconds) and a number ({value_names[0]})."
                ) from None
            if not math.isfinite(v):
                raise DataError(f"{path}:{line}: {value_names[0]} {row[v_col]!r} is not finite.")
            times.append(t)
            values.append(v)
    if not times:
        raise DataError(f"{path}: no data rows.")
    t_arr = np.asarray(times)
    order = np.argsort(t_arr, kind="stable")
    t_arr, v_arr = t_arr[order], np.asarray(values)[order]
    dup = np.flatnonzero(np.diff(t_arr) == 0)
    if dup.size:
        raise DataError(f"{path}: timestamp {t_arr[dup[0]]:.0f} (unix s) appears twice.")
    return t_arr, v_arr


def _step_s(times_s: FloatArray) -> float:
    return float(np.median(np.diff(times_s))) if times_s.size > 1 else HOUR_S


def read_pue_csv(path: Path | str) -> PueSeries:
    """Returns the PUE series of a ``timestamp,pue`` CSV (a facility's own measurements)."""
    p = Path(path)
    t, v = _rows(p, ("pue",), "PUE")
    bad = np.flatnonzero((v < PUE_MIN) | (v > PUE_MAX))
    if bad.size:
        raise DataError(
            f"{p}: PUE {v[bad[0]]:g} at unix {t[bad[0]]:.0f} is outside {PUE_MIN:g}-"
            f"{PUE_MAX:g} (total facility power / IT power)."
        )
    return PueSeries(t, v, _step_s(t), f"file:{p.name}", "file")


def read_temperature_csv(path: Path | str) -> tuple[FloatArray, FloatArray]:
    """Returns (times_s, temperature_c) of a ``timestamp,temperature_c`` CSV."""
    p = Path(path)
    t, v = _rows(p, ("temperature_c", "temperature"), "temperature")
    lo, hi = TEMPERATURE_RANGE_C
    bad = np.flatnonzero((v < lo) | (v > hi))
    if bad.size:
        raise DataError(
            f"{p}: temperature {v[bad[0]]:g} deg C at unix {t[bad[0]]:.0f} is outside "
            f"{lo:g}..{hi:g}: is it in deg C (not F or K)?"
        )
    return t, v


def modelled_pue(
    facility: str, temperature_csv: Path | str, it_load: float = DEFAULT_IT_LOAD
) -> PueSeries:
    """Returns PUE(t) of the facility model ``facility`` driven by a temperature file."""
    d = design(facility)
    t, temp = read_temperature_csv(temperature_csv)
    values = model_pue(temp, it_load, d)
    source = f"model:{d.name}(IT load {it_load:g}) on {Path(temperature_csv).name}"
    return PueSeries(t, values, _step_s(t), source, "model")


def load_pue(spec: str | float) -> PueSeries:
    """Returns the PUE series of ``spec``: a number (constant), a ``timestamp,pue`` CSV path,
    or ``model:<design>:<temperature.csv>[:it_load]`` (designs: air-cooled, free-cooled)."""
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return constant_pue(float(spec), "given")
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(
            f"PUE spec {spec!r}: give a number (1.2), a CSV path (timestamp,pue) or "
            "model:<design>:<temperature.csv>[:it_load]."
        )
    text = spec.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return constant_pue(_check_pue(value, f"spec {spec!r}"), "given")
    if text.startswith("model:"):
        parts = text.split(":")
        if len(parts) not in (3, 4) or not parts[1] or not parts[2]:
            raise ConfigError(
                f"PUE spec {spec!r}: write model:<design>:<temperature.csv>[:it_load], e.g. "
                f"model:free-cooled:temps.csv:0.5 (designs: {', '.join(DESIGNS)})."
            )
        load = DEFAULT_IT_LOAD
        if len(parts) == 4:
            try:
                load = float(parts[3])
            except ValueError:
                load = math.nan
            if not 0 < load <= 1:
                raise ConfigError(
                    f"PUE spec {spec!r}: IT load {parts[3]!r} must be a fraction in (0, 1]."
                )
        return modelled_pue(parts[1], parts[2], load)
    return read_pue_csv(text)


# --------------------------------------------------------------------------- uses


def apply_pue(series: IntensitySeries, pue: PueSeries) -> IntensitySeries:
    """Returns the facility intensity: each grid point x the mean PUE over its step (g CO2e per
    kWh of IT energy); the source says so."""
    starts = series.times_s
    factor = pue.mean(starts, starts + series.step_s)
    return series.replace(
        values_g_per_kwh=series.values_g_per_kwh * factor,
        source=f"{series.source} x PUE(t) {pue.source}",
    )


def fold_into_steps(steps: StepIntensity, pue: PueSeries, reference: float) -> StepIntensity:
    """Returns ``steps`` with each value x PUE(t) / ``reference`` on the union of both series'
    knots inside the intensity's coverage (pure Python lists: the tracker's hot path), so that
    ``co2e_g(..., pue=reference)`` charges PUE(t)."""
    from greenforge.grid.steps import StepIntensity

    start, end = steps.start_s, steps.end_s
    inner = pue.times_s[(pue.times_s > start) & (pue.times_s < end)]
    knots = sorted({*steps.times_s, *(float(t) for t in inner)})
    edges = [*knots[1:], end]
    pue_means = pue.mean(np.asarray(knots), np.asarray(edges))
    values = tuple(
        steps.value_at(t) * float(m) / reference for t, m in zip(knots, pue_means, strict=True)
    )
    last_step = end - knots[-1]
    p = steps.provenance
    provenance = dataclasses.replace(
        p, source=f"{p.source} x PUE(t)/{reference:.4g} ({pue.source})"
    )
    return StepIntensity(tuple(knots), values, last_step, provenance)


def energy_weighted_pue(pue: PueSeries, intervals: Sequence[Any], default: float) -> float:
    """Returns the PUE of a run: each interval's mean PUE(t) weighted by its energy
    (``default`` when no interval used energy). ``intervals`` have ``start_s``, ``end_s``,
    ``energy_j``."""
    rows = [(i.start_s, i.end_s, i.energy_j) for i in intervals if i.end_s > i.start_s]
    rows = [r for r in rows if r[2] > 0]
    if not rows:
        return default
    a = np.asarray(rows, dtype=np.float64)
    return float((pue.mean(a[:, 0], a[:, 1]) * a[:, 2]).sum() / a[:, 2].sum())


def run_pue_text(pue: float, pue_source: str, metadata: Mapping[str, Any]) -> str:
    """Returns how a stored run's PUE reads in reports: for a PUE(t) run the record's
    ``emissions.pue`` is the energy-weighted PUE, shown with the series' source and range
    (``metadata["pue_series"]``, which the tracker writes); otherwise ``1.2 (source)``."""
    if not pue_source.startswith("PUE(t)"):
        return f"{pue:g} ({pue_source})"
    where = pue_source.removeprefix("PUE(t)").strip()
    text = f"{pue:.4g} energy-weighted over the run, PUE(t) from {where}"
    series = metadata.get("pue_series")
    if isinstance(series, Mapping):
        lo, hi, n = series.get("min"), series.get("max"), series.get("points")
        if isinstance(lo, int | float) and isinstance(hi, int | float) and isinstance(n, int):
            text += f" (the series spans PUE {lo:.3g}-{hi:.3g} over {n} points)"
    return text


@dataclasses.dataclass(frozen=True)
class PueAttribution:
    """A plan's saving split into the grid's part and the PUE's part, every figure evaluated
    with the facility's PUE(t) (g CO2e).

    ``run_now_g`` (start at the earliest start) -> ``grid_plan_g`` (the plan a PUE-blind
    planner makes: the grid's hourly intensity x a constant PUE) -> ``pue_plan_g`` (the plan on
    intensity x PUE(t)). ``grid_saving_g = run_now_g - grid_plan_g`` and ``pue_saving_g =
    grid_plan_g - pue_plan_g`` (>= 0: the PUE-aware plan is optimal for the true cost). The grid's
    part may be negative: a shift to the grid's cleanest hour can land on a hot afternoon whose
    overhead costs more than the grid saves.
    """

    run_now_g: float
    grid_plan_g: float
    pue_plan_g: float
    grid_start_s: float
    pue_start_s: float
    reference_pue: float
    pue_source: str

    @property
    def grid_saving_g(self) -> float:
        """Returns the saving of shifting by the grid alone (g)."""
        return self.run_now_g - self.grid_plan_g

    @property
    def pue_saving_g(self) -> float:
        """Returns the further saving from planning with PUE(t) (g)."""
        return self.grid_plan_g - self.pue_plan_g

    @property
    def total_saving_g(self) -> float:
        """Returns the whole saving vs running now (g)."""
        return self.run_now_g - self.pue_plan_g

    @property
    def choice_changed(self) -> bool:
        """Returns True when PUE(t) moved the chosen start."""
        return self.grid_start_s != self.pue_start_s

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON-ready figures."""
        return {
            **dataclasses.asdict(self),
            "grid_saving_g": self.grid_saving_g,
            "pue_saving_g": self.pue_saving_g,
            "total_saving_g": self.total_saving_g,
            "choice_changed": self.choice_changed,
        }

    def lines(self) -> list[str]:
        """Returns the report lines (grid and PUE savings apart)."""
        pct = 100.0 / self.run_now_g if self.run_now_g > 0 else math.nan
        return [
            f"run now: {self.run_now_g:.4g} gCO2e (with PUE(t) from {self.pue_source})",
            f"saving from the grid's hours: {self.grid_saving_g:.4g} g "
            f"({self.grid_saving_g * pct:.1f} %)",
            f"further saving from the facility's PUE(t): {self.pue_saving_g:.4g} g "
            f"({self.pue_saving_g * pct:.1f} %)",
        ]


def attribute_saving(
    job: Job, intensity: Mapping[str, IntensitySeries], pue: PueSeries
) -> tuple[PueAttribution, Plan, Plan]:
    """Plans ``job`` twice - PUE-blind (grid x the mean PUE over the job's window, a constant)
    and PUE-aware (grid x PUE(t)) - and returns the split of the saving, with both plans."""
    from greenforge.schedule.planner import plan_job

    reference = float(pue.mean([job.earliest_start_s], [job.deadline_s])[0])
    aware = {z: apply_pue(s, pue) for z, s in intensity.items()}
    blind = {
        z: s.replace(
            values_g_per_kwh=s.values_g_per_kwh * reference,
            source=f"{s.source} x PUE {reference:.4g} (constant)",
        )
        for z, s in intensity.items()
    }
    grid_plan = plan_job(job, blind, actual=aware)
    pue_plan = plan_job(job, aware)
    assert grid_plan.actual_co2e_g is not None
    assert grid_plan.run_now_actual_co2e_g is not None
    split = PueAttribution(
        run_now_g=grid_plan.run_now_actual_co2e_g,
        grid_plan_g=grid_plan.actual_co2e_g,
        pue_plan_g=min(pue_plan.expected_co2e_g, grid_plan.actual_co2e_g),
        grid_start_s=grid_plan.start_s,
        pue_start_s=pue_plan.start_s,
        reference_pue=reference,
        pue_source=pue.source,
    )
    return split, grid_plan, pue_plan


__all__ = [
    "DEFAULT_IT_LOAD",
    "DESIGNS",
    "FacilityDesign",
    "PueAttribution",
    "PueSeries",
    "apply_pue",
    "attribute_saving",
    "constant_pue",
    "design",
    "energy_weighted_pue",
    "fold_into_steps",
    "load_pue",
    "model_pue",
    "modelled_pue",
    "read_pue_csv",
    "read_temperature_csv",
    "run_pue_text",
]
