"""Build GreenForge's embedded hardware tables from the reference data.

Reads ``../shared/data/hardware`` and ``../shared/data/cloud`` (beside the repository) and
writes compact files into ``src/greenforge/hardware/data/``:

- ``cpu_tdp.csv``: ``name,tdp_w,threads_per_package`` (threads from SPECpower where the model
  appears there, else empty). Source: codecarbon ``cpu_power.csv`` (MIT) + SPECpower (via CCF,
  Apache-2.0).
- ``cloud.json``: per-vCPU min/max watts by micro-architecture per provider, instance types
  (vCPUs, memory, CPU, micro-architecture, platform vCPUs, platform embodied kgCO2e), and the
  SPECpower active-idle / full-load ratio distribution used by the CPU power curve; per instance
  also the basis of its embodied figure and its GPUs/accelerators (model, count).
  Source: cloud-carbon-footprint/ccf-coefficients (Apache-2.0), Teads dataset, spec.org; GPU
  counts per instance from the providers' instance pages (``GPU_SOURCES`` below).
- ``accelerators.json``: GPU/accelerator power (TDP) per model, throughput (dense TFLOPS per
  precision) and the assumptions of ``greenforge recommend`` (utilisation, power share), the
  extra cloud offerings the CCF lists lack (TPU VMs, Azure ND v4/v5) and Google's CFE % per
  region. Every figure carries its source URL or citation in the tables below.

Sanity bounds (``BOUNDS``) are checked on every instance and accelerator before anything is
written: a figure outside them fails the build, naming the instance and the figure.

Run: ``python scripts/build_hardware_tables.py`` (deterministic; re-running changes nothing).
"""

from __future__ import annotations

import csv
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
OUT = ROOT / "src" / "greenforge" / "hardware" / "data"

# Platform CPU name (AWS lists names, not micro-architectures) -> CCF micro-architecture.
# Ordered: first match wins.
AWS_ARCH_PATTERNS: list[tuple[str, str]] = [
    (r"graviton4", "Graviton4"),
    (r"graviton3e", "Graviton3E"),
    (r"graviton3", "Graviton3"),
    (r"graviton2", "Graviton2"),
    (r"annapurna labs graviton", "Graviton2"),
    (r"granite rapids", "Granite Rapids"),
    (r"emerald rapids", "Emerald Rapids"),
    (r"sapphire rapids", "Sapphire Rapids"),
    (r"ice lake|8375c", "Ice Lake"),
    (r"cascade lake|8259c|8259l|8275cl|8252c|8280l", "Cascade Lake"),
    (r"skylake|8175|8124m|8176m|8151", "Skylake"),
    (r"broadwell|e5-2686 v4|e7-8880 v4", "Broadwell"),
    (r"haswell|e5-2666 v3|e5-2676 v3|e7[ -]8880 ?v3", "Haswell"),
    (r"e5-2680 v2|e5-2651 v2", "Ivy Bridge"),
    (r"e5-2670|e5-2665", "Sandy Bridge"),
    (r"i7-8700b", "Coffee Lake"),
    (r"epyc 7571", "EPYC 1st Gen"),
    (r"epyc 7r32", "EPYC 2nd Gen"),
    (r"epyc 7r13", "EPYC 3rd Gen"),
    (r"epyc 9r14", "EPYC 4th Gen"),
    (r"epyc 9r45|epyc 9r05", "EPYC 5th Gen"),
]


INSTANCE_FIELDS = (
    "vcpus",
    "memory_gb",
    "cpu",
    "arch",
    "platform_vcpus",
    "platform_embodied_kg",
    "embodied_basis",
    "gpu_model",
    "gpu_count",
)
"""``embodied_basis``: ``ccf`` (the CCF coefficient of that type), ``ccf-platform`` (the CCF
coefficient of another type on the same platform), ``ccf-method`` (CCF's method applied here:
:func:`ccf_method_embodied_kg`), ``ccf-instance-list`` (AWS list column) or ``""`` (none)."""

# --------------------------------------------------------------------------- embodied (CCF)
# Cloud Carbon Footprint methodology, "Embodied Emissions"
# (https://www.cloudcarbonfootprint.org/docs/methodology/#embodied-emissions): a base rack
# server of 1,000 kgCO2e (Dell PowerEdge R740 LCA, 2 CPUs, 16 GB) plus 533/384 kgCO2e per GB
# of DRAM above 16 GB, 100 kgCO2e per CPU above 2 and 150 kgCO2e per GPU. The AWS and Azure
# coefficient files are this sum (e.g. a1.*: 1,000 + 22.21 for 32 GB).
CCF_BASE_SERVER_KG = 1000.0
CCF_DRAM_KG_PER_GB = 533.0 / 384.0
CCF_BASE_DRAM_GB = 16.0
CCF_GPU_KG = 150.0
MIN_PLATFORM_VCPUS = 16
"""CCF shares a platform's embodied figure by vCPUs / the largest size's vCPUs. Families whose
largest size is tiny (t1, m1, GCP shared-core e2/f1/g1, Azure constrained-vCPU sizes) run on
shared hosts of at least 16 hardware threads; sharing by fewer would charge one vCPU a whole
server (t1.micro: 1,278 kg)."""


def ccf_method_embodied_kg(platform_memory_gb: float, gpus: float) -> float:
    """Embodied kgCO2e of a platform by the CCF method (2-socket server, no extra storage)."""
    extra_gb = max(platform_memory_gb - CCF_BASE_DRAM_GB, 0.0)
    return round(CCF_BASE_SERVER_KG + extra_gb * CCF_DRAM_KG_PER_GB + gpus * CCF_GPU_KG, 2)


