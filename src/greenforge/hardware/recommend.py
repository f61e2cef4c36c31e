"""Recommend where and on what to run a job: (provider, region, instance/accelerator) ranked by
total CO2e, with bounds and every figure's source.

A job is described three ways (:class:`Workload`):

- ``gpu_hours(100, "H100")``: accelerator-hours on a reference accelerator; another accelerator
  needs ``hours x peak(reference) / peak(other)`` of its own (same utilisation assumed);
- ``flops(3e21, "bf16")``: total FLOPs at a precision; hours = FLOPs / (count x dense peak x MFU),
  MFU between the published low and high (:func:`~greenforge.hardware.catalog.accelerator_data`);
- ``from_run(record)``: a stored run's measured energy (and its windows' profile) and duration,
  moved to each cloud region as it is (same hardware).

For each offering (an instance with accelerators from the catalog) in each allowed region:

    IT energy   = (accelerators x TDP x power share + host vCPUs at half load + RAM) x hours
    operational = IT energy x provider PUE x intensity of the region's grid zone
    embodied    = instance's embodied share x hours / device lifetime
    total       = operational + embodied

Intensity is the zone's annual average (``embedded:electricitymaps-yearly-...``), or, with a
deadline, the mean over the best start the planner finds before it
(:func:`greenforge.schedule.planner.plan_job` on the hourly series of
:func:`greenforge.grid.chain.intensity_for`). Those are location-based figures (GHG Protocol
Scope 2). Where the provider reports hourly carbon-free-energy matching (Google's CFE %), the
row also carries ``market_co2e_kg = operational x (1 - CFE) + embodied``, a market-based
indicator kept apart from the ranking.

No price data is embedded: ``max_price_per_h`` is refused with an error saying so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from greenforge.config import Settings
from greenforge.errors import ConfigError, GreenForgeError, InfeasibleError
from greenforge.hardware.catalog import (
    BYTES_PER_GIB,
    PUE_DEFAULTS,
    PUE_SOURCE,
    CloudInstance,
    accelerator_data,
    cloud_instance,
    gpu_spec,
    instance_types,
    vcpu_power,
)
from greenforge.records import RunRecord
from greenforge.units import J_PER_KWH

HOST_CPU_LOAD = 0.5
"""Host CPU utilisation assumed while accelerators train (bounds: idle to full load)."""
RAM_W_PER_GB = (0.375, 0.25, 0.5)
"""Modelled RAM watts per GB: central, low, high (as the ``model-ram`` meter)."""
EMBODIED_REL_BOUND = {"ccf": 0.3, "ccf-platform": 0.3, "ccf-instance-list": 0.3}
"""Relative bound of an embodied figure by its basis; anything else (the CCF method's
estimate) gets :data:`EMBODIED_ESTIMATE_REL_BOUND`."""
EMBODIED_ESTIMATE_REL_BOUND = 0.5
PRECISIONS = ("bf16", "fp16", "fp8", "tf32")
SECONDS_PER_YEAR = 365.25 * 86400.0
_HOUR_S = 3600.0


# ------------------------------------------------------------------------------------- inputs


@dataclasses.dataclass(frozen=True)
class Workload:
    """The job to place. Build it with :meth:`gpu_hours`, :meth:`flops` or :meth:`from_run`."""

    kind: str
    """``gpu-hours``, ``flops`` or ``run``."""
    description: str
    precision: str = "bf16"
    reference_tflops: float = 0.0
    """``gpu-hours``: accelerator-hours x the reference's dense peak TFLOPS (TFLOPS x h)."""
    total_flops: float = 0.0
    """``flops``: the job's total floating-point operations."""
    run_id: str = ""
    energy_j: float = 0.0
    energy_low_j: float = 0.0
    energy_high_j: float = 0.0
    duration_s: float = 0.0
    embodied_kg: float | None = None
    embodied_source: str = ""
    hardware: str = ""
    power_profile_w: tuple[float, ...] | None = None
    """``run``: mean power per hour of the run's progress (from its windows)."""

    @classmethod
    def gpu_hours(cls, hours: float, accelerator: str, precision: str = "bf16") -> Workload:
        """``hours`` accelerator-hours of ``accelerator`` (e.g. ``100, "H100"``)."""
        if not (math.isfinite(hours) and hours > 0):
            raise ConfigError(f"--gpu-hours must be a number > 0, got {hours!r}.")
        name = accelerator_name(accelerator)
        peak = _peak_tflops(name, _precision(precision))
        if peak is None:
            raise ConfigError(
                f"no {precision} throughput is published for {name}: use --precision "
                f"{' or '.join(sorted(_tflops(name)))}."
            )
        return cls(
            kind="gpu-hours",
            description=f"{hours:g} accelerator-hours of {name} ({precision})",
            precision=precision,
            reference_tflops=hours * peak,
        )

    @classmethod
    def flops(cls, total_flops: float, precision: str = "bf16") -> Workload:
        """A job of ``total_flops`` floating-point operations at ``precision``."""
        if not (math.isfinite(total_flops) and total_flops > 0):
            raise ConfigError(f"--flops must be a number > 0, got {total_flops!r} (e.g. 3e21).")
        return cls(
            kind="flops",
            description=f"{total_flops:.3g} FLOPs at {_precision(precision)}",
            precision=precision,
            total_flops=total_flops,
        )

    @classmethod
    def from_run(cls, record: RunRecord) -> Workload:
        """A stored run: its measured energy, bounds, duration, embodied share and profile."""
        if record.duration_s <= 0 or record.energy_j <= 0:
            raise ConfigError(
                f"run {record.id} has no measured energy ({record.energy_j:g} J over "
                f"{record.duration_s:g} s): recommend needs a finished run with energy."
            )
        emb = record.embodied
        # the tracker names a configured cloud instance type as the embodied device
        device = "" if emb is None or emb.device == "machine" else emb.device
        hardware = (
            str(record.metadata.get("cloud_instance_type") or device) or "the measured machine"
        )
        return cls(
            kind="run",
            description=(
                f"run {record.id} ({record.name}): {record.energy_j / J_PER_KWH:.4g} kWh over "
                f"{record.duration_s / _HOUR_S:.3g} h on {hardware}"
            ),
            run_id=record.id,
            energy_j=record.energy_j,
            energy_low_j=record.energy_low_j,
            energy_high_j=record.energy_high_j,
            duration_s=record.duration_s,
            embodied_kg=None if emb is None else emb.co2e_g / 1000.0,
            embodied_source="" if emb is None else emb.source,
            hardware=hardware,
            power_profile_w=run_power_profile(record),
        )


