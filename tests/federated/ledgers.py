"""Small real carbon ledgers for the report tests: a real Flower round trip (in-process grid,
the test apps' fake 50 W meters) under a simulated clock, saved where `greenforge federated
show` and `greenforge report --ledger` look for them."""

from __future__ import annotations

from collections.abc import Sequence

from flwr.app import ArrayRecord, MetricRecord
from flwr.serverapp.strategy import FedAvg
from tests.federated.apps import initial_arrays, make_app

from greenforge.federated.clock import SimulatedClock
from greenforge.federated.ledger import Ledger
from greenforge.federated.local import InProcessGrid
from greenforge.federated.selection import Fairness
from greenforge.federated.strategy import CarbonAwareSelection, CarbonLedger

ZONES = ("GB", "DE", "CA-ON", "IN-WE", "US-CAL-CISO", "GB")
START_S = 1678060800.0  # 2023-03-06T00:00Z


def small_ledger(
    rounds: int = 6,
    *,
    zones: Sequence[str] = ZONES,
    selection: bool = True,
    evaluate: bool = True,
    per_round: int = 2,
    min_share: float = 0.25,
    central: bool = False,
) -> Ledger:
    """Runs ``rounds`` rounds of the test app (train, and evaluate when ``evaluate``) with the
    carbon ledger, and carbon-aware selection of ``per_round`` clients when ``selection``;
    ``central`` adds a server-side evaluation whose accuracy is ``0.5 + 0.05 x round``.
    Returns the ledger, saved in ``<GREENFORGE_HOME>/federated``."""
    inner = FedAvg(
        fraction_train=1.0,
        fraction_evaluate=1.0 if evaluate else 0.0,
        min_train_nodes=1,
        min_evaluate_nodes=1,
        min_available_nodes=1,
    )
    ledger = CarbonLedger(inner, server_zone="DE", clock=SimulatedClock(START_S))
    strategy: object = ledger
    if selection:
        strategy = CarbonAwareSelection(
            ledger, clients_per_round=per_round, fairness=Fairness(min_share=min_share), slack_h=3
        )
    grid = InProcessGrid(make_app(list(zones)), len(zones))
    evaluate_fn = ledger.central_evaluation(_accuracy) if central else None
    strategy.start(  # type: ignore[attr-defined]
        grid, initial_arrays(), num_rounds=rounds, evaluate_fn=evaluate_fn
    )
    return ledger.ledger


def _accuracy(server_round: int, arrays: ArrayRecord) -> MetricRecord:
    return MetricRecord({"accuracy": 0.5 + 0.05 * server_round})