# --------------------------------------------------------------------------- sanity bounds
BOUNDS: dict[str, tuple[float, float]] = {
    # kgCO2e of the platform per platform vCPU (servers are 1-60 t; 1-1,920 vCPUs)
    "embodied_kg_per_vcpu": (2.0, 120.0),
    # kgCO2e of a whole platform (mac2.metal, a Mac mini host: 410 ... 32 TB hosts: ~46,000)
    "platform_embodied_kg": (100.0, 60000.0),
    # GiB of memory per vCPU (t3.nano 0.25 ... Azure M128-32ms, 32 of 128 vCPUs active, 119)
    "memory_gb_per_vcpu": (0.25, 128.0),
    # CCF watts per vCPU at idle / at full load
    "vcpu_min_w": (0.1, 5.0),
    "vcpu_max_w": (0.5, 15.0),
    # accelerator board power (W) and count per instance (fractional GPUs: g6f)
    "gpu_tdp_w": (30.0, 1500.0),
    "gpu_count": (0.1, 16.0),
    # dense TFLOPS per watt of TDP at the precision given (T4 fp16 0.9 ... B200 fp8 4.5)
    "tflops_per_w": (0.1, 6.0),
}

# --------------------------------------------------------------------------- GPUs per model
# model -> (board power W, source). Power is the vendor's TDP / max board power; where the
# vendor publishes none, an estimate with its reasoning (``estimate: ...``) and the wider
# bound ESTIMATE_REL_BOUND. Fractions of a physical card (Azure "1/2 K80") use half a board.
NVIDIA_A100 = (
    "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
    "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf"
)
NVIDIA_H100 = "https://www.nvidia.com/en-us/data-center/h100/ (H100 SXM datasheet)"
NVIDIA_H200 = "https://www.nvidia.com/en-us/data-center/h200/ (H200 SXM datasheet)"
NVIDIA_HGX = "https://www.nvidia.com/en-us/data-center/hgx/ (HGX B200 / B300 specifications)"
NVIDIA_GB200 = "https://www.nvidia.com/en-us/data-center/gb200-nvl72/ (GB200 NVL72 specifications)"
NVIDIA_L4 = "https://www.nvidia.com/en-us/data-center/l4/ (L4 datasheet)"
NVIDIA_L40S = "https://www.nvidia.com/en-us/data-center/l40s/ (L40S datasheet)"
NVIDIA_T4 = "https://www.nvidia.com/en-us/data-center/tesla-t4/ (T4 datasheet)"
NVIDIA_V100 = (
    "https://images.nvidia.com/content/technologies/volta/pdf/"
    "tesla-volta-v100-datasheet-letter-fnl-web.pdf"
)
AMD_MI250X = "https://www.amd.com/en/products/accelerators/instinct/mi200/mi250x.html"
AMD_MI300X = "https://www.amd.com/en/products/accelerators/instinct/mi300/mi300x.html"
TPU_V4 = (
    "https://cloud.google.com/tpu/docs/v4 (275 TFLOPS bf16); Jouppi et al., TPU v4, ISCA 2023, "
    "arXiv:2304.01433, Table 2 (measured power per chip: mean 170 W, max 192 W)"
)
TPU_V5E = "https://cloud.google.com/tpu/docs/v5e (197 TFLOPS bf16, 394 TOPS int8)"
TPU_V5P = "https://cloud.google.com/tpu/docs/v5p (459 TFLOPS bf16, 918 TOPS int8)"
TPU_V6E = (
    "https://cloud.google.com/tpu/docs/v6e (918 TFLOPS bf16, 1836 TOPS int8); "
    "https://cloud.google.com/blog/products/compute/introducing-trillium-6th-gen-tpus "
    "(4.7x peak compute per chip and 67 % more energy-efficient than v5e)"
)
AWS_TRN1 = (
    "https://aws.amazon.com/ec2/instance-types/trn1/ (trn1.32xlarge: 16 chips, 3,040 TFLOPS bf16)"
)
AWS_TRN2 = "https://aws.amazon.com/ec2/instance-types/trn2/ (Trainium2: 667 TFLOPS bf16, 1,299 TFLOPS fp8 dense per chip)"
AWS_INF1 = (
    "https://aws.amazon.com/ec2/instance-types/inf1/ (Inferentia: 64 TFLOPS fp16/bf16 per chip)"
)
AWS_INF2 = "https://aws.amazon.com/ec2/instance-types/inf2/ (inf2.48xlarge: 12 chips, 2.3 PFLOPS fp16/bf16)"

ESTIMATE_REL_BOUND = 0.5
"""Relative low/high bound of an estimated (vendor-unpublished) power figure."""
PUBLISHED_REL_BOUND = 0.1
"""Relative bound of a published TDP used as 'the board's power' (TDP is a design limit)."""

