"""The run store contains damage: one bad record is skipped, a corrupt file is moved aside (new
runs are never lost), corruption is named as such, and reading never writes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from greenforge.cli.app import main
from greenforge.config import load_settings
from greenforge.errors import StoreError
from greenforge.records import ComponentTotal, RunRecord
from greenforge.report.store import PartOwner, RunStore, corrupt_copies, move_aside_corrupt
from greenforge.testing import FakeMeter, StaticIntensity
from greenforge.tracker import Tracker

PY = sys.executable


def record(run_id: str, status: str = "completed", started_s: float = 1.7e9) -> RunRecord:
    return RunRecord(
        id=run_id,
        name="train",
        status=status,  # type: ignore[arg-type]
        started_s=started_s,
        ended_s=None if status == "running" else started_s + 10.0,
        duration_s=10.0,
        components=(ComponentTotal("cpu", 100.0, 90.0, 110.0, "fake"),),
        emissions=None,
        embodied=None,
        windows=(),
        prediction=None,
        meters=(),
        warnings=(),
        metadata={},
    )


def dead_owner() -> PartOwner:
    proc = subprocess.Popen([PY, "-c", "pass"])
    proc.wait()
    return PartOwner(PartOwner.current().host, proc.pid, 1.0)


def corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an SQLite database, it was overwritten\n" * 200)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GREENFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GREENFORGE_ZONE", raising=False)
    return tmp_path / "home" / "runs.sqlite"


def break_record(path: Path, run_id: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE parts SET record = ? WHERE run_id = ?", ('{"id": "broken', run_id))
    conn.close()


def test_one_unreadable_record_is_skipped_and_named(store_path: Path) -> None:
    with RunStore(store_path) as store:
        store.save(record("good00000001", started_s=1.7e9))
        store.save(record("bad000000002", started_s=1.7e9 + 1))
    break_record(store_path, "bad000000002")

    with RunStore(store_path, read_only=True) as reader:
        listed = reader.list()
        assert [r.id for r in listed] == ["good00000001"]
        assert any("bad000000002" in p and "unreadable" in p for p in reader.problems)
        with pytest.raises(StoreError, match="unreadable"):
            reader.get("bad000000002")


def test_runs_list_skips_an_unreadable_record_and_says_which(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with RunStore(store_path) as store:
        store.save(record("good00000001"))
        store.save(record("bad000000002", started_s=1.7e9 + 1))
    break_record(store_path, "bad000000002")

    assert main(["runs", "list", "--json"]) == 0
    captured = capsys.readouterr()
    assert [r["id"] for r in json.loads(captured.out)] == ["good00000001"]
    assert "bad000000002" in captured.err


def test_a_corrupt_store_is_moved_aside_and_a_fresh_one_started(store_path: Path) -> None:
    corrupt(store_path)
    before = digest(store_path)

    with RunStore(store_path) as store:
        store.save(record("new000000001"))
        assert store.recovered_from is not None
        assert store.warnings
        assert "corrupt" in store.warnings[0]

    [moved] = corrupt_copies(store_path)
    assert moved.name.startswith("runs.sqlite.corrupt-")
    assert digest(moved) == before  # the old file is kept, untouched, for recovery
    with RunStore(store_path, read_only=True) as reader:
        assert [r.id for r in reader.list()] == ["new000000001"]


def test_reading_a_corrupt_store_names_corruption_not_permissions(store_path: Path) -> None:
    corrupt(store_path)
    with pytest.raises(StoreError) as info:
        RunStore(store_path, read_only=True)
    message = str(info.value)
    assert "corrupt" in message
    assert "writable" not in message


def test_a_tracker_on_a_corrupt_store_keeps_its_run_and_says_so(
    store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corrupt(store_path)
    settings = load_settings(home=store_path.parent, interval_s=0.02, flush_interval_s=0.05)

    tracker = Tracker(settings, zone="DE", meters=[FakeMeter(10.0)], provider=StaticIntensity())
    tracker.start()
    rec = tracker.stop()

    assert any("corrupt" in w and "moved it to" in w for w in rec.warnings)
    assert any("corrupt" in m for m in caplog.messages)  # loud: logged, not only stored
    with RunStore(store_path, read_only=True) as reader:
        stored = reader.get(rec.id)
    assert any("corrupt" in w for w in stored.warnings)


def test_greenforge_run_on_a_corrupt_store_stores_the_run_and_warns(
    store_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    corrupt(store_path)

    assert main(["run", "--zone", "DE", "--", PY, "-c", "pass"]) == 0
    err = " ".join(capfd.readouterr().err.split())
    assert "corrupt" in err
    assert corrupt_copies(store_path)

    assert main(["runs", "list", "--json"]) == 0
    assert len(json.loads(capfd.readouterr().out)) == 1


def test_runs_list_never_writes_to_the_store(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with RunStore(store_path) as store:
        store.save_part(record("dead00000001", status="running"), owner=dead_owner())
    before = digest(store_path)

    assert main(["runs", "list", "--json"]) == 0
    [run] = json.loads(capsys.readouterr().out)
    assert run["status"] == "incomplete"  # computed on read ...
    assert main(["runs", "show", "dead00000001", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "incomplete"

    assert digest(store_path) == before  # ... and nothing written
    conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    [(status,)] = conn.execute("SELECT status FROM parts").fetchall()
    conn.close()
    assert status == "running"


def test_a_read_only_store_that_does_not_exist_is_empty_and_not_created(
    store_path: Path,
) -> None:
    with RunStore(store_path, read_only=True) as reader:
        assert reader.list() == []
    assert not store_path.exists()
    with pytest.raises(StoreError, match="read-only"):
        RunStore(store_path, read_only=True).save(record("x00000000001"))


def test_moving_aside_keeps_the_wal_with_its_store(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"x")
    (tmp_path / "runs.sqlite-wal").write_bytes(b"w")
    moved = move_aside_corrupt(path, now_s=0.0)
    assert moved.name == "runs.sqlite.corrupt-19700101T000000Z"
    assert (tmp_path / "runs.sqlite.corrupt-19700101T000000Z-wal").read_bytes() == b"w"
    assert not path.exists()
    assert not (tmp_path / "runs.sqlite-wal").exists()
    again = tmp_path / "runs.sqlite"
    again.write_bytes(b"y")
    assert move_aside_corrupt(again, now_s=0.0).name.endswith("-2")  # never overwrites


def test_doctor_reports_a_corrupt_store_and_earlier_corrupt_copies(store_path: Path) -> None:
    from greenforge.cli.doctor import collect

    corrupt(store_path)
    report = collect()
    assert report["store"]["ok"] is False
    assert "corrupt" in report["store"]["status"]
    assert any("corrupt" in p for p in report["problems"])

    RunStore(store_path).close()  # a writer moves it aside
    report = collect()
    assert report["store"]["ok"] is True
    assert len(report["store"]["corrupt_copies"]) == 1
    assert any("moved aside" in w for w in report["warnings"])


def overwrite_in_place(path: Path) -> None:
    """Damage the open file itself (same inode), as a disk or a stray write would."""
    with path.open("r+b") as fh:
        fh.write(b"garbage, not SQLite pages " * 400)
    for side in ("-wal", "-shm"):
        extra = path.with_name(path.name + side)
        if extra.exists():
            with extra.open("r+b") as fh:
                fh.write(b"garbage " * 100)


def test_a_store_damaged_while_open_recovers_on_the_next_write(store_path: Path) -> None:
    with RunStore(store_path) as store:
        store.save(record("old000000001"))
        overwrite_in_place(store_path)
        store.save(record("new000000001"))
        assert any("corrupt" in w for w in store.warnings)
    assert len(corrupt_copies(store_path)) == 1
    with RunStore(store_path, read_only=True) as reader:
        assert [r.id for r in reader.list()] == ["new000000001"]


def test_a_store_another_writer_already_replaced_is_not_moved_aside_again(
    store_path: Path,
) -> None:
    first = RunStore(store_path)
    second = RunStore(store_path)
    try:
        first.save(record("aaa000000001"))
        overwrite_in_place(store_path)
        first.save(record("bbb000000002", started_s=1.7e9 + 1))  # moves it aside, starts afresh
        second.save(record("ccc000000003", started_s=1.7e9 + 2))  # finds the fresh store
    finally:
        first.close()
        second.close()
    assert len(corrupt_copies(store_path)) == 1
    with RunStore(store_path, read_only=True) as reader:
        assert {r.id for r in reader.list()} == {"bbb000000002", "ccc000000003"}


def test_json_output_is_valid_even_with_a_non_finite_number_stored(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = dataclasses.replace(
        record("nan000000001"),
        components=(ComponentTotal("cpu", math.nan, 0.0, math.inf, "fake"),),
    )
    with RunStore(store_path) as store:
        store.save(odd)

    def strict(text: str) -> Any:
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON: {c}"))

    for argv in (
        ["runs", "list", "--json"],
        ["runs", "show", "nan000000001", "--json"],
        ["runs", "export", "--format", "json"],
    ):
        assert main(argv) == 0
        assert strict(capsys.readouterr().out)
