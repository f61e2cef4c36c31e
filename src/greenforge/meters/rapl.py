"""RAPL energy counters through the Linux powercap sysfs interface.

Zones live in ``/sys/class/powercap`` (injectable ``root``) as ``intel-rapl:N`` (package N,
also used by the ``rapl`` driver on AMD Zen), ``intel-rapl:N:M`` (sub-zones: ``core``,
``uncore``, ``dram``), ``intel-rapl-mmio:N`` (the same package through MMIO) and, on some
kernels/platforms, ``amd-rapl:*``. Each zone has ``name``, ``energy_uj`` and
``max_energy_range_uj``.

What is counted (no double counting):

- every ``package-N`` -> component ``cpu:N``;
- every ``dram`` zone -> ``dram:N`` (sub-zone of package N) or ``dram`` (top level);
- ``core`` and ``uncore`` are *inside* the package: never added;
- a zone that mirrors one already counted (an MMIO zone, or a second driver's zone with the
  same name and package) is skipped;
- ``psys`` (platform: package + more on client machines) overlaps the package, so by default it
  is *not* added. With ``prefer_psys=True`` the meter reports ``psys`` alone (component
  ``psys``) and skips packages and dram.

Counters wrap at ``max_energy_range_uj``; :func:`counter_delta_uj` handles one wrap per read
(the monitor reads every second; a wrap takes minutes even at kilowatts).

Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694); containers often hide
``/sys/class/powercap``. :func:`diagnose` says which case applies and how to fix it.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from greenforge.errors import MeterError
from greenforge.meters.base import Availability, Scope, register_meter
from greenforge.records import EnergyReading
from greenforge.units import uj_to_j

DEFAULT_ROOT = Path("/sys/class/powercap")
METHOD = "rapl"
REL_ERR = 0.05
"""Relative bound on RAPL energy: package counters track wall-plug-side package power closely
(within a few percent in published validations); we state +-5 %."""

Opener = Callable[[Path], str]
_ZONE = re.compile(r"^(?P<kind>[a-z]+-rapl(?P<mmio>-mmio)?):(?P<idx>\d+(?::\d+)*)$")

CHMOD_FIX = "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj"
UDEV_FIX = (
    'a udev rule: SUBSYSTEM=="powercap", ACTION=="add", '
    'RUN+="/bin/chmod o+r /sys%p/energy_uj" in /etc/udev/rules.d/90-rapl.rules'
)


def read_text(path: Path) -> str:
    """Default opener: the stripped text of a sysfs file."""
    with path.open(encoding="ascii") as fh:
        return fh.read().strip()


def counter_delta_uj(previous_uj: int, current_uj: int, max_range_uj: int) -> int:
    """Energy between two counter reads, allowing for one wrap-around at ``max_range_uj``.

    The counter runs 0 .. ``max_range_uj`` and wraps to 0 (a wrap loses at most one counter
    unit, about 15-61 uJ). A range below the previous value (unreadable or bogus range file) is
    treated as a counter reset: the energy since 0.
    """
    if current_uj >= previous_uj:
        return current_uj - previous_uj
    if max_range_uj < previous_uj:  # no usable range: treat as a counter reset to 0
        return current_uj
    return (max_range_uj - previous_uj) + current_uj


@dataclasses.dataclass(frozen=True)
class RaplZone:
    """One powercap zone as found in sysfs."""

    path: Path
    zone_id: str
    """``intel-rapl:0:1`` style directory name."""
    name: str
    """``package-0``, ``dram``, ``core``, ``uncore``, ``psys`` ..."""
    max_range_uj: int
    mmio: bool

    @property
    def package_index(self) -> int:
        parts = self.zone_id.split(":")
        if self.name.startswith("package-") and self.name[8:].isdigit():
            return int(self.name[8:])
        return int(parts[1])

    @property
    def is_subzone(self) -> bool:
        return self.zone_id.count(":") > 1


def discover_zones(root: Path = DEFAULT_ROOT, opener: Opener = read_text) -> list[RaplZone]:
    """Every RAPL zone under ``root`` (the ``name`` and range files must be readable)."""
    zones = []
    try:
        entries = sorted(p for p in root.iterdir() if _ZONE.match(p.name))
    except OSError:
        return []
    for path in entries:
        m = _ZONE.match(path.name)
        assert m is not None
        try:
            name = opener(path / "name")
        except OSError:
            continue
        try:
            max_range = int(opener(path / "max_energy_range_uj"))
        except (OSError, ValueError):
            max_range = 0
        zones.append(RaplZone(path, path.name, name, max_range, bool(m.group("mmio"))))
    return zones


@dataclasses.dataclass(frozen=True)
class CountedZone:
    zone: RaplZone
    component: str


def counted_zones(
    zones: Sequence[RaplZone], prefer_psys: bool = False
) -> tuple[list[CountedZone], list[str]]:
    """Which zones to add up, and a reason for each zone left out."""
    skipped: list[str] = []
    psys = [z for z in zones if z.name == "psys"]
    counted: list[CountedZone] = []
    if prefer_psys and psys:
        counted.append(CountedZone(psys[0], "psys"))
        for z in zones:
            if z is not psys[0]:
                skipped.append(f"{z.zone_id} ({z.name}): inside psys (prefer_psys)")
        return counted, skipped
    seen: dict[tuple[str, int], str] = {}
    for z in sorted(zones, key=lambda z: z.mmio):  # MSR zones before their MMIO mirrors
        key = (z.name, z.package_index)
        if key in seen:
            how = "MMIO" if z.mmio else "second driver's"
            skipped.append(f"{z.zone_id} ({z.name}): {how} mirror of {seen[key]}")
            continue
        seen[key] = z.zone_id
        if z.name.startswith("package"):
            counted.append(CountedZone(z, f"cpu:{z.package_index}"))
        elif z.name == "dram":
            counted.append(CountedZone(z, f"dram:{z.package_index}" if z.is_subzone else "dram"))
        elif z.name == "psys":
            skipped.append(f"{z.zone_id} (psys): overlaps the packages; use prefer_psys=True")
        else:
            skipped.append(f"{z.zone_id} ({z.name}): inside its package")
    return counted, skipped


def in_container() -> bool:
    """True inside a Docker/Podman container (marker files)."""
    return Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()


def diagnose(
    root: Path = DEFAULT_ROOT,
    opener: Opener = read_text,
    in_container: Callable[[], bool] = in_container,
) -> Availability:
    """Can RAPL be read here? If not, why, and how to fix it."""
    zones = discover_zones(root, opener)
    if not zones:
        if in_container():
            how = (
                "run the container with the host's powercap tree mounted, e.g. "
                "`docker run -v /sys/class/powercap:/sys/class/powercap:ro ...` "
                f"and the counters readable (`{CHMOD_FIX}` on the host), or --privileged"
            )
            detail = f"no RAPL zones under {root}: hidden inside this container"
        else:
            how = (
                "RAPL needs an Intel (Sandy Bridge+) or AMD Zen CPU on bare metal with the "
                "powercap driver loaded: `sudo modprobe intel_rapl_msr` (AMD: kernel >= 5.8). "
                "Virtual machines normally do not expose it; the modelled CPU meter is used."
            )
            detail = f"no RAPL zones under {root} (virtual machine, non-x86 CPU or no driver)"
        return Availability("rapl", False, detail, how)
    counted, _ = counted_zones(zones)
    denied: list[str] = []
    values: list[int] = []
    for c in counted:
        try:
            values.append(int(opener(c.zone.path / "energy_uj")))
        except PermissionError:
            denied.append(c.zone.zone_id)
        except (OSError, ValueError) as exc:
            return Availability(
                "rapl",
                False,
                f"{c.zone.path / 'energy_uj'} is unreadable: {exc}",
                "check the powercap driver (dmesg | grep -i rapl)",
            )
    if denied:
        return Availability(
            "rapl",
            False,
            f"permission denied reading energy_uj of {', '.join(denied)}: since Linux 5.10 the "
            "RAPL counters are root-only (CVE-2020-8694)",
            f"run `{CHMOD_FIX}` (until reboot), or add {UDEV_FIX}, or run as root",
        )
    if values and not any(values):
        return Availability(
            "rapl",
            False,
            "every RAPL counter reads 0: the zones exist but no hardware counter backs them "
            "(common in virtual machines), and a silent zero would under-report",
            "nothing to fix here: the modelled CPU meter is used; on bare metal check "
            "`dmesg | grep -i rapl`",
        )
    names = ", ".join(f"{c.component} ({c.zone.zone_id})" for c in counted)
    return Availability("rapl", True, f"readable: {names}")


class RaplMeter:
    """Package and DRAM energy from RAPL counters (``method="rapl"``)."""

    name = "rapl"
    scope: Scope = "node"
    method = METHOD

    def __init__(
        self, root: Path = DEFAULT_ROOT, opener: Opener = read_text, prefer_psys: bool = False
    ) -> None:
        self.root = root
        self._opener = opener
        self.prefer_psys = prefer_psys
        self.zones: list[CountedZone] = []
        self.skipped: list[str] = []
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()
        self.errors: list[str] = []

    @property
    def components(self) -> list[str]:
        return [c.component for c in self.zones]

    @property
    def covers_dram(self) -> bool:
        return any(c.zone.name == "dram" for c in self.zones)

    def _read(self, zone: RaplZone) -> int:
        return int(self._opener(zone.path / "energy_uj"))

    def start(self) -> None:
        zones = discover_zones(self.root, self._opener)
        self.zones, self.skipped = counted_zones(zones, self.prefer_psys)
        if not self.zones:
            diag = diagnose(self.root, self._opener)
            raise MeterError(f"RAPL unavailable: {diag.detail}. {diag.how_to_enable}")
        last: dict[str, int] = {}
        for c in self.zones:
            try:
                last[c.component] = self._read(c.zone)
            except (OSError, ValueError):
                diag = diagnose(self.root, self._opener)
                raise MeterError(f"RAPL unavailable: {diag.detail}. {diag.how_to_enable}") from None
        with self._lock:
            self._last = last

    def read(self) -> Sequence[EnergyReading]:
        out = []
        with self._lock:
            for c in self.zones:
                try:
                    now = self._read(c.zone)
                except (OSError, ValueError) as exc:  # never crash the workload
                    self.errors.append(f"{c.zone.zone_id}: {exc}")
                    continue
                prev = self._last.get(c.component, now)
                self._last[c.component] = now
                delta_j = uj_to_j(float(counter_delta_uj(prev, now, c.zone.max_range_uj)))
                out.append(EnergyReading.exact(c.component, delta_j, METHOD, REL_ERR))
        return out

    def close(self) -> None:
        with self._lock:
            self._last = {}


def _factory(**kwargs: Any) -> RaplMeter:
    return RaplMeter(**kwargs)


def probe(root: Path = DEFAULT_ROOT, opener: Opener = read_text) -> Availability:
    try:
        return diagnose(root, opener)
    except Exception as exc:  # doctor must never crash
        return Availability("rapl", False, f"probe failed: {exc}")


register_meter("rapl", _factory, probe)
