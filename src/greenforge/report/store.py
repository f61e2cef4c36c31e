"""The run store: every measured run, in one SQLite file (WAL mode) under the data directory.

A run is made of one or more *parts*: a plain run has one part (``main``); a distributed run has
one part per rank (``<host>/<rank>``), all written under the same run id, and the store adds the
parts up when it reads the run (node-wide meters are only read by one rank per node, so the sum
never counts a node twice; see :mod:`greenforge.distributed`).

Trackers upsert their part every ``flush_interval_s`` while running, so a ``kill -9`` loses at
most one flush interval. A part still ``running`` whose owner process is gone (same host: pid
missing or reused; other host: no flush for a long time) is ``incomplete`` and keeps the energy
it had reached: a writable store marks it so when it opens; a read-only store
(``read_only=True``, what ``greenforge runs`` uses) computes the same on read and never writes.

Damage is contained: one unreadable record is skipped (``RunStore.problems`` names the run),
and a store that SQLite reports as corrupt is moved aside to ``runs.sqlite.corrupt-<UTC time>``
when opened for writing, so new runs land in a fresh store (``RunStore.warnings`` says so).

Location: ``settings.resolved_home() / "runs.sqlite"`` (``GREENFORGE_HOME`` overrides). The
store uses WAL mode on local file systems; on a network file system (a store shared by the
nodes of a distributed job) it uses a rollback journal, because WAL needs all writers on one
host.
"""

from __future__ import annotations

import array
import contextlib
import csv
import dataclasses
import io
import json
import logging
import socket
import sqlite3
import sys
import threading
import time
import urllib.parse
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
    WindowColumns,
    WindowRecord,
    meter_summary,
    run_record_from_dict,
    sum_by_component,
)
from greenforge.timeutil import utc_iso
from greenforge.units import J_PER_KWH

log = logging.getLogger("greenforge.store")

STORE_FILENAME = "runs.sqlite"
CORRUPT_SUFFIX = ".corrupt-"
"""A corrupt store is moved aside to ``runs.sqlite.corrupt-<UTC time>`` (and its -wal/-shm)."""
_CORRUPT_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
SCHEMA_VERSION = 2
"""2: window records in ``window_chunks`` (version 1 kept them in the record's JSON, which
is still read)."""
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
CREATE TABLE IF NOT EXISTS window_chunks (
    run_id TEXT NOT NULL,
    part TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    paths TEXT NOT NULL,
    numbers BLOB NOT NULL,
    PRIMARY KEY (run_id, part, chunk)
);
"""
"""A part's windows are stored in chunks, one per save that finished windows, in the order
they closed: ``paths`` a JSON list of window paths, ``numbers`` the float64 (little-endian)
columns start_s, end_s, energy_j and co2e_g (NaN: unknown) one after another. A chunk costs
~0.2 us a window to write and read, so a tracker's stop does not grow with its windows."""


def pack_windows(cols: WindowColumns) -> tuple[str, bytes]:
    """Returns the ``(paths, numbers)`` of one ``window_chunks`` row for ``cols``."""
    numbers = array.array("d", cols.start_s)
    numbers.extend(cols.end_s)
    numbers.extend(cols.energy_j)
    nan = float("nan")
    numbers.extend([nan if g is None else g for g in cols.co2e_g])
    if sys.byteorder == "big":
        numbers.byteswap()
    return json.dumps(cols.paths, separators=(",", ":")), numbers.tobytes()


def unpack_windows(paths_text: str, blob: bytes) -> list[WindowRecord]:
    """Returns the window records of one ``window_chunks`` row (ValueError when damaged)."""
    paths = json.loads(paths_text)
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ValueError("window paths are not a list of names")
    numbers = array.array("d")
    numbers.frombytes(bytes(blob))
    if sys.byteorder == "big":
        numbers.byteswap()
    n = len(paths)
    if len(numbers) != 4 * n:
        raise ValueError(f"{len(numbers)} window numbers for {n} windows (expected {4 * n})")
    values = numbers.tolist()
    co2e: list[float | None] = [None if g != g else g for g in values[3 * n :]]
    names = [p.rpartition("/")[2] for p in paths]
    return list(
        map(WindowRecord, names, paths, values[:n], values[n : 2 * n], values[2 * n : 3 * n], co2e)
    )


