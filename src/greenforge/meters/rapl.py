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

Counters wrap at ``max_energy_range_uj``; :func:`counter_delta_uj` handles one wrap per read.
Two reads must therefore be closer than one wrap at the highest power the package can draw:
:attr:`RaplMeter.max_interval_s` is ``range / max_power x 0.5`` (max power from the zone's
``constraint_0_max_power_uw``, else the CPU's catalog TDP, else 500 W; the 0.5 allows for turbo
above it), and the tracker samples at least that often (clamping ``interval_s`` with a
warning). If two reads are still further apart (a stalled process), more than one wrap is
possible: the reading is marked ``rapl:wrap-uncertain``, its central value estimates the
number of wraps from the power seen before, and its bounds span every possible count.

Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694); containers often hide
``/sys/class/powercap``. :func:`diagnose` says which case applies and how to fix it.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
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

DEFAULT_MAX_POWER_W = 500.0
"""Maximum power assumed for a zone whose own limit and CPU TDP are unknown (generous: it
only shortens the sampling interval bound)."""
WRAP_SAFETY = 0.5
"""Reads at most ``WRAP_SAFETY x range / max power`` apart: a package can draw up to twice
its rated maximum (turbo) and still never wrap twice between reads."""
WRAP_UNCERTAIN = "rapl:wrap-uncertain"

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
    max_power_w: float | None = None
    """The zone's ``constraint_0_max_power_uw`` in W, when it states one."""

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
        try:
            max_power_uw = float(opener(path / "constraint_0_max_power_uw"))
        except (OSError, ValueError):
            max_power_uw = 0.0
        max_power_w = max_power_uw / 1e6 if math.isfinite(max_power_uw) else 0.0
        zones.append(
            RaplZone(
                path,
                path.name,
                name,
                max_range,
                bool(m.group("mmio")),
                max_power_w if max_power_w > 0 else None,
            )
        )
    return zones


def max_read_interval_s(max_range_uj: int, max_power_w: float) -> float:
    """Longest time (s) between two reads of a counter that keeps at most one wrap between
    them: ``range / max power x WRAP_SAFETY`` (``inf`` without a usable range or power)."""
    if max_range_uj <= 0 or not (max_power_w > 0):
        return math.inf
    return max_range_uj / (max_power_w * 1e6) * WRAP_SAFETY


