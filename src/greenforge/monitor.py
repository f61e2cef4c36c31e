"""The sampling monitor: a daemon thread that reads the meters every ``interval_s`` and keeps
the energy of each interval per component, plus named, nestable windows (``epoch/step``).

Meters return energy *deltas* since their previous read, so an interval's energy is exactly
what the meters report for it.

Window boundaries do not read the meters (a meter read costs 50-500 us; a boundary must cost
a few): a boundary records only its time. A window's energy is the cumulative energy at its
end minus that at its start, each taken between the two samples around the boundary with the
interval's energy spread evenly over it (the same assumption the CO2e integration makes). So
the error of a boundary is bounded by one sampling interval of power change: at most
``(P_max - P_min) x interval_s`` per boundary, nothing for constant power, and windows that
tile a span sum exactly to that span's energy. When the latest sample is older than
:data:`BOUNDARY_SAMPLE_AGE_S` (or the sampling interval, if shorter) the boundary reads the
meters itself, so no boundary interpolates over more than that, and a budget is checked at
the boundaries of windows that long. Until the sample after a window's end arrives, its
energy is provisional (the last interval's power carried forward); the stored record holds
the interpolated value.

At each window boundary CUDA is synchronised when the user has already imported torch and
initialised CUDA (so queued kernels are charged to the right window); the monitor itself never
imports torch. A meter that raises while being read is dropped with one warning: a measurement
problem never crashes the workload.
"""

from __future__ import annotations

import bisect
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

BOUNDARY_SAMPLE_AGE_S = 1.0
"""Longest a window boundary interpolates past the latest sample before reading the meters
itself (at most one extra read per this many seconds, whatever the number of windows)."""

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


@dataclasses.dataclass(slots=True)
class WindowSpan:
    """A closed window: its name, nesting, time span and energy (J).

    ``final`` is False while the energy is provisional (the sample after ``end_s`` has not
    arrived yet); the monitor then sets the final ``energy_j`` and ``final`` in place (once,
    in one pass over every window the new sample covers), so the span :meth:`Monitor.end`
    returned becomes final too.
    """

    name: str
    path: str
    depth: int
    start_s: float
    end_s: float
    energy_j: float
    final: bool = True

    def to_record(self, co2e_g: float | None = None) -> WindowRecord:
        return WindowRecord(self.name, self.path, self.start_s, self.end_s, self.energy_j, co2e_g)