def _with_windows(record: RunRecord, found: list[WindowRecord]) -> RunRecord:
    """``record`` with the windows of its chunks added, by start time, outer ones first."""
    if not found:
        return record
    merged = [*record.windows, *found]
    keys = [(w.start_s, w.path.count("/")) for w in merged]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return dataclasses.replace(record, windows=tuple(map(merged.__getitem__, order)))


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
    "attribution",
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


def _is_corruption(exc: sqlite3.Error) -> bool:
    """True when SQLite says the file is damaged or not a database (not merely busy/locked)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _CORRUPT_CODES:
        return True
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def _corrupt_message(path: Path, exc: BaseException) -> str:
    return (
        f"the run store {str(path)!r} is corrupt ({exc}). The next `greenforge run` or tracker "
        "moves it aside to runs.sqlite.corrupt-<time> and starts a fresh store; to keep reading "
        "old runs, restore the file from a backup."
    )


def move_aside_corrupt(path: Path, now_s: float | None = None) -> Path:
    """Rename a corrupt store (and its -wal/-shm) to ``<name>.corrupt-<UTC time>``; returns it."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now_s is None else now_s))
    target = path.with_name(f"{path.name}{CORRUPT_SUFFIX}{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}{CORRUPT_SUFFIX}{stamp}-{n}")
    path.replace(target)
    for side in ("-wal", "-shm", "-journal"):
        extra = path.with_name(path.name + side)
        if extra.exists():
            # A WAL left beside a fresh store would be replayed into it: it goes with its store.
            extra.replace(target.with_name(target.name + side))
    return target


def corrupt_copies(path: Path) -> list[Path]:
    """Stores moved aside as corrupt next to ``path``, oldest first."""
    try:
        found = [p for p in path.parent.glob(f"{path.name}{CORRUPT_SUFFIX}*") if p.is_file()]
    except OSError:
        return []
    return sorted(p for p in found if not p.name.endswith(("-wal", "-shm", "-journal")))


