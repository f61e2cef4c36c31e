"""Read carbon-intensity CSV files: Electricity Maps portal exports and generic ``timestamp,value``.

Portal exports (hourly, or 5/15/30-minute; ``.csv`` or ``.csv.gz``) have the header::

    Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),
    Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,
    Data Source,Data Estimated,Data Estimation Method

A generic file has a ``timestamp`` column (ISO 8601; with an offset such as ``+01:00`` or ``Z``;
timestamps without one are read as UTC) and a ``value`` column (g/kWh).

A file whose header is separated by ``;`` only (a European spreadsheet export) is read with
``;`` between fields and a decimal comma in the values.

Several files (e.g. one per year) are concatenated in time order. Every problem is a
:class:`~greenforge.errors.DataError` that names ``file:line`` and what to do; gaps are reported,
and filled only under an explicit fill policy (``ffill``, ``interpolate``, ``profile``).

Files are read as a stream, in chunks of whole lines: memory grows with the number of rows
only. A chunk of unquoted, well-formed rows is parsed at once with array operations on its
bytes (timestamps ``YYYY-MM-DD[T ]HH:MM:SS[Z|+HH:MM]`` computed arithmetically, never with
numpy's datetime parsing; plain decimals exactly as :func:`float` reads them); anything else
is read row by row with the csv module, :func:`datetime.datetime.fromisoformat` and
:func:`float`, which also words every error. Both give the same result (property-tested). Any
UTC offset is converted; portal times without one are UTC. Limits, each a clear error: lines of at most :data:`MAX_LINE_BYTES`
bytes, fields of at most :data:`MAX_FIELD_CHARS`, at most :data:`MAX_DECOMPRESSED_BYTES`
decompressed from a ``.gz``, :data:`MAX_ROWS` rows per file, intensities in [0,
:data:`MAX_INTENSITY_G_PER_KWH`] g/kWh and timestamps in the years
:data:`FIRST_YEAR`-:data:`LAST_YEAR`.
"""

from __future__ import annotations

import array
import contextlib
import csv
import dataclasses
import datetime as dt
import difflib
import gzip
import io
import itertools
import math
import operator
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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


MAX_LINE_BYTES = 65_536
"""Longest line accepted (bytes); a portal row is about 150."""
MAX_FIELD_CHARS = 4_096
"""Longest field accepted (characters)."""
MAX_DECOMPRESSED_BYTES = 512 * 1024 * 1024
"""Largest decompressed size of a ``.gz`` file (counted while reading)."""
MAX_ROWS = 10_000_000
"""Most data rows in one file (5-minute data for 95 years)."""
MAX_INTENSITY_G_PER_KWH = 5000.0
"""Largest plausible intensity (g/kWh); the dirtiest grids are about 1,000-1,200."""
FIRST_YEAR, LAST_YEAR = 1990, 2100
"""Timestamps must lie in these years (inclusive, UTC)."""
_FIRST_S = dt.datetime(FIRST_YEAR, 1, 1, tzinfo=dt.timezone.utc).timestamp()
_END_S = dt.datetime(LAST_YEAR + 1, 1, 1, tzinfo=dt.timezone.utc).timestamp()
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_LONG_YEAR = re.compile(r"[+-]?\d{5,}-")


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


class _LineTooLongError(Exception):
    """Raised by :class:`_Guard` inside the text layer; turned into a DataError with the line."""


class _Guard(io.RawIOBase):
    """A byte stream with limits checked per chunk: line length, and optionally total size.

    Checking per chunk (not per line) keeps the text and CSV layers at C speed while no line
    longer than :data:`MAX_LINE_BYTES` and no more than ``cap`` bytes are ever buffered.
    """

    def __init__(self, path: Path, inner: io.BufferedIOBase, cap: int | None) -> None:
        super().__init__()
        self._path = path
        self._inner = inner
        self._cap = cap
        self._total = 0
        self.bytes_read = 0
        self._since_newline = 0
        self.check_lines = True

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        """Read the rest (bounded chunks, still capped): raises if a gzip stream is corrupt."""
        while self._inner.read(1 << 20):
            pass

    def readinto(self, buffer: Any) -> int:
        n = self._inner.readinto(buffer)
        if not n:
            return 0
        self._total += n
        self.bytes_read = self._total
        if self._cap is not None and self._total > self._cap:
            raise DataError(
                f"{self._path}: decompresses to more than {self._cap // 2**20} MiB; an "
                "intensity file is far smaller (a year of hourly portal data is about 1.5 MiB). "
                "Is it the right file? Split it, e.g. one file per year."
            )
        chunk = bytes(memoryview(buffer)[:n])
        last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        self._since_newline = self._since_newline + n if last < 0 else n - last - 1
        if self._since_newline > MAX_LINE_BYTES and self.check_lines:
            raise _LineTooLongError
        return n


