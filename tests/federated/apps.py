"""Small Flower apps for the federated tests: a numpy 'model' (no torch) whose update is a
fixed amount of work, so a real Flower round takes milliseconds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from greenforge.config import load_settings
from greenforge.federated._flwr import import_flwr
from greenforge.federated.client import carbon_mod, register_zone_query
from greenforge.testing import FakeMeter

flwr = import_flwr()
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402


def make_app(
    zones: Sequence[str],
    *,
    on_record: Callable[[Any], None] | None = None,
    power_w: float = 50.0,
    store: Any = None,
    persist_home: Path | None = None,
) -> ClientApp:
    """A ClientApp measured by carbon_mod with a fake 50 W meter (deterministic energy);
    ``persist_home`` stores each client measurement in that home's run store."""
    settings = None if persist_home is None else load_settings(home=persist_home)
    app = ClientApp(
        mods=[
            carbon_mod(
                zone=lambda c: zones[int(c.node_config["partition-id"])],
                meters=lambda: [FakeMeter(power_w)],
                on_record=on_record,
                store=store,
                settings=settings,
                persist=persist_home is not None,
            )
        ]
    )
    register_zone_query(app)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        arrays = msg.content.array_records["arrays"].to_numpy_ndarrays()
        pid = int(context.node_config["partition-id"])
        acc = 0.0
        for i in range(20_000):  # a little real work
            acc += i * 1e-9
        new = [a + 0.1 * (pid + 1) + acc * 0 for a in arrays]
        content = RecordDict(
            {
                "arrays": ArrayRecord(new),
                "metrics": MetricRecord({"num-examples": 10 * (pid + 1), "loss": 1.0 / (pid + 1)}),
            }
        )
        return Message(content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        content = RecordDict({"metrics": MetricRecord({"num-examples": 5, "accuracy": 0.5})})
        return Message(content, reply_to=msg)

    return app


def initial_arrays() -> ArrayRecord:
    return ArrayRecord([np.zeros((4, 3), dtype=np.float32), np.zeros(3, dtype=np.float32)])
