"""Every embedded instance's embodied and power figures lie inside the build's sanity bounds,
and the build refuses data that does not."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from greenforge.hardware import catalog

REPO = Path(__file__).resolve().parents[2]
RAM_W_PER_GB_HIGH = 0.5


INSTANCES = [
    catalog.cloud_instance(p, t) for p in catalog.PROVIDERS for t in catalog.instance_types(p)
]


def inside(bounds: Bounds, key: str, value: float) -> bool:
    lo, hi = bounds[key]
    return lo <= value <= hi


Bounds = dict[str, tuple[float, float]]


@pytest.fixture
def bounds(build_script: ModuleType) -> Bounds:
    """The build script's sanity bounds (what every embedded figure must satisfy)."""
    result: Bounds = build_script.BOUNDS
    return result


def test_the_catalog_holds_every_provider_s_instances() -> None:
    counts = {p: len(catalog.instance_types(p)) for p in catalog.PROVIDERS}
    assert counts["gcp"] >= 339 + 8  # the CCF list plus the TPU VM sizes
    assert counts["aws"] >= 1195
    assert counts["azure"] >= 393


def test_every_instance_has_a_plausible_embodied_figure(bounds: Bounds) -> None:
    bad = []
    for inst in INSTANCES:
        kg = inst.platform_embodied_kg
        if kg is None or inst.embodied_kg is None:
            bad.append(f"{inst.provider} {inst.type}: none")
            continue
        per_vcpu = kg / inst.platform_vcpus
        if not (
            inside(bounds, "platform_embodied_kg", kg)
            and inside(bounds, "embodied_kg_per_vcpu", per_vcpu)
        ):
            bad.append(f"{inst.provider} {inst.type}: {kg:g} kg, {per_vcpu:.3g} kg/vCPU")
        if not 0 < inst.embodied_kg <= kg * (1 + 1e-12):
            bad.append(f"{inst.provider} {inst.type}: share {inst.embodied_kg:g} of {kg:g} kg")
    assert bad == []


def test_every_instance_has_plausible_power_figures(bounds: Bounds) -> None:
    bad = []
    for inst in INSTANCES:
        vp = catalog.vcpu_power(inst.provider, inst.arch or None)
        if not (inside(bounds, "vcpu_min_w", vp.min_w) and inside(bounds, "vcpu_max_w", vp.max_w)):
            bad.append(f"{inst.provider} {inst.type}: {vp.min_w:.3g}-{vp.max_w:.3g} W/vCPU")
        if inst.memory_gb is not None:
            ram_w = inst.memory_gb * catalog.BYTES_PER_GIB / 1e9 * RAM_W_PER_GB_HIGH
            if not inside(bounds, "memory_gb_per_vcpu", inst.memory_gb / inst.vcpus):
                bad.append(f"{inst.provider} {inst.type}: {ram_w:.3g} W of RAM")
        gpu = catalog.instance_gpu_power(inst)
        if gpu is not None:
            per_gpu_w = gpu.power_w / inst.gpu_count / catalog.GPU_UNKNOWN_LOAD_SHARE
            if not (
                inside(bounds, "gpu_tdp_w", per_gpu_w)
                and inside(bounds, "gpu_count", inst.gpu_count)
            ):
                bad.append(f"{inst.provider} {inst.type}: {inst.gpu_count:g} x {per_gpu_w:g} W")
            if not 0 < gpu.low_w < gpu.power_w < gpu.high_w:
                bad.append(f"{inst.provider} {inst.type}: GPU bounds {gpu}")
    assert bad == []


