"""What a stored run would have emitted elsewhere and at another hour: the planner's view.

Pure apart from reading GreenForge's own embedded intensity tables (no network, no files of
the user). The run's energy profile - its top-level windows, and whatever energy fell outside
them spread evenly over the whole run - is charged, with the run's PUE, at:

- every embedded zone's intensity at the run's own times (the median typical hourly profile
  where the zone has one, else its annual average): the cleanest and dirtiest zone;
- its own zone's typical profile with the run moved to start at each hour of the same UTC day
  (same minute past the hour): the cleanest and dirtiest hour.

Both use the same embedded figures for every alternative, including the run "as it ran"
(:attr:`WhatIf.as_ran`), so the comparisons are like for like even when the run itself was
charged at a live or file intensity (its own figure stays in the run's headline).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from greenforge.errors import GreenForgeError
from greenforge.records import RunRecord
from greenforge.units import J_PER_KWH

DAY_S = 86_400.0
HOUR_S = 3_600.0


@dataclasses.dataclass(frozen=True)
class Alternative:
    """The run charged in ``zone`` starting at ``start_s``: ``co2e_g`` (g) at
    ``mean_intensity_g_per_kwh`` (energy-weighted, g/kWh) from ``source``."""

    zone: str
    start_s: float
    co2e_g: float
    mean_intensity_g_per_kwh: float
    source: str


@dataclasses.dataclass(frozen=True)
class WhatIf:
    """The cleanest/dirtiest zone and hour for one run, all on the embedded figures (grams)."""

    energy_j: float
    """Energy charged (J, before PUE)."""
    pue: float
    pue_note: str
    zones_compared: int
    cleanest_zone: Alternative
    dirtiest_zone: Alternative
    zone: str | None
    """The run's own zone, when it had one the embedded tables know."""
    as_ran: Alternative | None
    """The run in its own zone at its own times, on the embedded figures."""
    hours: tuple[Alternative, ...]
    """The run started at each hour (00-23 UTC) of its start day, in its own zone."""
    note: str
    """What was compared and why something is missing."""

    @property
    def cleanest_hour(self) -> Alternative | None:
        """Returns the start hour with the least CO2e in the run's zone (None without a zone)."""
        return min(self.hours, key=lambda a: a.co2e_g) if self.hours else None

    @property
    def dirtiest_hour(self) -> Alternative | None:
        """Returns the start hour with the most CO2e in the run's zone (None without a zone)."""
        return max(self.hours, key=lambda a: a.co2e_g) if self.hours else None


def energy_profile(record: RunRecord) -> list[tuple[float, float, float]]:
    """Returns ``[(start_s, end_s, energy_j)]``: the run's top-level windows and the energy
    outside them spread over the whole run (J; the sum is the run's energy)."""
    end = record.started_s + max(record.duration_s, 1e-9)
    wins = [
        (w.start_s, w.end_s, w.energy_j)
        for w in record.windows
        if "/" not in w.path and w.end_s >= w.start_s and math.isfinite(w.energy_j)
    ]
    rest = record.energy_j - math.fsum(j for _, _, j in wins)
    if rest > 1e-9 * max(record.energy_j, 1.0) or not wins:
        wins.append((record.started_s, end, max(rest, 0.0) if wins else record.energy_j))
    return wins


def _charge(
    zone: str, profile: Sequence[tuple[float, float, float]], shift_s: float, pue: float
) -> Alternative:
    from greenforge.grid.steps import embedded_steps

    first = min(s for s, _, _ in profile) + shift_s
    last = max(e for _, e, _ in profile) + shift_s
    steps = embedded_steps(zone, first, max(last, first + 1e-6))
    energy_kwh = math.fsum(j for _, _, j in profile) * pue / J_PER_KWH
    if len(steps.values_g_per_kwh) == 1:  # an annual figure: one product, however many windows
        co2e = energy_kwh * steps.values_g_per_kwh[0]
    else:
        co2e = math.fsum(steps.co2e_g(s + shift_s, e + shift_s, j, pue) for s, e, j in profile)
    mean = co2e / energy_kwh if energy_kwh > 0 else steps.mean(first, max(last, first + 1e-6))
    return Alternative(zone, first, co2e, mean, steps.provenance.source)


def what_if(record: RunRecord, zones: Sequence[str] | None = None) -> WhatIf:
    """Returns the cleanest and dirtiest embedded zone and start hour for ``record``.

    ``zones`` defaults to every zone the embedded tables answer
    (:func:`greenforge.grid.zones.known_zones`)."""
    from greenforge.grid.zones import canonical_zone, known_zones

    e = record.emissions
    pue, pue_note = (e.pue, f"PUE {e.pue:g} ({e.pue_source})") if e else (1.0, "PUE 1 assumed")
    profile = energy_profile(record)
    candidates = list(zones) if zones is not None else list(known_zones())
    by_zone: list[Alternative] = []
    for z in candidates:
        try:
            alt = _charge(z, profile, 0.0, pue)
        except GreenForgeError:  # a zone the tables lack for these years: not comparable
            continue
        if alt.mean_intensity_g_per_kwh > 0:  # a 0 g/kWh table entry is a gap, not a grid
            by_zone.append(alt)
    if not by_zone:
        raise GreenForgeError("no embedded zone could be compared for this run.")
    own_name = e.intensity.zone if e is not None else record.metadata.get("zone")
    own = canonical_zone(str(own_name)) if isinstance(own_name, str) and own_name else None
    notes = [
        f"{len(by_zone)} embedded zones at the run's own times (entries of 0 g/kWh left out "
        f"as gaps); {pue_note}; energy "
        "profile: top-level windows, the rest spread evenly over the run"
    ]
    as_ran: Alternative | None = None
    hours: tuple[Alternative, ...] = ()
    if own is None:
        notes.append(
            "no hour comparison: the run has no zone the embedded tables know"
            + (f" ({own_name})" if own_name else "")
        )
    else:
        as_ran = _charge(own, profile, 0.0, pue)
        day = math.floor(record.started_s / DAY_S) * DAY_S
        minute = record.started_s - math.floor(record.started_s / HOUR_S) * HOUR_S
        hours = tuple(
            _charge(own, profile, day + h * HOUR_S + minute - record.started_s, pue)
            for h in range(24)
        )
        notes.append(
            f"hours: the run moved to each hour of its UTC start day in {own}, on {as_ran.source}"
        )
    return WhatIf(
        energy_j=record.energy_j,
        pue=pue,
        pue_note=pue_note,
        zones_compared=len(by_zone),
        cleanest_zone=min(by_zone, key=lambda a: (a.co2e_g, a.zone)),
        dirtiest_zone=max(by_zone, key=lambda a: (a.co2e_g, a.zone)),
        zone=own,
        as_ran=as_ran,
        hours=hours,
        note="; ".join(notes) + ".",
    )


__all__ = ["Alternative", "WhatIf", "energy_profile", "what_if"]