def wrap_bounds_uj(
    delta_uj: int, elapsed_s: float, max_range_uj: int, max_power_w: float
) -> tuple[int, int]:
    """The fewest and most whole wraps (``0 .. n``) that fit between two reads ``elapsed_s``
    apart whose counters differ by ``delta_uj`` (already allowing one wrap), given that the
    zone draws at most ``max_power_w / WRAP_SAFETY``; returns ``(0, n)``."""
    if max_range_uj <= 0 or not (max_power_w > 0) or elapsed_s <= 0:
        return 0, 0
    most_uj = max_power_w / WRAP_SAFETY * 1e6 * elapsed_s
    return 0, max(int((most_uj - delta_uj) // max_range_uj), 0)


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
        self,
        root: Path = DEFAULT_ROOT,
        opener: Opener = read_text,
        prefer_psys: bool = False,
        *,
        max_power_w: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self._opener = opener
        self.prefer_psys = prefer_psys
        self.max_power_w = max_power_w
        """Overrides each zone's maximum power (W) for the wrap bound; else sysfs / TDP."""
        self._clock = clock
        self.zones: list[CountedZone] = []
        self.skipped: list[str] = []
        self._last: dict[str, int] = {}
        self._last_s: float | None = None
        self._power_w: dict[str, float] = {}
        self._tdp_w: float | None = None
        self._lock = threading.Lock()
        self.errors: list[str] = []

    def _zone_max_power_w(self, zone: RaplZone) -> float:
        if self.max_power_w is not None:
            return self.max_power_w
        if zone.max_power_w is not None:
            return zone.max_power_w
        if self._tdp_w is None:
            self._tdp_w = _catalog_tdp_w() or DEFAULT_MAX_POWER_W
        return self._tdp_w

    @property
    def max_interval_s(self) -> float:
        """Longest safe time (s) between reads: one counter wrap at most (``inf`` if none)."""
        zones = self.zones or counted_zones(discover_zones(self.root, self._opener))[0]
        return min(
            (
                max_read_interval_s(c.zone.max_range_uj, self._zone_max_power_w(c.zone))
                for c in zones
            ),
            default=math.inf,
        )

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
            self._last_s = self._clock()

    def read(self) -> Sequence[EnergyReading]:
        out = []
        with self._lock:
            now_s = self._clock()
            elapsed_s = 0.0 if self._last_s is None else max(now_s - self._last_s, 0.0)
            self._last_s = now_s
            for c in self.zones:
                try:
                    now = self._read(c.zone)
                except (OSError, ValueError) as exc:  # never crash the workload
                    self.errors.append(f"{c.zone.zone_id}: {exc}")
                    continue
                prev = self._last.get(c.component, now)
                self._last[c.component] = now
                out.append(
                    self._reading(c, counter_delta_uj(prev, now, c.zone.max_range_uj), elapsed_s)
                )
        return out

    def _reading(self, c: CountedZone, delta_uj: int, elapsed_s: float) -> EnergyReading:
        """One zone's energy since the previous read; uncertain (wide bounds) when the reads
        were far enough apart for the counter to wrap more than once."""
        range_uj = c.zone.max_range_uj
        max_power_w = self._zone_max_power_w(c.zone)
        if elapsed_s <= max_read_interval_s(range_uj, max_power_w):
            delta_j = uj_to_j(float(delta_uj))
            if elapsed_s > 0:
                self._power_w[c.component] = delta_j / elapsed_s
            return EnergyReading.exact(c.component, delta_j, METHOD, REL_ERR)
        _, most = wrap_bounds_uj(delta_uj, elapsed_s, range_uj, max_power_w)
        guess = 0
        seen_w = self._power_w.get(c.component)
        if seen_w is not None and most > 0:  # as many wraps as the power seen before implies
            guess = min(max(round((seen_w * 1e6 * elapsed_s - delta_uj) / range_uj), 0), most)
        central_j = uj_to_j(float(delta_uj + guess * range_uj))
        low_j = uj_to_j(float(delta_uj)) * (1 - REL_ERR)
        high_j = uj_to_j(float(delta_uj + most * range_uj)) * (1 + REL_ERR)
        self.errors.append(
            f"{c.zone.zone_id}: reads {elapsed_s:.0f} s apart, longer than one counter wrap "
            f"({max_read_interval_s(range_uj, max_power_w):.0f} s): 0-{most} extra wraps "
            f"possible, estimated {guess}"
        )
        return EnergyReading(c.component, central_j, WRAP_UNCERTAIN, low_j, high_j)

    def close(self) -> None:
        with self._lock:
            self._last = {}
            self._last_s = None


def _catalog_tdp_w() -> float | None:
    """This machine's CPU TDP (W) from the hardware catalog, or None when not matched."""
    try:
        from greenforge.hardware.catalog import match_cpu
        from greenforge.hardware.cpuinfo import read_cpuinfo

        match = match_cpu(read_cpuinfo().model_name)
    except Exception:  # a bound, not a measurement: fall back to the generous default
        return None
    tdp = getattr(match, "tdp_w", None)
    if match.kind == "none" or not isinstance(tdp, int | float) or tdp <= 0:
        return None
    return float(tdp)


def max_sampling_interval_s(meters: Iterable[object]) -> float:
    """The longest sampling interval (s) the RAPL meters among ``meters`` allow (``inf`` when
    there are none); meters that wrap another (process share) are looked through."""
    bound = math.inf
    for meter in meters:
        inner = getattr(meter, "inner", meter)
        if isinstance(inner, RaplMeter):
            bound = min(bound, inner.max_interval_s)
    return bound


def _factory(**kwargs: Any) -> RaplMeter:
    return RaplMeter(**kwargs)


def probe(root: Path = DEFAULT_ROOT, opener: Opener = read_text) -> Availability:
    try:
        return diagnose(root, opener)
    except Exception as exc:  # doctor must never crash
        return Availability("rapl", False, f"probe failed: {exc}")


register_meter("rapl", _factory, probe)