GPU_SPECS: dict[str, tuple[float, str]] = {
    "A100-40GB": (400.0, NVIDIA_A100 + " (A100 SXM 400 W)"),
    "A100-80GB": (400.0, NVIDIA_A100 + " (A100 80GB SXM 400 W)"),
    "H100": (700.0, NVIDIA_H100 + " (max TDP up to 700 W)"),
    "H200": (700.0, NVIDIA_H200 + " (max TDP up to 700 W)"),
    "B200": (1000.0, NVIDIA_HGX + " (B200 up to 1,000 W per GPU)"),
    "B300": (1100.0, NVIDIA_HGX + " (B300 up to 1,100 W per GPU)"),
    "GB200": (1200.0, NVIDIA_GB200 + " (up to 1,200 W per Blackwell GPU)"),
    "L4": (72.0, NVIDIA_L4 + " (72 W)"),
    "L40S": (350.0, NVIDIA_L40S + " (350 W)"),
    "T4": (70.0, NVIDIA_T4 + " (70 W)"),
    "T4G": (
        70.0,
        "https://aws.amazon.com/ec2/instance-types/g5g/ (NVIDIA T4G); T4 70 W: " + NVIDIA_T4,
    ),
    "A10G": (
        300.0,
        "https://aws.amazon.com/ec2/instance-types/g5/ (NVIDIA A10G); 300 W board power limit as reported by nvidia-smi on G5",
    ),
    "RTX-PRO-6000": (
        600.0,
        "https://www.nvidia.com/en-us/data-center/rtx-pro-6000-blackwell-server-edition/ (up to 600 W)",
    ),
    "V100-SXM2": (300.0, NVIDIA_V100 + " (V100 SXM2 300 W)"),
    "V100-PCIe": (250.0, NVIDIA_V100 + " (V100 PCIe 250 W)"),
    "P100": (
        250.0,
        "https://images.nvidia.com/content/tesla/pdf/nvidia-tesla-p100-PCIe-datasheet.pdf (250 W)",
    ),
    "P40": (
        250.0,
        "https://images.nvidia.com/content/pdf/tesla/184427-Tesla-P40-Datasheet-NV-Final-Letter-Web.pdf (250 W)",
    ),
    "K80-half": (
        150.0,
        "https://www.nvidia.com/en-gb/data-center/tesla-k80/ (300 W per 2-GPU board; Azure NC counts 1/2 board as one GPU)",
    ),
    "M60-half": (
        150.0,
        "https://images.nvidia.com/content/pdf/tesla/tesla-m60-product-brief.pdf (300 W max per 2-GPU board; Azure NV counts 1/2 board as one GPU)",
    ),
    "Radeon-Pro-V520": (
        225.0,
        "https://aws.amazon.com/ec2/instance-types/g4/ (AMD Radeon Pro V520, 225 W board power per AMD)",
    ),
    "Gaudi": (
        350.0,
        "https://aws.amazon.com/ec2/instance-types/dl1/ (8 Habana Gaudi HL-205 mezzanine cards, 350 W each per Habana's HL-205 data sheet)",
    ),
    "Cloud-AI-100": (
        75.0,
        "https://aws.amazon.com/ec2/instance-types/dl2q/ (8 Qualcomm Cloud AI 100 Standard, 75 W each per Qualcomm)",
    ),
    "MI250X": (560.0, AMD_MI250X + " (560 W peak board power)"),
    "MI300X": (750.0, AMD_MI300X + " (750 W peak board power)"),
    "TPU-v4": (192.0, TPU_V4),
    "TPU-v5e": (
        200.0,
        "estimate: Google publishes no per-chip power for v5e; 200 W assumed (v4 measured mean 170 W, "
        + TPU_V4
        + ")",
    ),
    "TPU-v5p": (
        400.0,
        "estimate: Google publishes no per-chip power for v5p; 400 W assumed (2.1x v4 peak bf16 at a similar process node)",
    ),
    "TPU-v6e": (
        560.0,
        "estimate: Google publishes no per-chip power for v6e; v5e estimate x 4.66 (peak ratio 918/197) / 1.67 (Google's efficiency claim) = 560 W. "
        + TPU_V6E,
    ),
    "Trainium": (
        210.0,
        "estimate: AWS publishes no per-chip power for Trainium; 210 W assumed. " + AWS_TRN1,
    ),
    "Trainium2": (
        500.0,
        "estimate: AWS publishes no per-chip power for Trainium2; 500 W assumed. " + AWS_TRN2,
    ),
    "Inferentia": (
        75.0,
        "estimate: AWS publishes no per-chip power for Inferentia; 75 W assumed. " + AWS_INF1,
    ),
    "Inferentia2": (
        150.0,
        "estimate: AWS publishes no per-chip power for Inferentia2; 150 W assumed. " + AWS_INF2,
    ),
}

