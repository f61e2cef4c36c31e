"""Modelled CPU and RAM energy, for machines without energy counters.

``model-cpu``: a linear power curve ``P(u) = idle + (max - idle) * u`` over machine CPU
utilisation ``u`` (from ``psutil.cpu_times``), with the curve chosen by
:func:`greenforge.hardware.catalog.cpu_power_model` (TDP catalog, CCF per-vCPU coefficients or
a generic figure). Readings carry ``method="model:cpu-tdp" | "model:cpu-ccf-vcpu" |
"model:cpu-generic"`` and a low/high bound from the low/high curves.

``model-ram``: ``settings.ram_w_per_gb`` (default 0.375 W/GB, bounds 0.25-0.5 W/GB) x installed
memory (machine attribution; on a known ``cloud_instance_type`` the instance's memory, e.g.
m5.large: 8 GiB, not the host's) or x the tracked process tree's resident memory (process
attribution); ``method="model:ram-w-per-gb"``. GB here is 10^9 bytes.

``model-gpu``: the GPUs of a known ``cloud_instance_type`` (p4d.24xlarge: 8 x A100) when no GPU
meter reads them: ``count x TDP x 0.5`` with bounds idle to full TDP (see
:func:`greenforge.hardware.catalog.instance_gpu_power`); ``method="model:gpu-tdp"``.

Process attribution (``settings.attribution == "process"`` and a ``pid``): the tree's share of
busy CPU time in each interval, ``share = d(cpu time of root + descendants) / d(busy CPU time of
the machine)``, times the modelled machine power. The share includes the idle floor: a process
that is the only busy one is charged the whole machine power. Children that exit are still
counted (see :class:`ProcessTreeCpu`).
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psutil

from greenforge.config import Settings, load_settings
from greenforge.errors import MeterError
from greenforge.hardware.catalog import (
    CpuPowerModel,
    GpuPowerModel,
    cpu_power_model,
    instance_memory_bytes,
)
from greenforge.hardware.cpuinfo import CpuInfo, read_cpuinfo
from greenforge.meters.base import Availability, Meter, Scope, register_meter
from greenforge.records import EnergyReading

Clock = Callable[[], float]
CpuTimesFn = Callable[[], tuple[float, float]]
"""Returns machine-wide cumulative (busy_s, total_s), summed over all visible CPUs."""

BYTES_PER_GB = 1e9
RAM_W_PER_GB_LOW = 0.25
RAM_W_PER_GB_HIGH = 0.5


def machine_cpu_times() -> tuple[float, float]:
    """Cumulative busy and total CPU seconds of the machine (steal and guest excluded)."""
    t = psutil.cpu_times()
    busy = sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))
    idle = t.idle + getattr(t, "iowait", 0.0)
    return float(busy), float(busy + idle)


def utilisation(d_busy_s: float, d_total_s: float) -> float:
    """Busy share of CPU time in an interval, clipped to [0, 1] (0 when no time passed)."""
    if d_total_s <= 0:
        return 0.0
    return min(max(d_busy_s / d_total_s, 0.0), 1.0)


def process_share(d_process_s: float, d_busy_s: float) -> float:
    """Share of the machine's busy CPU time used by the tracked tree, clipped to [0, 1]."""
    if d_process_s <= 0:
        return 0.0
    if d_busy_s <= 0:
        return 1.0
    return min(d_process_s / d_busy_s, 1.0)


_Key = tuple[int, float]  # (pid, create_time): pids are reused, this pair is not

TREE_FRESH_S = 0.05
"""The RAM meter reuses a process-tree sample this recent (the CPU meter's, same tick)."""


def descendant_pids(pid: int, proc_root: str = "/proc") -> list[int] | None:
    """Returns the pids of every descendant of ``pid`` (children first), read from
    ``/proc/<pid>/task/<tid>/children``; ``None`` where the kernel does not provide those files.

    A sample reads a few files per process of the tree instead of the parent of every process
    on the machine (psutil's ``children(recursive=True)``: ~3 ms per 100 processes).
    """
    out: list[int] = []
    stack = [pid]
    first = True
    while stack:
        parent = stack.pop()
        try:
            tids = os.listdir(f"{proc_root}/{parent}/task")  # noqa: PTH208 - hot path, no Path objects
        except OSError:
            continue  # exited meanwhile
        for tid in tids:
            try:
                with open(f"{proc_root}/{parent}/task/{tid}/children", "rb") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except FileNotFoundError:
                if first and parent == pid and os.path.isdir(f"{proc_root}/{parent}/task/{tid}"):  # noqa: PTH112
                    return None  # the thread exists, the file does not: no kernel support
                continue
            except (OSError, ValueError):
                continue
            first = False
            out.extend(kids)
            stack.extend(kids)
    return out


