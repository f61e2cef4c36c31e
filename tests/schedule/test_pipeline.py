"""The one planning pipeline: options -> forecast -> (PUE) -> plan, and what it reports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from greenforge.config import load_settings
from greenforge.errors import ConfigError, DataError, InfeasibleError
from greenforge.grid.series import FloatArray
from greenforge.schedule.forecast import create_forecaster
from greenforge.schedule.job import Job
from greenforge.schedule.learned import Auto, shipped_models
from greenforge.schedule.pipeline import (
    ConstantPue,
    PlanOptions,
    PueSeries,
    describe_forecaster,
    make_plan,
    pue_from_spec,
)

H = 3600.0
T0 = 1_900_000_000.0 - 1_900_000_000.0 % H  # in the future: plans need no replay
GRID = np.array([300.0] * 10 + [200.0] * 4 + [300.0] * 6 + [260.0] * 4 + [300.0] * 26)
"""A grid dip at hours 10-13 (200 g/kWh) and a smaller one at hours 20-23 (260 g/kWh)."""


class HotAfternoons:
    """A PUE series (the protocol: ``over(times_s)``): 1.8 during hours 10-13, else 1.1."""

    source = "test:hot-afternoons"

    def over(self, times_s: FloatArray) -> FloatArray:
        hours = (np.asarray(times_s) - T0) // H
        return np.where((hours >= 10) & (hours < 14), 1.8, 1.1)


def _file(tmp_path: Path, values: FloatArray = GRID) -> Path:
    lines = ["timestamp,value"] + [
        f"{dt.datetime.fromtimestamp(T0 + i * H, dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ},{v}"
        for i, v in enumerate(values)
    ]
    path = tmp_path / "grid.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _job(**changes: object) -> Job:
    fields: dict[str, object] = {
        "duration_s": 4 * H,
        "earliest_start_s": T0,
        "deadline_s": T0 + 40 * H,
        "zones": ("XX",),
        "power_w": 1000.0,
    }
    fields.update(changes)
    return Job(**fields)  # type: ignore[arg-type]


def test_a_pue_series_moves_the_plan_away_from_hot_hours_and_says_what_that_gains(
    tmp_path: Path,
) -> None:
    options = PlanOptions(files=(_file(tmp_path),), pue=HotAfternoons())
    result = make_plan(_job(), load_settings(), options, now_s=T0)

    assert isinstance(HotAfternoons(), PueSeries)
    assert result.plan.start_s == T0 + 20 * H  # 260 x 1.1 = 286 beats 200 x 1.8 = 360
    effect = result.pue
    assert effect is not None
    assert not effect.constant
    assert (effect.min_pue, effect.max_pue) == (1.1, 1.8)
    assert effect.mean_pue == pytest.approx((36 * 1.1 + 4 * 1.8) / 40)
    # planned on the mean PUE, the grid's deepest dip wins; under the series it costs more
    assert effect.constant_saving_pct == pytest.approx(100 * (1 - 200 / 300))
    assert effect.series_saving_pct == pytest.approx(100 * (1 - 286 / 330))
    assert effect.constant_plan_co2e_g == pytest.approx(4 * 360)
    assert effect.series_plan_co2e_g == pytest.approx(4 * 286)
    assert effect.gain_g == pytest.approx(4 * (360 - 286))
    assert "x PUE (test:hot-afternoons)" in result.plan.forecast_source
    assert result.to_dict()["pue"]["gain_g"] == pytest.approx(296)
    assert "with the series vs" in effect.line()


def test_a_constant_pue_scales_co2e_but_moves_no_slot(tmp_path: Path) -> None:
    files = (_file(tmp_path),)
    bare = make_plan(_job(), load_settings(), PlanOptions(files=files), now_s=T0)
    with_pue = make_plan(_job(), load_settings(), PlanOptions(files=files, pue="1.4"), now_s=T0)

    assert with_pue.plan.slots == bare.plan.slots
    assert with_pue.plan.expected_co2e_g == pytest.approx(1.4 * bare.plan.expected_co2e_g)
    assert with_pue.plan.saving_pct == pytest.approx(bare.plan.saving_pct)
    assert with_pue.pue is not None
    assert with_pue.pue.constant
    assert with_pue.pue.constant_plan_co2e_g is None
    assert bare.pue is None
    assert bare.to_dict()["pue"] is None


def test_a_pue_series_file_is_read_through_greenforge_pue(tmp_path: Path) -> None:
    pue_csv = tmp_path / "pue.csv"
    rows = ["timestamp,pue"] + [
        f"{dt.datetime.fromtimestamp(T0 + i * H, dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ},"
        f"{1.8 if 10 <= i < 14 else 1.1}"
        for i in range(48)
    ]
    pue_csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    options = PlanOptions(files=(_file(tmp_path),), pue=str(pue_csv))
    result = make_plan(_job(), load_settings(), options, now_s=T0)
    assert result.plan.start_s == T0 + 20 * H
    assert result.pue is not None
    assert result.pue.max_pue == pytest.approx(1.8)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("0.8", "bad PUE 0.8"), (4, "between 1 and 3"), (True, "bad PUE True"), (object(), "over(")],
)
def test_bad_pue_specs_name_the_value(spec: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        pue_from_spec(spec)  # type: ignore[arg-type]


def test_a_pue_series_that_answers_badly_is_refused(tmp_path: Path) -> None:
    class WrongShape:
        def over(self, times_s: FloatArray) -> FloatArray:
            return np.ones(3)

    class Impossible:
        source = "broken meter"

        def over(self, times_s: FloatArray) -> FloatArray:
            return np.full(np.shape(times_s), 0.5)

    files = (_file(tmp_path),)
    with pytest.raises(DataError, match="one PUE per time"):
        make_plan(_job(), load_settings(), PlanOptions(files=files, pue=WrongShape()), now_s=T0)
    with pytest.raises(ConfigError, match=r"PUE from broken meter for XX: 0\.5"):
        make_plan(_job(), load_settings(), PlanOptions(files=files, pue=Impossible()), now_s=T0)


def test_options_round_trip_for_the_queue_and_refuse_what_cannot_be_stored(
    tmp_path: Path,
) -> None:
    options = PlanOptions(
        forecast="blend", quantile=0.9, files=(tmp_path / "a.csv",), compare=("FR",), pue="1.2"
    )
    assert PlanOptions.from_dict(options.to_dict()) == options
    with pytest.raises(ConfigError, match="cannot be stored"):
        PlanOptions(pue=HotAfternoons()).to_dict()
    with pytest.raises(ConfigError, match=r"bad quantile 1\.5"):
        PlanOptions(quantile=1.5)


def test_past_windows_are_a_replay_only_when_asked_for(tmp_path: Path) -> None:
    files = (_file(tmp_path),)
    later = T0 + 100 * H
    with pytest.raises(InfeasibleError, match="in the past"):
        make_plan(_job(), load_settings(), PlanOptions(files=files), now_s=later)
    replay = PlanOptions(files=files, allow_past=True)
    assert make_plan(_job(), load_settings(), replay, now_s=later).plan.start_s == T0 + 10 * H


def test_without_files_the_provider_forecast_is_used_and_labelled() -> None:
    job = _job(zones=("DE",))
    result = make_plan(job, load_settings(), now_s=T0)
    assert result.forecast_label == "provider forecast (embedded)"
    assert result.plan.forecast_source.startswith("embedded:profile")
    p90 = make_plan(job, load_settings(), PlanOptions(forecast="embedded-profile@p90"), now_s=T0)
    assert p90.plan.run_now_co2e_g > result.plan.run_now_co2e_g  # planned on the 90th pct
    with pytest.raises(ConfigError, match="needs a forecast with a spread"):
        make_plan(job, load_settings(), PlanOptions(quantile=0.9), now_s=T0)
    with pytest.raises(ConfigError, match="reads the window's intensity from --file"):
        make_plan(job, load_settings(), PlanOptions(forecast="file"), now_s=T0)


def test_constant_pue_equals_over_everywhere() -> None:
    times = np.array([0.0, 1e9, 2e9])
    assert ConstantPue(1.25).over(times).tolist() == [1.25] * 3


def test_auto_without_measured_history_plans_on_the_embedded_profile_and_says_so() -> None:
    # no file, no key: the chain has only the typical profile - auto does not feed it to a
    # forecaster as if it were history, it plans on it and says so for every zone
    job = _job(zones=("GB", "DE"))
    result = make_plan(job, load_settings(), PlanOptions(forecast="auto"), now_s=T0)
    profile = make_plan(job, load_settings(), PlanOptions(forecast="embedded-profile"), now_s=T0)
    assert result.plan.slots == profile.plan.slots
    assert result.forecast_label == "auto: embedded typical profile (no measured history)"
    assert list(result.to_dict()["zone_forecasts"]) == ["GB", "DE"]
    for text in result.zone_forecasts.values():
        assert text.startswith("auto -> embedded-profile (typical 2021-2023 profile, not a live")
        assert "no measured history" in text
    with pytest.raises(ConfigError, match="needs measured history of 'GB'"):
        make_plan(job, load_settings(), PlanOptions(forecast="learned"), now_s=T0)


def test_each_zone_says_which_forecaster_auto_uses_there(tmp_path: Path) -> None:
    days = 40
    hours = np.arange(-24 * days, 0)
    history = 250 + 100 * np.cos(hours * 2 * np.pi / 24)
    lines = ["timestamp,value"] + [
        f"{dt.datetime.fromtimestamp(T0 + h * H, dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ},{v}"
        for h, v in zip(hours, history, strict=True)
    ]
    path = tmp_path / "gb.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    job = _job(zones=("GB",), deadline_s=T0 + 28 * H)
    result = make_plan(job, load_settings(), PlanOptions(files=(path,)), now_s=T0)
    chosen = Auto().choice_name("GB")
    assert result.zone_forecasts == {"GB": f"auto -> {chosen} (won on held-out 2023 in GB)"}
    assert result.to_dict()["zone_forecasts"] == result.zone_forecasts

    auto = create_forecaster("auto")
    modelled = next(z for z, f in shipped_models().selection.items() if f != "blend")
    pick = Auto().choice_name(modelled)
    assert describe_forecaster(auto, "XX", H, 28) == "auto -> blend (no learned model for XX)"
    assert describe_forecaster(auto, modelled, 900.0, 28).startswith("auto -> blend (the data")
    assert describe_forecaster(auto, modelled, H, 100).startswith("auto -> blend (window of 100")
    assert describe_forecaster(create_forecaster("auto@p90"), modelled, H, 28) == (
        f"auto@p90 -> {pick}@p90 (won on held-out 2023 in {modelled})"
    )
    assert describe_forecaster(create_forecaster("blend"), modelled, H, 28) == "blend"