# (instance-type regex, GPU model, count or None = from the ``-<n>g`` suffix / a table below)
AWS_GPU_SOURCE = "https://aws.amazon.com/ec2/instance-types/ (Accelerated Computing)"
_G_1_4_8: dict[str, float] = {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8}
AWS_GPUS: list[tuple[str, str, dict[str, float] | float]] = [
    (r"^p4d\.", "A100-40GB", 8),
    (r"^p4de\.", "A100-80GB", 8),
    (r"^p5\.48xlarge$", "H100", 8),
    (r"^p5\.4xlarge$", "H100", 1),
    (r"^p5en?\.", "H200", 8),
    (r"^p6-b200\.", "B200", 8),
    (r"^p6-b300\.", "B300", 8),
    (r"^p6e-gb200\.", "GB200", 4),
    (r"^g4dn\.", "T4", {"12xlarge": 4, "metal": 8}),
    (r"^g4ad\.", "Radeon-Pro-V520", {"8xlarge": 2, "16xlarge": 4}),
    (r"^g5g\.", "T4G", {"16xlarge": 2, "metal": 2}),
    (r"^g5\.", "A10G", _G_1_4_8),
    (r"^g6\.", "L4", _G_1_4_8),
    (r"^g6e\.", "L40S", _G_1_4_8),
    (r"^g6f\.", "L4", {"large": 0.125, "xlarge": 0.125, "2xlarge": 0.25, "4xlarge": 0.5}),
    (r"^gr6\.", "L4", 1),
    (r"^gr6f\.", "L4", 0.5),
    (r"^g7e\.", "RTX-PRO-6000", {"12xlarge": 2, "24xlarge": 4, "48xlarge": 8}),
    (r"^dl1\.", "Gaudi", 8),
    (r"^dl2q\.", "Cloud-AI-100", 8),
    (r"^trn1n?\.2xlarge$", "Trainium", 1),
    (r"^trn1n?\.32xlarge$", "Trainium", 16),
    (r"^trn2u?\.3xlarge$", "Trainium2", 1),
    (r"^trn2u?\.48xlarge$", "Trainium2", 16),
    (r"^inf1\.", "Inferentia", {"6xlarge": 4, "24xlarge": 16}),
    (r"^inf2\.", "Inferentia2", {"24xlarge": 6, "48xlarge": 12}),
]
GCP_GPU_SOURCE = "https://cloud.google.com/compute/docs/gpus (A2, A3, G2 machine types)"
GCP_GPUS: list[tuple[str, str, dict[str, float] | float | None]] = [
    (r"^a2-(highgpu|megagpu)-", "A100-40GB", None),
    (r"^a2-ultragpu-", "A100-80GB", None),
    (r"^a3-(highgpu|megagpu|edgegpu)-", "H100", None),
    (r"^a3-ultragpu-", "H200", None),
    (r"^g2-standard-", "L4", {"24": 2, "48": 4, "96": 8}),
]
AZURE_GPU_SOURCE = (
    "azure-instances.csv 'Instance GPUs' (count); GPU model by series from "
    "https://learn.microsoft.com/azure/virtual-machines/sizes/overview (GPU accelerated)"
)
AZURE_SERIES_GPU: dict[str, str] = {
    "NC-series": "K80-half",
    "NC-series Promo": "K80-half",
    "NCas_T4_v3 Series": "T4",
    "NCsv2-series": "P100",
    "NCsv3-series": "V100-PCIe",
    "NDs-series": "P40",
    "NDv2 Series": "V100-SXM2",
    "NV-series": "M60-half",
    "NVv3-series": "M60-half",
}
GPU_SOURCES = {"aws": AWS_GPU_SOURCE, "gcp": GCP_GPU_SOURCE, "azure": AZURE_GPU_SOURCE}

# --------------------------------------------------------------------------- accelerators
# Throughput: dense (no sparsity) peak TFLOPS per chip per precision, vendor figures (NVIDIA
# and AMD list "with sparsity" figures at twice the dense value; those are halved here).
# ``"training": False``: an inference-only chip (AWS Inferentia), offered for a training job
# only when asked for by name.
ACCELERATORS: dict[str, dict[str, object]] = {
    "A100": {
        "gpus": ["A100-40GB", "A100-80GB"],
        "vendor": "NVIDIA",
        "tflops": {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0},
        "source": NVIDIA_A100,
    },
    "H100": {
        "gpus": ["H100"],
        "vendor": "NVIDIA",
        "tflops": {"bf16": 989.4, "fp16": 989.4, "fp8": 1978.9, "tf32": 494.7},
        "source": NVIDIA_H100,
    },
    "H200": {
        "gpus": ["H200"],
        "vendor": "NVIDIA",
        "tflops": {"bf16": 989.4, "fp16": 989.4, "fp8": 1978.9, "tf32": 494.7},
        "source": NVIDIA_H200,
    },
    "B200": {
        "gpus": ["B200"],
        "vendor": "NVIDIA",
        "tflops": {"bf16": 2250.0, "fp16": 2250.0, "fp8": 4500.0, "tf32": 1125.0},
        "source": NVIDIA_HGX,
    },
    "L4": {
        "gpus": ["L4"],
        "vendor": "NVIDIA",
        "tflops": {"bf16": 121.0, "fp16": 121.0, "fp8": 242.5, "tf32": 60.0},
        "source": NVIDIA_L4,
    },
    "L40S": {
        "gpus": ["L40S"],
        "vendor": "NVIDIA",
        "tflops": {"bf16": 362.05, "fp16": 362.05, "fp8": 733.0, "tf32": 183.0},
        "source": NVIDIA_L40S,
    },
    "MI250X": {
        "gpus": ["MI250X"],
        "vendor": "AMD",
        "tflops": {"bf16": 383.0, "fp16": 383.0},
        "source": AMD_MI250X,
    },
    "MI300X": {
        "gpus": ["MI300X"],
        "vendor": "AMD",
        "tflops": {"bf16": 1307.4, "fp16": 1307.4, "fp8": 2614.9, "tf32": 653.7},
        "source": AMD_MI300X,
    },
    "TPU-v4": {"gpus": ["TPU-v4"], "vendor": "Google", "tflops": {"bf16": 275.0}, "source": TPU_V4},
    "TPU-v5e": {
        "gpus": ["TPU-v5e"],
        "vendor": "Google",
        "tflops": {"bf16": 197.0},
        "source": TPU_V5E,
    },
    "TPU-v5p": {
        "gpus": ["TPU-v5p"],
        "vendor": "Google",
        "tflops": {"bf16": 459.0},
        "source": TPU_V5P,
    },
    "TPU-v6e": {
        "gpus": ["TPU-v6e"],
        "vendor": "Google",
        "tflops": {"bf16": 918.0},
        "source": TPU_V6E,
    },
    "Trainium": {
        "gpus": ["Trainium"],
        "vendor": "AWS",
        "tflops": {"bf16": 190.0, "fp16": 190.0},
        "source": AWS_TRN1,
    },
    "Trainium2": {
        "gpus": ["Trainium2"],
        "vendor": "AWS",
        "tflops": {"bf16": 667.0, "fp16": 667.0, "fp8": 1299.0},
        "source": AWS_TRN2,
    },
    "Inferentia": {
        "gpus": ["Inferentia"],
        "vendor": "AWS",
        "tflops": {"bf16": 64.0, "fp16": 64.0},
        "source": AWS_INF1,
        "training": False,
    },
    "Inferentia2": {
        "gpus": ["Inferentia2"],
        "vendor": "AWS",
        "tflops": {"bf16": 190.0, "fp16": 190.0},
        "source": AWS_INF2,
        "training": False,
    },
}
# Model FLOPs utilisation (achieved / peak) of large training runs, and the accelerator's mean
# draw as a share of its TDP while it trains. Central, low, high.
MFU = {
    "central": 0.40,
    "low": 0.30,
    "high": 0.55,
    "source": (
        "Llama 3 (Dubey et al. 2024, arXiv:2407.21783, Table 4: 38-43 % bf16 MFU on H100); "
        "PaLM (Chowdhery et al. 2022, arXiv:2204.02311, Table 3: 46.2 % MFU on TPU v4); "
        "MegaScale (Jiang et al. 2024, arXiv:2402.15627: 55.2 % MFU on 12,288 GPUs)"
    ),
}
POWER_SHARE = {
    "central": 0.8,
    "low": 0.6,
    "high": 1.0,
    "source": (
        "Patterson et al. 2021, Carbon Emissions and Large Neural Network Training, "
        "arXiv:2104.10350, Table 4 (measured mean power per accelerator of V100 and TPU v3 "
        "training runs, at 80-100 % of the accelerator's rated power)"
    ),
}