class ProcessTreeCpu:
    """Cumulative CPU seconds (user + system) of a process and all its descendants.

    Each :meth:`sample` walks the live tree. A process contributes its own CPU time plus the
    CPU time of children it reaped since we first saw it. When a process exits, its last seen
    time is kept unless its parent is still in the tree (the parent's reaped-children time will
    include it in full once it waits for it). The result never decreases.

    ``pid=None`` makes a tree whose root is given later by :meth:`attach` (``greenforge run``
    starts measuring before its command exists); it reads 0 s until then. A process that
    started after the tree was made counts its reaped children from 0 (all of its life is
    inside the measurement).
    """

    def __init__(self, pid: int | None = None) -> None:
        self._since_s = time.time()
        self._root: psutil.Process | None = None
        self._root_key: _Key | None = None
        if pid is not None:
            self.attach(pid)
        self._base_reaped: dict[_Key, float] = {}
        self._contrib: dict[_Key, float] = {}
        self._parent: dict[_Key, _Key | None] = {}
        self._rss: dict[_Key, int] = {}
        self._total = 0.0
        self._lock = threading.Lock()
        self.sampled_at_s = -math.inf
        """``time.monotonic()`` of the latest :meth:`sample` (the RAM meter reuses it)."""

    def attach(self, pid: int) -> None:
        """Make ``pid`` the root of the tree (once; e.g. a command spawned after start)."""
        try:
            root = psutil.Process(pid)
            key: _Key = (pid, root.create_time())
        except (psutil.NoSuchProcess, psutil.AccessDenied) as exc:
            raise MeterError(
                f"cannot attribute energy to process {pid}: {exc}. "
                "Pass the pid of a running process you own, or use attribution='machine'."
            ) from None
        self._root, self._root_key = root, key

    def _procs(self) -> list[psutil.Process]:
        if self._root is None:
            return []
        pids = descendant_pids(self._root.pid)
        if pids is None:  # no /proc/<pid>/task/<tid>/children: psutil scans every process
            try:
                return [self._root, *self._root.children(recursive=True)]
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                return []
        procs = [self._root]
        for pid in pids:
            try:
                procs.append(psutil.Process(pid))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return procs

    def sample(self) -> float:
        """Cumulative CPU seconds of the tree so far."""
        with self._lock:
            self.sampled_at_s = time.monotonic()
            live: set[_Key] = set()
            for proc in self._procs():
                try:
                    with proc.oneshot():
                        key = (proc.pid, proc.create_time())
                        t = proc.cpu_times()
                        try:
                            ppid = proc.ppid()
                            pkey: _Key | None = (ppid, psutil.Process(ppid).create_time())
                        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
                            pkey = None
                        rss = int(proc.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                reaped = float(t.children_user + t.children_system)
                base = self._base_reaped.setdefault(key, 0.0 if key[1] >= self._since_s else reaped)
                self._contrib[key] = float(t.user + t.system) + max(reaped - base, 0.0)
                self._parent.setdefault(key, pkey if key != self._root_key else None)
                self._rss[key] = rss
                live.add(key)
            total = 0.0
            for key, value in self._contrib.items():
                if key in live:
                    total += value
                    continue
                self._rss.pop(key, None)
                parent = self._parent.get(key)
                if parent is None or parent not in live:
                    total += value  # nobody in the tree will report it: keep the last value
            self._total = max(self._total, total)
            return self._total

    def rss_bytes(self) -> int:
        """Resident memory of the live tree at the last sample."""
        with self._lock:
            return sum(self._rss.values())

    def finish(self, cpu_s: float) -> None:
        """Record what the OS reported when the root was reaped: ``cpu_s`` CPU seconds for it
        and the descendants it waited for. The tree never reads less from then on (a root
        that ended between two samples is still charged in full)."""
        with self._lock:
            if cpu_s > self._total:
                self._total = float(cpu_s)

    def live_pids(self) -> set[int]:
        """The pids of the tree's live processes at the last sample."""
        with self._lock:
            return {pid for pid, _ in self._rss}


class ModelCpuMeter:
    """CPU energy from utilisation x a power curve (``model:*``)."""

    name = "model-cpu"

    def __init__(
        self,
        settings: Settings | None = None,
        pid: int | None = None,
        cpuinfo: CpuInfo | None = None,
        cpu_times: CpuTimesFn = machine_cpu_times,
        process_cpu: Callable[[], float] | None = None,
        clock: Clock = time.monotonic,
        power_model: CpuPowerModel | None = None,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.cpu = cpuinfo if cpuinfo is not None else read_cpuinfo()
        self.model = (
            power_model if power_model is not None else cpu_power_model(self.settings, self.cpu)
        )
        self._cpu_times = cpu_times
        self._clock = clock
        self._process_cpu = process_cpu
        self._tree: ProcessTreeCpu | None = None
        process = self.settings.attribution == "process" and (
            pid is not None or process_cpu is not None
        )
        if process and process_cpu is None and pid is not None:
            self._tree = ProcessTreeCpu(pid)
            self._process_cpu = self._tree.sample
        if not process:
            self._process_cpu = None
        self.scope: Scope = "process" if process else "node"
        self._last: tuple[float, float, float, float] | None = None
        self._last_error = ""

    @property
    def method(self) -> str:
        return self.model.method

    @property
    def provenance(self) -> str:
        scope = "process-tree share of busy CPU time" if self.scope == "process" else "machine"
        return f"{self.model.provenance}; attribution: {scope}"

    def _snapshot(self) -> tuple[float, float, float, float]:
        busy, total = self._cpu_times()
        proc = self._process_cpu() if self._process_cpu is not None else 0.0
        return self._clock(), busy, total, proc

    def start(self) -> None:
        try:
            self._last = self._snapshot()
        except (OSError, psutil.Error) as exc:
            raise MeterError(f"cannot read CPU utilisation: {exc}") from None

    def read(self) -> Sequence[EnergyReading]:
        try:
            now = self._snapshot()
        except Exception as exc:  # never crash the workload
            self._last_error = str(exc)
            return []
        last = self._last if self._last is not None else now
        self._last = now
        dt_s = max(now[0] - last[0], 0.0)
        d_busy, d_total = now[1] - last[1], now[2] - last[2]
        central, low, high = self.model.power_w(utilisation(d_busy, d_total))
        share = process_share(now[3] - last[3], d_busy) if self.scope == "process" else 1.0
        k = dt_s * share
        return [EnergyReading("cpu", central * k, self.method, low * k, high * k)]

    def close(self) -> None:
        self._last = None


class ProcessShareMeter:
    """Scopes a node-wide meter (e.g. RAPL) to a process tree by its share of busy CPU time.

    Every reading of the inner meter is multiplied by the tree's share of the machine's busy CPU
    time in that interval; the method gets a ``+process-share`` suffix so the result says so.
    """

    scope: Scope = "process"

    def __init__(
        self,
        inner: Meter,
        pid: int | None = None,
        cpu_times: CpuTimesFn = machine_cpu_times,
        process_cpu: Callable[[], float] | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._cpu_times = cpu_times
        if process_cpu is None:
            if pid is None:
                raise MeterError("ProcessShareMeter needs a pid or a process_cpu function")
            process_cpu = ProcessTreeCpu(pid).sample
        self._process_cpu = process_cpu
        self._last: tuple[float, float] | None = None
        self._share = 1.0

    def _snapshot(self) -> tuple[float, float]:
        return self._cpu_times()[0], self._process_cpu()

    def start(self) -> None:
        self.inner.start()
        try:
            self._last = self._snapshot()
        except (OSError, psutil.Error) as exc:
            raise MeterError(f"cannot read CPU times for process attribution: {exc}") from None

    def read(self) -> Sequence[EnergyReading]:
        readings = self.inner.read()
        try:
            now = self._snapshot()
        except Exception:  # never crash the workload: keep the previous share
            share = self._share
        else:
            last = self._last if self._last is not None else now
            self._last = now
            share = process_share(now[1] - last[1], now[0] - last[0])
            self._share = share
        return [
            EnergyReading(
                r.component,
                r.energy_j * share,
                f"{r.method}+process-share",
                r.low_j * share,
                r.high_j * share,
            )
            for r in readings
        ]

    def close(self) -> None:
        self.inner.close()


def tree_rss_fn(tree: ProcessTreeCpu) -> Callable[[], float]:
    """A function returning the tree's resident memory (bytes) after a fresh sample."""

    def _rss() -> float:
        if time.monotonic() - tree.sampled_at_s > TREE_FRESH_S:  # else the CPU meter just did
            tree.sample()
        return float(tree.rss_bytes())

    return _rss


@functools.lru_cache(maxsize=1)
def _installed_memory_bytes() -> float:
    """Installed memory (bytes), read once: ``psutil.virtual_memory()`` parses /proc/meminfo
    (tens of microseconds) and the amount does not change while a run is measured."""
    return float(psutil.virtual_memory().total)


class ModelRamMeter:
    """RAM energy from a stated W/GB x memory (``model:ram-w-per-gb``)."""

    name = "model-ram"
    method = "model:ram-w-per-gb"

    def __init__(
        self,
        settings: Settings | None = None,
        pid: int | None = None,
        memory_bytes: Callable[[], float] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self._clock = clock
        process = self.settings.attribution == "process" and (
            pid is not None or memory_bytes is not None
        )
        self.scope: Scope = "process" if process else "node"
        self._instance_label = ""
        if memory_bytes is not None:
            self._memory = memory_bytes
        elif process and pid is not None:
            self._memory = tree_rss_fn(ProcessTreeCpu(pid))
        else:
            self._memory = _installed_memory_bytes
            instance = instance_memory_bytes(self.settings)
            if instance is not None:  # the VM's memory, not the host's (/proc/meminfo may
                # show a container host's or be inflated by balloon drivers)
                size, self._instance_label = instance
                self._memory = functools.partial(float, size)
        w = self.settings.ram_w_per_gb
        self.w_per_gb = w
        self.low_w_per_gb = min(RAM_W_PER_GB_LOW, w)
        self.high_w_per_gb = max(RAM_W_PER_GB_HIGH, w)
        self._last: tuple[float, float] | None = None

    @property
    def provenance(self) -> str:
        what = (
            "resident memory of the process tree"
            if self.scope == "process"
            else (self._instance_label or "installed memory")
        )
        return (
            f"{self.w_per_gb:g} W/GB (bounds {self.low_w_per_gb:g}-{self.high_w_per_gb:g}) x {what}"
        )

    def start(self) -> None:
        try:
            self._last = (self._clock(), self._memory())
        except (OSError, psutil.Error) as exc:
            raise MeterError(f"cannot read memory size: {exc}") from None

    def read(self) -> Sequence[EnergyReading]:
        try:
            now = (self._clock(), self._memory())
        except Exception:  # never crash the workload
            return []
        last = self._last if self._last is not None else now
        self._last = now
        dt_s = max(now[0] - last[0], 0.0)
        gb_s = (last[1] + now[1]) / 2 / BYTES_PER_GB * dt_s  # trapezoid over the interval
        return [
            EnergyReading(
                "ram",
                self.w_per_gb * gb_s,
                self.method,
                self.low_w_per_gb * gb_s,
                self.high_w_per_gb * gb_s,
            )
        ]

    def close(self) -> None:
        self._last = None


class ModelGpuMeter:
    """GPU energy of a cloud instance from its GPUs' TDP (``model:gpu-tdp``), for instances
    whose GPUs no meter reads. The whole instance's GPUs are charged (scope ``node``): which
    process uses them cannot be seen without a driver interface."""

    name = "model-gpu"
    scope: Scope = "node"

    def __init__(self, model: GpuPowerModel, clock: Clock = time.monotonic) -> None:
        self.model = model
        self.method = model.method
        self._clock = clock
        self._last: float | None = None

    @property
    def provenance(self) -> str:
        return self.model.provenance

    def start(self) -> None:
        self._last = self._clock()

    def read(self) -> Sequence[EnergyReading]:
        now = self._clock()
        last = self._last if self._last is not None else now
        self._last = now
        dt_s = max(now - last, 0.0)
        m = self.model
        return [EnergyReading("gpu", m.power_w * dt_s, m.method, m.low_w * dt_s, m.high_w * dt_s)]

    def close(self) -> None:
        self._last = None


def _cpu_factory(**kwargs: Any) -> ModelCpuMeter:
    return ModelCpuMeter(**kwargs)


def _ram_factory(**kwargs: Any) -> ModelRamMeter:
    return ModelRamMeter(**kwargs)


def probe_cpu(settings: Settings | None = None, cpuinfo: CpuInfo | None = None) -> Availability:
    """The modelled CPU meter always works; the detail says which curve it would use."""
    try:
        s = settings if settings is not None else load_settings()
        model = cpu_power_model(s, cpuinfo if cpuinfo is not None else read_cpuinfo())
    except Exception as exc:  # a bad setting: show it, do not crash doctor
        return Availability("model-cpu", False, f"cannot build the CPU model: {exc}")
    detail = f"{model.method}: {model.provenance}"
    if model.warning:
        detail += f" (warning: {model.warning})"
    return Availability(
        "model-cpu", True, detail, "set cpu_tdp_w or cloud_instance_type to refine the model"
    )


def probe_ram(settings: Settings | None = None) -> Availability:
    try:
        s = settings if settings is not None else load_settings()
        instance = instance_memory_bytes(s)
        if instance is not None:
            gb, what = (
                instance[0] / BYTES_PER_GB,
                f"{instance[1]} ({instance[0] / BYTES_PER_GB:.1f} GB)",
            )
        else:
            gb = _installed_memory_bytes() / BYTES_PER_GB
            what = f"{gb:.1f} GB installed"
    except Exception as exc:
        return Availability("model-ram", False, f"cannot read memory size: {exc}")
    return Availability(
        "model-ram",
        True,
        f"model:ram-w-per-gb: {s.ram_w_per_gb:g} W/GB x {what} = {s.ram_w_per_gb * gb:.1f} W",
        "set ram_w_per_gb to change the figure (0.25-0.5 W/GB is typical)",
    )


register_meter("model-cpu", _cpu_factory, probe_cpu)
register_meter("model-ram", _ram_factory, probe_ram)
