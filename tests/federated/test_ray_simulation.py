"""One real Flower simulation on the Ray backend (local Ray on 127.0.0.1, no dashboard): the
ledger the server keeps equals the sum of the records the clients' trackers stored."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from flwr.serverapp.strategy import FedAvg
from tests.federated.apps import initial_arrays, make_app

from greenforge.config import load_settings
from greenforge.federated.clock import SimulatedClock
from greenforge.federated.selection import Fairness
from greenforge.federated.simulation import run_simulation
from greenforge.federated.strategy import CarbonAwareSelection, CarbonLedger
from greenforge.report.store import RunStore

ZONES = ["CA-ON", "DE", "IN-WE"]


def test_ray_simulation_ledger_equals_client_records(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import ray

    settings = load_settings(home=tmp_path)
    store_path = tmp_path / "runs.sqlite"
    app = make_app(ZONES, persist_home=tmp_path)
    holder: dict[str, Any] = {}

    def serve(grid: Any) -> None:
        ledger = CarbonLedger(
            FedAvg(
                fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=1, min_train_nodes=1
            ),
            settings=settings,
            server_zone="DE",
            clock=SimulatedClock(1678060800.0),
        )
        strategy = CarbonAwareSelection(
            ledger, clients_per_round=2, fairness=Fairness(min_share=0.5), min_clients=3
        )
        strategy.start(grid, initial_arrays(), num_rounds=2)
        holder["ledger"] = ledger.ledger
        holder["addresses"] = {n["NodeManagerAddress"] for n in ray.nodes()}  # type: ignore[no-untyped-call]

    try:
        run_simulation(serve, app, len(ZONES), cpus=2)
    finally:
        ray.shutdown()
    # Flower used the loopback-only Ray that GreenForge started
    assert holder["addresses"] == {"127.0.0.1"}

    ledger = holder["ledger"]
    entries = ledger.clients("train")
    assert len(entries) == 4  # 2 rounds x 2 clients
    part = ledger.participation([f"client-{i}" for i in range(3)])
    assert min(part.values()) >= math.floor(0.5 * 2)  # the fairness bound
    with RunStore(store_path, read_only=True) as store:
        records = {r.id: r for r in store.list()}
    assert {e.run_id for e in entries} <= set(records)
    assert math.fsum(e.energy_j for e in entries) == pytest.approx(
        math.fsum(records[e.run_id].energy_j for e in entries), rel=1e-9
    )
    for e in entries:
        assert e.zone == ZONES[int(e.client.split("-")[1])]
        assert records[e.run_id].metadata["federated"]["client"] == e.client
    assert ledger.path is not None
    assert ledger.path.parent == tmp_path / "federated"
