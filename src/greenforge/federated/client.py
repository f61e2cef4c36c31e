"""Client side of the carbon ledger: a Flower mod that measures every ``train``/``evaluate``.

::

    from flwr.clientapp import ClientApp
    from greenforge.federated.client import carbon_mod, register_zone_query

    app = ClientApp(mods=[carbon_mod(zone="GB")])
    register_zone_query(app)        # lets CarbonAwareSelection ask each client its zone

    @app.train()
    def train(msg, context): ...

The mod starts a :class:`~greenforge.tracker.Tracker` (the client's own meters, zone, PUE and
grid chain) before the handler and stops it after, then adds to the reply

- ``greenforge.energy_j`` and ``greenforge.co2e_g`` in the reply's MetricRecord (so Flower's
  own metric logs show them; :class:`~greenforge.federated.strategy.CarbonLedger` replaces
  their weighted mean by the round's sum), and
- a ConfigRecord ``greenforge`` with the whole measurement: zone, client, run id, start/end,
  energy per component with method and low/high bounds, CO2e with bounds, intensity and source.

A measurement failure never fails the client's work: the reply goes out with NaN figures and
the reason in ``greenforge.note``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from greenforge.federated._flwr import import_flwr

if TYPE_CHECKING:
    from flwr.app import Context, Message

    from greenforge.config import Settings
    from greenforge.meters.base import Meter
    from greenforge.records import RunRecord
    from greenforge.report.store import RunStore

RECORD_KEY = "greenforge"
ENERGY_METRIC = "greenforge.energy_j"
CO2E_METRIC = "greenforge.co2e_g"
ZONE_QUERY = "query.greenforge_zone"
"""Message type of the zone question (``register_zone_query`` answers it)."""
ZoneSpec = str | Callable[["Context"], str] | None


def client_label(context: Context) -> str:
    """``client-<partition id>`` in a simulation (stable across runs), else ``node-<id>``."""
    pid = context.node_config.get("partition-id")
    if isinstance(pid, int) and not isinstance(pid, bool):
        return f"client-{pid}"
    return f"node-{context.node_id}"


def _zone(spec: ZoneSpec, context: Context) -> str | None:
    if callable(spec):
        return spec(context)
    if spec is not None:
        return spec
    for source in (context.node_config, context.run_config):
        value = source.get("greenforge-zone")
        if isinstance(value, str) and value:
            return value
    return None  # the tracker resolves it (GREENFORGE_ZONE, config, cloud region)


def carbon_mod(
    zone: ZoneSpec = None,
    *,
    settings: Settings | None = None,
    meters: Callable[[], list[Meter]] | None = None,
    store: RunStore | None = None,
    persist: bool = False,
    on_record: Callable[[RunRecord], None] | None = None,
) -> Callable[[Message, Context, Callable[[Message, Context], Message]], Message]:
    """Returns a Flower mod measuring each train/evaluate message with the tracker.

    ``zone``: a zone, or a function of the client's Context (e.g. of its partition id), else
    the node config / run config key ``greenforge-zone``, else the tracker's own resolution.
    ``meters`` builds fresh meters per measurement (tests inject fakes); ``persist``/``store``
    keep each measurement in the run store too; ``on_record`` sees every record.
    """
    flwr = import_flwr("the federated carbon mod")
    message_type = flwr.app.MessageType

    def mod(msg: Message, context: Context, call_next: Callable[..., Message]) -> Message:
        kind = msg.metadata.message_type
        if kind == ZONE_QUERY:
            return _zone_reply(msg, context, zone, settings)
        category = kind.split(".", 1)[0]
        if category not in (message_type.TRAIN, message_type.EVALUATE):
            return call_next(msg, context)
        config = msg.content.config_records.get("config")
        server_round = config.get("server-round", 0) if config is not None else 0
        tracker, note = _start_tracker(
            zone, context, settings, meters, store, persist, category, server_round
        )
        try:
            reply = call_next(msg, context)
        except BaseException:
            if tracker is not None:
                tracker.stop("failed")
            raise
        record: RunRecord | None = None
        if tracker is not None:
            try:
                record = tracker.stop()
            except Exception as exc:  # a measurement never fails the client's work
                note = f"measurement failed: {type(exc).__name__}: {exc}"
        if record is not None and on_record is not None:
            on_record(record)
        if not reply.has_error():
            _attach(reply, record, note, context, category)
        return reply

    return mod


def _start_tracker(
    zone: ZoneSpec,
    context: Context,
    settings: Settings | None,
    meters: Callable[[], list[Meter]] | None,
    store: RunStore | None,
    persist: bool,
    category: str,
    server_round: Any,
) -> tuple[Any, str]:
    from greenforge.tracker import Tracker

    label = client_label(context)
    try:
        tracker = Tracker(
            settings,
            zone=_zone(zone, context),
            name=f"federated {category} round {server_round} {label}",
            meters=None if meters is None else meters(),
            store=store,
            persist=persist or store is not None,
            metadata={"federated": {"client": label, "phase": category, "round": server_round}},
        )
        tracker.start()
    except Exception as exc:  # a bad zone or meter: report it, run the work unmeasured
        return None, f"not measured: {type(exc).__name__}: {exc}"
    return tracker, ""


def _attach(
    reply: Message, record: RunRecord | None, note: str, context: Context, category: str
) -> None:
    flwr = import_flwr()
    nan = math.nan
    energy = record.energy_j if record is not None else nan
    co2e = record.co2e_g if record is not None and record.co2e_g is not None else nan
    for metrics in reply.content.metric_records.values():
        metrics[ENERGY_METRIC] = float(energy)
        metrics[CO2E_METRIC] = float(co2e)
    info: dict[str, Any] = {
        "client": client_label(context),
        "phase": category,
        "note": note,
        "measured": record is not None,
    }
    if record is not None:
        em = record.emissions
        info.update(
            {
                "run_id": record.id,
                "zone": em.intensity.zone if em is not None else "",
                "start_s": record.started_s,
                "end_s": record.ended_s if record.ended_s is not None else record.started_s,
                "energy_j": record.energy_j,
                "energy_low_j": record.energy_low_j,
                "energy_high_j": record.energy_high_j,
                "components": [c.component for c in record.components],
                "component_energy_j": [c.energy_j for c in record.components],
                "component_low_j": [c.low_j for c in record.components],
                "component_high_j": [c.high_j for c in record.components],
                "component_methods": [c.method for c in record.components],
                "co2e_g": em.co2e_g if em is not None else nan,
                "co2e_low_g": em.low_g if em is not None else nan,
                "co2e_high_g": em.high_g if em is not None else nan,
                "pue": em.pue if em is not None else 1.0,
                "intensity_g_per_kwh": em.mean_intensity_g_per_kwh if em is not None else nan,
                "intensity_source": em.intensity.source if em is not None else "",
            }
        )
    reply.content[RECORD_KEY] = flwr.app.ConfigRecord(info)


def _zone_reply(
    msg: Message, context: Context, zone: ZoneSpec, settings: Settings | None
) -> Message:
    flwr = import_flwr()
    z = _zone(zone, context)
    if z is None:
        from greenforge.config import load_settings
        from greenforge.grid.zones import resolve_zone

        z = resolve_zone(settings or load_settings())
    content = flwr.app.RecordDict(
        {RECORD_KEY: flwr.app.ConfigRecord({"zone": z, "client": client_label(context)})}
    )
    reply: Message = flwr.app.Message(content=content, reply_to=msg)
    return reply


def register_zone_query(app: Any) -> None:
    """Registers the ``greenforge_zone`` query on a ClientApp built with :func:`carbon_mod`.

    Flower runs app-level mods only around registered handlers; this one is a placeholder the
    mod answers before it is reached.
    """

    @app.query("greenforge_zone")  # type: ignore[untyped-decorator]
    def _zone_query(msg: Message, context: Context) -> Message:  # pragma: no cover - mod answers
        raise RuntimeError("add greenforge.federated.client.carbon_mod to the ClientApp's mods")
