"""Forecasters of grid carbon intensity, registered by name.

A forecaster sees **only the past**: it receives a :class:`ForecastInput` whose
``history_g_per_kwh`` is an ``(N, L)`` array, row ``n`` holding the ``L`` values observed before
decision ``n`` (a copy, not a view into the full series), and returns an ``(N, horizon)`` array
of predictions for the steps starting at each decision time. Many decisions are forecast in one
vectorised call (the back-tester replays a year of hourly arrivals that way).

Built in (``forecaster_names()``):

==========================  ==================================================================
``auto`` (default)           per zone, whichever of ``learned``, ``ensemble`` and ``blend``
                             captured most of the oracle's saving on the held-out year 2023
                             (recorded in the shipped model file; ``blend`` for zones
                             without a model)
``learned``                  direct multi-horizon ridge models per embedded zone over lags,
                             profile and calendar features, trained on 2021-2022
                             (:mod:`greenforge.schedule.learned`), with its own quantiles
``ensemble``                 the mean of ``learned`` and ``blend``
``blend``                    14-day hour-of-day profile blended with yesterday and a
                             weekday/weekend profile, plus persistence of the latest
                             deviation fading with lead time (tuned on 2021-2022, reported on
                             2023; keyless, offline)
``profile-7d``               mean of the last 7 days at the same hour of day
``seasonal-naive-1d``        same hour yesterday
``seasonal-naive-7d``        same hour last week
``persistence``              the latest value, held
``embedded-profile``         embedded month x hour x weekday/weekend median (2021-2023 data:
                             in-sample when back-testing those years - reported as such)
``oracle``                   the actual future (only where it is known: back-tests, files)
==========================  ==================================================================

:class:`QuantileForecaster` wraps any of them to plan on a quantile: the point forecast plus the
empirical quantile of its own past errors at each lead time (measured on the history only).
A forecaster with quantiles of its own (``learned``, ``auto``) has ``with_quantile(q)``
instead (:class:`QuantileCapable`). A forecaster built from data (``learned``,
``embedded-profile``) says which period it was trained on (:class:`TrainedOn`), so the
back-tester can flag in-sample replays.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from greenforge.errors import ConfigError, DataError, UnknownNameError

FloatArray = npt.NDArray[np.float64]
DAY_S = 86400.0
DEFAULT_FORECASTER = "auto"


@dataclasses.dataclass(frozen=True, eq=False)
class ForecastInput:
    """What a forecaster may see: the past before each decision, and nothing after it.

    ``history_g_per_kwh[n, -1]`` is the last value observed before decision ``n``, i.e. the
    value of the step starting at ``decision_times_s[n] - step_s``. Prediction column ``h`` is
    the step starting at ``decision_times_s[n] + h * step_s``.
    """

    history_g_per_kwh: FloatArray
    decision_times_s: FloatArray
    step_s: float
    horizon: int
    zone: str

    def __post_init__(self) -> None:
        hist = np.array(self.history_g_per_kwh, dtype=np.float64, copy=True, ndmin=2)
        hist.setflags(write=False)
        times = np.array(self.decision_times_s, dtype=np.float64, copy=True, ndmin=1)
        times.setflags(write=False)
        if hist.shape[0] != times.shape[0]:
            raise DataError(
                f"forecast input: {hist.shape[0]} history rows for {times.shape[0]} decisions."
            )
        if self.horizon < 1:
            raise ConfigError(f"forecast horizon must be >= 1 step, got {self.horizon!r}.")
        if self.step_s <= 0:
            raise ConfigError(f"forecast step must be > 0 s, got {self.step_s!r}.")
        object.__setattr__(self, "history_g_per_kwh", hist)
        object.__setattr__(self, "decision_times_s", times)

    @property
    def n(self) -> int:
        return int(self.history_g_per_kwh.shape[0])

    @property
    def length(self) -> int:
        return int(self.history_g_per_kwh.shape[1])

    @property
    def period(self) -> int:
        """Steps per day."""
        return max(round(DAY_S / self.step_s), 1)


@runtime_checkable
class Forecaster(Protocol):
    """Predicts intensity from the past only."""

    @property
    def name(self) -> str:
        """Registry name."""

    @property
    def description(self) -> str:
        """One line for tables and ``--help``."""

    @property
    def needs_future(self) -> bool:
        """True only for ``oracle``: it is given the actual future instead of a forecast."""

    def history_steps(self, horizon: int, step_s: float) -> int:
        """How many past steps it needs to forecast ``horizon`` steps."""

    def predict(self, inp: ForecastInput) -> FloatArray:
        """``(N, horizon)`` predictions (g/kWh)."""


@runtime_checkable
class QuantileCapable(Protocol):
    """A forecaster with quantiles of its own (rather than :class:`QuantileForecaster`'s)."""

    def with_quantile(self, q: float) -> Forecaster:
        """Returns the same forecaster planning on quantile ``q`` (0-1)."""


@runtime_checkable
class TrainedOn(Protocol):
    """A forecaster built from data: which period of a zone's data it has seen."""

    def training_period_s(self, zone: str) -> tuple[float, float] | None:
        """Returns ``(start_s, end_s)`` of the data used to build it for ``zone`` (``end_s``
        exclusive), or None when it used no data of that zone."""


def trained_in_sample(forecaster: Forecaster, zone: str, start_s: float, end_s: float) -> bool:
    """Returns True when ``forecaster`` was built from data of ``zone`` within
    ``[start_s, end_s)`` - a replay of that period is in-sample."""
    if not isinstance(forecaster, TrainedOn):
        return False
    period = forecaster.training_period_s(zone)
    return period is not None and period[0] < end_s and start_s < period[1]


# --------------------------------------------------------------------------------------------
# Building blocks over the history matrix


def _same_phase(inp: ForecastInput, lead: npt.NDArray[np.int64], days_back: int) -> FloatArray:
    """Values at the same time of day as each lead, ``days_back`` (0 = most recent) days back.

    Returns ``(N, len(lead))``; the most recent same-phase observation of lead ``h`` is at row
    position ``L + h - p * (h // p + 1)``.
    """
    p = inp.period
    pos = inp.length + lead - p * (lead // p + 1) - p * days_back
    if np.any(pos < 0):
        raise DataError(
            f"forecast history too short: {inp.length} steps, need {inp.length - int(pos.min())}."
        )
    return np.asarray(inp.history_g_per_kwh[:, pos], dtype=np.float64)


def _profile(inp: ForecastInput, lead: npt.NDArray[np.int64], days: int) -> FloatArray:
    """Mean of the last ``days`` same-time-of-day observations for each lead."""
    acc = np.zeros((inp.n, lead.size))
    for d in range(days):
        acc += _same_phase(inp, lead, d)
    return acc / days


def _profile_steps(horizon: int, step_s: float, days: int) -> int:
    p = max(round(DAY_S / step_s), 1)
    return p * ((horizon - 1) // p + 1 + days)


@dataclasses.dataclass(frozen=True)
class Persistence:
    name: str = "persistence"
    description: str = "the latest observed value, held flat"
    needs_future: bool = False

    def history_steps(self, horizon: int, step_s: float) -> int:
        return 1

    def predict(self, inp: ForecastInput) -> FloatArray:
        last = inp.history_g_per_kwh[:, -1:]
        return np.repeat(last, inp.horizon, axis=1)


@dataclasses.dataclass(frozen=True)
class SeasonalNaive:
    """The value one season (1 or 7 days) before each target time."""

    days: int = 1
    name: str = "seasonal-naive-1d"
    description: str = "same time of day yesterday"
    needs_future: bool = False

    def history_steps(self, horizon: int, step_s: float) -> int:
        season = max(round(self.days * DAY_S / step_s), 1)
        return season * ((horizon - 1) // season + 1)

    def predict(self, inp: ForecastInput) -> FloatArray:
        season = max(round(self.days * DAY_S / inp.step_s), 1)
        lead = np.arange(inp.horizon)
        pos = inp.length + lead - season * (lead // season + 1)
        if np.any(pos < 0):
            raise DataError(f"{self.name}: history too short ({inp.length} steps).")
        return np.asarray(inp.history_g_per_kwh[:, pos], dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class DayProfile:
    """Mean of the last ``days`` days at the same time of day (the "7-day profile")."""

    days: int = 7
    name: str = "profile-7d"
    description: str = "mean of the last 7 days at the same hour of day"
    needs_future: bool = False

    def history_steps(self, horizon: int, step_s: float) -> int:
        return _profile_steps(horizon, step_s, self.days)

    def predict(self, inp: ForecastInput) -> FloatArray:
        return _profile(inp, np.arange(inp.horizon), self.days)


@dataclasses.dataclass(frozen=True)
class Blend:
    """The default keyless forecaster.

    ``f[h] = w * P[h] + (1 - w) * Y[h] + dev * decay ** (h + 1) + a * (Pd[h] - P[h])`` where

    * ``P`` is the hour-of-day profile of the last ``days`` days and ``Y`` yesterday at the same
      hour;
    * ``dev`` is how far the latest observation sits above ``w * P + (1 - w) * Y`` as it would
      have been predicted for it: a grid dirtier than usual right now tends to stay so for a
      few hours, so the deviation persists and fades with lead time;
    * ``Pd`` is the same-hour mean over the last ``daytype_days`` days of the target's day type
      (weekday or weekend, in the zone's local standard time where the embedded tables know
      it, else UTC days), so Saturdays look like recent weekends.

    Parameters were tuned on 2021-2022 (arrivals in 2022) over the 16 embedded zones for a 4 h
    job with 24 h slack (``python benchmarks/bench_backtest.py --tune``) and are reported on
    2023 (``python benchmarks/bench_backtest.py``).
    """

    profile_weight: float = 0.9
    decay: float = 0.97
    days: int = 14
    daytype_weight: float = 0.5
    daytype_days: int = 35
    name: str = "blend"
    description: str = (
        "14-day hour-of-day profile blended with yesterday and a weekday/weekend profile, "
        "plus the latest deviation fading with lead time"
    )
    needs_future: bool = False

    def history_steps(self, horizon: int, step_s: float) -> int:
        p = max(round(DAY_S / step_s), 1)
        need_forecast = _profile_steps(horizon, step_s, max(self.days, self.daytype_days))
        need_dev = p * (self.days + 1) + 1
        return max(need_forecast, need_dev)

    def _daytype_profile(
        self, inp: ForecastInput, lead: npt.NDArray[np.int64], profile: FloatArray
    ) -> FloatArray:
        """Same-hour mean over recent days of the target's day type (falls back to ``profile``)."""
        offset_s = _standard_offset_s(inp.zone)
        p = inp.period
        target_t = inp.decision_times_s[:, None] + inp.step_s * lead[None, :] + offset_s
        target_weekend = _is_weekend(target_t)
        acc = np.zeros((inp.n, lead.size))
        count = np.zeros((inp.n, lead.size))
        # With whole-second times and steps that tile a day, day d + 7 falls on the same
        # weekday as day d (exact integer arithmetic), so only a week of masks is computed.
        weekly = (
            p * inp.step_s == DAY_S
            and float(inp.step_s).is_integer()
            and float(offset_s).is_integer()
            and bool(np.all(np.floor(inp.decision_times_s) == inp.decision_times_s))
        )
        masks: list[npt.NDArray[np.bool_]] = []
        for d in range(self.daytype_days):
            values = _same_phase(inp, lead, d)
            if weekly and d >= 7:
                same = masks[d % 7]
            else:
                steps_back = p * (lead // p + 1) + p * d - lead  # from the decision to that value
                t = inp.decision_times_s[:, None] - inp.step_s * steps_back[None, :] + offset_s
                same = _is_weekend(t) == target_weekend
                masks.append(same)
            acc += values * same
            count += same
        return np.where(count > 0, acc / np.maximum(count, 1.0), profile)

    def predict(self, inp: ForecastInput) -> FloatArray:
        lead = np.arange(inp.horizon)
        prof = _profile(inp, lead, self.days)
        yday = _same_phase(inp, lead, 0)
        base = self.profile_weight * prof + (1.0 - self.profile_weight) * yday
        # the latest deviation from the same blend, as it would have been predicted for it
        x = inp.history_g_per_kwh
        p = inp.period
        last = inp.length - 1
        past_prof = np.zeros(inp.n)
        for d in range(1, self.days + 1):
            past_prof += x[:, last - p * d]
        past_prof /= self.days
        ref = self.profile_weight * past_prof + (1.0 - self.profile_weight) * x[:, last - p]
        dev = x[:, last] - ref
        out = base + dev[:, None] * (self.decay ** (lead + 1.0))[None, :]
        if self.daytype_weight:
            out += self.daytype_weight * (self._daytype_profile(inp, lead, prof) - prof)
        return np.asarray(out, dtype=np.float64)


def _is_weekend(local_t_s: FloatArray) -> npt.NDArray[np.bool_]:
    days = np.floor(local_t_s / DAY_S).astype(np.int64)
    return np.asarray((days + 3) % 7 >= 5, dtype=np.bool_)  # 1970-01-01 was a Thursday


def _standard_offset_s(zone: str) -> float:
    """The zone's local standard-time offset where the embedded tables know it, else 0 (UTC)."""
    from greenforge.errors import UnknownZoneError
    from greenforge.grid.profile import has_profile, profile_info

    try:
        if has_profile(zone):
            return float(profile_info(zone)["standard_offset_h"]) * 3600.0
    except UnknownZoneError:  # pragma: no cover - has_profile said yes
        return 0.0
    return 0.0


@dataclasses.dataclass(frozen=True)
class EmbeddedProfile:
    """The embedded typical profile (month x hour x weekday/weekend median) of the zone."""

    quantile: float = 0.5
    name: str = "embedded-profile"
    description: str = (
        "embedded month x hour-of-day x weekday/weekend median (Electricity Maps 2021-2023; "
        "in-sample for back-tests of those years)"
    )
    needs_future: bool = False

    def history_steps(self, horizon: int, step_s: float) -> int:
        return 0

    def training_period_s(self, zone: str) -> tuple[float, float] | None:
        """Returns the years the zone's profile was built from, or None without a profile."""
        from greenforge.grid.profile import has_profile, profile_info

        if not has_profile(zone):
            return None
        years = [int(y) for y in profile_info(zone)["years"]]
        return _year_start_s(min(years)), _year_start_s(max(years) + 1)

    def predict(self, inp: ForecastInput) -> FloatArray:
        from greenforge.grid.profile import profile_quantiles

        times = inp.decision_times_s[:, None] + inp.step_s * np.arange(inp.horizon)[None, :]
        values = profile_quantiles(inp.zone, times.ravel(), self.quantile)
        return np.asarray(values, dtype=np.float64).reshape(times.shape)


@dataclasses.dataclass(frozen=True)
class Oracle:
    """Perfect knowledge: the planner is handed the actual intensity (back-tests, files)."""

    name: str = "oracle"
    description: str = "the actual intensity (perfect knowledge; an upper bound, not a forecast)"
    needs_future: bool = True

    def history_steps(self, horizon: int, step_s: float) -> int:
        return 0

    def predict(self, inp: ForecastInput) -> FloatArray:
        raise ConfigError(
            "the oracle forecaster needs the actual future: use it in back-tests or with a "
            "file that covers the job's window."
        )


@dataclasses.dataclass(frozen=True)
class QuantileForecaster:
    """Plan on a quantile: ``base`` forecast plus the ``q`` quantile of its past errors.

    Errors are measured per lead time by re-running ``base`` at ``origins`` earlier decision
    times, one day apart, whose targets are all inside the history (never after the decision).
    """

    base: Forecaster
    q: float = 0.9
    origins: int = 14
    needs_future: bool = False

    def __post_init__(self) -> None:
        if not (0.0 < self.q < 1.0):
            raise ConfigError(f"bad quantile {self.q!r}: use a value between 0 and 1, e.g. 0.9.")
        if self.base.needs_future:
            raise ConfigError("the oracle has no error spread: pick another base forecaster.")

    @property
    def name(self) -> str:
        return f"{self.base.name}@p{round(self.q * 100):d}"

    @property
    def description(self) -> str:
        return f"{self.base.description}, shifted to its p{round(self.q * 100):d} error quantile"

    def history_steps(self, horizon: int, step_s: float) -> int:
        p = max(round(DAY_S / step_s), 1)
        return self.base.history_steps(horizon, step_s) + horizon + p * (self.origins - 1)

    def training_period_s(self, zone: str) -> tuple[float, float] | None:
        """Returns the base forecaster's training period (None when it has none)."""
        if isinstance(self.base, TrainedOn):
            return self.base.training_period_s(zone)
        return None

    def predict(self, inp: ForecastInput) -> FloatArray:
        point = self.base.predict(inp)
        p = inp.period
        h = inp.horizon
        need = self.base.history_steps(h, inp.step_s)
        errors = np.empty((self.origins, inp.n, h))
        for j in range(self.origins):
            end = inp.length - h - p * j  # past decision: its targets end at or before `end + h`
            if end - need < 0:
                raise DataError(f"{self.name}: history too short ({inp.length} steps).")
            past = ForecastInput(
                inp.history_g_per_kwh[:, end - need : end],
                inp.decision_times_s - (inp.length - end) * inp.step_s,
                inp.step_s,
                h,
                inp.zone,
            )
            actual = inp.history_g_per_kwh[:, end : end + h]
            errors[j] = actual - self.base.predict(past)
        shift = np.quantile(errors, self.q, axis=0)
        return np.asarray(point + shift, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Registry

ForecasterFactory = Callable[[], Forecaster]
_REGISTRY: dict[str, ForecasterFactory] = {}


def register_forecaster(name: str, factory: ForecasterFactory) -> None:
    """Register a forecaster factory under ``name``."""
    _REGISTRY[name] = factory


def forecaster_names() -> list[str]:
    return sorted(_REGISTRY)


def create_forecaster(name: str, quantile: float | None = None) -> Forecaster:
    """The forecaster registered as ``name`` (optionally planning on quantile ``quantile``).

    ``name`` may carry a quantile suffix, e.g. ``blend@p90``; ``recorded:PATH`` replays the
    forecasts recorded in a CSV file (:mod:`greenforge.schedule.replay`).
    """
    if name.startswith("recorded:"):
        from greenforge.schedule.replay import recorded_from_name

        recorded: Forecaster = recorded_from_name(name.partition(":")[2])
        return recorded if quantile is None else QuantileForecaster(recorded, quantile)
    base_name, _, suffix = name.partition("@")
    if suffix:
        if not suffix.startswith("p") or not suffix[1:].isdigit():
            raise ConfigError(f"bad forecaster quantile {suffix!r}: write it like 'blend@p90'.")
        quantile = int(suffix[1:]) / 100.0
    try:
        factory = _REGISTRY[base_name]
    except KeyError:
        raise UnknownNameError("forecaster", base_name, _REGISTRY) from None
    forecaster = factory()
    if quantile is not None:
        if isinstance(forecaster, QuantileCapable):
            return forecaster.with_quantile(quantile)
        return QuantileForecaster(forecaster, quantile)
    return forecaster


register_forecaster("blend", Blend)
register_forecaster("profile-7d", DayProfile)
register_forecaster("seasonal-naive-1d", SeasonalNaive)
register_forecaster(
    "seasonal-naive-7d",
    lambda: SeasonalNaive(days=7, name="seasonal-naive-7d", description="same time last week"),
)
register_forecaster("persistence", Persistence)
register_forecaster("embedded-profile", EmbeddedProfile)
register_forecaster("oracle", Oracle)


def _learned() -> Forecaster:
    from greenforge.schedule.learned import Learned

    return Learned()


def _auto() -> Forecaster:
    from greenforge.schedule.learned import Auto

    return Auto()


def _ensemble() -> Forecaster:
    from greenforge.schedule.learned import Ensemble

    return Ensemble()


register_forecaster("learned", _learned)
register_forecaster("ensemble", _ensemble)
register_forecaster("auto", _auto)


def _year_start_s(year: int) -> float:
    import datetime as dt

    return dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp()


# --------------------------------------------------------------------------------------------
# Single forecasts from a series


def forecast_after(
    forecaster: Forecaster,
    history_g_per_kwh: FloatArray,
    decision_time_s: float,
    step_s: float,
    horizon: int,
    zone: str,
) -> FloatArray:
    """One forecast of ``horizon`` steps from ``decision_time_s``, given the values before it."""
    need = forecaster.history_steps(horizon, step_s)
    hist = np.asarray(history_g_per_kwh, dtype=np.float64)
    if hist.size < need:
        raise DataError(
            f"forecaster {forecaster.name!r} needs {need} past steps "
            f"({need * step_s / DAY_S:.3g} days) before the decision time, the history has "
            f"{hist.size}; give a longer history file or another forecaster (e.g. "
            "embedded-profile)."
        )
    window = hist[hist.size - need :] if need else hist[:0]
    if not np.all(np.isfinite(window)):
        raise DataError(
            "the history has missing (NaN) values in the last "
            f"{need * step_s / DAY_S:.3g} days; fill them (--fill) or use another forecaster."
        )
    inp = ForecastInput(window[None, :], np.array([decision_time_s]), step_s, horizon, zone)
    return np.asarray(forecaster.predict(inp)[0], dtype=np.float64)


def forecast_errors(forecast: FloatArray, actual: FloatArray) -> tuple[float, float]:
    """(MAE g/kWh, MAPE %) over all points; MAPE skips actual values of zero."""
    diff = np.abs(np.asarray(forecast) - np.asarray(actual))
    mae = float(np.mean(diff))
    nz = np.asarray(actual) != 0
    mape = float(np.mean(diff[nz] / np.abs(np.asarray(actual)[nz])) * 100) if nz.any() else 0.0
    return mae, mape
