"""Tune the knobs that cut energy: CPU threads and batch size, GPU power limits.

- :func:`cpu_threads`, :func:`cpu_batch`, :func:`cpu_grid` (:mod:`greenforge.tune.cpu`):
  measure each setting with the forge measurement protocol and keep the one with the least
  Zeus cost ``eta*E + (1-eta)*MaxPower*T`` under a time constraint;
- :class:`CpuThreadTuner` (:mod:`greenforge.tune.callback`): the same for threads, inside a
  training loop;
- :class:`PowerLimitOptimizer` (:mod:`greenforge.tune.gpu`): GPU power limits over training
  windows through NVML, the original limits restored on exit;
- :class:`BatchSizeOptimizer` (:mod:`greenforge.tune.batch`): the batch size of a recurring
  job across its runs (Zeus's exploration, pruning and Thompson sampling);
- :mod:`greenforge.tune.output`: the trade-off table and plot.

Names are imported on first use (numpy and torch only when a tuner runs).
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "cpu_threads": "cpu",
    "cpu_batch": "cpu",
    "cpu_grid": "cpu",
    "Setting": "cpu",
    "SettingCost": "cpu",
    "Saving": "cpu",
    "TuneResult": "cpu",
    "CpuThreadTuner": "callback",
    "ThreadChoice": "callback",
    "BatchSizeOptimizer": "batch",
    "PowerLimitOptimizer": "gpu",
    "PowerLimitResult": "gpu",
    "PowerLimitError": "gpu",
    "PowerLimitPermissionError": "gpu",
    "TimeConstraint": "cost",
    "zeus_cost": "cost",
    "choose": "cost",
    "plot_tradeoff": "output",
    "tune_example": "examples",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'greenforge.tune' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"greenforge.tune.{module}"), name)
    globals()[name] = value
    return value
