"""The hardware catalog: CPU matching, power models, cloud instances, PUE and embodied."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.config import Settings
from greenforge.errors import ConfigError
from greenforge.hardware import catalog
from greenforge.hardware.cpuinfo import CpuInfo

XEON = "Intel(R) Xeon(R) Platinum 8175M CPU @ 2.50GHz"


@pytest.mark.parametrize(
    ("name", "catalog_name", "tdp_w"),
    [
        (XEON, "Intel Xeon Platinum 8175M", 240.0),
        ("AMD Ryzen 7 5800X 8-Core Processor", "AMD Ryzen 7 5800X", 105.0),
        ("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", "Intel Core i7-8700", 65.0),
        ("AMD EPYC 7R13 Processor", "AMD EPYC 7R13", 225.0),
    ],
)
def test_exact_match_ignores_trademarks_frequency_and_core_counts(
    name: str, catalog_name: str, tdp_w: float
) -> None:
    match = catalog.match_cpu(name)
    assert match.kind == "exact"
    assert match.spec is not None
    assert match.spec.name == catalog_name
    assert match.tdp_w == tdp_w


def test_a_vm_hiding_the_model_number_gets_a_family_range() -> None:
    match = catalog.match_cpu("AMD EPYC")
    assert match.kind == "family"
    assert match.candidates > 50
    assert match.tdp_low_w < match.tdp_w < match.tdp_high_w


def test_unknown_cpu_has_no_match() -> None:
    assert catalog.match_cpu("Quantum Abacus 9000").kind == "none"


def test_catalog_carries_package_threads_from_specpower_where_known() -> None:
    spec = catalog.match_cpu("Intel(R) Xeon(R) Platinum 8480+").spec
    assert spec is not None
    assert spec.threads_per_package == 112


def cpu(name: str, *, vm: bool, threads: int = 4, packages: int = 1, **kw: int) -> CpuInfo:
    return CpuInfo(name, logical_cpus=threads, packages=packages, hypervisor=vm, **kw)  # type: ignore[arg-type]


def test_settings_tdp_wins() -> None:
    model = catalog.cpu_power_model(Settings(cpu_tdp_w=95.0), cpu(XEON, vm=False))
    assert model.method == "model:cpu-tdp"
    assert model.max_w == 95.0
    assert "settings.cpu_tdp_w" in model.provenance


def test_bare_metal_uses_tdp_times_packages_with_specpower_idle() -> None:
    model = catalog.cpu_power_model(Settings(), cpu(XEON, vm=False, threads=96, packages=2))
    low_ratio, mid_ratio, high_ratio = catalog.idle_ratio()

    assert model.method == "model:cpu-tdp"
    assert model.max_w == 480.0
    assert model.idle_w == pytest.approx(480.0 * mid_ratio)
    assert model.max_low_w < model.max_w < model.max_high_w
    assert 0.1 < low_ratio < mid_ratio < high_ratio < 0.7


def test_vm_with_known_package_threads_scales_tdp_by_visible_threads() -> None:
    model = catalog.cpu_power_model(
        Settings(), cpu("Intel(R) Xeon(R) Platinum 8480+", vm=True, threads=8)
    )
    assert model.method == "model:cpu-tdp"
    assert model.max_w == pytest.approx(350.0 * 8 / 112)
    assert "8 of 112 threads" in model.provenance


def test_vm_with_known_microarchitecture_uses_ccf_per_vcpu_coefficients() -> None:
    info = CpuInfo("AMD EPYC", "AuthenticAMD", 0x19, 0x01, 1, logical_cpus=4, hypervisor=True)
    model = catalog.cpu_power_model(Settings(), info)
    vp = catalog.vcpu_power("aws", "EPYC 3rd Gen")

    assert model.method == "model:cpu-ccf-vcpu"
    assert model.idle_w == pytest.approx(4 * vp.min_w)
    assert model.max_w == pytest.approx(4 * vp.max_w)
    assert "EPYC 3rd Gen" in model.provenance


def test_cloud_instance_type_selects_its_architecture() -> None:
    settings = Settings(cloud_provider="aws", cloud_instance_type="m5.large")
    model = catalog.cpu_power_model(settings, cpu("whatever", vm=True, threads=2))
    assert model.method == "model:cpu-ccf-vcpu"
    assert "Skylake" in model.provenance
    assert model.max_w == pytest.approx(2 * catalog.vcpu_power("aws", "Skylake").max_w)


def test_unknown_cpu_in_a_vm_falls_back_to_a_generic_figure_with_a_warning() -> None:
    model = catalog.cpu_power_model(Settings(), cpu("Mystery CPU", vm=True, threads=2))
    assert model.method == "model:cpu-generic"
    assert model.warning
    assert "cpu_tdp_w" in model.warning
    assert model.max_low_w < model.max_w < model.max_high_w


def test_unknown_instance_type_lists_close_matches() -> None:
    with pytest.raises(ConfigError, match=r"m5\.large"):
        catalog.cloud_instance("aws", "m5.larg")


def test_instance_lookup_without_provider_searches_all() -> None:
    inst = catalog.find_instance(None, "n2-standard-4")
    assert inst is not None
    assert inst.provider == "gcp"
    assert inst.vcpus == 4


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (Settings(), (1.0, "default:local-machine")),
        (Settings(pue=1.4), (1.4, "settings.pue")),
        (Settings(cloud_provider="aws"), (1.135, "ccf-methodology:pue:aws")),
        (Settings(cloud_provider="gcp"), (1.1, "ccf-methodology:pue:gcp")),
        (Settings(cloud_provider="azure"), (1.185, "ccf-methodology:pue:azure")),
        (Settings(cloud_provider="aws", pue=1.05), (1.05, "settings.pue")),
    ],
)
def test_default_pue(settings: Settings, expected: tuple[float, str]) -> None:
    assert catalog.default_pue(settings) == expected


@pytest.mark.parametrize(
    ("settings", "zone_source", "expected"),
    [
        (
            Settings(),
            "AWS_REGION=eu-central-1",
            (1.135, "ccf-methodology:pue:aws (from AWS_REGION)"),
        ),
        (
            Settings(),
            "FUNCTION_REGION=us-central1",
            (1.1, "ccf-methodology:pue:gcp (from FUNCTION_REGION)"),
        ),
        (
            Settings(),
            "REGION_NAME=West Europe",
            (1.185, "ccf-methodology:pue:azure (from REGION_NAME)"),
        ),
        (Settings(), "argument", (1.0, "default:local-machine")),
        (Settings(), "setting", (1.0, "default:local-machine")),
        (Settings(pue=1.2), "AWS_REGION=eu-central-1", (1.2, "settings.pue")),
        (
            Settings(cloud_provider="gcp"),
            "AWS_REGION=eu-central-1",
            (1.1, "ccf-methodology:pue:gcp"),
        ),
    ],
)
def test_default_pue_follows_a_zone_from_a_cloud_region_variable(
    settings: Settings, zone_source: str, expected: tuple[float, str]
) -> None:
    assert catalog.default_pue(settings, zone_source) == expected


def test_embodied_from_settings_wins() -> None:
    settings = Settings(embodied_kg=300.0, cloud_provider="aws", cloud_instance_type="m5.large")
    assert catalog.embodied_for(settings) == (300.0, "settings.embodied_kg")


def test_embodied_of_a_cloud_instance_is_its_vcpu_share_of_the_platform() -> None:
    result = catalog.embodied_for(Settings(cloud_provider="aws", cloud_instance_type="m5.large"))
    assert result is not None
    kg, source = result
    assert kg == pytest.approx(1610.79 * 2 / 96)
    assert "m5.large" in source
    assert "2/96" in source


def test_embodied_is_unknown_without_settings_or_instance() -> None:
    assert catalog.embodied_for(Settings()) is None
    assert catalog.embodied_for(Settings(cloud_instance_type="no-such-type")) is None


def test_every_instance_is_consistent() -> None:
    for provider in catalog.PROVIDERS:
        for itype in catalog.instance_types(provider):
            inst = catalog.find_instance(provider, itype)
            assert inst is not None
            assert 0 < inst.vcpus <= inst.platform_vcpus
            assert inst.platform_embodied_kg is None or inst.platform_embodied_kg > 0


@given(
    u1=st.floats(min_value=-1, max_value=2),
    u2=st.floats(min_value=-1, max_value=2),
    tdp=st.floats(min_value=1, max_value=2000),
    threads=st.integers(min_value=1, max_value=512),
    vm=st.booleans(),
)
def test_power_curves_are_monotone_and_bounded(
    u1: float, u2: float, tdp: float, threads: int, vm: bool
) -> None:
    for settings in (Settings(), Settings(cpu_tdp_w=tdp)):
        model = catalog.cpu_power_model(settings, cpu("AMD EPYC", vm=vm, threads=threads))
        lo_u, hi_u = sorted((u1, u2))
        central_lo, low_lo, high_lo = model.power_w(lo_u)
        central_hi, _, _ = model.power_w(hi_u)
        assert central_lo <= central_hi + 1e-9
        assert low_lo <= central_lo <= high_lo


def test_an_instance_type_that_disagrees_with_the_visible_cpus_is_warned() -> None:
    settings = Settings(cloud_provider="aws", cloud_instance_type="c5.xlarge")  # 4 vCPUs
    model = catalog.cpu_power_model(settings, cpu("whatever", vm=True, threads=2))
    assert "4 vCPUs" in model.warning
    assert model.max_w == pytest.approx(2 * catalog.vcpu_power("aws", "Skylake").max_w)
