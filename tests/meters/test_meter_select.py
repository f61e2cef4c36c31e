"""select_meters: which meters a run uses on a given machine, and why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from greenforge.config import Settings
from greenforge.errors import ConfigError
from greenforge.hardware.cpuinfo import CpuInfo
from greenforge.meters.model import ModelCpuMeter, ProcessShareMeter
from greenforge.meters.rapl import RaplMeter, read_text
from greenforge.meters.select import select_meters

VM = CpuInfo("AMD EPYC", "AuthenticAMD", 26, 2, 1, logical_cpus=2, hypervisor=True)


class NoGpuNVML:
    """An NVML whose library is missing, as on a machine without the NVIDIA driver."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self) -> None:
        raise self.NVMLError("NVML Shared Library Not Found")


NO_GPU = NoGpuNVML()


def make_zone(root: Path, zone_id: str, name: str, energy_uj: int) -> None:
    zone = root / zone_id
    zone.mkdir(parents=True)
    (zone / "name").write_text(name + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")


def server_tree(root: Path) -> None:
    make_zone(root, "intel-rapl:0", "package-0", 1_000)
    make_zone(root, "intel-rapl:0:0", "dram", 2_000)
    make_zone(root, "intel-rapl:1", "package-1", 3_000)
    make_zone(root, "intel-rapl:1:0", "dram", 4_000)


def denying_opener(path: Path) -> str:
    if path.name == "energy_uj":
        raise PermissionError(13, "Permission denied", str(path))
    return read_text(path)


def reason(selection_reasons: list[str], name: str) -> str:
    (line,) = [r for r in selection_reasons if r.startswith(name + ":")]
    return line


def test_vm_without_counters_uses_modelled_cpu_and_ram(tmp_path: Path) -> None:
    sel = select_meters(Settings(), rapl_root=tmp_path, nvml=NO_GPU, env={}, cpuinfo=VM)

    assert sel.names == ["model-cpu", "model-ram"]
    assert "skipped" in reason(sel.reasons, "rapl")
    assert "model:cpu-ccf-vcpu" not in reason(sel.reasons, "rapl")
    assert "EPYC 5th Gen" in reason(sel.reasons, "model-cpu")
    assert "skipped" in reason(sel.reasons, "nvidia")
    # a reason is one line stored with every run; how to enable a meter is doctor's
    assert "greenforge doctor" in reason(sel.reasons, "nvidia")
    assert "greenforge[nvidia]" not in reason(sel.reasons, "nvidia")
    how = {a.name: a.how_to_enable for a in sel.availability}
    assert "greenforge[nvidia]" in how["nvidia"]
    assert "greenforge[amd]" in how["amd"]
    assert "using" in reason(sel.reasons, "model-ram")


def test_readable_rapl_with_dram_replaces_both_models(tmp_path: Path) -> None:
    server_tree(tmp_path)

    sel = select_meters(Settings(), rapl_root=tmp_path, nvml=NO_GPU, env={}, cpuinfo=VM)

    assert sel.names == ["rapl"]
    assert isinstance(sel.meters[0], RaplMeter)
    assert "dram" in reason(sel.reasons, "model-ram")
    assert "skipped" in reason(sel.reasons, "model-cpu")


def test_rapl_without_dram_keeps_modelled_ram(tmp_path: Path) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 1_000)

    sel = select_meters(Settings(), rapl_root=tmp_path, nvml=NO_GPU, env={}, cpuinfo=VM)

    assert sel.names == ["rapl", "model-ram"]
    assert "no RAPL dram zone" in reason(sel.reasons, "model-ram")


def test_root_only_counters_fall_back_to_the_model_and_say_how_to_fix(tmp_path: Path) -> None:
    server_tree(tmp_path)

    sel = select_meters(
        Settings(),
        rapl_root=tmp_path,
        rapl_opener=denying_opener,
        nvml=NO_GPU,
        env={},
        cpuinfo=VM,
    )

    assert sel.names == ["model-cpu", "model-ram"]
    assert "greenforge doctor" in reason(sel.reasons, "rapl")
    (rapl,) = [a for a in sel.availability if a.name == "rapl"]
    assert "chmod o+r" in rapl.how_to_enable


def test_process_attribution_scopes_node_meters_to_the_tree(tmp_path: Path) -> None:
    settings = Settings(attribution="process")

    modelled = select_meters(
        settings, pid=os.getpid(), rapl_root=tmp_path, nvml=NO_GPU, env={}, cpuinfo=VM
    )
    server_tree(tmp_path)
    measured = select_meters(
        settings, pid=os.getpid(), rapl_root=tmp_path, nvml=NO_GPU, env={}, cpuinfo=VM
    )

    assert isinstance(modelled.meters[0], ModelCpuMeter)
    assert [m.scope for m in modelled.meters] == ["process", "process"]
    assert isinstance(measured.meters[0], ProcessShareMeter)


def test_selected_meters_start_read_and_close(tmp_path: Path) -> None:
    server_tree(tmp_path)
    sel = select_meters(Settings(), rapl_root=tmp_path, nvml=NO_GPU, env={}, cpuinfo=VM)
    for meter in sel.meters:
        meter.start()
    components = {r.component for m in sel.meters for r in m.read()}
    for meter in sel.meters:
        meter.close()
    assert components == {"cpu:0", "cpu:1", "dram:0", "dram:1"}


def test_unknown_instance_type_is_a_config_error_before_the_run(tmp_path: Path) -> None:
    settings = Settings(cloud_provider="aws", cloud_instance_type="m5.hugee")
    with pytest.raises(ConfigError, match="cloud_instance_type"):
        select_meters(settings, rapl_root=tmp_path, nvml=NO_GPU, env={}, cpuinfo=VM)


def test_generic_cpu_fallback_is_warned(tmp_path: Path) -> None:
    unknown = CpuInfo("Mystery CPU", logical_cpus=2, hypervisor=True)
    sel = select_meters(Settings(), rapl_root=tmp_path, nvml=NO_GPU, env={}, cpuinfo=unknown)
    assert sel.warnings
    assert "generic" in sel.warnings[0]


def test_choosing_meters_imports_no_gpu_library_or_torch() -> None:
    code = (
        "import sys\n"
        "import greenforge.meters.select\n"
        "import greenforge.meters.base as b\n"
        "b.meter_names()\n"
        "heavy = {'torch', 'pynvml', 'amdsmi'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
