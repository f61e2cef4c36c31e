"""AMD GPU energy through AMD SMI (``amdsmi`` Python bindings shipped with ROCm, lazy import).

Uses the accumulated energy counter ``amdsmi_get_energy_count(handle)``, which returns a dict
with ``energy_accumulator`` (older releases: ``power``), ``counter_resolution`` (microjoules
per count) and ``timestamp``. Energy (J) = counts x resolution / 10^6 -> ``method="amdsmi-energy"``.
Where the counter is not supported, the meter samples ``amdsmi_get_power_info`` (watts,
``current_socket_power`` else ``average_socket_power``) at 20 Hz in a background thread and
integrates with the trapezoid rule -> ``method="amdsmi-power"``; a GPU with neither is left out
with a reason.
``HIP_VISIBLE_DEVICES`` / ``ROCR_VISIBLE_DEVICES`` / ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs)
select the GPUs, as ROCm does. Components are ``gpu:<AMD SMI index>``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
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
from greenforge.units import uj_to_j

METHOD = "amdsmi-energy"
POWER_METHOD = "amdsmi-power"
REL_ERR = 0.05
INSTALL_HINT = (
    "install ROCm and its Python bindings: pip install 'greenforge[amd]' "
    "(or pip install /opt/rocm/share/amd_smi)"
)
_VISIBLE_VARS = ("HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")


def load_amdsmi() -> Any:
    try:
        import amdsmi
    except ImportError:
        raise MeterError(
            f"amdsmi is not installed, so AMD GPUs cannot be measured: {INSTALL_HINT}"
        ) from None
    return amdsmi


def energy_j(count: Mapping[str, Any]) -> float:
    """Joules in an ``amdsmi_get_energy_count`` result (either key name)."""
    acc = count.get("energy_accumulator", count.get("power"))
    if acc is None:
        raise MeterError(f"unexpected amdsmi energy result {dict(count)!r}")
    return float(uj_to_j(float(acc) * float(count.get("counter_resolution", 1.0))))


def power_w(info: Mapping[str, Any]) -> float:
    """Watts in an ``amdsmi_get_power_info`` result ("N/A" values are skipped)."""
    for key in ("current_socket_power", "average_socket_power"):
        value = info.get(key)
        if value is None or isinstance(value, bool):
            continue
        try:
            watts = float(value)
        except (TypeError, ValueError):
            continue
        if watts >= 0 and watts == watts:  # not negative, not NaN
            return watts
    raise MeterError(f"no power reading in amdsmi power info {dict(info)!r}")


@dataclasses.dataclass
class _AmdGpu(SampledGpu):
    last_j: float = 0.0


class AmdMeter(PowerSamplingMeter[_AmdGpu]):
    """Per-GPU energy from AMD SMI energy counters (else integrated power)."""

    name = "amd"
    scope: Scope = "device"
    method = METHOD
    power_method = POWER_METHOD
    thread_name = "greenforge-amdsmi-power"

    def __init__(
        self,
        amdsmi: Any | None = None,
        env: Mapping[str, str] | None = None,
        sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
        clock: Clock = time.monotonic,
        background: bool = True,
    ) -> None:
        super().__init__(
            power_source="power",
            sample_interval_s=sample_interval_s,
            clock=clock,
            background=background,
        )
        self._lib = amdsmi
        self._env = env
        self.skipped: list[str] = []
        self._initialised = False

    def start(self) -> None:
        lib = self._lib if self._lib is not None else load_amdsmi()
        self._lib = lib
        try:
            lib.amdsmi_init()
            self._initialised = True
            handles = list(lib.amdsmi_get_processor_handles())
        except Exception as exc:
            self.close()
            raise MeterError(f"AMD SMI unavailable: {exc}. Is the amdgpu driver loaded?") from None
        uuids = []
        for h in handles:
            try:
                uuids.append(str(lib.amdsmi_get_gpu_device_uuid(h)))
            except Exception:
                uuids.append("")
        env = os.environ if self._env is None else self._env
        value = next((env[v] for v in _VISIBLE_VARS if v in env), None)
        gpus = []
        for idx in parse_visible_devices(value, uuids):
            handle = handles[idx]
            try:
                gpus.append(
                    _AmdGpu(idx, handle, METHOD, energy_j(lib.amdsmi_get_energy_count(handle)))
                )
                continue
            except Exception as exc:
                counter_error = exc
            try:
                power_w(lib.amdsmi_get_power_info(handle))
                gpus.append(_AmdGpu(idx, handle, POWER_METHOD))
            except Exception as exc:
                self.skipped.append(
                    f"gpu:{idx}: energy counter not supported ({counter_error}) "
                    f"and no power reading ({exc})"
                )
        if not gpus:
            self.close()
            why = "; ".join(self.skipped) or f"no AMD GPU visible (found {len(handles)})"
            raise MeterError(f"no measurable AMD GPU: {why}")
        self._start_sampling(gpus)

    def _read_power_w(self, gpu: _AmdGpu) -> float:
        lib: Any = self._lib
        return power_w(lib.amdsmi_get_power_info(gpu.handle))

    def read(self) -> Sequence[EnergyReading]:
        self.sample_once()
        out = []
        lib: Any = self._lib
        with self._lock:
            for g in self.gpus:
                if g.method == POWER_METHOD:
                    integrated_j = self._take_integrated_j(g)
                    out.append(
                        EnergyReading.exact(g.component, integrated_j, POWER_METHOD, REL_ERR)
                    )
                    continue
                try:
                    now = energy_j(lib.amdsmi_get_energy_count(g.handle))
                except Exception as exc:  # never crash the workload
                    self.errors.append(f"{g.component}: {exc}")
                    continue
                delta = max(now - g.last_j, 0.0)
                g.last_j = now
                out.append(EnergyReading.exact(g.component, delta, METHOD, REL_ERR))
        return out

    def close(self) -> None:
        self._stop_sampling()
        if self._initialised and self._lib is not None:
            try:
                self._lib.amdsmi_shut_down()
            except Exception as exc:
                self.errors.append(f"amdsmi_shut_down: {exc}")
            self._initialised = False


def _factory(**kwargs: Any) -> AmdMeter:
    return AmdMeter(**kwargs)


def probe(amdsmi: Any | None = None, env: Mapping[str, str] | None = None) -> Availability:
    try:
        meter = AmdMeter(amdsmi=amdsmi, env=env, background=False)
        meter.start()
    except MeterError as exc:
        text = str(exc)
        if "not installed" in text:
            text = "amdsmi (the AMD SMI Python bindings from ROCm) is not installed"
        return Availability("amd", False, text, INSTALL_HINT)
    except Exception as exc:
        return Availability("amd", False, f"AMD SMI probe failed: {exc}")
    try:
        detail = ", ".join(f"gpu:{g.index} ({g.method})" for g in meter.gpus)
    finally:
        meter.close()
    return Availability("amd", True, detail)


register_meter("amd", _factory, probe)