def _open_binary(path: Path, stack: contextlib.ExitStack) -> tuple[_Guard, bool]:
    """The file's bytes behind a :class:`_Guard` (``.gz`` decompressed), and whether gzipped."""
    try:
        raw = stack.enter_context(path.open("rb"))
        magic = raw.peek(4)[:4]
    except OSError as exc:
        raise DataError(
            f"cannot read intensity file {str(path)!r}: {exc.strerror or exc}. Check the path."
        ) from None
    if magic.startswith(b"PK\x03\x04"):
        raise DataError(f"{path}: is a zip archive; unzip it and pass the CSV inside.")
    if magic.startswith(b"\x1f\x8b"):
        gz = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
        return _Guard(path, gz, MAX_DECOMPRESSED_BYTES), True
    return _Guard(path, raw, None), False


def _bad_utf8_line(path: Path) -> DataError:
    """The error for the first line of ``path`` that is not UTF-8 (read again, line by line)."""
    with contextlib.ExitStack() as stack:
        guard, _ = _open_binary(path, stack)
        stream = stack.enter_context(io.BufferedReader(guard))
        number = 0
        while line := stream.readline(MAX_LINE_BYTES + 1):
            number += 1
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                what = "header" if number == 1 else "line"
                return DataError(
                    f"{path}:{number}: {what} is not UTF-8 text (byte {exc.start + 1} of the "
                    "line). Save the CSV as UTF-8."
                )
    return DataError(f"{path}: not UTF-8 text. Save the CSV as UTF-8.")


_SEMICOLON_HINT = (
    " The line looks ';'-separated (with decimal commas?) while the header is ','-separated: "
    "save the file with one separator throughout."
)


def _delimiter(head: str) -> str:
    """``','``, or ``';'`` for a header separated by semicolons only (European spreadsheets)."""
    return ";" if ";" in head and "," not in head else ","


def _missing_column(path: Path, header: list[str], wanted: str, expected: str) -> DataError:
    close = difflib.get_close_matches(wanted, header, n=1, cutoff=0.6)
    hint = f" (found {close[0]!r} - renamed?)" if close else ""
    if any(";" in h for h in header):
        hint += " The header looks ';'-separated mixed with ','; use one separator"
    return DataError(
        f"{path}:1: missing column {wanted!r}{hint}. Expected the header {expected!r}; "
        f"found {','.join(header)!r}. Restore the original header."
    )


def _intensity(path: Path, line: int, text: str, name: str, decimal_comma: bool) -> float:
    """One intensity in g/kWh, checked to be a finite number in [0, 5000]."""
    number = text.replace(",", ".") if decimal_comma and "." not in text else text
    try:
        value = float(number)
    except ValueError:
        hint = _SEMICOLON_HINT if ";" in text else ""
        if not hint and not decimal_comma and "," in text:
            hint = " It has a decimal comma: use '.' or separate the fields with ';'."
        raise DataError(
            f"{path}:{line}: {name} {text!r} is not a number.{hint} Fix or remove the line."
        ) from None
    if not (value >= 0.0 and math.isfinite(value)):
        raise DataError(
            f"{path}:{line}: {name} {text!r} is not a non-negative finite number (g/kWh). "
            "Fix or remove the line (remove it and choose a --fill policy to treat it as missing)."
        )
    if value > MAX_INTENSITY_G_PER_KWH:
        raise DataError(
            f"{path}:{line}: {name} {text!r} is above {MAX_INTENSITY_G_PER_KWH:g} g/kWh, "
            "implausible for a grid (the dirtiest are about 1,200). Check the unit (g/kWh, "
            "not g/MWh or lb/MWh) and the column."
        )
    return value


def _timestamp(path: Path, line: int, text: str, example: str) -> tuple[float, bool]:
    """(unix seconds, had no offset) of an ISO 8601 timestamp; no offset is read as UTC."""
    if not text:
        raise DataError(f"{path}:{line}: empty timestamp. Fix or remove the line.")
    iso = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    try:
        stamp = dt.datetime.fromisoformat(iso)
    except ValueError:
        if _LONG_YEAR.match(text):
            raise _out_of_range(path, line, text) from None
        hint = _SEMICOLON_HINT if ";" in text else ""
        raise DataError(f"{path}:{line}: bad timestamp {text!r}; {example}{hint}") from None
    naive = stamp.tzinfo is None
    seconds = ((stamp - _EPOCH_NAIVE) if naive else (stamp - _EPOCH_UTC)).total_seconds()
    if not _FIRST_S <= seconds < _END_S:
        raise _out_of_range(path, line, text)
    return seconds, naive


def _out_of_range(path: Path, line: int, text: str) -> DataError:
    return DataError(
        f"{path}:{line}: timestamp {text!r} is outside the years {FIRST_YEAR}-{LAST_YEAR} "
        "that intensity data can cover. Check the year (and that the column holds dates)."
    )


_PORTAL_EXAMPLE = f"expected e.g. '2023-01-01 00:00:00' (UTC) in {PORTAL_TIME!r}."
_GENERIC_EXAMPLE = "use ISO 8601, e.g. '2023-01-01T00:00:00Z' or '2023-01-01T01:00:00+01:00'."


