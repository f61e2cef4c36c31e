"""Shift work to clean hours and places: plan, forecast, back-test (and execute).

- :class:`~greenforge.schedule.job.Job` and :func:`~greenforge.schedule.planner.plan_job`
  -> :class:`~greenforge.schedule.planner.Plan` (pure planner over numpy arrays).
- :func:`~greenforge.schedule.pipeline.make_plan`: the one pipeline behind ``plan``,
  ``schedule`` and ``queue add`` (job + settings + data -> plan, optional PUE).
- :mod:`greenforge.schedule.forecast`: forecasters by name.
- :mod:`greenforge.schedule.backtest`: replay history and count the savings.
- Execution (queue, runner, executors) builds on these.

Attributes are imported on first use, so ``import greenforge.schedule`` stays light. (The
back-test entry point is ``greenforge.schedule.backtest.backtest``: the submodule shares its
name, so it is not re-exported here.)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Job": "greenforge.schedule.job",
    "DEFAULT_POWER_W": "greenforge.schedule.job",
    "Plan": "greenforge.schedule.planner",
    "Slot": "greenforge.schedule.planner",
    "plan_job": "greenforge.schedule.planner",
    "make_plan": "greenforge.schedule.pipeline",
    "PlanOptions": "greenforge.schedule.pipeline",
    "PlanResult": "greenforge.schedule.pipeline",
    "PueSeries": "greenforge.schedule.pipeline",
    "create_forecaster": "greenforge.schedule.forecast",
    "forecaster_names": "greenforge.schedule.forecast",
    "register_forecaster": "greenforge.schedule.forecast",
    "DEFAULT_FORECASTER": "greenforge.schedule.forecast",
    "JobShape": "greenforge.schedule.backtest",
    "backtest_series": "greenforge.schedule.backtest",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'greenforge.schedule' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
