"""Software Carbon Intensity (SCI) scores of runs and forge candidates, in g CO2e per unit.

The Green Software Foundation's SCI specification (ISO/IEC 21031:2024; text at
https://github.com/Green-Software-Foundation/sci/blob/dev/SPEC.md, v1.1.0) defines a rate,
``SCI = (O + M) per R`` with ``O = E * I``, i.e. ``SCI = ((E * I) + M) per R``:

- ``E`` - energy consumed by the software, in kWh. The spec's *Software boundary* section says
  that for data-centre operation "E should take into account the efficiency of the data center,
  including cooling ... usually available as a PUE", so here ``E = energy_j x PUE`` (the
  energy at the meter, the same energy the tracker multiplies by the grid intensity).
- ``I`` - location-based (region-specific) grid intensity, g CO2e/kWh, no market-based
  measures. Here the run's energy-weighted mean intensity, so ``E x I`` equals the tracker's
  operational ``emissions.co2e_g`` (time-resolved where the intensity was): ``O`` is taken from
  the record, never recomputed differently.
- ``M`` - the run's share of the hardware's embodied emissions, ``M = TE x TS x RS`` (time
  share x resource share), in g: the tracker's ``embodied.co2e_g``. When the record has no
  embodied figure, ``M = 0`` and :attr:`SciScore.embodied_basis` says so.
- ``R`` - the functional unit the user names (:func:`parse_unit`).

Bounds: ``low = (O_low + M) / R`` and ``high = (O_high + M) / R`` (the embodied share carries no
bound of its own in the record).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from greenforge.errors import ConfigError, DataError
from greenforge.records import RunRecord
from greenforge.units import J_PER_KWH

SPEC = "Green Software Foundation SCI v1.1 (ISO/IEC 21031:2024)"
UNITS_HELP = (
    "run, epoch, a count (e.g. 500), or UNIT:COUNT for prediction, 1k-predictions or sample "
    "(e.g. prediction:10000, 1k-predictions:10000, sample:60000)"
)
_COUNTED = {"prediction": 1.0, "1k-predictions": 1000.0, "sample": 1.0}
"""Units that need a count: how many of the counted things one unit is."""
_EPOCH = re.compile(r"epoch[\s_-]*\d+", re.IGNORECASE)
NO_EMBODIED = "M = 0: the record has no embodied figure (stated, not measured)"


@dataclasses.dataclass(frozen=True)
class FunctionalUnit:
    """SCI's R as the user named it: a unit name and, for counted units, how many were done."""

    name: str
    """``run``, ``epoch``, ``prediction``, ``1k-predictions``, ``sample`` or ``unit``."""
    count: float | None = None
    """How many of the counted things (predictions, samples, units); None for run/epoch."""