@dataclasses.dataclass(frozen=True)
class Constraints:
    """Where and when the job may run."""

    providers: tuple[str, ...] = ("aws", "gcp", "azure")
    regions: tuple[str, ...] = ()
    """Allow-list of region names (any provider); empty: every region of the providers."""
    accelerators: tuple[str, ...] = ()
    """Allow-list of accelerator names (``H100``, ``TPU-v5e``); empty: all."""
    start_s: float = 0.0
    """Earliest start (unix s); the planner's window with :attr:`deadline_s`."""
    deadline_s: float | None = None
    max_price_per_h: float | None = None
    all_sizes: bool = False
    """Keep every instance size; else the best size per (provider, region, accelerator)."""


# ------------------------------------------------------------------------------------ outputs


@dataclasses.dataclass(frozen=True)
class Option:
    """One ranked (provider, region, instance) with its CO2e and where each number came from."""

    provider: str
    region: str
    zone: str
    location: str
    instance: str
    accelerator: str
    """Accelerator model (``H100``), or ``as measured`` for a run."""
    count: float
    duration_s: float
    duration_low_s: float
    duration_high_s: float
    energy_kwh: float
    """IT energy (before PUE)."""
    energy_low_kwh: float
    energy_high_kwh: float
    pue: float
    pue_source: str
    intensity_g_per_kwh: float
    intensity_source: str
    intensity_kind: str
    """``annual``, or ``hourly <kind>`` (``hourly profile``, ``hourly forecast``: the planner's
    best start before the deadline on that series)."""
    start_s: float | None
    operational_kg: float
    operational_low_kg: float
    operational_high_kg: float
    embodied_kg: float
    embodied_low_kg: float
    embodied_high_kg: float
    embodied_source: str
    cfe_share: float | None = None
    """Provider-reported hourly carbon-free-energy share of the region (Google CFE %)."""
    market_co2e_kg: float | None = None
    """Market-based indicator: operational x (1 - CFE) + embodied (not used for ranking)."""

    @property
    def total_kg(self) -> float:
        return self.operational_kg + self.embodied_kg

    @property
    def total_low_kg(self) -> float:
        return self.operational_low_kg + self.embodied_low_kg

    @property
    def total_high_kg(self) -> float:
        return self.operational_high_kg + self.embodied_high_kg

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["total_kg"] = self.total_kg
        out["total_low_kg"] = self.total_low_kg
        out["total_high_kg"] = self.total_high_kg
        return out


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """Ranked options (least total CO2e first), the assumptions and the sources used."""

    workload: Workload
    options: tuple[Option, ...]
    assumptions: tuple[str, ...]
    sources: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``greenforge recommend --json`` contract)."""
        return {
            "workload": {
                "kind": self.workload.kind,
                "description": self.workload.description,
                "precision": self.workload.precision,
            },
            "basis": {
                "ranking": "location-based (GHG Protocol Scope 2), total_kg = operational + embodied",
                "market_based": "market_co2e_kg = operational x (1 - provider CFE) + embodied, "
                "where the provider reports hourly CFE; never used for ranking",
            },
            "options": [o.to_dict() for o in self.options],
            "assumptions": list(self.assumptions),
            "sources": list(self.sources),
            "notes": list(self.notes),
        }


# ------------------------------------------------------------------------------ accelerators


def accelerator_names() -> list[str]:
    """Accelerators with throughput and power figures (``H100``, ``TPU-v5e``, ...)."""
    return sorted(accelerator_data()["accelerators"])


def accelerator_name(name: str) -> str:
    """The catalog's spelling of an accelerator name (``h100`` -> ``H100``, ``v5e`` ->
    ``TPU-v5e``); an unknown name raises a ConfigError listing the known ones."""
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    for known in accelerator_names():
        low = known.lower()
        if key in (low, low.removeprefix("tpu-"), "tpu" + low.removeprefix("tpu")):
            return known
    raise ConfigError(
        f"unknown accelerator {name!r}: known ones are {', '.join(accelerator_names())}."
    )


def _tflops(name: str) -> dict[str, float]:
    table: dict[str, float] = accelerator_data()["accelerators"][name]["tflops"]
    return table


def _peak_tflops(name: str, precision: str) -> float | None:
    value = _tflops(name).get(precision)
    return None if value is None else float(value)


def _precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    return precision


def _gpu_to_accelerator() -> dict[str, str]:
    return {
        gpu: name for name, acc in accelerator_data()["accelerators"].items() for gpu in acc["gpus"]
    }


@dataclasses.dataclass(frozen=True)
class Offering:
    """A cloud instance type holding ``count`` accelerators of ``accelerator``."""

    instance: CloudInstance
    accelerator: str
    count: float


def offerings(providers: Sequence[str], accelerators: Sequence[str] = ()) -> list[Offering]:
    """Every catalog instance of ``providers`` whose GPUs are a known accelerator (whole
    accelerators only: shared fractions such as AWS g6f are left out). Inference-only chips
    (AWS Inferentia) come only when ``accelerators`` names them."""
    mapping = _gpu_to_accelerator()
    table = accelerator_data()["accelerators"]
    wanted = {accelerator_name(a) for a in accelerators}
    out = []
    for provider in providers:
        for itype in instance_types(provider):
            inst = cloud_instance(provider, itype)
            acc = mapping.get(inst.gpu_model or "")
            if acc is None or inst.gpu_count < 1:
                continue
            if (wanted and acc not in wanted) or (
                not wanted and not table[acc].get("training", True)
            ):
                continue
            out.append(Offering(inst, acc, inst.gpu_count))
    return out


# ------------------------------------------------------------------------------- energy model


@dataclasses.dataclass(frozen=True)
class _Energy:
    duration_s: float
    duration_low_s: float
    duration_high_s: float
    power_w: float
    power_low_w: float
    power_high_w: float

    @property
    def kwh(self) -> tuple[float, float, float]:
        return (
            self.power_w * self.duration_s / J_PER_KWH,
            self.power_low_w * self.duration_low_s / J_PER_KWH,
            self.power_high_w * self.duration_high_s / J_PER_KWH,
        )


def instance_power_w(offer: Offering) -> tuple[float, float, float]:
    """(central, low, high) watts of ``offer`` while it trains: accelerators x TDP x power
    share + host vCPUs at :data:`HOST_CPU_LOAD` (bounds idle-full) + RAM x W/GB."""
    data = accelerator_data()
    share = data["power_share"]
    spec = gpu_spec(offer.instance.gpu_model or "")
    acc = (
        offer.count * spec.tdp_w * float(share["central"]),
        offer.count * spec.tdp_low_w * float(share["low"]),
        offer.count * spec.tdp_high_w * float(share["high"]),
    )
    inst = offer.instance
    vp = vcpu_power(inst.provider, inst.arch or None)
    cpu = (
        inst.vcpus * (vp.min_w + (vp.max_w - vp.min_w) * HOST_CPU_LOAD),
        inst.vcpus * vp.min_low_w,
        inst.vcpus * vp.max_high_w,
    )
    gb = (inst.memory_gb or 0.0) * BYTES_PER_GIB / 1e9
    ram = tuple(gb * w for w in RAM_W_PER_GB)
    return acc[0] + cpu[0] + ram[0], acc[1] + cpu[1] + ram[1], acc[2] + cpu[2] + ram[2]


def _offer_energy(workload: Workload, offer: Offering) -> _Energy | None:
    precision = workload.precision
    peak = _peak_tflops(offer.accelerator, precision)
    if peak is None:
        return None
    if workload.kind == "gpu-hours":
        hours = workload.reference_tflops / (peak * offer.count)
        d = d_lo = d_hi = hours * _HOUR_S
    else:
        mfu = accelerator_data()["mfu"]
        rate = offer.count * peak * 1e12  # FLOP/s at 100 % utilisation
        d = workload.total_flops / (rate * float(mfu["central"]))
        d_lo = workload.total_flops / (rate * float(mfu["high"]))
        d_hi = workload.total_flops / (rate * float(mfu["low"]))
    p, p_lo, p_hi = instance_power_w(offer)
    return _Energy(d, d_lo, d_hi, p, p_lo, p_hi)


def run_power_profile(record: RunRecord) -> tuple[float, ...] | None:
    """Mean power (W) per hour of the run's progress from its top-level windows (energy outside
    windows spread evenly); ``None`` for runs under two hours or without windows."""
    hours = math.ceil(record.duration_s / _HOUR_S)
    top = [w for w in record.windows if "/" not in w.path and w.end_s > w.start_s]
    if hours < 2 or not top:
        return None
    bins = [0.0] * hours
    t0 = record.started_s
    inside_j = 0.0
    for w in top:
        rate = w.energy_j / (w.end_s - w.start_s)
        for h in range(hours):
            a = max(w.start_s, t0 + h * _HOUR_S)
            b = min(w.end_s, t0 + (h + 1) * _HOUR_S)
            if b > a:
                bins[h] += rate * (b - a)
                inside_j += rate * (b - a)
    rest = max(record.energy_j - inside_j, 0.0) / record.duration_s
    last = record.duration_s - (hours - 1) * _HOUR_S
    return tuple(e / (_HOUR_S if h < hours - 1 else last) + rest for h, e in enumerate(bins))


# ----------------------------------------------------------------------------- intensities


@dataclasses.dataclass(frozen=True)
class _Intensity:
    g_per_kwh: float
    source: str
    kind: str
    start_s: float | None


class _IntensityCache:
    """Annual figure per zone, or the planner's best window per (zone, duration, profile)."""

    def __init__(self, settings: Settings, constraints: Constraints) -> None:
        self.settings = settings
        self.c = constraints
        self._series: dict[str, Any] = {}
        self._cache: dict[tuple[str, float, tuple[float, ...] | None], _Intensity] = {}

    def get(
        self, zone: str, duration_s: float, profile: tuple[float, ...] | None = None
    ) -> _Intensity:
        key = (zone, round(duration_s, 3), profile)
        if key not in self._cache:
            self._cache[key] = self._compute(zone, duration_s, profile)
        return self._cache[key]

    def _compute(
        self, zone: str, duration_s: float, profile: tuple[float, ...] | None
    ) -> _Intensity:
        if self.c.deadline_s is None:
            from greenforge.grid.zones import annual_intensity

            a = annual_intensity(zone)
            return _Intensity(a.intensity_g_per_kwh, a.source, "annual", None)
        from greenforge.grid.chain import intensity_for
        from greenforge.schedule.job import Job
        from greenforge.schedule.planner import plan_job

        if zone not in self._series:
            self._series[zone] = intensity_for(
                self.settings, zone, self.c.start_s, self.c.deadline_s, forecast=True
            )
        series = self._series[zone]
        job = Job(
            duration_s=duration_s,
            earliest_start_s=self.c.start_s,
            deadline_s=self.c.deadline_s,
            zones=(zone,),
            power_w=None if profile else 1000.0,
            power_profile_w=profile,
            profile_step_s=_HOUR_S,
            name="recommend",
        )
        plan = plan_job(job, {zone: series})
        mean = plan.expected_co2e_g / (plan.energy_j / J_PER_KWH)
        kind = "annual" if series.kind == "annual" else f"hourly {series.kind}"
        return _Intensity(mean, f"planner best start on {series.source}", kind, plan.start_s)


