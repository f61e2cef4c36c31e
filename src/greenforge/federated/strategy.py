"""Server side: strategy wrappers that keep the carbon ledger and pick clients by carbon.

Both wrap any Flower Message-API strategy (``FedAvg``, ``FedProx``, ``FedAdam`` ...) the way
Flower's own wrapper strategies do (the differential-privacy ones): they delegate every step
and add their part around it, so ``strategy.start(grid, ...)`` runs as usual::

    inner = FedAvg(fraction_train=1.0, fraction_evaluate=0.0)
    ledger = CarbonLedger(inner, server_zone="GB", clock=SimulatedClock(start_s))
    strategy = CarbonAwareSelection(ledger, clients_per_round=4, slack_h=6)
    strategy.start(grid, initial_arrays, num_rounds=30)
    ledger.ledger.save(path)

:class:`CarbonLedger` records per client per round: zone, hour, energy (per component, method,
bounds, from the client's :func:`~greenforge.federated.client.carbon_mod`), the intensity at
that hour from the grid chain (embedded profiles by default), CO2e, bytes down/up and their
network energy and CO2e (:mod:`~greenforge.federated.network`), and the server's own
aggregation energy (measured with the tracker), and the round's aggregated metrics. Under a
simulated clock the intensity is the chain's at the round's simulated hour; under the wall
clock it is the client tracker's own.

:class:`CarbonAwareSelection` asks each client its zone once (a ``greenforge_zone`` query),
then every round forecasts each zone's intensity for the round's slot (a forecaster from
:mod:`greenforge.schedule.forecast`), picks clients with :func:`~greenforge.federated.
selection.choose` (fairness floor + alpha-fair/blocklist rule), may defer the round within a
slack window, and stops when the next round would exceed the carbon budget.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from greenforge.config import Settings, load_settings
from greenforge.errors import ConfigError
from greenforge.federated._flwr import import_flwr
from greenforge.federated.client import (
    CO2E_METRIC,
    ENERGY_METRIC,
    RECORD_KEY,
    ZONE_QUERY,
)
from greenforge.federated.clock import HOUR_S, RoundClock, WallClock
from greenforge.federated.ledger import Ledger, LedgerEntry, RoundPlan
from greenforge.federated.network import NetworkCoefficient
from greenforge.federated.selection import Fairness, choose, random_choice
from greenforge.records import ComponentTotal
from greenforge.units import J_PER_KWH

if TYPE_CHECKING:
    from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
    from flwr.serverapp import Grid

    from greenforge.records import RunRecord

log = logging.getLogger("greenforge.federated")

_flwr = import_flwr("the federated strategies")
_Strategy: type = _flwr.serverapp.strategy.Strategy
_Grid: type = _flwr.serverapp.Grid


def message_bytes(msg: Message) -> int:
    """Bytes of a message's records (arrays, metrics, configs) as Flower counts them, without
    GreenForge's own measurement record (bookkeeping, not the application's traffic)."""
    if msg.has_error():
        return 0
    return int(
        sum(record.count_bytes() for key, record in msg.content.items() if key != RECORD_KEY)
    )


class SubsetGrid(_Grid):  # type: ignore[misc]
    """A view of a Grid that shows only some nodes, so the wrapped strategy samples from them."""

    def __init__(self, grid: Grid, node_ids: Sequence[int]) -> None:
        self._grid = grid
        self._ids = list(node_ids)

    def set_run(self, run: Any) -> None:
        self._grid.set_run(run)

    @property
    def run(self) -> Any:
        return self._grid.run

    def create_message(
        self,
        content: Any,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return self._grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return list(self._ids)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._grid.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self._grid.send_and_receive(messages, timeout=timeout)


class _Intensity:
    """Mean intensity (g/kWh) of a zone over an hour from the grid chain, cached."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: dict[tuple[str, float], tuple[float, str]] = {}

    def at(self, zone: str, start_s: float, end_s: float | None = None) -> tuple[float, str]:
        from greenforge.grid.chain import intensity_for
        from greenforge.grid.ops import mean_intensity

        end = start_s + HOUR_S if end_s is None else end_s
        key = (zone, start_s) if end_s is None else (zone, start_s + 1e-6 * end)
        hit = self._cache.get(key)
        if hit is None:
            series = intensity_for(self.settings, zone, start_s, max(end, start_s + 1.0))
            value = float(mean_intensity(series, [start_s], [max(end, start_s + 1.0)])[0])
            hit = (value, series.source)
            self._cache[key] = hit
        return hit


