"""The ``local`` executor: runs each slot on this machine, measured, in the scheduler process.

The scheduler waits for the slot's start; the slot runs under the tracker with the supervisor
as the measured process (see :mod:`greenforge.schedule.executors.base`), which pauses an
interruptible job at the end of its slot.
"""

from __future__ import annotations

from typing import Any

from greenforge.config import Settings
from greenforge.schedule.executors.base import (
    Measure,
    SlotOutcome,
    SlotSpec,
    register_executor,
    run_measured_slot,
)


class LocalExecutor:
    """Run slots as local subprocesses (with pause/resume)."""

    name = "local"
    waits_for_start = False

    def __init__(self, settings: Settings, *, measure: Measure | None = None) -> None:
        self.settings = settings
        self.measure = measure

    def run_slot(self, spec: SlotSpec) -> SlotOutcome:
        settings = self.settings
        if settings.zone != spec.zone:
            from dataclasses import replace

            settings = replace(settings, zone=spec.zone)
        return run_measured_slot(spec, measure=self.measure, settings=settings)

    def cancel(self, external_id: str) -> None:
        """Local slots are stopped by their worker at the end of the slot; nothing to do."""


def _factory(settings: Settings, **options: Any) -> LocalExecutor:
    return LocalExecutor(settings, **options)


register_executor("local", _factory)
