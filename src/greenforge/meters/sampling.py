"""What the GPU meters (:mod:`~greenforge.meters.nvidia`, :mod:`~greenforge.meters.amd`) share.

* :func:`parse_visible_devices`: the GPUs a ``*_VISIBLE_DEVICES`` value selects, CUDA's rules.
* :func:`trapezoid_energy_j`: energy of power samples (pure).
* :class:`PowerSamplingMeter`: for GPUs without an energy counter, samples power in a
  background thread at >= 10 Hz and integrates it with the trapezoid rule. A subclass says
  how to read one GPU's power (:meth:`PowerSamplingMeter._read_power_w`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from greenforge.errors import MeterError

DEFAULT_SAMPLE_INTERVAL_S = 0.05
MAX_SAMPLE_INTERVAL_S = 0.1  # >= 10 Hz

Clock = Callable[[], float]


def parse_visible_devices(value: str | None, uuids: Sequence[str]) -> list[int]:
    """Device indices selected by a ``CUDA_VISIBLE_DEVICES`` value, in CUDA order.

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


@dataclasses.dataclass
class SampledGpu:
    """One measured GPU: ``method`` is its energy counter's, or the meter's power method."""

    index: int
    handle: Any
    method: str
    last_t: float | None = dataclasses.field(default=None, kw_only=True)
    last_w: float = dataclasses.field(default=0.0, kw_only=True)
    acc_j: float = dataclasses.field(default=0.0, kw_only=True)
    """Energy integrated from power samples since the last read."""

    @property
    def component(self) -> str:
        return f"gpu:{self.index}"


G = TypeVar("G", bound=SampledGpu)


class PowerSamplingMeter(Generic[G]):
    """Base of the GPU meters: the GPU list, and power sampling for GPUs without a counter."""

    power_method: ClassVar[str]
    """``method`` of the GPUs whose energy is integrated from power samples."""
    thread_name: ClassVar[str]

    def __init__(
        self,
        *,
        power_source: str,
        sample_interval_s: float,
        clock: Clock = time.monotonic,
        background: bool = True,
    ) -> None:
        if not (0 < sample_interval_s <= MAX_SAMPLE_INTERVAL_S):
            raise MeterError(
                f"bad sample_interval_s {sample_interval_s!r}: {power_source} must be sampled at "
                f">= 10 Hz, so use 0 < interval <= {MAX_SAMPLE_INTERVAL_S} s."
            )
        self.sample_interval_s = sample_interval_s
        self._clock = clock
        self._background = background
        self.gpus: list[G] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def components(self) -> list[str]:
        return [g.component for g in self.gpus]

    def _read_power_w(self, gpu: G) -> float:
        """Power of one GPU now (W); may raise, the sample is then skipped and noted."""
        raise NotImplementedError

    def _start_sampling(self, gpus: list[G]) -> None:
        """Take ``gpus`` as the measured ones, sample once, start the thread if any needs it."""
        with self._lock:
            self.gpus = gpus
        self.sample_once()
        if self._background and any(g.method == self.power_method for g in gpus):
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.sample_interval_s):
            self.sample_once()

    def sample_once(self) -> None:
        """Sample power of the power-integrated GPUs and add the trapezoid since the last one."""
        with self._lock:
            for g in self.gpus:
                if g.method != self.power_method:
                    continue
                try:
                    power_w = self._read_power_w(g)
                except Exception as exc:  # a driver hiccup: keep going
                    self.errors.append(f"{g.component}: {exc}")
                    continue
                now = self._clock()
                if g.last_t is not None:
                    g.acc_j += trapezoid_energy_j([g.last_t, now], [g.last_w, power_w])
                g.last_t, g.last_w = now, power_w

    @staticmethod
    def _take_integrated_j(gpu: SampledGpu) -> float:
        """The power-integrated energy since the last call (caller holds the lock)."""
        energy_j, gpu.acc_j = gpu.acc_j, 0.0
        return energy_j

    def _stop_sampling(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