def _parse_file(path: Path, basis: str) -> _Part:
    """Read one file row by row (bounded memory: O(rows) numbers, never the whole text)."""
    try:
        with contextlib.ExitStack() as stack:
            guard, gzipped = _open_binary(path, stack)
            buffered = stack.enter_context(io.BufferedReader(guard))
            text = stack.enter_context(
                io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="strict", newline=None)
            )
            try:
                return _parse_stream(path, basis, text, guard)
            except (DataError, UnicodeDecodeError):
                if gzipped:  # garbage rows from a corrupt .gz: name the real cause
                    guard.drain()
                raise
    except UnicodeDecodeError:
        raise _bad_utf8_line(path) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(
            f"{path}: not a readable gzip file ({exc}): it is corrupt or truncated. "
            "Download it again."
        ) from None
    except OSError as exc:
        raise DataError(
            f"cannot read intensity file {str(path)!r}: {exc.strerror or exc}. Check the path."
        ) from None


def _too_long(path: Path, line: int) -> DataError:
    return DataError(
        f"{path}:{line}: line is longer than {MAX_LINE_BYTES} bytes (a portal row is about "
        "150). Is this an intensity CSV? Fix or remove the line."
    )


_BLOCK_ROWS = 1024
"""Most rows parsed per block: a block of well-formed rows is converted with C-level maps."""
_BLOCK_BYTES = 4 * 1024 * 1024
"""A block also ends once this much text was read for it (bounds memory with long rows)."""
MAX_COLUMNS = 64
"""Most columns in the header (a portal export has 11)."""


@dataclasses.dataclass
class _Columns:
    """What one file's header says, and the rows read so far (as growing arrays)."""

    path: Path
    portal: bool
    ncol: int
    tcol: int
    vcol: int
    value_name: str
    zone_col: int | None
    est_col: int | None
    example: str
    decimal_comma: bool
    delimiter: str
    times: array.array[float] = dataclasses.field(default_factory=lambda: array.array("d"))
    values: array.array[float] = dataclasses.field(default_factory=lambda: array.array("d"))
    lines: array.array[int] = dataclasses.field(default_factory=lambda: array.array("q"))
    estimated: bytearray = dataclasses.field(default_factory=bytearray)
    zone_raw: str | None = None
    naive_kinds: set[bool] = dataclasses.field(default_factory=set)

    def check_rows(self) -> None:
        if len(self.times) > MAX_ROWS:
            raise DataError(
                f"{self.path}:{self.lines[MAX_ROWS]}: more than {MAX_ROWS:,} data rows in one "
                "file. Split it (e.g. one file per year) or resample it to a coarser step."
            )


def _header(path: Path, basis: str, head: str) -> _Columns:
    """The columns to read, from the header line (``;`` or ``,`` separated)."""
    delimiter = _delimiter(head)
    header = [h.strip() for h in next(csv.reader([head], delimiter=delimiter))]
    if len(header) > MAX_COLUMNS:
        raise DataError(
            f"{path}:1: the header has {len(header)} columns (at most {MAX_COLUMNS}). Expected "
            f"an Electricity Maps portal export or the header {GENERIC_HEADER!r}."
        )
    index = {name: i for i, name in enumerate(header)}
    portal = PORTAL_TIME in index or any(h.startswith("Carbon Intensity") for h in header)
    if portal:
        for wanted in (PORTAL_TIME, PORTAL_ZONE, PORTAL_VALUE[basis]):
            if wanted not in index:
                raise _missing_column(path, header, wanted, PORTAL_HEADER)
        return _Columns(
            path,
            True,
            len(header),
            index[PORTAL_TIME],
            index[PORTAL_VALUE[basis]],
            PORTAL_VALUE[basis],
            index[PORTAL_ZONE],
            index.get(PORTAL_ESTIMATED),
            _PORTAL_EXAMPLE,
            delimiter == ";",
            delimiter,
        )
    tcol = next((index[n] for n in GENERIC_TIME if n in index), None)
    vcol = next((index[n] for n in GENERIC_VALUE if n in index), None)
    if tcol is None:
        raise _missing_column(path, header, "timestamp", GENERIC_HEADER)
    if vcol is None:
        raise _missing_column(path, header, "value", GENERIC_HEADER)
    return _Columns(
        path,
        False,
        len(header),
        tcol,
        vcol,
        "value",
        None,
        None,
        _GENERIC_EXAMPLE,
        delimiter == ";",
        delimiter,
    )