# --------------------------------------------------------------------------------- regions


def _regions(constraints: Constraints) -> list[Any]:
    from greenforge.grid.zones import cloud_region_zone, cloud_regions

    for p in constraints.providers:
        if p not in PUE_DEFAULTS:
            raise ConfigError(
                f"unknown provider {p!r}: use {', '.join(sorted(PUE_DEFAULTS))} (comma-separated)."
            )
    regions = [r for p in constraints.providers for r in cloud_regions(p)]
    if not constraints.regions:
        return regions
    wanted = {r.strip().lower().replace(" ", "") for r in constraints.regions}
    known = {r.region for r in regions}
    for name in wanted - known:
        cloud_region_zone(None, name)  # raises with close matches when unknown anywhere
        raise ConfigError(
            f"region {name!r} is not a region of the providers allowed "
            f"({', '.join(constraints.providers)}): add its provider to --provider."
        )
    return [r for r in regions if r.region in wanted]


def google_cfe(region: str) -> float | None:
    """Google's hourly carbon-free-energy share of a GCP region (2024), or ``None``."""
    value = accelerator_data()["google_cfe"]["regions"].get(region)
    return None if value is None else float(value)


# ------------------------------------------------------------------------------ the ranking


def _embodied(
    inst: CloudInstance, duration: tuple[float, float, float], lifetime_s: float
) -> tuple[float, float, float, str]:
    kg = inst.embodied_kg
    if kg is None:
        return 0.0, 0.0, 0.0, "unknown (0 counted)"
    rel = EMBODIED_REL_BOUND.get(inst.embodied_basis, EMBODIED_ESTIMATE_REL_BOUND)
    d, d_lo, d_hi = duration
    source = (
        f"ccf-coefficients:{inst.provider}-embodied:{inst.type} ({inst.embodied_basis}) "
        f"{kg:.4g} kg x run time / {lifetime_s / SECONDS_PER_YEAR:g} years"
    )
    return (
        kg * d / lifetime_s,
        kg * (1 - rel) * d_lo / lifetime_s,
        kg * (1 + rel) * d_hi / lifetime_s,
        source,
    )


