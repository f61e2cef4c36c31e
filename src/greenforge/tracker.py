"""``track()``: measure a block, a function or a whole command, and get a :class:`RunRecord`.

::

    with greenforge.track(zone="DE") as run:      # context manager
        with run.window("epoch-1"):
            train_one_epoch()
    print(run.record.co2e_g)

    @greenforge.track(zone="DE")                  # decorator: every call is one run
    def train() -> None: ...

    tracker = Tracker(zone="DE"); tracker.start(); ...; record = tracker.stop()

A tracker resolves the zone, the grid intensity, the PUE and the meters when it starts (so a bad
zone fails *before* the workload runs), samples the meters in a background thread
(:mod:`greenforge.monitor`), flushes its record to the run store every ``flush_interval_s``
(crash safety), and at stop computes CO2e per interval from the intensity series over the
run's actual time span (time-resolved where the source has it). Embodied emissions are
reported apart, never added to the operational figure.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import functools
import inspect
import logging
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from greenforge.config import Settings, load_settings, redact_argv
from greenforge.errors import (
    BudgetExceededError,
    ConfigError,
    GreenForgeError,
    MeterError,
    ProviderError,
)
from greenforge.records import (
    ComponentTotal,
    EmbodiedEmissions,
    Emissions,
    Interval,
    Prediction,
    RunRecord,
    RunStatus,
    WindowColumns,
    WindowRecord,
)
from greenforge.units import J_PER_KWH, S_PER_YEAR

if TYPE_CHECKING:
    import subprocess

    from greenforge.budget import Budget, BudgetStatus
    from greenforge.distributed import RankInfo
    from greenforge.grid.provider import IntensityProvider
    from greenforge.grid.series import IntensitySeries
    from greenforge.grid.steps import StepIntensity
    from greenforge.meters.base import Meter
    from greenforge.meters.model import ProcessTreeCpu
    from greenforge.monitor import Monitor, WindowSpan
    from greenforge.pue import PueSeries
    from greenforge.records import IntensityProvenance
    from greenforge.report.store import RunStore

log = logging.getLogger("greenforge.tracker")

RUNNING_HORIZON_S = 7 * 24 * 3600.0
LOCAL_PROVIDERS = frozenset({"embedded", "embedded-annual", "files"})
"""Grid providers that answer from local data (no network), so may be asked before a run."""
"""How far ahead the tracker loads embedded intensity at start (the final record is always
recomputed from the intensity of the run's actual span)."""

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

PARENT_RUN_ENV = "GREENFORGE_PARENT_RUN_ID"
"""Set by ``greenforge run`` for its child, so trackers inside it know they are nested."""


def interval_co2e_g(
    series: IntensitySeries | StepIntensity,
    start_s: float,
    end_s: float,
    energy_j: float,
    pue: float,
) -> float:
    """CO2e (g) of one interval, equal to :func:`greenforge.grid.ops.emissions_g` for it.

    The tracker keeps its intensity as a pure-Python :class:`~greenforge.grid.steps.
    StepIntensity` (no numpy on its hot paths); an :class:`IntensitySeries` is converted.
    """
    from greenforge.grid.steps import StepIntensity

    steps = series if isinstance(series, StepIntensity) else StepIntensity.from_series(series)
    return steps.co2e_g(start_s, end_s, energy_j, pue)


class Exporter(Protocol):
    """Something that ships a running tracker's figures elsewhere (e.g. Prometheus).

    ``start`` runs in :meth:`Tracker.start` before the workload (a ConfigError from it is a
    warning: the workload still runs); ``on_interval`` after each accounted sample and
    ``flush`` after each flush (both on the sampling thread: keep them quick and bounded);
    ``stop`` once at stop or discard. A failure in the last three is a warning.
    """

    def start(self, tracker: Tracker) -> None: ...

    def on_interval(self, interval: Interval) -> None: ...

    def flush(self) -> None: ...

    def stop(self) -> None: ...


def new_run_id() -> str:
    """A fresh run id: 12 hex digits (prefixes of it are accepted by ``runs show``)."""
    return os.urandom(6).hex()  # as uuid4().hex[:12], without importing uuid at start


class Tracker:
    """Measures energy and emissions between :meth:`start` and :meth:`stop`.

    Everything that touches hardware or the outside world can be injected: ``meters`` (else
    :func:`greenforge.meters.select.select_meters`), ``provider`` (else the settings' provider
    chain via :func:`greenforge.grid.chain.intensity_for`) and ``store`` (else the run store
    in the data directory; ``persist=False`` keeps the run in memory only).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        zone: str | None = None,
        name: str | None = None,
        interval_s: float | None = None,
        meters: Sequence[Meter] | None = None,
        provider: IntensityProvider | None = None,
        store: RunStore | None = None,
        persist: bool = True,
        budget: Budget | None = None,
        expected_windows: int | None = None,
        predict_after: int = 1,
        on_prediction: Callable[[Prediction], None] | None = None,
        metadata: Mapping[str, Any] | None = None,
        pid: int | None = None,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        exporters: Sequence[Exporter] | None = None,
        prometheus_port: int | None = None,
        pushgateway: str | None = None,
        pue: float | PueSeries | None = None,
        mlflow: bool = False,
        wandb: bool = False,
    ) -> None:
        self.settings = load_settings(interval_s=interval_s) if settings is None else settings
        if settings is not None and interval_s is not None:
            if not (math.isfinite(interval_s) and 0.01 <= interval_s <= 3600):
                raise ConfigError(
                    f"bad interval_s {interval_s!r}: use a sampling interval between 0.01 and "
                    "3600 s."
                )
            self.settings = dataclasses.replace(settings, interval_s=float(interval_s))
        if expected_windows is not None and expected_windows < 1:
            raise ConfigError(f"bad expected_windows {expected_windows!r}: must be >= 1.")
        if predict_after < 1:
            raise ConfigError(f"bad predict_after {predict_after!r}: must be >= 1.")
        self.explicit_zone = zone
        self.name = name or _default_name()
        self.budget = budget
        self.expected_windows = expected_windows
        self.predict_after = predict_after
        self.on_prediction = on_prediction
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.pid = pid
        self.process_tree: ProcessTreeCpu | None = None
        """Under process attribution, the tree to charge instead of ``pid``'s (``run_command``
        attaches its command to it once spawned)."""
        self.attribution: str = self.settings.attribution
        """Which attribution the meters apply: ``process`` or ``machine`` (in the record)."""
        self.env: Mapping[str, str] = os.environ if env is None else env
        self._injected_meters = None if meters is None else list(meters)
        self._provider = provider
        self._store = store
        self._owns_store = False
        self._persist = persist
        self._explicit_run_id = run_id
        self.run_id = run_id or new_run_id()
        self.zone: str | None = None
        self.zone_source: str | None = None
        self.pue: float = 1.0
        self.pue_source: str = ""
        self._pue_value: float | None = None
        """``pue=`` a number: used instead of the settings' PUE."""
        self._pue_series: PueSeries | None = None
        """``pue=`` a :class:`~greenforge.pue.PueSeries`: PUE(t) is folded into the intensity
        (``self.pue`` is then its value at start)."""
        if pue is None and self.settings.pue_series is not None:
            from greenforge.pue import load_pue  # settings.pue_series: a file or model spec

            pue = load_pue(self.settings.pue_series)
        if isinstance(pue, int | float):
            self._pue_value = float(pue)
        elif pue is not None:
            self._pue_series = pue
            self.pue = pue.at(clock())
            # the series behind the record's energy-weighted emissions.pue, for reports
            self.metadata.setdefault(
                "pue_series",
                {
                    "source": pue.source,
                    "kind": pue.kind,
                    "min": float(pue.values.min()),
                    "max": float(pue.values.max()),
                    "points": int(pue.values.size),
                },
            )
        self.rank: RankInfo | None = None
        self.meter_notes: list[str] = []
        self.warnings: list[str] = []
        self.record: RunRecord | None = None
        self.prediction: Prediction | None = None
        self.over_budget = False
        self.budget_status: BudgetStatus | None = None
        self._budget_raised = False
        self._series: StepIntensity | None = None
        self._co2e_bounds_g = [0.0, 0.0]
        """Running low and high CO2e (g) of the intervals accounted so far."""
        self._co2e_energy_j = 0.0
        """Energy (J) of the intervals accounted so far (those with a duration)."""
        self._sample_g: list[float] = [0.0]
        """Cumulative CO2e (g) at each of the monitor's sample times accounted so far."""
        self._windows = WindowColumns()
        """Final figures of the finished windows, in closing order."""
        self._windows_done = 0
        """How many of the monitor's closed windows are in ``_windows``."""
        self._windows_stored = 0
        """How many of ``_windows`` the store holds (each flush writes the new ones)."""
        self._windows_restore = False
        """The stored windows are out of date (accounted again at stop): write them all anew."""
        self._save_lock = threading.RLock()
        """One save at a time, so each window is stored once (the sampling thread's first
        flush may run beside a flush from elsewhere)."""
        self._top_windows: tuple[list[float], list[float | None], list[float]] = ([], [], [])
        """Energy (J), CO2e (g) and duration (s) of each closed top-level window."""
        self._monitor: Monitor | None = None
        self._prepared = False
        self._started_s: float | None = None
        self._lock = threading.Lock()
        self._co2e_so_far_g = 0.0
        self._last_flush_s = 0.0
        self._flushed_sample = False
        self._part = "main"
        self._measures_node = True
        self.clock = clock
        self._deferred_intensity = False
        self._pending: list[Interval] = []
        self.exporters: list[Exporter] = list(exporters or [])
        """Started with the tracker; ``prometheus_port``/``pushgateway`` add a Prometheus one."""
        self._prometheus = (prometheus_port, pushgateway)
        self._experiment_trackers = (mlflow, wandb)
        """``mlflow=True`` / ``wandb=True`` add an MLflow / W&B exporter at start."""

    # -- lifecycle ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Resolve zone, intensity, PUE, rank and run id; fails before any workload runs.

        :meth:`start` calls it; ``run_command`` calls it before launching the command so a bad
        zone is reported without running anything.
        """
        if self._prepared:
            return
        from greenforge.distributed import rank_info, shared_run_id

        self.zone = self._resolve_zone()
        if self._embedded_knows_zone() or self._chain_uses_network():
            # The embedded table knows the zone, or the chain has a live API (the workload
            # never waits on the network): fetch the series in the background, so start stays
            # fast (no numpy/HTTP imports or requests on the caller's thread).
            self._deferred_intensity = True
        else:
            # Fetching the intensity now validates the zone (unknown zone -> clear error now).
            # A provider outage is not the user's error: warn, retry in the background and at
            # stop, and let the workload run.
            now = self.clock()
            try:
                self._series = self._intensity(now, now + max(self.settings.interval_s, 1.0))
            except ProviderError as exc:
                self._warn(f"grid intensity unavailable at start ({exc}); will retry")
                self._deferred_intensity = True
        self.pue, self.pue_source = self._resolve_pue()
        self.rank = rank_info(self.env)
        if self._explicit_run_id is None and PARENT_RUN_ENV not in self.env:
            shared = shared_run_id(self.env)
            if shared is not None:
                self.run_id = shared
        self._part = self.rank.part if self.rank.distributed else "main"
        if self.rank.distributed:
            self.metadata.setdefault(
                "distributed",
                {
                    "launcher": self.rank.launcher,
                    "world_size": self.rank.world_size,
                    "local_world_size": self.rank.local_world_size,
                },
            )
        parent = self.env.get(PARENT_RUN_ENV)
        if parent:
            self.metadata.setdefault("parent_run_id", parent)
        self._prepared = True

    def start(self) -> Tracker:
        """Start measuring (returns ``self``). Raises on a bad zone or setting, not later."""
        if self._started_s is not None:
            raise ConfigError("this tracker was already started; create a new Tracker per run.")
        self.prepare()
        assert self.rank is not None
        from greenforge.distributed import meters_for_rank
        from greenforge.monitor import Monitor

        meters = self._select_meters()
        kept, skipped = meters_for_rank(meters, self.rank, self.env)
        self.meter_notes.extend(skipped)
        # The machine's embodied share is reported by one process per node: the only process,
        # or local rank 0 of a distributed run (under process attribution every rank keeps
        # all its meters, so "kept every meter" would report the machine once per rank).
        self._measures_node = not self.rank.distributed or self.rank.local_rank == 0
        self._monitor = Monitor(
            kept,
            self.settings.interval_s,
            on_interval=self._on_interval,
            on_tick=self._on_tick,
            on_window_end=self._on_window_end,
            on_thread_start=self._background_setup,
            clock=self.clock,
        )
        self._start_exporters()
        self._last_flush_s = time.monotonic()
        self._monitor.start()
        self._started_s = self._monitor.started_s
        return self

    def _background_setup(self) -> None:
        """First thing the sampling thread does: store and first flush, then the intensity.

        The store opens and the run is flushed before the (possibly slow, networked)
        intensity fetch, so a run killed during that fetch is still on record.
        """
        if self._started_s is None and self._monitor is not None:
            self._started_s = self._monitor.started_s  # (start() may not have set it yet)
        if self._persist and self._store is None:
            self._store = self._open_store()
        self._flush("running")
        if not self._deferred_intensity or self._series is not None:
            return
        if self._embedded_knows_zone():
            self._load_deferred_intensity()  # local tables: quick
        else:
            # A provider that failed at start is retried beside the sampling, never in its way:
            # samples and flushes go on while the network is slow.
            threading.Thread(
                target=self._load_deferred_intensity, name="greenforge-intensity", daemon=True
            ).start()

    def _load_deferred_intensity(self) -> None:
        """Load the intensity the tracker could not (or did not) fetch at start."""
        started = self._monitor.started_s if self._monitor is not None else None
        start_s = started if started is not None else self.clock()
        # The embedded tables are local and cheap: load a week ahead, so the running
        # CO2e, budgets, window figures and the prediction follow the hourly profile
        # instead of holding the first hour's intensity for the whole run.
        horizon_s = (
            RUNNING_HORIZON_S if self._embedded_knows_zone() else max(self.settings.interval_s, 1.0)
        )
        try:
            series = self._intensity(start_s, start_s + horizon_s)
        except Exception as exc:  # a provider failure must not stop the measurement
            self._warn(f"could not load the grid intensity at start ({exc}); retrying at stop")
            return
        if self._monitor is not None and self._monitor.running:  # else stop() has its own
            self._set_series(series)

    def _set_series(self, series: StepIntensity) -> None:
        with self._lock:
            self._series = series
            pending, self._pending = self._pending, []
        for interval in pending:
            self._on_interval(interval)

    def _reaccount(self, series: StepIntensity | None, intervals: Sequence[Interval]) -> None:
        """Account every interval and window again with ``series`` (the intensity of the run's
        actual span fetched at stop differs from the one used while running)."""
        with self._lock:
            self._series = series
            self._pending = []
            self._co2e_so_far_g = 0.0
            self._co2e_bounds_g = [0.0, 0.0]
            self._co2e_energy_j = 0.0
            self._sample_g = [0.0]
            self._windows = WindowColumns()
            self._windows_done = 0
            self._windows_restore = self._windows_stored > 0
            self._windows_stored = 0
        if series is None:
            return
        for interval in intervals:
            self._account(interval)

    def stop(self, status: RunStatus = "completed", **metadata: Any) -> RunRecord:
        """Stop measuring, compute emissions, store and return the :class:`RunRecord`."""
        if self.record is not None:
            return self.record
        if self._monitor is None:
            raise ConfigError("stop() called before start().")
        if self._monitor.in_sampling_thread():
            raise ConfigError(
                "stop() cannot be called from a budget or prediction callback (it runs in the "
                "sampling thread): set a flag there, or check tracker.over_budget, and stop "
                "from your own code."
            )
        self.metadata.update(metadata)
        self._monitor.stop()
        assert self._started_s is not None
        end_s = self._monitor.stopped_s or self.clock()
        span_end_s = max(end_s, self._started_s + 1e-6)
        current = self._series
        if (
            current is not None
            and self._embedded_knows_zone()
            and current.covers(self._started_s, span_end_s)
        ):
            # The embedded tables loaded at start cover the whole run, and every interval is
            # already accounted with them: nothing to fetch or recompute at stop.
            series: StepIntensity | None = current
        else:
            try:
                series = self._intensity(self._started_s, span_end_s)
            except Exception as exc:  # the workload is done: keep its energy, explain the CO2e
                series = current
                used = "used the intensity fetched at start" if series else "no CO2e for this run"
                self._warn(f"could not fetch the grid intensity for the run's span ({exc}); {used}")
        if series is not current or self._pending:
            self._reaccount(series, self._monitor.intervals)
        self._finish_windows(final=True)
        if self.over_budget and self.budget_status is not None:
            self._warn(f"over budget: {self.budget_status.reason}")
        record = self._build_record((), status, end_s, final=True)
        self.record = record
        self._save(record)
        self._notify_exporters("stop")
        if self._owns_store and self._store is not None:
            self._store.close()
        if (
            self.over_budget
            and self.budget is not None
            and self.budget.raise_on_exceed
            and not self._budget_raised
            and status == "completed"
        ):
            self._budget_raised = True
            assert self.budget_status is not None
            raise BudgetExceededError(
                f"run {record.id!r} went over its budget: {self.budget_status.reason}. "
                "The record was stored."
            )
        return record

    def discard(self) -> None:
        """Stop measuring and keep nothing: the run is removed from the store (a flush may
        already have written it). For a workload that never ran, e.g. a command that could
        not start."""
        if self._monitor is None or self.record is not None:
            return
        self._persist = False  # no flush writes from here on
        self._monitor.stop()  # joins the sampling thread (and any flush in progress)
        self._notify_exporters("stop")
        store = self._store
        if store is not None:
            with contextlib.suppress(GreenForgeError):
                store.delete(self.run_id)
            if self._owns_store:
                store.close()

    def __enter__(self) -> Tracker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.stop("completed")
        elif issubclass(exc_type, BudgetExceededError):
            self._budget_raised = True
            self.stop("completed", stopped_by_budget=True)
        else:
            self._budget_raised = True  # never mask the body's own exception
            self.stop("failed", error=f"{exc_type.__name__}: {exc}")

    # -- windows and budget ---------------------------------------------------------------

    def begin(self, name: str) -> str:
        """Open a named window (nestable); returns its path such as ``epoch-2/eval``."""
        self._raise_if_over_budget()
        return self._running_monitor().begin(name)

    def end(self, name: str | None = None) -> WindowRecord:
        """Close the innermost window and return its record (energy and CO2e so far)."""
        span = self._running_monitor().end(name)
        self._raise_if_over_budget()
        return span.to_record(self._window_co2e(span))  # provisional until the next sample

    @contextlib.contextmanager
    def window(self, name: str) -> Iterator[str]:
        """``with tracker.window("epoch-1"): ...``"""
        path = self.begin(name)
        try:
            yield path
        finally:
            self._running_monitor().end(name)
        self._raise_if_over_budget()

    def check_budget(self) -> bool:
        """True when over budget; raises BudgetExceededError if the budget asks for it."""
        self._raise_if_over_budget()
        return self.over_budget

    @property
    def energy_j(self) -> float:
        """Energy measured so far (J)."""
        return 0.0 if self._monitor is None else self._monitor.energy_j

    @property
    def co2e_g(self) -> float:
        """Operational CO2e so far (g), from the intensity known at start."""
        with self._lock:
            return self._co2e_so_far_g

    def component_totals(self) -> list[ComponentTotal]:
        """Energy so far per component (J, with low/high and method), thread-safe."""
        if self._monitor is None:
            return []
        return [
            ComponentTotal(c, e, lo, hi, m) for c, (e, lo, hi, m) in self._monitor.totals().items()
        ]

    def intensity_now(self) -> tuple[float, IntensityProvenance] | None:
        """Grid intensity (g/kWh) now with its provenance; None while it is not known."""
        series = self._series
        if series is None:
            return None
        return series.value_at(self.clock()), series.provenance

    def warn(self, message: str) -> None:
        """Record a warning on the run (each message once) and log it."""
        self._warn(message)

    def _running_monitor(self) -> Monitor:
        if self._monitor is None or not self._monitor.running:
            raise ConfigError("windows need a running tracker: call start() (or use `with`).")
        return self._monitor

    def _raise_if_over_budget(self) -> None:
        if (
            self.over_budget
            and self.budget is not None
            and self.budget.raise_on_exceed
            and not self._budget_raised
        ):
            self._budget_raised = True
            assert self.budget_status is not None
            raise BudgetExceededError(
                f"run {self.run_id!r} went over its budget: {self.budget_status.reason}. "
                "Stop the workload, or raise the budget."
            )

    # -- monitor hooks (sampling thread, or the user's thread at window boundaries) --------

    def _on_interval(self, interval: Interval) -> None:
        co2e = self._account(interval)
        if self.exporters:
            self._notify_exporters("on_interval", interval)
        if co2e is not None and self.budget is not None and not self.over_budget:
            from greenforge.budget import check_budget

            status = check_budget(self.budget, self.energy_j, co2e, self.prediction)
            if status is not None:
                self._trip(status)

    def _account(self, interval: Interval) -> float | None:
        """Add the interval's CO2e to the running totals (queue it while the intensity is not
        known yet) and finish the windows it completes; returns the CO2e so far (g)."""
        with self._lock:
            series = self._series
            if series is None:
                self._pending.append(interval)
                return None
            if interval.duration_s > 0:
                energy_j = interval.energy_j
                g = series.co2e_g(interval.start_s, interval.end_s, energy_j, self.pue)
                if energy_j > 0:  # the same intensity and PUE: CO2e is linear in energy
                    per_j = g / energy_j
                    self._co2e_bounds_g[0] += per_j * sum(r.low_j for r in interval.readings)
                    self._co2e_bounds_g[1] += per_j * sum(r.high_j for r in interval.readings)
                self._co2e_so_far_g += g
                self._co2e_energy_j += energy_j
            self._sample_g.append(self._co2e_so_far_g)
            co2e = self._co2e_so_far_g
        self._finish_windows()
        return co2e

    def _finish_windows(self, final: bool = False) -> None:
        """Give every window whose end the accounted samples cover its final figures, once,
        in one pass: energy from the monitor, CO2e the running total at its end minus that at
        its start (both interpolated between the samples around each boundary). Windows inside
        the last accounted interval (nearly all when windows are short) under one intensity
        step take its energy x that intensity. With ``final`` (at stop) windows left without
        an intensity are finished with no CO2e."""
        monitor = self._monitor
        if monitor is None:
            return
        with monitor.lock:  # (the intensity thread may account beside the sampling thread)
            self._finish_windows_locked(monitor, final)

    def _finish_windows_locked(self, monitor: Monitor, final: bool) -> None:
        series = self._series
        spans = monitor.windows_from(self._windows_done)
        if not spans:
            return
        cols, pue = self._windows, self.pue
        cut = 0
        co2es: list[float | None] = []
        if series is not None:
            times, cum_g = monitor.sample_times_s, self._sample_g
            n = len(cum_g)
            covered_s = times[n - 1]
            # Spans close in order of their end: those the accounted samples cover come first
            # (and are final: the monitor finalises every window a sample covers).
            cut = bisect.bisect_right(spans, covered_s, key=_span_end_s)
            while cut and not spans[cut - 1].final:  # (never expected; kept as a guard)
                cut -= 1
            lo_s = times[n - 2] if n > 1 else covered_s
            steps = series.times_s
            if bisect.bisect_right(steps, lo_s) == bisect.bisect_right(steps, covered_s):
                # One intensity step over the last interval: a window inside it takes its
                # energy x that intensity, in one pass; the others are done one by one below.
                per_j = series.value_at(lo_s) / J_PER_KWH * pue
                co2es = [w.energy_j * per_j for w in spans[:cut]]
                slow = [i for i in range(cut) if spans[i].start_s < lo_s]
            else:
                co2es = [None] * cut
                slow = list(range(cut))
            for i in slow:
                span = spans[i]
                start_s, end_s = span.start_s, span.end_s
                k = bisect.bisect_right(times, start_s, 0, n) - 1
                if 0 <= k < n - 1 and end_s <= times[k + 1]:
                    # inside one interval, whose power is uniform: its energy x mean intensity
                    co2es[i] = series.co2e_g(start_s, end_s, span.energy_j, pue)
                else:
                    # The interval's energy spread evenly over it, times the intensity: the
                    # running CO2e between two samples grows with the intensity integral.
                    at_end = monitor.interpolate(cum_g, end_s, series.integral)
                    co2es[i] = at_end - monitor.interpolate(cum_g, start_s, series.integral)
        batch = spans[:cut]
        if final and cut < len(spans):
            rest = spans[cut:]
            batch.extend(rest)
            co2es.extend(map(self._window_co2e, rest))
        if not batch:
            return
        cols.paths.extend([w.path for w in batch])
        cols.depths.extend([w.depth for w in batch])
        cols.start_s.extend([w.start_s for w in batch])
        cols.end_s.extend([w.end_s for w in batch])
        cols.energy_j.extend([w.energy_j for w in batch])
        cols.co2e_g.extend(co2es)
        self._windows_done += len(batch)

    def _windows_so_far(self) -> tuple[WindowRecord, ...]:
        """Returns the final window records plus provisional ones for windows not finished,
        by start time (outer windows first)."""
        records = self._windows.records()
        keys = list(zip(self._windows.start_s, self._windows.depths, strict=True))
        if self._monitor is not None:
            for span in self._monitor.windows_from(self._windows_done):
                records.append(span.to_record(self._window_co2e(span)))
                keys.append((span.start_s, span.depth))
        return tuple(map(records.__getitem__, sorted(range(len(keys)), key=keys.__getitem__)))

    def _trip(self, status: BudgetStatus) -> None:
        self.budget_status = status
        self.over_budget = True
        log.warning("greenforge: run %s over budget: %s", self.run_id, status.reason)
        if self.budget is not None and self.budget.on_exceed is not None:
            try:
                self.budget.on_exceed(status)
            except Exception as exc:
                self._warn(f"budget callback failed: {exc}")

    def _on_tick(self) -> None:
        # Runs right after each sample, so a flush holds the energy up to the latest read.
        # The first sample is flushed at once (a run killed before the first flush interval
        # keeps what it used), then one flush every flush_interval_s: a kill -9 loses at most
        # one flush interval (or one sampling interval, if that is longer).
        now = time.monotonic()
        if not self._flushed_sample or now - self._last_flush_s >= self.settings.flush_interval_s:
            self._flushed_sample = True
            self._last_flush_s = now
            self._flush("running")
            if self.exporters:
                self._notify_exporters("flush")

    def _start_exporters(self) -> None:
        """Start the exporters before the workload; one that cannot start is a warning."""
        port, pushgateway = self._prometheus
        if port is not None or pushgateway is not None:
            from greenforge.integrations.prometheus import PrometheusExporter, print_endpoint

            try:
                prometheus = PrometheusExporter(
                    port, pushgateway=pushgateway, on_listen=print_endpoint
                )
            except ConfigError as exc:
                self._warn(f"no Prometheus metrics for this run: {exc}")
            else:
                self.exporters.append(prometheus)
        if self._experiment_trackers[0]:
            from greenforge.integrations.mlflow import MlflowExporter

            self.exporters.append(MlflowExporter())
        if self._experiment_trackers[1]:
            from greenforge.integrations.wandb import WandbExporter

            self.exporters.append(WandbExporter())
        started: list[Exporter] = []
        for exporter in self.exporters:
            try:
                exporter.start(self)
            except ConfigError as exc:
                self._warn(f"exporter {type(exporter).__name__} not started: {exc}")
            else:
                started.append(exporter)
        self.exporters = started

    def _notify_exporters(self, hook: str, *args: Any) -> None:
        for exporter in self.exporters:
            try:
                getattr(exporter, hook)(*args)
            except Exception as exc:  # an exporter never stops the measurement
                self._warn(f"exporter {type(exporter).__name__} failed in {hook}: {exc}")

    def _on_window_end(self, span: WindowSpan) -> None:
        if span.depth != 0 or self.expected_windows is None:
            return
        energies, co2es, durations = self._top_windows
        energies.append(span.energy_j)
        co2es.append(self._window_co2e(span))
        durations.append(span.end_s - span.start_s)
        if len(energies) < self.predict_after or len(energies) > self.expected_windows:
            return
        from greenforge.budget import check_budget, predict_total

        prediction = predict_total(energies, co2es, durations, self.expected_windows)
        self.prediction = prediction
        log.info(
            "greenforge: predicted total after %d/%d windows: %.4g kWh, %s gCO2e, %.4g s",
            prediction.windows_seen,
            prediction.windows_total,
            prediction.energy_j / J_PER_KWH,
            "unknown" if prediction.co2e_g is None else f"{prediction.co2e_g:.4g}",
            prediction.duration_s,
        )
        if self.on_prediction is not None:
            try:
                self.on_prediction(prediction)
            except Exception as exc:
                self._warn(f"prediction callback failed: {exc}")
        if self.budget is not None and self.budget.use_prediction and not self.over_budget:
            status = check_budget(self.budget, self.energy_j, self.co2e_g, prediction)
            if status is not None:
                self._trip(status)

    def _window_co2e(self, span: WindowSpan) -> float | None:
        """Provisional CO2e (g) of a window just closed: its energy spread over its span (the
        final figure comes from the running total, see :meth:`_finish_windows`)."""
        series = self._series
        if series is None:
            return None
        return series.co2e_g(span.start_s, span.end_s, span.energy_j, self.pue)

    # -- building records -----------------------------------------------------------------

    def _build_record(
        self, intervals: Sequence[Interval], status: RunStatus, end_s: float, final: bool
    ) -> RunRecord:
        """The run's record from the running totals (``intervals`` is not read: every interval
        was accounted as it was sampled, so a flush or the stop costs the same at any length)."""
        assert self._started_s is not None
        assert self._monitor is not None
        components = tuple(
            ComponentTotal(c, v[0], v[1], v[2], v[3]) for c, v in self._monitor.totals().items()
        )
        duration_s = max(end_s - self._started_s, 0.0)
        warnings = [*self.warnings, *self._monitor.warnings]
        return RunRecord(
            id=self.run_id,
            name=self.name,
            status=status,
            started_s=self._started_s,
            ended_s=end_s if final else None,
            duration_s=duration_s,
            components=components,
            emissions=self._emissions(end_s),
            embodied=self._embodied(duration_s),
            windows=self._windows_so_far() if final else (),
            prediction=self.prediction,
            meters=tuple(self._meter_descriptions()),
            warnings=tuple(dict.fromkeys(warnings)),
            metadata=self._record_metadata(),
        )

    def _emissions(self, end_s: float) -> Emissions | None:
        """Operational emissions of the intervals accounted so far (None without intensity)."""
        with self._lock:
            series = self._series
            co2e, (low_g, high_g) = self._co2e_so_far_g, self._co2e_bounds_g
            energy_j = self._co2e_energy_j
        if series is None:
            return None
        pue = self.pue
        if self._pue_series is not None and self._monitor is not None and energy_j > 0:
            from greenforge.pue import energy_weighted_pue

            pue = energy_weighted_pue(self._pue_series, self._monitor.intervals, pue)
        if energy_j > 0:
            mean = co2e / (energy_j / J_PER_KWH * pue)
        else:
            start_s = self._started_s or 0.0
            mean = series.mean(start_s, max(end_s, start_s))
        return Emissions(co2e, low_g, high_g, pue, self.pue_source, series.provenance, mean)

    def _embodied(self, duration_s: float) -> EmbodiedEmissions | None:
        if not self._measures_node:
            return None  # another rank of this node reports the machine's embodied share
        try:
            from greenforge.hardware.catalog import embodied_for
        except ImportError:
            if self.settings.embodied_kg is None:
                return None
            found: tuple[float, str] | None = (self.settings.embodied_kg, "settings.embodied_kg")
        else:
            found = embodied_for(self.settings)
        if found is None:
            return None
        kg, source = found
        lifetime_s = self.settings.device_lifetime_years * S_PER_YEAR
        device = self.settings.cloud_instance_type or "machine"
        return EmbodiedEmissions(
            co2e_g=kg * 1000.0 * duration_s / lifetime_s,
            device=device,
            device_embodied_kg=kg,
            lifetime_s=lifetime_s,
            share=1.0,
            source=source,
        )

    def _meter_descriptions(self) -> list[str]:
        out = list(self.meter_notes)
        if self._monitor is not None:
            out.extend(f"{d}: dropped during the run" for d in self._monitor.dropped)
        return out

    def _record_metadata(self) -> dict[str, Any]:
        meta = dict(self.metadata)
        meta.setdefault("host", socket.gethostname())
        meta.setdefault("pid", os.getpid())
        meta["interval_s"] = self.settings.interval_s
        meta["attribution"] = self.attribution
        if self._monitor is not None:
            meta["tracker_overhead_s"] = {
                "sampling_cpu": self._monitor.sampling_cpu_s,
                "setup_cpu": self._monitor.setup_cpu_s,
                "window_boundaries": self._monitor.boundary_s,
            }
        meta["zone"] = self.zone
        if self.zone_source is not None:
            meta["zone_source"] = self.zone_source
        if self.rank is not None and self.rank.distributed:
            meta["rank"] = self.rank.rank
            meta["local_rank"] = self.rank.local_rank
            meta["node"] = self.rank.node
        if self.budget is not None:
            meta["budget"] = {
                "co2e_g": self.budget.co2e_g,
                "energy_j": self.budget.energy_j,
                "exceeded": self.over_budget,
                "reason": None if self.budget_status is None else self.budget_status.reason,
            }
        return meta

    # -- edges: zone, intensity, PUE, meters, store ---------------------------------------

    def _resolve_zone(self) -> str:
        try:
            from greenforge.grid.zones import resolve_zone_source
        except ImportError:  # pragma: no cover - the grid package ships with greenforge
            zone = self.explicit_zone or self.settings.zone
            if not zone:
                raise ConfigError(
                    "no grid zone: pass zone=..., --zone, or set GREENFORGE_ZONE."
                ) from None
            return zone
        zone, why = resolve_zone_source(self.settings, self.explicit_zone, env=self.env)
        # e.g. "AWS_REGION=eu-central-1": the record says why it used this grid
        self.zone_source = why
        return zone

    def _intensity(self, start_s: float, end_s: float) -> StepIntensity:
        """The zone's intensity over ``[start_s, end_s)``, x PUE(t) / ``self.pue`` when ``pue=``
        is a PUE series (so every ``co2e_g(..., self.pue)`` charges PUE(t))."""
        steps = self._grid_intensity(start_s, end_s)
        if self._pue_series is None:
            return steps
        from greenforge.pue import fold_into_steps

        return fold_into_steps(steps, self._pue_series, self.pue)

    def _grid_intensity(self, start_s: float, end_s: float) -> StepIntensity:
        """The zone's intensity over ``[start_s, end_s)``: from the embedded tables without
        numpy when they are the only provider, else from the provider (chain)."""
        assert self.zone is not None
        from greenforge.grid.steps import StepIntensity, embedded_steps

        if self._provider is not None:
            return StepIntensity.from_series(self._provider.history(self.zone, start_s, end_s))
        if self._embedded_knows_zone():
            with contextlib.suppress(ConfigError):  # an unusual range: the provider says why
                return embedded_steps(
                    self.zone, start_s, end_s, basis=self.settings.intensity_basis
                )
        from greenforge.grid.chain import intensity_for

        series = intensity_for(self.settings, self.zone, start_s, end_s)
        return StepIntensity.from_series(series)

    def _chain_uses_network(self) -> bool:
        """True when the provider chain has a live API (anything but local tables/files)."""
        if self._provider is not None:
            return False
        return any(n not in LOCAL_PROVIDERS for n in self.settings.intensity_providers)

    def _embedded_knows_zone(self) -> bool:
        if self._provider is not None or tuple(self.settings.intensity_providers) != ("embedded",):
            return False
        from greenforge.grid.zones import canonical_zone

        return self.zone is not None and canonical_zone(self.zone) is not None

    def _resolve_pue(self) -> tuple[float, str]:
        if self._pue_series is not None:
            return self.pue, f"PUE(t) {self._pue_series.source}"
        if self._pue_value is not None:
            if not 1.0 <= self._pue_value <= 3.0:  # (the range Settings.pue accepts)
                raise ConfigError(f"pue={self._pue_value!r} must be between 1 and 3.")
            return self._pue_value, "argument pue"
        if self.settings.pue is not None:
            return self.settings.pue, "settings.pue"
        try:
            from greenforge.hardware.catalog import default_pue
        except ImportError:  # pragma: no cover
            return 1.0, "default:local-machine"
        # a zone from a cloud region variable (AWS_REGION=...) brings that cloud's PUE
        return default_pue(self.settings, self.zone_source)

    def _select_meters(self) -> list[Meter]:
        if self._injected_meters is not None:
            self.meter_notes.extend(f"{m.name}: injected" for m in self._injected_meters)
            meters = list(self._injected_meters)
            scopes = {getattr(m, "scope", "node") for m in meters}
            self.attribution = "process" if scopes == {"process"} else "machine"
            return self._bounded(meters)
        try:
            from greenforge.meters.select import attribution_warning, select_meters
        except ImportError as exc:  # pragma: no cover - meters ship with greenforge
            raise MeterError(f"meter selection is unavailable: {exc}") from None
        pid = self.pid
        if pid is None and self.settings.attribution == "process":
            # In-process tracking: the tracked process tree is this process and its children.
            # Without a pid the selection would silently fall back to machine attribution.
            pid = os.getpid()
        selection = select_meters(self.settings, pid=pid, tree=self.process_tree)
        self.attribution = self.settings.attribution
        self.meter_notes.extend(selection.reasons)
        warning = attribution_warning(self.settings)
        if warning is not None and warning not in self.warnings:
            self.warnings.append(warning)  # once, in the record (and `greenforge run`'s summary)
            log.info("greenforge: %s", warning)
        if not selection.meters:
            self._warn("no energy meter is usable on this machine; energy will read 0 J")
        return self._bounded(list(selection.meters))

    def _bounded(self, meters: list[Meter]) -> list[Meter]:
        """``meters``, after shortening the sampling interval to what their counters allow
        (RAPL must be read before it can wrap twice), with a warning when it had to."""
        from greenforge.meters.rapl import max_sampling_interval_s

        bound_s = max_sampling_interval_s(meters)
        if self.settings.interval_s > bound_s:
            self._warn(
                f"sampling interval {self.settings.interval_s:g} s is longer than the RAPL "
                f"counters allow without wrapping twice ({bound_s:.3g} s); sampling every "
                f"{bound_s:.3g} s instead"
            )
            self.settings = dataclasses.replace(self.settings, interval_s=bound_s)
        return meters

    def _open_store(self) -> RunStore | None:
        from greenforge.report.store import RunStore

        try:
            store = RunStore.for_settings(self.settings)
        except GreenForgeError as exc:
            self._warn(f"run store unavailable ({exc}); this run is kept in memory only")
            return None
        self._owns_store = True
        for text in store.warnings:  # e.g. a corrupt store moved aside: the record says so
            self._warn(text)
        return store

    def _flush(self, status: RunStatus) -> None:
        if not self._persist or self._store is None or self._monitor is None:
            return
        try:
            record = self._build_record((), status, self.clock(), final=False)
            self._save(record)
        except Exception as exc:
            self._warn(f"could not flush the run record: {exc}")

    def _save(self, record: RunRecord) -> None:
        """Store ``record`` without its windows, and the windows finished since the last
        save in one batch beside it (each window is written once, whatever the number of
        flushes; all of them again only when they were accounted anew or the store was
        replaced)."""
        with self._save_lock:
            self._save_locked(record)

    def _save_locked(self, record: RunRecord) -> None:
        if not self._persist or self._store is None:
            return
        from greenforge.report.store import PartOwner

        assert self.rank is not None
        seen = len(self._store.warnings)
        replace = self._windows_restore
        upto = self._windows_done  # read first: the columns may grow meanwhile
        new = self._windows.slice(0 if replace else self._windows_stored, upto)
        try:
            self._store.save_part(
                dataclasses.replace(record, windows=()) if record.windows else record,
                part=self._part,
                owner=PartOwner.current(self.rank.rank),
                flush_interval_s=self.settings.flush_interval_s,
                windows=new,
                replace_windows=replace,
            )
            self._windows_stored = upto
            self._windows_restore = False
        except GreenForgeError as exc:
            self._warn(f"could not store the run record: {exc}")
        fresh = self._store.warnings[seen:]
        if fresh:  # the store was corrupt and recovered while writing: the record says so
            for text in fresh:
                self._warn(text)
            noted = dataclasses.replace(
                record, warnings=tuple(dict.fromkeys([*record.warnings, *fresh]))
            )
            if self.record is record:
                self.record = noted
            self._windows_restore = True  # a fresh store holds none of the earlier windows
            self._save_locked(noted)

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning("greenforge: %s", message)


def _span_end_s(span: WindowSpan) -> float:
    return span.end_s


def _default_name() -> str:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    base = Path(argv0).name
    return base if base and base not in {"-c", "-"} else "run"


class track:  # noqa: N801 - reads like a function: `with track(...)`, `@track(...)`
    """Measure a block (``with track(...) as run``) or every call of a function (decorator).

    Accepts the keyword arguments of :class:`Tracker`. After the block or call, ``.record``
    holds the last :class:`RunRecord` (also stored in the run store).
    """

    def __init__(self, settings: Settings | None = None, **kwargs: Any) -> None:
        self._settings = settings
        self._kwargs = kwargs
        self.tracker: Tracker | None = None
        self.record: RunRecord | None = None

    def _new(self, default_name: str | None = None) -> Tracker:
        kwargs = dict(self._kwargs)
        if default_name is not None:
            kwargs.setdefault("name", default_name)
        self.tracker = Tracker(self._settings, **kwargs)
        return self.tracker

    def __enter__(self) -> Tracker:
        return self._new().start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.tracker is not None
        try:
            self.tracker.__exit__(exc_type, exc, tb)
        finally:
            self.record = self.tracker.record

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(func):
            # Measure the awaited body, not just the creation of the coroutine object.
            return self._wrap_coroutine(func)  # type: ignore[return-value]
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise ConfigError(
                f"@track cannot measure the generator function {func.__qualname__!r}: its body "
                "runs while the caller iterates. Use `with greenforge.track(...):` around the loop "
                "that consumes it."
            )

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with self._measuring(func):
                return func(*args, **kwargs)

        wrapper.greenforge_track = self  # type: ignore[attr-defined]
        return wrapper

    @contextlib.contextmanager
    def _measuring(self, func: Callable[..., Any]) -> Iterator[None]:
        """One tracked call of a decorated function; its record lands on ``self.record``."""
        tracker = self._new(getattr(func, "__qualname__", None)).start()
        try:
            yield
        except BaseException as exc:
            tracker.__exit__(type(exc), exc, exc.__traceback__)
            self.record = tracker.record
            raise
        try:
            tracker.stop("completed")
        finally:
            self.record = tracker.record

    def _wrap_coroutine(
        self, func: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            with self._measuring(func):
                return await func(*args, **kwargs)

        wrapper.greenforge_track = self  # type: ignore[attr-defined]
        return wrapper


def _exit_code(returncode: int) -> int:
    """A child's exit status as a shell reports it (killed by signal N -> 128 + N)."""
    return returncode if returncode >= 0 else 128 - returncode


