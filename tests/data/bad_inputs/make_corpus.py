"""Write the bad-input corpus of intensity files and its manifest (deterministic).

Run ``python tests/data/bad_inputs/make_corpus.py`` after changing a case; the files and
``manifest.json`` are checked in. ``manifest.json`` maps each file to what must happen when it
is read by ``load_csv`` and by the CLI (``greenforge grid show DE --file F`` and
``greenforge backtest --file F``):

* ``"error"``: the substring the message must contain, and ``"exit_code"`` (that of the
  GreenForge error class, e.g. 5 for ``DataError``);
* ``"ok": true``: the file loads (``"rows"`` rows); the back-test then either runs or stops with
  a GreenForge error (a few weeks of data are too short to replay), never a crash.

Files marked ``"crashed_before"`` crashed (segfault or traceback) or were silently accepted
before issue 9.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
PORTAL_HEADER = (
    "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
    "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
    "Data Source,Data Estimated,Data Estimation Method"
)
T0 = dt.datetime(2023, 1, 1)
DATA = 5


def row(stamp: str, lca: str = "300.5") -> str:
    return f"{stamp},Germany,Germany,DE,250.1,{lca},55.2,45.1,entsoe.eu,false,"


def hours(n: int, fmt: str = "%Y-%m-%d %H:%M:%S", suffix: str = "") -> list[str]:
    return [(T0 + dt.timedelta(hours=i)).strftime(fmt) + suffix for i in range(n)]


def portal(stamps: list[str], values: list[str] | None = None) -> bytes:
    vals = values or [f"{200 + (i * 37) % 300}.{i % 10}" for i in range(len(stamps))]
    lines = [PORTAL_HEADER, *(row(t, v) for t, v in zip(stamps, vals, strict=True))]
    return ("\n".join(lines) + "\n").encode("utf-8")


def generic(lines: list[str]) -> bytes:
    return ("\n".join(["timestamp,value", *lines]) + "\n").encode("utf-8")


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def cases() -> dict[str, tuple[bytes, dict[str, object]]]:
    """file name -> (content, expectation)."""
    rng = random.Random(9)
    err = {"exit_code": DATA}
    good = portal(hours(48))
    packed = gz(portal(hours(200)))
    corrupt = bytearray(packed)
    corrupt[len(corrupt) // 2] ^= 0xFF
    later = hours(1200, "%Y-%m-%dT%H:%M:%S", "Z")
    utc0 = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
    mixed = [  # the same hourly instants, written with offsets -01:00, +00:00 and +01:00
        (utc0 + dt.timedelta(hours=i))
        .astimezone(dt.timezone(dt.timedelta(hours=i % 3 - 1)))
        .isoformat(sep=" ")
        for i in range(300)
    ]
    return {
        # --- once crashed or were misread: must load, correctly converted to UTC
        "portal_offset_plus0000_1200_rows.csv": (
            portal(hours(1200, suffix="+00:00")),
            {"ok": True, "rows": 1200, "crashed_before": "segfault in numpy datetime parsing"},
        ),
        "portal_z_on_later_rows_1200_rows.csv": (
            portal(hours(600) + later[600:]),
            {"ok": True, "rows": 1200, "crashed_before": "segfault in numpy datetime parsing"},
        ),
        "portal_mixed_offsets.csv": (
            portal(mixed),
            {"ok": True, "rows": 300, "first_utc": "2023-01-01T00:00:00Z"},
        ),
        "semicolon_decimal_comma.csv": (
            b"timestamp;value\n2023-01-01T00:00Z;123,5\n2023-01-01T01:00Z;130,25\n",
            {"ok": True, "rows": 2, "values": [123.5, 130.25]},
        ),
        "all_zero_intensities.csv": (
            generic([f"{t},0" for t in hours(24 * 60, "%Y-%m-%dT%H:%M", "Z")]),
            {
                "ok": True,
                "rows": 24 * 60,
                "saving_note": "not applicable",
                "crashed_before": "ZeroDivisionError in backtest",
            },
        ),
        # --- compressed input
        "corrupt.csv.gz": (
            bytes(corrupt),
            {**err, "error": "not a readable gzip file", "crashed_before": "zlib.error"},
        ),
        "truncated.csv.gz": (packed[: len(packed) // 2], {**err, "error": "not a readable gzip"}),
        "gzip_bomb_one_line.csv.gz": (
            gz(PORTAL_HEADER.encode() + b"\n" + b"0" * (64 << 20)),
            {**err, "error": "longer than 65536 bytes", "crashed_before": "out of memory"},
        ),
        "zip_archive.csv": (b"PK\x03\x04" + bytes(200), {**err, "error": "zip archive"}),
        # --- memory: huge fields and lines
        "field_100kb.csv": (
            portal(["2023-01-01 00:00:00", "2023-01-01 01:00:00"], ["1" * 100_000, "2"]),
            {**err, "error": "longer than 65536 bytes", "crashed_before": "2.6 GB of memory"},
        ),
        "quoted_field_over_many_lines.csv": (
            generic(['2023-01-01T00:00Z,"' + "1\n" * 5000 + '"', "2023-01-01T01:00Z,2"]),
            {**err, "error": "longer than 4096 characters"},
        ),
        "unterminated_quote.csv": (
            generic(["2023-01-01T00:00Z,1", '"2023-01-01T01:00Z,2', "2023-01-01T02:00Z,3"]),
            {**err, "error": "never closed"},
        ),
        # --- implausible values
        "year_20000.csv": (
            generic(["20000-01-01T00:00Z,100", "20000-01-01T01:00Z,100"]),
            {**err, "error": "outside the years 1990-2100", "crashed_before": "traceback"},
        ),
        "year_1970.csv": (
            portal(["1970-01-01 00:00:00", "1970-01-01 01:00:00"]),
            {**err, "error": "outside the years 1990-2100"},
        ),
        "year_2150.csv": (
            generic(["2150-01-01T00:00Z,100", "2150-01-01T01:00Z,100"]),
            {**err, "error": "outside the years 1990-2100"},
        ),
        "intensity_6000.csv": (
            portal(hours(3), ["300", "6000", "300"]),
            {**err, "error": ":3: Carbon Intensity gCO₂eq/kWh (LCA) '6000' is above 5000 g/kWh"},
        ),
        "intensity_1e308.csv": (
            generic(["2023-01-01T00:00Z,1e308", "2023-01-01T01:00Z,1e308"]),
            {**err, "error": "above 5000 g/kWh", "crashed_before": "NaN in backtest --json"},
        ),
        "negative_intensity.csv": (
            generic(["2023-01-01T00:00Z,5", "2023-01-01T01:00Z,-3"]),
            {**err, "error": ":3: value '-3' is not a non-negative finite number"},
        ),
        "nan_intensity.csv": (
            generic(["2023-01-01T00:00Z,5", "2023-01-01T01:00Z,nan"]),
            {**err, "error": ":3: value 'nan' is not a non-negative finite number"},
        ),
        "inf_intensity.csv": (
            generic(["2023-01-01T00:00Z,5", "2023-01-01T01:00Z,inf"]),
            {**err, "error": "'inf' is not a non-negative finite number"},
        ),
        # --- separators, encodings, garbage
        "semicolon_rows_comma_header.csv": (
            b"timestamp,value\n2023-01-01T00:00Z;123,5\n2023-01-01T01:00Z;124,5\n",
            {**err, "error": "looks ';'-separated (with decimal commas?)"},
        ),
        "semicolon_thousands_separator.csv": (
            b"timestamp;value\n2023-01-01T00:00Z;1.234,5\n2023-01-01T01:00Z;1.300,0\n",
            {**err, "error": "'1.234,5' is not a number"},
        ),
        "decimal_comma_quoted.csv": (
            generic(['2023-01-01T00:00Z,"123,5"', '2023-01-01T01:00Z,"130,5"']),
            {**err, "error": "decimal comma"},
        ),
        "latin1_header.csv": (
            PORTAL_HEADER.replace("₂", "2").replace("Zone", "Zöne").encode("latin-1") + b"\n",
            {**err, "error": ":1: header is not UTF-8"},
        ),
        "latin1_row.csv": (
            good.replace(b"Germany,Germany", "Müller,Germany".encode("latin-1"), 1),
            {**err, "error": ":2: line is not UTF-8"},
        ),
        "random_bytes.csv": (
            bytes(rng.randrange(256) for _ in range(4096)),
            {**err, "error": "UTF-8"},
        ),
        "nul_bytes.csv": (
            generic(["2023\x00-01-01T00:00Z,1", "2023-01-01T01:00Z,2"]),
            {**err, "error": "bad timestamp"},
        ),
        "empty.csv": (b"", {**err, "error": ":1: empty file"}),
        "header_only.csv": (PORTAL_HEADER.encode() + b"\n", {**err, "error": ":2: no data rows"}),
        "blank_lines_only.csv": (b"timestamp,value\n\n\n\n", {**err, "error": "no data rows"}),
        # --- structure and time order
        "renamed_column.csv": (
            good.replace(b"(LCA)", b"(life-cycle)"),
            {**err, "error": "missing column"},
        ),
        "generic_missing_value.csv": (
            b"timestamp,grams\n2023-01-01T00:00Z,1\n",
            {**err, "error": "missing column 'value'"},
        ),
        "short_row.csv": (good + b"2023-01-03 00:00:00,DE,1\n", {**err, "error": "field(s)"}),
        "bad_timestamp.csv": (
            portal(["2023-01-01 00:00:00", "yesterday"]),
            {**err, "error": "bad timestamp"},
        ),
        "empty_timestamp.csv": (
            portal(["2023-01-01 00:00:00", ""]),
            {**err, "error": "empty timestamp"},
        ),
        "mixed_naive_and_offset.csv": (
            generic(["2023-01-01T00:00,1", "2023-01-01T01:00Z,2"]),
            {**err, "error": "mixes"},
        ),
        "unsorted.csv": (
            portal(["2023-01-01 00:00:00", "2023-01-01 02:00:00", "2023-01-01 01:00:00"]),
            {**err, "error": "not sorted by time"},
        ),
        "duplicate_rows.csv": (
            portal(["2023-01-01 00:00:00", "2023-01-01 00:00:00"]),
            {**err, "error": "duplicate timestamp"},
        ),
        "one_row.csv": (portal(["2023-01-01 00:00:00"]), {**err, "error": "only one data row"}),
        "one_second_step.csv": (
            generic(["2023-01-01T00:00:00Z,1", "2023-01-01T00:00:01Z,2"]),
            {**err, "error": "step of 1 s"},
        ),
        "two_zones.csv": (
            good + row("2023-01-03 00:00:00").replace(",DE,", ",FR,").encode() + b"\n",
            {**err, "error": "zone 'FR' differs"},
        ),
        "gap.csv": (
            portal(["2023-01-01 00:00:00", "2023-01-01 01:00:00", "2023-01-01 05:00:00"]),
            {**err, "error": "missing point(s)"},
        ),
    }


def main() -> None:
    manifest: dict[str, dict[str, object]] = {}
    for name, (content, expect) in sorted(cases().items()):
        (HERE / name).write_bytes(content)
        manifest[name] = expect
    text = json.dumps(manifest, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    (HERE / "manifest.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