class CarbonLedger(_Strategy):  # type: ignore[misc]
    """Wraps a strategy and records the carbon ledger of every round (see module docstring).

    ``server_zone`` (else the settings' zone) is where aggregation runs; ``clock`` decides
    which hour a round is accounted at (default: the wall clock); ``save=True`` writes the
    ledger file after each round (``ledger.path``, default beside the run store).
    """

    def __init__(
        self,
        strategy: Any,
        *,
        ledger: Ledger | None = None,
        settings: Settings | None = None,
        server_zone: str | None = None,
        clock: RoundClock | None = None,
        network: NetworkCoefficient | None = None,
        save: bool = True,
        server_meters: Any = None,
    ) -> None:
        from greenforge.grid.zones import resolve_zone

        self.strategy = strategy
        self.settings = settings or load_settings()
        self.server_zone = resolve_zone(self.settings, server_zone)
        self.clock: RoundClock = clock or WallClock()
        self.network = network or NetworkCoefficient()
        self.ledger = ledger or Ledger()
        if self.ledger.path is None and save:
            self.ledger.path = Ledger.default_path(self.settings.resolved_home(), self.ledger.id)
        self.save = save
        self._server_meters = server_meters
        self._intensity = _Intensity(self.settings)
        self._down: dict[tuple[int, str, int], tuple[int, float]] = {}
        self._warned: set[str] = set()
        self.ledger.metadata.update(
            {
                "strategy": type(strategy).__name__,
                "clock": "simulated" if self.clock.simulated else "wall",
                "server_zone": self.server_zone,
                "network": {
                    "kwh_per_gb": self.network.kwh_per_gb,
                    "low_kwh_per_gb": self.network.low_kwh_per_gb,
                    "high_kwh_per_gb": self.network.high_kwh_per_gb,
                    "source": self.network.source,
                },
                "intensity_providers": list(self.settings.intensity_providers),
            }
        )

    # ------------------------------------------------------------------ Strategy API
    def summary(self) -> None:
        self.strategy.summary()
        log.info("carbon ledger %s (server zone %s)", self.ledger.id, self.server_zone)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        self._note_down(server_round, "train", messages)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        if not replies:  # nothing trained (e.g. the carbon budget stopped the run)
            return cast(
                "tuple[ArrayRecord | None, MetricRecord | None]",
                self.strategy.aggregate_train(server_round, []),
            )
        (arrays, metrics), record = self._measured(
            functools.partial(self.strategy.aggregate_train, server_round, replies),
            f"aggregate-train round {server_round}",
        )
        self._record(server_round, "train", replies, record, metrics)
        return arrays, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(self.strategy.configure_evaluate(server_round, arrays, config, grid))
        self._note_down(server_round, "evaluate", messages)
        return messages

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        replies = list(replies)
        if not replies:
            return cast("MetricRecord | None", self.strategy.aggregate_evaluate(server_round, []))
        metrics, record = self._measured(
            functools.partial(self.strategy.aggregate_evaluate, server_round, replies),
            f"aggregate-evaluate round {server_round}",
        )
        self._record(server_round, "evaluate", replies, record, metrics)
        return cast("MetricRecord | None", metrics)

    def central_evaluation(
        self, evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None]
    ) -> Callable[[int, ArrayRecord], MetricRecord | None]:
        """Returns ``evaluate_fn`` (Flower's server-side evaluation, the ``evaluate_fn`` of
        ``strategy.start``) wrapped so that its metrics (e.g. the global model's test accuracy)
        are kept in the ledger as the round's ``central`` metrics, and saved."""

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            metrics = evaluate_fn(server_round, arrays)
            if metrics is not None:
                self.ledger.add_metrics(server_round, "central", dict(metrics))
                if self.save and self.ledger.path is not None:
                    self.ledger.save()
            return metrics

        return evaluate

    # ------------------------------------------------------------------ internals
    def _note_down(self, server_round: int, phase: str, messages: Sequence[Message]) -> None:
        when = self.clock.now_s()
        for msg in messages:
            self._down[(server_round, phase, msg.metadata.dst_node_id)] = (
                message_bytes(msg),
                when,
            )

    def _measured(self, fn: Any, name: str) -> tuple[Any, RunRecord | None]:
        from greenforge.tracker import Tracker

        try:
            tracker = Tracker(
                self.settings,
                zone=self.server_zone,
                name=f"federated {name}",
                meters=None if self._server_meters is None else self._server_meters(),
                persist=False,
            )
            tracker.start()
        except Exception as exc:
            self._warn_once("server", f"server aggregation not measured: {exc}")
            return fn(), None
        try:
            result = fn()
        except BaseException:
            tracker.stop("failed")
            raise
        try:
            return result, tracker.stop()
        except Exception as exc:
            self._warn_once("server-stop", f"server aggregation not measured: {exc}")
            return result, None

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _record(
        self,
        server_round: int,
        phase: str,
        replies: Sequence[Message],
        server: RunRecord | None,
        metrics: MetricRecord | None,
    ) -> None:
        energy_sum = co2e_sum = 0.0
        for reply in replies:
            entry = self._client_entry(server_round, phase, reply)
            if entry is None:
                continue
            self.ledger.add(entry)
            energy_sum += entry.energy_j
            co2e_sum += entry.co2e_g
        if server is not None:
            self.ledger.add(self._server_entry(server_round, f"aggregate-{phase}", server))
        if metrics is not None and ENERGY_METRIC in metrics:
            metrics[ENERGY_METRIC] = energy_sum  # the round's sum, not Flower's weighted mean
            metrics[CO2E_METRIC] = co2e_sum
        if metrics is not None:  # e.g. the clients' mean accuracy, beside the round's CO2e
            self.ledger.add_metrics(server_round, phase, dict(metrics))
        if self.save and self.ledger.path is not None:
            self.ledger.save()

    def _hour(self, server_round: int, phase: str, node_id: int, measured_s: float) -> float:
        if self.clock.simulated:
            return self._down.get((server_round, phase, node_id), (0, self.clock.now_s()))[1]
        return measured_s

    def _client_entry(self, server_round: int, phase: str, reply: Message) -> LedgerEntry | None:
        if reply.has_error():
            return None
        node_id = int(reply.metadata.src_node_id)
        down = self._down.pop((server_round, phase, node_id), (0, self.clock.now_s()))[0]
        up = message_bytes(reply)
        record = reply.content.config_records.get(RECORD_KEY)
        info: dict[str, Any] | None = None if record is None else dict(record)
        if info is None or not info.get("measured", False):
            note = (
                str(info.get("note", "")) if info is not None else ""
            ) or "the client sent no measurement: add greenforge's carbon_mod to its ClientApp"
            self._warn_once(f"unmeasured-{node_id}", f"node {node_id}: {note}")
            client = str(info.get("client", f"node-{node_id}")) if info else f"node-{node_id}"
            zone = str(info.get("zone", "")) if info else ""
            return self._entry(
                server_round,
                phase,
                client,
                node_id,
                zone,
                None,
                down,
                up,
                self.clock.now_s(),
                note,
            )
        return self._entry(
            server_round,
            phase,
            str(info["client"]),
            node_id,
            str(info["zone"]),
            info,
            down,
            up,
            float(info["start_s"]),
            str(info.get("note", "")),
        )

    def _entry(
        self,
        server_round: int,
        phase: str,
        client: str,
        node_id: int,
        zone: str,
        info: Mapping[str, Any] | None,
        down: int,
        up: int,
        start_s: float,
        note: str,
    ) -> LedgerEntry:
        hour = self._hour(server_round, phase, node_id, start_s)
        components: tuple[ComponentTotal, ...] = ()
        energy = low = high = 0.0
        duration = 0.0
        pue = 1.0
        method = ""
        run_id = ""
        if info is not None:
            components = tuple(
                ComponentTotal(str(c), float(e), float(lo), float(hi), str(m))
                for c, e, lo, hi, m in zip(
                    info["components"],
                    info["component_energy_j"],
                    info["component_low_j"],
                    info["component_high_j"],
                    info["component_methods"],
                    strict=True,
                )
            )
            energy = float(info["energy_j"])
            low = float(info["energy_low_j"])
            high = float(info["energy_high_j"])
            duration = float(info["end_s"]) - float(info["start_s"])
            pue = float(info["pue"])
            method = "+".join(dict.fromkeys(c.method for c in components))
            run_id = str(info.get("run_id", ""))
        if info is not None and not self.clock.simulated and math.isfinite(float(info["co2e_g"])):
            intensity = float(info["intensity_g_per_kwh"])
            source = str(info["intensity_source"])
            co2e = float(info["co2e_g"])
            co2e_lo = float(info["co2e_low_g"])
            co2e_hi = float(info["co2e_high_g"])
        elif zone:
            intensity, source = self._intensity.at(zone, hour)
            factor = pue * intensity / J_PER_KWH
            co2e, co2e_lo, co2e_hi = energy * factor, low * factor, high * factor
        else:
            intensity, source, co2e, co2e_lo, co2e_hi = math.nan, "", 0.0, 0.0, 0.0
        net, net_lo, net_hi = self.network.energy_j(down + up)
        net_factor = intensity / J_PER_KWH if math.isfinite(intensity) else 0.0
        return LedgerEntry(
            round=server_round,
            phase=phase,
            client=client,
            node_id=node_id,
            zone=zone,
            hour_s=hour,
            clock="simulated" if self.clock.simulated else "wall",
            duration_s=duration,
            energy_j=energy,
            energy_low_j=low,
            energy_high_j=high,
            method=method,
            components=components,
            intensity_g_per_kwh=intensity,
            intensity_source=source,
            pue=pue,
            co2e_g=co2e,
            co2e_low_g=co2e_lo,
            co2e_high_g=co2e_hi,
            bytes_down=down,
            bytes_up=up,
            network_energy_j=net,
            network_energy_low_j=net_lo,
            network_energy_high_j=net_hi,
            network_co2e_g=net * net_factor,
            network_co2e_low_g=net_lo * net_factor,
            network_co2e_high_g=net_hi * net_factor,
            run_id=run_id,
            note=note,
        )

    def _server_entry(self, server_round: int, phase: str, record: RunRecord) -> LedgerEntry:
        em = record.emissions
        if self.clock.simulated or em is None:
            hour = self.clock.now_s() if self.clock.simulated else record.started_s
            intensity, source = self._intensity.at(self.server_zone, hour)
            pue = em.pue if em is not None else 1.0
            f = pue * intensity / J_PER_KWH
            co2e, lo, hi = record.energy_j * f, record.energy_low_j * f, record.energy_high_j * f
        else:
            hour = record.started_s
            intensity, source, pue = em.mean_intensity_g_per_kwh, em.intensity.source, em.pue
            co2e, lo, hi = em.co2e_g, em.low_g, em.high_g
        return LedgerEntry(
            round=server_round,
            phase=phase,
            client="server",
            node_id=0,
            zone=self.server_zone,
            hour_s=hour,
            clock="simulated" if self.clock.simulated else "wall",
            duration_s=record.duration_s,
            energy_j=record.energy_j,
            energy_low_j=record.energy_low_j,
            energy_high_j=record.energy_high_j,
            method="+".join(dict.fromkeys(c.method for c in record.components)),
            components=record.components,
            intensity_g_per_kwh=intensity,
            intensity_source=source,
            pue=pue,
            co2e_g=co2e,
            co2e_low_g=lo,
            co2e_high_g=hi,
            run_id=record.id,
        )


