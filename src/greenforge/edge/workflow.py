"""The edge commands as library calls: export what is missing, measure here, model devices,
compare edge and cloud. ``greenforge edge ...`` calls one function of this module each.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from greenforge.edge.compare import Comparison, Site, compare, payload_for
from greenforge.edge.devices import get_device
from greenforge.edge.energy import DeviceEstimate, HostBench, device_energy, measure_exports
from greenforge.edge.export import EDGE_DIR, safe_name
from greenforge.edge.source import (
    ForgeDir,
    candidate_names,
    check_inputs_for,
    export_dir,
    read_forge_dir,
)
from greenforge.errors import ConfigError, DataError


@dataclasses.dataclass(frozen=True)
class BenchResult:
    """Measured energy per inference here, and the modelled figures per device."""

    forge_dir: Path
    host: HostBench
    devices: dict[str, tuple[DeviceEstimate, ...]]
    """``{candidate: estimates}`` in the order of the devices asked for."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "forge_dir": str(self.forge_dir),
            "host": self.host.to_dict(),
            "devices": {c: [e.to_dict() for e in es] for c, es in self.devices.items()},
            "note": (
                "host figures are measured on this CPU with the forge protocol; device figures "
                "are model: estimates from published power and throughput (sources in each "
                "profile, `greenforge edge devices --json`), never measurements"
            ),
        }


def _exported(fd: ForgeDir, names: Sequence[str]) -> dict[str, Path]:
    """``{candidate: onnx path}``, exporting (with the check) those not exported yet."""
    edge = fd.path / EDGE_DIR
    missing = [n for n in names if not (edge / f"{safe_name(n)}.onnx").is_file()]
    if missing:
        export_dir(fd.path, missing)
    return {n: edge / f"{safe_name(n)}.onnx" for n in names}


def estimates_for(host: HostBench, devices: Sequence[str]) -> dict[str, tuple[DeviceEstimate, ...]]:
    """Modelled estimates of every measured candidate on every device (``model:``)."""
    out: dict[str, tuple[DeviceEstimate, ...]] = {}
    for m in host.measurements:
        if not m.flops or m.utilisation is None:
            raise DataError(
                f"{m.candidate!r}: its ONNX file records no FLOPs (greenforge_flops), so no "
                "device can be modelled; re-export it with `greenforge edge export`."
            )
        out[m.candidate] = tuple(
            device_energy(get_device(d), m.flops, m.kind, m.utilisation) for d in devices
        )
    return out


def bench(
    forge_dir: Path,
    *,
    settings: Any,
    candidates: Sequence[str] = (),
    devices: Sequence[str] = (),
    threads: int = 1,
    batch_size: int = 1,
    budget_s: float = 3.0,
    meters: Sequence[Any] | None = None,
) -> BenchResult:
    """Energy per inference of forge candidates (default: the chosen one): measured here on
    their ONNX exports (made first when missing), modelled on ``devices``."""
    from greenforge.edge.devices import device_names

    fd = read_forge_dir(forge_dir)
    names = candidate_names(fd, candidates)
    for d in devices:
        get_device(d)
    files = _exported(fd, names)
    host = measure_exports(
        files,
        settings=settings,
        threads=threads,
        batch_size=batch_size,
        budget_s=budget_s,
        inputs=check_inputs_for(fd)[0],
        meters=meters,
    )
    return BenchResult(fd.path, host, estimates_for(host, list(devices) or device_names()))


def zone_site(settings: Any, zone: str) -> Site:
    """The edge site: ``zone``'s mean intensity over the past year (the settings' provider
    chain; offline the embedded data), no PUE."""
    from greenforge.forge.measure import deployment_intensity

    value, source = deployment_intensity(settings, zone)
    return Site(zone, value, f"{source} (mean of the past year)")


def cloud_site(settings: Any, provider: str, region: str) -> Site:
    """The cloud site: the region's grid zone and intensity, the provider's PUE (the settings'
    ``pue`` when set)."""
    from greenforge.forge.measure import deployment_intensity
    from greenforge.grid.zones import cloud_region_zone
    from greenforge.hardware.catalog import PUE_DEFAULTS, PUE_SOURCE

    zone = cloud_region_zone(provider, region)
    value, source = deployment_intensity(settings, zone)
    if settings.pue is not None:
        pue, pue_source = float(settings.pue), "settings.pue"
    elif provider in PUE_DEFAULTS:
        pue, pue_source = PUE_DEFAULTS[provider], f"{PUE_SOURCE}:{provider}"
    else:  # pragma: no cover - cloud_region_zone refuses other providers
        raise ConfigError(f"no PUE for provider {provider!r}: set GREENFORGE_PUE.")
    return Site(
        zone,
        value,
        f"{source} (mean of the past year; {provider} {region} -> {zone})",
        pue,
        pue_source,
    )


def compare_dir(
    forge_dir: Path,
    *,
    settings: Any,
    predictions_per_day: int,
    edge_device: str,
    edge_zone: str,
    cloud_region: str,
    cloud_provider: str = "aws",
    cloud_device: str = "cloud-cpu",
    candidate: str | None = None,
    overhead_bytes: int | None = None,
    budget_s: float = 3.0,
    meters: Sequence[Any] | None = None,
    network: Any | None = None,
) -> Comparison:
    """Edge vs cloud CO2e per day for a forge candidate (default: the chosen one): measured
    here for the utilisation, modelled on both devices, at the zones' intensities."""
    from greenforge.edge.compare import DEFAULT_OVERHEAD_BYTES
    from greenforge.federated.network import NetworkCoefficient

    edge_profile = get_device(edge_device)
    cloud_profile = get_device(cloud_device)
    if edge_profile.kind != "edge":
        raise ConfigError(
            f"--edge-device {edge_device!r} is a {edge_profile.kind} profile; edge devices: "
            f"{', '.join(_kind_names('edge'))}."
        )
    if cloud_profile.kind != "cloud":
        raise ConfigError(
            f"--cloud-device {cloud_device!r} is an {cloud_profile.kind} profile; cloud "
            f"devices: {', '.join(_kind_names('cloud'))}."
        )
    edge = zone_site(settings, edge_zone)
    cloud = cloud_site(settings, cloud_provider, cloud_region)
    result = bench(
        forge_dir,
        settings=settings,
        candidates=[candidate] if candidate else [],
        devices=[edge_device, cloud_device],
        budget_s=budget_s,
        meters=meters,
    )
    fd = read_forge_dir(forge_dir)
    name = result.host.measurements[0].candidate
    edge_est, cloud_est = result.devices[name]
    payload = payload_for(
        math.prod(fd.input_shape),
        fd.num_classes,
        DEFAULT_OVERHEAD_BYTES if overhead_bytes is None else overhead_bytes,
    )
    return compare(
        predictions_per_day,
        edge_profile=edge_profile,
        edge_estimate=edge_est,
        edge_site=edge,
        cloud_profile=cloud_profile,
        cloud_estimate=cloud_est,
        cloud_site=cloud,
        payload=payload,
        network=network if network is not None else NetworkCoefficient(),
    )


def _kind_names(kind: str) -> list[str]:
    from greenforge.edge.devices import device_names

    return device_names(kind)


__all__ = ["BenchResult", "bench", "cloud_site", "compare_dir", "estimates_for", "zone_site"]