def _rows_fast(cols: _Columns, rows: list[list[str]], lines: Sequence[int]) -> bool:
    """Append a block of well-formed rows with C-level conversions; False (nothing appended)
    when anything is unusual, for :func:`_block_slow` to handle and explain."""
    if cols.decimal_comma or set(map(len, rows)) != {cols.ncol}:
        return False

    def column(index: int) -> list[str]:
        return list(map(operator.itemgetter(index), rows))

    try:
        stamps = list(map(dt.datetime.fromisoformat, column(cols.tcol)))
        naive = stamps[0].tzinfo is None
        epoch = _EPOCH_NAIVE if naive else _EPOCH_UTC
        deltas = map(operator.sub, stamps, itertools.repeat(epoch))  # mixed kinds: TypeError
        times = np.fromiter(map(dt.timedelta.total_seconds, deltas), np.float64, len(rows))
        values = np.fromiter(map(float, column(cols.vcol)), np.float64, len(rows))
    except (ValueError, TypeError):
        return False
    if not cols.portal and cols.naive_kinds - {naive}:
        return False
    if np.any((times < _FIRST_S) | (times >= _END_S)):
        return False
    if not np.all((values >= 0.0) & (values <= MAX_INTENSITY_G_PER_KWH)):  # NaN fails too
        return False
    if cols.zone_col is not None:
        zones = set(column(cols.zone_col))
        if len(zones) > 1 or (cols.zone_raw is not None and zones != {cols.zone_raw}):
            return False
        cols.zone_raw = zones.pop()
    if not cols.portal:
        cols.naive_kinds.add(naive)
    cols.times.frombytes(times.tobytes())
    cols.values.frombytes(values.tobytes())
    cols.lines.frombytes(np.asarray(lines, dtype=np.int64).tobytes())
    est = [] if cols.est_col is None else column(cols.est_col)
    flags = set(est) if est else {"false"}
    if flags <= {"false", "true"} and len(flags) == 1:  # the usual case: one value throughout
        cols.estimated.extend((b"\x01" if flags == {"true"} else b"\x00") * len(rows))
    else:
        cleaned = map(str.lower, map(str.strip, est))
        cols.estimated.extend(map("true".__eq__, cleaned))
    return True


def _block_slow(cols: _Columns, rows: list[list[str]], lines: Sequence[int]) -> None:
    """Append a block row by row, skipping blank lines and naming the first bad row."""
    path = cols.path
    for row, line in zip(rows, lines, strict=True):
        if len(row) != cols.ncol or not "".join(row).strip():
            if not "".join(row).strip():
                continue  # a blank line, or a line of empty fields
            hint = ""
            if any("\n" in c for c in row):
                hint = ' A quote (") opened on an earlier line is never closed.'
            elif cols.delimiter == "," and ";" in "".join(row):
                hint = _SEMICOLON_HINT
            raise DataError(
                f"{path}:{line}: {len(row)} field(s), but the header has {cols.ncol}.{hint} "
                "Fix or remove this line."
            )
        if max(map(len, row)) > MAX_FIELD_CHARS:
            raise DataError(
                f"{path}:{line}: a field is longer than {MAX_FIELD_CHARS} characters. Is this "
                "an intensity CSV? Fix or remove the line."
            )
        stamp_text = row[cols.tcol].strip()
        t, naive = _timestamp(path, line, stamp_text, cols.example)
        if not cols.portal:  # portal times are UTC by definition; generic ones must agree
            cols.naive_kinds.add(naive)
            if len(cols.naive_kinds) > 1:
                raise DataError(
                    f"{path}:{line}: timestamp {stamp_text!r} mixes timestamps with and "
                    "without a UTC offset. Give every timestamp an offset (e.g. 'Z' or '+01:00')."
                )
        value = _intensity(path, line, row[cols.vcol].strip(), cols.value_name, cols.decimal_comma)
        if cols.zone_col is not None:
            zone = row[cols.zone_col]
            if cols.zone_raw is None:
                cols.zone_raw = zone
            elif zone.strip() != cols.zone_raw.strip():
                raise DataError(
                    f"{path}:{line}: zone {zone.strip()!r} differs from "
                    f"{cols.zone_raw.strip()!r} above. Use one file per zone."
                )
        cols.times.append(t)
        cols.values.append(value)
        cols.lines.append(line)
        flag = "" if cols.est_col is None else row[cols.est_col].strip().lower()
        cols.estimated.append(flag == "true")
        cols.check_rows()


def _read_block(reader: Any, guard: _Guard) -> list[list[str]]:
    """Up to :data:`_BLOCK_ROWS` rows, fewer once :data:`_BLOCK_BYTES` of text were read."""
    start = guard.bytes_read
    rows: list[list[str]] = []
    while len(rows) < _BLOCK_ROWS and guard.bytes_read - start <= _BLOCK_BYTES:
        part = list(itertools.islice(reader, 8))
        rows += part
        if len(part) < 8:
            break
    return rows


