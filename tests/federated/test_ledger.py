"""The carbon ledger on a real Flower round trip (in-process grid): its totals are the sums of
the clients' own tracker records, bytes and network energy are accounted, and it persists."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from flwr.serverapp.strategy import FedAvg, FedProx
from tests.federated.apps import initial_arrays, make_app

from greenforge.config import load_settings
from greenforge.errors import ConfigError, DataError
from greenforge.federated.clock import SimulatedClock, WallClock
from greenforge.federated.ledger import Ledger
from greenforge.federated.local import InProcessGrid
from greenforge.federated.network import NetworkCoefficient
from greenforge.federated.strategy import CarbonLedger
from greenforge.grid.profile import profile_quantiles
from greenforge.records import RunRecord
from greenforge.testing import FakeMeter
from greenforge.units import J_PER_KWH

ZONES = ["GB", "DE", "CA-ON", "IN-WE"]
START_S = 1678060800.0  # 2023-03-06T00:00Z


def _run(strategy: object, records: list[RunRecord], rounds: int = 2) -> InProcessGrid:
    grid = InProcessGrid(make_app(ZONES, on_record=records.append), len(ZONES))
    strategy.start(grid, initial_arrays(), num_rounds=rounds)  # type: ignore[attr-defined]
    return grid


def test_ledger_totals_equal_the_clients_tracked_records(tmp_path: Path) -> None:
    records: list[RunRecord] = []
    inner = FedAvg(fraction_train=1.0, fraction_evaluate=1.0, min_available_nodes=4)
    ledger = Ledger(path=tmp_path / "ledger.json")
    strategy = CarbonLedger(
        inner,
        ledger=ledger,
        server_zone="GB",
        clock=WallClock(),
        server_meters=lambda: [FakeMeter(20.0)],
    )
    _run(strategy, records)

    clients = ledger.clients(phase=None)
    assert len(clients) == len(records) == 2 * 2 * len(ZONES)  # train + evaluate per round
    assert math.fsum(e.energy_j for e in clients) == pytest.approx(
        math.fsum(r.energy_j for r in records), rel=1e-12
    )
    assert math.fsum(e.co2e_g for e in clients) == pytest.approx(
        math.fsum(r.co2e_g or 0.0 for r in records), rel=1e-12
    )
    assert {e.run_id for e in clients} == {r.id for r in records}
    by_id = {r.id: r for r in records}
    for e in clients:
        r = by_id[e.run_id]
        assert e.energy_low_j == pytest.approx(r.energy_low_j)
        assert e.energy_high_j == pytest.approx(r.energy_high_j)
        assert e.components == r.components
        assert e.method == "fake"
        assert e.zone == ZONES[int(e.client.split("-")[1])]
        assert e.intensity_source.startswith("embedded:profile-2021-2023:")
    # server aggregation is measured too, in the server zone
    server = [e for e in ledger.entries if e.client == "server"]
    assert {e.phase for e in server} == {"aggregate-train", "aggregate-evaluate"}
    assert all(e.zone == "GB" and e.energy_j > 0 for e in server)
    total = ledger.total()
    assert total.co2e_g == pytest.approx(math.fsum(e.total_co2e_g for e in ledger.entries))
    assert total.low_g <= total.co2e_g <= total.high_g
    # the file is written after every round and reads back the same
    loaded = Ledger.load(tmp_path / "ledger.json")
    assert loaded.entries == ledger.entries
    assert loaded.to_dict()["total"] == ledger.to_dict()["total"]


def test_network_bytes_and_energy_use_the_cited_range() -> None:
    records: list[RunRecord] = []
    coef = NetworkCoefficient()
    strategy = CarbonLedger(
        FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=4),
        server_zone="DE",
        clock=SimulatedClock(START_S),
        save=False,
        network=coef,
    )
    _run(strategy, records, rounds=1)
    train = strategy.ledger.clients("train")
    model_bytes = initial_arrays().count_bytes()
    for e in train:
        assert e.bytes_down >= model_bytes
        assert e.bytes_up >= model_bytes
        gb = (e.bytes_down + e.bytes_up) / 1e9
        assert e.network_energy_j == pytest.approx(gb * 0.0075 * J_PER_KWH)
        assert e.network_energy_low_j == pytest.approx(gb * 0.00375 * J_PER_KWH)
        assert e.network_energy_high_j == pytest.approx(gb * 0.06 * J_PER_KWH)
        assert e.network_co2e_g == pytest.approx(
            e.network_energy_j * e.intensity_g_per_kwh / J_PER_KWH
        )
    assert "Aslan" in strategy.ledger.metadata["network"]["source"]


def test_simulated_clock_accounts_each_round_at_its_hour_with_fedprox() -> None:
    records: list[RunRecord] = []
    strategy = CarbonLedger(
        FedProx(fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=4),
        server_zone="DE",
        clock=SimulatedClock(START_S),
        save=False,
    )
    # the plain ledger does not advance the clock: both rounds at START_S
    _run(strategy, records)
    for e in strategy.ledger.clients("train"):
        assert e.hour_s == START_S
        assert e.clock == "simulated"
        expected = float(profile_quantiles(e.zone, [START_S], 0.5)[0])
        assert e.intensity_g_per_kwh == pytest.approx(expected)
        assert e.co2e_g == pytest.approx(e.energy_j * e.pue * expected / J_PER_KWH)
    # the round's metrics carry the round's sums, not Flower's weighted mean
    assert math.fsum(r.energy_j for r in records) == pytest.approx(
        strategy.ledger.total(strategy.ledger.clients("train")).energy_j
    )


def test_unmeasured_clients_are_recorded_with_a_note() -> None:
    from flwr.app import Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: object) -> Message:
        content = RecordDict(
            {
                "arrays": msg.content.array_records["arrays"],
                "metrics": MetricRecord({"num-examples": 1}),
            }
        )
        return Message(content, reply_to=msg)

    strategy = CarbonLedger(
        FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=2),
        server_zone="DE",
        save=False,
    )
    with pytest.warns(RuntimeWarning, match="carbon_mod"):
        strategy.start(InProcessGrid(app, 2), initial_arrays(), num_rounds=1)
    entries = strategy.ledger.clients("train")
    assert len(entries) == 2
    assert all(e.energy_j == 0 and "carbon_mod" in e.note for e in entries)


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="low"):
        NetworkCoefficient(kwh_per_gb=0.1, low_kwh_per_gb=0.2, high_kwh_per_gb=0.3)
    with pytest.raises(ConfigError, match="round length"):
        SimulatedClock(START_S, round_s=0)
    with pytest.raises(DataError, match="no ledger file"):
        Ledger.load(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="not a GreenForge federated ledger"):
        Ledger.load(tmp_path / "x.json")
    with pytest.raises(ConfigError):
        CarbonLedger(FedAvg(), settings=load_settings(), save=False)  # no server zone anywhere


def test_a_failed_measurement_never_fails_the_clients_work() -> None:
    from tests.federated.apps import make_app as make

    app = make(["XX-NOWHERE", "GB"])  # the first client's zone is unknown to every provider
    strategy = CarbonLedger(
        FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=2),
        server_zone="GB",
        clock=SimulatedClock(START_S),
        save=False,
    )
    with pytest.warns(RuntimeWarning, match="not measured"):
        result = strategy.start(InProcessGrid(app, 2), initial_arrays(), num_rounds=1)
    assert result.train_metrics_clientapp  # training went on and was aggregated
    by_client = {e.client: e for e in strategy.ledger.clients("train")}
    assert "not measured" in by_client["client-0"].note
    assert by_client["client-0"].energy_j == 0
    assert by_client["client-1"].energy_j > 0
