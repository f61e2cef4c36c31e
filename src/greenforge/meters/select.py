"""Choose the meters for this machine, with a human reason for every choice and skip.

Rules (in order):

1. ``rapl`` when its counters are readable, else ``model-cpu`` (the reason says why RAPL was
   skipped and how to enable it).
2. ``nvidia`` when NVML sees at least one visible GPU; ``amd`` likewise through AMD SMI.
3. ``model-gpu`` when ``cloud_instance_type`` names an instance with GPUs (p4d.24xlarge) and
   neither ``nvidia`` nor ``amd`` reads them (power from the GPUs' TDP, wide bounds, a warning).
4. ``model-ram`` unless RAPL has a ``dram`` zone, which already measures memory (on a known
   cloud instance: the instance's memory, not the host's).

With ``settings.attribution == "process"`` and a ``pid``, node-wide meters are scoped to the
process tree rooted at ``pid``: modelled meters directly, RAPL through
:class:`greenforge.meters.model.ProcessShareMeter` (its readings are scaled by the tree's share
of busy CPU time), NVIDIA GPUs through :class:`greenforge.meters.gpushare.GpuShareMeter` (the
tree's share of each GPU's use, where NVML can tell; else the whole device).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from greenforge.config import Settings
from greenforge.hardware.catalog import cloud_instance, instance_gpu_power
from greenforge.hardware.cpuinfo import CpuInfo, read_cpuinfo
from greenforge.meters import amd, gpushare, model, nvidia, rapl
from greenforge.meters.base import Availability, Meter


@dataclasses.dataclass
class MeterSelection:
    """The meters to use and why (one line per meter considered)."""

    meters: list[Meter]
    reasons: list[str]
    warnings: list[str] = dataclasses.field(default_factory=list)
    availability: list[Availability] = dataclasses.field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.meters]


def attribution_warning(settings: Settings, *, container: bool | None = None) -> str | None:
    """The one-line warning when the attribution will charge others' load to a run, or None.

    Machine attribution inside a container models the whole host's CPU (``/proc/stat`` is
    host-wide). ``doctor`` shows it, ``greenforge run`` and trackers put it in the record.
    """
    if settings.attribution != "machine":
        return None
    if container is None:
        container = rapl.in_container()
    if not container:
        return None
    return (
        "running in a container: machine attribution models the whole host's CPU "
        "(/proc/stat is host-wide); set attribution = 'process' to charge only this "
        "container's processes"
    )


def _distributed(env: Mapping[str, str] | None) -> bool:
    from greenforge.distributed import rank_info

    return rank_info(env).distributed


def _skip(av: Availability) -> str:
    """``name: skipped - why``, one line: it is stored with every run, so how to enable the
    meter is left to ``greenforge doctor`` (which shows ``av.how_to_enable``)."""
    detail = av.detail.rstrip(".!? ")
    how = "; `greenforge doctor` says how to enable it" if av.how_to_enable else ""
    return f"{av.name}: skipped - {detail}{how}"


def instance_name(instance: Any) -> str:
    """``GPUs of p4d.24xlarge`` (for a reason line)."""
    return f"GPUs of {instance.type}"


def select_meters(
    settings: Settings,
    pid: int | None = None,
    *,
    rapl_root: Path = rapl.DEFAULT_ROOT,
    rapl_opener: rapl.Opener = rapl.read_text,
    nvml: Any | None = None,
    amdsmi: Any | None = None,
    env: Mapping[str, str] | None = None,
    cpuinfo: CpuInfo | None = None,
    tree: model.ProcessTreeCpu | None = None,
) -> MeterSelection:
    """Pick meters for ``settings`` (and the process tree of ``pid`` under process attribution).

    ``tree`` may stand in for ``pid``: a process tree whose root is attached later (what
    ``greenforge run`` measures: its command, which starts after the meters). Raises
    :class:`~greenforge.errors.ConfigError` for an unknown ``cloud_instance_type`` (before the
    workload starts, so the run is not lost to a typo).
    """
    instance = (
        cloud_instance(settings.cloud_provider, settings.cloud_instance_type)
        if settings.cloud_instance_type
        else None
    )
    process = settings.attribution == "process" and (pid is not None or tree is not None)
    if process and tree is None:
        tree = model.ProcessTreeCpu(pid)
    if not process:
        tree = None
    meters: list[Meter] = []
    reasons: list[str] = []
    warnings: list[str] = []
    avail: list[Availability] = []

    rapl_av = rapl.probe(rapl_root, rapl_opener)
    avail.append(rapl_av)
    rapl_meter: rapl.RaplMeter | None = None
    if rapl_av.available:
        rapl_meter = rapl.RaplMeter(rapl_root, rapl_opener)
        meters.append(
            model.ProcessShareMeter(rapl_meter, process_cpu=tree.sample) if tree else rapl_meter
        )
        reasons.append(f"rapl: using - counters {rapl_av.detail}")
        cpu_reason = "model-cpu: skipped - RAPL measures the CPU packages"
    else:
        reasons.append(_skip(rapl_av))
        cpu = cpuinfo if cpuinfo is not None else read_cpuinfo()
        cpu_meter = model.ModelCpuMeter(
            settings, cpuinfo=cpu, process_cpu=tree.sample if tree else None
        )
        meters.append(cpu_meter)
        cpu_reason = f"model-cpu: using - no CPU energy counter; {cpu_meter.provenance}"
        if cpu_meter.model.warning:
            warnings.append(cpu_meter.model.warning)
            cpu_reason += f" (warning: {cpu_meter.model.warning})"
    reasons.append(cpu_reason)
    avail.append(
        Availability(
            "model-cpu",
            True,
            cpu_reason.split(" - ", 1)[1],
            "set cpu_tdp_w or cloud_instance_type to refine the model",
        )
    )

    gpu_meters: list[tuple[Availability, Meter]] = [
        (nvidia.probe(nvml, env), nvidia.NvidiaMeter(nvml=nvml, env=env)),
        (amd.probe(amdsmi, env), amd.AmdMeter(amdsmi=amdsmi, env=env)),
    ]
    gpu_measured = False
    for av, meter in gpu_meters:
        avail.append(av)
        if av.available:
            gpu_measured = True
            if tree is not None and av.name == "nvidia" and not _distributed(env):
                # the tree's share of each GPU's use (a distributed run keeps whole devices,
                # read once per device by the rank that owns them)
                meter = gpushare.GpuShareMeter(meter, tree.live_pids)
                av = dataclasses.replace(av, detail=f"{av.detail}; {gpushare.DESCRIPTION}")
            meters.append(meter)
            reasons.append(f"{av.name}: using - {av.detail}")
        else:
            reasons.append(_skip(av))
    gpu_model = instance_gpu_power(instance) if instance is not None else None
    if gpu_model is not None and gpu_measured:
        reasons.append("model-gpu: skipped - a GPU meter measures the instance's GPUs")
    elif gpu_model is not None:
        meters.append(model.ModelGpuMeter(gpu_model))
        reasons.append(
            f"model-gpu: using - no GPU meter; {gpu_model.method} {gpu_model.provenance}"
        )
        warnings.append(gpu_model.warning)

    dram_zones = rapl.counted_zones(rapl.discover_zones(rapl_root, rapl_opener))[0]
    if rapl_meter is not None and any(z.zone.name == "dram" for z in dram_zones):
        reasons.append("model-ram: skipped - RAPL dram zone measures memory")
        avail.append(Availability("model-ram", True, "not needed: RAPL dram measures memory"))
    else:
        ram = model.ModelRamMeter(settings, memory_bytes=model.tree_rss_fn(tree) if tree else None)
        meters.append(ram)
        why = "no RAPL dram zone" if rapl_meter is not None else "no memory energy counter"
        reasons.append(f"model-ram: using - {why}; model:ram-w-per-gb {ram.provenance}")
        avail.append(model.probe_ram(settings))
    return MeterSelection(meters, reasons, warnings, avail)