def test_the_gcp_figures_the_issue_names_are_fixed() -> None:
    a2 = catalog.cloud_instance("gcp", "a2-ultragpu-1g")
    n4 = catalog.cloud_instance("gcp", "n4-standard-2")
    n2 = catalog.cloud_instance("gcp", "n2-standard-2")
    assert a2.embodied_kg is not None
    assert n4.embodied_kg is not None
    assert n2.embodied_kg is not None
    assert a2.embodied_kg < 1000.0  # was 100,000 kg
    assert a2.embodied_basis == "ccf-method"
    assert n2.embodied_kg == pytest.approx(1888.46 * 2 / 128)  # CCF coefficient, unchanged
    assert 0.5 < n4.embodied_kg / n2.embodied_kg < 2.0  # was 39x
    # CCF method: 1,000 kg server + (1,360 GB - 16 GB) x 533/384 kg/GB + 8 GPUs x 150 kg
    assert a2.platform_embodied_kg == pytest.approx(1000 + 1344 * 533 / 384 + 8 * 150, abs=0.01)


def test_gpu_instances_carry_their_gpu_model_and_count() -> None:
    expected = {
        ("aws", "p4d.24xlarge"): ("A100-40GB", 8),
        ("aws", "p5.48xlarge"): ("H100", 8),
        ("aws", "g5.xlarge"): ("A10G", 1),
        ("aws", "g6.48xlarge"): ("L4", 8),
        ("aws", "trn1.32xlarge"): ("Trainium", 16),
        ("aws", "inf2.48xlarge"): ("Inferentia2", 12),
        ("gcp", "a3-highgpu-8g"): ("H100", 8),
        ("gcp", "g2-standard-24"): ("L4", 2),
        ("gcp", "ct5lp-hightpu-4t"): ("TPU-v5e", 4),
        ("azure", "NC24s v3"): ("V100-PCIe", 4),
        ("azure", "Standard_ND96isr_MI300X_v5"): ("MI300X", 8),
    }
    for (provider, itype), (model, count) in expected.items():
        inst = catalog.cloud_instance(provider, itype)
        assert (inst.gpu_model, inst.gpu_count) == (model, count), itype
    assert catalog.cloud_instance("aws", "m5.large").gpu_model is None


def test_every_accelerator_figure_has_a_source_and_plausible_efficiency(bounds: Bounds) -> None:
    data = catalog.accelerator_data()
    for model, entry in data["gpus"].items():
        assert entry["source"].startswith(("http", "estimate")), model
        if entry["estimate"]:
            assert "estimate" in entry["source"]
    for name, acc in data["accelerators"].items():
        assert "http" in acc["source"], name
        tdp = data["gpus"][acc["gpus"][0]]["tdp_w"]
        for precision, tflops in acc["tflops"].items():
            assert inside(bounds, "tflops_per_w", tflops / tdp), (name, precision)
    for key in ("mfu", "power_share"):
        a = data[key]
        assert 0 < a["low"] <= a["central"] <= a["high"] <= 1
        assert "arXiv" in a["source"]


def test_the_build_fails_on_a_figure_outside_the_bounds(
    shared_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    build_script: ModuleType,
) -> None:
    script = build_script
    monkeypatch.setattr(script, "SHARED", shared_data)
    monkeypatch.setattr(script, "OUT", tmp_path)
    monkeypatch.setitem(script.GPU_SPECS, "H100", (7000.0, "https://example.org/typo"))

    assert script.main() == 1

    err = capsys.readouterr().err
    assert "GPU H100: gpu_tdp_w = 7000 outside [30, 1500]" in err
    assert not (tmp_path / "cloud.json").exists()


def test_the_build_never_reads_gcp_s_mislabelled_embodied_columns(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, build_script: ModuleType
) -> None:
    script = build_script
    monkeypatch.setattr(script, "SHARED", shared_data)
    built = script.build_instances()["gcp"]
    source = script._rows(shared_data / "cloud" / "gcp-instances-latest-2026.csv")
    listed = {r["Instance Type"]: float(r["Platform Embedded Emissions (kgCo2eq)"]) for r in source}
    same = [
        t for t, rec in built.items() if t in listed and rec["platform_embodied_kg"] == listed[t]
    ]
    assert same == []
    assert json.loads((REPO / "src/greenforge/hardware/data/cloud.json").read_text())["instances"]
