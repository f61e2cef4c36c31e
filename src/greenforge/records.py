"""Typed values that flow through GreenForge: readings, intervals, windows and run records.

Units are in every name (``energy_j``, ``co2e_g``, ``duration_s``). Every figure carries its
provenance: the meter ``method`` (``"rapl"``, ``"nvml-energy"``, ``"model:cpu-tdp"`` ...) and the
intensity ``source`` and ``signal``. Estimates carry a low/high bound.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

from greenforge.timeutil import utc_iso as utc_iso  # re-exported; defined in timeutil
from greenforge.units import J_PER_KWH

RunStatus = Literal["running", "completed", "incomplete", "failed"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "completed", "incomplete", "failed")


@dataclasses.dataclass(frozen=True)
class EnergyReading:
    """Energy one meter attributes to one component since its previous read."""

    component: str
    """``cpu``, ``cpu:0`` (package 0), ``dram``, ``ram``, ``gpu:0`` ..."""
    energy_j: float
    method: str
    """How it was obtained: ``rapl``, ``nvml-energy``, ``nvml-power``, ``model:cpu-tdp`` ..."""
    low_j: float
    high_j: float

    @staticmethod
    def exact(component: str, energy_j: float, method: str, rel_err: float = 0.0) -> EnergyReading:
        """A measured reading with a symmetric relative error bound."""
        return EnergyReading(
            component, energy_j, method, energy_j * (1 - rel_err), energy_j * (1 + rel_err)
        )


@dataclasses.dataclass(frozen=True)
class Interval:
    """Energy per component over one sampling interval ``[start_s, end_s)`` (unix seconds)."""

    start_s: float
    end_s: float
    readings: tuple[EnergyReading, ...]

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def energy_j(self) -> float:
        return sum(r.energy_j for r in self.readings)


@dataclasses.dataclass(frozen=True)
class ComponentTotal:
    """Energy of one component over a whole run or window."""

    component: str
    energy_j: float
    low_j: float
    high_j: float
    method: str

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / J_PER_KWH


@dataclasses.dataclass(frozen=True)
class IntensityProvenance:
    """Where a carbon intensity figure came from."""

    source: str
    """e.g. ``embedded:yearly-2024``, ``electricitymaps-csv:GB``, ``uk-neso:forecast``."""
    zone: str
    signal: str = "average"
    """``average`` or ``marginal``."""
    basis: str = "lca"
    """``direct`` (combustion only) or ``lca`` (life-cycle)."""
    time_resolved: bool = False
    """True when the intensity varies per interval; False for an annual/static figure."""
    kind: str = ""
    """The series kind: ``measured``, ``forecast``, ``profile`` (a typical day, not a
    measurement), ``annual`` or ``static``; empty in records stored before it existed."""


@dataclasses.dataclass(frozen=True)
class Emissions:
    """Operational emissions of a run: sum over intervals of energy x PUE x intensity."""

    co2e_g: float
    low_g: float
    high_g: float
    pue: float
    pue_source: str
    intensity: IntensityProvenance
    mean_intensity_g_per_kwh: float


@dataclasses.dataclass(frozen=True)
class EmbodiedEmissions:
    """Embodied (manufacturing) emissions amortised over the run: SCI's M. Reported apart."""

    co2e_g: float
    device: str
    device_embodied_kg: float
    lifetime_s: float
    share: float
    source: str


