"""Executors that run planned slots: ``local``, ``slurm`` and ``ray`` (registry by name).

Importing this package registers the built-in executors; none imports an optional
dependency (Ray is imported only when the ``ray`` executor runs a slot).
"""

from __future__ import annotations

from greenforge.schedule.executors import local, ray, slurm  # noqa: F401
from greenforge.schedule.executors.base import (
    Executor,
    SlotOutcome,
    SlotSpec,
    create_executor,
    executor_names,
    register_executor,
)

__all__ = [
    "Executor",
    "SlotOutcome",
    "SlotSpec",
    "create_executor",
    "executor_names",
    "register_executor",
]
