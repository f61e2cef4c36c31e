"""Read carbon-intensity CSV files: Electricity Maps portal exports and generic ``timestamp,value``.

Portal exports (hourly, or 5/15/30-minute; ``.csv`` or ``.csv.gz``) have the header::

    Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),
    Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,
    Data Source,Data Estimated,Data Estimation Method

A generic file has a ``timestamp`` column (ISO 8601; with an offset such as ``+01:00`` or ``Z``;
timestamps without one are read as UTC) and a ``value`` column (g/kWh).

Several files (e.g. one per year) are concatenated in time order. Every problem is a
:class:`~greenforge.errors.DataError` that names ``file:line`` and what to do; gaps are reported,
and filled only under an explicit fill policy (``ffill``, ``interpolate``, ``profile``).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import difflib
import gzip
import io
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from greenforge.errors import ConfigError, DataError
from greenforge.grid.ops import FILL_POLICIES, fill_gaps, find_gaps
from greenforge.grid.series import BoolArray, FloatArray, IntensitySeries
from greenforge.timeutil import utc_iso_seconds

PORTAL_TIME = "Datetime (UTC)"
PORTAL_ZONE = "Zone Id"
PORTAL_ESTIMATED = "Data Estimated"
PORTAL_VALUE = {
    "direct": "Carbon Intensity gCO₂eq/kWh (direct)",
    "lca": "Carbon Intensity gCO₂eq/kWh (LCA)",
}
PORTAL_HEADER = (
    "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
    "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
    "Data Source,Data Estimated,Data Estimation Method"
)
GENERIC_TIME = ("timestamp", "time", "datetime")
GENERIC_VALUE = ("value", "intensity_g_per_kwh", "carbon_intensity_g_per_kwh")
GENERIC_HEADER = "timestamp,value"
UNKNOWN_ZONE = "unknown"
"""Zone of a generic CSV loaded without ``zone=``: the files provider serves it for any zone."""


@dataclasses.dataclass(frozen=True)
class _Part:
    """One parsed file: UTC times, values, flags and the line number of each row."""

    path: Path
    times_s: FloatArray
    values: FloatArray
    estimated: BoolArray
    lines: npt.NDArray[np.int64]
    zone: str | None
    naive: bool
    portal: bool


BytesArray = npt.NDArray[np.bytes_]


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(
            f"cannot read intensity file {str(path)!r}: {exc.strerror or exc}. Check the path."
        ) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(
                f"{path}: not a readable gzip file ({exc}). Download it again."
            ) from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    crs = raw.count(b"\r")
    if crs and crs != raw.count(b"\r\n"):  # old Mac line ends: make them \n
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return raw


def _text(value: bytes | np.bytes_) -> str:
    return bytes(value).decode("utf-8", errors="replace")


class _Table:
    """Header, row line numbers and lazily extracted columns (as byte strings)."""

    def __init__(
        self, header: list[str], lines: npt.NDArray[np.int64], get: Callable[[int], BytesArray]
    ) -> None:
        self.header = header
        self.lines = lines
        self._get = get
        self._cache: dict[int, BytesArray] = {}

    def column(self, index: int) -> BytesArray:
        if index not in self._cache:
            self._cache[index] = self._get(index)
        return self._cache[index]


def _slice_bytes(
    body: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> BytesArray:
    """Fields ``body[starts[i]:ends[i]]`` as a fixed-width byte-string array (vectorised)."""
    width = max(int(np.max(ends - starts)), 1)
    idx = starts[:, None] + np.arange(width)
    gathered = np.where(idx < ends[:, None], body[np.minimum(idx, body.size - 1)], 0)
    out: BytesArray = np.ascontiguousarray(gathered.astype(np.uint8)).view(f"S{width}").ravel()
    return np.char.strip(out) if out.size and (out[0][:1] == b" " or out[0][-1:] == b" ") else out


def _columns(path: Path, raw: bytes) -> _Table:
    """Split a CSV into header and columns; each row keeps its line number."""
    head_bytes, _, body_bytes = raw.partition(b"\n")
    head_bytes = head_bytes.rstrip(b"\r")
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}:1: header is not UTF-8 (byte {exc.start}). Save as UTF-8."
        ) from None
    if not head.strip():
        raise DataError(
            f"{path}:1: empty file (no header). Expected an Electricity Maps portal export or "
            f"a CSV with the header {GENERIC_HEADER!r}."
        )
    header = [h.strip() for h in next(csv.reader([head]))]
    ncol = len(header)
    body_bytes = body_bytes.rstrip(b"\r\n")
    if not body_bytes.strip():
        raise DataError(f"{path}:2: no data rows after the header. Is the download complete?")
    # Fast path: no quoting, no blank lines, every line has the header's number of fields.
    if b'"' not in body_bytes and b"\n\n" not in body_bytes and b"\n\r\n" not in body_bytes:
        body = np.frombuffer(body_bytes, dtype=np.uint8)
        ends = np.append(np.flatnonzero(body == 10), body.size).astype(np.int64)
        commas = np.flatnonzero(body == 44).astype(np.int64)
        per_line = np.diff(np.searchsorted(commas, ends), prepend=0)
        if np.all(per_line == ncol - 1):
            starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
            # Windows line ends: the last field stops before the \r
            ends = ends - (body[np.maximum(ends - 1, 0)] == 13).astype(np.int64)
            grid = commas.reshape(-1, ncol - 1) if ncol > 1 else np.zeros((ends.size, 0), np.int64)
            field_starts = np.column_stack([starts, grid + 1])
            field_ends = np.column_stack([grid, ends])

            def get(i: int) -> BytesArray:
                return _slice_bytes(body, field_starts[:, i], field_ends[:, i])

            lines = np.arange(2, 2 + ends.size, dtype=np.int64)
            return _Table(header, lines, get)
    try:
        body_text = body_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body_bytes[: exc.start].count(b"\n") + 2
        raise DataError(f"{path}:{line}: not UTF-8 text. Save the CSV as UTF-8.") from None
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    reader = csv.reader(io.StringIO(body_text))
    for row in reader:
        line = reader.line_num + 1
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != ncol:
            raise DataError(
                f"{path}:{line}: {len(row)} field(s), but the header has {ncol}. Fix or remove "
                "this line."
            )
        rows.append(row)
        line_numbers.append(line)
    if not rows:
        raise DataError(f"{path}:2: no data rows after the header. Is the download complete?")
    cols = [list(c) for c in zip(*rows, strict=True)]

    def get_slow(i: int) -> BytesArray:
        return np.array([c.strip().encode("utf-8") for c in cols[i]], dtype=np.bytes_)

    return _Table(header, np.array(line_numbers, dtype=np.int64), get_slow)


def _missing_column(path: Path, header: list[str], wanted: str, expected: str) -> DataError:
    close = difflib.get_close_matches(wanted, header, n=1, cutoff=0.6)
    hint = f" (found {close[0]!r} - renamed?)" if close else ""
    return DataError(
        f"{path}:1: missing column {wanted!r}{hint}. Expected the header {expected!r}; "
        f"found {','.join(header)!r}. Restore the original header."
    )


def _floats(path: Path, column: BytesArray, lines: npt.NDArray[np.int64], name: str) -> FloatArray:
    try:
        values = column.astype(np.float64)
    except ValueError:
        values = np.full(column.size, np.nan)
        for i, text in enumerate(column):
            try:
                values[i] = float(text)
            except ValueError:
                raise DataError(
                    f"{path}:{lines[i]}: {name} {_text(text)!r} is not a number. Fix or remove "
                    "the line."
                ) from None
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{path}:{lines[i]}: {name} {_text(column[i])!r} is not a non-negative finite number "
            f"(g/kWh); {bad.size} such row(s). Fix or remove them."
        )
    return values


def _portal_times(path: Path, column: BytesArray, lines: npt.NDArray[np.int64]) -> FloatArray:
    texts = column
    if texts.size and bytes(texts[0]).endswith(b"Z"):
        texts = np.char.rstrip(texts, b"Z")
    try:
        parsed = texts.astype("datetime64[s]")
    except ValueError:
        for i, text in enumerate(texts):
            try:
                np.datetime64(_text(text), "s")
            except ValueError:
                raise DataError(
                    f"{path}:{lines[i]}: bad timestamp {_text(column[i])!r} in {PORTAL_TIME!r}; "
                    "expected e.g. '2023-01-01 00:00:00' (UTC)."
                ) from None
        raise
    if np.any(np.isnat(parsed)):
        i = int(np.flatnonzero(np.isnat(parsed))[0])
        raise DataError(f"{path}:{lines[i]}: empty timestamp. Fix or remove the line.")
    return parsed.astype(np.int64).astype(np.float64)


def _generic_times(
    path: Path, column: BytesArray, lines: npt.NDArray[np.int64]
) -> tuple[FloatArray, bool]:
    out = np.empty(column.size, dtype=np.float64)
    naive_flags: set[bool] = set()
    for i, raw in enumerate(column):
        text = _text(raw)
        try:
            stamp = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            raise DataError(
                f"{path}:{lines[i]}: bad timestamp {text!r}; use ISO 8601, e.g. "
                "'2023-01-01T00:00:00Z' or '2023-01-01T01:00:00+01:00'."
            ) from None
        naive = stamp.tzinfo is None
        naive_flags.add(naive)
        if len(naive_flags) > 1:
            raise DataError(
                f"{path}:{lines[i]}: timestamp {text!r} mixes timestamps with and without a UTC "
                "offset. Give every timestamp an offset (e.g. 'Z' or '+01:00')."
            )
        if naive:
            stamp = stamp.replace(tzinfo=dt.timezone.utc)
        out[i] = stamp.timestamp()
    return out, naive_flags == {True}


def _parse_file(path: Path, basis: str) -> _Part:
    table = _columns(path, _read_bytes(path))
    header, lines = table.header, table.lines
    index = {name: i for i, name in enumerate(header)}
    portal = PORTAL_TIME in index or any(h.startswith("Carbon Intensity") for h in header)
    if portal:
        for wanted in (PORTAL_TIME, PORTAL_ZONE, PORTAL_VALUE[basis]):
            if wanted not in index:
                raise _missing_column(path, header, wanted, PORTAL_HEADER)
        times = _portal_times(path, table.column(index[PORTAL_TIME]), lines)
        value_name = PORTAL_VALUE[basis]
        values = _floats(path, table.column(index[value_name]), lines, value_name)
        zone_col = table.column(index[PORTAL_ZONE])
        zones = np.unique(zone_col)
        if zones.size > 1:
            i = int(np.flatnonzero(zone_col != zone_col[0])[0])
            raise DataError(
                f"{path}:{lines[i]}: zone {_text(zone_col[i])!r} differs from "
                f"{_text(zone_col[0])!r} above. Use one file per zone."
            )
        zone: str | None = _text(zones[0]).strip()
        if PORTAL_ESTIMATED in index:
            flags = table.column(index[PORTAL_ESTIMATED])
            estimated = np.asarray(np.char.lower(flags) == b"true", dtype=np.bool_)
        else:
            estimated = np.zeros(times.size, dtype=np.bool_)
        naive = False
    else:
        tcol = next((index[n] for n in GENERIC_TIME if n in index), None)
        vcol = next((index[n] for n in GENERIC_VALUE if n in index), None)
        if tcol is None:
            raise _missing_column(path, header, "timestamp", GENERIC_HEADER)
        if vcol is None:
            raise _missing_column(path, header, "value", GENERIC_HEADER)
        times, naive = _generic_times(path, table.column(tcol), lines)
        values = _floats(path, table.column(vcol), lines, "value")
        estimated = np.zeros(times.size, dtype=np.bool_)
        zone = None
    return _Part(path, times, values, estimated, lines, zone, naive, portal)


_DST_HINT = (
    " The timestamps have no UTC offset: a repeated or skipped hour is what local time does at "
    "a daylight-saving change. Write UTC timestamps ending in 'Z', or give each its offset "
    "(e.g. '2023-10-29T02:00:00+01:00')."
)


def _check_order(part: _Part) -> float:
    """Validate ordering of one file and return its step (s)."""
    t, lines, path = part.times_s, part.lines, part.path
    if t.size < 2:
        raise DataError(
            f"{path}:{lines[0]}: only one data row; at least two are needed to know the step."
        )
    d = np.diff(t)
    dup = np.flatnonzero(d == 0)
    back = np.flatnonzero(d < 0)
    if back.size:
        i = int(back[0]) + 1
        raise DataError(
            f"{path}:{lines[i]}: timestamp {utc_iso_seconds(t[i])} is earlier than line {lines[i - 1]} "
            f"({utc_iso_seconds(t[i - 1])}): rows are not sorted by time. Sort the file by timestamp."
            + (_DST_HINT if part.naive else "")
        )
    if dup.size:
        i = int(dup[0]) + 1
        raise DataError(
            f"{path}:{lines[i]}: duplicate timestamp {utc_iso_seconds(t[i])} (also on line {lines[i - 1]}). "
            "Remove the duplicate row." + (_DST_HINT if part.naive else "")
        )
    step = float(np.min(d))
    if step < 60 or step > 86400:
        raise DataError(
            f"{path}:{lines[int(np.argmin(d)) + 1]}: step of {step:g} s between rows; expected a "
            "regular step between 1 minute and 1 day (e.g. hourly or 15-minute data)."
        )
    ratio = d / step
    irregular = np.flatnonzero(np.abs(ratio - np.round(ratio)) > 1e-6)
    if irregular.size:
        i = int(irregular[0]) + 1
        raise DataError(
            f"{path}:{lines[i]}: timestamp {utc_iso_seconds(t[i])} is off the file's {step:g} s grid "
            f"(previous row {utc_iso_seconds(t[i - 1])}). Use a regular time step."
        )
    if part.naive:
        skipped = np.flatnonzero(np.abs(d - (step + 3600.0)) < 1e-6)
        if skipped.size:
            i = int(skipped[0]) + 1
            raise DataError(
                f"{path}:{lines[i]}: one hour is missing before {utc_iso_seconds(t[i])}."
                + _DST_HINT
            )
    return step


def load_csv(
    paths: str | Path | Sequence[str | Path],
    *,
    basis: str = "lca",
    zone: str | None = None,
    fill: str = "none",
    signal: str = "average",
) -> IntensitySeries:
    """Read one or several intensity CSV files into one :class:`IntensitySeries`.

    ``basis`` picks the portal column (``lca`` or ``direct``; a generic file is taken to be in
    that basis). ``zone`` names the zone of generic files and, for portal files, must match
    their ``Zone Id``. Gaps raise a :class:`DataError` listing them unless ``fill`` is
    ``ffill``, ``interpolate`` or ``profile``; filled points are flagged ``estimated``.
    """
    if basis not in PORTAL_VALUE:
        raise ConfigError(f"bad basis {basis!r}: use 'lca' (life-cycle) or 'direct'.")
    if fill not in FILL_POLICIES:
        raise ConfigError(f"bad fill policy {fill!r}: use one of {', '.join(FILL_POLICIES)}.")
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise ConfigError("no intensity files given: pass at least one CSV path.")
    parts = [_parse_file(Path(p), basis) for p in items]
    steps = [_check_order(p) for p in parts]
    if len({round(s, 6) for s in steps}) > 1:
        shown = ", ".join(f"{p.path.name}: {s:g} s" for p, s in zip(parts, steps, strict=True))
        raise DataError(f"files have different time steps ({shown}). Load them separately.")
    step = steps[0]
    zones = {p.zone for p in parts if p.zone is not None}
    if len(zones) > 1:
        raise DataError(
            f"files are for different zones ({', '.join(sorted(zones))}). Load one zone at a time."
        )
    file_zone = zones.pop() if zones else None
    if zone is not None and file_zone is not None and zone.upper() != file_zone.upper():
        raise DataError(
            f"{parts[0].path}: the file is for zone {file_zone!r}, not {zone!r}. Pick the file "
            f"of {zone!r} or ask for {file_zone!r}."
        )
    parts.sort(key=lambda p: float(p.times_s[0]))
    for prev, nxt in itertools.pairwise(parts):
        if nxt.times_s[0] <= prev.times_s[-1]:
            raise DataError(
                f"{nxt.path}:{nxt.lines[0]}: {utc_iso_seconds(float(nxt.times_s[0]))} overlaps "
                f"{prev.path} (which runs to {utc_iso_seconds(float(prev.times_s[-1]))}). Remove the "
                "overlapping rows or the duplicate file."
            )
    times = np.concatenate([p.times_s for p in parts])
    values = np.concatenate([p.values for p in parts])
    estimated = np.concatenate([p.estimated for p in parts])
    name = zone or file_zone or UNKNOWN_ZONE
    if all(p.portal for p in parts):
        source = f"electricitymaps-csv:{file_zone}"
    else:
        source = "csv:" + "+".join(p.path.name for p in parts)
    series = IntensitySeries(
        times_s=times,
        values_g_per_kwh=values,
        step_s=step,
        zone=file_zone or name,
        source=source,
        signal=signal,
        basis=basis,
        kind="measured",
        estimated=estimated,
    )
    gaps = find_gaps(times, step)
    if gaps and fill == "none":
        where = {float(t): (p.path, int(ln)) for p in parts for t, ln in _firsts(p)}
        gap_lines: list[str] = []
        for g in gaps[:5]:
            gap_path, gap_line = where.get(g.end_s, (parts[0].path, 0))
            gap_lines.append(
                f"{gap_path}:{gap_line}: {g.missing_points} missing point(s) from "
                f"{utc_iso_seconds(g.start_s)} (this row is at {utc_iso_seconds(g.end_s)})"
            )
        more = f"; and {len(gaps) - 5} more gap(s)" if len(gaps) > 5 else ""
        total = sum(g.missing_points for g in gaps)
        raise DataError(
            f"{len(gaps)} gap(s) ({total} missing point(s) of {step:g} s): "
            + "; ".join(gap_lines)
            + more
            + ". Supply the missing rows or choose a fill policy (--fill ffill|interpolate|"
            "profile, or intensity_fill in the config)."
        )
    return fill_gaps(series, fill) if gaps else series


def _firsts(part: _Part) -> list[tuple[float, int]]:
    """(time, line) of every row that follows a gap in one file, plus the file's first row."""
    d = np.diff(part.times_s)
    step = float(np.min(d)) if d.size else 0.0
    idx = np.concatenate(([0], np.flatnonzero(d > step * (1 + 1e-9)) + 1))
    return [(float(part.times_s[i]), int(part.lines[i])) for i in idx]