class CommandStartError(ConfigError):
    """The command could not be started; exit code as a shell gives it (127 not found, 126
    found but not runnable)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _start_error(program: str, exc: OSError) -> CommandStartError:
    """A clear error (shell exit code) for an ``OSError`` raised while starting ``program``."""
    import errno

    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
        return CommandStartError(
            f"command not found: {program!r} (or the interpreter named on its #! line is "
            "missing). Check the name, or give its full path.",
            127,
        )
    if isinstance(exc, PermissionError) or exc.errno == errno.EACCES:
        return CommandStartError(
            f"command {program!r} cannot be executed (permission denied): make it executable "
            "(chmod +x) or run it through its interpreter.",
            126,
        )
    if exc.errno == errno.ENOEXEC:
        return CommandStartError(
            f"command {program!r} is not a valid program for this machine (exec format error): "
            "check it is a binary for this CPU, or a script whose first line is #!interpreter.",
            126,
        )
    return CommandStartError(f"command {program!r} could not be started: {exc}", 126)


def _check_runnable(program: str, env: Mapping[str, str]) -> None:
    """Raise :class:`CommandStartError` when ``program`` cannot be found or executed at all.

    Checked before measuring starts, so a typo never leaves a run behind; what only ``exec``
    can tell (a file that is not a program) is reported when the command starts.
    """
    import shutil

    if os.sep in program or (os.altsep and os.altsep in program):
        found: str | None = program if Path(program).exists() else None
    else:
        found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise _start_error(program, FileNotFoundError(2, "No such file", program))
    if Path(found).is_dir() or not os.access(found, os.X_OK):
        raise _start_error(program, PermissionError(13, "Permission denied", program))


def _die_with_parent(announce_fd: int | None = None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies (Linux
    ``PR_SET_PDEATHSIG``), so a SIGKILLed ``greenforge run`` never leaves its command running
    unmeasured; ``None`` where there is nothing to do in the child.

    ``announce_fd``: the child also writes its process group id there *before* it execs (the
    group watchdog's pipe), so no command can start a grandchild while the watchdog does not
    yet know which group to end."""
    prctl: Any = None
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):  # no libc prctl: skip that part
            prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the child
    if prctl is None and announce_fd is None:
        return None
    import signal

    parent = os.getpid()
    sigterm = int(signal.SIGTERM)

    def preexec() -> None:
        if announce_fd is not None:
            with contextlib.suppress(OSError):
                os.write(announce_fd, b"%d\n" % os.getpgrp())
        if prctl is not None:
            prctl(1, sigterm)  # PR_SET_PDEATHSIG = 1
            if os.getppid() != parent:  # the parent died before the call took effect
                os.kill(os.getpid(), sigterm)

    return preexec


