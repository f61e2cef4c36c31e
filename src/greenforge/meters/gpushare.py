"""Process attribution for NVIDIA GPUs: a GPU's energy split by who used it.

Under ``attribution="process"`` each ``gpu:<i>`` reading of an interval is multiplied by the
tracked tree's share of that GPU's use, from NVML's per-process accounting:
``nvmlDeviceGetProcessUtilization`` (SM utilisation per process since the previous read),
else ``nvmlDeviceGetComputeRunningProcesses`` (processes on the GPU, weighted by the memory
they hold). The reading's method gets a ``+gpu-share`` suffix.

The whole device stays charged, as under machine attribution, whenever the split cannot be
told: NVML lists no process (an idle GPU, or a driver that does not say), or none of the pids
it lists exists in this pid namespace (a container sees host pids it cannot match). A GPU used
only by other people's processes is charged 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psutil

from greenforge.meters.base import Meter, Scope
from greenforge.records import EnergyReading

SUFFIX = "+gpu-share"
DESCRIPTION = "process attribution: the tree's share of each GPU's use (NVML per-process)"


def gpu_share(
    tree_pids: set[int],
    usage: Sequence[tuple[int, float]],
    pid_visible: Callable[[int], bool] = psutil.pid_exists,
) -> float | None:
    """The tree's share (0..1) of one GPU's use, or None when it cannot be told.

    ``usage`` holds ``(pid, weight)`` for each process NVML saw on the GPU in the interval
    (weight: SM utilisation, or memory held; all zero counts each process once).
    """
    if not usage:
        return None
    if not any(pid in tree_pids or pid_visible(pid) for pid, _ in usage):
        return None  # host pids seen from a container: cannot tell ours from theirs
    weights = [(pid, max(float(w), 0.0)) for pid, w in usage]
    total = sum(w for _, w in weights)
    if total <= 0:
        weights = [(pid, 1.0) for pid, _ in weights]
        total = float(len(weights))
    ours = sum(w for pid, w in weights if pid in tree_pids)
    return min(max(ours / total, 0.0), 1.0)


def _usage(nvml: Any, handle: Any, since_us: int) -> tuple[list[tuple[int, float]], int]:
    """``(pid, weight)`` per process on the GPU since ``since_us``, and the newest sample's
    time stamp (µs); empty when NVML reports nothing."""
    newest = since_us
    try:
        samples = nvml.nvmlDeviceGetProcessUtilization(handle, since_us)
    except Exception:  # NVMLError (not supported / no samples yet) or an older pynvml
        samples = None
    if samples:
        by_pid: dict[int, float] = {}
        for s in samples:
            by_pid[int(s.pid)] = by_pid.get(int(s.pid), 0.0) + float(s.smUtil)
            newest = max(newest, int(s.timeStamp))
        if any(by_pid.values()):
            return list(by_pid.items()), newest
    try:
        procs = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except Exception:
        return [], newest
    return [(int(p.pid), float(getattr(p, "usedGpuMemory", 0) or 0)) for p in procs], newest


class GpuShareMeter:
    """Scopes an NVIDIA meter to a process tree (see the module docstring)."""

    scope: Scope = "process"

    def __init__(
        self,
        inner: Meter,
        tree_pids: Callable[[], Iterable[int]],
        pid_visible: Callable[[int], bool] = psutil.pid_exists,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._tree_pids = tree_pids
        self._pid_visible = pid_visible
        self._since_us: dict[str, int] = {}
        self.notes: list[str] = []

    def start(self) -> None:
        self.inner.start()

    def _handles(self) -> dict[str, Any]:
        gpus = getattr(self.inner, "gpus", ())
        return {g.component: g.handle for g in gpus}

    def read(self) -> Sequence[EnergyReading]:
        readings = self.inner.read()
        nvml = getattr(self.inner, "_nvml", None)
        handles = self._handles()
        try:
            ours = set(self._tree_pids())
        except Exception:  # never crash the workload: charge the whole device
            return readings
        out = []
        for r in readings:
            handle = handles.get(r.component)
            share = None
            if nvml is not None and handle is not None:
                usage, newest = _usage(nvml, handle, self._since_us.get(r.component, 0))
                self._since_us[r.component] = newest
                share = gpu_share(ours, usage, self._pid_visible)
            if share is None:
                out.append(r)  # cannot tell: the whole device, as its method says
                continue
            out.append(
                EnergyReading(
                    r.component,
                    r.energy_j * share,
                    f"{r.method}{SUFFIX}",
                    r.low_j * share,
                    r.high_j * share,
                )
            )
        return out

    def close(self) -> None:
        self.inner.close()
