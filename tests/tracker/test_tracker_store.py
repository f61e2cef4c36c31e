"""The run store: SQLite in WAL mode, round-trips records, adds up parts, marks dead runs."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from greenforge.config import load_settings
from greenforge.errors import ConfigError, StoreError
from greenforge.records import (
    ComponentTotal,
    EmbodiedEmissions,
    Emissions,
    IntensityProvenance,
    Prediction,
    RunRecord,
    WindowRecord,
)
from greenforge.report.store import (
    CSV_COLUMNS,
    PartOwner,
    RunStore,
    aggregate_parts,
    default_store_path,
    export_records,
    filesystem_type,
)


def make_record(
    run_id: str = "abc123def456",
    energy_j: float = 3600.0,
    status: str = "completed",
    started_s: float = 1_700_000_000.0,
    co2e_g: float = 0.4,
) -> RunRecord:
    return RunRecord(
        id=run_id,
        name="train",
        status=status,  # type: ignore[arg-type]
        started_s=started_s,
        ended_s=None if status == "running" else started_s + 10.0,
        duration_s=10.0,
        components=(
            ComponentTotal("cpu", energy_j * 0.75, energy_j * 0.5, energy_j, "model:cpu-tdp"),
            ComponentTotal("ram", energy_j * 0.25, energy_j * 0.2, energy_j * 0.3, "model:ram"),
        ),
        emissions=Emissions(
            co2e_g=co2e_g,
            low_g=co2e_g * 0.6,
            high_g=co2e_g * 1.2,
            pue=1.0,
            pue_source="default:local-machine",
            intensity=IntensityProvenance("static:DE", "DE"),
            mean_intensity_g_per_kwh=400.0,
        ),
        embodied=EmbodiedEmissions(0.01, "machine", 300.0, 1.26e8, 1.0, "settings.embodied_kg"),
        windows=(WindowRecord("epoch-1", "epoch-1", started_s, started_s + 5, 1800.0, 0.2),),
        prediction=Prediction(1, 2, 3600.0, 0.4, 10.0),
        meters=("fake: injected",),
        warnings=(),
        metadata={"exit_code": 0},
    )


def test_the_store_uses_sqlite_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_record_round_trips_through_the_store(tmp_path: Path) -> None:
    record = make_record()
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.save(record)
    with RunStore(tmp_path / "runs.sqlite") as reopened:
        assert reopened.get(record.id) == record
        assert [r.id for r in reopened.list()] == [record.id]


def test_runs_are_found_by_unique_id_prefix(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.save(make_record("aaaa11110000"))
        store.save(make_record("aaaa22220000"))
        assert store.get("aaaa2").id == "aaaa22220000"
        with pytest.raises(ConfigError, match="ambiguous"):
            store.get("aaaa")
        with pytest.raises(StoreError, match="no run with id or prefix 'zzz'"):
            store.get("zzz")


def test_runs_are_listed_newest_first_and_limited(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        for i in range(3):
            store.save(make_record(f"run{i}", started_s=1_700_000_000.0 + i))
        assert [r.id for r in store.list()] == ["run2", "run1", "run0"]
        assert [r.id for r in store.list(limit=1)] == ["run2"]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_running_part_whose_process_died_is_marked_incomplete(tmp_path: Path) -> None:
    owner = PartOwner(PartOwner.current().host, dead_pid(), 1.0)
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.save_part(make_record(status="running", energy_j=500.0), owner=owner)
    with RunStore(tmp_path / "runs.sqlite") as reopened:
        record = reopened.get("abc123")
    assert record.status == "incomplete"
    assert record.energy_j == pytest.approx(500.0)
    assert any("did not finish" in w for w in record.warnings)


def test_a_reused_pid_does_not_keep_a_dead_run_running(tmp_path: Path) -> None:
    me = PartOwner.current()
    assert me.pid_started_s is not None
    impostor = PartOwner(me.host, me.pid, me.pid_started_s - 3600.0)
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.save_part(make_record(status="running"), owner=impostor)
        assert store.get("abc123").status == "incomplete"


def test_a_live_owner_keeps_its_run_running(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.save_part(make_record(status="running"), owner=PartOwner.current())
        assert store.get("abc123").status == "running"


def test_remote_parts_are_judged_by_their_last_flush(tmp_path: Path) -> None:
    remote = PartOwner("some-other-node", 4242, None)
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.save_part(make_record(status="running"), owner=remote)
        assert store.mark_stale() == []
        assert store.mark_stale(now_s=4_000_000_000.0) == ["abc123def456"]
        assert store.get("abc123").status == "incomplete"


def test_parts_of_a_distributed_run_add_up() -> None:
    rank0 = make_record(energy_j=1000.0, co2e_g=0.1)
    rank1 = RunRecord(
        id=rank0.id,
        name="train",
        status="completed",
        started_s=rank0.started_s + 1,
        ended_s=rank0.started_s + 12,
        duration_s=11.0,
        components=(ComponentTotal("gpu:0", 500.0, 450.0, 550.0, "nvml-energy"),),
        emissions=Emissions(
            0.05, 0.045, 0.055, 1.0, "x", IntensityProvenance("static:DE", "DE"), 360.0
        ),
        embodied=None,
    )
    total = aggregate_parts(rank0.id, [rank0, rank1])
    assert total.energy_j == pytest.approx(1500.0)
    assert total.co2e_g == pytest.approx(0.15)
    assert total.duration_s == pytest.approx(12.0)
    assert {c.component for c in total.components} == {"cpu", "ram", "gpu:0"}
    assert total.embodied == rank0.embodied
    assert total.metadata["parts"] == 2
    assert total.emissions is not None
    assert total.emissions.mean_intensity_g_per_kwh == pytest.approx(0.15 / (1500 / 3.6e6))


def test_a_run_with_any_running_part_is_running() -> None:
    done = make_record()
    going = make_record(status="running")
    assert aggregate_parts(done.id, [done, going]).status == "running"
    assert aggregate_parts(done.id, [done, make_record(status="failed")]).status == "failed"


def test_export_json_holds_full_records(tmp_path: Path) -> None:
    record = make_record()
    data = json.loads(export_records([record], "json"))
    assert data[0]["id"] == record.id
    assert data[0]["energy_j"] == pytest.approx(3600.0)
    assert data[0]["components"][0]["method"] == "model:cpu-tdp"


def test_export_csv_has_one_row_a_run_with_units_in_headers() -> None:
    rows = list(csv.DictReader(io.StringIO(export_records([make_record()], "csv"))))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert float(rows[0]["energy_kwh"]) == pytest.approx(0.001)
    assert rows[0]["zone"] == "DE"
    assert rows[0]["components_j"] == "cpu=2700;ram=900"


def test_unknown_export_format_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="'xml'"):
        export_records([], "xml")


def test_the_store_lives_in_greenforge_home(tmp_path: Path) -> None:
    settings = load_settings(env={"GREENFORGE_HOME": str(tmp_path / "gf")})
    assert default_store_path(settings) == tmp_path / "gf" / "runs.sqlite"


def test_an_unwritable_store_location_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="GREENFORGE_HOME"):
        RunStore(blocker / "runs.sqlite")


@hypothesis_settings(deadline=None)  # timing varies on shared CI machines
@example(energies=[0.0, 5e-324])  # a subnormal energy: its kWh underflow to 0
@given(energies=st.lists(st.floats(0.0, 1e9), min_size=1, max_size=8))
def test_aggregating_parts_adds_their_energy_and_emissions(energies: list[float]) -> None:
    parts = [
        make_record(energy_j=e, co2e_g=e / 3.6e6 * 400.0, started_s=1_700_000_000.0 + i)
        for i, e in enumerate(energies)
    ]
    total = aggregate_parts("run", parts)
    assert total.energy_j == pytest.approx(sum(energies), rel=1e-9, abs=1e-6)
    assert total.co2e_g == pytest.approx(sum(energies) / 3.6e6 * 400.0, rel=1e-9, abs=1e-9)
    assert total.started_s == 1_700_000_000.0
    assert total.energy_low_j <= total.energy_j <= total.energy_high_j


def test_a_local_store_uses_wal_and_knows_its_file_system(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        assert store.journal_mode == "wal"
        assert store.fs_type == filesystem_type(tmp_path)
    assert filesystem_type(Path("/")) != ""
