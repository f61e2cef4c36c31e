"""The tracker with ``pue=`` a PUE series: CO2e charges PUE(t) interval by interval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from greenforge.config import Settings, load_settings
from greenforge.errors import ConfigError
from greenforge.pue import PueSeries
from greenforge.testing import FakeMeter, ManualClock, StaticIntensity
from greenforge.tracker import Tracker, track
from greenforge.units import J_PER_KWH

NEVER_S = 3600.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env={}, home=tmp_path / "home", interval_s=0.02, flush_interval_s=0.05)


def test_co2e_uses_pue_over_time_and_reports_the_energy_weighted_pue(settings: Settings) -> None:
    clock = ManualClock()
    t0 = clock()
    pue = PueSeries(np.array([t0, t0 + 1800.0]), np.array([1.1, 1.5]), 1800.0, "site", "file")
    tracker = Tracker(settings, zone="DE", meters=[FakeMeter(100.0, clock=clock)],
                      provider=StaticIntensity(400.0), interval_s=NEVER_S, clock=clock, pue=pue)  # fmt: skip
    tracker.start()
    with tracker.window("cool"):
        clock.advance(1800.0)
    with tracker.window("warm"):
        clock.advance(1800.0)
    record = tracker.stop()

    kwh = 100.0 * 1800.0 / J_PER_KWH
    assert record.co2e_g == pytest.approx(kwh * 400.0 * 1.1 + kwh * 400.0 * 1.5)
    assert [w.co2e_g for w in record.windows] == pytest.approx(
        [kwh * 400.0 * 1.1, kwh * 400.0 * 1.5]
    )
    assert record.emissions is not None
    assert record.emissions.pue == pytest.approx(1.3)
    assert record.emissions.pue_source == "PUE(t) site"
    assert record.emissions.mean_intensity_g_per_kwh == pytest.approx(400.0)


def test_a_number_overrides_the_settings_pue(settings: Settings) -> None:
    clock = ManualClock()
    with track(settings, zone="DE", meters=[FakeMeter(10.0, clock=clock)], clock=clock,
               provider=StaticIntensity(200.0), interval_s=NEVER_S, pue=1.25) as run:  # fmt: skip
        clock.advance(360.0)

    assert run.record is not None
    assert run.record.emissions is not None
    assert run.record.emissions.pue == 1.25
    assert run.record.co2e_g == pytest.approx(3600.0 / J_PER_KWH * 1.25 * 200.0)


def test_an_implausible_number_is_refused_before_the_run(settings: Settings) -> None:
    tracker = Tracker(settings, zone="DE", meters=[FakeMeter(10.0)],
                      provider=StaticIntensity(200.0), pue=0.5)  # fmt: skip
    with pytest.raises(ConfigError, match=r"pue=0\.5"):
        tracker.start()
