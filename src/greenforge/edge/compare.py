"""Edge vs cloud serving: CO2e per day of N predictions, with intervals, and a recommendation.

Pure arithmetic over typed values (no I/O, no torch)::

    edge  = device energy x edge-zone intensity                        (no PUE, no network)
            + device embodied x (1 day / lifetime) x share
    cloud = server energy x PUE x cloud-region intensity
            + network energy of each request and response x edge-zone intensity
            + server embodied x (1 day / lifetime) x busy share

Device energy per day: a *dedicated* device (a Raspberry Pi bought to serve this model) draws
its idle power all day plus (load - idle) while inferring, and carries its whole embodied share;
a *shared* device (a phone, a cloud server) is charged its load power and embodied share for
the time it spends inferring only. The network is charged at the edge zone's intensity (the
access network near the user is where most transfer energy goes) with a cited kWh/GB range
(:class:`greenforge.federated.network.NetworkCoefficient`).

Every total is a :class:`~greenforge.edge.devices.Bound`: low = sum of the low ends, high = sum
of the high ends (conservative). The recommendation names a side only when the intervals do
not overlap; otherwise it says *within uncertainty* and which side the central estimates favour.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from greenforge.edge.devices import Bound, DeviceProfile
from greenforge.edge.energy import DeviceEstimate
from greenforge.errors import ConfigError
from greenforge.units import G_PER_KG, J_PER_KWH

S_PER_DAY = 86400.0
DAYS_PER_YEAR = 365.25
BYTES_PER_FLOAT32 = 4
DEFAULT_OVERHEAD_BYTES = 800
"""Assumption: protocol bytes per message (HTTP/1.1 headers and TLS record framing on a kept-
alive connection, about 0.5-1 kB); ``--overhead-bytes`` changes it."""


@dataclasses.dataclass(frozen=True)
class Payload:
    """Bytes moved per prediction when serving from the cloud."""

    request_bytes: int
    response_bytes: int
    basis: str

    @property
    def total_bytes(self) -> int:
        return self.request_bytes + self.response_bytes


def payload_for(
    input_elements: int, num_classes: int, overhead_bytes: int = DEFAULT_OVERHEAD_BYTES
) -> Payload:
    """Request = the float32 input + overhead; response = float32 logits + overhead."""
    for name, value in (
        ("input elements", input_elements),
        ("classes", num_classes),
        ("overhead bytes", overhead_bytes),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} {value!r} must be an integer >= 0.")
    return Payload(
        request_bytes=input_elements * BYTES_PER_FLOAT32 + overhead_bytes,
        response_bytes=num_classes * BYTES_PER_FLOAT32 + overhead_bytes,
        basis=(
            f"float32 input ({input_elements} values) and logits ({num_classes}) + "
            f"{overhead_bytes} B protocol overhead per message (assumption)"
        ),
    )


@dataclasses.dataclass(frozen=True)
class Site:
    """Where a side runs: grid zone, its intensity (g/kWh) with source, PUE with source."""

    zone: str
    intensity_g_per_kwh: float
    intensity_source: str
    pue: float = 1.0
    pue_source: str = "edge device: no data centre"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.intensity_g_per_kwh) and self.intensity_g_per_kwh >= 0):
            raise ConfigError(
                f"intensity {self.intensity_g_per_kwh!r} g/kWh of {self.zone!r} must be >= 0."
            )
        if not (math.isfinite(self.pue) and 1.0 <= self.pue <= 3.0):
            raise ConfigError(f"PUE {self.pue!r} must be between 1 and 3.")


@dataclasses.dataclass(frozen=True)
class Side:
    """One side of the comparison, per day (J and g), each figure a :class:`Bound`."""

    where: str
    """``edge`` or ``cloud``."""
    device: str
    label: str
    site: Site
    estimate: DeviceEstimate
    share: Bound
    """Embodied share: dedicated devices, how many are needed (busy time / 1 day, at least 1);
    shared devices, the busy fraction of the day."""
    share_basis: str
    dedicated: bool
    """A dedicated device: its idle power and whole embodied share are charged per day."""
    device_energy_j: Bound
    network_energy_j: Bound
    operational_g: Bound
    network_g: Bound
    embodied_g: Bound
    total_g: Bound

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "device": self.device,
            "label": self.label,
            "zone": self.site.zone,
            "intensity_g_per_kwh": self.site.intensity_g_per_kwh,
            "intensity_source": self.site.intensity_source,
            "pue": self.site.pue,
            "pue_source": self.site.pue_source,
            "per_inference": self.estimate.to_dict(),
            "share": self.share.to_dict(),
            "share_basis": self.share_basis,
            "dedicated": self.dedicated,
            "device_energy_j_per_day": self.device_energy_j.to_dict(),
            "network_energy_j_per_day": self.network_energy_j.to_dict(),
            "operational_co2e_g_per_day": self.operational_g.to_dict(),
            "network_co2e_g_per_day": self.network_g.to_dict(),
            "embodied_co2e_g_per_day": self.embodied_g.to_dict(),
            "total_co2e_g_per_day": self.total_g.to_dict(),
            "basis": "modelled",
        }


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Edge vs cloud for ``predictions_per_day``, and what to do."""

    predictions_per_day: int
    edge: Side
    cloud: Side
    payload: Payload
    network_source: str
    verdict: str
    """``edge``, ``cloud`` or ``within uncertainty``."""
    recommendation: str
    ratio: float
    """Cloud central total / edge central total (> 1: the edge emits less)."""
    break_even_predictions_per_day: float | None
    """Predictions per day above which the central estimates favour the side with the lower
    per-prediction cost (``None`` when one side is cheaper at every volume)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "predictions_per_day": self.predictions_per_day,
            "edge": self.edge.to_dict(),
            "cloud": self.cloud.to_dict(),
            "payload": dataclasses.asdict(self.payload),
            "network_source": self.network_source,
            "verdict": self.verdict,
            "recommendation": self.recommendation,
            "cloud_over_edge": self.ratio,
            "break_even_predictions_per_day": self.break_even_predictions_per_day,
            "method": (
                "model: edge = device energy x edge intensity + embodied share; cloud = server "
                "energy x PUE x region intensity + network kWh/GB x edge intensity + embodied "
                "busy share; bounds add low ends and high ends"
            ),
        }


def _scale(b: Bound, k: float, source: str | None = None) -> Bound:
    return Bound(b.low * k, b.central * k, b.high * k, source or b.source)


def _add(*bounds: Bound, source: str = "sum") -> Bound:
    return Bound(
        math.fsum(b.low for b in bounds),
        math.fsum(b.central for b in bounds),
        math.fsum(b.high for b in bounds),
        source,
    )


def _mul(a: Bound, b: Bound, source: str) -> Bound:
    return Bound(a.low * b.low, a.central * b.central, a.high * b.high, source)


def side(
    where: str,
    profile: DeviceProfile,
    estimate: DeviceEstimate,
    site: Site,
    predictions_per_day: int,
    *,
    network_j_per_prediction: Bound | None = None,
    network_intensity_g_per_kwh: float = 0.0,
) -> Side:
    """One side's CO2e per day (see the module docstring for the formula)."""
    n = float(predictions_per_day)
    busy_s = _scale(estimate.time_s, n)
    dedicated = profile.share == "dedicated"
    energy = _scale(estimate.energy_j, n, "predictions x energy per inference")
    if dedicated:
        # a device has one day of busy time per day: more predictions need more devices
        count = Bound(
            max(1.0, math.ceil(busy_s.low / S_PER_DAY)),
            max(1.0, math.ceil(busy_s.central / S_PER_DAY)),
            max(1.0, math.ceil(busy_s.high / S_PER_DAY)),
            "devices needed: busy time / 1 day, rounded up",
        )
        idle = _mul(_scale(profile.idle_w, S_PER_DAY), count, "idle all day x devices")
        energy = _add(energy, idle, source="idle all day + busy")
        share = count
        share_basis = (
            "dedicated: the device serves only this model (idle power and embodied)"
            if count.high <= 1.0
            else f"dedicated: {count.low:g}-{count.high:g} devices needed for the volume "
            "(idle power and embodied of each)"
        )
    else:
        share = Bound(
            min(busy_s.low / S_PER_DAY, 1.0),
            min(busy_s.central / S_PER_DAY, 1.0),
            min(busy_s.high / S_PER_DAY, 1.0),
            "busy time / 1 day",
        )
        share_basis = "shared: only the time spent inferring is charged"
    op = _scale(energy, site.pue * site.intensity_g_per_kwh / J_PER_KWH, "energy x PUE x intensity")
    zero = Bound(0.0, 0.0, 0.0, "none")
    net_j = _scale(network_j_per_prediction, n) if network_j_per_prediction is not None else zero
    net_g = _scale(net_j, network_intensity_g_per_kwh / J_PER_KWH, "network energy x intensity")
    per_day_g = _scale(profile.embodied_kg, G_PER_KG / (profile.lifetime_years * DAYS_PER_YEAR))
    embodied = _mul(per_day_g, share, "embodied / lifetime days x share")
    total = _add(op, net_g, embodied, source="operational + network + embodied")
    return Side(
        where,
        profile.name,
        profile.label,
        site,
        estimate,
        share,
        share_basis,
        dedicated,
        energy,
        net_j,
        op,
        net_g,
        embodied,
        total,
    )


