"""Back-tests on degenerate data: all-zero intensity, non-finite totals, reversed periods, blocks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from greenforge.cli.app import main
from greenforge.errors import ConfigError
from greenforge.grid.series import IntensitySeries
from greenforge.jsonsafe import dumps
from greenforge.schedule import backtest as bt
from greenforge.schedule.backtest import JobShape, ShapeResult, backtest, backtest_series
from greenforge.schedule.forecast import FloatArray, create_forecaster

H = 3600.0
T0 = 1_672_531_200.0  # 2023-01-01T00:00Z


def hourly(values: FloatArray, zone: str = "AA") -> IntensitySeries:
    times: FloatArray = T0 + H * np.arange(values.size, dtype=np.float64)
    return IntensitySeries(times, values, H, zone, f"test:{zone}")


def noisy_days(n_days: int = 60, seed: int = 3) -> FloatArray:
    rng = np.random.default_rng(seed)
    hours = np.arange(24 * n_days)
    values: FloatArray = 300 + 120 * np.sin(hours * 2 * np.pi / 24) + rng.normal(0, 40, hours.size)
    return values


def strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"invalid JSON constant {constant!r}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("interruptible", [False, True])
def test_all_zero_intensity_makes_the_saving_not_applicable(interruptible: bool) -> None:
    series = hourly(np.zeros(24 * 60))
    for name in ("blend", "oracle"):
        res = backtest_series(
            series, create_forecaster(name), [JobShape(4, 24)], interruptible=interruptible
        )[0]
        assert res.run_now_g_per_kw == 0.0
        assert res.saving_pct is None
        assert res.oracle_saving_pct is None
        assert res.captured is None
        assert res.saving_note is not None
        assert "nothing to save" in res.saving_note
        row = strict_json(dumps(res.to_dict()))
        assert isinstance(row, dict)
        assert row["saving_pct"] is None
        assert "not applicable" in row["saving_note"]


def test_non_finite_totals_become_null_with_a_reason() -> None:
    res = ShapeResult(
        zone="AA",
        forecaster="blend",
        job_hours=4,
        slack_hours=24,
        interruptible=False,
        policy="once",
        arrivals=10,
        first_arrival_s=T0,
        last_arrival_s=T0 + H,
        run_now_g_per_kw=float("inf"),
        planned_g_per_kw=float("inf"),
        oracle_g_per_kw=1.0,
        mean_delay_h=1.0,
        mae_g_per_kwh=float("nan"),
        mape_pct=1.0,
    )
    row = strict_json(dumps(res.to_dict()))
    assert isinstance(row, dict)
    assert row["saving_pct"] is None
    assert row["run_now_co2e_g_per_kw"] is None
    assert row["mae_g_per_kwh"] is None
    assert "not finite" in row["saving_note"]


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    series = hourly(noisy_days())
    blend = create_forecaster("blend")
    with pytest.raises(ConfigError, match=r"starts \(2023-02-10.* at or after it ends.*--from"):
        backtest_series(series, blend, [JobShape(4, 24)], start_s=T0 + 40 * 86400, end_s=T0)
    with pytest.raises(ConfigError, match="--until"):
        backtest({"AA": series}, [blend], [JobShape(4, 24)], start_s=T0, end_s=T0)


def test_the_cli_names_from_after_until(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "h.csv"
    path.write_text("timestamp,value\n2023-01-01T00:00Z,1\n2023-01-01T01:00Z,2\n")
    code = main(["backtest", "--file", str(path), "--from", "2023-03-01", "--until", "2023-02-01"])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--from 2023-03-01 is not before --until 2023-02-01" in err


@pytest.mark.parametrize("policy", ["once", "replan"])
@pytest.mark.parametrize("interruptible", [False, True])
def test_replaying_in_small_blocks_gives_the_same_totals(
    monkeypatch: pytest.MonkeyPatch, policy: str, interruptible: bool
) -> None:
    series = hourly(noisy_days(40))
    shapes = [JobShape(1, 0), JobShape(3, 5), JobShape(4, 24)]
    blend = create_forecaster("blend")
    whole = backtest_series(series, blend, shapes, policy=policy, interruptible=interruptible)
    monkeypatch.setattr(bt, "_CHUNK_CELLS", 1)  # blocks of the minimum size
    blocks = backtest_series(series, blend, shapes, policy=policy, interruptible=interruptible)
    for a, b in zip(whole, blocks, strict=True):
        for key, value in a.to_dict().items():
            if isinstance(value, float):
                assert b.to_dict()[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
            else:
                assert b.to_dict()[key] == value, key


@pytest.mark.parametrize(("step_s", "zone"), [(3600.0, "DE"), (3600.0, "IN-WE"), (900.0, "AA")])
def test_blend_weekday_masks_reused_weekly_equal_the_direct_computation(
    step_s: float, zone: str
) -> None:
    from greenforge.schedule.forecast import (
        Blend,
        ForecastInput,
        _is_weekend,
        _same_phase,
        _standard_offset_s,
    )

    blend = Blend()
    horizon = round(28 * 3600 / step_s)
    need = blend.history_steps(horizon, step_s)
    rng = np.random.default_rng(4)
    values = rng.uniform(50, 500, need + 400)
    decisions = np.arange(need, values.size, 37)
    history = values[decisions[:, None] + np.arange(-need, 0)[None, :]]
    times: FloatArray = T0 + step_s * decisions.astype(np.float64)
    inp = ForecastInput(history, times, step_s, horizon, zone)
    lead = np.arange(horizon)
    profile = np.zeros((inp.n, horizon))
    # the definition: every one of the 35 days compared on its own
    offset_s = _standard_offset_s(zone)
    p = inp.period
    target = _is_weekend(inp.decision_times_s[:, None] + step_s * lead[None, :] + offset_s)
    acc = np.zeros((inp.n, horizon))
    count = np.zeros((inp.n, horizon))
    for d in range(blend.daytype_days):
        back = p * (lead // p + 1) + p * d - lead
        same = _is_weekend(inp.decision_times_s[:, None] - step_s * back[None, :] + offset_s)
        same = same == target
        acc += _same_phase(inp, lead, d) * same
        count += same
    expected = np.where(count > 0, acc / np.maximum(count, 1.0), profile)
    np.testing.assert_array_equal(blend._daytype_profile(inp, lead, profile), expected)