_CHUNK_CHARS = 1 << 17
"""Text read per step (about 850 portal rows); its whole lines are parsed at once."""
_PAD = bytes(32)
"""Put around a chunk's bytes, so that fixed-width gathers near its ends stay inside."""
_POW10 = np.array([float(10**k) for k in range(16)])
_TABLE_FIRST_YEAR = FIRST_YEAR - 1
_TABLE_YEARS = range(_TABLE_FIRST_YEAR, LAST_YEAR + 2)
"""Years a timestamp may name (with an offset up to a day, it can fall in the years around)."""
_YEAR_DAYS = np.array([(dt.date(y, 1, 1) - dt.date(1970, 1, 1)).days for y in _TABLE_YEARS])
_LEAP = np.array([int(y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) for y in _TABLE_YEARS])
_MONTHS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTHS_LEAP = (31, 29, *_MONTHS[2:])
_DAYS_IN_MONTH_LEAP = np.array([0, *_MONTHS, 0, *_MONTHS_LEAP])
"""Days in month ``m`` (1-12) at ``m``, and in a leap year at ``m + 13``."""
_DAYS_BEFORE_MONTH = np.array(
    [0, 0, *itertools.accumulate(_MONTHS[:-1]), 0, 0, *itertools.accumulate(_MONTHS_LEAP[:-1])]
)
_STAMP_LO = np.frombuffer(b"0000-00-00 00:00:00", dtype=np.uint8)
_STAMP_HI = np.frombuffer(b"9999-19-39T29:59:59", dtype=np.uint8)
_STAMP_WEIGHTS = np.zeros((19, 6))
"""Year, month, day, hour, minute and second from the digits of ``YYYY-MM-DD HH:MM:SS``."""
for _column, _digits in enumerate(((0, 1, 2, 3), (5, 6), (8, 9), (11, 12), (14, 15), (17, 18))):
    for _power, _at in enumerate(reversed(_digits)):
        _STAMP_WEIGHTS[_at, _column] = 10.0**_power
_VALUE_WIDTH = 15
"""Widest value computed arithmetically (a wider one goes to ``float``)."""
_VALUE_POWERS = _POW10[_VALUE_WIDTH - 1 :: -1].copy()
_VALUE_POSITIONS = np.arange(_VALUE_WIDTH - 1, -1, -1, dtype=np.float64)
_VALUE_ONES = np.ones(_VALUE_WIDTH)
_VALUE_KIND = np.full(256, 65536.0)
_VALUE_KIND[48:58] = 1.0
_VALUE_KIND[46] = 256.0
_VALUE_KIND[0] = 0.0  # outside the field (a chunk with a NUL is not parsed here)
_DOT = np.zeros(256)
_DOT[46] = 1.0
_DIGIT_VALUE = np.zeros(256)
_DIGIT_VALUE[48:58] = np.arange(10)
_TRUE = int.from_bytes(b"true", "little")
_FALS = int.from_bytes(b"fals", "little")


def _gather(
    a: npt.NDArray[np.uint8], starts: npt.NDArray[np.intp], width: int
) -> npt.NDArray[np.uint8]:
    """The ``width`` bytes from each of ``starts``, one row each (past a field: what follows)."""
    return np.asarray(np.lib.stride_tricks.sliding_window_view(a, width)[starts], dtype=np.uint8)