def recommend(
    workload: Workload, constraints: Constraints, settings: Settings | None = None
) -> Recommendation:
    """Rank (provider, region, instance) for ``workload`` under ``constraints`` by total CO2e
    (kg, least first). Raises ConfigError for bad constraints and InfeasibleError when no
    option fits (e.g. every one runs past the deadline)."""
    settings = settings if settings is not None else Settings()
    if constraints.max_price_per_h is not None:
        raise ConfigError(
            "--max-price needs price data, and GreenForge embeds no cloud prices: drop "
            "--max-price (filter the table by your own price list)."
        )
    if constraints.deadline_s is not None and constraints.deadline_s <= constraints.start_s:
        raise ConfigError("the deadline must be after the start: give a later --deadline.")
    lifetime_s = settings.device_lifetime_years * SECONDS_PER_YEAR
    cache = _IntensityCache(settings, constraints)
    notes: list[str] = []
    options: list[Option] = []
    regions = _regions(constraints)
    late: set[str] = set()

    def intensity_or_none(
        zone: str, duration_s: float, profile: tuple[float, ...] | None, what: str
    ) -> _Intensity | None:
        try:
            return cache.get(zone, duration_s, profile)
        except InfeasibleError:
            late.add(what)
            return None
        except GreenForgeError as exc:
            notes.append(f"{zone}: no intensity ({exc}); its regions are left out")
            return None

    if workload.kind == "run":
        kwh = tuple(
            x / J_PER_KWH
            for x in (workload.energy_j, workload.energy_low_j, workload.energy_high_j)
        )
        d = workload.duration_s
        emb_kg = workload.embodied_kg or 0.0
        for reg in regions:
            it = intensity_or_none(reg.zone, d, workload.power_profile_w, "the run")
            if it is not None:
                options.append(
                    _option(
                        reg,
                        (f"as measured ({workload.hardware})", "as measured", 0.0),
                        (d, d, d),
                        (kwh[0], kwh[1], kwh[2]),
                        it,
                        (emb_kg, emb_kg, emb_kg, workload.embodied_source or "unknown (0 counted)"),
                    )
                )
    else:
        offers = offerings(constraints.providers, constraints.accelerators)
        skipped = sorted(
            {
                o.accelerator
                for o in offers
                if _peak_tflops(o.accelerator, workload.precision) is None
            }
        )
        if skipped:
            notes.append(
                f"no published {workload.precision} throughput for {', '.join(skipped)}: left out"
            )
        for offer in offers:
            energy = _offer_energy(workload, offer)
            if energy is None:
                continue
            inst = offer.instance
            durations = (energy.duration_s, energy.duration_low_s, energy.duration_high_s)
            emb = _embodied(inst, durations, lifetime_s)
            for reg in regions:
                if reg.provider != inst.provider:
                    continue
                it = intensity_or_none(reg.zone, energy.duration_s, None, inst.type)
                if it is not None:
                    what = (inst.type, offer.accelerator, offer.count)
                    options.append(_option(reg, what, durations, energy.kwh, it, emb))
        if not constraints.all_sizes:
            options = _best_size(options)
    if late:
        notes.append(
            f"{len(late)} option(s) cannot finish before the deadline and are left out "
            f"(e.g. {sorted(late)[0]})"
        )
    if not options:
        raise InfeasibleError(
            "no option fits the constraints"
            + (f": {'; '.join(notes)}" if notes else "")
            + ". Allow more providers, regions or accelerators, or a later --deadline."
        )
    options.sort(key=lambda o: (o.total_kg, o.duration_s, o.provider, o.region, o.instance))
    return Recommendation(
        workload,
        tuple(options),
        _assumptions(workload, settings),
        sources_for(options),
        tuple(notes),
    )


