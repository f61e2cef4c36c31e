"""The sampling monitor: a daemon thread that reads the meters every ``interval_s`` and keeps
the energy of each interval per component, plus named, nestable windows (``epoch/step``).

Meters return energy *deltas* since their previous read, so an interval's energy is exactly
what the meters report for it; nothing is interpolated. Window boundaries take an extra sample,
so a window's energy is the sum of the intervals inside it, to the boundary.

At each window boundary CUDA is synchronised when the user has already imported torch and
initialised CUDA (so queued kernels are charged to the right window); the monitor itself never
imports torch. A meter that raises while being read is dropped with one warning: a measurement
problem never crashes the workload.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from greenforge.errors import ConfigError
from greenforge.meters.base import Meter
from greenforge.records import EnergyReading, Interval, WindowRecord

log = logging.getLogger("greenforge.monitor")

Clock = Callable[[], float]
IntervalHook = Callable[[Interval], None]
WindowHook = Callable[["WindowSpan"], None]


def sync_cuda() -> bool:
    """``torch.cuda.synchronize()`` if the user's torch has initialised CUDA; never imports it.

    Returns whether a synchronisation happened. Errors are swallowed (measurement must not
    crash the workload).
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    try:
        cuda = torch.cuda
        if cuda.is_initialized() and cuda.is_available():
            cuda.synchronize()
            return True
    except Exception:
        log.debug("CUDA synchronisation at a window boundary failed", exc_info=True)
    return False


@dataclasses.dataclass(frozen=True)
class WindowSpan:
    """A closed window with the range of intervals it covers (``intervals[first:last]``)."""

    name: str
    path: str
    depth: int
    start_s: float
    end_s: float
    first_interval: int
    last_interval: int
    energy_j: float

    def to_record(self, co2e_g: float | None = None) -> WindowRecord:
        return WindowRecord(self.name, self.path, self.start_s, self.end_s, self.energy_j, co2e_g)


@dataclasses.dataclass
class _Open:
    name: str
    path: str
    start_s: float
    first_interval: int


