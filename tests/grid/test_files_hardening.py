"""The CSV readers under hostile input: offsets, limits, plausibility bounds, bounded memory."""

from __future__ import annotations

import datetime as dt
import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from greenforge.errors import DataError
from greenforge.grid import files
from greenforge.grid.files import PORTAL_HEADER, load_csv

UTC = dt.timezone.utc
JAN_1_2023 = 1672531200.0


def portal_row(stamp: str, lca: str = "200.5") -> str:
    return f"{stamp},Germany,Germany,DE,150.25,{lca},60.1,40.2,entsoe.eu,false,"


def stamps(n: int, fmt: str = "%Y-%m-%d %H:%M:%S", suffix: str = "") -> list[str]:
    start = dt.datetime(2023, 1, 1)
    return [(start + dt.timedelta(hours=i)).strftime(fmt) + suffix for i in range(n)]


def write_lines(path: Path, lines: list[str], compress: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# --- timestamps: parsed by fromisoformat, offsets converted, bounds checked ------------------


@pytest.mark.parametrize("suffix", ["+00:00", "Z"])
def test_portal_times_with_an_offset_on_thousands_of_rows_load(tmp_path: Path, suffix: str) -> None:
    # before issue 9 this segfaulted inside numpy's datetime parsing
    rows = [portal_row(t) for t in stamps(3000, suffix=suffix)]
    series = load_csv(write_lines(tmp_path / "o.csv", [PORTAL_HEADER, *rows]))
    np.testing.assert_array_equal(series.times_s, JAN_1_2023 + 3600.0 * np.arange(3000))


def test_z_on_later_rows_only_and_mixed_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    naive = stamps(1500)
    with_z = stamps(3000, "%Y-%m-%dT%H:%M:%S", "Z")[1500:]
    series = load_csv(
        write_lines(tmp_path / "z.csv", [PORTAL_HEADER, *map(portal_row, naive + with_z)])
    )
    assert series.step_s == 3600.0
    assert len(series) == 3000
    utc0 = dt.datetime(2023, 1, 1, tzinfo=UTC)
    mixed = [
        (utc0 + dt.timedelta(hours=i)).astimezone(dt.timezone(dt.timedelta(hours=i % 5 - 2)))
        for i in range(50)
    ]
    rows = [portal_row(m.isoformat(sep=" ")) for m in mixed]
    series = load_csv(write_lines(tmp_path / "m.csv", [PORTAL_HEADER, *rows]))
    np.testing.assert_array_equal(series.times_s, JAN_1_2023 + 3600.0 * np.arange(50))


@pytest.mark.parametrize(
    "stamp",
    ["20000-01-01T00:00Z", "1989-12-31T23:00Z", "2101-01-01T00:00Z", "0001-01-01T00:00Z"],
)
def test_timestamps_outside_1990_to_2100_are_refused(tmp_path: Path, stamp: str) -> None:
    path = write_lines(tmp_path / "y.csv", ["timestamp,value", "2023-01-01T00:00Z,1", f"{stamp},2"])
    with pytest.raises(DataError, match=r"y\.csv:3: timestamp .* outside the years 1990-2100"):
        load_csv(path)


def test_the_first_and_last_accepted_instants(tmp_path: Path) -> None:
    lines = ["timestamp,value", "1990-01-01T00:00Z,1", "1990-01-01T01:00Z,2"]
    assert load_csv(write_lines(tmp_path / "a.csv", lines)).start_s == 631152000.0
    lines = ["timestamp,value", "2100-12-31T22:00Z,1", "2100-12-31T23:00Z,2"]
    assert len(load_csv(write_lines(tmp_path / "b.csv", lines))) == 2


# --- intensities: plausibility bounds, never NaN/inf ------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5000.5", r"v\.csv:3: value '5000\.5' is above 5000 g/kWh.*unit"),
        ("1e308", "above 5000 g/kWh"),
        ("-0.1", "not a non-negative finite number"),
        ("nan", "not a non-negative finite number"),
        ("-inf", "not a non-negative finite number"),
        ("Infinity", "not a non-negative finite number"),
        ("", r"v\.csv:3: value '' is not a number"),
    ],
)
def test_implausible_intensities_are_refused_with_the_row(
    tmp_path: Path, value: str, message: str
) -> None:
    path = write_lines(
        tmp_path / "v.csv", ["timestamp,value", "2023-01-01T00:00Z,1", f"2023-01-01T01:00Z,{value}"]
    )
    with pytest.raises(DataError, match=message):
        load_csv(path)


def test_zero_and_5000_are_accepted(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "v.csv", ["timestamp,value", "2023-01-01T00:00Z,0", "2023-01-01T01:00Z,5000"]
    )
    assert load_csv(path).values_g_per_kwh.tolist() == [0.0, 5000.0]


# --- separators and encodings -------------------------------------------------------------------