def _option(
    reg: Any,
    what: tuple[str, str, float],
    durations: tuple[float, float, float],
    kwh: tuple[float, float, float],
    it: _Intensity,
    emb: tuple[float, float, float, str],
) -> Option:
    """One row: operational = IT energy x PUE x intensity (central, low, high) + embodied."""
    pue = PUE_DEFAULTS[reg.provider]
    op = [x * pue * it.g_per_kwh / 1000.0 for x in kwh]
    cfe = google_cfe(reg.region) if reg.provider == "gcp" else None
    return Option(
        provider=reg.provider,
        region=reg.region,
        zone=reg.zone,
        location=reg.location,
        instance=what[0],
        accelerator=what[1],
        count=what[2],
        duration_s=durations[0],
        duration_low_s=durations[1],
        duration_high_s=durations[2],
        energy_kwh=kwh[0],
        energy_low_kwh=kwh[1],
        energy_high_kwh=kwh[2],
        pue=pue,
        pue_source=f"{PUE_SOURCE}:{reg.provider}",
        intensity_g_per_kwh=it.g_per_kwh,
        intensity_source=it.source,
        intensity_kind=it.kind,
        start_s=it.start_s,
        operational_kg=op[0],
        operational_low_kg=op[1],
        operational_high_kg=op[2],
        embodied_kg=emb[0],
        embodied_low_kg=emb[1],
        embodied_high_kg=emb[2],
        embodied_source=emb[3],
        cfe_share=cfe,
        market_co2e_kg=None if cfe is None else op[0] * (1 - cfe) + emb[0],
    )


