"""The learned keyless forecaster: the shipped model, its honesty and the per-zone default."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from greenforge.errors import ConfigError, DataError, UnknownZoneError
from greenforge.grid.files import load_csv
from greenforge.grid.profile import profile_series, profile_zones
from greenforge.grid.series import IntensitySeries
from greenforge.schedule.backtest import JobShape, backtest_series
from greenforge.schedule.forecast import (
    DEFAULT_FORECASTER,
    ForecastInput,
    QuantileForecaster,
    create_forecaster,
    forecast_after,
    forecaster_names,
)
from greenforge.schedule.learned import (
    CHOICES,
    HISTORY_STEPS,
    MAX_HORIZON,
    Auto,
    Ensemble,
    Learned,
    read_models,
    save_models,
    shipped_models,
)

H = 3600.0
REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "src" / "greenforge" / "schedule" / "data"
HELDOUT_START_S = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc).timestamp()


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_forecaster", REPO / "scripts" / "build_forecaster.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def history_input(zone: str, n: int = 3, horizon: int = 48, days: int = 14) -> ForecastInput:
    """Decisions at hour boundaries after ``days`` of profile-shaped history with noise."""
    t0 = dt.datetime(2024, 3, 4, tzinfo=dt.timezone.utc).timestamp()
    steps = days * 24
    past = profile_series(zone, t0 - steps * H - n * H, t0)
    rng = np.random.default_rng(1)
    values = past.values_g_per_kwh * (1 + 0.1 * rng.standard_normal(len(past)))
    rows = [values[i : i + steps] for i in range(n)]
    times = np.array([past.times_s[i + steps] for i in range(n)])
    return ForecastInput(np.stack(rows), times, H, horizon, zone)


def test_the_shipped_model_covers_the_embedded_zones_and_says_how_it_was_trained() -> None:
    models = shipped_models()
    assert sorted(models.zones) == sorted(profile_zones())
    assert models.meta["train_years"] == [2021, 2022]
    assert models.train_end_s == HELDOUT_START_S  # nothing of the held-out year 2023
    assert models.meta["heldout_year"] == 2023
    size = sum(p.stat().st_size for p in SHIPPED.glob("forecaster.*"))
    assert size < 500_000  # small enough to ship


def test_predictions_have_the_asked_shape_and_ordered_quantiles() -> None:
    inp = history_input("GB", n=3, horizon=MAX_HORIZON)
    learned = Learned()
    point = learned.predict(inp)
    assert point.shape == (3, MAX_HORIZON)
    assert np.all(np.isfinite(point))
    assert np.all(point > 0)
    q = learned.predict_quantiles(inp, [0.1, 0.5, 0.9])
    assert q.shape == (3, 3, MAX_HORIZON)
    assert np.all(q[0] <= q[1])
    assert np.all(q[1] <= q[2])
    assert np.all(q[2] - q[0] > 0)  # a real spread, per lead
    p90 = create_forecaster("learned@p90")
    assert p90.name == "learned@p90"
    assert not isinstance(p90, QuantileForecaster)
    np.testing.assert_allclose(p90.predict(inp), q[2])
    one = forecast_after(learned, inp.history_g_per_kwh[0], inp.decision_times_s[0], H, 24, "GB")
    np.testing.assert_allclose(one, point[0, :24])


def test_bad_requests_name_the_value_and_what_to_do() -> None:
    learned = Learned()
    with pytest.raises(ConfigError, match="1 to 72 h ahead"):
        learned.predict(history_input("GB", horizon=MAX_HORIZON + 1))
    with pytest.raises(ConfigError, match="hourly"):
        learned.history_steps(24, 900.0)
    inp = history_input("GB")
    with pytest.raises(UnknownZoneError, match="XX"):
        learned.predict(ForecastInput(inp.history_g_per_kwh, inp.decision_times_s, H, 24, "XX"))
    with pytest.raises(DataError, match="needs 336 past steps"):
        forecast_after(learned, np.ones(100), 0.0, H, 24, "GB")
    with pytest.raises(ConfigError, match=r"between 0\.05 and 0\.95"):
        create_forecaster("learned", quantile=0.99)


def test_auto_is_the_default_and_uses_the_shipped_per_zone_choice() -> None:
    assert DEFAULT_FORECASTER == "auto"
    assert {"auto", "learned", "ensemble"} <= set(forecaster_names())
    meta = json.loads((SHIPPED / "forecaster.json").read_text(encoding="utf-8"))
    auto = create_forecaster(DEFAULT_FORECASTER)
    assert isinstance(auto, Auto)
    for zone, scores in meta["heldout_captured"].items():
        best = max(CHOICES, key=lambda n: (scores[n], -CHOICES.index(n)))
        winner = best if scores[best] > scores["blend"] else "blend"
        assert meta["selection"][zone] == winner
        assert auto.choice_name(zone) == winner
        assert (zone in auto.description) == (winner != "blend")
    assert auto.choice_name("XX") == "blend"  # a zone without a model
    for name, expected in (("learned", Learned), ("ensemble", Ensemble)):
        zone = next((z for z, f in meta["selection"].items() if f == name), None)
        if zone is not None:
            assert isinstance(auto.choice(zone), expected)
    wide = ForecastInput(
        np.ones((1, auto.history_steps(24, H))), np.array([HELDOUT_START_S]), H, 24, "XX"
    )
    assert auto.predict(wide).shape == (1, 24)  # blend where there is no model


def test_the_ensemble_is_the_mean_of_learned_and_blend() -> None:
    need = Ensemble().history_steps(24, H)
    days = need // 24 + 1
    inp = history_input("DE", n=2, horizon=24, days=days)
    mean = 0.5 * (Learned().predict(inp) + create_forecaster("blend").predict(inp))
    np.testing.assert_allclose(create_forecaster("ensemble").predict(inp), mean)
    assert Ensemble().training_period_s("DE") == Learned().training_period_s("DE")
    assert create_forecaster("auto@p90").name == "auto@p90"


def test_the_heldout_year_is_not_in_sample_and_the_training_years_are(
    shared_data: Path,
) -> None:
    hourly = shared_data / "grid" / "hourly"
    series = load_csv([hourly / "GB_2022_hourly.csv.gz", hourly / "GB_2023_hourly.csv.gz"])
    shape = [JobShape(4, 24)]
    two_weeks = 14 * 86400.0
    learned = Learned()
    after = backtest_series(
        series, learned, shape, start_s=HELDOUT_START_S, end_s=HELDOUT_START_S + two_weeks
    )
    before = backtest_series(
        series, learned, shape, start_s=HELDOUT_START_S - two_weeks, end_s=HELDOUT_START_S
    )
    assert not after[0].in_sample
    assert before[0].in_sample


def test_the_shipped_heldout_score_is_reproducible(shared_data: Path) -> None:
    hourly = shared_data / "grid" / "hourly"
    series = load_csv([hourly / "GB_2022_hourly.csv.gz", hourly / "GB_2023_hourly.csv.gz"])
    (result,) = backtest_series(
        series,
        Learned(),
        [JobShape(4, 24)],
        start_s=HELDOUT_START_S,
        history_steps=create_forecaster("blend").history_steps(28, H),
    )
    meta = shipped_models().meta
    assert result.captured == pytest.approx(meta["heldout_captured"]["GB"]["learned"], abs=1e-5)


def test_rebuilding_a_zone_reproduces_the_shipped_weights(
    shared_data: Path, tmp_path: Path
) -> None:
    script = load_script()
    leads = 2  # every lead is an independent solve: the first few check the whole recipe
    model = script.build_zone(shared_data, "GB", leads=leads)
    shipped = shipped_models().model("GB")
    np.testing.assert_allclose(model.climatology, shipped.climatology, rtol=1e-6)
    np.testing.assert_allclose(model.weights, shipped.weights[:leads], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.bias, shipped.bias[:leads], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        model.residual_quantiles, shipped.residual_quantiles[:leads], rtol=1e-4, atol=1e-3
    )
    # the files are a pure function of the models: writing twice gives the same bytes
    meta = {"feature_version": 1, "train_start_s": 0.0, "train_end_s": 1.0, "selection": {}}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        save_models(tmp_path / name, [model], meta)
    assert (tmp_path / "a" / "forecaster.npz").read_bytes() == (
        tmp_path / "b" / "forecaster.npz"
    ).read_bytes()
    back = read_models(
        (tmp_path / "a" / "forecaster.npz").read_bytes(),
        (tmp_path / "a" / "forecaster.json").read_text(encoding="utf-8"),
    )
    np.testing.assert_allclose(back.model("GB").weights, model.weights, rtol=1e-6)


def test_model_files_of_another_feature_version_are_refused(tmp_path: Path) -> None:
    meta = (
        (SHIPPED / "forecaster.json")
        .read_text(encoding="utf-8")
        .replace('"feature_version": 1', '"feature_version": 999')
    )
    with pytest.raises(DataError, match="rebuild"):
        read_models((SHIPPED / "forecaster.npz").read_bytes(), meta)


def test_a_flat_history_gives_a_nearly_flat_forecast() -> None:
    """Anchoring: a constant history is forecast near that level (the calendar terms only)."""
    series = IntensitySeries(
        np.arange(HISTORY_STEPS, dtype=np.float64) * H,
        np.full(HISTORY_STEPS, 300.0),
        H,
        "DE",
        "test",
    )
    fc = forecast_after(Learned(), series.values_g_per_kwh, HISTORY_STEPS * H, H, 24, series.zone)
    assert np.all(np.abs(fc - 300.0) < 150.0)
