"""One planning pipeline: a job, the settings and the data -> a plan.

``greenforge plan``, ``greenforge schedule`` (dry run and real), ``greenforge queue add`` and the
scheduler's re-plans all call :func:`make_plan`; the CLI only parses options and prints. What
:func:`make_plan` decides, in order:

1. **Time.** Without history files (``PlanOptions.files``) or outside a replay
   (``allow_past=False``), a deadline in the past is an error and a past earliest start moves up
   to now.
2. **Forecast** (``PlanOptions.forecast``):

   * no files: ``None``/``provider`` asks the configured provider chain for its forecast;
     ``embedded-profile[@pNN]`` takes the zone's embedded typical profile (a quantile of it);
     any other forecaster name predicts the window from the chain's *measured* history.
     Where the chain has no measured history (no key, no files: only the embedded typical
     profile), ``auto`` plans on the embedded typical profile and says so per zone - a
     climatology fed to a forecaster as if it were history adds nothing to it, and would
     borrow the held-out score of forecasts made from real history; any other forecaster
     name is refused;
   * files: a file that covers the window is the forecast itself (``file``; ``oracle`` is the
     same, named as such); otherwise - or with a forecaster name - the files are the history a
     forecaster (:func:`~greenforge.schedule.forecast.create_forecaster`, default
     :data:`~greenforge.schedule.forecast.DEFAULT_FORECASTER`) predicts the window from, and
     where they also cover the window the plan shows the oracle and the regret.
3. **PUE** (optional): every intensity is multiplied by the facility's PUE over time
   (:class:`PueSeries`, averaged over each forecast step), so the plan
   minimises facility CO2e. A time-varying series is compared with planning on its mean
   (:class:`PueEffect`).
4. **Plan**: :func:`~greenforge.schedule.planner.plan_job` on the forecasts, with the advisory
   zones (``compare``, else the embedded zones of the home zone's country).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from greenforge.errors import ConfigError, DataError, UnknownZoneError
from greenforge.grid.series import IntensitySeries
from greenforge.schedule.job import Job
from greenforge.schedule.planner import Plan, plan_job, slots_co2e_g
from greenforge.timeutil import utc_iso_seconds

if TYPE_CHECKING:
    from greenforge.config import Settings
    from greenforge.grid.provider import IntensityProvider

FloatArray = npt.NDArray[np.float64]

PUE_RANGE = (1.0, 3.0)
"""Plausible PUE values (the same bounds as ``Settings.pue``)."""


# -- PUE over time -----------------------------------------------------------------------------
@runtime_checkable
class PueSeries(Protocol):
    """A facility's PUE over time (``greenforge.pue`` builds them from a file or a model).

    ``over(times_s)`` returns one PUE value (>= 1) per unix time in ``times_s`` as a float
    array of the same shape. An optional ``source`` attribute (str) names where the values come
    from; it is shown in the plan.
    """

    def over(self, times_s: FloatArray) -> FloatArray:
        """PUE at each of ``times_s`` (unix seconds)."""


@dataclasses.dataclass(frozen=True)
class ConstantPue:
    """The same PUE at every time (``--pue 1.4``)."""

    value: float
    source: str = "constant"

    def __post_init__(self) -> None:
        _check_pue(np.array([self.value]), f"PUE {self.value!r}")

    def over(self, times_s: FloatArray) -> FloatArray:
        """``value`` at every time."""
        return np.full(np.shape(times_s), self.value, dtype=np.float64)


def _check_pue(values: FloatArray, what: str) -> None:
    lo, hi = PUE_RANGE
    bad = ~np.isfinite(values) | (values < lo) | (values > hi)
    if np.any(bad):
        first = float(values[np.flatnonzero(bad)[0]])
        raise ConfigError(
            f"bad {what}: {first!r} is not a PUE between {lo:g} and {hi:g} (facility energy / IT "
            "energy, e.g. 1.2 for an efficient data centre, 1.6 for a typical one)."
        )


def pue_from_spec(spec: str | float | PueSeries | None) -> PueSeries | None:
    """The PUE series ``spec`` names: a number is a constant PUE; any other text is resolved by
    ``greenforge.pue.load_pue(spec)`` (a file or a facility model); a :class:`PueSeries` is
    used as it is; ``None`` means no PUE (IT energy only, as without ``--pue``)."""
    if spec is None:
        return None
    if isinstance(spec, bool):
        raise ConfigError(f"bad PUE {spec!r}: give a number such as 1.4, or a PUE series spec.")
    if isinstance(spec, int | float):
        return ConstantPue(float(spec))
    if not isinstance(spec, str):
        if isinstance(spec, PueSeries):
            return spec
        raise ConfigError(
            f"bad PUE {spec!r}: give a number, a spec for greenforge.pue.load_pue, or an object "
            "with over(times_s) -> PUE values."
        )
    text = spec.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return ConstantPue(value)
    try:
        from greenforge.pue import load_pue  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError as exc:
        if exc.name not in ("greenforge.pue", "greenforge"):
            raise
        raise ConfigError(
            f"--pue {text!r}: PUE series (files, facility models) need greenforge.pue, which "
            "this installation does not have; give a constant PUE such as --pue 1.4."
        ) from None
    series = load_pue(text)
    if not isinstance(series, PueSeries):
        raise ConfigError(f"--pue {text!r}: greenforge.pue.load_pue gave no PUE series.")
    return series


def _pue_source(pue: PueSeries) -> str:
    source = getattr(pue, "source", None)
    return str(source) if source else type(pue).__name__


_PUE_SAMPLES = 4
"""PUE is read at this many evenly spaced times inside each forecast step and averaged (exact
for a PUE series whose own step divides the forecast's, e.g. 15-minute PUE, hourly grid)."""


def _pue_at(pue: PueSeries, series: IntensitySeries) -> FloatArray:
    """Mean PUE over each step of ``series``, checked."""
    offsets = (np.arange(_PUE_SAMPLES) + 0.5) / _PUE_SAMPLES * series.step_s
    times = (series.times_s[:, None] + offsets[None, :]).ravel()
    values = np.asarray(pue.over(times), dtype=np.float64)
    if values.shape != times.shape:
        raise DataError(
            f"the PUE series ({_pue_source(pue)}) gave {values.shape} values for "
            f"{times.shape} times; over(times_s) must return one PUE per time."
        )
    _check_pue(values, f"PUE from {_pue_source(pue)} for {series.zone}")
    return np.asarray(values.reshape(-1, _PUE_SAMPLES).mean(axis=1), dtype=np.float64)


def with_pue(series: IntensitySeries, pue: PueSeries) -> IntensitySeries:
    """``series`` times the PUE at each step: g CO2e per kWh of IT energy."""
    values = series.values_g_per_kwh * _pue_at(pue, series)
    return dataclasses.replace(
        series,
        values_g_per_kwh=values,
        source=f"{series.source} x PUE ({_pue_source(pue)})",
    )


@dataclasses.dataclass(frozen=True)
class PueEffect:
    """How the PUE entered the plan, and - for a time-varying series - what planning on the
    series gains over planning on its mean (a constant PUE, which moves no slot).

    ``constant_saving_pct`` is the saving planned with a constant PUE (the series' mean over the
    window), ``series_saving_pct`` the plan's saving with the series; ``constant_plan_co2e_g``
    is what the constant-PUE plan's slots emit under the series (compare with
    ``series_plan_co2e_g``).
    """

    source: str
    constant: bool
    mean_pue: float
    min_pue: float
    max_pue: float
    series_saving_pct: float
    series_plan_co2e_g: float
    constant_saving_pct: float | None = None
    constant_plan_co2e_g: float | None = None
    run_now_co2e_g: float | None = None
    """Running now, under the series (the base of both savings)."""

    @property
    def gain_g(self) -> float | None:
        """CO2e (g) the series-aware plan saves over the constant-PUE plan, under the series."""
        if self.constant_plan_co2e_g is None:
            return None
        return self.constant_plan_co2e_g - self.series_plan_co2e_g

    @property
    def grid_saving_g(self) -> float | None:
        """The saving vs running now attributable to the grid's hours: what the PUE-blind
        (constant-PUE) plan saves, both evaluated under the series (may be < 0: the grid's
        cleanest hour can be the facility's hottest)."""
        if self.constant_plan_co2e_g is None or self.run_now_co2e_g is None:
            return None
        return self.run_now_co2e_g - self.constant_plan_co2e_g

    def line(self) -> str:
        """One line for the terminal."""
        if self.constant:
            return f"PUE {self.mean_pue:.3g} ({self.source}): CO2e figures are facility CO2e."
        return (
            f"PUE {self.min_pue:.3g}-{self.max_pue:.3g} over the window (mean {self.mean_pue:.3g}, "
            f"{self.source}): saving {self.series_saving_pct:.1f} % with the series vs "
            f"{self.constant_saving_pct:.1f} % with a constant PUE of {self.mean_pue:.3g}; "
            f"the constant-PUE plan would emit {self.constant_plan_co2e_g:.4g} g under the "
            f"series, this plan {self.series_plan_co2e_g:.4g} g." + self._split()
        )

    def _split(self) -> str:
        grid, pue = self.grid_saving_g, self.gain_g
        if grid is None or pue is None:
            return ""
        return (
            f" Saving vs running now, attributed: grid's hours {grid:.4g} g, facility's "
            f"PUE(t) {pue:.4g} g."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "constant": self.constant,
            "mean_pue": self.mean_pue,
            "min_pue": self.min_pue,
            "max_pue": self.max_pue,
            "series_saving_pct": self.series_saving_pct,
            "series_plan_co2e_g": self.series_plan_co2e_g,
            "constant_saving_pct": self.constant_saving_pct,
            "constant_plan_co2e_g": self.constant_plan_co2e_g,
            "gain_g": self.gain_g,
            "run_now_co2e_g": self.run_now_co2e_g,
            "grid_saving_g": self.grid_saving_g,
            "pue_saving_g": self.gain_g,
        }


# -- options and result ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class PlanOptions:
    """Where the forecast comes from and what else enters the plan (the job aside).

    ``forecast``: ``None``/``provider``, ``file``, ``oracle``, ``embedded-profile[@pNN]`` or a
    forecaster name (``blend@p90``); ``quantile`` plans on a quantile of the forecast;
    ``files``: intensity CSVs (a forecast of the window, or history); ``compare``: zones only
    compared in the advice; ``pue``: a number, a ``greenforge.pue`` spec or a
    :class:`PueSeries`; ``allow_past``: accept a past window with ``files`` (a replay - never
    for a job that will run).
    """

    forecast: str | None = None
    quantile: float | None = None
    files: tuple[Path, ...] = ()
    compare: tuple[str, ...] = ()
    pue: str | float | PueSeries | None = None
    allow_past: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(Path(f) for f in self.files))
        object.__setattr__(self, "compare", tuple(self.compare))
        if self.quantile is not None and not (
            isinstance(self.quantile, int | float) and 0.0 < self.quantile < 1.0
        ):
            raise ConfigError(
                f"bad quantile {self.quantile!r}: give a probability between 0 and 1, e.g. 0.9."
            )

    def to_dict(self) -> dict[str, Any]:
        """What a queued job keeps, so the scheduler re-plans it the same way."""
        pue = self.pue
        if pue is not None and not isinstance(pue, str | int | float):
            raise ConfigError(
                "a PUE series object cannot be stored with a queued job: give it as a spec "
                "(--pue FILE or a number) so re-plans can load it again."
            )
        return {
            "forecast": self.forecast,
            "quantile": self.quantile,
            "files": [str(f) for f in self.files],
            "compare": list(self.compare),
            "pue": pue,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanOptions:
        """The options stored by :meth:`to_dict` (missing keys take their defaults)."""
        return cls(
            forecast=data.get("forecast"),
            quantile=data.get("quantile"),
            files=tuple(Path(f) for f in data.get("files") or ()),
            compare=tuple(data.get("compare") or ()),
            pue=data.get("pue"),
        )


@dataclasses.dataclass(frozen=True)
class PlanResult:
    """A plan, the forecast it was made on (as a label) and how the PUE entered it.

    ``intensity`` holds the grid intensity the planner saw per zone (before PUE);
    ``zone_forecasts`` says, for each zone the job may run in, which forecast that zone's
    intensity is (``auto -> ensemble (won on held-out 2023 in DE)``, the file, the provider's
    source).
    """

    plan: Plan
    forecast_label: str
    intensity: Mapping[str, IntensitySeries]
    pue: PueEffect | None = None
    zone_forecasts: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document of ``plan``, ``schedule`` and ``queue add``: the plan's own
        :meth:`~greenforge.schedule.planner.Plan.to_dict` plus ``forecast``,
        ``zone_forecasts`` and ``pue``."""
        out = self.plan.to_dict()
        out["forecast"] = self.forecast_label
        out["zone_forecasts"] = dict(self.zone_forecasts)
        out["pue"] = None if self.pue is None else self.pue.to_dict()
        return out


# -- the pipeline ------------------------------------------------------------------------------
def make_plan(
    job: Job,
    settings: Settings,
    options: PlanOptions | None = None,
    *,
    now_s: float | None = None,
    providers: Mapping[str, IntensityProvider] | None = None,
) -> PlanResult:
    """Returns the plan of ``job`` on the data ``options`` and ``settings`` name (see the
    module docstring for the order of decisions). ``providers`` injects grid providers by name.

    Raises :class:`InfeasibleError` for a past deadline (outside a replay) or a window the job
    does not fit, :class:`ConfigError`/:class:`DataError` for bad options or data, and the zone
    error when no data knows a zone.
    """
    options = options or PlanOptions()
    now = time.time() if now_s is None else now_s
    if not (options.files and options.allow_past):
        job = job.check_not_past(now)
    pue = pue_from_spec(options.pue)
    extra = [z for z in options.compare if z not in job.zones]
    used: dict[str, str] = {}
    if options.files:
        forecasts, actual, label = _from_files(job, settings, options, extra, used)
    else:
        forecasts, label = _from_providers(job, settings, options, extra, providers, used)
        actual = None
    used = {z: used[z] for z in job.zones}
    if not options.compare:
        from greenforge.grid.profile import profile_series

        for z in _nearby_zones(job.zones[0], job.zones):
            if z not in forecasts:
                forecasts[z] = profile_series(
                    z, job.earliest_start_s, job.deadline_s, basis=settings.intensity_basis
                )
    if pue is None:
        plan = plan_job(job, forecasts, actual=actual)
        return PlanResult(plan, label, forecasts, zone_forecasts=used)
    return dataclasses.replace(
        _plan_with_pue(job, forecasts, actual, label, pue), zone_forecasts=used
    )


def _plan_with_pue(
    job: Job,
    forecasts: Mapping[str, IntensitySeries],
    actual: Mapping[str, IntensitySeries] | None,
    label: str,
    pue: PueSeries,
) -> PlanResult:
    scaled = {z: with_pue(s, pue) for z, s in forecasts.items()}
    scaled_actual = None if actual is None else {z: with_pue(s, pue) for z, s in actual.items()}
    plan = plan_job(job, scaled, actual=scaled_actual)
    home = forecasts[job.zones[0]]
    lo = max(int(np.searchsorted(home.times_s, job.earliest_start_s, side="right")) - 1, 0)
    hi = max(int(np.searchsorted(home.times_s, job.deadline_s, side="left")), lo + 1)
    window = _pue_at(pue, home)[lo:hi]
    mean = float(np.mean(window))
    effect = PueEffect(
        source=_pue_source(pue),
        constant=isinstance(pue, ConstantPue),
        mean_pue=mean,
        min_pue=float(np.min(window)),
        max_pue=float(np.max(window)),
        series_saving_pct=plan.saving_pct,
        series_plan_co2e_g=plan.expected_co2e_g,
        run_now_co2e_g=plan.run_now_co2e_g,
    )
    if not effect.constant:  # what planning on the mean would have given, under the series
        flat = {z: with_pue(s, ConstantPue(mean)) for z, s in forecasts.items()}
        constant_plan = plan_job(job, flat)
        effect = dataclasses.replace(
            effect,
            constant_saving_pct=constant_plan.saving_pct,
            constant_plan_co2e_g=slots_co2e_g(job, constant_plan.slots, scaled),
        )
    return PlanResult(plan, label, forecasts, effect)


def _from_providers(
    job: Job,
    settings: Settings,
    options: PlanOptions,
    extra: Sequence[str],
    providers: Mapping[str, IntensityProvider] | None,
    used: dict[str, str],
) -> tuple[dict[str, IntensitySeries], str]:
    """Forecasts from the configured provider chain (its forecast, the embedded profile, or a
    forecaster over its measured history); ``used`` gets what each zone's forecast is."""
    from greenforge.grid.chain import intensity_for

    zones = (*job.zones, *extra)
    name = options.forecast
    if name in (None, "provider"):
        if options.quantile is not None:
            raise ConfigError(
                "--quantile needs a forecast with a spread: use --forecast embedded-profile "
                "(its stored quantiles) or a history --file with a forecaster."
            )
        out = {
            z: intensity_for(
                settings,
                z,
                job.earliest_start_s,
                job.deadline_s,
                forecast=True,
                providers=providers,
            )
            for z in zones
        }
        used.update({z: _provider_forecast_text(s) for z, s in out.items()})
        return out, "provider forecast (" + ", ".join(settings.intensity_providers) + ")"
    if name in ("file", "oracle"):
        raise ConfigError(
            f"--forecast {name} reads the window's intensity from --file: pass the file."
        )
    from greenforge.grid.profile import profile_series

    base, _, suffix = name.partition("@")
    # the same spelling as every forecaster: embedded-profile@p90, auto@p90
    q = _suffix_quantile(suffix) if suffix else options.quantile

    def typical(zone: str) -> IntensitySeries:
        return profile_series(
            zone,
            job.earliest_start_s,
            job.deadline_s,
            basis=settings.intensity_basis,
            q=0.5 if q is None else q,
            forecast=True,
        )

    if base == "embedded-profile":
        out = {z: typical(z) for z in zones}
        used.update({z: f"{name} ({_profile_text(z)})" for z in zones})
        return out, "embedded typical profile"
    out = {}
    no_history = []
    for z in zones:
        history = _provider_history(settings, z, name, options.quantile, job, providers)
        if history.kind in ("measured", "mixed"):
            out[z], used[z] = _history_forecast(history, name, options.quantile, job)
            continue
        if base != "auto":
            raise ConfigError(
                f"forecaster {name!r} needs measured history of {z!r}, but the configured "
                f"providers ({', '.join(settings.intensity_providers)}) gave a {history.kind} "
                f"series ({history.source}). Pass --file with the zone's recent intensity, "
                "configure a live provider, or use --forecast auto / provider / "
                "embedded-profile."
            )
        out[z] = typical(z)
        used[z] = (
            f"{name} -> embedded-profile ({_profile_text(z)}; no measured history to "
            "forecast from: no --file, no live provider)"
        )
        no_history.append(z)
    if not no_history:
        return out, f"forecaster {name} on the provider's measured history"
    if len(no_history) == len(zones):
        return out, f"{name}: embedded typical profile (no measured history)"
    return out, (
        f"forecaster {name} on the provider's measured history; embedded typical profile in "
        + ", ".join(no_history)
        + " (no measured history)"
    )


def _profile_text(zone: str) -> str:
    from greenforge.grid.profile import profile_info

    years = profile_info(zone)["years"]
    return f"typical {years[0]}-{years[-1]} profile, not a live forecast"


def _provider_forecast_text(series: IntensitySeries) -> str:
    if series.kind == "profile":
        return f"{series.source} ({_profile_text(series.zone)})"
    return series.source


def describe_forecaster(forecaster: Any, zone: str, step_s: float, horizon: int) -> str:
    """What ``forecaster`` uses in ``zone`` for ``horizon`` steps of ``step_s``: its name, and
    for ``auto`` the forecaster it picks there and why."""
    from greenforge.schedule.learned import MAX_HORIZON, STEP_S, Auto, shipped_models

    if not isinstance(forecaster, Auto):
        return str(forecaster.name)
    q = forecaster.quantile
    at = "" if q is None else f"@p{round(q * 100):d}"
    chosen = forecaster.choice_name(zone)
    head = f"{forecaster.name} -> "
    if chosen != "blend" and abs(step_s - STEP_S) > 1e-6:
        return f"{head}blend{at} (the data is not hourly; {chosen} needs hourly data)"
    if chosen != "blend" and horizon > MAX_HORIZON:
        return f"{head}blend{at} (window of {horizon} steps; {chosen} forecasts up to 72 h)"
    if zone not in (forecaster.models or shipped_models()).selection:
        return f"{head}blend{at} (no learned model for {zone})"
    return f"{head}{chosen}{at} (won on held-out 2023 in {zone})"


def _suffix_quantile(suffix: str) -> float:
    if not suffix.startswith("p") or not suffix[1:].isdigit():
        raise ConfigError(f"bad forecaster quantile {suffix!r}: write it like 'blend@p90'.")
    return int(suffix[1:]) / 100.0


def _from_files(
    job: Job, settings: Settings, options: PlanOptions, extra: Sequence[str], used: dict[str, str]
) -> tuple[dict[str, IntensitySeries], dict[str, IntensitySeries] | None, str]:
    """Forecasts from intensity files: the files themselves when they cover the window, else a
    forecaster over them as history (and then the files, where they cover it, as the actual)."""
    from greenforge.grid.profile import profile_series
    from greenforge.schedule.forecast import DEFAULT_FORECASTER

    data = load_zone_files(
        options.files,
        fill=settings.intensity_fill,
        basis=settings.intensity_basis,
        zone=job.zones[0] if len(job.zones) == 1 else None,
    )
    for z in job.zones:
        if z not in data:
            raise UnknownZoneError(
                z, data.keys(), source=f"the files given (they hold {', '.join(data)})"
            )
    cover = all(_covers(data[z], job.earliest_start_s, job.deadline_s) for z in job.zones)
    name = options.forecast or ("file" if cover else DEFAULT_FORECASTER)
    forecasts: dict[str, IntensitySeries] = {}
    actual: dict[str, IntensitySeries] | None = None
    if name in ("file", "oracle"):
        if not cover:
            raise DataError(
                "the files do not cover the job's window "
                f"({utc_iso_seconds(job.earliest_start_s)} to {utc_iso_seconds(job.deadline_s)}); "
                "pass a forecaster (--forecast blend) to forecast from them as history."
            )
        forecasts = dict(data)
        label = "the file itself (as a forecast)" if name == "file" else "oracle (the file)"
        used.update({z: f"{name}: {data[z].source}" for z in job.zones})
    else:
        for z, series in data.items():
            if z in job.zones or z in extra:
                forecasts[z], used[z] = _history_forecast(series, name, options.quantile, job)
        label = f"forecaster {name} on the history before the earliest start"
        if cover:
            actual = {z: data[z] for z in job.zones}
    for z in extra:
        if z not in forecasts:
            forecasts[z] = profile_series(z, job.earliest_start_s, job.deadline_s)
    return forecasts, actual, label


def load_zone_files(
    paths: Sequence[Path],
    fill: str = "none",
    basis: str = "lca",
    zone: str | None = None,
) -> dict[str, IntensitySeries]:
    """Returns one series per zone from intensity CSV files (files of one zone concatenated).

    Portal exports name their zone; generic ``timestamp,value`` files take ``zone`` (else they
    are zone ``unknown``).
    """
    from greenforge.grid.files import load_csv_by_zone

    if not paths:
        raise ConfigError("no intensity files given: pass --file PATH (one or more).")
    return load_csv_by_zone(paths, fill=fill, basis=basis, zone=zone)  # reads each file once


def _history_forecast(
    series: IntensitySeries, forecaster_name: str, quantile: float | None, job: Job
) -> tuple[IntensitySeries, str]:
    """Forecast of the job's window from the values of ``series`` before its earliest start,
    and what the forecaster uses in the zone (:func:`describe_forecaster`)."""
    from greenforge.schedule.forecast import create_forecaster, forecast_after

    forecaster = create_forecaster(forecaster_name, quantile)
    step = series.step_s
    # decisions fall on the data's grid: the last step that starts at or before the start
    phase = float(series.times_s[0])
    decision = phase + np.floor((job.earliest_start_s - phase) / step + 1e-9) * step
    past = series.values_g_per_kwh[series.times_s < decision - 1e-6]
    horizon = math.ceil((job.deadline_s - decision) / step - 1e-9)
    if past.size and series.times_s[past.size - 1] + step < decision - 1e-6:
        raise DataError(
            f"the history for {series.zone!r} ends at {utc_iso_seconds(series.end_s)}, before "
            f"the decision time {utc_iso_seconds(decision)}; give data up to the job's "
            "earliest start."
        )
    values = forecast_after(forecaster, past, decision, step, horizon, series.zone)
    forecast = IntensitySeries(
        times_s=decision + step * np.arange(horizon, dtype=np.float64),
        values_g_per_kwh=values,
        step_s=step,
        zone=series.zone,
        source=f"forecast:{forecaster.name} from {series.source}",
        signal=series.signal,
        basis=series.basis,
        kind="forecast",
        forecast=np.ones(horizon, dtype=np.bool_),
    )
    return forecast, describe_forecaster(forecaster, series.zone, step, horizon)


def _provider_history(
    settings: Settings,
    zone: str,
    forecaster_name: str,
    quantile: float | None,
    job: Job,
    providers: Mapping[str, IntensityProvider] | None,
) -> IntensitySeries:
    """History before the job's earliest start from the configured provider chain (measured,
    or - with only the embedded provider - the typical profile; the caller checks)."""
    from greenforge.grid.chain import intensity_for
    from greenforge.schedule.forecast import create_forecaster

    forecaster = create_forecaster(forecaster_name, quantile)
    if forecaster.needs_future:
        raise ConfigError(
            "the oracle needs the actual intensity of the window: pass it with --file."
        )
    step = 3600.0  # providers answer hourly (or finer: then this asks for a little more)
    end = math.floor(job.earliest_start_s / step) * step
    horizon = math.ceil((job.deadline_s - end) / step)
    need_s = (forecaster.history_steps(horizon, step) + 2) * step
    return intensity_for(settings, zone, end - need_s, end, providers=providers)


def _covers(series: IntensitySeries, start_s: float, end_s: float) -> bool:
    return series.start_s <= start_s + 1e-6 and series.end_s >= end_s - 1e-6


def _nearby_zones(home: str, allowed: Sequence[str]) -> list[str]:
    """Embedded-profile zones of the same country as ``home`` (``US-*`` for ``US-TEX-ERCO``),
    compared in the advice when the user names no ``compare`` zones."""
    from greenforge.grid.profile import profile_zones

    country = home.split("-")[0].upper()
    return [z for z in profile_zones() if z.split("-")[0] == country and z not in allowed]


__all__ = [
    "ConstantPue",
    "PlanOptions",
    "PlanResult",
    "PueEffect",
    "PueSeries",
    "describe_forecaster",
    "load_zone_files",
    "make_plan",
    "pue_from_spec",
    "with_pue",
]
