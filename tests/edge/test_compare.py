"""Specification of the edge vs cloud arithmetic, checked against a hand computation, and of
the recommendation under uncertainty."""

from __future__ import annotations

import dataclasses

import pytest

from greenforge.edge.compare import (
    Comparison,
    Site,
    break_even,
    compare,
    decide,
    payload_for,
)
from greenforge.edge.devices import Bound, DeviceProfile
from greenforge.edge.energy import device_energy, utilisation_bound
from greenforge.errors import ConfigError, DataError
from greenforge.federated.network import NetworkCoefficient


def exact(value: float, source: str = "test") -> Bound:
    return Bound(value, value, value, source)


def profile(name: str, kind: str, share: str, **figures: float) -> DeviceProfile:
    return DeviceProfile(
        name=name,
        label=name,
        kind=kind,
        sustained_gflops_fp32=exact(figures["gflops"]),
        sustained_gops_int8=exact(figures["gflops"] * 2),
        idle_w=exact(figures["idle_w"]),
        load_w=exact(figures["load_w"]),
        overhead_s=exact(0.0),
        embodied_kg=exact(figures["kg"]),
        lifetime_years=figures["years"],
        share=share,
    )


EDGE = profile("e", "edge", "dedicated", gflops=10.0, idle_w=2.0, load_w=6.0, kg=10.0, years=5.0)
CLOUD = profile("c", "cloud", "time", gflops=100.0, idle_w=1.0, load_w=10.0, kg=100.0, years=4.0)
FLOPS, UTIL, N = 1_000_000, 0.5, 100_000


def run(
    n: int = N,
    *,
    edge: DeviceProfile = EDGE,
    kind: str = "fp32",
    edge_site: Site | None = None,
    cloud_site: Site | None = None,
) -> Comparison:
    """The comparison of EDGE (or ``edge``) with CLOUD for the FLOPS/UTIL model."""
    return compare(
        n,
        edge_profile=edge,
        edge_estimate=device_energy(edge, FLOPS, kind, UTIL),
        edge_site=edge_site or Site("DE", 400.0, "test"),
        cloud_profile=CLOUD,
        cloud_estimate=device_energy(CLOUD, FLOPS, "fp32", UTIL),
        cloud_site=cloud_site or Site("SE", 100.0, "test", pue=1.2, pue_source="test"),
        payload=payload_for(8, 3),
        network=NetworkCoefficient(),
    )


def test_edge_and_cloud_per_day_match_a_hand_computation() -> None:
    payload = payload_for(8, 3)  # (8 x 4 + 800) + (3 x 4 + 800) bytes
    result = compare(
        N,
        edge_profile=EDGE,
        edge_estimate=device_energy(EDGE, FLOPS, "fp32", UTIL),
        edge_site=Site("DE", 400.0, "test"),
        cloud_profile=CLOUD,
        cloud_estimate=device_energy(CLOUD, FLOPS, "fp32", UTIL),
        cloud_site=Site("SE", 100.0, "test", pue=1.2, pue_source="test"),
        payload=payload,
        network=NetworkCoefficient(),
    )

    # edge: dedicated, so idle all day + (load - idle) while busy, no PUE, whole embodied share
    t_edge = FLOPS / (UTIL * 10e9)  # 2e-4 s
    edge_j = N * t_edge * (6.0 - 2.0) + 2.0 * 86400  # 80 J + 172,800 J
    edge_op = edge_j / 3.6e6 * 400.0
    edge_emb = 10_000.0 / (5 * 365.25)
    assert result.edge.device_energy_j.central == pytest.approx(edge_j)
    assert result.edge.operational_g.central == pytest.approx(edge_op)
    assert result.edge.embodied_g.central == pytest.approx(edge_emb)
    assert result.edge.network_g.central == 0.0
    assert result.edge.total_g.central == pytest.approx(edge_op + edge_emb)
    # cloud: shared, so load power while busy x PUE, network at the edge zone, busy-time embodied
    t_cloud = FLOPS / (UTIL * 100e9)  # 2e-5 s
    cloud_op = N * t_cloud * 10.0 * 1.2 * 100.0 / 3.6e6
    assert payload.total_bytes == 832 + 812
    net_j = N * 1644 / 1e9 * 0.0075 * 3.6e6
    net_g = net_j * 400.0 / 3.6e6
    cloud_emb = 100_000.0 / (4 * 365.25) * (N * t_cloud / 86400)
    assert result.cloud.operational_g.central == pytest.approx(cloud_op)
    assert result.cloud.network_energy_j.central == pytest.approx(net_j)
    assert result.cloud.network_g.central == pytest.approx(net_g)
    assert result.cloud.embodied_g.central == pytest.approx(cloud_emb)
    assert result.cloud.total_g.central == pytest.approx(cloud_op + net_g + cloud_emb)
    # network bounds come from the cited kWh/GB range
    assert result.cloud.network_g.low == pytest.approx(net_g * 0.00375 / 0.0075)
    assert result.cloud.network_g.high == pytest.approx(net_g * 0.06 / 0.0075)
    # a dedicated Pi idling all day for 100k tiny predictions loses to a shared cloud vCPU
    assert result.verdict == "cloud"
    assert result.recommendation.startswith("serve from the cloud")
    # break-even: fixed edge cost per day / (cloud - edge cost per prediction)
    fixed = 2.0 * 86400 / 3.6e6 * 400.0 + edge_emb
    per_edge = t_edge * 4.0 / 3.6e6 * 400.0
    per_cloud = (cloud_op + net_g + cloud_emb) / N
    assert result.break_even_predictions_per_day == pytest.approx(fixed / (per_cloud - per_edge))