class _GroupWatchdog:
    """A tiny ``sh`` that sends SIGTERM to a process group once this process is gone, however
    it died (``kill -9`` included): it reads the group id, then waits for EOF on a pipe only
    this process writes to. Started *before* the command, so there is no moment after the
    command starts without it; :meth:`stop` ends it when the command ends normally."""

    SCRIPT = 'read -r pg || exit 0; while read -r _; do :; done; kill -TERM "-$pg" 2>/dev/null'

    def __init__(self) -> None:
        import shutil
        import subprocess

        self._dog: subprocess.Popen[bytes] | None = None
        self._fd: int | None = None
        sh = shutil.which("sh")
        if sh is None:  # pragma: no cover - every POSIX system has sh
            return
        read_fd, write_fd = os.pipe()  # not inherited by anything else we start
        try:
            self._dog = subprocess.Popen(
                [sh, "-c", self.SCRIPT, "greenforge-watchdog"],
                stdin=read_fd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # survives a kill of our own process group
            )
            self._fd = write_fd
        except OSError:  # pragma: no cover - fork/exec failure: PR_SET_PDEATHSIG still holds
            os.close(write_fd)
        finally:
            os.close(read_fd)

    @property
    def fd(self) -> int | None:
        """The pipe the command's child side announces its group on (see _die_with_parent)."""
        return self._fd

    def watch(self, pgid: int) -> None:
        """Guard process group ``pgid`` from now on."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._fd, f"{pgid}\n".encode())

    def stop(self) -> None:
        """End the watchdog without it signalling anyone."""
        if self._dog is not None:
            self._dog.kill()
            self._dog.wait()
            self._dog = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _in_foreground_terminal() -> bool:
    """True when stdin is a terminal whose foreground process group is ours (interactive)."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except (OSError, AttributeError):  # no job control here (Windows)
        return False


