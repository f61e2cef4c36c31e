"""The learned keyless forecaster: direct multi-horizon ridge models, one per zone and lead.

Trained offline (``python scripts/build_forecaster.py``) on the embedded zones' Electricity
Maps hourly data of **2021-2022 only**; 2023 is the held-out year on which it is compared with
``blend`` (and the per-zone default is chosen). The shipped model is two small files in
``greenforge/schedule/data/``: ``forecaster.npz`` (weights, float32) and ``forecaster.json``
(training period, feature version, the held-out scores and the per-zone choice).

For lead ``h`` (0 = the step starting at the decision time) the prediction is
``a + w_h . x_h + b_h`` where ``a`` is the mean of the last 24 observed steps (recent-level
anchoring: every value feature is measured from ``a``, so a grid that got dirtier this month
is forecast at its new level) and ``x_h`` holds:

* the last 6 observed values;
* the values at the target's time of day on each of the last 7 days, and the 7- and 14-day
  means at that time of day (the "profile" features);
* the mean of the last week;
* the latest deviation from the 7-day profile (how unusual the grid is right now);
* the change of the training-years climatology (month x hour x weekday/weekend mean, in the
  zone's local standard time) from the latest observed hour to the target hour;
* one indicator per target hour-of-day x weekday/weekend.

Quantiles are the training residual quantiles per lead (5 %..95 %), added to the point
forecast, so ``p10 <= p50 <= p90`` always holds. The model needs 14 days of hourly history
(:data:`HISTORY_STEPS`) and forecasts up to :data:`MAX_HORIZON` hours.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from greenforge.errors import ConfigError, DataError, UnknownZoneError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FEATURE_VERSION = 1
STEP_S = 3600.0
"""The model is hourly: it forecasts hourly steps from hourly history."""
DAY = 24
HISTORY_STEPS = 14 * DAY
"""Past hourly steps the model reads (14 days)."""
MAX_HORIZON = 72
"""Leads it has a model for (hours)."""
LAGS = 6
PROFILE_DAYS = 7
QUANTILES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
N_VALUE_FEATURES = LAGS + PROFILE_DAYS + 5
N_FEATURES = N_VALUE_FEATURES + 2 * DAY
RIDGE = 1e-3
"""Ridge penalty per training row on standardised features."""


# --------------------------------------------------------------------------------------------
# Features (shared by training and prediction: one code path)


def _calendar(local_t_s: FloatArray) -> tuple[IntArray, IntArray, IntArray]:
    """(weekend 0/1, month 0-11, hour 0-23) of local standard times."""
    day = np.floor(local_t_s / 86400.0).astype(np.int64)
    hour = np.floor(local_t_s / 3600.0).astype(np.int64) % DAY
    month = local_t_s.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12
    weekend = ((day + 3) % 7 >= 5).astype(np.int64)  # 1970-01-01 was a Thursday
    return weekend, month, hour


def features(
    history: FloatArray,
    decision_times_s: FloatArray,
    lead: int,
    offset_s: float,
    climatology: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Returns ``(X, anchor)``: the ``(N, N_FEATURES)`` features of lead ``lead`` and the
    ``(N,)`` anchor (g/kWh) the prediction is measured from.

    ``history`` is ``(N, L)`` with ``L >= HISTORY_STEPS``, its last column the step before each
    decision; ``climatology`` the ``(2, 12, 24)`` training-years mean (weekend, month, hour).
    """
    n, length = history.shape
    if length < HISTORY_STEPS:
        raise DataError(f"learned forecaster: history has {length} steps, needs {HISTORY_STEPS}.")
    x = history[:, length - HISTORY_STEPS :]
    last = HISTORY_STEPS
    anchor = x[:, last - DAY :].mean(axis=1)
    cols: list[FloatArray] = [x[:, last - j] for j in range(1, LAGS + 1)]
    back = DAY * (lead // DAY + 1)  # the most recent same time of day is `back - lead` ago
    same = x[:, [last + lead - back - DAY * d for d in range(2 * PROFILE_DAYS)]]
    cols.extend(same[:, d] for d in range(PROFILE_DAYS))
    cols.append(same[:, :PROFILE_DAYS].mean(axis=1))
    cols.append(same.mean(axis=1))
    cols.append(x[:, last - 7 * DAY :].mean(axis=1))
    latest_profile = x[:, [last - 1 - DAY * d for d in range(1, PROFILE_DAYS + 1)]].mean(axis=1)
    deviation = x[:, last - 1] - latest_profile
    value = np.stack(cols, axis=1) - anchor[:, None]
    w_t, m_t, h_t = _calendar(decision_times_s + lead * STEP_S + offset_s)
    w_0, m_0, h_0 = _calendar(decision_times_s - STEP_S + offset_s)
    clim_change = climatology[w_t, m_t, h_t] - climatology[w_0, m_0, h_0]
    onehot = np.zeros((n, 2 * DAY))
    onehot[np.arange(n), h_t + DAY * w_t] = 1.0
    out = np.concatenate([value, deviation[:, None], clim_change[:, None], onehot], axis=1)
    return out, anchor


def climatology_table(times_s: FloatArray, values: FloatArray, offset_s: float) -> FloatArray:
    """Returns the ``(2, 12, 24)`` mean (g/kWh) by weekend, month and local hour; empty cells
    take the overall mean."""
    w, m, h = _calendar(np.asarray(times_s, dtype=np.float64) + offset_s)
    total = np.zeros((2, 12, DAY))
    count = np.zeros((2, 12, DAY))
    np.add.at(total, (w, m, h), values)
    np.add.at(count, (w, m, h), 1.0)
    return np.where(count > 0, total / np.maximum(count, 1.0), float(np.mean(values)))


# --------------------------------------------------------------------------------------------
# The model of one zone


@dataclasses.dataclass(frozen=True, eq=False)
class ZoneModel:
    """Weights of one zone: lead ``h`` predicts ``anchor + X_h @ weights[h] + bias[h]``."""

    zone: str
    offset_s: float
    climatology: FloatArray  # (2, 12, 24) g/kWh
    weights: FloatArray  # (MAX_HORIZON, N_FEATURES)
    bias: FloatArray  # (MAX_HORIZON,)
    residual_quantiles: FloatArray  # (MAX_HORIZON, len(QUANTILES)) g/kWh

    def predict(
        self, history: FloatArray, decision_times_s: FloatArray, horizon: int
    ) -> FloatArray:
        """Returns the ``(N, horizon)`` point forecast (g/kWh, the median model)."""
        if not 1 <= horizon <= self.weights.shape[0]:
            raise ConfigError(
                f"the learned forecaster forecasts 1 to {self.weights.shape[0]} h ahead, asked for "
                f"{horizon} steps; shorten the window or use another forecaster (blend)."
            )
        out = np.empty((history.shape[0], horizon))
        for h in range(horizon):
            x, anchor = features(history, decision_times_s, h, self.offset_s, self.climatology)
            out[:, h] = anchor + x @ self.weights[h] + self.bias[h]
        return out

    def shift(self, q: float | Sequence[float], horizon: int) -> FloatArray:
        """Returns the residual quantile(s) per lead, ``(horizon,)`` or ``(len(q), horizon)``."""
        qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
        lo, hi = QUANTILES[0], QUANTILES[-1]
        if np.any((qs < lo) | (qs > hi)) or not np.all(np.isfinite(qs)):
            raise ConfigError(f"bad quantile(s) {q!r}: the learned forecaster has {lo}..{hi}.")
        table = self.residual_quantiles[:horizon]  # (H, nq)
        out = np.stack([[np.interp(v, QUANTILES, row) for row in table] for v in qs])
        return out[0] if np.ndim(q) == 0 else out


def fit_zone(
    zone: str,
    times_s: FloatArray,
    values: FloatArray,
    offset_s: float,
    train_end_s: float,
    leads: int = MAX_HORIZON,
) -> ZoneModel:
    """Returns the model of one zone fitted on the hourly ``values`` before ``train_end_s``.

    Every decision whose history and whole ``MAX_HORIZON`` target window lie before
    ``train_end_s`` is a training row (nothing at or after the cutoff is read). Deterministic:
    a closed-form ridge solve per lead on standardised features. ``leads`` fits only the first
    leads (each lead's model is independent of the others: a quick check of a rebuild).
    """
    if not 1 <= leads <= MAX_HORIZON:
        raise ConfigError(f"leads must be 1..{MAX_HORIZON}, got {leads!r}.")
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    keep = t < train_end_s
    t, v = t[keep], v[keep]
    if t.size and not np.allclose(np.diff(t), STEP_S):
        raise DataError(f"{zone}: training data must be hourly without gaps.")
    if t.size < HISTORY_STEPS + MAX_HORIZON + 30 * DAY or not np.all(np.isfinite(v)):
        raise DataError(f"{zone}: too little (or non-finite) hourly training data.")
    clim = climatology_table(t, v, offset_s)
    windows = np.lib.stride_tricks.sliding_window_view(v, HISTORY_STEPS)
    decisions = np.arange(HISTORY_STEPS, v.size - MAX_HORIZON + 1)
    history = windows[decisions - HISTORY_STEPS]
    times = t[decisions]
    weights = np.empty((leads, N_FEATURES))
    bias = np.empty(leads)
    resid_q = np.empty((leads, len(QUANTILES)))
    for h in range(leads):
        x, anchor = features(history, times, h, offset_s, clim)
        y = v[decisions + h] - anchor
        mean_x = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        xs = (x - mean_x) / scale
        gram = xs.T @ xs + RIDGE * y.size * np.eye(N_FEATURES)
        w = np.linalg.solve(gram, xs.T @ (y - y.mean()))
        weights[h] = w / scale
        bias[h] = y.mean() - float(mean_x @ weights[h])
        resid = y - (x @ weights[h] + bias[h])
        resid_q[h] = np.quantile(resid, QUANTILES)
    return ZoneModel(zone, offset_s, clim, weights, bias, resid_q)


# --------------------------------------------------------------------------------------------
# The shipped model files


@dataclasses.dataclass(frozen=True)
class LearnedModels:
    """The shipped models (one per zone) and their metadata (``forecaster.json``)."""

    zones: dict[str, ZoneModel]
    meta: dict[str, Any]

    @property
    def train_end_s(self) -> float:
        """Returns the unix time (s) of the training cutoff: no data at or after it was used."""
        return float(self.meta["train_end_s"])

    @property
    def selection(self) -> dict[str, str]:
        """Returns zone -> the default forecaster there (``learned`` or ``blend``)."""
        return dict(self.meta["selection"])

    def model(self, zone: str) -> ZoneModel:
        try:
            return self.zones[zone]
        except KeyError:
            raise UnknownZoneError(
                zone, self.zones, source="the learned forecaster (trained per embedded zone)"
            ) from None


def save_models(directory: Any, models: Sequence[ZoneModel], meta: dict[str, Any]) -> None:
    """Write ``forecaster.npz`` and ``forecaster.json`` into ``directory`` (a ``Path``)."""
    zones = [m.zone for m in models]
    arrays = {
        "zones": np.array(zones),
        "offset_s": np.array([m.offset_s for m in models]),
        "climatology": np.stack([m.climatology for m in models]).astype(np.float32),
        "weights": np.stack([m.weights for m in models]).astype(np.float32),
        "bias": np.stack([m.bias for m in models]).astype(np.float32),
        "residual_quantiles": np.stack([m.residual_quantiles for m in models]).astype(np.float32),
        "quantiles": np.array(QUANTILES),
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    (directory / "forecaster.npz").write_bytes(_stable_npz(buf.getvalue()))
    text = json.dumps({**meta, "zones": zones}, indent=1, sort_keys=True) + "\n"
    (directory / "forecaster.json").write_text(text, encoding="utf-8")


def _stable_npz(data: bytes) -> bytes:
    """The same zip with fixed member timestamps, so a rebuild is byte-identical."""
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2023, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def read_models(npz_bytes: bytes, meta_text: str) -> LearnedModels:
    """Returns the models stored in ``forecaster.npz`` bytes and ``forecaster.json`` text."""
    meta: dict[str, Any] = json.loads(meta_text)
    if int(meta.get("feature_version", -1)) != FEATURE_VERSION:
        raise DataError(
            f"learned forecaster files have feature version {meta.get('feature_version')!r}, "
            f"this GreenForge reads {FEATURE_VERSION}: rebuild them "
            "(python scripts/build_forecaster.py)."
        )
    with np.load(io.BytesIO(npz_bytes)) as npz:
        zones = [str(z) for z in npz["zones"]]
        arrays = {k: np.asarray(npz[k], dtype=np.float64) for k in npz.files if k != "zones"}
    out = {
        z: ZoneModel(
            z,
            float(arrays["offset_s"][i]),
            arrays["climatology"][i],
            arrays["weights"][i],
            arrays["bias"][i],
            arrays["residual_quantiles"][i],
        )
        for i, z in enumerate(zones)
    }
    return LearnedModels(out, meta)


@functools.lru_cache(maxsize=1)
def shipped_models() -> LearnedModels:
    """Returns the models shipped in the package (read once)."""
    base = resources.files("greenforge.schedule").joinpath("data")
    return read_models(
        base.joinpath("forecaster.npz").read_bytes(),
        base.joinpath("forecaster.json").read_text("utf-8"),
    )


# --------------------------------------------------------------------------------------------
# The forecasters (registered in greenforge.schedule.forecast as "learned" and "auto")


def _check_hourly(step_s: float, name: str) -> None:
    if abs(step_s - STEP_S) > 1e-6:
        raise ConfigError(
            f"the {name} forecaster works on hourly data, this data's step is "
            f"{step_s / 60:g} min; resample it to hourly or use another forecaster (blend)."
        )


def _check_quantile(q: float | None) -> None:
    if q is not None and not (QUANTILES[0] <= q <= QUANTILES[-1]):
        raise ConfigError(
            f"bad quantile {q!r} for the learned forecaster: use a value between "
            f"{QUANTILES[0]} and {QUANTILES[-1]}, e.g. 0.9."
        )


@dataclasses.dataclass(frozen=True, eq=False)
class Learned:
    """The learned forecaster (:mod:`greenforge.schedule.learned`): point forecast, or quantile
    ``quantile`` of the training residuals added to it."""

    quantile: float | None = None
    models: LearnedModels | None = None
    """Default: the shipped models."""
    needs_future: bool = False

    def __post_init__(self) -> None:
        _check_quantile(self.quantile)

    @property
    def name(self) -> str:
        return "learned" if self.quantile is None else f"learned@p{round(self.quantile * 100):d}"

    @property
    def description(self) -> str:
        suffix = "" if self.quantile is None else f", at its p{round(self.quantile * 100):d}"
        return (
            "ridge models per zone and lead over lags, profile and calendar features "
            f"(trained on 2021-2022){suffix}"
        )

    def _models(self) -> LearnedModels:
        return self.models if self.models is not None else shipped_models()

    def with_quantile(self, q: float) -> Learned:
        """Returns this forecaster planning on quantile ``q`` of its training residuals."""
        return dataclasses.replace(self, quantile=q)

    def training_period_s(self, zone: str) -> tuple[float, float] | None:
        """Returns ``(start_s, end_s)`` of the zone's training data, None without a model."""
        models = self._models()
        if zone not in models.zones:
            return None
        return float(models.meta["train_start_s"]), models.train_end_s

    def history_steps(self, horizon: int, step_s: float) -> int:
        _check_hourly(step_s, "learned")
        return HISTORY_STEPS

    def predict(self, inp: Any) -> FloatArray:
        """Returns the ``(N, horizon)`` forecast (g/kWh) of a ``ForecastInput``."""
        _check_hourly(inp.step_s, "learned")
        model = self._models().model(inp.zone)
        out = model.predict(inp.history_g_per_kwh, inp.decision_times_s, inp.horizon)
        if self.quantile is not None:
            out = out + model.shift(self.quantile, inp.horizon)[None, :]
        return out

    def predict_quantiles(self, inp: Any, qs: Sequence[float]) -> FloatArray:
        """Returns ``(len(qs), N, horizon)`` forecasts (g/kWh) at quantiles ``qs``, in the
        order given; for increasing ``qs`` each is >= the one before."""
        _check_hourly(inp.step_s, "learned")
        model = self._models().model(inp.zone)
        point = model.predict(inp.history_g_per_kwh, inp.decision_times_s, inp.horizon)
        shifts = model.shift(list(qs), inp.horizon)  # (nq, H)
        return np.asarray(point[None, :, :] + shifts[:, None, :], dtype=np.float64)


def _blend(quantile: float | None) -> Any:
    """``blend``, or ``blend`` planning on its own error quantile."""
    from greenforge.schedule.forecast import Blend, QuantileForecaster

    return Blend() if quantile is None else QuantileForecaster(Blend(), quantile)


@dataclasses.dataclass(frozen=True, eq=False)
class Ensemble:
    """The equal-weight mean of ``learned`` and ``blend`` (a quantile: the mean of their
    quantiles). Averaging two forecasts with different errors is steadier than either: on the
    validation year 2022 (models trained on 2021) it captured 83.9 % of the oracle saving on
    average, blend 83.3 %, learned 82.5 %."""

    quantile: float | None = None
    models: LearnedModels | None = None
    needs_future: bool = False

    def __post_init__(self) -> None:
        _check_quantile(self.quantile)

    @property
    def name(self) -> str:
        q = self.quantile
        return "ensemble" if q is None else f"ensemble@p{round(q * 100):d}"

    @property
    def description(self) -> str:
        return "mean of the learned and blend forecasts"

    def with_quantile(self, q: float) -> Ensemble:
        """Returns the ensemble of ``learned@q`` and ``blend@q``."""
        return dataclasses.replace(self, quantile=q)

    def training_period_s(self, zone: str) -> tuple[float, float] | None:
        """Returns the learned part's training period."""
        return Learned(None, self.models).training_period_s(zone)

    def history_steps(self, horizon: int, step_s: float) -> int:
        learned = Learned(None, self.models).history_steps(horizon, step_s)
        return max(int(_blend(self.quantile).history_steps(horizon, step_s)), learned)

    def predict(self, inp: Any) -> FloatArray:
        """Returns the ``(N, horizon)`` mean of the two forecasts (g/kWh)."""
        learned = Learned(self.quantile, self.models).predict(inp)
        blend = np.asarray(_blend(self.quantile).predict(inp), dtype=np.float64)
        return np.asarray(0.5 * (learned + blend), dtype=np.float64)


CHOICES = ("blend", "learned", "ensemble")
"""What ``auto`` may use in a zone (the shipped ``selection``)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Auto:
    """The default: per zone, the forecaster that won on the held-out year (``learned``,
    ``ensemble`` or ``blend``), as recorded in the shipped model file; ``blend`` for any other
    zone, and for data that is not hourly or windows beyond 72 h."""

    quantile: float | None = None
    models: LearnedModels | None = None
    needs_future: bool = False

    @property
    def name(self) -> str:
        return "auto" if self.quantile is None else f"auto@p{round(self.quantile * 100):d}"

    @property
    def description(self) -> str:
        selection = self._models().selection
        parts = []
        for choice in CHOICES[1:]:
            zones = sorted(z for z, f in selection.items() if f == choice)
            if zones:
                parts.append(f"{choice} in {', '.join(zones)}")
        used = "; ".join(parts) if parts else "blend in every zone"
        return (
            f"per zone, the winner on the held-out year 2023: {used}; blend elsewhere "
            "(and for data that is not hourly or windows beyond 72 h)"
        )

    def _models(self) -> LearnedModels:
        return self.models if self.models is not None else shipped_models()

    def choice_name(self, zone: str) -> str:
        """Returns the forecaster ``auto`` uses in ``zone`` (one of :data:`CHOICES`)."""
        return self._models().selection.get(zone, "blend")

    def choice(self, zone: str) -> Any:
        """Returns the forecaster ``auto`` uses in ``zone``."""
        name = self.choice_name(zone)
        if name == "learned":
            return Learned(self.quantile, self.models)
        if name == "ensemble":
            return Ensemble(self.quantile, self.models)
        return _blend(self.quantile)

    def with_quantile(self, q: float) -> Auto:
        """Returns ``auto`` planning on quantile ``q`` in every zone."""
        _check_quantile(q)
        _blend(q)  # validates q the same way for blend zones
        return dataclasses.replace(self, quantile=q)

    def training_period_s(self, zone: str) -> tuple[float, float] | None:
        """Returns the training period of the forecaster chosen in ``zone`` (None for blend)."""
        chosen = self.choice(zone)
        if isinstance(chosen, (Learned, Ensemble)):
            return chosen.training_period_s(zone)
        return None

    def history_steps(self, horizon: int, step_s: float) -> int:
        """The most any choice needs (the zone is not known here)."""
        need = int(_blend(self.quantile).history_steps(horizon, step_s))
        if abs(step_s - STEP_S) <= 1e-6 and horizon <= MAX_HORIZON:
            need = max(need, HISTORY_STEPS)
        return need

    def predict(self, inp: Any) -> FloatArray:
        """Returns the chosen forecaster's ``(N, horizon)`` forecast (g/kWh)."""
        chosen = self.choice(inp.zone)
        hourly = abs(inp.step_s - STEP_S) <= 1e-6
        if isinstance(chosen, (Learned, Ensemble)) and (not hourly or inp.horizon > MAX_HORIZON):
            chosen = _blend(self.quantile)
        return np.asarray(chosen.predict(inp), dtype=np.float64)


def forecast_quantiles(
    history: Any,
    decision_time_s: float,
    horizon: int,
    qs: Sequence[float] = (0.1, 0.5, 0.9),
    models: LearnedModels | None = None,
) -> dict[float, Any]:
    """Returns ``{q: IntensitySeries}``: the learned forecast of ``horizon`` hours from
    ``decision_time_s`` at each quantile, from an hourly ``history`` series (the values before
    the decision are used; at least :data:`HISTORY_STEPS` of them, ending at the decision).

    Plan on risk by handing the ``0.9`` series to the planner (``plan_job``).
    """
    from greenforge.grid.series import IntensitySeries
    from greenforge.schedule.forecast import ForecastInput

    _check_hourly(history.step_s, "learned")
    past = history.values_g_per_kwh[history.times_s < decision_time_s - 1e-6]
    if past.size < HISTORY_STEPS or not np.all(np.isfinite(past[-HISTORY_STEPS:])):
        raise DataError(
            f"the learned forecaster needs {HISTORY_STEPS} finite hourly values (14 days) before "
            f"the decision time; the history has {past.size}."
        )
    last_t = float(history.times_s[past.size - 1])
    if abs(last_t + STEP_S - decision_time_s) > 1e-6:
        raise DataError(
            "the history must end at the decision time (its last hour starts one hour before "
            "it); forecast from the end of the history or give more recent data."
        )
    inp = ForecastInput(
        past[None, -HISTORY_STEPS:], np.array([decision_time_s]), STEP_S, horizon, history.zone
    )
    values = Learned(models=models).predict_quantiles(inp, list(qs))[:, 0, :]
    times = decision_time_s + STEP_S * np.arange(horizon, dtype=np.float64)
    return {
        q: IntensitySeries(
            times_s=times,
            values_g_per_kwh=values[i],
            step_s=STEP_S,
            zone=history.zone,
            source=f"forecast:learned@p{round(q * 100):d} from {history.source}",
            signal=history.signal,
            basis=history.basis,
            kind="forecast",
            forecast=np.ones(horizon, dtype=np.bool_),
        )
        for i, q in enumerate(qs)
    }