def _natural(label: str) -> tuple[str, int]:
    m = re.match(r"^(.*?)(\d+)$", label)
    return (m.group(1), int(m.group(2))) if m else (label, -1)


class CarbonAwareSelection(_Strategy):  # type: ignore[misc]
    """Picks each round's clients (and slot) by forecast CO2e; wraps a strategy.

    ``policy="carbon"`` (default) or ``"random"`` (the FedAvg baseline: ``k`` clients uniformly,
    seeded). ``slack_h`` lets a round wait up to that many hours for a cleaner slot;
    ``budget_co2e_g`` stops training before a round that would exceed it (by forecast).
    The ``budget`` rule's utility of a client is its last reply's ``num-examples`` x
    ``train_loss`` metrics (Flower's conventions); without them it picks by CO2e alone.
    Wrap a :class:`CarbonLedger` (its ledger and clock are used); the wrapped strategy must
    train every node it is shown (``fraction_train=1.0``).
    """

    def __init__(
        self,
        strategy: Any,
        *,
        clients_per_round: int,
        fairness: Fairness | None = None,
        policy: str = "carbon",
        slack_h: float = 0.0,
        forecaster: str = "embedded-profile",
        budget_co2e_g: float | None = None,
        clock: RoundClock | None = None,
        settings: Settings | None = None,
        zones: Mapping[int, str] | None = None,
        seed: int = 0,
        min_clients: int | None = None,
        wait_s: float = 60.0,
        reply_timeout_s: float = 3600.0,
    ) -> None:
        from greenforge.schedule.forecast import create_forecaster

        if policy not in ("carbon", "random"):
            raise ConfigError(f"bad selection policy {policy!r}: use 'carbon' or 'random'.")
        if not isinstance(clients_per_round, int) or clients_per_round < 1:
            raise ConfigError(f"bad clients_per_round {clients_per_round!r}: use an int >= 1.")
        if not (math.isfinite(slack_h) and 0 <= slack_h <= 24 * 7):
            raise ConfigError(f"bad slack_h {slack_h!r}: use 0 to 168 hours.")
        if budget_co2e_g is not None and not (math.isfinite(budget_co2e_g) and budget_co2e_g > 0):
            raise ConfigError(f"bad carbon budget {budget_co2e_g!r} g: use a value > 0.")
        self.strategy = strategy
        self.ledger_strategy = strategy if isinstance(strategy, CarbonLedger) else None
        base = strategy.strategy if isinstance(strategy, CarbonLedger) else strategy
        if float(getattr(base, "fraction_train", 1.0)) != 1.0:
            raise ConfigError(
                f"the wrapped {type(base).__name__} samples fraction_train="
                f"{base.fraction_train}: set fraction_train=1.0 so it trains the clients "
                "CarbonAwareSelection picks."
            )
        for attr in ("min_train_nodes", "min_available_nodes"):
            if int(getattr(base, attr, 0)) > clients_per_round:
                raise ConfigError(
                    f"the wrapped {type(base).__name__} has {attr}={getattr(base, attr)} > "
                    f"clients_per_round={clients_per_round}: lower it (it would wait forever)."
                )
        self.k = clients_per_round
        self.fairness = fairness or Fairness()
        self.policy = policy
        self.slack_h = float(slack_h)
        self.forecaster = create_forecaster(forecaster)
        self.budget_co2e_g = budget_co2e_g
        ledger_clock = self.ledger_strategy.clock if self.ledger_strategy else None
        self.clock: RoundClock = clock or ledger_clock or WallClock()
        self.settings = settings or (
            self.ledger_strategy.settings if self.ledger_strategy else load_settings()
        )
        self.ledger = self.ledger_strategy.ledger if self.ledger_strategy else Ledger()
        self._known_zones = dict(zones or {})
        self.rng = np.random.default_rng(seed)
        self.min_clients = min_clients or clients_per_round
        self.wait_s = wait_s
        self.reply_timeout_s = reply_timeout_s
        self.node_ids: list[int] = []
        self.labels: list[str] = []
        self.zones: list[str] = []
        self.counts: list[int] = []
        self.utility: list[float] = []
        self._energy: dict[int, list[float]] = {}
        self._rounds_started = 0
        self._picked: dict[int, tuple[int, ...]] = {}
        self._history: dict[tuple[str, float, int], np.ndarray] = {}
        self.ledger.metadata["selection"] = {
            "policy": policy,
            "clients_per_round": clients_per_round,
            "min_share": self.fairness.min_share,
            "rule": self.fairness.rule,
            "alpha": self.fairness.alpha,
            "budget_share": self.fairness.budget_share,
            "slack_h": self.slack_h,
            "forecaster": self.forecaster.name,
            "budget_co2e_g": budget_co2e_g,
            "seed": seed,
        }

    # ------------------------------------------------------------------ Strategy API
    def summary(self) -> None:
        self.strategy.summary()
        log.info(
            "carbon-aware selection: %s, %d clients/round, min share %.2f, slack %.1f h",
            self.policy,
            self.k,
            self.fairness.min_share,
            self.slack_h,
        )

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if self._rounds_started:
            self.clock.round_done()
        self._rounds_started += 1
        if not self.node_ids:
            self._discover(grid)
        if self.ledger.stopped:
            return []
        picks, forced, slot_s, expected = self._decide(server_round)
        if self.budget_co2e_g is not None:
            spent = self.ledger.total().co2e_g
            if spent + expected > self.budget_co2e_g:
                self.ledger.stopped = (
                    f"carbon budget: round {server_round} was forecast at {expected:.4g} g with "
                    f"{spent:.4g} g of {self.budget_co2e_g:.4g} g spent; training stopped."
                )
                log.warning(self.ledger.stopped)
                return []
        now = self.clock.now_s()
        self.clock.wait_until(slot_s)
        self.ledger.add_plan(
            RoundPlan(
                round=server_round,
                slot_s=slot_s,
                deferred_s=max(0.0, slot_s - now),
                selected=tuple(self.labels[i] for i in picks),
                forced=tuple(self.labels[i] for i in forced),
                expected_co2e_g=expected,
                policy=self.policy,
            )
        )
        self._picked[server_round] = picks
        sub = SubsetGrid(grid, [self.node_ids[i] for i in picks])
        return cast(
            "Iterable[Message]", self.strategy.configure_train(server_round, arrays, config, sub)
        )

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        index = {n: i for i, n in enumerate(self.node_ids)}
        for reply in replies:
            i = index.get(int(reply.metadata.src_node_id))
            if i is not None and not reply.has_error():
                self.counts[i] += 1
                m = reply.content.metric_records.get("metrics")
                loss = m.get("train_loss") if m is not None else None
                if isinstance(loss, (int, float)):
                    size = m.get("num-examples", 1) if m is not None else 1
                    self.utility[i] = float(size if isinstance(size, (int, float)) else 1) * loss
        result: tuple[ArrayRecord | None, MetricRecord | None] = self.strategy.aggregate_train(
            server_round, replies
        )
        self._learn_energy(server_round)
        return result

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if self.ledger.stopped:
            return []
        return cast(
            "Iterable[Message]",
            self.strategy.configure_evaluate(server_round, arrays, config, grid),
        )

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        return cast("MetricRecord | None", self.strategy.aggregate_evaluate(server_round, replies))

    # ------------------------------------------------------------------ internals
    def _discover(self, grid: Grid) -> None:
        deadline = time.monotonic() + self.wait_s
        while len(ids := sorted(int(n) for n in grid.get_node_ids())) < self.min_clients:
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"only {len(ids)} clients connected after {self.wait_s:.0f} s, "
                    f"{self.min_clients} needed: start more clients or lower min_clients."
                )
            time.sleep(0.5)
        labels: dict[int, str] = {n: f"node-{n}" for n in ids}
        zones: dict[int, str] = {n: z for n, z in self._known_zones.items() if n in labels}
        ask = [n for n in ids if n not in zones]
        answered: set[int] = set()
        if ask:
            flwr = import_flwr()
            messages = [flwr.app.Message(flwr.app.RecordDict(), n, ZONE_QUERY) for n in ask]
            for reply in grid.send_and_receive(messages, timeout=self.reply_timeout_s):
                n = int(reply.metadata.src_node_id)
                answered.add(n)
                info = None if reply.has_error() else reply.content.config_records.get(RECORD_KEY)
                if info is None:
                    continue
                zones[n] = str(info["zone"])
                labels[n] = str(info["client"])
        missing = [n for n in ids if n not in zones]
        if missing:
            silent = [n for n in missing if n not in answered]
            why = (
                f"{len(silent)} gave no answer within {self.reply_timeout_s:.0f} s "
                "(reply_timeout_s); "
                if silent
                else ""
            )
            raise ConfigError(
                f"{len(missing)} client(s) did not say their zone (nodes {missing[:5]}; {why}"
                f"{len(missing) - len(silent)} answered without it): build their ClientApp "
                "with mods=[carbon_mod(zone=...)] and call register_zone_query(app), or pass "
                "zones={node_id: zone}."
            )
        order = sorted(ids, key=lambda n: _natural(labels[n]))
        if self.policy == "carbon" and self.fairness.min_share * len(order) > self.k + 1e-9:
            raise ConfigError(
                f"min_share {self.fairness.min_share} x {len(order)} clients = "
                f"{self.fairness.min_share * len(order):.3g} participations per round, more "
                f"than clients_per_round={self.k}: lower min_share to <= "
                f"{self.k / len(order):.3g} or pick more clients per round."
            )
        self.node_ids = order
        self.labels = [labels[n] for n in order]
        self.zones = [zones[n] for n in order]
        self.counts = [0] * len(order)
        self.utility = [math.nan] * len(order)
        self.ledger.metadata["clients"] = dict(zip(self.labels, self.zones, strict=True))

    def _decide(self, server_round: int) -> tuple[tuple[int, ...], tuple[int, ...], float, float]:
        n = len(self.node_ids)
        k = min(self.k, n)
        now = self.clock.now_s()
        n_slots = 1 + int(self.slack_h) if self.policy == "carbon" else 1
        starts = [now + s * HOUR_S for s in range(n_slots)]
        energy_kwh = self._expected_energy_kwh()
        intensity = np.empty((n_slots, n))
        for i, zone in enumerate(self.zones):
            intensity[:, i] = self._forecast(zone, now, n_slots)
        expected = intensity * energy_kwh[None, :]
        if self.policy == "random":
            picks = random_choice(self.rng, n, k)
            return picks, (), now, float(expected[0, list(picks)].sum())
        choice = choose(
            expected,
            self.counts,
            server_round,
            k,
            self.fairness,
            utility=self.utility,
        )
        return choice.picks, choice.forced, starts[choice.slot], choice.expected_g

    def _forecast(self, zone: str, t0_s: float, horizon: int) -> np.ndarray:
        from greenforge.grid.chain import intensity_for
        from greenforge.schedule.forecast import forecast_after

        need = self.forecaster.history_steps(horizon, HOUR_S)
        t0 = math.floor(t0_s / HOUR_S) * HOUR_S
        history = np.empty(0)
        if need:
            series = intensity_for(self.settings, zone, t0 - need * HOUR_S, t0)
            history = np.asarray(series.values_g_per_kwh[-need:], dtype=np.float64)
        return forecast_after(self.forecaster, history, t0, HOUR_S, horizon, zone)

    def _expected_energy_kwh(self) -> np.ndarray:
        """Per client: mean measured train energy (+ network) so far, else the mean of all."""
        n = len(self.node_ids)
        known = {i: float(np.mean(v)) for i, v in self._energy.items() if v}
        fallback = float(np.mean(list(known.values()))) if known else J_PER_KWH * 1e-6
        return np.array([known.get(i, fallback) for i in range(n)]) / J_PER_KWH

    def _learn_energy(self, server_round: int) -> None:
        index = {label: i for i, label in enumerate(self.labels)}
        for e in self.ledger.entries:
            if e.round == server_round and e.phase == "train" and e.client in index:
                self._energy.setdefault(index[e.client], []).append(
                    e.energy_j * e.pue + e.network_energy_j
                )
