"""Specification of the forge measurement adapter."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from greenforge.config import Settings
from greenforge.errors import ConfigError
from greenforge.forge.measure import Measurement, deployment_intensity, measure, total
from greenforge.meters.base import Scope
from greenforge.records import EnergyReading
from greenforge.testing import FakeMeter


def test_measure_returns_the_result_and_a_measurement_with_provenance() -> None:
    t = [0.0]

    def clock() -> float:
        return t[0]

    def work() -> str:
        t[0] += 2.0
        return "done"

    result, m = measure(
        work,
        Settings(zone="DE"),
        meters=[FakeMeter(50.0, clock=clock)],
        intensity_g_per_kwh=360.0,
        intensity_source="static:test",
    )

    assert result == "done"
    assert m.method == "fake"
    assert m.energy_j == pytest.approx(100.0)
    assert m.co2e_g == pytest.approx(100.0 / 3.6e6 * 360.0)
    assert "static" in m.intensity_source


class BrokenMeter:
    name = "broken"
    scope: Scope = "node"

    def start(self) -> None:
        pass

    def read(self) -> Sequence[EnergyReading]:
        raise RuntimeError("sensor unplugged")

    def close(self) -> None:
        pass


def test_a_failing_meter_never_fails_the_workload() -> None:
    with pytest.warns(RuntimeWarning, match="unmeasured"):
        result, m = measure(
            lambda: 42, Settings(zone="DE"), meters=[BrokenMeter()], intensity_g_per_kwh=100.0
        )

    assert result == 42
    assert m.energy_j == 0.0
    assert m.method.startswith("unmeasured")


class UnstartableMeter(BrokenMeter):
    def start(self) -> None:
        raise RuntimeError("no permission")


def test_a_meter_that_cannot_start_never_fails_the_workload() -> None:
    with pytest.warns(RuntimeWarning, match="unmeasured"):
        result, m = measure(
            lambda: "ok",
            Settings(zone="DE"),
            meters=[UnstartableMeter()],
            intensity_g_per_kwh=100.0,
        )

    assert result == "ok"
    assert m.energy_j == 0.0
    assert m.method.startswith("unmeasured")


def test_total_sums_energy_and_co2e_and_joins_methods() -> None:
    a = Measurement(10.0, 9.0, 11.0, 1.0, 0.5, "rapl", "x", 180.0)
    b = Measurement(5.0, 4.0, 6.0, 2.0, 0.25, "fake", "x", 180.0)

    t = total([a, b])

    assert (t.energy_j, t.low_j, t.high_j, t.duration_s, t.co2e_g) == (15.0, 13.0, 17.0, 3.0, 0.75)
    assert t.method == "fake+rapl"


def test_deployment_intensity_comes_from_the_grid_chain() -> None:
    value, source = deployment_intensity(Settings(), "DE")

    assert 50 < value < 1500
    assert "DE" in source


def test_no_deployment_zone_is_an_error_with_guidance(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "GOOGLE_CLOUD_REGION",
        "CLOUDSDK_COMPUTE_REGION",
        "FUNCTION_REGION",
        "REGION_NAME",
        "AZURE_REGION",
        "GREENFORGE_ZONE",
    ):
        monkeypatch.delenv(var, raising=False)

    with pytest.raises(ConfigError, match="zone"):
        deployment_intensity(Settings(), None)


@pytest.mark.parametrize(
    ("methods", "basis"),
    [
        ("rapl", "measured"),
        ("nvml-energy+rapl", "measured"),
        ("model:cpu-ccf-vcpu+model:ram-w-per-gb", "modelled"),
        ("model:ram-w-per-gb+rapl", "partly modelled"),
        ("model:cpu-tdp+unmeasured (tracker failed)", "partly modelled"),
        ("unmeasured (tracker failed)", "unmeasured"),
        ("", "unmeasured"),
    ],
)
def test_energy_basis_never_calls_a_modelled_figure_measured(methods: str, basis: str) -> None:
    from greenforge.forge.measure import energy_basis

    assert energy_basis(methods) == basis


def test_the_default_attribution_charges_this_process_with_its_source() -> None:
    def work() -> int:
        return sum(i * i for i in range(200_000))

    _, m = measure(work, Settings(zone="DE"), intensity_g_per_kwh=300.0)

    assert m.attribution in ("process", "counter-share")
    assert m.cpu_time_s > 0
    assert m.energy_j > 0
    assert m.low_j <= m.energy_j <= m.high_j
    assert m.intensity_source == "injected"


def test_an_unknown_intensity_is_an_error_not_zero_grams(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "GREENFORGE_ZONE", "GOOGLE_CLOUD_REGION"):
        monkeypatch.delenv(var, raising=False)

    with pytest.raises(ConfigError, match="zone"):
        measure(lambda: 1, Settings(), meters=[FakeMeter(5.0)])
