"""NVIDIA GPU energy through NVML (``nvidia-ml-py``, module ``pynvml``, imported lazily).

Per GPU, the meter uses the total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ,
Volta and newer) -> ``method="nvml-energy"``; where the counter is not supported it samples
``nvmlDeviceGetPowerUsage`` (mW) in a background thread at >= 10 Hz (default 20 Hz) and
integrates with the trapezoid rule -> ``method="nvml-power"``.

Only the GPUs this process can see are measured: ``CUDA_VISIBLE_DEVICES`` is honoured in both
its index (``0,2``) and UUID (``GPU-8f1a...``, prefixes allowed) forms, with CUDA's rule that the
list ends at the first invalid entry. Components are ``gpu:<NVML index>`` (the physical index,
so ranks with different ``CUDA_VISIBLE_DEVICES`` never collide on one name).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from greenforge.errors import MeterError
from greenforge.meters.base import Availability, Scope, register_meter
from greenforge.meters.sampling import (
    DEFAULT_SAMPLE_INTERVAL_S,
    Clock,
    PowerSamplingMeter,
    SampledGpu,
    parse_visible_devices,
)
from greenforge.records import EnergyReading
from greenforge.units import mj_to_j, mw_to_w

ENERGY_METHOD = "nvml-energy"
POWER_METHOD = "nvml-power"
REL_ERR = 0.05
"""NVML documents power readings as accurate to within +-5 % (board power)."""
INSTALL_HINT = "pip install 'greenforge[nvidia]'"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def load_nvml() -> Any:
    """Import ``pynvml`` or raise MeterError naming the extra to install."""
    try:
        import pynvml
    except ImportError:
        raise MeterError(
            f"nvidia-ml-py is not installed, so NVIDIA GPUs cannot be measured: {INSTALL_HINT}"
        ) from None
    return pynvml


@dataclasses.dataclass
class _Gpu(SampledGpu):
    name: str
    uuid: str
    last_mj: int = 0


class NvidiaMeter(PowerSamplingMeter[_Gpu]):
    """Per-GPU energy from NVML (counter where supported, else integrated power)."""

    name = "nvidia"
    scope: Scope = "device"
    power_method = POWER_METHOD
    thread_name = "greenforge-nvml-power"

    def __init__(
        self,
        nvml: Any | None = None,
        env: Mapping[str, str] | None = None,
        sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
        clock: Clock = time.monotonic,
        background: bool = True,
    ) -> None:
        super().__init__(
            power_source="NVML power",
            sample_interval_s=sample_interval_s,
            clock=clock,
            background=background,
        )
        self._nvml = nvml
        self._env = env
        self._initialised = False

    def start(self) -> None:
        nvml = self._nvml if self._nvml is not None else load_nvml()
        self._nvml = nvml
        try:
            nvml.nvmlInit()
            self._initialised = True
            count = int(nvml.nvmlDeviceGetCount())
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in handles]
        except nvml.NVMLError as exc:
            self.close()
            raise MeterError(f"NVML unavailable ({exc}): is the NVIDIA driver installed?") from None
        env = os.environ if self._env is None else self._env
        visible = parse_visible_devices(env.get("CUDA_VISIBLE_DEVICES"), uuids)
        if not visible and "MIG-" in env.get("CUDA_VISIBLE_DEVICES", ""):
            self.close()
            raise MeterError(
                "CUDA_VISIBLE_DEVICES selects MIG slices, and NVML has no energy counter per "
                "MIG slice: GPU energy is not measured (the whole GPU's energy would over-count "
                "a shared device). Measure on a full GPU, or account the GPU separately."
            )
        if not visible:
            self.close()
            raise MeterError(
                f"no NVIDIA GPU visible (found {count}, CUDA_VISIBLE_DEVICES="
                f"{env.get('CUDA_VISIBLE_DEVICES')!r})"
            )
        gpus = []
        for idx in visible:
            handle = handles[idx]
            try:
                name = _text(nvml.nvmlDeviceGetName(handle))
            except nvml.NVMLError:
                name = "NVIDIA GPU"
            gpu = _Gpu(idx, handle, ENERGY_METHOD, name, uuids[idx])
            try:
                gpu.last_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
            except nvml.NVMLError:
                gpu.method = POWER_METHOD
            gpus.append(gpu)
        self._start_sampling(gpus)

    def _read_power_w(self, gpu: _Gpu) -> float:
        nvml: Any = self._nvml
        return float(mw_to_w(float(nvml.nvmlDeviceGetPowerUsage(gpu.handle))))

    def read(self) -> Sequence[EnergyReading]:
        self.sample_once()
        out = []
        nvml: Any = self._nvml
        with self._lock:
            for g in self.gpus:
                comp = g.component
                if g.method == ENERGY_METHOD:
                    try:
                        now_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(g.handle))
                    except Exception as exc:
                        self.errors.append(f"{comp}: {exc}")
                        continue
                    delta_j = float(mj_to_j(float(max(now_mj - g.last_mj, 0))))
                    g.last_mj = now_mj
                    out.append(EnergyReading.exact(comp, delta_j, ENERGY_METHOD, REL_ERR))
                else:
                    energy_j = self._take_integrated_j(g)
                    out.append(EnergyReading.exact(comp, energy_j, POWER_METHOD, REL_ERR))
        return out

    def close(self) -> None:
        self._stop_sampling()
        if self._initialised and self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception as exc:
                self.errors.append(f"nvmlShutdown: {exc}")
            self._initialised = False


def _factory(**kwargs: Any) -> NvidiaMeter:
    return NvidiaMeter(**kwargs)


def _driver_present() -> bool:
    """False only where we can tell cheaply that no NVIDIA driver is loaded (Linux)."""
    if not sys.platform.startswith("linux"):
        return True
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidiactl").exists()


def probe(nvml: Any | None = None, env: Mapping[str, str] | None = None) -> Availability:
    """Is an NVIDIA GPU measurable here? Lists each visible GPU and its method."""
    if nvml is None and not _driver_present():
        # Cheap check first: importing pynvml and initialising NVML costs ~30 ms at tracker start.
        return Availability(
            "nvidia",
            False,
            "no NVIDIA driver found (/proc/driver/nvidia and /dev/nvidiactl are absent)",
            f"install the NVIDIA driver (provides libnvidia-ml.so), then {INSTALL_HINT}",
        )
    try:
        meter = NvidiaMeter(nvml=nvml, env=env, background=False)
        meter.start()
    except MeterError as exc:
        text = str(exc)
        if "not installed" in text:
            text, how = "nvidia-ml-py (module pynvml) is not installed", INSTALL_HINT
        elif "CUDA_VISIBLE_DEVICES" in text:
            how = "check CUDA_VISIBLE_DEVICES"
        else:
            how = f"install the NVIDIA driver (provides libnvidia-ml.so), then {INSTALL_HINT}"
        return Availability("nvidia", False, text, how)
    except Exception as exc:
        return Availability("nvidia", False, f"NVML probe failed: {exc}")
    try:
        detail = ", ".join(f"gpu:{g.index} {g.name} ({g.method})" for g in meter.gpus)
    finally:
        meter.close()
    return Availability("nvidia", True, detail)


register_meter("nvidia", _factory, probe)