def test_every_figure_is_labelled_as_modelled() -> None:
    result = run(kind="int8-static")
    doc = result.to_dict()

    assert doc["method"].startswith("model:")
    for where in ("edge", "cloud"):
        assert doc[where]["basis"] == "modelled"
        assert doc[where]["per_inference"]["method"].startswith("model:")
    assert doc["edge"]["per_inference"]["rate"] == "int8"  # int8 kinds use the int8 rate


def test_overlapping_intervals_are_called_within_uncertainty() -> None:
    result = run()
    edge = dataclasses.replace(result.edge, total_g=Bound(8.0, 10.0, 14.0, "t"))

    for cloud_total, verdict in (
        (Bound(12.0, 13.0, 20.0, "t"), "within uncertainty"),  # overlap: edge 8-14, cloud 12-20
        (Bound(15.0, 16.0, 20.0, "t"), "edge"),
        (Bound(2.0, 3.0, 7.9, "t"), "cloud"),
    ):
        cloud = dataclasses.replace(result.cloud, total_g=cloud_total)
        got, text, ratio = decide(edge, cloud)
        assert got == verdict
        assert ratio == pytest.approx(cloud_total.central / 10.0)
        if verdict == "within uncertainty":
            assert "within uncertainty" in text
            assert "favour the edge" in text


def test_a_dedicated_device_busy_for_more_than_a_day_counts_as_several() -> None:
    n = 1_000_000_000  # 2e-4 s each: 200,000 s of work a day
    result = run(n)

    assert result.edge.share.central == 3  # ceil(200000 / 86400)
    assert result.edge.device_energy_j.central == pytest.approx(
        n * FLOPS / (UTIL * 10e9) * 4.0 + 3 * 2.0 * 86400
    )
    assert "devices needed" in result.edge.share_basis


def test_break_even_is_none_when_one_side_is_cheaper_at_every_volume() -> None:
    shared_edge = dataclasses.replace(EDGE, share="time")
    result = run(
        1000,
        edge=shared_edge,
        edge_site=Site("FR", 50.0, "test"),
        cloud_site=Site("PL", 700.0, "test", pue=1.2, pue_source="test"),
    )

    assert break_even(result.edge, result.cloud, 1000) is None
    assert result.edge.share.central == pytest.approx(1000 * FLOPS / (UTIL * 10e9) / 86400)


def test_device_time_and_energy_follow_the_stated_method() -> None:
    est = device_energy(CLOUD, FLOPS, "fp32", UTIL)

    u = utilisation_bound(UTIL)
    assert (u.low, u.central, u.high) == (0.25, 0.5, 1.0)
    assert est.time_s.central == pytest.approx(FLOPS / (0.5 * 100e9))
    assert est.time_s.low == pytest.approx(FLOPS / (1.0 * 100e9))
    assert est.time_s.high == pytest.approx(FLOPS / (0.25 * 100e9))
    assert est.energy_j.central == pytest.approx(est.time_s.central * 10.0)  # shared: load power
    assert est.ops_per_j == pytest.approx(FLOPS / est.energy_j.central)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: device_energy(EDGE, 0, "fp32", UTIL), "FLOPs per prediction 0"),
        (lambda: utilisation_bound(0.0), "utilisation 0.0"),
        (lambda: payload_for(-1, 3), "input elements -1"),
        (lambda: Site("DE", -5.0, "t"), "intensity -5.0"),
        (lambda: Site("DE", 5.0, "t", pue=0.5), "PUE 0.5"),
        (lambda: Bound(3.0, 2.0, 4.0, "x"), "low <= central <= high"),
    ],
)
def test_bad_values_are_refused_naming_the_value(call: object, match: str) -> None:
    with pytest.raises((ConfigError, DataError), match=match):
        call()  # type: ignore[operator]


def test_predictions_per_day_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="predictions per day 0"):
        run(0)