class RunStore:
    """SQLite (WAL) store of run records; safe to share between threads and processes.

    ``read_only=True`` opens the file with SQLite's ``mode=ro`` (a missing file reads as an
    empty store and is not created): listing and showing runs never writes.
    """

    def __init__(
        self, path: str | Path, *, busy_timeout_s: float = 30.0, read_only: bool = False
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.journal_mode = ""
        self.fs_type = ""
        self.warnings: list[str] = []
        """Loud findings about the store itself (e.g. a corrupt store moved aside)."""
        self.problems: list[str] = []
        """Records skipped while reading (unreadable), one line each naming the run."""
        self.recovered_from: Path | None = None
        """Where a corrupt store was moved to when this one was opened, if that happened."""
        self._window_table = not read_only
        """The file has ``window_chunks`` (a read-only view of a version 1 store has not)."""
        if read_only:
            self._open_read_only()
            return
        try:
            self._open_writable()
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise self._open_error(exc) from None
            self._recover(exc)
        except (sqlite3.Error, OSError) as exc:
            raise self._open_error(exc) from None
        self.mark_stale()

    @classmethod
    def for_settings(cls, settings: Settings, *, read_only: bool = False) -> RunStore:
        """The store at the default location for ``settings``."""
        return cls(default_store_path(settings), read_only=read_only)

    # -- plumbing -------------------------------------------------------------------------

    def _open_error(self, exc: BaseException) -> StoreError:
        if isinstance(exc, sqlite3.DatabaseError) and _is_corruption(exc):
            return StoreError(_corrupt_message(self.path, exc))
        return StoreError(
            f"cannot open the run store {str(self.path)!r}: {exc}. "
            "Check the directory is writable, or set GREENFORGE_HOME to another directory."
        )

    def _open_read_only(self) -> None:
        if not self.path.exists():
            return  # nothing stored yet: an empty store, and no file created
        uri = "file:" + urllib.parse.quote(str(self.path)) + "?mode=ro"
        try:
            conn = sqlite3.connect(
                uri,
                uri=True,
                timeout=self._busy_timeout_s,
                check_same_thread=False,
                isolation_level=None,
            )
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot read the run store {str(self.path)!r}: {exc}. "
                "Check the file is readable, or set GREENFORGE_HOME to another directory."
            ) from None
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master").fetchall()}
        except sqlite3.Error as exc:
            conn.close()
            if _is_corruption(exc):
                raise StoreError(_corrupt_message(self.path, exc)) from None
            raise StoreError(f"cannot read the run store {str(self.path)!r}: {exc}") from None
        if "parts" not in tables:  # created but never written: an empty store
            conn.close()
            return
        self._window_table = "window_chunks" in tables
        self._conn = conn

    def _open_writable(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(self.path),
            timeout=self._busy_timeout_s,
            check_same_thread=False,
            isolation_level=None,  # autocommit; explicit transactions below
        )
        self.fs_type = filesystem_type(self.path.parent)
        # WAL needs shared memory between all writers, so one host: on a network file
        # system (a store shared by the nodes of a distributed job) use a rollback journal.
        mode = "DELETE" if self.fs_type in NETWORK_FILESYSTEMS else "WAL"
        current = str(self._conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if current != mode.lower():
            self.journal_mode = self._set_journal_mode(mode)
        else:
            self.journal_mode = current
        # NORMAL: a commit appends to the WAL without an fsync, so a flush or the stop never
        # waits on the disk; a commit survives a crash or kill -9 of the process (the OS has
        # it), and only a power loss or OS crash can drop the latest commits (never corrupt
        # the store). The WAL is fsynced when it is checkpointed (at close or every 1000 pages).
        # FULL would fsync every flush for a guarantee a measurement record does not need.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return  # up to date: no write transaction on every start
        with self._tx() as cur:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    cur.execute(stmt)
            cur.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _set_journal_mode(self, mode: str) -> str:
        # Changing the journal mode takes an exclusive lock and SQLite does not wait for it
        # (no busy handler): retry while another connection (a tracker flushing) holds it.
        assert self._conn is not None
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                return str(self._conn.execute(f"PRAGMA journal_mode={mode}").fetchone()[0]).lower()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _healthy_now(self) -> bool:
        """Reopen the file now at :attr:`path` and check it whole (``PRAGMA quick_check``):
        another process may already have replaced a corrupt store with a fresh one."""
        try:
            self._open_writable()
            assert self._conn is not None
            rows = self._conn.execute("PRAGMA quick_check").fetchall()
        except (sqlite3.Error, OSError):
            rows = []
        if [tuple(r) for r in rows] == [("ok",)]:
            return True
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        return False

    def _recover(self, exc: sqlite3.Error, *, recheck: bool = False) -> None:
        """Move a corrupt store aside and open a fresh one in its place (loudly).

        With ``recheck`` (a write failed on a store that opened fine) the file at the path is
        checked first, so a store another process already replaced is not moved aside again.
        """
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        if recheck and self._healthy_now():
            return
        try:
            moved = move_aside_corrupt(self.path)
            self._open_writable()
        except (sqlite3.Error, OSError) as again:
            raise StoreError(
                f"{_corrupt_message(self.path, exc)} Moving it aside failed: {again}."
            ) from None
        self.recovered_from = moved
        message = (
            f"the run store {str(self.path)!r} was corrupt ({exc}): moved it to "
            f"{str(moved)!r} and started a fresh store; runs stored before are in that file"
        )
        self.warnings.append(message)
        log.warning("greenforge: %s", message)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            if self._conn is None:
                raise StoreError(f"the run store {str(self.path)!r} is closed or read-only.")
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
        if self._conn is None and self.read_only:
            self._open_read_only()  # the store may have been created since
        try:
            with self._lock:
                if self._conn is None:
                    return []  # read-only view of a store that does not exist yet
                return list(self._conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            if _is_corruption(exc):
                raise StoreError(_corrupt_message(self.path, exc)) from None
            raise StoreError(f"run store {str(self.path)!r} query failed: {exc}") from None

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            if self._conn is not None:
                self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------

    def _require_writable(self) -> None:
        if self.read_only:
            raise StoreError(
                f"the run store {str(self.path)!r} was opened read-only; open it without "
                "read_only=True to write."
            )

    def save_part(
        self,
        record: RunRecord,
        *,
        part: str = "main",
        owner: PartOwner | None = None,
        flush_interval_s: float = 5.0,
        windows: WindowColumns | None = None,
        replace_windows: bool = False,
    ) -> None:
        """Insert or replace one part of run ``record.id`` (called at every flush).

        ``windows`` (more windows of this part, in closing order) are added in one chunk in
        the same transaction, beside those stored before (``replace_windows``: instead of
        them); reads return them in the record's ``windows``. A store found corrupt while
        writing is moved aside and the part written to a fresh one (see :attr:`warnings`), so
        a damaged file never swallows new runs.
        """
        self._require_writable()
        chunk = pack_windows(windows) if windows else None
        owner = owner or PartOwner.current()
        payload = json.dumps(record.to_dict(), separators=(",", ":"), default=str)
        row = (
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
        )
        for attempt in (1, 2):
            try:
                with self._tx() as cur:
                    cur.execute(
                        "INSERT INTO parts (run_id, part, host, pid, pid_started_s, rank, "
                        "status, started_s, updated_s, flush_interval_s, record) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                        "ON CONFLICT(run_id, part) DO UPDATE SET status=excluded.status, "
                        "updated_s=excluded.updated_s, record=excluded.record",
                        row,
                    )
                    if replace_windows:
                        cur.execute(
                            "DELETE FROM window_chunks WHERE run_id = ? AND part = ?",
                            (record.id, part),
                        )
                    if chunk is not None:
                        cur.execute(
                            "INSERT INTO window_chunks (run_id, part, chunk, paths, numbers) "
                            "SELECT ?, ?, COALESCE(MAX(chunk) + 1, 0), ?, ? FROM window_chunks "
                            "WHERE run_id = ? AND part = ?",
                            (record.id, part, chunk[0], chunk[1], record.id, part),
                        )
                return
            except sqlite3.Error as exc:
                if attempt == 1 and _is_corruption(exc):
                    self._recover(exc, recheck=True)
                    continue
                if _is_corruption(exc):
                    raise StoreError(_corrupt_message(self.path, exc)) from None
                raise StoreError(
                    f"cannot write run {record.id!r} to {str(self.path)!r}: {exc}"
                ) from None

    def save(self, record: RunRecord) -> None:
        """Store a single-part run (e.g. one imported from elsewhere)."""
        self.save_part(record)

    def delete(self, run_id: str) -> int:
        """Delete a run (all its parts); returns the number of parts removed."""
        self._require_writable()
        try:
            with self._tx() as cur:
                cur.execute("DELETE FROM window_chunks WHERE run_id = ?", (run_id,))
                cur.execute("DELETE FROM parts WHERE run_id = ?", (run_id,))
                return int(cur.rowcount)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot delete run {run_id!r}: {exc}") from None

    def mark_stale(self, now_s: float | None = None) -> list[str]:
        """Mark parts whose owner died while ``running`` as ``incomplete``; returns run ids.

        A write: a read-only store returns ``[]`` (its reads compute the same status).
        """
        if self.read_only:
            return []
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
            try:
                data = _as_incomplete(json.loads(payload), owner, float(updated_s))
            except (ValueError, TypeError, KeyError):
                continue  # unreadable: reads skip it and say so
            try:
                with self._tx() as cur:
                    cur.execute(
                        "UPDATE parts SET status='incomplete', record=? "
                        "WHERE run_id=? AND part=? AND status='running'",
                        (json.dumps(data, separators=(",", ":")), run_id, part),
                    )
            except sqlite3.Error as exc:
                if _is_corruption(exc):
                    raise StoreError(_corrupt_message(self.path, exc)) from None
                raise StoreError(f"cannot update run {run_id!r}: {exc}") from None
            marked.append(str(run_id))
        return sorted(set(marked))

    # -- reading --------------------------------------------------------------------------

    _PART_COLUMNS = (
        "run_id, part, host, pid, pid_started_s, rank, status, updated_s, flush_interval_s, record"
    )

    def _window_chunks(self, run_id: str | None = None) -> dict[tuple[str, str], list[Any]]:
        """The stored window chunks of one run (or all runs), by ``(run_id, part)``."""
        if not self._window_table:
            return {}
        where = "" if run_id is None else " WHERE run_id = ?"
        rows = self._query(
            f"SELECT run_id, part, paths, numbers FROM window_chunks{where} "
            "ORDER BY run_id, part, chunk",
            () if run_id is None else (run_id,),
        )
        out: dict[tuple[str, str], list[Any]] = {}
        for rid, part, paths, numbers in rows:
            out.setdefault((str(rid), str(part)), []).append((paths, numbers))
        return out

    def _decode(
        self, row: tuple[Any, ...], now_s: float, chunks: Sequence[Any] = ()
    ) -> StoredPart | None:
        """A stored row (and its window ``chunks``) as a part (dead ``running`` owners read
        as ``incomplete``), or None when it cannot be read (noted in :attr:`problems`)."""
        run_id, part, host, pid, pid_started, rank, status, updated_s, flush_s, payload = row
        try:
            owner = PartOwner(str(host), int(pid), pid_started, int(rank))
            data = json.loads(payload)
            if status == "running" and not _owner_alive(
                owner, float(updated_s), float(flush_s), now_s
            ):
                data = _as_incomplete(data, owner, float(updated_s))
                status = "incomplete"
            record = run_record_from_dict(data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self._problem(f"run {run_id} (part {part}) has an unreadable record", exc, "skipped it")
            return None
        found: list[WindowRecord] = []
        for paths, numbers in chunks:
            try:
                found.extend(unpack_windows(paths, numbers))
            except (ValueError, TypeError) as exc:  # the run's figures are still good
                self._problem(
                    f"run {run_id} (part {part}) has unreadable window records",
                    exc,
                    "shown without them",
                )
        record = _with_windows(record, found)
        return StoredPart(str(run_id), str(part), owner, status, float(updated_s), record)

    def _problem(self, what: str, exc: Exception, action: str) -> None:
        """Note one read problem in :attr:`problems` (once)."""
        message = f"{what} ({type(exc).__name__}: {exc}); {action}"
        if message not in self.problems:
            self.problems.append(message)

    def parts(self, run_id: str) -> list[StoredPart]:
        """The stored parts of one run, by rank (unreadable parts skipped, see ``problems``)."""
        rows = self._query(
            f"SELECT {self._PART_COLUMNS} FROM parts WHERE run_id = ? ORDER BY rank, part",
            (run_id,),
        )
        now_s = time.time()
        chunks = self._window_chunks(run_id) if rows else {}
        decoded = (self._decode(r, now_s, chunks.get((str(r[0]), str(r[1])), ())) for r in rows)
        return [p for p in decoded if p is not None]

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
        run_id = self.resolve_id(id_or_prefix)
        parts = self.parts(run_id)
        if not parts:
            raise StoreError(
                f"run {run_id!r} is stored but its record is unreadable "
                f"({'; '.join(self.problems) or 'no readable part'}): the store may be "
                "damaged. Other runs are unaffected."
            )
        return aggregate_parts(run_id, [p.record for p in parts])

    def list(self, limit: int | None = None) -> list[RunRecord]:
        """All runs, newest first; a dead owner's ``running`` part reads as ``incomplete``.

        An unreadable record is skipped (and named in :attr:`problems`), never fatal.
        """
        rows = self._query(
            f"SELECT {self._PART_COLUMNS} FROM parts ORDER BY started_s DESC, run_id, rank, part"
        )
        now_s = time.time()
        chunks = self._window_chunks() if rows else {}
        grouped: dict[str, list[RunRecord]] = {}
        for row in rows:
            stored = self._decode(row, now_s, chunks.get((str(row[0]), str(row[1])), ()))
            if stored is not None:
                grouped.setdefault(stored.run_id, []).append(stored.record)
        records = [aggregate_parts(rid, parts) for rid, parts in grouped.items()]
        records.sort(key=lambda r: r.started_s, reverse=True)
        return records if limit is None else records[:limit]

    def export(self, fmt: str, records: Sequence[RunRecord] | None = None) -> str:
        """All runs (or ``records``) as ``json`` (full records) or ``csv`` (one row a run)."""
        records = self.list() if records is None else records
        return export_records(records, fmt)


def _as_incomplete(data: dict[str, Any], owner: PartOwner, updated_s: float) -> dict[str, Any]:
    """A dead owner's ``running`` record as ``incomplete``, its figures to the last flush."""
    data = dict(data)
    data["status"] = "incomplete"
    data["ended_s"] = updated_s
    data["duration_s"] = max(updated_s - float(data["started_s"]), 0.0)
    warnings = list(data.get("warnings", ()))
    warnings.append(
        f"run did not finish: its process (pid {owner.pid} on {owner.host}) ended without "
        f"stopping the tracker; figures cover the time until the last flush at "
        f"{utc_iso(updated_s)}"
    )
    data["warnings"] = warnings
    return data


def store_health(path: Path) -> dict[str, Any]:
    """What ``greenforge doctor`` says about the run store at ``path`` (read-only checks):
    ``{"path", "ok", "status", "runs", "corrupt_copies"}``."""
    out: dict[str, Any] = {
        "path": str(path),
        "ok": True,
        "status": "",
        "runs": 0,
        "corrupt_copies": [str(p) for p in corrupt_copies(path)],
    }
    if not path.exists():
        out["status"] = "no runs stored yet (created by the first run)"
        return out
    try:
        with RunStore(path, read_only=True) as store:
            check = store._query("PRAGMA quick_check")
            verdict = "; ".join(str(r[0]) for r in check[:3]) if check else "ok"
            if verdict != "ok":
                raise StoreError(_corrupt_message(path, RuntimeError(verdict)))
            out["runs"] = len(store._query("SELECT DISTINCT run_id FROM parts"))
    except StoreError as exc:
        out.update(ok=False, status=str(exc))
        return out
    out["status"] = f"ok, {out['runs']} run(s)"
    return out


def json_text(value: Any) -> str:
    """Returns ``value`` as valid JSON text plus a newline: non-finite floats become ``null``
    (never ``NaN``), other non-JSON objects their ``str``."""
    from greenforge.jsonsafe import finite_or_none

    return json.dumps(finite_or_none(value), indent=2, default=str, allow_nan=False) + "\n"


def export_records(records: Sequence[RunRecord], fmt: str) -> str:
    """Serialise records as ``json`` (array of full records) or ``csv`` (flat summary rows)."""
    if fmt == "json":
        return json_text([r.to_dict() for r in records])
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for r in records:
            writer.writerow({k: _inert_cell(v) for k, v in csv_row(r).items()})
        return buf.getvalue()
    raise ConfigError(f"unknown export format {fmt!r}: use 'json' or 'csv'.")


def _inert_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR
    first) gets a leading ``'`` so it reads as text; numbers are left as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


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
        "attribution": r.metadata.get("attribution", ""),
        "meters": meter_summary(r.meters),  # one short line; details in the JSON export
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
        kwh_at_meter = energy_j / J_PER_KWH * base.pue  # 0.0 for a subnormal energy too
        mean = co2e / kwh_at_meter if kwh_at_meter > 0 else base.mean_intensity_g_per_kwh
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
