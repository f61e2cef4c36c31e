"""Reads an offline W&B run back from its ``run-<id>.wandb`` transaction log.

wandb >= 0.30 dropped its Python reader (``wandb.sdk.internal.datastore``); the log is still
LevelDB's log format (32 KiB blocks, 7-byte record headers: CRC32C, length, type) behind a
7-byte W&B header (``:W&B``, magic 0xBEE1, version), holding ``wandb_internal_pb2.Record``
protobufs, so the records are parsed with wandb's own protobuf classes.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = struct.Struct("<4sHB")
RECORD = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def raw_records(path: Path) -> Iterator[bytes]:
    """Yields each record's bytes from a ``.wandb`` file."""
    data = path.read_bytes()
    ident, magic, _version = HEADER.unpack_from(data, 0)
    assert ident == b":W&B", f"{path} is not a W&B transaction log"
    assert magic == 0xBEE1, f"{path} is not a W&B transaction log"
    pos, pending = HEADER.size, b""
    while pos + RECORD.size <= len(data):
        left = BLOCK - pos % BLOCK
        if left < RECORD.size:  # block trailer: padding
            pos += left
            continue
        _crc, length, kind = RECORD.unpack_from(data, pos)
        if kind == 0 and length == 0:  # zero-filled rest of a block
            pos += left
            continue
        chunk = data[pos + RECORD.size : pos + RECORD.size + length]
        pos += RECORD.size + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""


def _items(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key = item.key or "/".join(item.nested_key)
        out[key] = json.loads(item.value_json)
    return out


@dataclasses.dataclass
class OfflineRun:
    """What an offline run logged: identity, tags, config, summary, history rows, artifacts."""

    run_id: str
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: tuple[str, ...] = ()
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    artifacts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    exit_code: int | None = None


def read_run(wandb_dir: Path, run_id: str, wait_s: float = 30.0) -> OfflineRun:
    """Returns the offline run ``run_id`` found under ``wandb_dir`` (its ``wandb`` folder).

    ``run.finish()`` returns before wandb-core has closed the log, so this waits (up to
    ``wait_s``) for the run's exit record and a file size that no longer changes.
    """
    (path,) = wandb_dir.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
    deadline = time.monotonic() + wait_s
    size = -1
    while True:
        run = _parse(path, run_id)
        new_size = path.stat().st_size
        if (run.exit_code is not None and new_size == size) or time.monotonic() > deadline:
            return run
        size = new_size
        time.sleep(0.2)


def _parse(path: Path, run_id: str) -> OfflineRun:
    from wandb.proto import wandb_internal_pb2 as pb

    run = OfflineRun(run_id)
    for raw in raw_records(path):
        record = pb.Record()  # type: ignore[attr-defined]
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.name, run.group, run.job_type = r.display_name, r.run_group, r.job_type
            run.tags = tuple(r.tags)
            run.config.update(_items(r.config.update))
        elif kind == "config":
            run.config.update(_items(record.config.update))
        elif kind == "summary":
            run.summary.update(_items(record.summary.update))
        elif kind == "history":
            run.history.append(_items(record.history.item))
        elif kind == "artifact":
            a = record.artifact
            run.artifacts.append(
                {
                    "name": a.name,
                    "type": a.type,
                    "aliases": list(a.aliases),
                    "metadata": json.loads(a.metadata or "{}"),
                    "files": [c.path for c in a.manifest.contents],
                }
            )
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def run_ids(wandb_dir: Path) -> list[str]:
    """Returns the ids of the offline runs under ``wandb_dir``, oldest first."""
    return [p.name.rsplit("-", 1)[1] for p in sorted(wandb_dir.glob("wandb/offline-run-*"))]
