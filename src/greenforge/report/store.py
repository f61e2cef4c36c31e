"""The run store: every measured run, in one SQLite file (WAL mode) under the data directory.

A run is made of one or more *parts*: a plain run has one part (``main``); a distributed run has
one part per rank (``<host>/<rank>``), all written under the same run id, and the store adds the
parts up when it reads the run (node-wide meters are only read by one rank per node, so the sum
never counts a node twice; see :mod:`greenforge.distributed`).

Trackers upsert their part every ``flush_interval_s`` while running, so a ``kill -9`` loses at
most one flush interval. When the store is opened or listed, a part still ``running`` whose
owner process is gone (same host: pid missing or reused; other host: no flush for a long time)
is marked ``incomplete`` and keeps the energy it had reached.

Location: ``settings.resolved_home() / "runs.sqlite"`` (``GREENFORGE_HOME`` overrides). The
store uses WAL mode on local file systems; on a network file system (a store shared by the
nodes of a distributed job) it uses a rollback journal, because WAL needs all writers on one
host.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from greenforge.config import Settings
from greenforge.errors import ConfigError, StoreError
from greenforge.records import (
    EmbodiedEmissions,
    Emissions,
    RunRecord,
    RunStatus,
    run_record_from_dict,
    sum_by_component,
)
from greenforge.timeutil import utc_iso
from greenforge.units import J_PER_KWH

STORE_FILENAME = "runs.sqlite"
SCHEMA_VERSION = 1
REMOTE_STALE_MIN_S = 600.0
"""A part owned by another host is presumed dead after max(this, 20 flush intervals) silent."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS parts (
    run_id TEXT NOT NULL,
    part TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_started_s REAL,
    rank INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    started_s REAL NOT NULL,
    updated_s REAL NOT NULL,
    flush_interval_s REAL NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, part)
);
CREATE INDEX IF NOT EXISTS parts_started ON parts (started_s);
"""

CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "status",
    "started_at",
    "ended_at",
    "duration_s",
    "energy_j",
    "energy_kwh",
    "energy_low_j",
    "energy_high_j",
    "co2e_g",
    "co2e_low_g",
    "co2e_high_g",
    "pue",
    "zone",
    "intensity_source",
    "intensity_signal",
    "mean_intensity_g_per_kwh",
    "embodied_co2e_g",
    "components_j",
    "meters",
)


NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "fuse.sshfs", "ceph"}
)


def filesystem_type(path: Path) -> str:
    """The type of the file system holding ``path`` (``ext4``, ``nfs4`` ...), or ``""``."""
    import psutil

    try:
        target = str(path.resolve())
        best = ("", "")
        for part in psutil.disk_partitions(all=True):
            mount = part.mountpoint
            inside = target == mount or target.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best[0]):
                best = (mount, part.fstype)
        return best[1]
    except (OSError, RuntimeError):
        return ""


def default_store_path(settings: Settings) -> Path:
    """``<data dir>/runs.sqlite``; ``GREENFORGE_HOME`` (``settings.home``) overrides the dir."""
    return settings.resolved_home() / STORE_FILENAME


@dataclasses.dataclass(frozen=True)
class PartOwner:
    """Who writes a part: used to tell a crashed run from a running one."""

    host: str
    pid: int
    pid_started_s: float | None
    rank: int = 0

    @staticmethod
    def current(rank: int = 0) -> PartOwner:
        """The calling process."""
        import os

        return PartOwner(socket.gethostname(), os.getpid(), _pid_started_s(os.getpid()), rank)


@dataclasses.dataclass(frozen=True)
class StoredPart:
    """One part of a run as stored."""

    run_id: str
    part: str
    owner: PartOwner
    status: RunStatus
    updated_s: float
    record: RunRecord


def _pid_started_s(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def _owner_alive(owner: PartOwner, updated_s: float, flush_interval_s: float, now_s: float) -> bool:
    if owner.host != socket.gethostname():
        return now_s - updated_s < max(REMOTE_STALE_MIN_S, 20 * flush_interval_s)
    import psutil

    if not psutil.pid_exists(owner.pid):
        return False
    started = _pid_started_s(owner.pid)
    if started is None:
        return False
    # Same pid but a different process start time: the pid was reused by another program.
    return owner.pid_started_s is None or abs(started - owner.pid_started_s) < 1.0


class RunStore:
    """SQLite (WAL) store of run records; safe to share between threads and processes."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(self.path),
                timeout=busy_timeout_s,
                check_same_thread=False,
                isolation_level=None,  # autocommit; explicit transactions below
            )
            self.fs_type = filesystem_type(self.path.parent)
            # WAL needs shared memory between all writers, so one host: on a network file
            # system (a store shared by the nodes of a distributed job) use a rollback journal.
            mode = "DELETE" if self.fs_type in NETWORK_FILESYSTEMS else "WAL"
            self.journal_mode = str(
                self._conn.execute(f"PRAGMA journal_mode={mode}").fetchone()[0]
            ).lower()
            self._conn.execute("PRAGMA synchronous=NORMAL")
            with self._tx() as cur:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        cur.execute(stmt)
                cur.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot open the run store {str(self.path)!r}: {exc}. "
                "Check the directory is writable, or set GREENFORGE_HOME to another directory."
            ) from None
        self.mark_stale()

    @classmethod
    def for_settings(cls, settings: Settings) -> RunStore:
        """The store at the default location for ``settings``."""
        return cls(default_store_path(settings))

    # -- plumbing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return list(self._conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"run store {str(self.path)!r} query failed: {exc}") from None

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------

    def save_part(
        self,
        record: RunRecord,
        *,
        part: str = "main",
        owner: PartOwner | None = None,
        flush_interval_s: float = 5.0,
    ) -> None:
        """Insert or replace one part of run ``record.id`` (called at every flush)."""
        owner = owner or PartOwner.current()
        payload = json.dumps(record.to_dict(), separators=(",", ":"), default=str)
        try:
            with self._tx() as cur:
                cur.execute(
                    "INSERT INTO parts (run_id, part, host, pid, pid_started_s, rank, status, "
                    "started_s, updated_s, flush_interval_s, record) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(run_id, part) DO UPDATE SET status=excluded.status, "
                    "updated_s=excluded.updated_s, record=excluded.record",
                    (
                        record.id,
                        part,
                        owner.host,
                        owner.pid,
                        owner.pid_started_s,
                        owner.rank,
                        record.status,
                        record.started_s,
                        time.time(),
                        flush_interval_s,
                        payload,
                    ),
                )
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot write run {record.id!r} to {str(self.path)!r}: {exc}"
            ) from None

    def save(self, record: RunRecord) -> None:
        """Store a single-part run (e.g. one imported from elsewhere)."""
        self.save_part(record)

    def delete(self, run_id: str) -> int:
        """Delete a run (all its parts); returns the number of parts removed."""
        try:
            with self._tx() as cur:
                cur.execute("DELETE FROM parts WHERE run_id = ?", (run_id,))
                return int(cur.rowcount)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot delete run {run_id!r}: {exc}") from None

    def mark_stale(self, now_s: float | None = None) -> list[str]:
        """Mark parts whose owner died while ``running`` as ``incomplete``; returns run ids."""
        now_s = time.time() if now_s is None else now_s
        rows = self._query(
            "SELECT run_id, part, host, pid, pid_started_s, rank, updated_s, flush_interval_s, "
            "record FROM parts WHERE status = 'running'"
        )
        marked: list[str] = []
        for run_id, part, host, pid, pid_started, rank, updated_s, flush_s, payload in rows:
            owner = PartOwner(host, int(pid), pid_started, int(rank))
            if _owner_alive(owner, float(updated_s), float(flush_s), now_s):
                continue
            data = json.loads(payload)
            data["status"] = "incomplete"
            data["ended_s"] = float(updated_s)
            data["duration_s"] = max(float(updated_s) - float(data["started_s"]), 0.0)
            warnings = list(data.get("warnings", ()))
            warnings.append(
                f"run did not finish: its process (pid {pid} on {host}) ended without stopping "
                f"the tracker; figures cover the time until the last flush at {utc_iso(updated_s)}"
            )
            data["warnings"] = warnings
            try:
                with self._tx() as cur:
                    cur.execute(
                        "UPDATE parts SET status='incomplete', record=? "
                        "WHERE run_id=? AND part=? AND status='running'",
                        (json.dumps(data, separators=(",", ":")), run_id, part),
                    )
            except sqlite3.Error as exc:
                raise StoreError(f"cannot update run {run_id!r}: {exc}") from None
            marked.append(str(run_id))
        return sorted(set(marked))

    # -- reading --------------------------------------------------------------------------

    def parts(self, run_id: str) -> list[StoredPart]:
        """The stored parts of one run, by rank."""
        rows = self._query(
            "SELECT run_id, part, host, pid, pid_started_s, rank, status, updated_s, record "
            "FROM parts WHERE run_id = ? ORDER BY rank, part",
            (run_id,),
        )
        return [
            StoredPart(
                run_id=str(r[0]),
                part=str(r[1]),
                owner=PartOwner(str(r[2]), int(r[3]), r[4], int(r[5])),
                status=r[6],
                updated_s=float(r[7]),
                record=run_record_from_dict(json.loads(r[8])),
            )
            for r in rows
        ]

    def resolve_id(self, id_or_prefix: str) -> str:
        """The full run id for an id or a unique id prefix."""
        if not id_or_prefix:
            raise ConfigError("empty run id: pass an id or prefix from `greenforge runs list`.")
        rows = self._query(
            "SELECT DISTINCT run_id FROM parts WHERE substr(run_id, 1, ?) = ? ORDER BY run_id",
            (len(id_or_prefix), id_or_prefix),
        )
        ids = [str(r[0]) for r in rows]
        if id_or_prefix in ids:
            return id_or_prefix
        if not ids:
            raise StoreError(
                f"no run with id or prefix {id_or_prefix!r} in {str(self.path)!r}. "
                "List runs with `greenforge runs list`."
            )
        if len(ids) > 1:
            shown = ", ".join(ids[:10])
            raise ConfigError(
                f"run id prefix {id_or_prefix!r} is ambiguous (matches {shown}); "
                "give more characters."
            )
        return ids[0]

    def get(self, id_or_prefix: str) -> RunRecord:
        """One run (its parts added up), by id or unique prefix."""
        self.mark_stale()
        run_id = self.resolve_id(id_or_prefix)
        return aggregate_parts(run_id, [p.record for p in self.parts(run_id)])

    def list(self, limit: int | None = None) -> list[RunRecord]:
        """All runs, newest first (marks dead runs ``incomplete`` first)."""
        self.mark_stale()
        rows = self._query(
            "SELECT run_id, record FROM parts ORDER BY started_s DESC, run_id, rank, part"
        )
        grouped: dict[str, list[RunRecord]] = {}
        for run_id, payload in rows:
            grouped.setdefault(str(run_id), []).append(run_record_from_dict(json.loads(payload)))
        records = [aggregate_parts(rid, parts) for rid, parts in grouped.items()]
        records.sort(key=lambda r: r.started_s, reverse=True)
        return records if limit is None else records[:limit]

    def export(self, fmt: str, records: Sequence[RunRecord] | None = None) -> str:
        """All runs (or ``records``) as ``json`` (full records) or ``csv`` (one row a run)."""
        records = self.list() if records is None else records
        return export_records(records, fmt)


