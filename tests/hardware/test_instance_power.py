"""A cloud instance type sets the modelled RAM (the instance's memory, not the host's) and the
GPU power of GPU instances (model and count from the catalog)."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenforge.config import Settings
from greenforge.errors import ConfigError
from greenforge.hardware import catalog
from greenforge.hardware.cpuinfo import CpuInfo
from greenforge.meters.model import ModelGpuMeter, ModelRamMeter, probe_ram
from greenforge.meters.select import select_meters
from greenforge.testing import ManualClock

VM = CpuInfo("AMD EPYC", "AuthenticAMD", 26, 2, 1, logical_cpus=2, hypervisor=True)
GIB = 2**30


class NoGpuNVML:
    """An NVML whose library is missing, as on a machine without the NVIDIA driver."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self) -> None:
        raise self.NVMLError("NVML Shared Library Not Found")


class OneGpuNVML:
    """An NVML that sees one GPU with an energy counter."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return "GPU-aaaa1111-0000"

    def nvmlDeviceGetName(self, handle: int) -> str:
        return "NVIDIA A100-SXM4-40GB"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        return 1_000_000

    def nvmlDeviceGetPowerUsage(self, handle: int) -> float:
        return 100_000.0


def machine(**kwargs: object) -> Settings:
    return Settings(attribution="machine", **kwargs)  # type: ignore[arg-type]


def test_ram_of_a_cloud_instance_is_the_instance_s_memory_not_the_host_s() -> None:
    clock = ManualClock()
    meter = ModelRamMeter(
        machine(cloud_provider="aws", cloud_instance_type="m5.large"), clock=clock
    )
    meter.start()
    clock.advance(10.0)

    (reading,) = meter.read()

    assert reading.energy_j == pytest.approx(0.375 * 8 * GIB / 1e9 * 10.0)
    assert reading.low_j == pytest.approx(0.25 * 8 * GIB / 1e9 * 10.0)
    assert "8 GiB of aws m5.large" in meter.provenance


def test_without_an_instance_type_ram_is_the_installed_memory() -> None:
    meter = ModelRamMeter(machine())
    assert "installed memory" in meter.provenance


def test_process_attribution_keeps_the_tree_s_resident_memory() -> None:
    meter = ModelRamMeter(
        Settings(cloud_instance_type="m5.large"), memory_bytes=lambda: 1e9, clock=ManualClock()
    )
    assert "process tree" in meter.provenance


def test_doctor_shows_the_instance_memory() -> None:
    detail = probe_ram(machine(cloud_instance_type="m5.large")).detail
    assert "8 GiB of aws m5.large" in detail
    assert "= 3.2 W" in detail  # 0.375 W/GB x 8.59 GB


def test_a_gpu_instance_without_a_gpu_meter_gets_modelled_gpu_power(tmp_path: Path) -> None:
    settings = machine(cloud_provider="aws", cloud_instance_type="p4d.24xlarge")

    sel = select_meters(settings, rapl_root=tmp_path, nvml=NoGpuNVML(), env={}, cpuinfo=VM)

    assert sel.names == ["model-cpu", "model-gpu", "model-ram"]
    gpu = sel.meters[1]
    assert isinstance(gpu, ModelGpuMeter)
    (line,) = [r for r in sel.reasons if r.startswith("model-gpu:")]
    assert "8 x A100-40GB (400 W TDP)" in line
    assert any("modelled from TDP" in w for w in sel.warnings)
    ram = sel.meters[2]
    assert "1152 GiB of aws p4d.24xlarge" in ram.provenance  # type: ignore[attr-defined]


def test_modelled_gpu_energy_is_half_tdp_with_idle_to_full_bounds() -> None:
    model = catalog.instance_gpu_power(catalog.cloud_instance("aws", "p4d.24xlarge"))
    assert model is not None
    clock = ManualClock()
    meter = ModelGpuMeter(model, clock=clock)
    meter.start()
    clock.advance(3600.0)

    (reading,) = meter.read()

    assert reading.component == "gpu"
    assert reading.method == "model:gpu-tdp"
    assert reading.energy_j == pytest.approx(8 * 400 * 0.5 * 3600)
    assert reading.low_j == pytest.approx(8 * 360 * 0.1 * 3600)
    assert reading.high_j == pytest.approx(8 * 440 * 3600)


def test_a_measured_gpu_replaces_the_model(tmp_path: Path) -> None:
    settings = machine(cloud_provider="aws", cloud_instance_type="p4d.24xlarge")

    sel = select_meters(settings, rapl_root=tmp_path, nvml=OneGpuNVML(), env={}, cpuinfo=VM)

    assert "model-gpu" not in sel.names
    assert "nvidia" in sel.names
    (line,) = [r for r in sel.reasons if r.startswith("model-gpu:")]
    assert "skipped" in line


def test_instances_without_gpus_get_no_gpu_meter(tmp_path: Path) -> None:
    sel = select_meters(
        machine(cloud_instance_type="m5.large"),
        rapl_root=tmp_path,
        nvml=NoGpuNVML(),
        env={},
        cpuinfo=VM,
    )
    assert sel.names == ["model-cpu", "model-ram"]
    assert not [r for r in sel.reasons if r.startswith("model-gpu:")]


def test_an_estimated_accelerator_power_has_wider_bounds() -> None:
    published = catalog.gpu_spec("H100")
    estimated = catalog.gpu_spec("TPU-v5e")
    assert not published.estimate
    assert estimated.estimate
    assert published.tdp_high_w / published.tdp_w == pytest.approx(1.1)
    assert estimated.tdp_high_w / estimated.tdp_w == pytest.approx(1.5)


def test_an_unknown_gpu_model_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known models are .*H100"):
        catalog.gpu_spec("H1000")
