"""On-disk cache of grid-API answers, with a time-to-live.

Entries live under ``settings.resolved_home() / "cache" / "grid" / <provider>``, one JSON file
per request, named by a SHA-256 of the endpoint path and the query parameters. Nothing in it
holds a secret: parameters whose names look like credentials are dropped before hashing,
credentials travel in request headers, which are never stored (nor are response headers), and
:meth:`DiskCache.put` replaces the provider's known secret values in the answer (a server may
echo a key back) before writing. A corrupt or unreadable entry counts as missing (and is
removed), so the cache can never break a measurement.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from greenforge.config import Settings
from greenforge.redact import SecretLike, is_secret_name, redact_json, redact_values

log = logging.getLogger("greenforge.grid.cache")

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """A cached answer: the decoded JSON and when it was stored (unix seconds)."""

    payload: Any
    stored_at_s: float
    endpoint: str


class DiskCache:
    """A directory of JSON answers with a time-to-live checked on read."""

    def __init__(self, root: Path, clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self._clock = clock

    @classmethod
    def for_provider(cls, settings: Settings, provider: str) -> DiskCache:
        """The cache directory of one provider under the GreenForge home."""
        name = _SAFE_NAME.sub("_", provider) or "provider"
        return cls(settings.resolved_home() / "cache" / "grid" / name)

    @staticmethod
    def key(endpoint: str, params: Mapping[str, str]) -> str:
        """A stable key for a request; parameters named like credentials are left out."""
        safe = sorted((k, str(v)) for k, v in params.items() if not is_secret_name(k))
        blob = json.dumps([endpoint, safe], separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str, max_age_s: float | None) -> CacheEntry | None:
        """The entry if present and no older than ``max_age_s`` (``None``: any age)."""
        path = self.path(key)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("grid cache: cannot read %s (%s); ignoring it", path, exc)
            return None
        try:
            data = json.loads(raw)
            entry = CacheEntry(
                payload=data["payload"],
                stored_at_s=float(data["stored_at_s"]),
                endpoint=str(data.get("endpoint", "")),
            )
        except (ValueError, KeyError, TypeError):
            log.warning("grid cache: corrupt entry %s removed", path)
            path.unlink(missing_ok=True)
            return None
        if max_age_s is not None and self._clock() - entry.stored_at_s > max_age_s:
            return None
        return entry

    def put(
        self, key: str, payload: Any, endpoint: str = "", secrets: Sequence[SecretLike] = ()
    ) -> None:
        """Store an answer atomically, with every value of ``secrets`` in it replaced by
        ``***``; a failure to write is logged, never raised."""
        record = {
            "stored_at_s": self._clock(),
            "endpoint": redact_values(endpoint, secrets),
            "payload": redact_json(payload, secrets),
        }
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(record, fh, separators=(",", ":"))
                Path(tmp).replace(self.path(key))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except (OSError, TypeError, ValueError) as exc:
            log.warning("grid cache: cannot write to %s (%s); continuing uncached", self.root, exc)

    def clear(self) -> int:
        """Remove every entry; returns how many were removed."""
        removed = 0
        if self.root.is_dir():
            for p in self.root.glob("*.json"):
                p.unlink(missing_ok=True)
                removed += 1
        return removed
