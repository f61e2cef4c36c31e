"""AMD GPU meter against a fake ``amdsmi`` module."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

from greenforge.errors import MeterError
from greenforge.meters import amd


class FakeAmdSmiError(Exception):
    pass


class FakeAmdGpu:
    def __init__(self, uuid: str, counts: int | None, resolution_uj: float = 15.3) -> None:
        self.uuid = uuid
        self.counts = counts  # None: not supported (VM guest)
        self.resolution_uj = resolution_uj


class FakeAmdSmi:
    """amdsmi_init / shut_down / get_processor_handles / get_gpu_device_uuid / energy count."""

    AmdSmiException = FakeAmdSmiError

    def __init__(self, gpus: list[FakeAmdGpu], old_key: bool = False) -> None:
        self.gpus = gpus
        self.old_key = old_key
        self.initialised = False

    def amdsmi_init(self) -> None:
        self.initialised = True

    def amdsmi_shut_down(self) -> None:
        self.initialised = False

    def amdsmi_get_processor_handles(self) -> list[FakeAmdGpu]:
        return self.gpus

    def amdsmi_get_gpu_device_uuid(self, handle: FakeAmdGpu) -> str:
        return handle.uuid

    def amdsmi_get_energy_count(self, handle: FakeAmdGpu) -> dict[str, Any]:
        if handle.counts is None:
            raise FakeAmdSmiError("AMDSMI_STATUS_NOT_SUPPORTED")
        key = "power" if self.old_key else "energy_accumulator"
        return {key: handle.counts, "counter_resolution": handle.resolution_uj, "timestamp": 0}


def test_energy_counter_deltas_use_the_counter_resolution() -> None:
    gpus = [FakeAmdGpu("a", 1000), FakeAmdGpu("b", 0, resolution_uj=1.0)]
    meter = amd.AmdMeter(amdsmi=FakeAmdSmi(gpus), env={})
    meter.start()
    gpus[0].counts = 1000 + 1_000_000  # x 15.3 uJ = 15.3 J
    gpus[1].counts = 2_000_000  # x 1 uJ = 2 J

    readings = {r.component: r for r in meter.read()}

    assert readings["gpu:0"].energy_j == pytest.approx(15.3)
    assert readings["gpu:1"].energy_j == pytest.approx(2.0)
    assert {r.method for r in readings.values()} == {"amdsmi-energy"}
    meter.close()


def test_older_amdsmi_key_name_is_understood() -> None:
    assert amd.energy_j({"power": 1_000_000, "counter_resolution": 2.0}) == pytest.approx(2.0)


def test_gpus_without_a_counter_are_skipped_with_a_reason() -> None:
    gpus = [FakeAmdGpu("a", None), FakeAmdGpu("b", 0)]
    meter = amd.AmdMeter(amdsmi=FakeAmdSmi(gpus, old_key=True), env={})
    meter.start()

    assert meter.components == ["gpu:1"]
    assert "gpu:0" in meter.skipped[0]


def test_visible_devices_are_honoured() -> None:
    gpus = [FakeAmdGpu("a", 0), FakeAmdGpu("b", 0)]
    meter = amd.AmdMeter(amdsmi=FakeAmdSmi(gpus), env={"HIP_VISIBLE_DEVICES": "1"})
    meter.start()

    assert meter.components == ["gpu:1"]


def test_no_measurable_gpu_is_a_meter_error_and_the_probe_explains() -> None:
    fake = FakeAmdSmi([FakeAmdGpu("a", None)])
    with pytest.raises(MeterError, match="not supported"):
        amd.AmdMeter(amdsmi=fake, env={}).start()
    assert not fake.initialised
    assert not amd.probe(amdsmi=fake, env={}).available


def test_probe_when_amdsmi_is_missing_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # import amdsmi -> ImportError

    availability = amd.probe(env={})

    assert not availability.available
    assert "greenforge[amd]" in availability.how_to_enable


class FakePoweredAmdSmi(FakeAmdSmi):
    """Adds amdsmi_get_power_info for GPUs whose energy counter is unsupported."""

    def __init__(self, gpus: list[FakeAmdGpu], watts: dict[str, object]) -> None:
        super().__init__(gpus)
        self.watts = watts
        self.power_calls = 0

    def amdsmi_get_power_info(self, handle: FakeAmdGpu) -> dict[str, object]:
        self.power_calls += 1
        return {"current_socket_power": self.watts[handle.uuid], "average_socket_power": "N/A"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_power_is_integrated_where_the_counter_is_unsupported() -> None:
    clock = Clock()
    fake = FakePoweredAmdSmi([FakeAmdGpu("a", None)], {"a": 100})
    meter = amd.AmdMeter(amdsmi=fake, env={}, clock=clock, background=False)
    meter.start()
    clock.now = 2.0
    fake.watts["a"] = 300  # trapezoid: (100 + 300) / 2 W x 2 s = 400 J

    (reading,) = meter.read()

    assert reading.method == "amdsmi-power"
    assert reading.energy_j == pytest.approx(400.0)
    meter.close()


def test_power_path_samples_in_a_background_thread() -> None:
    fake = FakePoweredAmdSmi([FakeAmdGpu("a", None)], {"a": 50.0})
    meter = amd.AmdMeter(amdsmi=fake, env={}, sample_interval_s=0.01)
    meter.start()
    waited = threading.Event()
    for _ in range(3000):  # bounded: at most ~30 s if the sampler were broken
        if fake.power_calls >= 5:
            break
        waited.wait(0.01)
    meter.close()

    assert fake.power_calls >= 5


def test_power_reading_skips_unavailable_values() -> None:
    assert amd.power_w({"current_socket_power": "N/A", "average_socket_power": 42}) == 42.0
    with pytest.raises(MeterError, match="no power reading"):
        amd.power_w({"current_socket_power": "N/A"})