@dataclasses.dataclass(frozen=True)
class WindowRecord:
    """A named phase (epoch, eval ...) inside a run; ``path`` joins nested names with ``/``."""

    name: str
    path: str
    start_s: float
    end_s: float
    energy_j: float
    co2e_g: float | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class WindowColumns:
    """Window figures one list per field, in the order the windows closed: what the tracker
    keeps and the run store writes in batches, with no object per window until
    :meth:`records` builds them (a run of 10,000 windows stops in the same time as one of 100).
    """

    __slots__ = ("co2e_g", "depths", "end_s", "energy_j", "paths", "start_s")

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.depths: list[int] = []
        self.start_s: list[float] = []
        self.end_s: list[float] = []
        self.energy_j: list[float] = []
        self.co2e_g: list[float | None] = []

    def __len__(self) -> int:
        return len(self.paths)

    def slice(self, start: int, stop: int) -> WindowColumns:
        """Returns windows ``start:stop`` as new columns (the lists are only ever appended
        to, so a slice up to a count read first is consistent while another thread adds)."""
        out = WindowColumns()
        out.paths = self.paths[start:stop]
        out.depths = self.depths[start:stop]
        out.start_s = self.start_s[start:stop]
        out.end_s = self.end_s[start:stop]
        out.energy_j = self.energy_j[start:stop]
        out.co2e_g = self.co2e_g[start:stop]
        return out

    def records(self) -> list[WindowRecord]:
        """Returns one :class:`WindowRecord` per window, in closing order."""
        names = [p.rpartition("/")[2] for p in self.paths]
        return list(
            map(
                WindowRecord,
                names,
                self.paths,
                self.start_s,
                self.end_s,
                self.energy_j,
                self.co2e_g,
            )
        )


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Projection of a run's total from its first ``windows_seen`` windows (Carbontracker)."""

    windows_seen: int
    windows_total: int
    energy_j: float
    co2e_g: float | None
    """``None`` when the grid intensity was not known for the windows seen (never a 0)."""
    duration_s: float


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """Everything known about one measured run."""

    id: str
    name: str
    status: RunStatus
    started_s: float
    ended_s: float | None
    duration_s: float
    components: tuple[ComponentTotal, ...]
    emissions: Emissions | None
    embodied: EmbodiedEmissions | None = None
    windows: tuple[WindowRecord, ...] = ()
    prediction: Prediction | None = None
    meters: tuple[str, ...] = ()
    """Meter names with the reason each was chosen (``"rapl: counters readable"``)."""
    warnings: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def energy_j(self) -> float:
        return sum(c.energy_j for c in self.components)

    @property
    def energy_low_j(self) -> float:
        return sum(c.low_j for c in self.components)

    @property
    def energy_high_j(self) -> float:
        return sum(c.high_j for c in self.components)

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / J_PER_KWH

    @property
    def co2e_g(self) -> float | None:
        return None if self.emissions is None else self.emissions.co2e_g

    @property
    def started_at(self) -> str:
        return utc_iso(self.started_s)

    def summary_dict(self) -> dict[str, Any]:
        """The stable machine-readable contract used by ``greenforge runs list --json``."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "co2e_g": self.co2e_g,
        }

    def to_dict(self) -> dict[str, Any]:
        """Full JSON-able form (round-trips through :func:`run_record_from_dict`)."""
        # asdict deep-copies field by field (~50 us a window): windows hold plain values only,
        # so they are copied flat (a run of 10,000 windows flushes in milliseconds)
        out = dataclasses.asdict(dataclasses.replace(self, windows=()))
        out["windows"] = [{f: getattr(w, f) for f in _WINDOW_FIELDS} for w in self.windows]
        out["started_at"] = self.started_at
        out["energy_j"] = self.energy_j
        out["energy_kwh"] = self.energy_kwh
        out["co2e_g"] = self.co2e_g
        out["metadata"] = dict(self.metadata)
        return out


_WINDOW_FIELDS = tuple(f.name for f in dataclasses.fields(WindowRecord))


def meter_summary(meters: Sequence[str]) -> str:
    """One line for a record's meter notes: ``using: model-cpu, model-ram; skipped: rapl,
    nvidia``. Each note is ``name: state - detail``; the details (and how to enable a meter)
    stay in the full record and in ``greenforge doctor``."""
    groups: dict[str, list[str]] = {}
    for note in meters:
        name, _, rest = note.partition(": ")
        state = rest.split(" - ", 1)[0].split(" ", 1)[0] if rest else "noted"
        groups.setdefault(state or "noted", []).append(name)
    ordered = sorted(groups.items(), key=lambda item: item[0] != "using")  # used ones first
    return "; ".join(f"{state}: {', '.join(names)}" for state, names in ordered)


def run_record_from_dict(data: Mapping[str, Any]) -> RunRecord:
    """Inverse of :meth:`RunRecord.to_dict` (derived keys are ignored)."""
    emissions = data.get("emissions")
    embodied = data.get("embodied")
    prediction = data.get("prediction")
    return RunRecord(
        id=str(data["id"]),
        name=str(data["name"]),
        status=data["status"],
        started_s=float(data["started_s"]),
        ended_s=None if data.get("ended_s") is None else float(data["ended_s"]),
        duration_s=float(data["duration_s"]),
        components=tuple(ComponentTotal(**c) for c in data.get("components", ())),
        emissions=None
        if emissions is None
        else Emissions(
            **{k: v for k, v in emissions.items() if k != "intensity"},
            intensity=IntensityProvenance(**emissions["intensity"]),
        ),
        embodied=None if embodied is None else EmbodiedEmissions(**embodied),
        windows=tuple(WindowRecord(**w) for w in data.get("windows", ())),
        prediction=None if prediction is None else Prediction(**prediction),
        meters=tuple(data.get("meters", ())),
        warnings=tuple(data.get("warnings", ())),
        metadata=dict(data.get("metadata", {})),
    )


class ComponentEnergy(Protocol):
    """Anything with a component's energy and bounds: a reading, or a total."""

    @property
    def component(self) -> str: ...
    @property
    def energy_j(self) -> float: ...
    @property
    def low_j(self) -> float: ...
    @property
    def high_j(self) -> float: ...
    @property
    def method(self) -> str: ...


def sum_by_component(items: Iterable[ComponentEnergy]) -> tuple[ComponentTotal, ...]:
    """Sum energies and bounds per component, in first-seen order.

    A component measured by several methods gets them joined with ``+``, each once (a method
    that is already a ``+`` join is split first).
    """
    acc: dict[str, list[float]] = {}
    methods: dict[str, list[str]] = {}
    for item in items:
        a = acc.setdefault(item.component, [0.0, 0.0, 0.0])
        a[0] += item.energy_j
        a[1] += item.low_j
        a[2] += item.high_j
        known = methods.setdefault(item.component, [])
        for method in item.method.split("+"):
            if method not in known:
                known.append(method)
    return tuple(ComponentTotal(c, v[0], v[1], v[2], "+".join(methods[c])) for c, v in acc.items())


def totals_by_component(intervals: Sequence[Interval]) -> tuple[ComponentTotal, ...]:
    """Sum interval readings per component (methods joined if a component changed method)."""
    return sum_by_component(r for interval in intervals for r in interval.readings)