@dataclasses.dataclass
class _Open:
    name: str
    path: str
    start_s: float


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
        self._sample_s: list[float] = []
        """Time of every sample, the start first: interval ``k`` spans
        ``[_sample_s[k], _sample_s[k + 1])``."""
        self._cum_j: list[float] = []
        """Cumulative energy (J, every component) at each time of ``_sample_s``."""
        self._resolved = 0
        """Closed windows ``_windows[:_resolved]`` have their final energy."""
        self._boundary_last_s = -math.inf
        self.boundary_sample_s = min(self.interval_s, BOUNDARY_SAMPLE_AGE_S)
        """A window boundary reads the meters when the latest sample is at least this old
        (the sampling thread is late, or the interval is long), else it interpolates."""
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
        """Time the user's thread spent at window boundaries (wall time, so an upper bound of
        their CPU time: a CPU clock read would cost more than the boundary itself)."""

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
        self._sample_s.append(now)
        self._cum_j.append(0.0)
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
                assert self._last_s is not None
                self._close_top(self._last_s)
            self._resolve()
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
            self._sample_s.append(now)
            self._cum_j.append(self._cum_j[-1] + math.fsum(r.energy_j for r in readings))
            for r in readings:
                acc = self._totals.setdefault(r.component, [0.0, 0.0, 0.0])
                acc[0] += r.energy_j
                acc[1] += r.low_j
                acc[2] += r.high_j
                method = self._methods.get(r.component)
                if method is None:
                    self._methods[r.component] = r.method
                elif r.method != method:
                    # as records.sum_by_component: each method once, joins split first
                    known = method.split("+")
                    known.extend(m for m in r.method.split("+") if m not in known)
                    self._methods[r.component] = "+".join(known)
            self._resolve()
            # Under the lock, so the hook sees the intervals in order even when a window
            # boundary samples while the thread does.
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
        """Open a window (nested inside any open one); returns its path, e.g. ``epoch-1/eval``.

        Records only the time (no meter read); see the module docstring for the energy."""
        if not isinstance(name, str) or not name.strip() or "/" in name:
            raise ConfigError(
                f"bad window name {name!r}: use a non-empty name without '/' "
                "(nesting is expressed by opening a window inside another)."
            )
        if self.cuda_sync:
            sync_cuda()
        t0 = time.perf_counter()
        with self._lock:
            if not self.running:
                raise ConfigError("cannot open a window: the monitor is not running.")
            now = self._boundary_time()
            stack = self._stack
            path = f"{stack[-1].path}/{name}" if stack else name
            stack.append(_Open(name, path, now))
        self.boundary_s += time.perf_counter() - t0
        return path

    def end(self, name: str | None = None) -> WindowSpan:
        """Close the innermost window (checking its name when given) and return it, with a
        provisional energy until the next sample (see the module docstring)."""
        if self.cuda_sync:
            sync_cuda()
        t0 = time.perf_counter()
        with self._lock:
            if not self._stack:
                raise ConfigError("end() called with no open window: call begin(name) first.")
            if name is not None and self._stack[-1].name != name:
                raise ConfigError(
                    f"end({name!r}) does not match the innermost open window "
                    f"{self._stack[-1].path!r}; windows close innermost first."
                )
            span = self._close_top(self._boundary_time())
        if self.on_window_end is not None:
            try:
                self.on_window_end(span)
            except Exception as exc:
                self._warn(f"window hook failed: {exc}")
        self.boundary_s += time.perf_counter() - t0
        return span

    def _boundary_time(self) -> float:
        """Now on the monitor's clock, never before the previous boundary or sample. Reads
        the meters first when the latest sample is older than ``boundary_sample_s``."""
        assert self._last_s is not None
        now = max(self.clock(), self._boundary_last_s, self._last_s)
        if now - self._last_s >= self.boundary_sample_s:
            self.sample()
            now = max(self._last_s, self._boundary_last_s)
        self._boundary_last_s = now
        return now

    def _close_top(self, end_s: float) -> WindowSpan:
        top = self._stack.pop()
        assert self._last_s is not None
        final = end_s <= self._last_s
        span = WindowSpan(
            top.name,
            top.path,
            len(self._stack),
            top.start_s,
            end_s,
            self.energy_at(end_s) - self.energy_at(top.start_s),
            final,
        )
        if final and self._resolved == len(self._windows):
            self._resolved += 1
        self._windows.append(span)
        return span

    def _resolve(self) -> None:
        """Give final energies to closed windows that the latest sample covers (in order of
        closing, which is the order of their end times)."""
        last_s = self._last_s
        assert last_s is not None
        windows, cum, times = self._windows, self._cum_j, self._sample_s
        # Windows inside the last interval (nearly all of them when windows are short) get
        # its power x their duration in one tight loop; the rest interpolate at both ends.
        prev_s = times[-2] if len(times) > 1 else last_s
        width_s = last_s - prev_s
        power_w = (cum[-1] - cum[-2]) / width_s if width_s > 0 else 0.0
        done, count = self._resolved, len(windows)
        while done < count:
            w = windows[done]
            if w.end_s > last_s:
                break
            if not w.final:
                if w.start_s >= prev_s:
                    w.energy_j = power_w * (w.end_s - w.start_s)
                else:
                    w.energy_j = self.interpolate(cum, w.end_s) - self.interpolate(cum, w.start_s)
                w.final = True
            done += 1
        self._resolved = done

    def interpolate(
        self,
        cumulative: Sequence[float],
        t_s: float,
        position: Callable[[float], float] | None = None,
    ) -> float:
        """Returns ``cumulative`` (one value per sample time, e.g. J or g) at ``t_s``, between
        the two samples around it in proportion to ``position`` (time itself by default: the
        interval's quantity spread evenly over it; the intensity integral for CO2e).

        ``t_s`` must not lie after the sample time of the last value given; before the start
        it reads the first value."""
        times = self._sample_s
        n = len(cumulative)
        k = bisect.bisect_right(times, t_s, 0, n) - 1
        if k < 0:
            return cumulative[0]
        if k >= n - 1:
            return cumulative[n - 1]
        at = position or float
        width = at(times[k + 1]) - at(times[k])
        frac = (at(t_s) - at(times[k])) / width if width > 0 else 1.0
        return cumulative[k] + frac * (cumulative[k + 1] - cumulative[k])

    def energy_at(self, t_s: float) -> float:
        """Returns the cumulative energy (J, every component) since start at time ``t_s``:
        interpolated between samples, or after the last sample the last interval's power
        carried forward (provisional until the next sample)."""
        with self._lock:
            cum, times = self._cum_j, self._sample_s
            if t_s < times[-1]:
                return self.interpolate(cum, t_s)
            if len(times) < 2 or times[-1] <= times[-2]:
                return cum[-1]
            power_w = (cum[-1] - cum[-2]) / (times[-1] - times[-2])
            return cum[-1] + power_w * (t_s - times[-1])

    def windows_from(self, start: int) -> list[WindowSpan]:
        """Returns the closed windows ``start:`` in closing order (final ones first: a window
        is final once the sample after its end has arrived)."""
        with self._lock:
            return self._windows[start:]

    @property
    def lock(self) -> threading.RLock:
        """Returns the monitor's (reentrant) lock: held while sampling, its hooks included."""
        return self._lock

    @property
    def sample_times_s(self) -> Sequence[float]:
        """Returns the time (unix s) of every sample, the start first (do not modify)."""
        return self._sample_s

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