# Cloud offerings the CCF instance lists lack (TPU VMs, Azure ND v4/v5):
# type -> (provider, accelerator model, count, host vCPUs, host memory GiB, host CPU arch, source)
EXTRA_OFFERINGS: dict[str, tuple[str, str, float, int, float, str, str]] = {
    "ct4p-hightpu-4t": (
        "gcp",
        "TPU-v4",
        4,
        240,
        407.0,
        "EPYC 2nd Gen",
        "https://cloud.google.com/tpu/docs/v4",
    ),
    "ct5lp-hightpu-1t": (
        "gcp",
        "TPU-v5e",
        1,
        24,
        48.0,
        "",
        "https://cloud.google.com/tpu/docs/v5e",
    ),
    "ct5lp-hightpu-4t": (
        "gcp",
        "TPU-v5e",
        4,
        112,
        192.0,
        "",
        "https://cloud.google.com/tpu/docs/v5e",
    ),
    "ct5lp-hightpu-8t": (
        "gcp",
        "TPU-v5e",
        8,
        224,
        384.0,
        "",
        "https://cloud.google.com/tpu/docs/v5e",
    ),
    "ct5p-hightpu-4t": (
        "gcp",
        "TPU-v5p",
        4,
        208,
        448.0,
        "",
        "https://cloud.google.com/tpu/docs/v5p",
    ),
    "ct6e-standard-1t": (
        "gcp",
        "TPU-v6e",
        1,
        44,
        176.0,
        "",
        "https://cloud.google.com/tpu/docs/v6e",
    ),
    "ct6e-standard-4t": (
        "gcp",
        "TPU-v6e",
        4,
        180,
        720.0,
        "",
        "https://cloud.google.com/tpu/docs/v6e",
    ),
    "ct6e-standard-8t": (
        "gcp",
        "TPU-v6e",
        8,
        180,
        1440.0,
        "",
        "https://cloud.google.com/tpu/docs/v6e",
    ),
    "Standard_ND96asr_v4": (
        "azure",
        "A100-40GB",
        8,
        96,
        900.0,
        "EPYC 2nd Gen",
        "https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/ndasra100v4-series",
    ),
    "Standard_ND96amsr_A100_v4": (
        "azure",
        "A100-80GB",
        8,
        96,
        1900.0,
        "EPYC 3rd Gen",
        "https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/ndma100v4-series",
    ),
    "Standard_ND96isr_H100_v5": (
        "azure",
        "H100",
        8,
        96,
        1900.0,
        "Sapphire Rapids",
        "https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/ndh100v5-series",
    ),
    "Standard_ND96isr_MI300X_v5": (
        "azure",
        "MI300X",
        8,
        96,
        1850.0,
        "Sapphire Rapids",
        "https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/ndmi300xv5-series",
    ),
}


def _count_from(table: dict[str, float] | float | None, itype: str, default: float) -> float:
    if isinstance(table, (int, float)):
        return float(table)
    if table is None:
        m = re.search(r"-(\d+)g$", itype)
        return float(m.group(1)) if m else default
    size = re.split(r"[.]|-standard-", itype)[-1]
    return float(table.get(size, default))