def _fmt(g: float) -> str:
    return f"{g:.3g}"


def decide(edge: Side, cloud: Side) -> tuple[str, str, float]:
    """``(verdict, recommendation, cloud/edge central ratio)`` from the two totals' intervals."""
    e, c = edge.total_g, cloud.total_g
    ratio = c.central / e.central if e.central > 0 else math.inf
    span = (
        f"edge {_fmt(e.central)} g/day [{_fmt(e.low)}-{_fmt(e.high)}], cloud "
        f"{_fmt(c.central)} g/day [{_fmt(c.low)}-{_fmt(c.high)}]"
    )
    if e.high < c.low:
        return (
            "edge",
            f"serve on the edge ({edge.device}): lower CO2e beyond the uncertainty; {span}",
            ratio,
        )
    if c.high < e.low:
        return (
            "cloud",
            f"serve from the cloud ({cloud.device}): lower CO2e beyond the uncertainty; {span}",
            ratio,
        )
    favour = "edge" if e.central < c.central else "cloud"
    factor = ratio if favour == "edge" else (1.0 / ratio if ratio > 0 else math.inf)
    return (
        "within uncertainty",
        f"within uncertainty: the intervals overlap ({span}); the central estimates favour the "
        f"{favour} by {factor:.2g}x, which the bounds do not confirm - decide on other grounds "
        "(latency, privacy, cost) or narrow the bounds (measure the device)",
        ratio,
    )