def test_semicolon_files_with_decimal_commas_are_read(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("timestamp;value\n2023-01-01T00:00Z;123,5\n2023-01-01T01:00Z;99\n")
    assert load_csv(path).values_g_per_kwh.tolist() == [123.5, 99.0]
    header = PORTAL_HEADER.replace(",", ";")
    rows = [portal_row(t, "LCA").replace(",", ";").replace("LCA", "200,5") for t in stamps(2)]
    assert load_csv(write_lines(tmp_path / "p.csv", [header, *rows])).values_g_per_kwh[0] == 200.5


def test_semicolon_rows_under_a_comma_header_name_the_cause(tmp_path: Path) -> None:
    path = tmp_path / "mix.csv"
    path.write_text("timestamp,value\n2023-01-01T00:00Z;123,5\n2023-01-01T01:00Z;99,5\n")
    with pytest.raises(DataError, match=r"mix\.csv:2: .*looks ';'-separated \(with decimal"):
        load_csv(path)


def test_bom_crlf_and_old_mac_line_ends_read_the_same(tmp_path: Path) -> None:
    lines = ["timestamp,value", "2023-01-01T00:00Z,1", "2023-01-01T01:00Z,2"]
    for name, data in {
        "bom.csv": ("\ufeff" + "\n".join(lines)).encode("utf-8"),
        "crlf.csv": "\r\n".join(lines).encode("utf-8"),
        "mac.csv": "\r".join(lines).encode("utf-8"),
    }.items():
        (tmp_path / name).write_bytes(data)
        assert load_csv(tmp_path / name).values_g_per_kwh.tolist() == [1.0, 2.0], name


def test_bytes_that_are_not_utf8_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "l1.csv"
    path.write_bytes(b"timestamp,value\n2023-01-01T00:00Z,1\n2023-01-01T01:00Z,\xe92\n")
    with pytest.raises(DataError, match=r"l1\.csv:3: line is not UTF-8"):
        load_csv(path)


def test_a_zip_archive_is_named(tmp_path: Path) -> None:
    path = tmp_path / "z.csv"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(DataError, match="zip archive; unzip it"):
        load_csv(path)


# --- gzip ---------------------------------------------------------------------------------------


def test_corrupt_and_truncated_gzip_are_data_errors_naming_the_file(tmp_path: Path) -> None:
    rows = [PORTAL_HEADER, *map(portal_row, stamps(500))]
    packed = gzip.compress(("\n".join(rows) + "\n").encode())
    (tmp_path / "cut.csv.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match=r"cut\.csv\.gz: not a readable gzip file"):
        load_csv(tmp_path / "cut.csv.gz")
    flipped = bytearray(packed)
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "bad.csv.gz").write_bytes(bytes(flipped))
    with pytest.raises(DataError, match=r"bad\.csv\.gz: not a readable gzip file.*Download"):
        load_csv(tmp_path / "bad.csv.gz")
    (tmp_path / "head.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="not a readable gzip file"):
        load_csv(tmp_path / "head.csv.gz")


def test_decompressed_size_is_capped_while_streaming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_DECOMPRESSED_BYTES", 10_000)
    rows = [PORTAL_HEADER, *map(portal_row, stamps(500))]
    path = write_lines(tmp_path / "big.csv.gz", rows, compress=True)
    with pytest.raises(DataError, match=r"big\.csv\.gz: decompresses to more than"):
        load_csv(path)


# --- bounded memory: caps on line, field and rows ------------------------------------------


def test_a_huge_field_is_refused_with_little_memory(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "f.csv", [PORTAL_HEADER, portal_row("2023-01-01 00:00:00", "1" * 1_000_000)]
    )
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"f\.csv:2: line is longer than 65536 bytes"):
            load_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # was 10.7 GiB for a 1 MB field


def test_a_long_quoted_field_over_many_lines_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('timestamp,value\n2023-01-01T00:00Z,"' + "1\n" * 3000 + '"\n')
    with pytest.raises(DataError, match=r"q\.csv:\d+: a field is longer than 4096 characters"):
        load_csv(path)


def test_a_gzip_bomb_is_refused_with_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"timestamp,value\n")
        for _ in range(64):
            fh.write(b"9" * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"bomb\.csv\.gz:2: line is longer"):
            load_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_rows_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "MAX_ROWS", 10)
    rows = [PORTAL_HEADER, *map(portal_row, stamps(11))]
    with pytest.raises(DataError, match=r"r\.csv:12: more than 10 data rows in one file"):
        load_csv(write_lines(tmp_path / "r.csv", rows))


def test_memory_grows_with_rows_not_with_the_text(tmp_path: Path) -> None:
    rows = [PORTAL_HEADER, *map(portal_row, stamps(60_000))]
    path = write_lines(tmp_path / "years.csv", rows)
    tracemalloc.start()
    try:
        series = load_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(series) == 60_000
    # O(rows) numbers (3 x 8 bytes a row, plus the arrays returned) and one block of text:
    # never the whole text (4.7 MB) in memory
    assert peak < path.stat().st_size * 0.8


def test_a_fill_that_would_create_millions_of_points_is_refused(tmp_path: Path) -> None:
    # one stray row a century later, on a 1-minute grid: 58 million points to interpolate
    lines = ["timestamp,value", "1990-01-01T00:00Z,1", "1990-01-01T00:01Z,2", "2099-01-01T00:00Z,3"]
    path = write_lines(tmp_path / "stray.csv", lines)
    with pytest.raises(DataError, match=r"filling the gaps \(interpolate\) would make .*stray"):
        load_csv(path, fill="interpolate")


def test_rows_of_long_multi_line_fields_are_read_in_small_blocks(tmp_path: Path) -> None:
    # every field quoted over 100 lines of 1,000 characters: 1.1 MB a row, 26 MB in all
    field = '"' + "\n".join(["7" * 1000] * 100) + '"'
    path = tmp_path / "tall.csv"
    with path.open("w") as fh:
        fh.write(PORTAL_HEADER + "\n")
        for _ in range(24):
            fh.write(",".join([field] * 11) + "\n")
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"tall\.csv:\d+: a field is longer than 4096"):
            load_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < path.stat().st_size / 2


def test_a_header_with_too_many_columns_is_refused(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "wide.csv", [",".join(f"c{i}" for i in range(500)), "1"])
    with pytest.raises(DataError, match=r"wide\.csv:1: the header has 500 columns"):
        load_csv(path)