def _best_size(options: list[Option]) -> list[Option]:
    best: dict[tuple[str, str, str], Option] = {}
    for o in options:
        key = (o.provider, o.region, o.accelerator)
        cur = best.get(key)
        if cur is None or (o.total_kg, o.duration_s) < (cur.total_kg, cur.duration_s):
            best[key] = o
    return list(best.values())


def _assumptions(workload: Workload, settings: Settings) -> tuple[str, ...]:
    data = accelerator_data()
    share, mfu = data["power_share"], data["mfu"]
    out = [
        "ranking: location-based total CO2e = IT energy x provider PUE x grid intensity of "
        "the region's zone + embodied share (GHG Protocol Scope 2 location-based)",
        "market-based indicator (beside, never ranked): operational x (1 - Google CFE %) "
        f"+ embodied; {data['google_cfe']['source']}",
        "instances assumed available in every region of their provider (availability per "
        "region is not checked)",
        f"embodied share over a {settings.device_lifetime_years:g}-year device lifetime",
    ]
    if workload.kind != "run":
        out += [
            f"accelerator draw = TDP x {share['central']:g} (bounds {share['low']:g}-"
            f"{share['high']:g}): {share['source']}",
            f"host: vCPUs at {HOST_CPU_LOAD:.0%} load (CCF per-vCPU watts), RAM "
            f"{RAM_W_PER_GB[0]:g} W/GB",
        ]
    if workload.kind == "flops":
        out.append(
            f"run time = FLOPs / (dense peak x MFU {mfu['central']:g}, bounds "
            f"{mfu['low']:g}-{mfu['high']:g}): {mfu['source']}"
        )
    if workload.kind == "gpu-hours":
        out.append("other accelerators: hours scaled by dense peak throughput (same MFU)")
    return tuple(out)


def sources_for(options: Sequence[Option]) -> tuple[str, ...]:
    """The source of every figure behind ``options`` (accelerator throughput and power,
    intensity, PUE), one line each, without repeats."""
    data = accelerator_data()
    out: list[str] = []
    for name in sorted({o.accelerator for o in options if o.accelerator in data["accelerators"]}):
        acc = data["accelerators"][name]
        out.append(f"{name} throughput: {acc['source']}")
        models = sorted(
            {
                cloud_instance(o.provider, o.instance).gpu_model or ""
                for o in options
                if o.accelerator == name
            }
        )
        for model in models:
            spec = gpu_spec(model)
            out.append(f"{model} power: {spec.source}")
    out += sorted({o.intensity_source for o in options})
    out += sorted({o.embodied_source for o in options if o.accelerator == "as measured"})
    out.append("PUE: Cloud Carbon Footprint methodology (AWS 1.135, GCP 1.1, Azure 1.185)")
    return tuple(dict.fromkeys(out))
