"""Parsing /proc/cpuinfo into CpuInfo."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenforge.hardware.cpuinfo import CpuInfo, parse_cpuinfo, read_cpuinfo


def x86_block(i: int, physical_id: int, name: str, family: int, model: int, flags: str) -> str:
    return (
        f"processor\t: {i}\nvendor_id\t: GenuineIntel\ncpu family\t: {family}\n"
        f"model\t\t: {model}\nmodel name\t: {name}\nstepping\t: 7\n"
        f"physical id\t: {physical_id}\nflags\t\t: {flags}\n\n"
    )


def test_dual_socket_bare_metal_xeon() -> None:
    name = "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"
    text = "".join(x86_block(i, i % 2, name, 6, 0x55, "fpu sse avx512f") for i in range(8))

    cpu = parse_cpuinfo(text)

    assert cpu.model_name == name
    assert cpu.vendor == "GenuineIntel"
    assert (cpu.logical_cpus, cpu.packages, cpu.hypervisor) == (8, 2, False)
    assert cpu.microarchitecture == "Cascade Lake"  # model 0x55, stepping 7


def test_virtual_machine_is_detected_from_the_hypervisor_flag() -> None:
    text = x86_block(0, 0, "Intel Xeon Processor (Icelake)", 6, 0x6A, "fpu hypervisor avx")
    cpu = parse_cpuinfo(text)
    assert cpu.hypervisor
    assert cpu.microarchitecture == "Ice Lake"


def test_arm_layout_without_model_name() -> None:
    text = "processor\t: 0\nBogoMIPS\t: 243.75\n\nprocessor\t: 1\n\nHardware\t: BCM2835\n"
    cpu = parse_cpuinfo(text)
    assert cpu.model_name == "BCM2835"
    assert cpu.logical_cpus == 2
    assert cpu.microarchitecture is None


@pytest.mark.parametrize(
    ("vendor", "family", "model", "stepping", "arch"),
    [
        ("GenuineIntel", 6, 0x55, 4, "Skylake"),
        ("GenuineIntel", 6, 0x8F, 8, "Sapphire Rapids"),
        ("GenuineIntel", 6, 0x01, 0, None),
        ("AuthenticAMD", 0x17, 0x01, 2, "EPYC 1st Gen"),
        ("AuthenticAMD", 0x17, 0x31, 0, "EPYC 2nd Gen"),
        ("AuthenticAMD", 0x19, 0x01, 1, "EPYC 3rd Gen"),
        ("AuthenticAMD", 0x19, 0x11, 1, "EPYC 4th Gen"),
        ("AuthenticAMD", 0x1A, 0x02, 1, "EPYC 5th Gen"),
    ],
)
def test_microarchitecture_from_cpuid(
    vendor: str, family: int, model: int, stepping: int, arch: str | None
) -> None:
    assert CpuInfo("x", vendor, family, model, stepping).microarchitecture == arch


def test_read_cpuinfo_from_an_injected_path(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(x86_block(0, 0, "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", 6, 0x9E, "fpu"))
    assert read_cpuinfo(path).model_name.startswith("Intel(R) Core(TM) i7-8700")


def test_missing_cpuinfo_falls_back_to_what_python_knows(tmp_path: Path) -> None:
    cpu = read_cpuinfo(tmp_path / "absent")
    assert cpu.logical_cpus >= 1
