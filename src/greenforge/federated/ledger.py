"""The carbon ledger of a federated run: one entry per client per round (and per server step).

Each :class:`LedgerEntry` says who (client, zone), when (round, the hour it is accounted at,
simulated or wall clock), how much energy (per component, method, low/high), at which grid
intensity (and its source), the CO2e, and the bytes moved down/up with their network energy
and CO2e (a cited coefficient range, :mod:`greenforge.federated.network`). Totals add the
bounds (a conservative interval). The ledger is a JSON document written atomically after each
round, by default ``<GREENFORGE_HOME>/federated/<ledger id>.json`` beside the run store;
:func:`find_ledger` finds one by file or id (``greenforge federated show``, ``greenforge report
--ledger``). Beside the entries it keeps each round's aggregated Flower metrics
(:class:`RoundMetrics`: the clients' train/evaluate metrics, and the server's own evaluation
when the app adds it), so accuracy can be read against CO2e.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from greenforge.errors import ConfigError, DataError
from greenforge.records import ComponentTotal

LEDGER_SCHEMA = 1
LEDGER_DIR = "federated"
_LEDGER_HINT = (
    "Pass a ledger file written by greenforge.federated.strategy.CarbonLedger "
    "(<GREENFORGE_HOME>/federated/<id>.json) or a ledger id from `greenforge federated show`."
)

Phase = Literal["train", "evaluate", "aggregate-train", "aggregate-evaluate"]
PHASES: tuple[str, ...] = ("train", "evaluate", "aggregate-train", "aggregate-evaluate")


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    """Energy and emissions of one client (or the server) in one phase of one round."""

    round: int
    phase: str
    """``train`` / ``evaluate`` (a client) or ``aggregate-train`` / ``aggregate-evaluate``."""
    client: str
    """``client-<partition id>`` (else ``node-<id>``), or ``server``."""
    node_id: int
    zone: str
    hour_s: float
    """Unix time the entry is accounted at: the round's slot (simulated) or the step's start."""
    clock: str
    """``simulated`` or ``wall``."""
    duration_s: float
    energy_j: float
    energy_low_j: float
    energy_high_j: float
    method: str
    components: tuple[ComponentTotal, ...]
    intensity_g_per_kwh: float
    intensity_source: str
    pue: float
    co2e_g: float
    co2e_low_g: float
    co2e_high_g: float
    bytes_down: int = 0
    bytes_up: int = 0
    network_energy_j: float = 0.0
    network_energy_low_j: float = 0.0
    network_energy_high_j: float = 0.0
    network_co2e_g: float = 0.0
    network_co2e_low_g: float = 0.0
    network_co2e_high_g: float = 0.0
    run_id: str = ""
    """The tracker record of the measurement (the client's own run id)."""
    note: str = ""
    """Why a figure is missing or estimated (e.g. the client sent no measurement)."""

    @property
    def total_co2e_g(self) -> float:
        """Compute plus network CO2e (g)."""
        return self.co2e_g + self.network_co2e_g

    @property
    def total_low_g(self) -> float:
        return self.co2e_low_g + self.network_co2e_low_g

    @property
    def total_high_g(self) -> float:
        return self.co2e_high_g + self.network_co2e_high_g

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["total_co2e_g"] = self.total_co2e_g
        out["total_low_g"] = self.total_low_g
        out["total_high_g"] = self.total_high_g
        return out

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> LedgerEntry:
        fields = {f.name for f in dataclasses.fields(LedgerEntry)}
        values = {k: v for k, v in data.items() if k in fields}
        values["components"] = tuple(ComponentTotal(**c) for c in data.get("components", ()))
        return LedgerEntry(**values)


@dataclasses.dataclass(frozen=True)
class RoundPlan:
    """What the selection decided for one round (kept in the ledger beside the entries)."""

    round: int
    slot_s: float
    deferred_s: float
    selected: tuple[str, ...]
    forced: tuple[str, ...]
    """Clients picked by the fairness floor rather than by carbon."""
    expected_co2e_g: float
    """Forecast CO2e of the picks (compute, from forecast intensity x expected energy)."""
    policy: str

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> RoundPlan:
        return RoundPlan(
            round=int(data["round"]),
            slot_s=float(data["slot_s"]),
            deferred_s=float(data["deferred_s"]),
            selected=tuple(data["selected"]),
            forced=tuple(data["forced"]),
            expected_co2e_g=float(data["expected_co2e_g"]),
            policy=str(data["policy"]),
        )


METRIC_PHASES: tuple[str, ...] = ("train", "evaluate", "central")
"""Where a round's metrics come from: the clients' aggregated ``train``/``evaluate`` replies, or
the server's own (``central``) evaluation."""


@dataclasses.dataclass(frozen=True)
class RoundMetrics:
    """The aggregated numeric metrics of one round (Flower's ``MetricRecord``, numbers only)."""

    round: int
    phase: str
    """``train`` / ``evaluate`` (the strategy's aggregate of the clients') or ``central``."""
    values: dict[str, float]

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> RoundMetrics:
        return RoundMetrics(
            round=int(data["round"]),
            phase=str(data["phase"]),
            values={str(k): float(v) for k, v in dict(data["values"]).items()},
        )


@dataclasses.dataclass(frozen=True)
class Total:
    """Summed figures of a group of entries (bounds added)."""

    key: str
    energy_j: float
    network_energy_j: float
    co2e_g: float
    low_g: float
    high_g: float
    network_co2e_g: float
    bytes_down: int
    bytes_up: int
    entries: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _total(key: str, entries: Sequence[LedgerEntry]) -> Total:
    return Total(
        key=key,
        energy_j=math.fsum(e.energy_j for e in entries),
        network_energy_j=math.fsum(e.network_energy_j for e in entries),
        co2e_g=math.fsum(e.total_co2e_g for e in entries),
        low_g=math.fsum(e.total_low_g for e in entries),
        high_g=math.fsum(e.total_high_g for e in entries),
        network_co2e_g=math.fsum(e.network_co2e_g for e in entries),
        bytes_down=sum(e.bytes_down for e in entries),
        bytes_up=sum(e.bytes_up for e in entries),
        entries=len(entries),
    )


class Ledger:
    """Entries of one federated run, their totals and their file.

    ``path=None`` keeps it in memory (``save`` then needs a path).
    """

    def __init__(
        self,
        ledger_id: str | None = None,
        *,
        path: Path | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.id = ledger_id or os.urandom(6).hex()
        self.path = path
        self.created_s = time.time()
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.entries: list[LedgerEntry] = []
        self.plans: list[RoundPlan] = []
        self.metrics: list[RoundMetrics] = []
        self.stopped: str = ""
        """Why training stopped early (e.g. the carbon budget), else empty."""

    @staticmethod
    def default_path(home: Path, ledger_id: str) -> Path:
        """``<home>/federated/<ledger id>.json`` (``home`` is ``settings.resolved_home()``)."""
        return home / LEDGER_DIR / f"{ledger_id}.json"

    # ------------------------------------------------------------------ adding
    def add(self, entry: LedgerEntry) -> None:
        if entry.phase not in PHASES:
            raise DataError(f"ledger entry with unknown phase {entry.phase!r}: use {PHASES}.")
        self.entries.append(entry)

    def add_plan(self, plan: RoundPlan) -> None:
        self.plans.append(plan)

    def add_metrics(self, round: int, phase: str, values: Mapping[str, object]) -> None:
        """Keeps a round's aggregated metrics: the finite numbers of ``values`` (lists and
        GreenForge's own ``greenforge.*`` figures are left out; those are the entries).
        ``phase`` is ``train``/``evaluate`` (the strategy's aggregate of the clients' replies,
        recorded by :class:`~greenforge.federated.strategy.CarbonLedger`) or ``central`` (the
        server's own evaluation: ``CarbonLedger.central_evaluation(evaluate_fn)`` records it)."""
        if phase not in METRIC_PHASES:
            raise DataError(f"metrics with unknown phase {phase!r}: use {METRIC_PHASES}.")
        kept = {
            str(k): float(v)
            for k, v in values.items()
            if isinstance(v, (int, float))
            and not isinstance(v, bool)
            and math.isfinite(v)
            and not str(k).startswith("greenforge.")
        }
        if kept:
            self.metrics = [m for m in self.metrics if (m.round, m.phase) != (round, phase)]
            self.metrics.append(RoundMetrics(round, phase, kept))

    # ------------------------------------------------------------------ views
    def clients(self, phase: str | None = "train") -> list[LedgerEntry]:
        """Client entries (``phase=None``: train and evaluate)."""
        return [
            e for e in self.entries if e.client != "server" and (phase is None or e.phase == phase)
        ]

    def total(self, entries: Iterable[LedgerEntry] | None = None) -> Total:
        return _total("total", list(self.entries if entries is None else entries))

    def by(self, field: str, entries: Iterable[LedgerEntry] | None = None) -> list[Total]:
        """Totals grouped by ``round``, ``client``, ``zone`` or ``phase`` (first-seen order)."""
        if field not in ("round", "client", "zone", "phase"):
            raise DataError(f"cannot group a ledger by {field!r}: use round, client, zone, phase.")
        groups: dict[str, list[LedgerEntry]] = {}
        for e in self.entries if entries is None else entries:
            groups.setdefault(str(getattr(e, field)), []).append(e)
        return [_total(k, v) for k, v in groups.items()]

    def cumulative(self) -> list[tuple[int, float, float, float]]:
        """(round, cumulative CO2e g, low, high) after each round, rounds in order."""
        per: dict[int, list[LedgerEntry]] = {}
        for e in self.entries:
            per.setdefault(e.round, []).append(e)
        out: list[tuple[int, float, float, float]] = []
        c = lo = hi = 0.0
        for r in sorted(per):
            t = _total(str(r), per[r])
            c, lo, hi = c + t.co2e_g, lo + t.low_g, hi + t.high_g
            out.append((r, c, lo, hi))
        return out

    def participation(self, clients: Iterable[str] = ()) -> dict[str, int]:
        """Training rounds each client took part in (``clients`` adds zeros for the absent)."""
        counts = dict.fromkeys(clients, 0)
        for e in self.clients("train"):
            counts[e.client] = counts.get(e.client, 0) + 1
        return counts

    def zones(self) -> dict[str, str]:
        """Client -> zone as seen in the entries (or, for a client never picked, as the
        selection learnt it: ``metadata["clients"]``)."""
        known = self.metadata.get("clients")
        out = {str(c): str(z) for c, z in known.items()} if isinstance(known, Mapping) else {}
        out.update({e.client: e.zone for e in self.entries if e.client != "server"})
        return out

    def zone_participation(self) -> dict[str, tuple[int, int]]:
        """Zone -> (clients in it, training rounds they took part in, summed)."""
        zones = self.zones()
        parts = self.participation(zones)
        out: dict[str, tuple[int, int]] = {}
        for client, zone in zones.items():
            n, rounds = out.get(zone, (0, 0))
            out[zone] = (n + 1, rounds + parts.get(client, 0))
        return out

    def metric(self, name: str) -> dict[str, list[tuple[int, float]]]:
        """Phase -> [(round, value)] of the aggregated metric ``name``, rounds in order (only
        the phases that have it)."""
        out: dict[str, list[tuple[int, float]]] = {}
        for m in sorted(self.metrics, key=lambda m: m.round):
            if name in m.values:
                out.setdefault(m.phase, []).append((m.round, m.values[name]))
        return out

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        total = self.total()
        return {
            "schema": LEDGER_SCHEMA,
            "id": self.id,
            "created_s": self.created_s,
            "metadata": self.metadata,
            "stopped": self.stopped,
            "total": total.to_dict(),
            "by_round": [t.to_dict() for t in self.by("round")],
            "by_client": [t.to_dict() for t in self.by("client")],
            "by_zone": [t.to_dict() for t in self.by("zone")],
            "by_phase": [t.to_dict() for t in self.by("phase")],
            "cumulative": [
                {"round": r, "co2e_g": c, "low_g": lo, "high_g": hi}
                for r, c, lo, hi in self.cumulative()
            ],
            "participation": self.participation(),
            "plans": [dataclasses.asdict(p) for p in self.plans],
            "metrics": [dataclasses.asdict(m) for m in self.metrics],
            "entries": [e.to_dict() for e in self.entries],
        }

    def save(self, path: Path | None = None) -> Path:
        """Returns the file written (atomically): ``path``, else the ledger's own path."""
        from greenforge.forge.output import write_json_atomic

        target = path or self.path
        if target is None:
            raise DataError("this ledger has no file: pass save(path) or Ledger(path=...).")
        self.path = target
        return write_json_atomic(target, self.to_dict())

    @staticmethod
    def load(path: Path) -> Ledger:
        """Reads a ledger file; DataError naming the file when it is not one."""
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise DataError(
                f"no ledger file {str(path)!r}; `greenforge federated show` lists the ledgers."
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read ledger {str(path)!r}: {exc}. {_LEDGER_HINT}") from None
        if (
            not isinstance(data, dict)
            or data.get("schema") != LEDGER_SCHEMA
            or "id" not in data
            or not isinstance(data.get("entries"), list)
        ):
            raise DataError(
                f"{str(path)!r} is not a GreenForge federated ledger (schema "
                f"{LEDGER_SCHEMA} with an id and entries expected). {_LEDGER_HINT}"
            )
        try:
            ledger = Ledger(str(data["id"]), path=path, metadata=data.get("metadata") or {})
            ledger.created_s = float(data.get("created_s", 0.0))
            ledger.stopped = str(data.get("stopped", ""))
            ledger.entries = [LedgerEntry.from_dict(e) for e in data.get("entries", [])]
            ledger.plans = [RoundPlan.from_dict(p) for p in data.get("plans", [])]
            ledger.metrics = [RoundMetrics.from_dict(m) for m in data.get("metrics", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"ledger {str(path)!r} is damaged ({type(exc).__name__}: {exc}): write it again "
                "(CarbonLedger saves it after every round) or pass another ledger."
            ) from None
        return ledger


def list_ledgers(home: Path) -> list[Path]:
    """Ledger files under ``<home>/federated``, newest first."""
    folder = home / LEDGER_DIR
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob("*.json") if not p.name.startswith(".")]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


def find_ledger(name: str | None, home: Path) -> Path:
    """Returns the ledger file ``name`` names: an existing file, else a ledger id (or a unique
    prefix of it) under ``<home>/federated``; ``None`` is the newest ledger there.

    A name that looks like a file (``.json`` or a path) but is not there is a
    :class:`DataError`; no ledgers at all, or an id that matches none or several, a
    :class:`ConfigError` that lists the known ones.
    """
    if name is not None:
        path = Path(name)
        if path.is_file():
            return path
        if path.suffix == ".json" or len(path.parts) > 1:
            raise DataError(
                f"no ledger file {name!r}: pass an existing ledger file, or a ledger id from "
                "`greenforge federated show` (the newest when you give none)."
            )
    ledgers = list_ledgers(home)
    if not ledgers:
        raise ConfigError(
            "no federated ledgers yet: run `greenforge federated --example digits` or wrap a "
            "Flower strategy in greenforge.federated.strategy.CarbonLedger."
        )
    if name is None:
        return ledgers[0]
    hits = [p for p in ledgers if p.stem.startswith(name) or p.stem.split("-")[-1].startswith(name)]
    if len(hits) != 1:
        shown = ", ".join(p.stem for p in ledgers[:8])
        what = "no" if not hits else "more than one"
        raise ConfigError(f"{what} ledger matches {name!r}: known ones are {shown}.")
    return hits[0]
