"""Process attribution on NVIDIA GPUs: a GPU's energy is split by NVML's per-process use, and
the whole device stays charged where the split cannot be told."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from greenforge.config import Settings
from greenforge.hardware.cpuinfo import CpuInfo
from greenforge.meters import gpushare, nvidia
from greenforge.meters.model import ProcessTreeCpu
from greenforge.meters.select import select_meters

ME = os.getpid()


def visible_pids(pid: int) -> bool:
    return pid < 1_000_000  # test pids below this "exist" in our namespace


@pytest.mark.parametrize(
    ("usage", "share"),
    [
        ([(ME, 40.0)], 1.0),  # only the tree uses the GPU
        ([(ME, 30.0), (4242, 10.0)], 0.75),  # split by SM utilisation
        ([(4242, 50.0)], 0.0),  # someone else's job: not ours to pay
        ([(ME, 0.0), (4242, 0.0)], 0.5),  # no weights: each process once
        ([], None),  # nobody listed (idle, or not reported): the whole device
        ([(5_000_000, 80.0)], None),  # host pids from inside a container: cannot tell
    ],
)
def test_the_gpu_share_of_a_tree(usage: list[tuple[int, float]], share: float | None) -> None:
    assert gpushare.gpu_share({ME}, usage, visible_pids) == share


class Nvml:
    """The NVML calls the NVIDIA meter and the GPU share use, for one GPU with a counter."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        self.energy_mj = 0
        self.samples: list[Any] = []
        self.running: list[Any] = []
        self.utilisation_supported = True

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"handle-{index}"

    def nvmlDeviceGetUUID(self, handle: str) -> str:
        return "GPU-0000"

    def nvmlDeviceGetName(self, handle: str) -> str:
        return "Fake GPU"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        return 100_000

    def nvmlDeviceGetProcessUtilization(self, handle: str, since_us: int) -> list[Any]:
        if not self.utilisation_supported:
            raise self.NVMLError("Not Supported")
        return [s for s in self.samples if s.timeStamp > since_us]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: str) -> list[Any]:
        return self.running


def sample(pid: int, sm: float, t_us: int) -> Any:
    return SimpleNamespace(pid=pid, smUtil=sm, timeStamp=t_us)


def shared_meter(nvml: Nvml) -> gpushare.GpuShareMeter:
    inner = nvidia.NvidiaMeter(nvml=nvml, env={}, background=False)
    meter = gpushare.GpuShareMeter(inner, lambda: {ME}, visible_pids)
    meter.start()
    return meter


def test_each_interval_is_split_by_the_utilisation_seen_in_it() -> None:
    nvml = Nvml()
    meter = shared_meter(nvml)
    nvml.energy_mj = 100_000  # 100 J
    nvml.samples = [sample(ME, 60.0, 1), sample(4242, 20.0, 2)]
    [first] = meter.read()
    nvml.energy_mj = 150_000  # 50 J more; the old samples must not count again
    nvml.samples.append(sample(4242, 50.0, 3))
    [second] = meter.read()
    meter.close()

    assert first.energy_j == pytest.approx(75.0)
    assert first.method == "nvml-energy+gpu-share"
    assert first.low_j <= first.energy_j <= first.high_j
    assert second.energy_j == pytest.approx(0.0)


def test_without_utilisation_samples_the_running_processes_split_it_by_memory() -> None:
    nvml = Nvml()
    nvml.utilisation_supported = False
    nvml.running = [
        SimpleNamespace(pid=ME, usedGpuMemory=3 * 2**30),
        SimpleNamespace(pid=4242, usedGpuMemory=2**30),
    ]
    meter = shared_meter(nvml)
    nvml.energy_mj = 40_000
    [reading] = meter.read()
    meter.close()
    assert reading.energy_j == pytest.approx(30.0)


def test_when_nvml_lists_nobody_the_whole_device_is_charged() -> None:
    nvml = Nvml()
    meter = shared_meter(nvml)
    nvml.energy_mj = 10_000
    [reading] = meter.read()
    meter.close()
    assert reading.energy_j == pytest.approx(10.0)
    assert reading.method == "nvml-energy"  # unscaled, and it says so


def test_select_meters_scopes_nvidia_to_the_tree_unless_distributed(tmp_path: Path) -> None:
    vm = CpuInfo("AMD EPYC", logical_cpus=2, hypervisor=True)
    tree = ProcessTreeCpu(ME)

    def nvidia_meter(settings: Settings, env: dict[str, str]) -> Any:
        sel = select_meters(
            settings, rapl_root=tmp_path, nvml=Nvml(), env=env, cpuinfo=vm, tree=tree
        )
        [meter] = [m for m in sel.meters if m.name == "nvidia"]
        return meter

    assert isinstance(nvidia_meter(Settings(attribution="process"), {}), gpushare.GpuShareMeter)
    assert isinstance(nvidia_meter(Settings(attribution="machine"), {}), nvidia.NvidiaMeter)
    ranks = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}
    assert isinstance(nvidia_meter(Settings(attribution="process"), ranks), nvidia.NvidiaMeter)