def break_even(edge: Side, cloud: Side, predictions_per_day: int) -> float | None:
    """Predictions per day where the central totals are equal: each side is a fixed part per
    day (a dedicated device's idle energy and embodied share) plus a part per prediction."""
    n = float(predictions_per_day)
    if n <= 0:
        return None

    def split(s: Side) -> tuple[float, float]:
        per_pred_j = s.estimate.energy_j.central
        k = s.site.pue * s.site.intensity_g_per_kwh / J_PER_KWH
        variable = per_pred_j * k + s.network_g.central / n
        fixed = s.operational_g.central - per_pred_j * n * k
        if s.dedicated:  # (linear only while one device suffices)
            fixed += s.embodied_g.central
        else:
            variable += s.embodied_g.central / n
        return max(fixed, 0.0), variable

    fe, ve = split(edge)
    fc, vc = split(cloud)
    if math.isclose(ve, vc):
        return None
    n_star = (fc - fe) / (ve - vc)
    return n_star if n_star > 0 and math.isfinite(n_star) else None


def compare(
    predictions_per_day: int,
    *,
    edge_profile: DeviceProfile,
    edge_estimate: DeviceEstimate,
    edge_site: Site,
    cloud_profile: DeviceProfile,
    cloud_estimate: DeviceEstimate,
    cloud_site: Site,
    payload: Payload,
    network: Any,
) -> Comparison:
    """Edge vs cloud CO2e per day for ``predictions_per_day`` (``network``: a
    :class:`~greenforge.federated.network.NetworkCoefficient`)."""
    if (
        isinstance(predictions_per_day, bool)
        or not isinstance(predictions_per_day, int)
        or predictions_per_day < 1
    ):
        raise ConfigError(f"predictions per day {predictions_per_day!r} must be an integer >= 1.")
    central, low, high = network.energy_j(payload.total_bytes)
    net = Bound(low, central, high, str(network.source))
    edge = side("edge", edge_profile, edge_estimate, edge_site, predictions_per_day)
    cloud = side(
        "cloud",
        cloud_profile,
        cloud_estimate,
        cloud_site,
        predictions_per_day,
        network_j_per_prediction=net,
        network_intensity_g_per_kwh=edge_site.intensity_g_per_kwh,
    )
    verdict, text, ratio = decide(edge, cloud)
    return Comparison(
        predictions_per_day=predictions_per_day,
        edge=edge,
        cloud=cloud,
        payload=payload,
        network_source=str(network.source),
        verdict=verdict,
        recommendation=text,
        ratio=ratio,
        break_even_predictions_per_day=break_even(edge, cloud, predictions_per_day),
    )


__all__ = [
    "DEFAULT_OVERHEAD_BYTES",
    "Comparison",
    "Payload",
    "Side",
    "Site",
    "break_even",
    "compare",
    "decide",
    "payload_for",
    "side",
]
