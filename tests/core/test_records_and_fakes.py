"""Records round-trip; the shipped fakes behave like meters and providers."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenforge.errors import DataError, ProviderError
from greenforge.grid.provider import IntensityProvider
from greenforge.meters.base import Meter
from greenforge.records import (
    ComponentTotal,
    Emissions,
    IntensityProvenance,
    Interval,
    RunRecord,
    run_record_from_dict,
    totals_by_component,
)
from greenforge.testing import FakeMeter, ReplayMeter, StaticIntensity
from greenforge.timeutil import utc_iso


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fake_meter_integrates_constant_power() -> None:
    clock = Clock()
    meter = FakeMeter({"cpu": 20.0, "ram": 5.0}, clock=clock)
    assert isinstance(meter, Meter)
    meter.start()
    clock.now = 2.0
    readings = {r.component: r.energy_j for r in meter.read()}
    assert readings == {"cpu": 40.0, "ram": 10.0}


def test_replay_meter_integrates_recorded_power(tmp_path: Path) -> None:
    csv_path = tmp_path / "power.csv"
    csv_path.write_text(
        "time_s,component,power_w\n0,cpu,10\n1,cpu,30\n0,gpu:0,100\n", encoding="utf-8"
    )
    clock = Clock()
    meter = ReplayMeter(csv_path, clock=clock)
    meter.start()
    clock.now = 2.0
    readings = {r.component: r.energy_j for r in meter.read()}
    assert readings == {"cpu": 40.0, "gpu:0": 200.0}
    clock.now = 3.0
    assert {r.component: r.energy_j for r in meter.read()} == {"cpu": 30.0, "gpu:0": 100.0}


def test_replay_meter_rejects_bad_csv(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("t,component,power\n", encoding="utf-8")
    with pytest.raises(DataError, match="time_s"):
        ReplayMeter(bad)
    neg = tmp_path / "neg.csv"
    neg.write_text("time_s,component,power_w\n0,cpu,-3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"neg\.csv:2"):
        ReplayMeter(neg)


def test_static_intensity_is_a_provider() -> None:
    provider = StaticIntensity({"DE": 300.0})
    assert isinstance(provider, IntensityProvider)
    series = provider.history("DE", 0.0, 3600.0)
    assert series.values_g_per_kwh.tolist() == [300.0]
    assert series.provenance().time_resolved is False
    with pytest.raises(ProviderError):
        provider.forecast("DE", 0.0, 1.0)


def test_run_record_round_trips_through_dict() -> None:
    record = RunRecord(
        id="abc",
        name="train",
        status="completed",
        started_s=1_700_000_000.0,
        ended_s=1_700_000_010.0,
        duration_s=10.0,
        components=(ComponentTotal("cpu", 100.0, 80.0, 120.0, "model:cpu-tdp"),),
        emissions=Emissions(
            co2e_g=0.01,
            low_g=0.008,
            high_g=0.012,
            pue=1.0,
            pue_source="default:local",
            intensity=IntensityProvenance("embedded:yearly-2024:DE", "DE"),
            mean_intensity_g_per_kwh=360.0,
        ),
    )
    data = record.to_dict()
    assert data["started_at"] == "2023-11-14T22:13:20.000Z"
    assert run_record_from_dict(data) == record
    assert set(record.summary_dict()) >= {
        "id",
        "status",
        "started_at",
        "duration_s",
        "energy_j",
        "co2e_g",
    }


def test_totals_by_component_sum_intervals() -> None:
    fake = FakeMeter({"cpu": 1.0})
    del fake
    from greenforge.records import EnergyReading

    intervals = [
        Interval(0, 1, (EnergyReading("cpu", 1.0, "rapl", 1.0, 1.0),)),
        Interval(1, 2, (EnergyReading("cpu", 2.0, "rapl", 1.5, 2.5),)),
    ]
    (total,) = totals_by_component(intervals)
    assert (total.energy_j, total.low_j, total.high_j, total.method) == (3.0, 2.5, 3.5, "rapl")


def test_utc_iso_has_z_suffix() -> None:
    assert utc_iso(0.0) == "1970-01-01T00:00:00.000Z"