class Monitor:
    """Samples ``meters`` in a background thread; thread-safe windows from the user's thread."""

    def __init__(
        self,
        meters: Sequence[Meter],
        interval_s: float = 1.0,
        *,
        clock: Clock = time.time,
        on_interval: IntervalHook | None = None,
        on_tick: Callable[[], None] | None = None,
        on_window_end: WindowHook | None = None,
        on_thread_start: Callable[[], None] | None = None,
        cuda_sync: bool = True,
    ) -> None:
        if not (math.isfinite(interval_s) and interval_s > 0):
            raise ConfigError(f"bad sampling interval {interval_s!r} s: use a number > 0.")
        self.meters: list[Meter] = list(meters)
        self.interval_s = float(interval_s)
        self.clock = clock
        self.on_interval = on_interval
        self.on_tick = on_tick
        self.on_window_end = on_window_end
        self.on_thread_start = on_thread_start
        self.cuda_sync = cuda_sync
        self.warnings: list[str] = []
        self.dropped: list[str] = []
        self._intervals: list[Interval] = []
        self._totals: dict[str, list[float]] = {}
        self._methods: dict[str, str] = {}
        self._stack: list[_Open] = []
        self._windows: list[WindowSpan] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_s: float | None = None
        self.started_s: float | None = None
        self.stopped_s: float | None = None
        self.setup_cpu_s = 0.0
        """CPU time of the sampling thread's one-off setup hook (intensity, store)."""
        self.sampling_cpu_s = 0.0
        """CPU time the sampling thread spent sampling and flushing (the tracker's overhead)."""
        self.boundary_s = 0.0
        """CPU time the user's thread spent sampling at window boundaries."""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start every meter (dropping, with a warning, any that refuses) and the thread."""
        if self.started_s is not None:
            raise ConfigError("this monitor was already started; create a new one per run.")
        kept: list[Meter] = []
        for meter in list(self.meters):
            try:
                meter.start()
                kept.append(meter)
            except Exception as exc:
                self._drop(meter, f"could not start: {exc}", close=True)
        self.meters = kept
        now = self.clock()
        self.started_s = now
        self._last_s = now
        self._thread = threading.Thread(target=self._run, name="greenforge-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> list[Interval]:
        """Stop the thread, take a final sample, close open windows and the meters."""
        if self.started_s is None:
            raise ConfigError("this monitor was never started.")
        if self.stopped_s is not None:
            return self.intervals
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()  # (a budget callback may stop the run from the thread itself)
        if self.cuda_sync:
            sync_cuda()
        with self._lock:
            self.sample()
            while self._stack:
                name = self._stack[-1].path
                self._warn(f"window {name!r} was still open when the run stopped; closed it")
                self._close_top()
            self.stopped_s = self._last_s
            for meter in self.meters:
                with contextlib.suppress(Exception):
                    meter.close()
        return self.intervals

    def in_sampling_thread(self) -> bool:
        """True when called from the monitor's own thread (e.g. inside a hook)."""
        return self._thread is not None and self._thread is threading.current_thread()

    @property
    def running(self) -> bool:
        return self.started_s is not None and self.stopped_s is None

    def _run(self) -> None:
        assert self.started_s is not None
        cpu0 = time.thread_time()
        if self.on_thread_start is not None:
            try:
                self.on_thread_start()
            except Exception as exc:
                self._warn(f"monitor start hook failed: {exc}")
        self.setup_cpu_s = time.thread_time() - cpu0
        k = 1
        while True:
            deadline = self.started_s + k * self.interval_s
            if self._stop.wait(max(deadline - self.clock(), 0.0)):
                return
            k = max(k + 1, math.floor((self.clock() - self.started_s) / self.interval_s) + 1)
            cpu0 = time.thread_time()
            try:
                self.sample()
                if self.on_tick is not None:
                    self.on_tick()
            except Exception as exc:
                self._warn(f"monitor sampling error: {exc}")
            self.sampling_cpu_s += time.thread_time() - cpu0

    # -- sampling -------------------------------------------------------------------------

    def sample(self) -> Interval | None:
        """Read every meter now and record the interval since the previous sample."""
        with self._lock:
            if self._last_s is None or self.stopped_s is not None:
                return None
            readings: list[EnergyReading] = []
            for meter in list(self.meters):
                try:
                    got = meter.read()
                except Exception as exc:
                    self._drop(meter, f"failed while reading: {exc}", close=True)
                    continue
                for r in got:
                    if math.isfinite(r.energy_j) and r.energy_j >= 0:
                        readings.append(r)
                    else:
                        self._warn(
                            f"meter {meter.name!r} returned an invalid energy {r.energy_j!r} J "
                            f"for {r.component!r}; ignored that reading"
                        )
            now = max(self.clock(), self._last_s)
            interval = Interval(self._last_s, now, tuple(readings))
            self._last_s = now
            self._intervals.append(interval)
            for r in readings:
                acc = self._totals.setdefault(r.component, [0.0, 0.0, 0.0])
                acc[0] += r.energy_j
                acc[1] += r.low_j
                acc[2] += r.high_j
                method = self._methods.get(r.component)
                if method is None:
                    self._methods[r.component] = r.method
                elif r.method not in method.split("+"):
                    self._methods[r.component] = f"{method}+{r.method}"
        if self.on_interval is not None:
            try:
                self.on_interval(interval)
            except Exception as exc:
                self._warn(f"interval hook failed: {exc}")
        return interval

    def _drop(self, meter: Meter, why: str, close: bool) -> None:
        with self._lock:
            if meter in self.meters:
                self.meters.remove(meter)
            self.dropped.append(meter.name)
        self._warn(f"meter {meter.name!r} {why}; dropped it (its energy is no longer counted)")
        if close:
            with contextlib.suppress(Exception):
                meter.close()

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning("greenforge: %s", message)

    # -- windows --------------------------------------------------------------------------

    def begin(self, name: str) -> str:
        """Open a window (nested inside any open one); returns its path, e.g. ``epoch-1/eval``."""
        if not isinstance(name, str) or not name.strip() or "/" in name:
            raise ConfigError(
                f"bad window name {name!r}: use a non-empty name without '/' "
                "(nesting is expressed by opening a window inside another)."
            )
        if self.cuda_sync:
            sync_cuda()
        t0 = time.thread_time()
        with self._lock:
            if not self.running:
                raise ConfigError("cannot open a window: the monitor is not running.")
            self.sample()
            self.boundary_s += time.thread_time() - t0
            path = "/".join([*(w.name for w in self._stack), name])
            assert self._last_s is not None
            self._stack.append(_Open(name, path, self._last_s, len(self._intervals)))
            return path

    def end(self, name: str | None = None) -> WindowSpan:
        """Close the innermost window (checking its name when given) and return it."""
        if self.cuda_sync:
            sync_cuda()
        t0 = time.thread_time()
        with self._lock:
            if not self._stack:
                raise ConfigError("end() called with no open window: call begin(name) first.")
            if name is not None and self._stack[-1].name != name:
                raise ConfigError(
                    f"end({name!r}) does not match the innermost open window "
                    f"{self._stack[-1].path!r}; windows close innermost first."
                )
            self.sample()
            span = self._close_top()
        if self.on_window_end is not None:
            try:
                self.on_window_end(span)
            except Exception as exc:
                self._warn(f"window hook failed: {exc}")
        self.boundary_s += time.thread_time() - t0
        return span

    def _close_top(self) -> WindowSpan:
        top = self._stack.pop()
        last = len(self._intervals)
        energy = sum(iv.energy_j for iv in self._intervals[top.first_interval : last])
        assert self._last_s is not None
        span = WindowSpan(
            top.name,
            top.path,
            len(self._stack),
            top.start_s,
            self._last_s,
            top.first_interval,
            last,
            energy,
        )
        self._windows.append(span)
        return span

    @contextlib.contextmanager
    def window(self, name: str) -> Iterator[str]:
        """``with monitor.window("epoch-1"): ...`` (closed even if the body raises)."""
        path = self.begin(name)
        try:
            yield path
        finally:
            self.end(name)

    # -- views ----------------------------------------------------------------------------

    @property
    def intervals(self) -> list[Interval]:
        with self._lock:
            return list(self._intervals)

    @property
    def windows(self) -> list[WindowSpan]:
        """Closed windows, in the order they closed."""
        with self._lock:
            return list(self._windows)

    @property
    def open_windows(self) -> list[str]:
        with self._lock:
            return [w.path for w in self._stack]

    def totals(self) -> dict[str, tuple[float, float, float, str]]:
        """Running totals per component: (energy_j, low_j, high_j, method)."""
        with self._lock:
            return {
                c: (v[0], v[1], v[2], self._methods.get(c, "")) for c, v in self._totals.items()
            }

    @property
    def energy_j(self) -> float:
        with self._lock:
            return sum(v[0] for v in self._totals.values())

    @property
    def last_sample_s(self) -> float | None:
        return self._last_s