@dataclasses.dataclass(frozen=True)
class SciScore:
    """An SCI score with its components: ``sci_g = (energy_kwh x intensity + embodied_g) / r``."""

    energy_kwh: float
    """E: energy including PUE (kWh)."""
    intensity_g_per_kwh: float
    """I: location-based mean grid intensity (g/kWh)."""
    operational_g: float
    """O = E x I (g), as the tracker accounted it."""
    embodied_g: float
    """M (g); 0 when unknown (see ``embodied_basis``)."""
    r: float
    """R: how many functional units the totals cover."""
    unit: str
    """The functional unit's name, e.g. ``1k predictions``."""
    sci_g: float
    """SCI (g CO2e per unit)."""
    low_g: float
    high_g: float
    pue: float
    basis: str
    """How the figures were obtained (intensity source, signal, PUE source, spec)."""
    embodied_basis: str

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON-able form (the ``sci`` object of ``runs show --json``)."""
        return dataclasses.asdict(self)

    def line(self) -> str:
        """Returns a one-line human summary, e.g. ``SCI 1.2 g CO2e per run (low ..., high ...)``."""
        return (
            f"SCI {self.sci_g:.4g} g CO2e per {self.unit} "
            f"(low {self.low_g:.4g}, high {self.high_g:.4g}) = "
            f"(E {self.energy_kwh:.4g} kWh x I {self.intensity_g_per_kwh:.4g} g/kWh"
            f" + M {self.embodied_g:.4g} g) / R {self.r:g}"
        )


def parse_unit(text: str) -> FunctionalUnit:
    """Returns the functional unit named by ``--per`` (see :data:`UNITS_HELP` for the syntax)."""
    raw = text.strip()
    name, sep, count_text = raw.partition(":")
    name = name.strip().lower()
    if not sep and name in ("run", "epoch"):
        return FunctionalUnit(name)
    if not sep:
        count = _count(raw, raw) if _looks_numeric(raw) else None
        if count is not None:
            return FunctionalUnit("unit", count)
        if name in _COUNTED:
            raise ConfigError(
                f"--per {text!r} needs a count: write --per {name}:N with N the number of "
                f"{'predictions' if name != 'sample' else 'samples'} the run made."
            )
        raise ConfigError(f"unknown functional unit --per {text!r}: use {UNITS_HELP}.")
    if name not in _COUNTED:
        raise ConfigError(
            f"--per {text!r}: {name!r} takes no count; use {UNITS_HELP}."
            if name in ("run", "epoch")
            else f"unknown functional unit --per {text!r}: use {UNITS_HELP}."
        )
    return FunctionalUnit(name, _count(count_text.strip(), text))


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _count(text: str, given: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(
            f"bad count in --per {given!r}: the count must be a number > 0 "
            "(how many predictions/samples/units the run covered)."
        )
    return value


def epoch_count(record: RunRecord) -> int:
    """Returns how many top-level windows of the run are named like epochs (``epoch-1``...)."""
    return sum(1 for w in record.windows if "/" not in w.path and _EPOCH.fullmatch(w.name))


def _r(record: RunRecord, unit: FunctionalUnit) -> tuple[float, str]:
    if unit.name == "run":
        return 1.0, "run"
    if unit.name == "epoch":
        n = epoch_count(record)
        if n == 0:
            raise ConfigError(
                f"run {record.id} has no epoch windows (top-level windows named like "
                "'epoch-1'): use --per run, or track each epoch with tracker.window('epoch-N')."
            )
        return float(n), "epoch"
    assert unit.count is not None
    per = _COUNTED.get(unit.name, 1.0)
    label = {"1k-predictions": "1k predictions"}.get(unit.name, unit.name)
    return unit.count / per, label


def sci_for_run(record: RunRecord, unit: FunctionalUnit) -> SciScore:
    """Returns the SCI score of a run (g CO2e per ``unit``), with its components and bounds."""
    e = record.emissions
    if e is None:
        raise DataError(
            f"run {record.id} has no operational emissions (no grid intensity was known): "
            "SCI needs I; measure with a zone (--zone) to get one."
        )
    r, label = _r(record, unit)
    if record.embodied is None:
        m, m_basis = 0.0, NO_EMBODIED
    else:
        b = record.embodied
        m = b.co2e_g
        m_basis = (
            f"M = TE {b.device_embodied_kg:g} kg x TS (run time / {b.lifetime_s / 31_557_600:g} y "
            f"lifetime) x RS {b.share:g} ({b.device}; {b.source})"
        )
    basis = (
        f"{SPEC}; E includes PUE {e.pue:g} ({e.pue_source}); I location-based "
        f"{e.intensity.source}, zone {e.intensity.zone} ({e.intensity.signal}, "
        f"{e.intensity.basis}); O as accounted by the tracker"
    )
    return SciScore(
        energy_kwh=record.energy_j * e.pue / J_PER_KWH,
        intensity_g_per_kwh=e.mean_intensity_g_per_kwh,
        operational_g=e.co2e_g,
        embodied_g=m,
        r=r,
        unit=label,
        sci_g=(e.co2e_g + m) / r,
        low_g=(e.low_g + m) / r,
        high_g=(e.high_g + m) / r,
        pue=e.pue,
        basis=basis,
        embodied_basis=m_basis,
    )


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def sci_for_forge(forge: Mapping[str, Any]) -> dict[str, SciScore]:
    """Returns each forge candidate's SCI (g CO2e per 1k predictions), keyed by candidate name.

    ``forge`` is a parsed ``forge.json``. ``O`` is the candidate's ``inference_co2e_g_per_1k``
    (deployment-zone intensity and PUE); ``forge.json`` carries no embodied share, so ``M = 0``
    (stated in ``embodied_basis``). Candidates without an inference figure are left out.
    """
    deploy = forge.get("deployment")
    deploy = deploy if isinstance(deploy, Mapping) else {}
    intensity = _num(deploy.get("intensity_g_per_kwh"))
    pue = _num(deploy.get("pue"))
    basis = (
        f"{SPEC}; per 1k predictions at the serving batch size; E includes PUE {pue:g} "
        f"({deploy.get('pue_source', '?')}); I location-based "
        f"{deploy.get('intensity_source', '?')}, zone {deploy.get('zone', '?')}"
    )
    out: dict[str, SciScore] = {}
    candidates = forge.get("candidates")
    for c in candidates if isinstance(candidates, list) else []:
        if not isinstance(c, Mapping):
            continue
        o = _num(c.get("inference_co2e_g_per_1k"))
        if not math.isfinite(o):
            continue
        low = _num(c.get("inference_co2e_g_per_1k_low"))
        high = _num(c.get("inference_co2e_g_per_1k_high"))
        # E x I = O by construction (the forge charged E x PUE at the deployment intensity)
        e_kwh = o / intensity if intensity > 0 else math.nan
        out[str(c.get("name"))] = SciScore(
            energy_kwh=e_kwh,
            intensity_g_per_kwh=intensity,
            operational_g=o,
            embodied_g=0.0,
            r=1.0,
            unit="1k predictions",
            sci_g=o,
            low_g=low if math.isfinite(low) else o,
            high_g=high if math.isfinite(high) else o,
            pue=pue,
            basis=basis,
            embodied_basis="M = 0: forge.json carries no embodied share (stated, not measured)",
        )
    return out


__all__ = [
    "NO_EMBODIED",
    "SPEC",
    "UNITS_HELP",
    "FunctionalUnit",
    "SciScore",
    "epoch_count",
    "parse_unit",
    "sci_for_forge",
    "sci_for_run",
]