def export_records(records: Sequence[RunRecord], fmt: str) -> str:
    """Serialise records as ``json`` (array of full records) or ``csv`` (flat summary rows)."""
    if fmt == "json":
        return json.dumps([r.to_dict() for r in records], indent=2, default=str) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for r in records:
            writer.writerow(csv_row(r))
        return buf.getvalue()
    raise ConfigError(f"unknown export format {fmt!r}: use 'json' or 'csv'.")


def csv_row(r: RunRecord) -> dict[str, Any]:
    """One flat CSV row for a run (units in the column names)."""
    e = r.emissions
    return {
        "id": r.id,
        "name": r.name,
        "status": r.status,
        "started_at": r.started_at,
        "ended_at": "" if r.ended_s is None else utc_iso(r.ended_s),
        "duration_s": r.duration_s,
        "energy_j": r.energy_j,
        "energy_kwh": r.energy_kwh,
        "energy_low_j": r.energy_low_j,
        "energy_high_j": r.energy_high_j,
        "co2e_g": "" if e is None else e.co2e_g,
        "co2e_low_g": "" if e is None else e.low_g,
        "co2e_high_g": "" if e is None else e.high_g,
        "pue": "" if e is None else e.pue,
        "zone": "" if e is None else e.intensity.zone,
        "intensity_source": "" if e is None else e.intensity.source,
        "intensity_signal": "" if e is None else e.intensity.signal,
        "mean_intensity_g_per_kwh": "" if e is None else e.mean_intensity_g_per_kwh,
        "embodied_co2e_g": "" if r.embodied is None else r.embodied.co2e_g,
        "components_j": ";".join(f"{c.component}={c.energy_j:.6g}" for c in r.components),
        "meters": ";".join(r.meters),
    }


