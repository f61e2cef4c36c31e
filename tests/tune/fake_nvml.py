"""A fake NVML (the pynvml functions the power-limit optimizer calls) with a simple GPU model:
a step at power limit PL takes ``step_time_s(PL)`` and draws ``min(PL, DRAW_W)``.

Also imported by the child processes of the signal/atexit tests (by path), so it depends on
nothing but the standard library.
"""

from __future__ import annotations

from pathlib import Path

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
DRAW_W = 280.0
"""What the fake GPU draws when its limit does not hold it back (W)."""


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__({3: "Not Supported", 4: "Insufficient Permissions"}.get(value, "Error"))
        self.value = value


def step_time_s(limit_w: float) -> float:
    """Seconds per training step at ``limit_w``: slower below 300 W."""
    return 1.0 + 0.5 * max(0.0, (300.0 - limit_w) / 300.0)


class FakeGpu:
    def __init__(self, uuid: str, limit_w: float = 400.0) -> None:
        self.uuid = uuid
        self.limit_mw = int(limit_w * 1000)
        self.energy_mj = 0


class FakeNvml:
    NVMLError = NVMLError
    NVML_ERROR_NO_PERMISSION = NVML_ERROR_NO_PERMISSION

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        *,
        allow_set: bool = True,
        set_supported: bool = True,
        log: Path | None = None,
    ) -> None:
        self.gpus = gpus if gpus is not None else [FakeGpu("GPU-aaaa")]
        self.allow_set = allow_set
        self.set_supported = set_supported
        self.log = log
        self.now_s = 0.0
        self.initialised = 0
        self.sets: list[tuple[int, float]] = []

    # the training step the tests run: time passes, energy accrues at each GPU's limit
    def run_step(self) -> None:
        dt = max(step_time_s(g.limit_mw / 1000.0) for g in self.gpus)
        for g in self.gpus:
            g.energy_mj += round(min(g.limit_mw / 1000.0, DRAW_W) * dt * 1000)
        self.now_s += dt

    def clock(self) -> float:
        return self.now_s

    def nvmlInit(self) -> None:
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeGpu:
        return self.gpus[i]

    def nvmlDeviceGetUUID(self, h: FakeGpu) -> str:
        return h.uuid

    def nvmlDeviceGetName(self, h: FakeGpu) -> str:
        return "Fake H100"

    def nvmlDeviceGetPowerManagementLimitConstraints(self, h: FakeGpu) -> list[int]:
        return [100_000, 400_000]

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h: FakeGpu) -> int:
        return 400_000

    def nvmlDeviceGetPowerManagementLimit(self, h: FakeGpu) -> int:
        return h.limit_mw

    def nvmlDeviceSetPowerManagementLimit(self, h: FakeGpu, limit_mw: int) -> None:
        if not self.set_supported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        if not self.allow_set:
            raise NVMLError(NVML_ERROR_NO_PERMISSION)
        h.limit_mw = int(limit_mw)
        self.sets.append((self.gpus.index(h), limit_mw / 1000.0))
        if self.log is not None:
            with self.log.open("a") as fh:
                fh.write(f"{limit_mw / 1000.0:g}\n")

    def nvmlDeviceGetTotalEnergyConsumption(self, h: FakeGpu) -> int:
        return h.energy_mj

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        return round(min(h.limit_mw / 1000.0, DRAW_W) * 1000)
