"""The ``ray`` executor: each slot is a Ray task pinned to a node of the slot's zone.

Nodes declare their grid zone as a custom resource named ``zone:<ZONE>`` (for example
``ray start --resources='{"zone:GB": 1}'``, or ``ray.init(resources={"zone:GB": 1})``
for a local cluster). A slot in zone ``GB`` asks for ``{"zone:GB": 1}``, so Ray runs it only
on a GB node; the task measures the slot there through the tracker, with the same supervisor
(pause at the end of the slot) as the local executor. Ray is imported only when a slot runs.

Without an ``address`` (``--ray-address``), a local Ray is started that listens on 127.0.0.1
only, without the dashboard (:func:`greenforge.ray_local.init_ray`); with one, that cluster is
joined as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from greenforge.config import Settings
from greenforge.errors import ConfigError
from greenforge.ray_local import import_ray, init_ray
from greenforge.schedule.executors.base import (
    SlotOutcome,
    SlotSpec,
    register_executor,
    run_measured_slot,
)

ZONE_RESOURCE_PREFIX: Final[str] = "zone:"


def zone_resource(zone: str) -> str:
    """The custom resource that marks a node as being in ``zone``."""
    return f"{ZONE_RESOURCE_PREFIX}{zone}"


def zones_of(resources: Mapping[str, float]) -> list[str]:
    """Zones offered by a cluster, from its resource totals."""
    return sorted(
        k[len(ZONE_RESOURCE_PREFIX) :] for k in resources if k.startswith(ZONE_RESOURCE_PREFIX)
    )


def _run_slot_task(spec_json: str) -> str:
    """Body of the Ray task (runs on the zone's node)."""
    spec = SlotSpec.from_json(spec_json)
    return run_measured_slot(spec).to_json()


class RayExecutor:
    """Run slots as Ray tasks on zone-labelled nodes."""

    name = "ray"
    waits_for_start = False

    def __init__(
        self,
        settings: Settings,
        *,
        address: str | None = None,
        num_cpus: float = 1.0,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.address = address
        self.num_cpus = num_cpus
        self.init_kwargs = dict(init_kwargs or {})
        self._last_ref: Any = None

    def _ensure_ray(self) -> Any:
        return init_ray(self.address, what="the ray executor", **self.init_kwargs)

    def run_slot(self, spec: SlotSpec) -> SlotOutcome:
        ray = self._ensure_ray()
        resource = zone_resource(spec.zone)
        available = ray.cluster_resources()
        if available.get(resource, 0) < 1:
            zones = zones_of(available)
            listed = ", ".join(zones) if zones else "none"
            raise ConfigError(
                f"no Ray node is labelled with zone {spec.zone!r} (resource {resource!r}); "
                f"zones in this cluster: {listed}. Start a node with "
                f"`ray start --resources='{{\"{resource}\": 1}}'`."
            )
        if spec.home is None:
            spec = dataclasses.replace(spec, home=str(self.settings.resolved_home()))
        task = ray.remote(_run_slot_task).options(
            resources={resource: 1}, num_cpus=self.num_cpus, max_retries=0
        )
        ref = task.remote(spec.to_json())
        self._last_ref = ref
        outcome = SlotOutcome.from_json(ray.get(ref))
        return dataclasses.replace(outcome, external_id=ref.hex())

    def cancel(self, external_id: str) -> None:
        if self._last_ref is not None and self._last_ref.hex() == external_id:
            import_ray("the ray executor").cancel(self._last_ref)


def _factory(settings: Settings, **options: Any) -> RayExecutor:
    unknown = set(options) - {"address", "num_cpus", "init_kwargs"}
    if unknown:
        raise ConfigError(f"unknown ray executor option(s) {sorted(unknown)}.")
    return RayExecutor(settings, **options)


register_executor("ray", _factory)
