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
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from greenforge.errors import MeterError
from greenforge.meters.base import Availability, Scope, register_meter
from greenforge.records import EnergyReading
from greenforge.units import mj_to_j, mw_to_w

ENERGY_METHOD = "nvml-energy"
POWER_METHOD = "nvml-power"
REL_ERR = 0.05
"""NVML documents power readings as accurate to within +-5 % (board power)."""
DEFAULT_SAMPLE_INTERVAL_S = 0.05
MAX_SAMPLE_INTERVAL_S = 0.1  # >= 10 Hz
INSTALL_HINT = "pip install 'greenforge[nvidia]'"

Clock = Callable[[], float]


def parse_visible_devices(value: str | None, uuids: Sequence[str]) -> list[int]:
    """NVML indices selected by a ``CUDA_VISIBLE_DEVICES`` value, in CUDA order.

    ``None`` (unset) selects every GPU; an empty value selects none. Entries are indices or
    ``GPU-`` UUIDs (unique prefixes allowed); the list stops at the first entry that is invalid,
    out of range or ambiguous, as CUDA does. ``MIG-`` entries stop the list too (a MIG slice
    has no energy counter of its own).
    """
    if value is None:
        return list(range(len(uuids)))
    out: list[int] = []
    for raw in value.split(","):
        token = raw.strip()
        if not token:
            break
        if token.lstrip("-").isdigit():
            idx = int(token)
            if idx < 0 or idx >= len(uuids):
                break
        elif token.upper().startswith("GPU-"):
            hits = [i for i, u in enumerate(uuids) if u.lower().startswith(token.lower())]
            if len(hits) != 1:
                break
            idx = hits[0]
        else:
            break
        if idx in out:
            break
        out.append(idx)
    return out


def trapezoid_energy_j(times_s: Sequence[float], power_w: Sequence[float]) -> float:
    """Energy (J) of power samples by the trapezoid rule (times must not decrease)."""
    if len(times_s) != len(power_w):
        raise ValueError(f"times_s and power_w differ in length ({len(times_s)} != {len(power_w)})")
    total = 0.0
    for i in range(1, len(times_s)):
        dt = times_s[i] - times_s[i - 1]
        if dt < 0:
            raise ValueError(f"times_s decreases at index {i}: {times_s[i - 1]} -> {times_s[i]}")
        total += 0.5 * (power_w[i] + power_w[i - 1]) * dt
    return total


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
class _Gpu:
    index: int
    handle: Any
    name: str
    uuid: str
    method: str
    last_mj: int = 0
    last_t: float | None = None
    last_w: float = 0.0
    acc_j: float = 0.0


class NvidiaMeter:
    """Per-GPU energy from NVML (counter where supported, else integrated power)."""

    name = "nvidia"
    scope: Scope = "device"

    def __init__(
        self,
        nvml: Any | None = None,
        env: Mapping[str, str] | None = None,
        sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
        clock: Clock = time.monotonic,
        background: bool = True,
    ) -> None:
        if not (0 < sample_interval_s <= MAX_SAMPLE_INTERVAL_S):
            raise MeterError(
                f"bad sample_interval_s {sample_interval_s!r}: NVML power must be sampled at "
                f">= 10 Hz, so use 0 < interval <= {MAX_SAMPLE_INTERVAL_S} s."
            )
        self._nvml = nvml
        self._env = env
        self.sample_interval_s = sample_interval_s
        self._clock = clock
        self._background = background
        self.gpus: list[_Gpu] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._initialised = False
        self.errors: list[str] = []

    @property
    def components(self) -> list[str]:
        return [f"gpu:{g.index}" for g in self.gpus]

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
            gpu = _Gpu(idx, handle, name, uuids[idx], ENERGY_METHOD)
            try:
                gpu.last_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
            except nvml.NVMLError:
                gpu.method = POWER_METHOD
            gpus.append(gpu)
        with self._lock:
            self.gpus = gpus
        self.sample_once()
        if self._background and any(g.method == POWER_METHOD for g in gpus):
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="greenforge-nvml-power", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.sample_interval_s):
            self.sample_once()

    def sample_once(self) -> None:
        """Sample power of the power-integrated GPUs and add the trapezoid since the last one."""
        nvml: Any = self._nvml
        with self._lock:
            for g in self.gpus:
                if g.method != POWER_METHOD:
                    continue
                try:
                    power_w = float(mw_to_w(float(nvml.nvmlDeviceGetPowerUsage(g.handle))))
                except Exception as exc:  # NVMLError or a driver hiccup: keep going
                    self.errors.append(f"gpu:{g.index}: {exc}")
                    continue
                now = self._clock()
                if g.last_t is not None:
                    g.acc_j += trapezoid_energy_j([g.last_t, now], [g.last_w, power_w])
                g.last_t, g.last_w = now, power_w

    def read(self) -> Sequence[EnergyReading]:
        self.sample_once()
        out = []
        nvml: Any = self._nvml
        with self._lock:
            for g in self.gpus:
                comp = f"gpu:{g.index}"
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
                    out.append(EnergyReading.exact(comp, g.acc_j, POWER_METHOD, REL_ERR))
                    g.acc_j = 0.0
        return out

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
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
