"""What CPU is this? Parse ``/proc/cpuinfo`` (injectable) into a small typed value.

Pure parsing (:func:`parse_cpuinfo`) plus a thin reader (:func:`read_cpuinfo`); the
micro-architecture is derived from the CPUID vendor/family/model where we know the mapping,
because virtual machines often hide the marketing name (``model name: AMD EPYC``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

# (vendor, family, model) -> micro-architecture name as used by the CCF coefficient tables.
_INTEL_MODELS: dict[int, str] = {
    0x2D: "Sandy Bridge",
    0x3E: "Ivy Bridge",
    0x3F: "Haswell",
    0x4F: "Broadwell",
    0x56: "Broadwell",
    0x55: "Skylake",  # stepping >= 5 is Cascade Lake, handled below
    0x6A: "Ice Lake",
    0x6C: "Ice Lake",
    0x8F: "Sapphire Rapids",
    0xCF: "Emerald Rapids",
    0xAD: "Granite Rapids",
    0x9E: "Coffee Lake",
}


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    """The CPU as the operating system shows it."""

    model_name: str
    vendor: str = ""
    family: int | None = None
    model: int | None = None
    stepping: int | None = None
    logical_cpus: int = 1
    """Logical CPUs (threads / vCPUs) visible to this OS."""
    packages: int = 1
    """Distinct ``physical id`` values (sockets as the OS sees them)."""
    hypervisor: bool = False
    """True inside a virtual machine (CPUID hypervisor flag): the OS sees a share of a package."""

    @property
    def microarchitecture(self) -> str | None:
        """CCF micro-architecture name from CPUID family/model, or ``None`` if unknown."""
        if self.family is None or self.model is None:
            return None
        if self.vendor == "GenuineIntel" and self.family == 6:
            arch = _INTEL_MODELS.get(self.model)
            if arch == "Skylake" and (self.stepping or 0) >= 5:
                return "Cascade Lake"
            return arch
        if self.vendor == "AuthenticAMD":
            if self.family == 0x17:
                return "EPYC 1st Gen" if self.model < 0x30 else "EPYC 2nd Gen"
            if self.family == 0x19:
                return "EPYC 3rd Gen" if self.model < 0x10 else "EPYC 4th Gen"
            if self.family == 0x1A:
                return "EPYC 5th Gen"
        return None


def _int(text: str) -> int | None:
    try:
        return int(text, 0) if text.startswith("0x") else int(text)
    except ValueError:
        return None


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse the text of ``/proc/cpuinfo`` (x86 and ARM layouts)."""
    fields: dict[str, str] = {}
    logical = 0
    packages: set[str] = set()
    hypervisor = False
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "processor" and value.isdigit():
            logical += 1
        elif key == "physical id":
            packages.add(value)
        elif key == "flags" and "hypervisor" in value.split():
            hypervisor = True
        fields.setdefault(key, value)
    name = fields.get("model name") or fields.get("hardware") or fields.get("cpu model") or ""
    return CpuInfo(
        model_name=" ".join(name.split()),
        vendor=fields.get("vendor_id", ""),
        family=_int(fields.get("cpu family", "")),
        model=_int(fields.get("model", "")),
        stepping=_int(fields.get("stepping", "")),
        logical_cpus=max(logical, 1),
        packages=max(len(packages), 1),
        hypervisor=hypervisor,
    )


def read_cpuinfo(path: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """Read and parse ``path``; where it does not exist (macOS, Windows) use what Python knows."""
    try:
        return parse_cpuinfo(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        import platform  # only here: ~5 ms of regex compiling that Linux starts never need

        return CpuInfo(
            model_name=platform.processor() or platform.machine(),
            logical_cpus=os.cpu_count() or 1,
        )
