"""RAPL meter against fake powercap sysfs trees in tmp_path."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenforge.errors import MeterError
from greenforge.meters import rapl
from greenforge.meters.base import create_meter, probe_meter
from greenforge.units import UJ_PER_J, uj_to_j

MAX_UJ = 262_143_328_850


def make_zone(root: Path, zone_id: str, name: str, energy_uj: int, max_uj: int = MAX_UJ) -> Path:
    zone = root / zone_id
    zone.mkdir(parents=True)
    (zone / "name").write_text(name + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    (zone / "enabled").write_text("1\n")
    return zone


def set_energy(zone: Path, energy_uj: int) -> None:
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


def server_tree(root: Path) -> dict[str, Path]:
    """Two packages, each with core and dram sub-zones, as on a dual-socket Xeon."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "intel-rapl").mkdir()  # the control type directory, not a zone
    return {
        "pkg0": make_zone(root, "intel-rapl:0", "package-0", 1_000_000),
        "core0": make_zone(root, "intel-rapl:0:0", "core", 500_000),
        "dram0": make_zone(root, "intel-rapl:0:1", "dram", 100_000),
        "pkg1": make_zone(root, "intel-rapl:1", "package-1", 2_000_000),
        "dram1": make_zone(root, "intel-rapl:1:0", "dram", 200_000),
    }


def test_every_package_and_dram_is_read_and_subzones_are_not_added(tmp_path: Path) -> None:
    zones = server_tree(tmp_path)
    meter = rapl.RaplMeter(root=tmp_path)
    meter.start()
    set_energy(zones["pkg0"], 11_000_000)  # +10 J
    set_energy(zones["core0"], 9_500_000)  # +9 J inside package 0: must not be added
    set_energy(zones["dram0"], 2_100_000)  # +2 J
    set_energy(zones["pkg1"], 22_000_000)  # +20 J
    set_energy(zones["dram1"], 3_200_000)  # +3 J

    readings = {r.component: r for r in meter.read()}

    assert set(readings) == {"cpu:0", "dram:0", "cpu:1", "dram:1"}
    assert readings["cpu:0"].energy_j == pytest.approx(10.0)
    assert readings["cpu:1"].energy_j == pytest.approx(20.0)
    assert readings["dram:0"].energy_j == pytest.approx(2.0)
    assert readings["dram:1"].energy_j == pytest.approx(3.0)
    assert all(r.method == "rapl" for r in readings.values())
    assert readings["cpu:0"].low_j < 10.0 < readings["cpu:0"].high_j
    assert meter.covers_dram
    assert any("core" in s for s in meter.skipped)


def test_second_read_reports_only_energy_since_the_first(tmp_path: Path) -> None:
    zones = server_tree(tmp_path)
    meter = rapl.RaplMeter(root=tmp_path)
    meter.start()
    set_energy(zones["pkg0"], 2_000_000)
    meter.read()
    set_energy(zones["pkg0"], 2_500_000)

    readings = {r.component: r.energy_j for r in meter.read()}

    assert readings["cpu:0"] == pytest.approx(0.5)
    assert readings["cpu:1"] == 0.0


def test_counter_wrap_around_uses_max_energy_range(tmp_path: Path) -> None:
    pkg = make_zone(tmp_path, "intel-rapl:0", "package-0", MAX_UJ - 1_000_000)
    meter = rapl.RaplMeter(root=tmp_path)
    meter.start()
    set_energy(pkg, 4_000_000)  # wrapped: 1 J before the wrap + 4 J after

    (reading,) = meter.read()

    assert reading.energy_j == pytest.approx(5.0)