def _digits_ok(g: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Whether each row holds ASCII digits only."""
    return np.asarray(np.all((g >= 48) & (g <= 57), axis=1), dtype=np.bool_)


def _stamps_fast(
    a: npt.NDArray[np.uint8], starts: npt.NDArray[np.intp], widths: npt.NDArray[np.intp]
) -> tuple[FloatArray, npt.NDArray[np.bool_]] | None:
    """(unix seconds, had no offset) of ``YYYY-MM-DD[T ]HH:MM:SS[Z|+HH:MM]`` fields computed
    arithmetically, exactly as :func:`datetime.datetime.fromisoformat` gives them; None if a
    field has another shape, an impossible date, or lies outside the plausible years."""
    naive = widths == 19
    if not np.all(naive | (widths == 20) | (widths == 25)):
        return None
    g = _gather(a, starts, 19)
    if not np.all((g >= _STAMP_LO) & (g <= _STAMP_HI)):  # digits, '-', ':' and 32-84 at 10
        return None
    if not np.all((g[:, 10] == 32) | (g[:, 10] == 84)):  # ' ' or 'T'
        return None
    numbers = _STAMP_WEIGHTS.T @ g.T - _STAMP_WEIGHTS.sum(axis=0)[:, None] * 48.0
    year, month, day, hour, minute, second = numbers.astype(np.int64)
    y = year - _TABLE_FIRST_YEAR  # beyond the table's years: beyond the plausible ones in UTC
    if not (
        np.all((y >= 0) & (y < _YEAR_DAYS.size) & (month >= 1) & (month <= 12))
        and np.all((day >= 1) & (hour <= 23) & (minute <= 59) & (second <= 59))
    ):
        return None
    month_at = month + 13 * _LEAP[y]
    if not np.all(day <= _DAYS_IN_MONTH_LEAP[month_at]):
        return None
    days = _YEAR_DAYS[y] + _DAYS_BEFORE_MONTH[month_at] + day - 1
    seconds = days * 86400 + hour * 3600 + minute * 60 + second
    if not naive.all():
        s = _gather(a, starts + 19, 6).astype(np.int64)
        zulu = (widths == 20) & ((s[:, 0] == 90) | (s[:, 0] == 122))  # Z or z
        offset = (widths == 25) & ((s[:, 0] == 43) | (s[:, 0] == 45)) & (s[:, 3] == 58)
        offset &= _digits_ok(s[:, [1, 2, 4, 5]].astype(np.uint8))
        off_h, off_m = (s[:, 1] - 48) * 10 + s[:, 2] - 48, (s[:, 4] - 48) * 10 + s[:, 5] - 48
        if not np.all((naive | zulu | offset) & ~(offset & ((off_h > 23) | (off_m > 59)))):
            return None
        sign = np.where(s[:, 0] == 45, -1, 1)
        seconds -= np.where(offset, sign * (off_h * 3600 + off_m * 60), 0)
    times = seconds.astype(np.float64)
    if np.any((times < _FIRST_S) | (times >= _END_S)):
        return None
    return times, naive


def _values_fast(
    padded: bytes,
    a: npt.NDArray[np.uint8],
    ends: npt.NDArray[np.intp],
    widths: npt.NDArray[np.intp],
) -> FloatArray | None:
    """Intensities of the fields, each exactly ``float(text.strip())``; None if one is not a
    number or is outside [0, :data:`MAX_INTENSITY_G_PER_KWH`].

    A plain decimal of at most 15 characters is mantissa / 10**k, which is exact: both are
    exact doubles and IEEE division rounds correctly, as ``float`` does. Other spellings go
    to ``float`` one by one.
    """
    w = min(max(int(widths.max()), 1), _VALUE_WIDTH)  # columns needed for the widest field
    g = _gather(a, ends - w, w)  # right-aligned: each row ends where its field ends
    g = np.where(np.arange(w) >= (w - widths)[:, None], g, 0)  # NUL before the field (none in it)
    # per row sums by matrix products (faster than reductions along short rows); all exact
    kinds = _VALUE_KIND[g] @ _VALUE_ONES[:w]  # digits + 2**8 dots + 2**16 others
    digits, dots = np.mod(kinds, 256.0), np.mod(kinds // 256.0, 256.0)
    easy = (kinds < 65536.0) & (dots <= 1.0) & (digits >= 1.0) & (widths <= w)
    whole = _DIGIT_VALUE[g] @ _VALUE_POWERS[-w:]  # the digits as one integer
    dot_at = _DOT[g] @ _VALUE_POSITIONS[-w:]  # digits after the dot
    scale = _POW10[dot_at.astype(np.intp)]  # 10**(digits after the dot)
    low = np.mod(whole, scale)
    values = np.where(dots == 1.0, (low + (whole - low) / 10.0) / scale, whole)
    for i in np.flatnonzero(~easy).tolist():
        end = int(ends[i])
        try:
            values[i] = float(padded[end - int(widths[i]) : end].decode("utf-8").strip())
        except ValueError:
            return None
    if not np.all((values >= 0.0) & (values <= MAX_INTENSITY_G_PER_KWH)):  # NaN fails too
        return None
    return np.asarray(values, dtype=np.float64)


def _block_fast(cols: _Columns, chunk: str, first_line: int) -> bool:
    """Append the rows of ``chunk`` (whole lines, no quote) with array operations on its
    bytes; False (nothing appended) when anything is unusual, for the row-by-row paths."""
    if cols.decimal_comma or not chunk.endswith("\n") or "\0" in chunk:
        return False
    padded = _PAD + chunk.encode("utf-8") + _PAD
    n = padded.count(b"\n")
    a = np.frombuffer(padded, dtype=np.uint8)
    sep = cols.delimiter.encode()
    seps = np.flatnonzero(np.frombuffer(padded.replace(b"\n", sep), dtype=np.uint8) == sep[0])
    if seps.size != n * cols.ncol:
        return False
    ends = seps.reshape(n, cols.ncol)
    if not np.all(a[ends[:, -1]] == 10):  # all n line breaks end rows: ncol fields in each
        return False
    flat_starts = np.empty_like(seps)
    flat_starts[0] = len(_PAD)
    flat_starts[1:] = seps[:-1] + 1
    starts = flat_starts.reshape(n, cols.ncol)
    widths = ends - starts
    if widths.max() > MAX_FIELD_CHARS:
        return False
    stamps = _stamps_fast(a, starts[:, cols.tcol], widths[:, cols.tcol])
    if stamps is None:
        return False
    times, naive = stamps
    kinds_here = {bool(naive.any()), bool(naive.all())}
    if not cols.portal and (len(kinds_here) > 1 or cols.naive_kinds - kinds_here):
        return False
    values = _values_fast(padded, a, ends[:, cols.vcol], widths[:, cols.vcol])
    if values is None:
        return False
    zone = None
    if cols.zone_col is not None:
        z_starts, z_widths = starts[:, cols.zone_col], widths[:, cols.zone_col]
        width = int(z_widths[0])
        if np.any(z_widths != width):
            return False
        if width and np.any(_gather(a, z_starts, width) != _gather(a, z_starts[:1], width)):
            return False
        zone = padded[int(z_starts[0]) : int(z_starts[0]) + width].decode("utf-8")
        if cols.zone_raw is not None and zone != cols.zone_raw:
            return False
    flags = np.zeros(n, dtype=np.bool_)
    if cols.est_col is not None:
        e_starts, e_widths = starts[:, cols.est_col], widths[:, cols.est_col]
        first4 = _gather(a, e_starts, 4).view("<u4")[:, 0]
        true = (e_widths == 4) & (first4 == _TRUE)
        false = (e_widths == 5) & (first4 == _FALS) & (a[e_starts + 4] == 101)  # 'e'
        flags = true
        for i in np.flatnonzero(~(true | false)).tolist():
            start = int(e_starts[i])
            text = padded[start : start + int(e_widths[i])].decode("utf-8")
            flags[i] = text.strip().lower() == "true"
    if zone is not None:
        cols.zone_raw = zone
    if not cols.portal:
        cols.naive_kinds |= kinds_here
    cols.times.frombytes(times.tobytes())
    cols.values.frombytes(values.tobytes())
    cols.lines.frombytes(np.arange(first_line, first_line + n, dtype=np.int64).tobytes())
    cols.estimated.extend(flags.astype(np.uint8).tobytes())
    return True


def _parse_stream(path: Path, basis: str, text: io.TextIOWrapper, guard: _Guard) -> _Part:
    try:
        head = text.readline(MAX_LINE_BYTES + 1)
    except _LineTooLongError:
        raise _too_long(path, 1) from None
    if len(head) > MAX_LINE_BYTES:
        raise _too_long(path, 1)
    head = head.rstrip("\n")
    if not head.strip():
        raise DataError(
            f"{path}:1: empty file (no header). Expected an Electricity Maps portal export or "
            f"a CSV with the header {GENERIC_HEADER!r}."
        )
    cols = _header(path, basis, head)
    done = 0  # data lines read (the header is line 1)
    pending = ""  # the start of a line whose end is not read yet
    while True:
        try:
            data = _read_text(text)
        except _LineTooLongError:
            raise _too_long(path, _long_line_number(path)) from None
        text_now = pending + data
        if '"' in text_now:  # quoted fields may span lines: the csv module reads the rest
            _read_quoted(cols, guard, _continue(text_now, text), done)
            break
        cut = text_now.rfind("\n") + 1 if data else len(text_now)
        chunk, pending = text_now[:cut], text_now[cut:]
        if chunk:
            chunk += "" if chunk.endswith("\n") else "\n"
            done += _add_lines(cols, chunk, done + 2)
            _check_lines(path, done)
        if not data:
            break
    if not cols.times:
        raise DataError(f"{path}:2: no data rows after the header. Is the download complete?")
    return _Part(
        path,
        np.array(cols.times, dtype=np.float64),
        np.array(cols.values, dtype=np.float64),
        np.frombuffer(bytes(cols.estimated), dtype=np.bool_).copy(),
        np.array(cols.lines, dtype=np.int64),
        None if cols.zone_raw is None else cols.zone_raw.strip(),
        cols.naive_kinds == {True},
        cols.portal,
    )


def _read_text(text: io.TextIOWrapper) -> str:
    """About :data:`_CHUNK_CHARS` characters of ``text`` ('' at the end), read in 8 KiB steps
    so that :class:`_Guard` sees every line longer than :data:`MAX_LINE_BYTES` (a larger read
    would take a long line and its end in one piece)."""
    parts: list[str] = []
    total = 0
    while total < _CHUNK_CHARS and (part := text.read(8192)):
        parts.append(part)
        total += len(part)
    return "".join(parts)


def _check_lines(path: Path, done: int) -> None:
    if done > 2 * MAX_ROWS:
        raise DataError(
            f"{path}:{done + 1}: more than {2 * MAX_ROWS:,} lines in one file. Split it "
            "(e.g. one file per year) or resample it to a coarser step."
        )


def _add_lines(cols: _Columns, chunk: str, first_line: int) -> int:
    """Append the rows of ``chunk`` (whole lines, no quote) and return its number of lines:
    at once where possible, else in blocks of :data:`_BLOCK_ROWS` rows (the csv module reads
    each line on its own)."""
    before = len(cols.lines)
    if _block_fast(cols, chunk, first_line):
        cols.check_rows()
        return len(cols.lines) - before
    lines = chunk.split("\n")
    lines.pop()  # the chunk ends with a line break
    for i in range(0, len(lines), _BLOCK_ROWS):
        reader = csv.reader(lines[i : i + _BLOCK_ROWS], delimiter=cols.delimiter)
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise DataError(
                f"{cols.path}:{first_line + i + reader.line_num - 1}: unreadable CSV ({exc}). "
                "Check this line."
            ) from None
        numbers = range(first_line + i, first_line + i + len(rows))
        if not _rows_fast(cols, rows, numbers):
            _block_slow(cols, rows, numbers)
        cols.check_rows()
    return len(lines)


def _continue(start: str, text: io.TextIOWrapper) -> Iterator[str]:
    """The lines of ``start`` and then of ``text`` (the last line of ``start`` completed)."""
    lines = start.split("\n")
    for line in lines[:-1]:
        yield line + "\n"
    if lines[-1]:
        yield lines[-1] + text.readline()
    yield from text


def _read_quoted(cols: _Columns, guard: _Guard, lines: Iterator[str], done: int) -> None:
    """Append the rows of ``lines`` (data lines after the first ``done``) with the csv module,
    which reads quoted fields over several lines."""
    path = cols.path
    reader = csv.reader(lines, delimiter=cols.delimiter)
    before = done  # reader.line_num counts from here
    while True:
        try:
            rows = _read_block(reader, guard)
        except _LineTooLongError:
            raise _too_long(path, _long_line_number(path)) from None
        except csv.Error as exc:
            raise DataError(
                f"{path}:{before + reader.line_num + 1}: unreadable CSV ({exc}). Check the "
                "quoting of this line."
            ) from None
        if not rows:
            break
        if before + reader.line_num - done == len(rows):  # one line per row
            numbers: Sequence[int] = range(done + 2, done + 2 + len(rows))
            if not _rows_fast(cols, rows, numbers):
                _block_slow(cols, rows, numbers)
        else:  # quoted fields over several lines: count their line breaks
            spans = [1 + sum(f.count("\n") for f in row) for row in rows]
            _block_slow(cols, rows, (done + 1 + np.cumsum(spans)).tolist())
        done = before + reader.line_num
        _check_lines(path, done)
        cols.check_rows()


def _long_line_number(path: Path) -> int:
    """The number of the first line longer than :data:`MAX_LINE_BYTES` (the file read again)."""
    with contextlib.ExitStack() as stack:
        guard, _ = _open_binary(path, stack)
        guard.check_lines = False
        text = stack.enter_context(
            io.TextIOWrapper(
                io.BufferedReader(guard),
                encoding="utf-8-sig",
                errors="surrogateescape",
                newline=None,
            )
        )
        number = 0
        while line := text.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(line.rstrip("\n").encode("utf-8", "surrogateescape")) > MAX_LINE_BYTES:
                return number
    return number + 1


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
    parts = _parse_files(paths, basis, fill)
    return _combine(parts, basis, zone, fill, signal)


def load_csv_by_zone(
    paths: Sequence[str | Path],
    *,
    basis: str = "lca",
    zone: str | None = None,
    fill: str = "none",
    signal: str = "average",
) -> dict[str, IntensitySeries]:
    """Read intensity CSV files into one :class:`IntensitySeries` per zone, each file once.

    Portal exports name their zone and the files of one zone are concatenated; generic
    ``timestamp,value`` files are zone ``zone`` (else ``unknown``). Each file is first checked
    on its own (as :func:`load_csv` of that file would), then with the others of its zone.
    """
    parts = _parse_files(paths, basis, fill)
    groups: dict[str, list[_Part]] = {}
    generic: set[str] = set()
    for part in parts:
        name = _combine([part], basis, None, fill, signal).zone
        if not part.portal:
            name = zone or name
            generic.add(name)
        groups.setdefault(name, []).append(part)
    return {
        name: _combine(group, basis, name if name in generic else None, fill, signal)
        for name, group in groups.items()
    }


def _parse_files(paths: str | Path | Sequence[str | Path], basis: str, fill: str) -> list[_Part]:
    """Each file parsed, after checking the options."""
    if basis not in PORTAL_VALUE:
        raise ConfigError(f"bad basis {basis!r}: use 'lca' (life-cycle) or 'direct'.")
    if fill not in FILL_POLICIES:
        raise ConfigError(f"bad fill policy {fill!r}: use one of {', '.join(FILL_POLICIES)}.")
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise ConfigError("no intensity files given: pass at least one CSV path.")
    return [_parse_file(Path(p), basis) for p in items]


def _combine(
    parts: list[_Part], basis: str, zone: str | None, fill: str, signal: str
) -> IntensitySeries:
    """One series from parsed files: checked for order, step, zone, overlaps and gaps."""
    parts = list(parts)
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
    if not gaps:
        return series
    filled = len(series) + sum(g.missing_points for g in gaps)
    if filled > MAX_ROWS:
        raise DataError(
            f"filling the gaps ({fill}) would make {filled:,} points of {step:g} s from "
            f"{len(series):,} rows (at most {MAX_ROWS:,}): the data spans "
            f"{utc_iso_seconds(float(times[0]))} to {utc_iso_seconds(float(times[-1]))}. Check "
            "for a stray timestamp far from the others, or load fewer years at a time."
        )
    return fill_gaps(series, fill)


def _firsts(part: _Part) -> list[tuple[float, int]]:
    """(time, line) of every row that follows a gap in one file, plus the file's first row."""
    d = np.diff(part.times_s)
    step = float(np.min(d)) if d.size else 0.0
    idx = np.concatenate(([0], np.flatnonzero(d > step * (1 + 1e-9)) + 1))
    return [(float(part.times_s[i]), int(part.lines[i])) for i in idx]