def run_command(
    argv: Sequence[str],
    settings: Settings,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    zone: str | None = None,
    meters: Sequence[Meter] | None = None,
    provider: IntensityProvider | None = None,
    store: RunStore | None = None,
    env: Mapping[str, str] | None = None,
    on_spawn: Callable[[subprocess.Popen[bytes]], None] | None = None,
    exporters: Sequence[Exporter] | None = None,
    prometheus_port: int | None = None,
    pushgateway: str | None = None,
) -> tuple[int, RunRecord]:
    """Run ``argv`` as a child process, measure it (its whole process tree), store the run.

    Returns ``(exit code, record)``; the exit code is the child's (``128 + N`` when a signal
    killed it), and the record's status is ``completed`` for 0, ``failed`` otherwise. A bad
    zone or setting raises before the command starts, and a command that cannot start raises
    :class:`CommandStartError` (exit code 127 not found, 126 not runnable) without storing a
    run. Measuring starts *before* the command, so no part of it runs unmeasured; the record
    spans the command's whole life. Under process attribution the command's own tree is
    charged (not this process). The child sees ``GREENFORGE_ZONE`` (the resolved zone) and
    ``GREENFORGE_PARENT_RUN_ID``. On Linux the child gets SIGTERM if this process dies
    (``PR_SET_PDEATHSIG``); outside an interactive terminal it runs in its own process group.
    ``on_spawn`` receives the child process as soon as it exists (this function installs no
    signal handlers; the CLI uses it to forward SIGTERM). ``exporters``, ``prometheus_port`` and
    ``pushgateway`` are the :class:`Tracker`'s.
    """
    args = [str(a) for a in argv]
    if not args:
        raise ConfigError("no command to run: use `greenforge run -- CMD ARGS...`.")
    base_env = dict(os.environ if env is None else env)
    meta: dict[str, Any] = dict(metadata or {})
    meta["argv"] = redact_argv(args)  # stores and exports never hold keys typed on a CLI
    tracker = Tracker(
        settings,
        zone=zone,
        name=name or Path(args[0]).name,
        meters=meters,
        provider=provider,
        store=store,
        metadata=meta,
        env=base_env,
        exporters=exporters,
        prometheus_port=prometheus_port,
        pushgateway=pushgateway,
    )
    tree: ProcessTreeCpu | None = None
    if meters is None and settings.attribution == "process":
        from greenforge.meters.model import ProcessTreeCpu

        tree = tracker.process_tree = ProcessTreeCpu()  # the command's tree, attached below
    tracker.prepare()
    assert tracker.zone is not None
    child_env = dict(base_env)
    child_env["GREENFORGE_ZONE"] = tracker.zone
    child_env[PARENT_RUN_ENV] = tracker.run_id
    child_env.pop("GREENFORGE_RUN_ID", None)
    _check_runnable(args[0], child_env)
    own_group = os.name == "posix" and not _in_foreground_terminal()
    tracker.metadata["process_group"] = "own" if own_group else "terminal"
    tracker.start()
    # The command's own group gets SIGTERM if this process dies, however (kill -9 included):
    # PR_SET_PDEATHSIG reaches only the command itself, not what it started.
    watchdog = _GroupWatchdog() if own_group else None
    import subprocess  # (only for a command: a tracked block never starts one)

    try:
        proc = subprocess.Popen(
            args,
            env=child_env,
            # in the child, before exec: announce the group to the watchdog, then prctl
            preexec_fn=_die_with_parent(None if watchdog is None else watchdog.fd),
            process_group=0 if own_group else None,
        )
    except OSError as exc:
        if watchdog is not None:
            watchdog.stop()
        tracker.discard()
        raise _start_error(args[0], exc) from None
    except BaseException:
        if watchdog is not None:
            watchdog.stop()
        tracker.discard()
        raise
    if on_spawn is not None:
        on_spawn(proc)  # at once: e.g. the CLI forwards SIGTERM to the child
    if watchdog is not None:
        watchdog.watch(proc.pid)  # again from here (harmless): the group leader is the command
    if tree is not None:
        with contextlib.suppress(GreenForgeError):  # gone already: its CPU time comes below
            tree.attach(proc.pid)
    try:
        returncode, cpu_s = _wait_reaped(proc)
    finally:
        if watchdog is not None:
            watchdog.stop()
    if tree is not None and cpu_s is not None:
        # What the OS says the command and the children it waited for used in all: the final
        # sample charges it even if the command ended between two samples.
        tree.finish(cpu_s)
    code = _exit_code(returncode)
    status: RunStatus = "completed" if returncode == 0 else "failed"
    record = tracker.stop(status, exit_code=code)
    return code, record


def _wait(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the child; Ctrl-C reaches it through the terminal, so keep waiting for it."""
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            continue


def _wait_reaped(proc: subprocess.Popen[bytes]) -> tuple[int, float | None]:
    """Wait for the child and reap it; returns its return code (``-N`` if signal N killed it)
    and the CPU seconds it and the descendants it waited for used (``wait4``'s rusage; None
    where the OS does not say)."""
    wait4 = getattr(os, "wait4", None)
    if wait4 is None:  # pragma: no cover - Windows
        return _wait(proc), None
    while True:
        try:
            _, status, usage = wait4(proc.pid, 0)
        except KeyboardInterrupt:  # Ctrl-C reaches the command through the terminal
            continue
        except ChildProcessError:  # reaped elsewhere (e.g. Popen.poll): the code, no rusage
            return _wait(proc), None
        break
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # Popen must not wait for it again
    return code, float(usage.ru_utime + usage.ru_stime)


__all__ = ["CommandStartError", "Tracker", "interval_co2e_g", "new_run_id", "run_command", "track"]