def instance_gpus(provider: str, itype: str) -> tuple[str, float] | None:
    """(GPU model, count) of an AWS or GCP instance type from the tables above, else None."""
    table = AWS_GPUS if provider == "aws" else GCP_GPUS if provider == "gcp" else []
    for pattern, model, counts in table:
        if re.search(pattern, itype):
            return model, _count_from(counts, itype, 1.0)
    return None


def _num(text: str) -> float:
    return float(text.replace(",", ".").strip())


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9+]+", " ", name.lower()).strip()


def aws_arch(cpu_name: str) -> str:
    low = cpu_name.lower()
    for pattern, arch in AWS_ARCH_PATTERNS:
        if re.search(pattern, low):
            return arch
    return ""


def build_cpu_table() -> list[tuple[str, float, int | None]]:
    spec_threads: dict[str, int] = {}
    for row in _rows(SHARED / "hardware" / "SPECpower-2026-03-09.csv"):
        try:
            chips = int(float(row["Chips"]))
            threads = int(float(row["Total Threads"]))
        except ValueError:
            continue
        if chips > 0 and threads > 0:
            key = _norm(row["CPU Description"].replace("Processor", ""))
            spec_threads.setdefault(key, threads // chips)
    out: dict[str, tuple[str, float, int | None]] = {}
    for row in _rows(SHARED / "hardware" / "cpu_tdp.csv"):
        name = " ".join(row["Name"].split())
        try:
            tdp = float(row["TDP"])
        except ValueError:
            continue
        if not name or tdp <= 0:
            continue
        key = _norm(name)
        pkg_threads: int | None = spec_threads.get(key) or spec_threads.get(
            _norm("Intel Xeon " + name)
        )
        out.setdefault(key, (name, tdp, pkg_threads))
    return sorted(out.values(), key=lambda r: r[0].lower())


def build_specpower_ratio() -> dict[str, float | int]:
    ratios = []
    for row in _rows(SHARED / "hardware" / "SPECpower-2026-03-09.csv"):
        try:
            full = float(row["avg. watts @ 100%"])
            idle = float(row["avg. watts @ active idle"])
        except ValueError:
            continue
        if full > 0 and 0 < idle < full:
            ratios.append(idle / full)
    ratios.sort()
    q = statistics.quantiles(ratios, n=10)
    return {
        "p10": round(q[0], 4),
        "p50": round(statistics.median(ratios), 4),
        "p90": round(q[-1], 4),
        "n": len(ratios),
    }


def build_use() -> dict[str, dict[str, list[float]]]:
    use: dict[str, dict[str, list[float]]] = {}
    for provider in ("aws", "gcp", "azure"):
        table = {}
        for row in _rows(SHARED / "cloud" / f"coefficients-{provider}-use.csv"):
            table[row["Architecture"]] = [
                round(_num(row["Min Watts"]), 6),
                round(_num(row["Max Watts"]), 6),
            ]
        use[provider] = table
    return use


def _embodied(path: Path, type_col: str, total_col: str) -> dict[str, float]:
    return {r[type_col]: _num(r[total_col]) for r in _rows(path)}


def build_instances() -> dict[str, dict[str, dict[str, object]]]:
    cloud = SHARED / "cloud"
    out: dict[str, dict[str, dict[str, object]]] = {"aws": {}, "gcp": {}, "azure": {}}

    emb = _embodied(cloud / "coefficients-aws-embodied.csv", "type", "total")
    aws = _rows(cloud / "aws-instances-latest-2026.csv")
    family_max: dict[str, int] = {}
    family_mem: dict[str, float] = {}
    family_gpus: dict[str, float] = {}
    for r in aws:
        itype = r["Instance Type"].strip()
        fam = itype.split(".")[0]
        family_max[fam] = max(family_max.get(fam, 0), int(_num(r["vCPUs"])))
        if r["Memory (GiB)"].strip():
            family_mem[fam] = max(family_mem.get(fam, 0.0), _num(r["Memory (GiB)"]))
        gpus = instance_gpus("aws", itype)
        family_gpus[fam] = max(family_gpus.get(fam, 0.0), gpus[1] if gpus else 0.0)
    for r in aws:
        itype = r["Instance Type"].strip()
        fam = itype.split(".")[0]
        vcpus = int(_num(r["vCPUs"]))
        cpu = r["Platform CPU Name"].strip()
        platform_kg = emb.get(itype)
        basis = "ccf"
        if platform_kg is None:
            # The list's column is in tonnes (m5.*: 1.2 t) and agrees with the CCF coefficients
            # within 0.4-1.5x where both exist; but it repeats one family's figure for others
            # (u-3tb1 to u-24tb1: 45 t each), so a value far from the CCF method is not used.
            method_kg = ccf_method_embodied_kg(family_mem.get(fam, 0.0), family_gpus[fam])
            listed = r["Platform Embedded Emissions (mtCo2eq)"].strip()
            listed_kg = _num(listed) * 1000.0 if listed else None
            if listed_kg is not None and 0.25 <= listed_kg / method_kg <= 4.0:
                platform_kg, basis = listed_kg, "ccf-instance-list"
            else:
                platform_kg, basis = method_kg, "ccf-method"
        gpus = instance_gpus("aws", itype)
        out["aws"][itype] = {
            "vcpus": vcpus,
            "memory_gb": _num(r["Memory (GiB)"]) if r["Memory (GiB)"].strip() else None,
            "cpu": cpu,
            "arch": aws_arch(cpu),
            "platform_vcpus": max(family_max[fam], MIN_PLATFORM_VCPUS),
            "platform_embodied_kg": platform_kg,
            "embodied_basis": basis,
            "gpu_model": gpus[0] if gpus else None,
            "gpu_count": gpus[1] if gpus else 0,
        }

    emb = _embodied(cloud / "coefficients-gcp-embodied-mean.csv", "type", "total_mean")
    gcp = _rows(cloud / "gcp-instances-latest-2026.csv")
    platform_max: dict[str, int] = {}
    platform_mem: dict[str, float] = {}
    platform_gpus: dict[str, float] = {}
    platform_ccf: dict[str, float] = {}
    for r in gcp:
        plat, itype = r["Platform"], r["Instance Type"].strip()
        platform_max[plat] = max(platform_max.get(plat, 0), int(_num(r["Instance vCPU"])))
        if r["Instance Memory"].strip():
            platform_mem[plat] = max(platform_mem.get(plat, 0.0), _num(r["Instance Memory"]))
        gpus = instance_gpus("gcp", itype)
        platform_gpus[plat] = max(platform_gpus.get(plat, 0.0), gpus[1] if gpus else 0.0)
        if itype in emb:
            platform_ccf.setdefault(plat, emb[itype])
    # The instance list's two "Platform Embedded Emissions" columns are not embodied figures
    # (n4-standard: "46000 kg"; c3d-highmem: "3,700,000 kg"; they follow no unit): never read.
    # A type without a CCF coefficient takes its platform's, else the CCF method's estimate.
    for r in gcp:
        itype, plat = r["Instance Type"].strip(), r["Platform"]
        platform_kg = emb.get(itype)
        basis = "ccf"
        if platform_kg is None and plat in platform_ccf:
            platform_kg, basis = platform_ccf[plat], "ccf-platform"
        elif platform_kg is None:
            platform_kg = ccf_method_embodied_kg(platform_mem.get(plat, 0.0), platform_gpus[plat])
            basis = "ccf-method"
        gpus = instance_gpus("gcp", itype)
        out["gcp"][itype] = {
            "vcpus": int(_num(r["Instance vCPU"])),
            "memory_gb": _num(r["Instance Memory"]) if r["Instance Memory"].strip() else None,
            "cpu": r["CPU Name"].strip(),
            "arch": r["Microarchitecture"].strip(),
            "platform_vcpus": max(platform_max[plat], MIN_PLATFORM_VCPUS),
            "platform_embodied_kg": platform_kg,
            "embodied_basis": basis,
            "gpu_model": gpus[0] if gpus else None,
            "gpu_count": gpus[1] if gpus else 0,
        }

    for itype, (provider, gpu, count, vcpus, mem, arch, _src) in EXTRA_OFFERINGS.items():
        out[provider][itype] = {
            "vcpus": vcpus,
            "memory_gb": mem,
            "cpu": "",
            "arch": arch,
            "platform_vcpus": vcpus,  # a whole host: 4/8 accelerators + their host
            "platform_embodied_kg": ccf_method_embodied_kg(mem, count),
            "embodied_basis": "ccf-method",
            "gpu_model": gpu,
            "gpu_count": count,
        }

    emb = _embodied(cloud / "coefficients-azure-embodied.csv", "type", "total")
    for r in _rows(cloud / "azure-instances.csv"):
        itype = r["Virtual Machine"].strip()
        arch = r["Microarchitecture"].strip()
        n_vcpus = _num(r["Instance vCPUs"])
        constrained = re.match(r"^[A-Za-z]+\d+-(\d+)", itype)
        if n_vcpus < 1 and constrained:  # "Constrained vCPUs" rows give a ratio; name has count
            n_vcpus = float(constrained.group(1))
        n_gpus = _num(r["Instance GPUs"]) if r["Instance GPUs"].strip() else 0.0
        gpu_model = AZURE_SERIES_GPU.get(r["Series"].strip()) if n_gpus else None
        if n_gpus and gpu_model is None:
            raise SystemExit(f"azure {itype}: {n_gpus:g} GPUs of unknown series {r['Series']!r}")
        out["azure"][itype] = {
            "vcpus": max(int(n_vcpus), 1),
            "memory_gb": _num(r["Instance Memory"]) if r["Instance Memory"].strip() else None,
            "cpu": "",
            "arch": "" if arch == "Unknown" else arch,
            "platform_vcpus": max(
                int(_num(r["Platform vCPUs (highest vCPU possible)"])), MIN_PLATFORM_VCPUS
            ),
            "platform_embodied_kg": emb.get(itype),
            "embodied_basis": "ccf" if itype in emb else "",
            "gpu_model": gpu_model,
            "gpu_count": n_gpus if gpu_model else 0,
        }
    return out


def check_bounds(
    instances: dict[str, dict[str, dict[str, object]]], use: dict[str, dict[str, list[float]]]
) -> list[str]:
    """Every figure outside :data:`BOUNDS`, one line each (empty: all plausible)."""
    bad: list[str] = []

    def check(what: str, key: str, value: float) -> None:
        lo, hi = BOUNDS[key]
        if not lo <= value <= hi:
            bad.append(f"{what}: {key} = {value:.4g} outside [{lo:g}, {hi:g}]")

    for provider, table in sorted(instances.items()):
        for itype, rec in sorted(table.items()):
            what = f"{provider} {itype}"
            vcpus = float(rec["vcpus"])  # type: ignore[arg-type]
            platform_vcpus = float(rec["platform_vcpus"])  # type: ignore[arg-type]
            kg = rec["platform_embodied_kg"]
            if kg is None:
                bad.append(f"{what}: no embodied figure")
            else:
                check(what, "platform_embodied_kg", float(kg))  # type: ignore[arg-type]
                per = float(kg) / max(platform_vcpus, vcpus)  # type: ignore[arg-type]
                check(what, "embodied_kg_per_vcpu", per)
            if rec["memory_gb"] is not None:
                check(what, "memory_gb_per_vcpu", float(rec["memory_gb"]) / vcpus)  # type: ignore[arg-type]
            gpu = rec["gpu_model"]
            if gpu is not None:
                if gpu not in GPU_SPECS:
                    bad.append(f"{what}: GPU model {gpu!r} has no power figure")
                check(what, "gpu_count", float(rec["gpu_count"]))  # type: ignore[arg-type]
    for provider, per_arch in sorted(use.items()):
        for arch, (lo_w, hi_w) in sorted(per_arch.items()):
            check(f"{provider} use {arch}", "vcpu_min_w", lo_w)
            check(f"{provider} use {arch}", "vcpu_max_w", hi_w)
            if hi_w < lo_w:
                bad.append(f"{provider} use {arch}: max {hi_w:g} W < min {lo_w:g} W")
    for model, (tdp_w, _src) in sorted(GPU_SPECS.items()):
        check(f"GPU {model}", "gpu_tdp_w", tdp_w)
    for name, acc in sorted(ACCELERATORS.items()):
        tdp_w = GPU_SPECS[acc["gpus"][0]][0]  # type: ignore[index]
        for precision, tflops in sorted(acc["tflops"].items()):  # type: ignore[attr-defined]
            check(f"accelerator {name} {precision}", "tflops_per_w", tflops / tdp_w)
    return bad


def build_accelerators() -> dict[str, object]:
    """The ``accelerators.json`` table (see the module docstring)."""
    cfe_rows = _rows(ROOT / "scripts" / "data" / "google-region-carbon-2024.csv")
    return {
        "gpus": {
            model: {
                "tdp_w": tdp,
                "estimate": src.startswith("estimate"),
                "source": src,
            }
            for model, (tdp, src) in sorted(GPU_SPECS.items())
        },
        "estimate_rel_bound": ESTIMATE_REL_BOUND,
        "published_rel_bound": PUBLISHED_REL_BOUND,
        "gpu_sources": GPU_SOURCES,
        "accelerators": ACCELERATORS,
        "mfu": MFU,
        "power_share": POWER_SHARE,
        "extra_offerings": {t: row[6] for t, row in sorted(EXTRA_OFFERINGS.items())},
        "ccf_embodied": {
            "base_server_kg": CCF_BASE_SERVER_KG,
            "dram_kg_per_gb": CCF_DRAM_KG_PER_GB,
            "base_dram_gb": CCF_BASE_DRAM_GB,
            "gpu_kg": CCF_GPU_KG,
            "min_platform_vcpus": MIN_PLATFORM_VCPUS,
            "source": "https://www.cloudcarbonfootprint.org/docs/methodology/#embodied-emissions",
        },
        "google_cfe": {
            "year": 2024,
            "source": (
                "Google Cloud region carbon data 2024 (GoogleCloudPlatform/region-carbon-info "
                "data/yearly/2024.csv; https://cloud.google.com/sustainability/region-carbon)"
            ),
            "regions": {
                r["Google Cloud Region"]: float(r["Google CFE"])
                for r in sorted(cfe_rows, key=lambda r: r["Google Cloud Region"])
            },
        },
    }


def main() -> int:
    if not SHARED.is_dir():
        print(f"reference data not found at {SHARED}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    cpus = build_cpu_table()
    with (OUT / "cpu_tdp.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["name", "tdp_w", "threads_per_package"])
        for name, tdp, threads in cpus:
            w.writerow([name, f"{tdp:g}", "" if threads is None else threads])
    built = build_instances()
    use = build_use()
    bad = check_bounds(built, use)
    if bad:
        print(f"{len(bad)} figures outside the sanity bounds:", file=sys.stderr)
        for line in bad:
            print(f"  {line}", file=sys.stderr)
        return 1
    instances = {
        provider: {t: [rec[f] for f in INSTANCE_FIELDS] for t, rec in sorted(table.items())}
        for provider, table in built.items()
    }
    cloud: dict[str, object] = {
        "sources": {
            "cpu_tdp": "codecarbon cpu_power.csv (MIT), from Intel ARK / AMD",
            "use": "cloud-carbon-footprint/ccf-coefficients coefficients-*-use.csv (Apache-2.0)",
            "instances": "ccf-coefficients instance lists and embodied coefficients "
            "(Apache-2.0; Teads dataset); GPUs per instance: providers' instance pages",
            "specpower": "SPECpower_ssj2008 published results via ccf-coefficients",
        },
        "specpower_idle_ratio": build_specpower_ratio(),
        "use_w_per_vcpu": use,
        "instance_fields": list(INSTANCE_FIELDS),
        "instances": instances,
    }
    (OUT / "cloud.json").write_text(
        json.dumps(cloud, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    (OUT / "accelerators.json").write_text(
        json.dumps(build_accelerators(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    n_inst = sum(len(v) for v in instances.values())
    print(f"wrote {len(cpus)} CPUs and {n_inst} cloud instance types to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
