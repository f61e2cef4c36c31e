"""Hardware catalog: CPU TDPs, cloud instance power coefficients, embodied figures, PUE.

Tables are embedded in ``greenforge/hardware/data`` (built by
``scripts/build_hardware_tables.py`` from codecarbon's CPU list, SPECpower results and the
Cloud Carbon Footprint coefficients; see ``data/NOTICE.md``). Everything here is pure lookup and
arithmetic; detecting the CPU lives in :mod:`greenforge.hardware.cpuinfo`.

Main entry points:

- :func:`default_pue` ``(settings, zone_source=None) -> (pue, source)``
- :func:`embodied_for` ``(settings) -> (kgCO2e, source) | None``
- :func:`match_cpu` fuzzy CPU-model lookup, :func:`cloud_instance`, :func:`vcpu_power`
- :func:`cpu_power_model` ``(settings, cpuinfo) -> CpuPowerModel`` (used by ``model-cpu``)
- :func:`instance_memory_bytes` (``model-ram`` on a cloud instance), :func:`instance_gpu_power`
  (``model-gpu``), :func:`gpu_spec` and :func:`accelerator_data` (GPU/accelerator figures)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from greenforge.config import Settings
from greenforge.errors import ConfigError
from greenforge.hardware.cpuinfo import CpuInfo
from greenforge.pkgdata import read_data

PROVIDERS: tuple[str, ...] = ("aws", "gcp", "azure")

PUE_DEFAULTS: Mapping[str, float] = {"aws": 1.135, "gcp": 1.1, "azure": 1.185}
"""Provider PUE defaults used by Cloud Carbon Footprint (methodology, "Power Usage
Effectiveness"): AWS 1.135, Google Cloud 1.1, Azure 1.185."""
PUE_SOURCE = "ccf-methodology:pue"

TDP_LOW_FACTOR = 0.85
"""Low bound on full-load package power as a share of TDP (CPUs rarely sit at TDP)."""
TDP_HIGH_FACTOR = 1.15
"""High bound: turbo budgets (Intel PL2, AMD PPT) let packages exceed TDP for a while."""
VCPU_REL_BOUND = 0.25
"""Relative low/high bound around a CCF per-vCPU coefficient of a known micro-architecture."""
REFERENCE_PROVIDER = "aws"
"""Coefficient table used off-cloud (it covers the most micro-architectures)."""


@dataclasses.dataclass(frozen=True)
class CpuSpec:
    """One CPU model from the catalog."""

    name: str
    tdp_w: float
    threads_per_package: int | None = None


@dataclasses.dataclass(frozen=True)
class CpuMatch:
    """Result of matching a CPU model name against the catalog."""

    query: str
    kind: str
    """``exact`` (same model number), ``family`` (same brand line, median TDP), ``none``."""
    tdp_w: float
    tdp_low_w: float
    tdp_high_w: float
    spec: CpuSpec | None
    candidates: int
    """How many catalog entries the figure summarises (1 for ``exact``)."""

    @property
    def label(self) -> str:
        if self.spec is not None:
            return f"{self.spec.name} ({self.tdp_w:g} W TDP)"
        if self.kind == "family":
            return (
                f"{self.candidates} models, median {self.tdp_w:g} W "
                f"(range {self.tdp_low_w:g}-{self.tdp_high_w:g} W)"
            )
        return "no match"


@dataclasses.dataclass(frozen=True)
class CloudInstance:
    """A cloud instance type with what we know of its power and embodied emissions."""

    provider: str
    type: str
    vcpus: int
    memory_gb: float | None
    cpu: str
    arch: str
    platform_vcpus: int
    platform_embodied_kg: float | None
    embodied_basis: str = ""
    """How the platform figure was obtained: ``ccf`` (CCF coefficient of the type),
    ``ccf-platform`` (of another type on its platform), ``ccf-instance-list`` (CCF's instance
    list), ``ccf-method`` (CCF's method applied by the build: base server + memory + GPUs)."""
    gpu_model: str | None = None
    """GPU/accelerator model of the instance (a key of :func:`gpu_spec`), ``None`` if none."""
    gpu_count: float = 0.0
    """Accelerators the instance holds (fractional for shared GPUs, e.g. AWS g6f: 0.125)."""

    @property
    def embodied_kg(self) -> float | None:
        """The instance's share of its platform's embodied kgCO2e (by vCPUs, as CCF shares)."""
        if self.platform_embodied_kg is None:
            return None
        return self.platform_embodied_kg * self.vcpus / self.platform_vcpus


@dataclasses.dataclass(frozen=True)
class GpuSpec:
    """Board power of one GPU/accelerator model, with its bounds and source."""

    model: str
    tdp_w: float
    tdp_low_w: float
    tdp_high_w: float
    estimate: bool
    """True where the vendor publishes no power figure (the bounds are then wider)."""
    source: str


@dataclasses.dataclass(frozen=True)
class VcpuPower:
    """Watts per vCPU at idle (``min_w``) and full load (``max_w``), with bounds."""

    arch: str
    """Micro-architecture, or ``average`` when unknown."""
    min_w: float
    max_w: float
    min_low_w: float
    max_low_w: float
    min_high_w: float
    max_high_w: float
    source: str


@dataclasses.dataclass(frozen=True)
class CpuPowerModel:
    """Linear power curve ``P(u) = idle + (max - idle) * u`` for the visible CPUs, with bounds.

    ``u`` is the machine CPU utilisation in [0, 1]. ``method`` is the ``model:*`` label that
    every reading carries; ``provenance`` says, in words, where each number came from.
    """

    method: str
    idle_w: float
    max_w: float
    idle_low_w: float
    max_low_w: float
    idle_high_w: float
    max_high_w: float
    provenance: str
    warning: str = ""

    def power_w(self, utilisation: float) -> tuple[float, float, float]:
        """(central, low, high) watts at utilisation ``utilisation`` (clipped to [0, 1])."""
        u = min(max(utilisation, 0.0), 1.0)
        return (
            self.idle_w + (self.max_w - self.idle_w) * u,
            self.idle_low_w + (self.max_low_w - self.idle_low_w) * u,
            self.idle_high_w + (self.max_high_w - self.idle_high_w) * u,
        )


# ---------------------------------------------------------------------------- embedded tables


_Row = tuple[str, str, float, int | None]  # (lower-case name, name, tdp_w, threads)


@functools.lru_cache(maxsize=1)
def _cpu_rows() -> tuple[_Row, ...]:
    import csv  # imported here: a tracker start never reads this table

    text = read_data("greenforge.hardware", "data/cpu_tdp.csv").decode("utf-8")
    rows = csv.reader(text.splitlines()[1:])
    return tuple((n.lower(), n, float(t), int(th) if th else None) for n, t, th in rows)


def cpu_catalog() -> tuple[CpuSpec, ...]:
    """Every CPU model in the embedded catalog."""
    return tuple(CpuSpec(name, tdp, threads) for _, name, tdp, threads in _cpu_rows())


@functools.lru_cache(maxsize=1)
def _cloud() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(read_data("greenforge.hardware", "data/cloud.json"))
    return data


def idle_ratio() -> tuple[float, float, float]:
    """SPECpower active-idle / full-load power ratio: (10th percentile, median, 90th)."""
    r = _cloud()["specpower_idle_ratio"]
    return float(r["p10"]), float(r["p50"]), float(r["p90"])


# ---------------------------------------------------------------------------- CPU matching

_NOISE = re.compile(
    r"\((r|tm|c)\)|®|™|\bcpu\b|\bprocessor\b|@.*$|\bwith\b.*$|\b\d+-core\b|\bgraphics\b",
    re.IGNORECASE,
)


def _tokens(name: str) -> list[str]:
    cleaned = _NOISE.sub(" ", name.lower())
    return re.findall(r"[a-z0-9+]+(?:-[a-z0-9+]+)*", cleaned)


def _is_model_number(token: str) -> bool:
    return any(ch.isdigit() for ch in token) and len(token) >= 3


def _candidates(words: set[str]) -> list[tuple[CpuSpec, frozenset[str]]]:
    """Catalog rows whose name contains every word (cheap substring filter, then tokens)."""
    out = []
    for low, name, tdp, threads in _cpu_rows():
        if all(w in low for w in words):
            tokens = frozenset(_tokens(name))
            if words <= tokens:
                out.append((CpuSpec(name, tdp, threads), tokens))
    return out


@functools.lru_cache(maxsize=256)
def match_cpu(model_name: str, family: bool = True) -> CpuMatch:
    """Fuzzy-match a CPU model name (as in ``/proc/cpuinfo``) against the catalog.

    An ``exact`` match needs the same model number (``8175M``, ``i7-8700``, ``5800X``) and the
    most shared words; otherwise a ``family`` match summarises every model sharing the brand
    words (``AMD EPYC``, ``Intel Xeon Gold``) by its median TDP with the min-max range;
    otherwise ``none``. ``family=False`` skips the family search (virtual machines, which use
    only an exact match).
    """
    query = _tokens(model_name)
    qset = set(query)
    numbers = {t for t in query if _is_model_number(t)}
    if numbers:
        best: tuple[float, CpuSpec] | None = None
        for spec, tokens in _candidates(numbers):
            score = len(qset & tokens) / len(qset | tokens)
            if best is None or score > best[0]:
                best = (score, spec)
        if best is not None:
            spec = best[1]
            return CpuMatch(model_name, "exact", spec.tdp_w, spec.tdp_w, spec.tdp_w, spec, 1)
    words = [t for t in query if not _is_model_number(t)] if family else []
    for n in range(len(words), 1, -1):
        tdps = [spec.tdp_w for spec, _ in _candidates(set(words[:n]))]
        if tdps:
            import statistics  # imported here: ~5 ms that a tracker start need not pay

            return CpuMatch(
                model_name,
                "family",
                float(statistics.median(tdps)),
                min(tdps),
                max(tdps),
                None,
                len(tdps),
            )
    return CpuMatch(model_name, "none", 0.0, 0.0, 0.0, None, 0)


# ---------------------------------------------------------------------------- cloud


def _instance_from_row(provider: str, itype: str, row: list[Any]) -> CloudInstance:
    fields = dict(zip(_cloud()["instance_fields"], row, strict=True))
    gpu = fields["gpu_model"]
    return CloudInstance(
        provider=provider,
        type=itype,
        vcpus=int(fields["vcpus"]),
        memory_gb=None if fields["memory_gb"] is None else float(fields["memory_gb"]),
        cpu=str(fields["cpu"]),
        arch=str(fields["arch"]),
        platform_vcpus=max(int(fields["platform_vcpus"]), int(fields["vcpus"])),
        platform_embodied_kg=(
            None
            if fields["platform_embodied_kg"] is None
            else float(fields["platform_embodied_kg"])
        ),
        embodied_basis=str(fields["embodied_basis"]),
        gpu_model=None if gpu is None else str(gpu),
        gpu_count=float(fields["gpu_count"]) if gpu is not None else 0.0,
    )


@functools.lru_cache(maxsize=1)
def accelerator_data() -> dict[str, Any]:
    """The embedded ``accelerators.json`` (GPU power, accelerator throughput, assumptions,
    Google CFE %), built with every figure's source by ``scripts/build_hardware_tables.py``."""
    data: dict[str, Any] = json.loads(read_data("greenforge.hardware", "data/accelerators.json"))
    return data


def gpu_models() -> list[str]:
    """GPU/accelerator models with a power figure."""
    return sorted(accelerator_data()["gpus"])


def gpu_spec(model: str) -> GpuSpec:
    """Board power of a GPU/accelerator model with bounds (published TDP: +-10 %; an
    estimate: +-50 %). An unknown model raises a ConfigError listing the known ones."""
    data = accelerator_data()
    entry = data["gpus"].get(model)
    if entry is None:
        raise ConfigError(
            f"unknown GPU model {model!r}: known models are {', '.join(gpu_models())}."
        )
    tdp = float(entry["tdp_w"])
    estimate = bool(entry["estimate"])
    rel = float(data["estimate_rel_bound"] if estimate else data["published_rel_bound"])
    return GpuSpec(model, tdp, tdp * (1 - rel), tdp * (1 + rel), estimate, str(entry["source"]))


def instance_types(provider: str) -> list[str]:
    """Known instance types of ``provider`` (``aws``, ``gcp``, ``azure``)."""
    return sorted(_cloud()["instances"].get(provider, {}))


def find_instance(provider: str | None, instance_type: str) -> CloudInstance | None:
    """Look up an instance type; ``provider=None`` searches every provider."""
    instances = _cloud()["instances"]
    for p in (provider,) if provider else PROVIDERS:
        row = instances.get(p, {}).get(instance_type)
        if row is not None:
            return _instance_from_row(p, instance_type, row)
    return None


def cloud_instance(provider: str | None, instance_type: str) -> CloudInstance:
    """Like :func:`find_instance`, but an unknown type raises a ConfigError with close matches."""
    found = find_instance(provider, instance_type)
    if found is not None:
        return found
    import difflib

    known = [t for p in ((provider,) if provider else PROVIDERS) for t in instance_types(p or "")]
    close = difflib.get_close_matches(instance_type, known, n=5, cutoff=0.6)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    where = f" for {provider}" if provider else ""
    raise ConfigError(
        f"unknown cloud_instance_type {instance_type!r}{where} in the embedded catalog.{hint} "
        "Fix the name, or unset cloud_instance_type and set embodied_kg / cpu_tdp_w yourself."
    )


def vcpu_power(provider: str | None, arch: str | None) -> VcpuPower:
    """CCF watts per vCPU for a micro-architecture; unknown -> the table average, wide bounds."""
    table_name = provider if provider in PROVIDERS else REFERENCE_PROVIDER
    tables: dict[str, dict[str, list[float]]] = _cloud()["use_w_per_vcpu"]
    table = tables[str(table_name)]
    chosen = table
    if arch and arch not in table:
        for other in PROVIDERS:  # e.g. EPYC 5th Gen is only in the AWS table
            if arch in tables[other]:
                table_name, chosen = other, tables[other]
                break
    if arch and arch in chosen:
        lo, hi = chosen[arch]
        rel = VCPU_REL_BOUND
        return VcpuPower(
            arch,
            lo,
            hi,
            lo * (1 - rel),
            hi * (1 - rel),
            lo * (1 + rel),
            hi * (1 + rel),
            f"ccf-coefficients:{table_name}-use:{arch}",
        )
    mins = [v[0] for v in table.values()]
    maxs = [v[1] for v in table.values()]
    return VcpuPower(
        "average",
        math.fsum(mins) / len(mins),
        math.fsum(maxs) / len(maxs),
        min(mins),
        min(maxs),
        max(mins),
        max(maxs),
        f"ccf-coefficients:{table_name}-use:average-of-{len(table)}-architectures",
    )


# ---------------------------------------------------------------------------- CPU power model


def _vcpu_model(
    vp: VcpuPower, vcpus: int, why: str, method: str = "model:cpu-ccf-vcpu", warning: str = ""
) -> CpuPowerModel:
    return CpuPowerModel(
        method=method,
        idle_w=vp.min_w * vcpus,
        max_w=vp.max_w * vcpus,
        idle_low_w=vp.min_low_w * vcpus,
        max_low_w=vp.max_low_w * vcpus,
        idle_high_w=vp.min_high_w * vcpus,
        max_high_w=vp.max_high_w * vcpus,
        provenance=(
            f"{why}; {vcpus} vCPU x {vp.min_w:.3g}-{vp.max_w:.3g} W per vCPU ({vp.source})"
        ),
        warning=warning,
    )


def _tdp_model(
    tdp_w: float, tdp_low_w: float, tdp_high_w: float, share: float, why: str
) -> CpuPowerModel:
    r_lo, r_mid, r_hi = idle_ratio()
    max_w = tdp_w * share
    max_low_w = tdp_low_w * share * TDP_LOW_FACTOR
    max_high_w = tdp_high_w * share * TDP_HIGH_FACTOR
    return CpuPowerModel(
        method="model:cpu-tdp",
        idle_w=max_w * r_mid,
        max_w=max_w,
        idle_low_w=max_low_w * r_lo,
        max_low_w=max_low_w,
        idle_high_w=max_high_w * r_hi,
        max_high_w=max_high_w,
        provenance=(
            f"{why}; idle = {r_mid:.0%} of full load (SPECpower median; bounds "
            f"{r_lo:.0%}-{r_hi:.0%}), full load = TDP x {share:.3g} "
            f"(bounds x{TDP_LOW_FACTOR}-x{TDP_HIGH_FACTOR})"
        ),
    )


def cpu_power_model(settings: Settings, cpu: CpuInfo) -> CpuPowerModel:
    """Choose the CPU power curve for this machine (documented order, first that applies):

    1. ``settings.cpu_tdp_w`` -> ``model:cpu-tdp`` with that TDP for the whole visible CPU.
    2. a known ``settings.cloud_instance_type`` -> ``model:cpu-ccf-vcpu`` (CCF watts per vCPU of
       the instance's micro-architecture x visible vCPUs).
    3. bare metal and an exact/family catalog match -> ``model:cpu-tdp`` (TDP x packages).
    4. a VM whose CPU model and package thread count are known -> ``model:cpu-tdp`` scaled by
       visible threads / package threads.
    5. a VM (or unmatched CPU) with a micro-architecture known from CPUID -> ``model:cpu-ccf-vcpu``.
    6. otherwise ``model:cpu-generic``: the average CCF per-vCPU figure with the widest bounds,
       and a warning.
    """
    n = cpu.logical_cpus
    if settings.cpu_tdp_w is not None:
        tdp = settings.cpu_tdp_w
        return _tdp_model(tdp, tdp, tdp, 1.0, f"TDP {tdp:g} W from settings.cpu_tdp_w")
    if settings.cloud_instance_type:
        inst = cloud_instance(settings.cloud_provider, settings.cloud_instance_type)
        vp = vcpu_power(inst.provider, inst.arch or cpu.microarchitecture)
        warning = (
            f"cloud_instance_type {inst.type} has {inst.vcpus} vCPUs but this machine shows "
            f"{n}: the model uses the {n} visible; check the setting."
            if inst.vcpus != n
            else ""
        )
        why = f"{inst.provider} {inst.type} ({inst.arch or 'unknown arch'})"
        return _vcpu_model(vp, n, why, warning=warning)
    match = match_cpu(cpu.model_name, family=not cpu.hypervisor)
    if not cpu.hypervisor and match.kind != "none":
        why = f"bare metal {cpu.packages} package(s) of {cpu.model_name!r} -> {match.label}"
        return _tdp_model(
            match.tdp_w * cpu.packages,
            match.tdp_low_w * cpu.packages,
            match.tdp_high_w * cpu.packages,
            1.0,
            why,
        )
    spec = match.spec
    if cpu.hypervisor and spec is not None and spec.threads_per_package:
        share = min(n / spec.threads_per_package, 1.0)
        why = (
            f"VM sees {n} of {spec.threads_per_package} threads of a {spec.name} "
            f"({spec.tdp_w:g} W TDP)"
        )
        return _tdp_model(spec.tdp_w, spec.tdp_w, spec.tdp_w, share, why)
    arch = cpu.microarchitecture
    if arch is not None:
        vp = vcpu_power(settings.cloud_provider, arch)
        where = "VM" if cpu.hypervisor else "CPU not in catalog"
        return _vcpu_model(vp, n, f"{where}: {cpu.model_name!r}, {arch} from CPUID")
    vp = vcpu_power(settings.cloud_provider, None)
    warning = (
        f"CPU {cpu.model_name!r} is not in the catalog and its micro-architecture is unknown: "
        "using the generic per-vCPU average with wide bounds. Set cpu_tdp_w (or "
        "cloud_instance_type) for a better estimate."
    )
    return _vcpu_model(vp, n, "generic", method="model:cpu-generic", warning=warning)


# ---------------------------------------------------------------------------- GPU/RAM of instances

GPU_IDLE_SHARE = 0.1
"""Idle draw of a data-centre GPU as a share of its TDP (A100: ~50 W of 400 W; H100: ~70 W of
700 W in nvidia-smi at rest): the low bound of a GPU whose utilisation is unknown."""
GPU_UNKNOWN_LOAD_SHARE = 0.5
"""Central draw, as a share of TDP, of a GPU whose utilisation nobody measures (midway between
idle and full load, the bounds spanning both)."""
BYTES_PER_GIB = 2**30
"""Providers list instance memory in GiB (AWS "Memory (GiB)", Azure, GCP "GB" = GiB)."""


@dataclasses.dataclass(frozen=True)
class GpuPowerModel:
    """Modelled power of an instance's GPUs/accelerators when no meter reads them (watts)."""

    method: str
    power_w: float
    low_w: float
    high_w: float
    provenance: str
    warning: str


def instance_gpu_power(inst: CloudInstance) -> GpuPowerModel | None:
    """The modelled draw of ``inst``'s GPUs (``None`` without GPUs): ``count x TDP x 0.5``,
    bounds ``count x TDP_low x 0.1`` (idle) to ``count x TDP_high`` (full load)."""
    if inst.gpu_model is None or inst.gpu_count <= 0:
        return None
    spec = gpu_spec(inst.gpu_model)
    n = inst.gpu_count
    what = f"{n:g} x {spec.model} ({spec.tdp_w:g} W{' estimated' if spec.estimate else ''} TDP)"
    return GpuPowerModel(
        method="model:gpu-tdp",
        power_w=n * spec.tdp_w * GPU_UNKNOWN_LOAD_SHARE,
        low_w=n * spec.tdp_low_w * GPU_IDLE_SHARE,
        high_w=n * spec.tdp_high_w,
        provenance=(
            f"{inst.provider} {inst.type}: {what}; utilisation unknown: "
            f"{GPU_UNKNOWN_LOAD_SHARE:.0%} of TDP, bounds idle ({GPU_IDLE_SHARE:.0%} of TDP) "
            f"to full TDP; {spec.source}"
        ),
        warning=(
            f"no GPU meter reads the {what} of {inst.type}: their power is modelled from TDP "
            "with wide bounds. Install NVIDIA's NVML (pip install nvidia-ml-py) or AMD SMI "
            "where the devices are visible, for a measurement."
        ),
    )


def instance_memory_bytes(settings: Settings) -> tuple[float, str] | None:
    """Memory of the configured cloud instance in bytes and a label (``8 GiB of aws
    m5.large``), or ``None`` without a known instance type or its memory."""
    if not settings.cloud_instance_type:
        return None
    inst = find_instance(settings.cloud_provider, settings.cloud_instance_type)
    if inst is None or inst.memory_gb is None:
        return None
    return inst.memory_gb * BYTES_PER_GIB, f"{inst.memory_gb:g} GiB of {inst.provider} {inst.type}"


# ---------------------------------------------------------------------------- PUE, embodied


def default_pue(settings: Settings, zone_source: str | None = None) -> tuple[float, str]:
    """PUE to apply and its source: the setting (a PUE series setting: its mean), else the
    cloud provider default, else 1.0.

    ``zone_source`` is where the run's zone came from (the second item of
    :func:`greenforge.grid.zones.resolve_zone_source`). When it is a cloud region environment
    variable (``AWS_REGION=eu-central-1``), the machine runs in that provider's data centre,
    so its default PUE applies too: ``(1.135, "ccf-methodology:pue:aws (from AWS_REGION)")``.
    A zone given as an argument or setting says nothing about the machine: 1.0 stays.
    """
    if settings.pue is not None:
        return settings.pue, "settings.pue"
    if settings.pue_series is not None:  # a tracker charges PUE(t); one figure: the mean
        from greenforge.pue import load_pue

        series = load_pue(settings.pue_series)
        return float(series.values.mean()), f"settings.pue_series: {series.describe()}"
    if settings.cloud_provider in PUE_DEFAULTS:
        provider = str(settings.cloud_provider)
        return PUE_DEFAULTS[provider], f"{PUE_SOURCE}:{provider}"
    if zone_source is not None:
        from greenforge.grid.zones import CLOUD_REGION_ENV

        var = zone_source.partition("=")[0]
        for env_var, provider in CLOUD_REGION_ENV:
            if var == env_var and provider in PUE_DEFAULTS:
                return PUE_DEFAULTS[provider], f"{PUE_SOURCE}:{provider} (from {env_var})"
    return 1.0, "default:local-machine"


def embodied_for(settings: Settings) -> tuple[float, str] | None:
    """Embodied kgCO2e of the machine share this run uses, with its source; ``None`` if unknown.

    ``settings.embodied_kg`` wins. Else, for a known ``cloud_instance_type``, the CCF platform
    embodied figure x instance vCPUs / platform vCPUs (CCF's resource share), so the value is
    already the instance's share. An unknown instance type gives ``None`` here (``select_meters``
    reports it as a configuration error before a run starts).
    """
    if settings.embodied_kg is not None:
        return settings.embodied_kg, "settings.embodied_kg"
    if not settings.cloud_instance_type:
        return None
    inst = find_instance(settings.cloud_provider, settings.cloud_instance_type)
    if inst is None or inst.platform_embodied_kg is None or inst.embodied_kg is None:
        return None
    return inst.embodied_kg, (
        f"ccf-coefficients:{inst.provider}-embodied:{inst.type} "
        f"({inst.platform_embodied_kg:g} kg platform x {inst.vcpus}/{inst.platform_vcpus} vCPUs"
        f"{'' if inst.embodied_basis == 'ccf' else ', basis ' + inst.embodied_basis})"
    )