def _merge_status(statuses: Sequence[RunStatus]) -> RunStatus:
    for s in ("running", "failed", "incomplete"):
        if s in statuses:
            return s
    return "completed"


def aggregate_parts(run_id: str, parts: Sequence[RunRecord]) -> RunRecord:
    """Add up the parts of a (distributed) run: energy and emissions summed, time spanned.

    Parts carry energy only for what their rank measured (node meters on local rank 0, each
    device once), so the sum counts every node and device once. Windows and the prediction come
    from the first part (rank 0).
    """
    if not parts:
        raise StoreError(f"run {run_id!r} has no stored parts.")
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    started_s = min(p.started_s for p in parts)
    status = _merge_status([p.status for p in parts])
    ends = [p.started_s + p.duration_s if p.ended_s is None else p.ended_s for p in parts]
    ended_s = None if status == "running" else max(ends)
    components = sum_by_component(c for p in parts for c in p.components)
    emitted = [p.emissions for p in parts if p.emissions is not None]
    emissions: Emissions | None = None
    if emitted:
        base = emitted[0]
        co2e = sum(e.co2e_g for e in emitted)
        energy_j = sum(c.energy_j for c in components)
        mean = (
            co2e / (energy_j / J_PER_KWH * base.pue)
            if energy_j > 0
            else base.mean_intensity_g_per_kwh
        )
        emissions = dataclasses.replace(
            base,
            co2e_g=co2e,
            low_g=sum(e.low_g for e in emitted),
            high_g=sum(e.high_g for e in emitted),
            mean_intensity_g_per_kwh=mean,
        )
    bodies = [p.embodied for p in parts if p.embodied is not None]
    embodied: EmbodiedEmissions | None = None
    if bodies:
        embodied = dataclasses.replace(
            bodies[0],
            co2e_g=sum(b.co2e_g for b in bodies),
            device=f"{bodies[0].device} x{len(bodies)}" if len(bodies) > 1 else bodies[0].device,
        )
    meters: list[str] = []
    warnings: list[str] = []
    for p in parts:
        meters.extend(m for m in p.meters if m not in meters)
        warnings.extend(w for w in p.warnings if w not in warnings)
    metadata = dict(first.metadata)
    metadata["parts"] = len(parts)
    return RunRecord(
        id=run_id,
        name=first.name,
        status=status,
        started_s=started_s,
        ended_s=ended_s,
        duration_s=max(ends) - started_s,
        components=components,
        emissions=emissions,
        embodied=embodied,
        windows=first.windows,
        prediction=first.prediction,
        meters=tuple(meters),
        warnings=tuple(warnings),
        metadata=metadata,
    )
