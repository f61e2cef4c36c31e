"""Device profiles for modelled energy per inference: published power and throughput figures.

Nothing here is measured. Every figure is a :class:`Bound` (low, central, high) with the source
it came from (a vendor datasheet, a published benchmark, or a stated ``assumption:``), and every
figure derived from a profile carries a method starting with ``model:``.

Profiles (:func:`device_names`): ``rpi4``, ``rpi5``, ``jetson-orin-nano``,
``snapdragon-8-gen-2`` (a phone SoC), ``cloud-cpu`` (one vCPU of a cloud CPU instance, from the
Cloud Carbon Footprint coefficients in :mod:`greenforge.hardware.catalog`) and ``cloud-gpu``
(an NVIDIA T4 as on AWS g4dn). Pure data and arithmetic; standard library only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from greenforge.errors import ConfigError, UnknownNameError


@dataclasses.dataclass(frozen=True)
class Bound:
    """A figure with its low and high bounds and where it came from (unit in the field name)."""

    low: float
    central: float
    high: float
    source: str

    def __post_init__(self) -> None:
        values = (self.low, self.central, self.high)
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ConfigError(f"bound {values!r} ({self.source}) must be finite and >= 0.")
        if not self.low <= self.central <= self.high:
            raise ConfigError(
                f"bound {values!r} ({self.source}) must satisfy low <= central <= high."
            )

    def to_dict(self) -> dict[str, float | str]:
        return dataclasses.asdict(self)


def bound(low: float, high: float, source: str, central: float | None = None) -> Bound:
    """A :class:`Bound` whose central value is the geometric mean of ``low`` and ``high``
    unless given (ranges of power and throughput span ratios, not differences)."""
    mid = math.sqrt(low * high) if central is None else central
    return Bound(low, mid, high, source)


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    """A device that can serve a model, described by published figures (each with a source).

    ``sustained_gflops_fp32`` / ``sustained_gops_int8``: throughput a large matrix multiply
    sustains on the device's inference engine (not the marketing peak). ``idle_w`` / ``load_w``:
    whole-device power at idle and under sustained inference load. ``overhead_s``: fixed time per
    inference call that does not scale with FLOPs (GPU kernel launches and copies; 0 on CPUs).
    ``embodied_kg``: production (cradle-to-gate) emissions; ``lifetime_years`` its service life.
    ``share``: ``dedicated`` (the device serves only this model: its idle power and its whole
    embodied share are charged) or ``time`` (a shared device: only the busy time is charged).
    """

    name: str
    label: str
    kind: str
    """``edge`` or ``cloud``."""
    sustained_gflops_fp32: Bound
    sustained_gops_int8: Bound
    idle_w: Bound
    load_w: Bound
    overhead_s: Bound
    embodied_kg: Bound
    lifetime_years: float
    share: str
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("edge", "cloud"):
            raise ConfigError(f"device {self.name!r}: kind {self.kind!r} must be edge or cloud.")
        if self.share not in ("dedicated", "time"):
            raise ConfigError(
                f"device {self.name!r}: share {self.share!r} must be dedicated or time."
            )
        if not self.lifetime_years > 0:
            raise ConfigError(f"device {self.name!r}: lifetime_years must be > 0.")

    @property
    def marginal_w(self) -> Bound:
        """Power above idle while inferring (W): load - idle, low = load_low - idle_high."""
        return Bound(
            max(self.load_w.low - self.idle_w.high, 0.0),
            max(self.load_w.central - self.idle_w.central, 0.0),
            max(self.load_w.high - self.idle_w.low, 0.0),
            f"load ({self.load_w.source}) - idle ({self.idle_w.source})",
        )

    def sources(self) -> dict[str, str]:
        """Where each figure came from: ``{field: source}``."""
        return {
            f.name: getattr(self, f.name).source
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), Bound)
        }

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "lifetime_years": self.lifetime_years,
            "share": self.share,
            "notes": list(self.notes),
            "method": "model:published-figures",
        }
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Bound):
                out[f.name] = value.to_dict()
        return out


# ----------------------------------------------------------------------------------- sources

RPI4_BRIEF = "https://datasheets.raspberrypi.com/rpi4/raspberry-pi-4-product-brief.pdf"
RPI5_BRIEF = "https://datasheets.raspberrypi.com/rpi5/raspberry-pi-5-product-brief.pdf"
A72_GUIDE = "Arm Cortex-A72 Software Optimization Guide (2 x 128-bit FP/NEON pipes, FMA)"
A76_GUIDE = "Arm Cortex-A76 Software Optimization Guide (2 x 128-bit FP/NEON pipes, FMA, SDOT)"
HPL_PI = "https://github.com/geerlingguy/top500-benchmark (HPL results for Raspberry Pi 4 and 5)"
ORIN_SHEET = (
    "NVIDIA Jetson Orin Nano Series datasheet DS-11105 (8GB: 1024 CUDA cores at 625 MHz, "
    "20 dense / 40 sparse INT8 TOPS, 7 W and 15 W power modes)"
)
SD8G2_POWER = (
    "https://www.notebookcheck.com/GPU-des-Snapdragon-8-Gen-2-uebertrifft-Performance-und-"
    "Effizienz-des-Apple-A16-Bionic-im-iPhone-14-Pro.676270.0.html (SoC 7.3-7.6 W under "
    "sustained full GPU load, Golden Reviewer's measurements)"
)
SD8G2_BRIEF = "Qualcomm Snapdragon 8 Gen 2 product brief (Cortex-X3 prime core at 3.2 GHz, 4 nm)"
T4_SHEET = "NVIDIA T4 Tensor Core GPU datasheet (70 W TDP, 8.1 TFLOPS FP32, 130 INT8 TOPS)"
CCF_EMBODIED = "ccf-coefficients embodied figures (greenforge.hardware.catalog)"
PHONE_LCA = (
    "assumption: flagship smartphone production footprints in manufacturers' product "
    "environmental reports lie around 40-80 kgCO2e (e.g. Apple iPhone 14/15 PERs)"
)


def _pi_profiles() -> list[DeviceProfile]:
    return [
        DeviceProfile(
            name="rpi4",
            label="Raspberry Pi 4 Model B (BCM2711, 4x Cortex-A72 1.5-1.8 GHz), CPU inference",
            kind="edge",
            sustained_gflops_fp32=bound(
                8.0,
                30.0,
                f"peak 4 cores x 1.5 GHz x 16 FP32 FLOP/cycle = 96 GFLOPS ({A72_GUIDE}); "
                f"sustained GEMM 8-30 GFLOPS, the low end the HPL FP64 result ({HPL_PI})",
            ),
            sustained_gops_int8=bound(
                12.0,
                60.0,
                "assumption: int8 GEMM without dot-product instructions (A72 has no SDOT) "
                "runs 1.5-2x the FP32 rate",
            ),
            idle_w=bound(2.5, 3.5, f"board idle 2.5-3.5 W ({RPI4_BRIEF}; {HPL_PI})"),
            load_w=bound(
                5.5, 7.5, f"board under 4-core load 5.5-7.5 W (HPL power readings, {HPL_PI})"
            ),
            overhead_s=bound(0.0, 0.0, "CPU inference: no launch overhead", 0.0),
            embodied_kg=bound(
                5.0,
                20.0,
                "assumption: no vendor LCA published; single-board computer with an SoC, "
                "4 GB LPDDR4 and a small PCB, 5-20 kgCO2e",
            ),
            lifetime_years=5.0,
            share="dedicated",
        ),
        DeviceProfile(
            name="rpi5",
            label="Raspberry Pi 5 (BCM2712, 4x Cortex-A76 2.4 GHz), CPU inference",
            kind="edge",
            sustained_gflops_fp32=bound(
                25.0,
                70.0,
                f"peak 4 cores x 2.4 GHz x 16 FP32 FLOP/cycle = 154 GFLOPS ({A76_GUIDE}); "
                f"sustained GEMM 25-70 GFLOPS, the low end the HPL FP64 result ({HPL_PI})",
            ),
            sustained_gops_int8=bound(
                50.0,
                250.0,
                f"int8 GEMM with SDOT dot-product instructions at 2-4x the FP32 rate ({A76_GUIDE})",
            ),
            idle_w=bound(2.5, 3.5, f"board idle 2.5-3.5 W ({RPI5_BRIEF}; {HPL_PI})"),
            load_w=bound(
                6.5, 9.5, f"board under 4-core load 6.5-9.5 W (HPL power readings, {HPL_PI})"
            ),
            overhead_s=bound(0.0, 0.0, "CPU inference: no launch overhead", 0.0),
            embodied_kg=bound(
                5.0,
                20.0,
                "assumption: no vendor LCA published; single-board computer with an SoC, "
                "4-8 GB LPDDR4X and a small PCB, 5-20 kgCO2e",
            ),
            lifetime_years=5.0,
            share="dedicated",
        ),
    ]


def _other_edge_profiles() -> list[DeviceProfile]:
    return [
        DeviceProfile(
            name="jetson-orin-nano",
            label="NVIDIA Jetson Orin Nano 8GB (Ampere GPU, 7-15 W modes), GPU inference",
            kind="edge",
            sustained_gflops_fp32=bound(
                500.0,
                1000.0,
                f"peak 1024 cores x 2 x 0.625 GHz = 1.28 TFLOPS FP32 ({ORIN_SHEET}); "
                "sustained 40-80 % of peak",
            ),
            sustained_gops_int8=bound(
                5000.0, 15000.0, f"20 dense INT8 TOPS ({ORIN_SHEET}); sustained 25-75 %"
            ),
            idle_w=bound(2.5, 5.0, f"module idle, below the 7 W mode ({ORIN_SHEET})"),
            load_w=bound(7.0, 15.0, f"the 7 W and 15 W power modes ({ORIN_SHEET})"),
            overhead_s=bound(
                5e-5,
                5e-4,
                "assumption: a batch-1 GPU call costs 50-500 µs of kernel launches and copies "
                "whatever its FLOPs",
            ),
            embodied_kg=bound(
                10.0,
                40.0,
                "assumption: no vendor LCA published; module + carrier board, 10-40 kgCO2e",
            ),
            lifetime_years=5.0,
            share="dedicated",
        ),
        DeviceProfile(
            name="snapdragon-8-gen-2",
            label="Phone with a Snapdragon 8 Gen 2 SoC, CPU inference (app on a user's phone)",
            kind="edge",
            sustained_gflops_fp32=bound(
                30.0,
                150.0,
                f"big cores with 4 x 128-bit FP pipes; sustained under thermal limits "
                f"30-150 GFLOPS ({SD8G2_BRIEF})",
            ),
            sustained_gops_int8=bound(
                60.0, 600.0, f"int8 dot-product GEMM at 2-4x the FP32 rate ({SD8G2_BRIEF})"
            ),
            idle_w=bound(0.05, 0.5, "assumption: SoC at idle with the screen on, 0.05-0.5 W"),
            load_w=bound(2.5, 7.6, f"SoC under sustained load ({SD8G2_POWER})"),
            overhead_s=bound(0.0, 0.0, "CPU inference: no launch overhead", 0.0),
            embodied_kg=bound(40.0, 80.0, PHONE_LCA),
            lifetime_years=3.0,
            share="time",
            notes=(
                "the phone exists anyway: only the time it spends inferring is charged "
                "(share = time)",
            ),
        ),
    ]


def _cloud_profiles() -> list[DeviceProfile]:
    from greenforge.hardware.catalog import find_instance, vcpu_power

    vp = vcpu_power("aws", "Ice Lake")
    inst = find_instance("aws", "c6i.large")
    if inst is None or inst.platform_embodied_kg is None:  # pragma: no cover - embedded data
        raise ConfigError("the embedded catalog lacks aws c6i.large; reinstall greenforge.")
    per_vcpu_kg = inst.platform_embodied_kg / inst.platform_vcpus
    gpu = find_instance("aws", "g4dn.xlarge")
    gpu_kg = (
        gpu.platform_embodied_kg * gpu.vcpus / gpu.platform_vcpus
        if gpu is not None and gpu.platform_embodied_kg is not None
        else per_vcpu_kg * 4
    )
    return [
        DeviceProfile(
            name="cloud-cpu",
            label="one vCPU of a cloud CPU instance (AWS c6i, Ice Lake), CPU inference",
            kind="cloud",
            sustained_gflops_fp32=bound(
                20.0,
                60.0,
                "one Ice Lake hyper-thread: peak 2 x 512-bit FMA x 3.5 GHz / 2 threads = "
                "112 GFLOPS; sustained 20-60 GFLOPS",
            ),
            sustained_gops_int8=bound(40.0, 240.0, "AVX-512 VNNI int8 GEMM at 2-4x the FP32 rate"),
            idle_w=bound(vp.min_low_w, vp.min_high_w, vp.source, vp.min_w),
            load_w=bound(vp.max_low_w, vp.max_high_w, vp.source, vp.max_w),
            overhead_s=bound(0.0, 0.0, "CPU inference: no launch overhead", 0.0),
            embodied_kg=bound(
                per_vcpu_kg * 0.5,
                per_vcpu_kg * 2.0,
                f"{CCF_EMBODIED}: {inst.platform_embodied_kg:g} kg per {inst.platform_vcpus}-vCPU "
                "platform, per vCPU, x0.5-2",
                per_vcpu_kg,
            ),
            lifetime_years=4.0,
            share="time",
            notes=("a shared server: only the busy time of one vCPU is charged (share = time)",),
        ),
        DeviceProfile(
            name="cloud-gpu",
            label="an NVIDIA T4 in a cloud GPU instance (AWS g4dn), GPU inference",
            kind="cloud",
            sustained_gflops_fp32=bound(
                2000.0, 6000.0, f"8.1 TFLOPS FP32 peak ({T4_SHEET}); sustained 25-75 %"
            ),
            sustained_gops_int8=bound(
                20000.0, 80000.0, f"130 INT8 TOPS peak ({T4_SHEET}); sustained 15-60 %"
            ),
            idle_w=bound(8.0, 15.0, "assumption: T4 idle power reported by nvidia-smi, 8-15 W"),
            load_w=bound(35.0, 70.0, f"under inference load up to its 70 W TDP ({T4_SHEET})"),
            overhead_s=bound(
                1e-5,
                2e-4,
                "assumption: batched serving amortises launches and copies to 10-200 µs per "
                "prediction",
            ),
            embodied_kg=bound(
                gpu_kg * 0.5,
                gpu_kg * 2.0,
                f"{CCF_EMBODIED}: g4dn.xlarge share of its platform, x0.5-2 (GPU board "
                "not included in CCF's figure)",
                gpu_kg,
            ),
            lifetime_years=4.0,
            share="time",
            notes=("a shared server: only the busy time is charged (share = time)",),
        ),
    ]


def _profiles() -> dict[str, DeviceProfile]:
    out: dict[str, DeviceProfile] = {}
    for p in (*_pi_profiles(), *_other_edge_profiles(), *_cloud_profiles()):
        out[p.name] = p
    return out


_REGISTRY: dict[str, DeviceProfile] = {}


def register_device(profile: DeviceProfile) -> None:
    """Add (or replace) a device profile under its name."""
    _REGISTRY[profile.name] = profile


def _registry() -> Mapping[str, DeviceProfile]:
    if not _REGISTRY:
        for p in _profiles().values():
            _REGISTRY.setdefault(p.name, p)
    return _REGISTRY


def device_names(kind: str | None = None) -> list[str]:
    """Names of the known device profiles (``kind``: ``edge``, ``cloud`` or all)."""
    return [n for n, p in _registry().items() if kind is None or p.kind == kind]


def get_device(name: str) -> DeviceProfile:
    """The profile called ``name``; an unknown name raises an error listing the valid ones."""
    profile = _registry().get(name)
    if profile is None:
        raise UnknownNameError("device", name, _registry())
    return profile


__all__ = [
    "Bound",
    "DeviceProfile",
    "bound",
    "device_names",
    "get_device",
    "register_device",
]