@given(
    max_range=st.integers(min_value=1_000, max_value=2**40),
    previous_frac=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    delta_frac=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_counter_delta_recovers_any_delta_below_one_wrap(
    max_range: int, previous_frac: float, delta_frac: float
) -> None:
    previous = int(previous_frac * max_range)
    delta = int(delta_frac * max_range)
    current = (previous + delta) % max_range

    assert rapl.counter_delta_uj(previous, current, max_range) == delta


@given(
    previous=st.integers(min_value=0, max_value=2**40),
    current=st.integers(min_value=0, max_value=2**40),
    max_range=st.integers(min_value=0, max_value=2**41),
)
def test_counter_delta_is_never_negative(previous: int, current: int, max_range: int) -> None:
    assert rapl.counter_delta_uj(previous, current, max_range) >= 0


def test_psys_is_not_added_to_packages_by_default(tmp_path: Path) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    make_zone(tmp_path, "intel-rapl:1", "psys", 0)

    counted, skipped = rapl.counted_zones(rapl.discover_zones(tmp_path))

    assert [c.component for c in counted] == ["cpu:0"]
    assert any("psys" in s and "overlaps" in s for s in skipped)


def test_prefer_psys_reports_the_platform_alone(tmp_path: Path) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    make_zone(tmp_path, "intel-rapl:0:0", "dram", 0)
    psys = make_zone(tmp_path, "intel-rapl:1", "psys", 0)
    meter = rapl.RaplMeter(root=tmp_path, prefer_psys=True)
    meter.start()
    set_energy(psys, 7_000_000)

    readings = meter.read()

    assert [r.component for r in readings] == ["psys"]
    assert readings[0].energy_j == pytest.approx(7.0)
    assert not meter.covers_dram


def test_mmio_mirror_of_a_package_is_skipped(tmp_path: Path) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    make_zone(tmp_path, "intel-rapl-mmio:0", "package-0", 0)

    counted, skipped = rapl.counted_zones(rapl.discover_zones(tmp_path))

    assert [c.zone.zone_id for c in counted] == ["intel-rapl:0"]
    assert any("MMIO" in s for s in skipped)


def test_amd_zen_package_zones_are_read(tmp_path: Path) -> None:
    pkg = make_zone(tmp_path, "intel-rapl:0", "package-0", 0)  # rapl driver on AMD Zen
    other = make_zone(tmp_path, "amd-rapl:1", "package-1", 0)
    meter = rapl.RaplMeter(root=tmp_path)
    meter.start()
    set_energy(pkg, 1_000_000)
    set_energy(other, 3_000_000)

    assert {r.component: r.energy_j for r in meter.read()} == {"cpu:0": 1.0, "cpu:1": 3.0}


def denying_opener(path: Path) -> str:
    """Behaves like sysfs for a non-root user since Linux 5.10 (energy_uj is mode 0400)."""
    if path.name == "energy_uj":
        raise PermissionError(13, "Permission denied", str(path))
    return rapl.read_text(path)


def test_permission_denied_gives_an_actionable_diagnosis(tmp_path: Path) -> None:
    server_tree(tmp_path)

    availability = rapl.diagnose(tmp_path, denying_opener)

    assert not availability.available
    assert "permission denied" in availability.detail
    assert "intel-rapl:0" in availability.detail
    assert "chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj" in availability.how_to_enable
    assert "udev" in availability.how_to_enable


def test_start_raises_meter_error_with_the_fix_when_counters_are_root_only(
    tmp_path: Path,
) -> None:
    server_tree(tmp_path)
    meter = rapl.RaplMeter(root=tmp_path, opener=denying_opener)

    with pytest.raises(MeterError, match=r"chmod o\+r"):
        meter.start()


def test_missing_powercap_in_a_container_says_how_to_mount_it(tmp_path: Path) -> None:
    availability = rapl.diagnose(tmp_path / "absent", in_container=lambda: True)

    assert not availability.available
    assert "container" in availability.detail
    assert "/sys/class/powercap" in availability.how_to_enable


def test_missing_powercap_on_a_vm_says_why(tmp_path: Path) -> None:
    availability = rapl.diagnose(tmp_path, in_container=lambda: False)

    assert not availability.available
    assert "modprobe" in availability.how_to_enable


def test_a_counter_that_fails_mid_run_is_skipped_not_raised(tmp_path: Path) -> None:
    zones = server_tree(tmp_path)
    meter = rapl.RaplMeter(root=tmp_path)
    meter.start()
    (zones["pkg1"] / "energy_uj").unlink()

    components = {r.component for r in meter.read()}

    assert "cpu:1" not in components
    assert "cpu:0" in components
    assert meter.errors


def test_rapl_is_registered_with_a_probe(tmp_path: Path) -> None:
    server_tree(tmp_path)
    meter = create_meter("rapl", root=tmp_path)
    assert meter.name == "rapl"
    assert meter.scope == "node"
    assert probe_meter("rapl").name == "rapl"


def test_a_mode_000_counter_is_denied_to_users_and_readable_by_root(tmp_path: Path) -> None:
    zones = server_tree(tmp_path)
    for zone in zones.values():
        (zone / "energy_uj").chmod(0o000)

    availability = rapl.diagnose(tmp_path)

    if os.geteuid() == 0:  # root reads mode-0400/000 files, as on a real machine
        assert availability.available
    else:
        assert not availability.available
        assert rapl.CHMOD_FIX in availability.how_to_enable


@given(st.integers(min_value=0, max_value=2**63))
def test_microjoules_convert_exactly_to_joules(energy_uj: int) -> None:
    assert uj_to_j(float(energy_uj)) == pytest.approx(energy_uj / 1e6, rel=1e-15)
    assert uj_to_j(float(energy_uj)) * UJ_PER_J == pytest.approx(energy_uj, rel=1e-15)


def test_the_same_package_under_two_drivers_is_counted_once(tmp_path: Path) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    make_zone(tmp_path, "amd-rapl:0", "package-0", 0)

    counted, skipped = rapl.counted_zones(rapl.discover_zones(tmp_path))

    assert [c.component for c in counted] == ["cpu:0"]
    assert any("mirror" in s for s in skipped)


@given(
    start_uj=st.integers(min_value=0, max_value=999_999),
    increments_uj=st.lists(st.integers(min_value=0, max_value=999_999), max_size=40),
)
def test_sum_of_reads_equals_energy_consumed_across_any_number_of_wraps(
    start_uj: int, increments_uj: list[int]
) -> None:
    max_uj = 1_000_000
    counter = {"energy_uj": start_uj}

    def opener(path: Path) -> str:
        files = {"name": "package-0", "max_energy_range_uj": str(max_uj)}
        return files.get(path.name) or str(counter["energy_uj"])

    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "intel-rapl:0").mkdir()
        # a clock that stands still: every read comes in time, so at most one wrap in between
        meter = rapl.RaplMeter(root=Path(root), opener=opener, clock=lambda: 0.0)
        meter.start()
        total_j = 0.0
        for inc in increments_uj:  # one read per increment: at most one wrap in between
            counter["energy_uj"] = (counter["energy_uj"] + inc) % max_uj
            total_j += sum(r.energy_j for r in meter.read())

    assert total_j == pytest.approx(sum(increments_uj) / 1e6, abs=1e-9)


def test_counters_that_all_read_zero_are_not_trusted(tmp_path: Path) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    make_zone(tmp_path, "intel-rapl:0:0", "dram", 0)

    availability = rapl.diagnose(tmp_path)

    assert not availability.available
    assert "reads 0" in availability.detail
