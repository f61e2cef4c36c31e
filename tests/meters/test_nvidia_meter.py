"""NVIDIA meter against a fake NVML (the few pynvml functions the meter uses)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.config import Settings
from greenforge.errors import MeterError
from greenforge.hardware.cpuinfo import CpuInfo
from greenforge.meters import nvidia
from greenforge.meters.sampling import parse_visible_devices, trapezoid_energy_j
from greenforge.meters.select import select_meters
from greenforge.units import mj_to_j, mw_to_w


class FakeNVMLError(Exception):
    pass


class FakeGpu:
    def __init__(self, uuid: str, energy_mj: int | None, power_mw: float = 100_000.0) -> None:
        self.uuid = uuid
        self.energy_mj = energy_mj  # None: counter not supported (pre-Volta)
        self.power_mw = power_mw


class FakeNVML:
    """Implements nvmlInit/Shutdown, device count/handles/UUID/name, energy and power."""

    NVMLError = FakeNVMLError

    def __init__(self, gpus: Sequence[FakeGpu], init_fails: bool = False) -> None:
        self.gpus = list(gpus)
        self.init_fails = init_fails
        self.initialised = 0
        self.power_calls = 0
        self.lock = threading.Lock()

    def nvmlInit(self) -> None:
        if self.init_fails:
            raise FakeNVMLError("NVML Shared Library Not Found")
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> bytes:
        return handle.uuid.encode()  # older pynvml returns bytes

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str:
        return "Fake H100"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeGpu) -> int:
        if handle.energy_mj is None:
            raise FakeNVMLError("Not Supported")
        return handle.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> float:
        with self.lock:
            self.power_calls += 1
        return handle.power_mw


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


UUIDS = ["GPU-aaaa1111-0000", "GPU-bbbb2222-0000", "GPU-cccc3333-0000"]


def test_energy_counter_gives_per_gpu_deltas_in_joules() -> None:
    gpus = [FakeGpu(UUIDS[0], 1_000_000), FakeGpu(UUIDS[1], 5_000_000)]
    meter = nvidia.NvidiaMeter(nvml=FakeNVML(gpus), env={}, background=False)
    meter.start()
    gpus[0].energy_mj = 1_250_000  # +250 J
    gpus[1].energy_mj = 5_001_500  # +1.5 J

    readings = {r.component: r for r in meter.read()}

    assert readings["gpu:0"].energy_j == pytest.approx(250.0)
    assert readings["gpu:1"].energy_j == pytest.approx(1.5)
    assert {r.method for r in readings.values()} == {"nvml-energy"}
    assert readings["gpu:0"].low_j < 250.0 < readings["gpu:0"].high_j
    meter.close()


def test_power_is_integrated_by_trapezoid_where_the_counter_is_unsupported() -> None:
    gpu = FakeGpu(UUIDS[0], None, power_mw=100_000.0)
    clock = Clock()
    fake = FakeNVML([gpu])
    meter = nvidia.NvidiaMeter(nvml=fake, env={}, clock=clock, background=False)
    meter.start()  # first sample: 100 W at t=100
    clock.now = 101.0
    gpu.power_mw = 300_000.0
    meter.sample_once()  # (100 + 300) / 2 W x 1 s = 200 J
    clock.now = 103.0

    (reading,) = meter.read()  # read samples again: 300 W x 2 s = 600 J

    assert reading.component == "gpu:0"
    assert reading.method == "nvml-power"
    assert reading.energy_j == pytest.approx(800.0)
    assert meter.read()[0].energy_j == 0.0  # no time passed since the last read
    meter.close()
    assert fake.initialised == 0


def test_power_path_samples_in_a_background_thread() -> None:
    fake = FakeNVML([FakeGpu(UUIDS[0], None)])
    meter = nvidia.NvidiaMeter(nvml=fake, env={}, sample_interval_s=0.01)
    meter.start()
    waited = threading.Event()
    for _ in range(3000):  # bounded: at most ~30 s if the sampler were broken
        if fake.power_calls >= 5:
            break
        waited.wait(0.01)
    meter.close()

    assert fake.power_calls >= 5


def test_mixed_gpus_use_the_best_method_each() -> None:
    fake = FakeNVML([FakeGpu(UUIDS[0], 0), FakeGpu(UUIDS[1], None)])
    meter = nvidia.NvidiaMeter(nvml=fake, env={}, background=False)
    meter.start()

    methods = {r.component: r.method for r in meter.read()}

    assert methods == {"gpu:0": "nvml-energy", "gpu:1": "nvml-power"}
    meter.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, [0, 1, 2]),
        ("", []),
        ("2,0", [2, 0]),
        ("1,7,0", [1]),  # CUDA stops at the first invalid entry
        ("-1", []),
        ("GPU-cccc", [2]),
        ("GPU-bbbb2222-0000,0", [1, 0]),
        ("GPU-", []),  # ambiguous prefix
        ("MIG-1234", []),
        ("0,0", [0]),
    ],
)
def test_cuda_visible_devices_selects_gpus_by_index_and_uuid(
    value: str | None, expected: list[int]
) -> None:
    assert parse_visible_devices(value, UUIDS) == expected


def test_meter_measures_only_visible_gpus_named_by_physical_index() -> None:
    gpus = [FakeGpu(u, 0) for u in UUIDS]
    meter = nvidia.NvidiaMeter(
        nvml=FakeNVML(gpus), env={"CUDA_VISIBLE_DEVICES": "GPU-cccc3333"}, background=False
    )
    meter.start()
    gpus[2].energy_mj = 10_000
    gpus[0].energy_mj = 99_000

    readings = meter.read()

    assert [(r.component, r.energy_j) for r in readings] == [("gpu:2", 10.0)]
    meter.close()


def test_no_visible_gpu_is_a_meter_error() -> None:
    meter = nvidia.NvidiaMeter(
        nvml=FakeNVML([FakeGpu(UUIDS[0], 0)]), env={"CUDA_VISIBLE_DEVICES": ""}
    )
    with pytest.raises(MeterError, match="CUDA_VISIBLE_DEVICES"):
        meter.start()


def test_missing_driver_is_reported_with_how_to_enable() -> None:
    availability = nvidia.probe(nvml=FakeNVML([], init_fails=True), env={})

    assert not availability.available
    assert "driver" in availability.detail
    assert "greenforge[nvidia]" in availability.how_to_enable


def test_missing_nvidia_ml_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    monkeypatch.setattr(nvidia, "_driver_present", lambda: True)  # a machine with a driver

    availability = nvidia.probe(env={})

    assert not availability.available
    assert "not installed" in availability.detail
    assert availability.how_to_enable == "pip install 'greenforge[nvidia]'"


def test_probe_lists_gpus_and_methods() -> None:
    availability = nvidia.probe(nvml=FakeNVML([FakeGpu(UUIDS[0], 0)]), env={})

    assert availability.available
    assert "gpu:0" in availability.detail
    assert "nvml-energy" in availability.detail


def test_sampling_slower_than_10_hz_is_refused() -> None:
    with pytest.raises(MeterError, match="10 Hz"):
        nvidia.NvidiaMeter(nvml=FakeNVML([]), sample_interval_s=0.5)


def test_a_failing_gpu_mid_run_does_not_raise() -> None:
    gpu = FakeGpu(UUIDS[0], 0)
    meter = nvidia.NvidiaMeter(nvml=FakeNVML([gpu]), env={}, background=False)
    meter.start()
    gpu.energy_mj = None  # the driver starts failing

    assert meter.read() == []
    assert meter.errors


@given(
    power_w=st.lists(st.floats(min_value=0, max_value=2000), min_size=1, max_size=30),
    step_s=st.floats(min_value=0.001, max_value=10),
)
def test_trapezoid_of_constant_steps_lies_between_min_and_max_power(
    power_w: list[float], step_s: float
) -> None:
    times = [i * step_s for i in range(len(power_w))]
    duration = times[-1]

    energy = trapezoid_energy_j(times, power_w)

    assert min(power_w) * duration - 1e-6 <= energy <= max(power_w) * duration + 1e-6


@given(
    power_w=st.floats(min_value=0, max_value=2000),
    times=st.lists(st.floats(min_value=0, max_value=1e5), min_size=2, max_size=20),
)
def test_trapezoid_of_constant_power_is_power_times_duration(
    power_w: float, times: list[float]
) -> None:
    times.sort()
    energy = trapezoid_energy_j(times, [power_w] * len(times))
    assert energy == pytest.approx(power_w * (times[-1] - times[0]), rel=1e-9, abs=1e-6)


def test_trapezoid_rejects_time_going_backwards() -> None:
    with pytest.raises(ValueError, match="decreases"):
        trapezoid_energy_j([0.0, 2.0, 1.0], [1.0, 1.0, 1.0])


@given(st.floats(min_value=0, max_value=1e12))
def test_nvml_unit_conversions_are_exact_scalings(value: float) -> None:
    assert mj_to_j(value) == pytest.approx(value / 1000.0)
    assert mw_to_w(value) == pytest.approx(value / 1000.0)


def test_select_meters_adds_the_visible_nvidia_gpus(tmp_path: Path) -> None:
    nvml = FakeNVML([FakeGpu(UUIDS[0], 0), FakeGpu(UUIDS[1], 0)])
    vm = CpuInfo("AMD EPYC", logical_cpus=2, hypervisor=True)

    sel = select_meters(
        Settings(), rapl_root=tmp_path, nvml=nvml, env={"CUDA_VISIBLE_DEVICES": "1"}, cpuinfo=vm
    )

    assert sel.names == ["model-cpu", "nvidia", "model-ram"]
    (reason,) = [r for r in sel.reasons if r.startswith("nvidia:")]
    assert "gpu:1" in reason
    assert "gpu:0" not in reason


def test_mig_slices_are_refused_with_an_explanation() -> None:
    meter = nvidia.NvidiaMeter(
        nvml=FakeNVML([FakeGpu(UUIDS[0], 0)]),
        env={"CUDA_VISIBLE_DEVICES": "MIG-4f1b2c3d-0000"},
    )
    with pytest.raises(MeterError, match="MIG"):
        meter.start()


def test_no_driver_is_reported_without_importing_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvidia, "_driver_present", lambda: False)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # importing it would fail loudly

    availability = nvidia.probe(env={})

    assert not availability.available
    assert "no NVIDIA driver" in availability.detail
    assert "greenforge[nvidia]" in availability.how_to_enable
